//! The daemon end to end: a real `luapool serve` process, reached through
//! the Rust client, raw MessagePack-RPC frames, signals and the Python
//! example. Every test starts its own daemon (two workers) on its own socket.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use luapool_client::{Client, ClientError, ComputeError, ComputeOptions};
use rmpv::Value;
use serde_json::json;

/// How long any wait in these tests may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

fn luapool_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("luapool");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (it builds the binary)",
        bin.display()
    );
    bin
}

fn fresh_socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("luapool-t{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Polls `f` until it is true; panics with `what` if that takes a hang's time.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + HANG;
    while !f() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `luapool serve` child process; killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(extra: &[&str]) -> Daemon {
        Daemon::start_at(fresh_socket_path(), extra)
    }

    fn start_at(socket: PathBuf, extra: &[&str]) -> Daemon {
        let mut child = Command::new(luapool_bin())
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(["--workers", "2"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn luapool serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("piped"), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut d = Daemon {
            child,
            socket,
            stderr,
        };
        eventually("the daemon says it is listening", || {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("luapool serve exited with {status}: {}", d.stderr());
            }
            d.stderr().contains("workers)")
        });
        d
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect")
    }

    fn raw(&self) -> Raw {
        Raw::new(UnixStream::connect(&self.socket).expect("connect"))
    }

    fn tables(&self) -> (usize, usize) {
        let s = self.client().stats().expect("stats");
        (s.store.tables, s.sessions)
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < end,
                "the daemon did not exit: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A raw MessagePack-RPC connection.
struct Raw {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
}

/// What came back for a request.
#[derive(Debug, PartialEq)]
enum Answer {
    Ok(Value),
    Err(String),
    Closed,
}

impl Raw {
    fn new(s: UnixStream) -> Raw {
        s.set_read_timeout(Some(HANG)).unwrap();
        Raw {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
        }
    }

    fn tcp(s: TcpStream) -> Raw {
        s.set_read_timeout(Some(HANG)).unwrap();
        Raw {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
        }
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        // The daemon may already have closed the connection: that is an answer too.
        let _ = self.writer.write_all(bytes);
    }

    fn send(&mut self, msg: Value) {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &msg).unwrap();
        self.send_bytes(&buf);
    }

    fn request(&mut self, msgid: u32, method: &str, params: Vec<Value>) {
        self.send(Value::Array(vec![
            0.into(),
            msgid.into(),
            method.into(),
            Value::Array(params),
        ]));
    }

    /// The next message, or None at end of stream.
    fn next(&mut self) -> Option<Value> {
        rmpv::decode::read_value(&mut self.reader).ok()
    }

    /// The answer to `msgid`, skipping notifications; an error reply with a
    /// nil msgid (the daemon rejecting the stream) counts as an answer too.
    fn answer(&mut self, msgid: u32) -> Answer {
        while let Some(msg) = self.next() {
            let Value::Array(m) = msg else {
                panic!("not an array: {msg}")
            };
            if m[0] == Value::from(2) {
                continue;
            }
            assert_eq!(m.len(), 4, "{m:?}");
            if m[1] != Value::from(msgid) && !m[1].is_nil() {
                continue;
            }
            return match &m[2] {
                Value::Nil => Answer::Ok(m[3].clone()),
                e => Answer::Err(e["kind"].as_str().expect("error kind").to_owned()),
            };
        }
        Answer::Closed
    }

    /// Reads until the daemon closes the connection.
    fn closed(&mut self) -> bool {
        while self.next().is_some() {}
        true
    }

    fn call(&mut self, msgid: u32, method: &str, params: Vec<Value>) -> Answer {
        self.request(msgid, method, params);
        self.answer(msgid)
    }
}

#[test]
fn quick_start_through_the_client_greets_alice() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let lua = client.session().unwrap();
    lua.set_input(&json!({ "user": { "id": 123, "name": "Alice", "age": 30 } }))
        .unwrap();
    let out = lua
        .compute(
            r#"
            local user = _io.input.user
            local greeting = "Hello, " .. user.name
            _io.output = { message = greeting, isAdult = user.age >= 18, userId = user.id }
            return "success"
        "#,
        )
        .unwrap();
    assert_eq!(out.value::<String>(0).unwrap(), "success");
    let output: serde_json::Value = lua.get_output().unwrap();
    assert_eq!(
        output,
        json!({ "message": "Hello, Alice", "isAdult": true, "userId": 123 })
    );

    lua.set_input(&json!({ "numbers": [1, 2, 3, 4, 5] }))
        .unwrap();
    lua.compute(
        r#"
        local sum = 0
        for i, n in ipairs(_io.input.numbers) do sum = sum + n end
        _io.output = { sum = sum, count = #_io.input.numbers }
    "#,
    )
    .unwrap();
    assert_eq!(
        lua.get_output::<serde_json::Value>().unwrap(),
        json!({ "sum": 15, "count": 5 })
    );
    assert_eq!(lua.get_output_field::<i64>("sum").unwrap(), 15);
}

#[test]
fn every_session_api_function_works_over_the_socket() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let s = client.session().unwrap();
    s.set_input_field("userId", &123).unwrap();
    s.set_input_field("params", &json!({ "limit": 10 }))
        .unwrap();
    s.set_metadata(&json!({ "requestId": "req-1" })).unwrap();
    let out = s.compute("print('Request ID: ' .. _io.meta.requestId) _io.output = { id = _io.input.userId, limit = _io.input.params.limit } return 1, 'two'").unwrap();
    assert_eq!(out.logs, vec!["Request ID: req-1".to_string()]);
    assert_eq!(
        (
            out.value::<i64>(0).unwrap(),
            out.value::<String>(1).unwrap()
        ),
        (1, "two".to_string())
    );
    assert_eq!(
        s.get_output::<serde_json::Value>().unwrap(),
        json!({ "id": 123, "limit": 10 })
    );
    let info = s.table_info().unwrap();
    assert_eq!(info.io, s.io_table_id().unwrap());
    s.clear_io().unwrap();
    assert_eq!(
        s.get_output::<serde_json::Value>().unwrap(),
        serde_json::Value::Null
    );
    s.close().unwrap();
}

#[test]
fn compute_errors_arrive_with_their_kind() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let s = client.session().unwrap();
    match s.compute("local x = 1\nerror('boom')") {
        Err(ClientError::Compute(ComputeError::LuaError { message, traceback })) => {
            assert!(message.contains("boom"), "{message}");
            assert!(!traceback.is_empty());
        }
        other => panic!("expected a LuaError, got {other:?}"),
    }
    let opts = ComputeOptions {
        instructions: Some(100_000),
        ..Default::default()
    };
    match s.compute_with("while true do end", opts) {
        Err(ClientError::Compute(ComputeError::Timeout { .. })) => {}
        other => panic!("expected a Timeout, got {other:?}"),
    }
    // The session still works after both.
    assert_eq!(
        s.compute("return 40 + 2").unwrap().value::<i64>(0).unwrap(),
        42
    );
}

#[test]
fn fifty_concurrent_sessions_each_get_their_own_output() {
    let d = Daemon::start(&[]);
    let clients: Vec<Client> = (0..10).map(|_| d.client()).collect();
    std::thread::scope(|scope| {
        for i in 0..50i64 {
            let client = &clients[i as usize % clients.len()];
            scope.spawn(move || {
                let s = client.session().unwrap();
                s.set_input(&json!({ "id": i, "items": vec![i; 100] })).unwrap();
                s.compute("local sum = 0 for _, v in ipairs(_io.input.items) do sum = sum + v end _io.output = { id = _io.input.id, sum = sum }")
                    .unwrap();
                let out: serde_json::Value = s.get_output().unwrap();
                assert_eq!(out, json!({ "id": i, "sum": i * 100 }), "session {i}");
            });
        }
    });
}

#[test]
fn a_hundred_connections_are_served_at_once() {
    let d = Daemon::start(&[]);
    let clients: Vec<Client> = (0..100).map(|_| d.client()).collect();
    let sessions: Vec<_> = clients.iter().map(|c| c.session().unwrap()).collect();
    std::thread::scope(|scope| {
        for (i, s) in sessions.iter().enumerate() {
            scope.spawn(move || {
                assert_eq!(
                    s.compute(&format!("return {i}"))
                        .unwrap()
                        .value::<usize>(0)
                        .unwrap(),
                    i
                )
            });
        }
    });
    let stats = d.client().stats().unwrap();
    assert_eq!((stats.connections, stats.sessions), (101, 100));
}

#[test]
fn a_long_compute_streams_its_prints_and_does_not_hold_up_another_session() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let (slow, fast) = (client.session().unwrap(), client.session().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            let on_log: luapool_client::LogSink =
                Box::new(move |line: &str| tx.send(line.to_owned()).unwrap());
            let opts = ComputeOptions {
                on_log: Some(on_log),
                timeout: Some(HANG),
                ..Default::default()
            };
            slow.compute_with("print('spinning') while true do end", opts)
        });
        // The print arrives while the compute still runs...
        assert_eq!(rx.recv_timeout(HANG).unwrap(), "spinning");
        // ...and another session on the same connection is served meanwhile.
        assert_eq!(
            fast.compute("return 'fast'")
                .unwrap()
                .value::<String>(0)
                .unwrap(),
            "fast"
        );
        slow.cancel().unwrap();
        assert!(matches!(
            running.join().unwrap(),
            Err(ClientError::Compute(ComputeError::Cancelled))
        ));
    });
}

#[test]
fn sessions_naming_the_same_home_share_it_across_connections() {
    let d = Daemon::start(&[]);
    let code = "_home.count = (_home.count or 0) + 1 return _home.count";
    let (a, b) = (d.client(), d.client());
    assert_eq!(
        a.session_with_home("shared")
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
    assert_eq!(
        b.session_with_home("shared")
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        2
    );
    assert_eq!(
        b.session()
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
}

#[test]
fn a_client_that_disconnects_mid_compute_has_its_session_freed() {
    let d = Daemon::start(&[]);
    let baseline = d.tables();
    assert_eq!(baseline.1, 0);
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    let items: Vec<Value> = (0..1000).map(Value::from).collect();
    let input = Value::Map(vec![("items".into(), Value::Array(items))]);
    assert_eq!(
        raw.call(2, "set_input", vec![sid.clone(), input]),
        Answer::Ok(Value::Nil)
    );
    let opts = Value::Map(vec![("timeout_ms".into(), 60_000.into())]);
    raw.request(
        3,
        "compute",
        vec![sid, "print('running') while true do end".into(), opts],
    );
    let first = raw.next().expect("a log notification");
    assert_eq!(first[0], Value::from(2), "{first}");
    assert_eq!(first[2][2].as_str(), Some("running"));
    assert!(d.tables().0 > baseline.0);
    drop(raw);

    eventually("the session's tables are freed", || d.tables() == baseline);
    let c = d.client();
    assert_eq!(
        c.session()
            .unwrap()
            .compute("return 7")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        7
    );
}

#[test]
fn a_closed_session_is_freed_and_unknown_afterwards() {
    let d = Daemon::start(&[]);
    let baseline = d.tables();
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    assert_eq!(
        raw.call(
            2,
            "set_input",
            vec![
                sid.clone(),
                Value::Array(vec![Value::Array(vec![1.into()])])
            ]
        ),
        Answer::Ok(Value::Nil)
    );
    assert_eq!(
        raw.call(3, "session.close", vec![sid.clone()]),
        Answer::Ok(Value::Nil)
    );
    assert_eq!(
        raw.call(4, "get_output", vec![sid]),
        Answer::Err("UnknownSession".into())
    );
    eventually("the closed session's tables are freed", || {
        d.tables() == baseline
    });
}

#[test]
fn malformed_frames_get_an_error_or_a_closed_connection_and_others_are_unaffected() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let healthy = client.session().unwrap();
    healthy.set_input(&json!({ "x": 1 })).unwrap();

    let closes = |bytes: &[u8], what: &str| {
        let mut raw = d.raw();
        raw.send_bytes(bytes);
        match raw.answer(0) {
            Answer::Err(kind) => assert_eq!(kind, "BadRequest", "{what}"),
            Answer::Closed => {}
            Answer::Ok(v) => panic!("{what}: answered {v}"),
        }
        assert!(raw.closed(), "{what}");
    };
    closes(b"\xc1\xc1\xc1 garbage", "bytes that are not MessagePack");
    closes(b"hello, daemon\n", "text that is not a request");
    closes(
        &[0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        "a 4 GiB bin length prefix",
    );
    closes(
        &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x00],
        "an array declaring 4 billion items",
    );
    closes(
        &[
            0x94, 0x00, 0x01, 0xa5, b's', b't', b'a', b't', b's', 0xdb, 0x20, 0, 0, 0,
        ],
        "a 512 MiB string param",
    );
    closes(&vec![0x91; 100_000], "arrays nested 100 000 deep");

    let mut raw = d.raw();
    // Wrong types with a readable msgid: an error reply, and the connection goes on.
    raw.send(Value::Array(vec![
        0.into(),
        1.into(),
        "compute".into(),
        "not an array".into(),
    ]));
    assert_eq!(raw.answer(1), Answer::Err("BadRequest".into()));
    raw.send(Value::Array(vec![
        0.into(),
        2.into(),
        42.into(),
        Value::Array(vec![]),
    ]));
    assert_eq!(raw.answer(2), Answer::Err("BadRequest".into()));
    assert_eq!(
        raw.call(3, "set_input", vec!["abc".into(), 1.into()]),
        Answer::Err("BadRequest".into())
    );
    assert_eq!(
        raw.call(4, "launch_missiles", vec![]),
        Answer::Err("UnknownMethod".into())
    );
    assert_eq!(
        raw.call(5, "get_output", vec![999_999.into()]),
        Answer::Err("UnknownSession".into())
    );
    // Another connection's session is unknown here.
    assert_eq!(
        raw.call(6, "get_output", vec![healthy.id().into()]),
        Answer::Err("UnknownSession".into())
    );
    assert_eq!(
        raw.call(7, "compute", vec![healthy.id().into()]),
        Answer::Err("BadRequest".into())
    );
    let Answer::Ok(stats) = raw.call(8, "stats", vec![]) else {
        panic!("stats failed")
    };
    assert!(stats["workers"].as_u64() == Some(2), "{stats}");

    // The daemon lives on, and the healthy client never noticed.
    assert!(d.child_running());
    assert_eq!(
        healthy
            .compute("return _io.input.x + 1")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        2
    );
}

impl Daemon {
    fn child_running(&self) -> bool {
        // SAFETY: kill with signal 0 only checks that the process exists.
        unsafe { libc::kill(self.child.id() as libc::pid_t, 0) == 0 }
    }
}

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
    let addr = d
        .stderr()
        .lines()
        .find_map(|l| {
            l.strip_prefix("luapool: listening on tcp ")
                .map(str::to_owned)
        })
        .expect("tcp address");

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

#[test]
fn the_python_example_prints_the_output() {
    let has_msgpack = Command::new("python3")
        .args(["-c", "import msgpack"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_msgpack {
        eprintln!("skipped: python3 with the msgpack package is not installed");
        return;
    }
    let d = Daemon::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#"output: {"isAdult": true, "message": "Hello, Alice", "userId": 123}"#),
        "{stdout}"
    );
}
