//! The home methods over a real daemon with a data directory: `home.list`
//! (operator's socket only), `home.drop`, `home.export`, `home.import`
//! through the Rust client, raw frames, and `luapool home --socket`.

use std::process::Command;

use luapool_client::{ClientError, ErrorKind, Value};
use rmpv::Value as Mp;
use serde_json::json;

use super::harness::{luapool_bin, Answer, Daemon};
use crate::common::TempDir;

fn names(d: &Daemon) -> Vec<String> {
    let homes = d.operator().list_homes().expect("home.list");
    homes.into_iter().map(|h| h.name).collect()
}

fn kind(e: ClientError) -> ErrorKind {
    e.daemon_kind()
        .unwrap_or_else(|| panic!("not a daemon error: {e}"))
}

#[test]
fn home_methods_list_export_import_and_drop_durable_homes() {
    let dir = TempDir::new("home-rpc");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let d = Daemon::start(&["--data", data]);
    let c = d.client();
    let a = c.session_with_home("a").unwrap();
    a.compute("_home.users = {{name = 'ann'}} _home.n = 1")
        .unwrap();
    let b = c.session_with_home("b").unwrap();
    b.compute("_home.x = true").unwrap();
    assert_eq!(names(&d), ["a", "b"]);
    let listed = d.operator().list_homes().unwrap();
    assert_eq!(listed[0].sessions, 1, "{listed:?}");
    assert!(listed[0].bytes > 0, "{listed:?}");

    let exported: serde_json::Value = c.export_home("a").unwrap();
    assert_eq!(exported, json!({"users": [{"name": "ann"}], "n": 1}));

    // A home a session holds is neither replaced nor dropped.
    let backup = json!({"n": 41, "restored": [1, 2]});
    assert_eq!(
        kind(c.import_home("a", &backup).unwrap_err()),
        ErrorKind::HomeInUse
    );
    assert_eq!(kind(c.drop_home("b").unwrap_err()), ErrorKind::HomeInUse);
    a.close().unwrap();
    b.close().unwrap();

    c.import_home("a", &backup).unwrap();
    assert!(c.drop_home("b").unwrap());
    assert!(!c.drop_home("b").unwrap(), "dropped already");
    assert_eq!(
        kind(c.export_home::<Value>("b").unwrap_err()),
        ErrorKind::HomeNotFound
    );
    assert_eq!(names(&d), ["a"]);

    // Imported and dropped on disk: a new daemon on the directory agrees.
    drop(c);
    drop(d);
    let d = Daemon::start(&["--data", data]);
    assert_eq!(names(&d), ["a"]);
    let s = d.client().session_with_home("a").unwrap();
    let out = s
        .compute("_home.n = _home.n + 1 return {_home.n, _home.users == nil, _home.restored[2]}")
        .unwrap();
    assert_eq!(out.value::<(i64, bool, i64)>(0).unwrap(), (42, true, 2));
}

#[test]
fn home_list_is_refused_outside_the_operator_socket_and_the_connection_goes_on() {
    let d = Daemon::start(&[]);
    let c = d.client();
    let e = c.list_homes().unwrap_err();
    assert_eq!(kind(e), ErrorKind::OperatorOnly);
    // The connection is fine, and the other home methods serve it.
    c.import_home("h", &json!({"k": "v"})).unwrap();
    let v: serde_json::Value = c.export_home("h").unwrap();
    assert_eq!(v, json!({"k": "v"}));
    assert_eq!(names(&d), ["h"]);
}

#[test]
fn bad_home_requests_are_typed_errors() {
    let d = Daemon::start(&["--max-homes", "1"]);
    let mut raw = d.raw();
    let bad = |a: Answer| match a {
        Answer::Err(k) => k,
        other => panic!("{other:?}"),
    };
    // Wrong params.
    assert_eq!(bad(raw.call(1, "home.drop", vec![])), "BadRequest");
    assert_eq!(
        bad(raw.call(2, "home.export", vec![7.into()])),
        "BadRequest"
    );
    assert_eq!(
        bad(raw.call(3, "home.list", vec!["x".into()])),
        "BadRequest"
    );
    // A home must be a table.
    assert_eq!(
        bad(raw.call(4, "home.import", vec!["h".into(), 5.into()])),
        "BadRequest"
    );
    // The limit on named homes holds for imports too, and names itself.
    let map = |k: &str| Mp::Map(vec![(k.into(), 1.into())]);
    assert_eq!(
        raw.call(5, "home.import", vec!["one".into(), map("a")]),
        Answer::Ok(Mp::Nil)
    );
    let r = raw.call(6, "home.import", vec!["two".into(), map("b")]);
    assert_eq!(bad(r), "TooManyHomes");
    assert_eq!(
        raw.call(7, "home.export", vec!["one".into()]),
        Answer::Ok(map("a"))
    );
}

#[test]
fn luapool_home_works_through_the_socket_and_points_at_it_when_a_daemon_holds_the_directory() {
    let dir = TempDir::new("home-cli-socket");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let d = Daemon::start(&["--data", data]);
    let s = d.client().session_with_home("a").unwrap();
    s.compute("_home.n = 1").unwrap();
    s.close().unwrap();
    let luapool = |args: &[&str], input: &[u8]| {
        use std::io::Write;
        let mut child = Command::new(luapool_bin())
            .arg("home")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let (sock, op) = (d.socket.to_str().unwrap(), d.operator.to_str().unwrap());

    // The directory is the daemon's: the command says to use its socket.
    let held = luapool(&["list", "--data", data], b"");
    assert_eq!(held.status.code(), Some(2));
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(
        err.contains("held by a running daemon") && err.contains("--socket"),
        "{err}"
    );

    let list = luapool(&["list", "--socket", op], b"");
    assert!(list.status.success(), "{list:?}");
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("a\t"));
    let refused = luapool(&["list", "--socket", sock], b"");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("OperatorOnly"));

    let import = luapool(&["import", "a", "-", "--socket", sock], br#"{"n": 9}"#);
    assert!(import.status.success(), "{import:?}");
    let export = luapool(&["export", "a", "--compact", "--socket", sock], b"");
    assert_eq!(String::from_utf8_lossy(&export.stdout).trim(), r#"{"n":9}"#);
    assert!(luapool(&["drop", "a", "--socket", sock], b"")
        .status
        .success());
    let missing = luapool(&["export", "a", "--socket", sock], b"");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
}
