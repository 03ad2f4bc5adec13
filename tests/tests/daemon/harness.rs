//! The harness: a `luapool serve` child process per test, and a raw
//! MessagePack-RPC connection for what the client library would never send.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use luapool_client::Client;

pub use crate::common::{eventually, luapool_bin, HANG};
use rmpv::Value;

pub fn fresh_socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("luapool-t{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A `luapool serve` child process; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    /// The operator's socket: `stats` there covers the whole daemon.
    pub operator: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// A daemon with two workers (unless `extra` says `--workers`) and the
    /// flags in `extra`.
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_at(fresh_socket_path(), extra)
    }

    pub fn start_at(socket: PathBuf, extra: &[&str]) -> Daemon {
        let operator = socket.with_extension("op.sock");
        let mut child = Command::new(luapool_bin())
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--operator-socket")
            .arg(&operator)
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "2"][..]
            })
            // Tests ask for long computes (60 s) that they then stop.
            .args(if extra.contains(&"--max-timeout") {
                &[][..]
            } else {
                &["--max-timeout", "120"][..]
            })
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
            operator,
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

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect")
    }

    pub fn raw(&self) -> Raw {
        Raw::new(UnixStream::connect(&self.socket).expect("connect"))
    }

    /// A client on the operator's socket.
    pub fn operator(&self) -> Client {
        Client::connect(&self.operator).expect("connect to the operator socket")
    }

    /// Tables in the whole store and sessions open in the whole daemon.
    pub fn tables(&self) -> (usize, usize) {
        let s = self.operator().stats().expect("stats");
        (s.store.tables, s.sessions)
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
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
        let _ = std::fs::remove_file(&self.operator);
    }
}

/// A raw MessagePack-RPC connection.
pub struct Raw {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
    /// Responses read while waiting for another msgid.
    early: Vec<Vec<Value>>,
}

/// What came back for a request.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Ok(Value),
    Err(String),
    Closed,
}

impl Raw {
    pub fn new(s: UnixStream) -> Raw {
        s.set_read_timeout(Some(HANG)).unwrap();
        Raw {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
            early: Vec::new(),
        }
    }

    pub fn tcp(s: TcpStream) -> Raw {
        s.set_read_timeout(Some(HANG)).unwrap();
        Raw {
            reader: BufReader::new(Box::new(s.try_clone().unwrap())),
            writer: Box::new(s),
            early: Vec::new(),
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        // The daemon may already have closed the connection: that is an answer too.
        let _ = self.writer.write_all(bytes);
    }

    pub fn send(&mut self, msg: Value) {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &msg).unwrap();
        self.send_bytes(&buf);
    }

    pub fn request(&mut self, msgid: u32, method: &str, params: Vec<Value>) {
        self.send(Value::Array(vec![
            0.into(),
            msgid.into(),
            method.into(),
            Value::Array(params),
        ]));
    }

    /// The next message, or None at end of stream.
    pub fn next(&mut self) -> Option<Value> {
        rmpv::decode::read_value(&mut self.reader).ok()
    }

    /// The answer to `msgid`, skipping notifications; an error reply with a
    /// nil msgid (the daemon rejecting the stream) counts as an answer too.
    pub fn answer(&mut self, msgid: u32) -> Answer {
        let mine = |m: &Vec<Value>| m[1] == Value::from(msgid) || m[1].is_nil();
        if let Some(i) = self.early.iter().position(mine) {
            return Self::answer_of(&self.early.remove(i));
        }
        while let Some(msg) = self.next() {
            let Value::Array(m) = msg else {
                panic!("not an array: {msg}")
            };
            if m[0] == Value::from(2) {
                continue;
            }
            assert_eq!(m.len(), 4, "{m:?}");
            if mine(&m) {
                return Self::answer_of(&m);
            }
            self.early.push(m);
        }
        Answer::Closed
    }

    fn answer_of(m: &[Value]) -> Answer {
        match &m[2] {
            Value::Nil => Answer::Ok(m[3].clone()),
            e => Answer::Err(e["kind"].as_str().expect("error kind").to_owned()),
        }
    }

    /// Reads until the daemon closes the connection.
    pub fn closed(&mut self) -> bool {
        while self.next().is_some() {}
        true
    }

    pub fn call(&mut self, msgid: u32, method: &str, params: Vec<Value>) -> Answer {
        self.request(msgid, method, params);
        self.answer(msgid)
    }
}

impl Daemon {
    pub fn child_running(&self) -> bool {
        // SAFETY: kill with signal 0 only checks that the process exists.
        unsafe { libc::kill(self.child.id() as libc::pid_t, 0) == 0 }
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A line of the daemon's /proc status, in kB (`VmRSS`, `VmHWM`) or a count (`Threads`).
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the daemon's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in the daemon's status"))
    }

    /// Both workers answer a trivial compute: none is left busy.
    pub fn workers_are_free(&self) {
        let c = self.client();
        let (a, b) = (c.session().unwrap(), c.session().unwrap());
        std::thread::scope(|s| {
            let ta = s.spawn(|| a.compute("return 1").map(|o| o.value::<i64>(0).unwrap()));
            let tb = s.spawn(|| b.compute("return 2").map(|o| o.value::<i64>(0).unwrap()));
            assert_eq!(ta.join().unwrap().unwrap(), 1);
            assert_eq!(tb.join().unwrap().unwrap(), 2);
        });
    }
}

impl Raw {
    /// Every response until the connection closes or `until` has been
    /// answered: (msgid, answer) in arrival order; notifications skipped.
    pub fn responses_until(&mut self, until: Option<u32>) -> Vec<(Option<u64>, Answer)> {
        let mut got: Vec<(Option<u64>, Answer)> = self
            .early
            .drain(..)
            .map(|m| (m[1].as_u64(), Self::answer_of(&m)))
            .collect();
        if until.is_some_and(|u| got.iter().any(|(id, _)| *id == Some(u64::from(u)))) {
            return got;
        }
        while let Some(msg) = self.next() {
            let Value::Array(m) = msg else {
                panic!("not an array: {msg}")
            };
            if m[0] == Value::from(2) {
                continue;
            }
            let id = m[1].as_u64();
            got.push((id, Self::answer_of(&m)));
            if until.is_some_and(|u| id == Some(u64::from(u))) {
                break;
            }
        }
        got
    }

    /// Opens a session (optionally on a home) and returns its id.
    pub fn open(&mut self, msgid: u32, home: Option<&str>) -> Value {
        let params = home.map(|h| vec![h.into()]).unwrap_or_default();
        match self.call(msgid, "session.open", params) {
            Answer::Ok(sid) => sid,
            other => panic!("session.open: {other:?}"),
        }
    }
}

impl Raw {
    /// The whole response to `msgid` (`[1, msgid, error, result]`), skipping
    /// notifications and keeping other responses for later.
    pub fn response(&mut self, msgid: u32) -> Vec<Value> {
        if let Some(i) = self.early.iter().position(|m| m[1] == Value::from(msgid)) {
            return self.early.remove(i);
        }
        while let Some(msg) = self.next() {
            let Value::Array(m) = msg else {
                panic!("not an array: {msg}")
            };
            if m[0] == Value::from(2) {
                continue;
            }
            if m[1] == Value::from(msgid) {
                return m;
            }
            self.early.push(m);
        }
        panic!("the connection closed before the response to {msgid}")
    }

    /// The `limit` an error response names, with its `value`.
    pub fn limit_of(response: &[Value]) -> (String, u64) {
        let e = &response[2];
        (
            e["limit"].as_str().expect("a limit name").to_owned(),
            e["value"].as_u64().expect("a limit value"),
        )
    }
}

impl Daemon {
    /// The TCP address the daemon said it listens on (`--tcp`).
    pub fn tcp_addr(&self) -> String {
        self.stderr()
            .lines()
            .find_map(|l| {
                l.strip_prefix("luapool: listening on tcp ")
                    .map(str::to_owned)
            })
            .expect("tcp address")
    }
}
