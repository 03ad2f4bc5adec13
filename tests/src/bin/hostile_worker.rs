//! A hostile luapool worker, for the fault tests (`tests/tests/faults.rs`).
//!
//! It is started by a real pool in place of `luapool-worker` (through a
//! wrapper script that adds `--attack NAME`), opens the ring as a worker
//! does, says it is ready, and then answers every `Start` with the attack:
//! raw garbage, forged frame headers, another session's table ids, requests
//! it never reads the answers of, messages out of turn, a scribbled region.
//!
//! ```text
//! hostile_worker --attack NAME [--victim-file PATH] --ring OS_ID [--max-memory BYTES]
//! ```
//!
//! `--victim-file` names a file holding the id of a table of another session
//! (written by the test once that session exists; read at each compute).
//!
//! Tests start it through a symlink named `hostile-NAME` (no wrapper script:
//! writing an executable while other test threads fork risks `ETXTBSY`):
//! without `--attack`, the attack is the link's name after `hostile-`, and
//! the victim file is `victim` next to the link.
//!
//! Attacks that probe the supervisor (`forge`, `bad-requests`, `pipelined`)
//! end the compute normally and return, as a string, what the supervisor
//! answered, so a test sees exactly what an attacker would have learnt.
//!
//! The `confined-*` attacks (`open`, `socket`, `execve`) apply the real
//! worker's confinement (`luapool_worker::confine`) before saying ready,
//! then try that system call mid-compute, as a script that escaped the Lua
//! sandbox would: the seccomp filter kills the process, or the call fails
//! and the compute returns `blocked: …` (`escaped: …` if it worked).

use std::process::ExitCode;
use std::time::Duration;

use luapool_protocol::{
    decode, encode, Endpoint, FrameHeader, Key, Literal, Outcome, Reply, Request, Start, TableId,
    ToSupervisor, ToWorker, Value, Write,
};

fn main() -> ExitCode {
    let mut attack = String::new();
    let mut victim_file = None;
    let mut ring_id = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--attack" => attack = args.next().unwrap_or_default(),
            "--victim-file" => victim_file = args.next(),
            "--ring" => ring_id = args.next(),
            "--max-memory" => {
                args.next();
            }
            other => {
                eprintln!("hostile_worker: unknown argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    let me = std::path::PathBuf::from(std::env::args().next().unwrap_or_default());
    if attack.is_empty() {
        let name = me
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        attack = name
            .strip_prefix("hostile-")
            .unwrap_or("honest")
            .to_string();
    }
    if victim_file.is_none() {
        victim_file = me
            .parent()
            .map(|d| d.join("victim").to_string_lossy().into_owned());
    }
    if attack == "no-ready" {
        return ExitCode::from(1);
    }
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory-safety preconditions.
    let parent = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::getppid()
    };
    let Some(ring_id) = ring_id else {
        return ExitCode::from(2);
    };
    let mut ring = match Endpoint::open(&ring_id) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hostile_worker: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: getppid has no preconditions.
    ring.set_peer_alive(Box::new(move || unsafe { libc::getppid() } == parent));
    if attack.starts_with("confined-") {
        // As the real worker does after start-up (worker/src/confine.rs).
        if luapool_worker::confine::confine().is_err() {
            return ExitCode::from(4);
        }
    }
    let w = Hostile {
        ring,
        ring_id,
        victim_file,
    };
    if w.send(&ToSupervisor::Ready {
        pid: std::process::id(),
    })
    .is_err()
    {
        return ExitCode::from(3);
    }
    if attack == "ready-then-exit" {
        return ExitCode::from(1);
    }
    loop {
        match w.recv() {
            Some(ToWorker::Start(start)) => {
                if !w.attack(&attack, &start) {
                    return ExitCode::from(1);
                }
            }
            Some(ToWorker::Shutdown) => return ExitCode::SUCCESS,
            Some(ToWorker::Reply(_)) | None => return ExitCode::from(3),
        }
    }
}

/// What a confined attack reports when the call came back: `escaped` if it
/// worked, else the error.
fn outcome(call: &str, rc: libc::c_int) -> String {
    if rc >= 0 {
        format!("escaped: {call} returned {rc}")
    } else {
        format!("blocked: {call}: {}", std::io::Error::last_os_error())
    }
}

struct Hostile {
    ring: Endpoint,
    ring_id: String,
    victim_file: Option<String>,
}

impl Hostile {
    /// The victim's table id, as the test wrote it (0 if none).
    fn victim(&self) -> TableId {
        let text = self
            .victim_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok());
        TableId::from_raw(text.and_then(|t| t.trim().parse().ok()).unwrap_or(0))
    }

    fn send(&self, msg: &ToSupervisor) -> Result<(), luapool_protocol::RingError> {
        self.ring.send(&encode(msg))
    }

    fn recv(&self) -> Option<ToWorker> {
        let mut buf = Vec::new();
        self.ring.recv(&mut buf, None).ok()?;
        decode(&buf).ok()
    }

    /// One request, one reply; the reply rendered as text.
    fn ask(&self, req: Request) -> String {
        if self.send(&ToSupervisor::Request(req)).is_err() {
            return "send failed".into();
        }
        match self.recv() {
            Some(ToWorker::Reply(r)) => render(&r),
            other => format!("unexpected {other:?}"),
        }
    }

    fn done(&self, text: String) -> bool {
        let lit = Literal::Value(Value::Str(text.into_bytes()));
        self.send(&ToSupervisor::Done(Outcome::Returned(vec![lit])))
            .is_ok()
    }

    /// Runs the attack on one compute; false ends the process.
    fn attack(&self, attack: &str, start: &Start) -> bool {
        match attack {
            "honest" => self.done("ok".into()),
            // Confined, then mid-compute: what a script that escaped the
            // Lua sandbox would try. Killed by seccomp, or told no.
            "confined-open" => {
                // SAFETY: open with a constant path; the result is only compared.
                let fd = unsafe { libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY) };
                self.done(outcome("open", fd))
            }
            "confined-socket" => {
                // SAFETY: socket with constant arguments.
                let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
                self.done(outcome("socket", fd))
            }
            "confined-execve" => {
                let argv = [c"sh".as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                // SAFETY: NUL-terminated argv and envp of constant strings.
                let r = unsafe { libc::execve(c"/bin/sh".as_ptr(), argv.as_ptr(), envp.as_ptr()) };
                self.done(outcome("execve", r))
            }
            // Bytes that are not frames at all.
            "garbage" => {
                let junk: Vec<u8> = (0..200u32)
                    .map(|i| (i.wrapping_mul(97) ^ 0xa5) as u8)
                    .collect();
                let _ = self.ring.send_raw(&junk);
                park()
            }
            // A well-framed message that is not MessagePack of any message.
            "garbage-message" => {
                let _ = self.ring.send(&[0xc1, 0xff, 0x00, 0x13, 0x37]);
                park()
            }
            // A frame header announcing a message of 2^62 bytes.
            "huge-frame" => {
                let h = FrameHeader {
                    len: 8,
                    flags: FrameHeader::MORE,
                    total: 1 << 62,
                };
                let mut raw = h.encode().to_vec();
                raw.extend_from_slice(&[0u8; 8]);
                let _ = self.ring.send_raw(&raw);
                park()
            }
            // A 200 MB message (under the supervisor's limit) of which only
            // the first frame ever arrives.
            "trickle" => {
                let h = FrameHeader {
                    len: 1024,
                    flags: FrameHeader::MORE,
                    total: 200 << 20,
                };
                let mut raw = h.encode().to_vec();
                raw.extend_from_slice(&[0x92; 1024]);
                let _ = self.ring.send_raw(&raw);
                park()
            }
            // MessagePack declaring 4 GiB of bytes and 4 billion elements in
            // a few bytes: decoding must not allocate what is declared.
            "huge-lengths" => {
                let mut msg = vec![0x81, 0xa7]; // map of 1, key "Request"
                msg.extend_from_slice(b"Request");
                msg.extend_from_slice(&[0x81, 0xa5]); // map of 1, key "Write"
                msg.extend_from_slice(b"Write");
                msg.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]); // array32 of 2^32-1 writes
                msg.extend_from_slice(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]); // bin32 of 4 GiB
                let _ = self.ring.send(&msg);
                park()
            }
            // A key no Lua table can have.
            "nan-key" => {
                let req = Request::Get {
                    table: start.io,
                    key: Key::Float(f64::NAN.to_bits()),
                };
                let _ = self.send(&ToSupervisor::Request(req));
                park()
            }
            // 100 000 nested arrays.
            "deep-nesting" => {
                let mut msg = vec![0x91; 100_000];
                msg.push(0xc0);
                let _ = self.ring.send(&msg);
                park()
            }
            // Another session's tables, by id: every request kind, plus a
            // sweep of every slot of the victim's arena and of the first
            // arenas. Returns what came back.
            "forge" => {
                let mut seen = Vec::new();
                let victim = self.victim();
                for req in forged_requests(victim, start.io) {
                    seen.push(self.ask(req));
                }
                let arena = victim.arena();
                for slot in 0..256 {
                    seen.push(self.ask(Request::Get {
                        table: TableId::new(arena, slot),
                        key: Key::str("input"),
                    }));
                }
                for arena in 0..64 {
                    for slot in 0..8 {
                        let id = TableId::new(arena, slot);
                        if arena != start.io.arena() && arena != start.home.arena() {
                            seen.push(self.ask(Request::Len { table: id }));
                        }
                    }
                }
                self.done(seen.join("\n"))
            }
            // A result that names the victim's table.
            "forge-result" => {
                let lit = Literal::Table {
                    array: vec![Literal::Value(Value::Table(self.victim()))],
                    hash: Vec::new(),
                };
                self.send(&ToSupervisor::Done(Outcome::Returned(vec![lit])))
                    .is_ok()
            }
            // Edge values in requests on the compute's own tables.
            "bad-requests" => {
                let io = start.io;
                let reqs = vec![
                    Request::GetRange {
                        table: io,
                        start: i64::MAX - 1,
                        count: u32::MAX,
                    },
                    Request::GetRange {
                        table: io,
                        start: i64::MIN,
                        count: u32::MAX,
                    },
                    Request::Next {
                        table: io,
                        after: Some(Key::str("no such key")),
                        limit: u32::MAX,
                    },
                    Request::Next {
                        table: io,
                        after: None,
                        limit: 0,
                    },
                    Request::Write(vec![Write {
                        table: io,
                        key: Key::str("input"),
                        value: Literal::Value(Value::Str(b"overwritten".to_vec())),
                    }]),
                    Request::Write(vec![Write {
                        table: io,
                        key: Key::str("self"),
                        value: Literal::Value(Value::Table(io)),
                    }]),
                ];
                let seen: Vec<String> = reqs.into_iter().map(|r| self.ask(r)).collect();
                self.done(seen.join("\n"))
            }
            // Three requests before reading any reply: answered in order.
            "pipelined" => {
                for key in ["input", "meta", "output"] {
                    let req = Request::Get {
                        table: start.io,
                        key: Key::str(key),
                    };
                    if self.send(&ToSupervisor::Request(req)).is_err() {
                        return false;
                    }
                }
                let seen: Vec<String> = (0..3)
                    .map(|_| self.recv().map_or("none".into(), |m| format!("{m:?}")))
                    .collect();
                self.done(seen.join("\n"))
            }
            // Requests without ever reading a reply: the supervisor's ring to
            // us fills and its send must give up at the deadline.
            "never-drain" => loop {
                if self
                    .send(&ToSupervisor::Request(Request::Len { table: start.io }))
                    .is_err()
                {
                    return park();
                }
            },
            // Says nothing at all.
            "silent" => park(),
            // A Ready in the middle of a compute.
            "ready-mid-compute" => {
                let _ = self.send(&ToSupervisor::Ready {
                    pid: std::process::id(),
                });
                park()
            }
            // Finishes, then keeps talking while idle.
            "unsolicited" => {
                let ok = self.done("ok".into());
                std::thread::sleep(Duration::from_millis(20));
                let _ = self.send(&ToSupervisor::Done(Outcome::Returned(Vec::new())));
                ok
            }
            // 20 000 log lines of 1 KiB, then a result.
            "log-flood" => {
                let line = vec![b'x'; 1024];
                for _ in 0..20_000 {
                    if self.send(&ToSupervisor::Log(line.clone())).is_err() {
                        return false;
                    }
                }
                self.done("flooded".into())
            }
            "exit" => false,
            // Overwrites the whole shared region, header and counters included.
            "scribble" => {
                scribble(&self.ring_id);
                park()
            }
            other => {
                eprintln!("hostile_worker: unknown attack {other:?}");
                false
            }
        }
    }
}

/// Every request kind, aimed at `victim`, plus writes that try to copy it
/// into our own `_io` (`own`).
fn forged_requests(victim: TableId, own: TableId) -> Vec<Request> {
    let steal = |value| {
        Request::Write(vec![Write {
            table: own,
            key: Key::str("stolen"),
            value,
        }])
    };
    vec![
        Request::Get {
            table: victim,
            key: Key::str("input"),
        },
        Request::GetRange {
            table: victim,
            start: 1,
            count: 100,
        },
        Request::Len { table: victim },
        Request::Next {
            table: victim,
            after: None,
            limit: 100,
        },
        Request::Write(vec![Write {
            table: victim,
            key: Key::str("input"),
            value: Literal::Value(Value::Str(b"defaced".to_vec())),
        }]),
        steal(Literal::Value(Value::Table(victim))),
        steal(Literal::Table {
            array: vec![Literal::Value(Value::Table(victim))],
            hash: vec![(Key::str("deep"), Literal::Value(Value::Table(victim)))],
        }),
    ]
}

fn render(r: &Reply) -> String {
    format!("{r:?}")
}

/// Waits until the supervisor kills us (or goes away).
fn park() -> bool {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Maps the region by name and fills it with pseudo-random bytes.
fn scribble(os_id: &str) {
    let Ok(name) = std::ffi::CString::new(os_id) else {
        return;
    };
    let len = luapool_protocol::REGION_SIZE;
    // SAFETY: shm_open and mmap are called with valid arguments; the mapping is
    // checked before use and is exactly `len` bytes; we write only inside it.
    // The supervisor treats these bytes as hostile: that is the point.
    unsafe {
        let fd = libc::shm_open(name.as_ptr(), libc::O_RDWR, 0);
        if fd < 0 {
            return;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        libc::close(fd);
        if p == libc::MAP_FAILED {
            return;
        }
        let base = p.cast::<u8>();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..8 {
            for i in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                base.add(i).write_volatile(x as u8);
            }
            if round == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
