//! The daemon's life: SIGTERM, a second daemon, a stale socket file, the
//! socket's mode, and TCP with a token.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::mpsc;

use luapool_client::{Client, ComputeOptions};

use super::harness::{fresh_socket_path, luapool_bin, Answer, Daemon, Raw, HANG};

#[test]
fn sigterm_finishes_accepted_computes_removes_the_socket_and_exits_zero() {
    let mut d = Daemon::start(&["--grace", "20"]);
    let client = d.client();
    let (a, b) = (client.session().unwrap(), client.session().unwrap());
    let (tx, rx) = mpsc::channel();
    let code =
        "print('started') local t = os.clock() while os.clock() - t < 0.3 do end return 'done'";
    std::thread::scope(|scope| {
        let runs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|s| {
                let tx = tx.clone();
                scope.spawn(move || {
                    let on_log: luapool_client::LogSink =
                        Box::new(move |_: &str| tx.send(()).unwrap());
                    s.compute_with(
                        code,
                        ComputeOptions {
                            on_log: Some(on_log),
                            ..Default::default()
                        },
                    )
                })
            })
            .collect();
        rx.recv_timeout(HANG).unwrap();
        rx.recv_timeout(HANG).unwrap();
        d.signal(libc::SIGTERM);
        for r in runs {
            assert_eq!(
                r.join().unwrap().unwrap().value::<String>(0).unwrap(),
                "done"
            );
        }
    });
    let status = d.wait_exit();
    assert!(status.success(), "{status}: {}", d.stderr());
    assert!(!d.socket.exists(), "the socket file is still there");
}

#[test]
fn a_second_daemon_on_a_live_socket_refuses_to_start() {
    let d = Daemon::start(&[]);
    let out = Command::new(luapool_bin())
        .arg("serve")
        .arg("--socket")
        .arg(&d.socket)
        .args(["--workers", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.client()
            .session()
            .unwrap()
            .compute("return 1")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
}

#[test]
fn a_stale_socket_file_is_replaced_and_reported() {
    let path = fresh_socket_path();
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let d = Daemon::start_at(path, &[]);
    assert!(
        d.stderr().contains("removed stale socket"),
        "{}",
        d.stderr()
    );
    assert_eq!(
        d.client()
            .session()
            .unwrap()
            .compute("return 1")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
}

#[test]
fn the_socket_file_is_private_to_its_owner() {
    let d = Daemon::start(&[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn tcp_is_loopback_only_and_needs_the_token_first() {
    let d = Daemon::start(&["--tcp", "127.0.0.1:0", "--token", "s3cret"]);
    let addr = d.tcp_addr();

    let mut raw = Raw::tcp(TcpStream::connect(&addr).unwrap());
    assert_eq!(
        raw.call(1, "stats", vec![]),
        Answer::Err("Unauthorized".into())
    );
    assert!(raw.closed());
    let mut raw = Raw::tcp(TcpStream::connect(&addr).unwrap());
    assert_eq!(
        raw.call(1, "auth", vec!["guess".into()]),
        Answer::Err("Unauthorized".into())
    );
    assert!(raw.closed());

    let client = Client::connect_tcp(addr.as_str(), "s3cret").unwrap();
    assert_eq!(
        client
            .session()
            .unwrap()
            .compute("return 5")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        5
    );

    let out = Command::new(luapool_bin())
        .arg("serve")
        .arg("--socket")
        .arg(fresh_socket_path())
        .args(["--workers", "1", "--tcp", "0.0.0.0:0", "--token", "t"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
