//! Functions and bigints in durable homes (issue 18): stored through a real
//! daemon on a data directory, called and read back after the daemon is
//! killed and started again; and the same through `luapool run --data`.

use luapool_client::{ClientError, ComputeError};
use luapool_protocol::api::HostValue;
use serde_json::json;

use super::cli::{luapool, ok, run};
use super::TempDir;
use crate::daemon::harness::{fresh_socket_path, Daemon};

#[test]
fn a_function_and_a_bigint_in_a_home_survive_a_daemon_restart() {
    let dir = TempDir::new("fn-restart");
    let socket = fresh_socket_path();
    let args = ["--data", dir.path()];
    let mut daemon = Daemon::start_at(socket.clone(), &args);
    {
        let c = daemon.client();
        let s = c.session_with_home("greeter").unwrap();
        s.compute(
            r##"_home.greet = function(name) return "hi " .. name end
               local M = {}
               function M:tag(x) return self.prefix .. x end
               _home.m = { prefix = "#" }
               _home.m.tag = M.tag
               _home.big = bigint.new("123456789012345678901234567890") * 1000
               _home.list = { bigint.new(2):pow(100), function(a, b) return a * b end }"##,
        )
        .unwrap();
    }
    // SIGKILL: what was acknowledged is on disk.
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit();
    drop(daemon);
    let daemon = Daemon::start_at(socket, &args);
    let c = daemon.client();
    let s = c.session_with_home("greeter").unwrap();
    let out = s
        .compute(
            r#"return _home.greet("x"), _home.m:tag(7), _home.big + 1,
                      _home.list[2](6, 7), bigint.isbigint(_home.list[1]), _home.list[1]"#,
        )
        .unwrap();
    assert_eq!(out.value::<String>(0).unwrap(), "hi x");
    assert_eq!(out.value::<String>(1).unwrap(), "#7");
    assert_eq!(
        out.values[2],
        HostValue::BigInt("123456789012345678901234567890001".into())
    );
    assert_eq!(out.value::<i64>(3).unwrap(), 42);
    assert!(out.value::<bool>(4).unwrap());
    assert_eq!(
        out.value::<u128>(5).unwrap(),
        1_267_650_600_228_229_401_496_703_205_376
    );
    // Another session of the same home stores it again, after the restart.
    let other = c.session_with_home("greeter").unwrap();
    other
        .compute("_home.greet2 = _home.greet _home.n = _home.big // 1000")
        .unwrap();
    let v: serde_json::Value = other
        .compute("return { _home.greet2('y'), _home.n }")
        .unwrap()
        .value(0)
        .unwrap();
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"["hi y",123456789012345678901234567890]"#
    );
}

#[test]
fn a_refused_function_leaves_the_durable_home_as_it_was() {
    let dir = TempDir::new("fn-refused");
    let socket = fresh_socket_path();
    let args = ["--data", dir.path()];
    let mut daemon = Daemon::start_at(socket.clone(), &args);
    {
        let s = daemon.client().session_with_home("h").unwrap();
        s.compute("_home.n = 1").unwrap();
        match s.compute("_home.n = 2 local up = 3 _home.f = function() return up end") {
            Err(ClientError::Compute(ComputeError::LuaError { message, .. })) => {
                assert!(
                    message.contains("key 'f'") && message.contains("'up'"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    daemon.signal(libc::SIGKILL);
    daemon.wait_exit();
    drop(daemon);
    let daemon = Daemon::start_at(socket, &args);
    let s = daemon.client().session_with_home("h").unwrap();
    let v: serde_json::Value = s
        .compute("return { _home.n, type(_home.f) }")
        .unwrap()
        .value(0)
        .unwrap();
    assert_eq!(v, json!([1, "nil"]));
}

#[test]
fn luapool_run_keeps_functions_and_bigints_in_a_home_between_runs() {
    let dir = TempDir::new("fn-cli");
    let run = |home: &str, code: &str| ok(&run(&dir, home, code)).trim().to_string();
    run(
        "h",
        "local a = 1; local sq = function(x) return x * x end; _home.sq = sq; _home.big = bigint.new(7) ^ 40",
    );
    assert_eq!(
        run("h", "return { _home.sq(12), _home.big }"),
        "[144,6366805760909027985741435139224001]"
    );
    // Export as MessagePack keeps the function; JSON shows its text.
    let export = |fmt: &str| {
        ok(&luapool(
            &["home", "export", "h", fmt, "--data", dir.path()],
            b"",
        ))
    };
    let text = export("--compact");
    assert!(
        text.contains(r#""sq":"function(x) return x * x end""#)
            && text.contains(r#""big":6366805760909027985741435139224001"#),
        "{text}"
    );
    let packed = luapool(
        &["home", "export", "h", "--msgpack", "--data", dir.path()],
        b"",
    );
    assert!(packed.status.success());
    ok(&luapool(
        &[
            "home",
            "import",
            "copy",
            "-",
            "--msgpack",
            "--data",
            dir.path(),
        ],
        &packed.stdout,
    ));
    assert_eq!(
        run("copy", "return _home.sq(3), bigint.isbigint(_home.big)"),
        "[9,true]"
    );
}
