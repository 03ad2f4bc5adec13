//! Hostile-tenant soak: 8 tenants share one daemon; 6 are honest, 2 send a
//! random mix of every attack of issue 10 (unread replies, queue floods,
//! session floods, over-limit options, unauthenticated TCP floods, printing
//! floods, pipelined work then a disconnect) plus runaway and memory-bomb
//! scripts, while a killer thread SIGKILLs workers (crashes). The honest
//! tenants get correct results, each request answered exactly once; the
//! daemon's peak RSS stays under [`RSS_BOUND_MIB`] (docs/faults.md).
//!
//! CI runs 300 computes; by hand:
//! `LUAPOOL_DAEMON_SOAK=20000 cargo test --release -p luapool-tests --test e2e daemon::soak -- --nocapture`.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmpv::Value;

use super::harness::{Answer, Daemon, Raw};

/// The daemon's peak RSS under the soak, in MiB (stated in docs/faults.md).
const RSS_BOUND_MIB: u64 = 256;
const HONEST: usize = 6;
/// The soak's daemon: TCP for the unauthenticated floods, short limits so
/// runaways end soon, tight bounds so the attacks reach them.
const FLAGS: &[&str] = &[
    "--tcp",
    "127.0.0.1:0",
    "--token",
    "t",
    "--timeout",
    "10",
    "--instructions",
    "20000000",
    "--memory",
    "64",
    "--max-unsent-mib",
    "4",
    "--max-queued-calls",
    "64",
    "--max-sessions-per-connection",
    "64",
];
const HOSTILE: usize = 2;

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn opts(ms: u64) -> Value {
    Value::Map(vec![("timeout_ms".into(), ms.into())])
}

/// The worker processes of the daemon (its children).
fn workers(d: &Daemon) -> Vec<u32> {
    let mut pids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", d.pid())) {
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    pids
}

/// One honest round on a raw connection: input, compute, output, pipelined;
/// each answered exactly once and correct. Returns false if the compute
/// lost its worker (killed) or met a full pool, to be tried again.
fn honest_round(raw: &mut Raw, sid: &Value, base: u32, n: i64) -> bool {
    let items: Vec<Value> = (1..=n).map(Value::from).collect();
    let input = Value::Map(vec![("items".into(), Value::Array(items))]);
    raw.request(base, "set_input", vec![sid.clone(), input]);
    raw.request(
        base + 1,
        "compute",
        vec![
            sid.clone(),
            "local s = 0 for _, v in ipairs(_io.input.items) do s = s + v end \
             print('sum', s) _io.output = { sum = s } return s"
                .into(),
        ],
    );
    raw.request(
        base + 2,
        "get_output_field",
        vec![sid.clone(), "sum".into()],
    );
    let got = raw.responses_until(Some(base + 2));
    let ids: Vec<Option<u64>> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        vec![
            Some(base as u64),
            Some(base as u64 + 1),
            Some(base as u64 + 2)
        ],
        "each request answered once, in order: {got:?}"
    );
    assert_eq!(got[0].1, Answer::Ok(Value::Nil));
    let want = n * (n + 1) / 2;
    match &got[1].1 {
        Answer::Ok(out) => {
            assert_eq!(out["values"][0].as_i64(), Some(want), "{out}");
            assert_eq!(
                out["logs"][0].as_str(),
                Some(format!("sum\t{want}").as_str())
            );
            assert_eq!(got[2].1, Answer::Ok(Value::from(want)));
            true
        }
        Answer::Err(kind) if kind == "WorkerCrashed" || kind == "Busy" => false,
        other => panic!("honest compute: {other:?}"),
    }
}

/// Kinds of attack in [`attack`].
const ATTACKS: u64 = 9;

/// Attack number `kind`; returns the computes it ran.
fn attack(d: &Daemon, tcp: &str, kind: u64) -> u64 {
    match kind % ATTACKS {
        0 => {
            // Unread replies: a 1 MiB output asked for 50 times, never read.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            raw.request(
                2,
                "compute",
                vec![sid.clone(), "_io.output = string.rep('z', 2^20)".into()],
            );
            for i in 0..50 {
                raw.request(10 + i, "get_output", vec![sid.clone()]);
            }
            std::thread::sleep(Duration::from_millis(50));
            1
        }
        1 => {
            // A queue flood behind a running compute, then a disconnect.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            raw.request(
                2,
                "compute",
                vec![sid.clone(), "while true do end".into(), opts(2000)],
            );
            let big = format!("return 1 --{}", "q".repeat(100 << 10));
            for i in 0..100 {
                raw.request(10 + i, "compute", vec![sid.clone(), big.clone().into()]);
            }
            std::thread::sleep(Duration::from_millis(20));
            1
        }
        2 => {
            // A session flood.
            let mut raw = d.raw();
            for i in 0..100 {
                raw.request(i, "session.open", vec![]);
            }
            let r = raw.response(99);
            assert_eq!(r[2]["kind"].as_str(), Some("LimitReached"));
            0
        }
        3 => {
            // Asking for more than the operator allows.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            let no_limit = Value::Map(vec![("memory".into(), 0.into())]);
            let r = raw.call(2, "compute", vec![sid, "return 1".into(), no_limit]);
            assert_eq!(r, Answer::Err("LimitReached".into()));
            0
        }
        4 => {
            // An unauthenticated TCP client claiming a huge frame.
            if let Ok(mut s) = TcpStream::connect(tcp) {
                use std::io::Write;
                let mut frame = vec![
                    0x94, 0x00, 0x01, 0xa4, b'a', b'u', b't', b'h', 0x91, 0xda, 0x40, 0x00,
                ];
                frame.extend(std::iter::repeat_n(b'x', 1 << 14));
                let _ = s.write_all(&frame);
                let mut raw = Raw::tcp(s);
                assert!(raw.closed());
            }
            0
        }
        5 => {
            // A runaway and a memory bomb.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            // (The killer thread may hit either: WorkerCrashed.)
            let r = raw.call(2, "compute", vec![sid.clone(), "while true do end".into()]);
            assert!(
                r == Answer::Err("Timeout".into()) || r == Answer::Err("WorkerCrashed".into()),
                "{r:?}"
            );
            let r = raw.call(
                3,
                "compute",
                vec![sid, "local t = {} for i = 1, 1e9 do t[i] = i end".into()],
            );
            assert!(
                r == Answer::Err("MemoryLimit".into()) || r == Answer::Err("WorkerCrashed".into()),
                "{r:?}"
            );
            2
        }
        6 => {
            // Printing flat out to a client that does not read, then gone.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            raw.request(
                2,
                "compute",
                vec![
                    sid,
                    "while true do print(string.rep('p', 4000)) end".into(),
                    opts(2000),
                ],
            );
            std::thread::sleep(Duration::from_millis(100));
            1
        }
        7 => {
            // Pipelined large inputs, a compute and a close, then gone.
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            let blob: Value = "b".repeat(2 << 20).into();
            for i in 0..8 {
                raw.request(10 + i, "set_input", vec![sid.clone(), blob.clone()]);
            }
            raw.request(20, "compute", vec![sid.clone(), "return #_io.input".into()]);
            raw.request(21, "session.close", vec![sid]);
            1
        }
        _ => {
            // Bytes that are not MessagePack.
            let mut raw = d.raw();
            raw.send_bytes(b"\xc1\xc1 not a request");
            assert!(raw.closed());
            0
        }
    }
}

#[test]
fn honest_tenants_get_correct_answers_while_hostile_ones_attack() {
    let total: u64 = std::env::var("LUAPOOL_DAEMON_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let d = Daemon::start(FLAGS);
    let tcp = d.tcp_addr();
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let (honest_rounds, attacks, kills) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..HONEST {
            let (d, done, honest_rounds) = (&d, &done, &honest_rounds);
            s.spawn(move || {
                let mut raw = d.raw();
                let sid = raw.open(1, None);
                let mut rng = Rng(0x9e37_79b9 + t as u64);
                let mut base = 10;
                while done.load(Ordering::Relaxed) < total {
                    let n = (rng.next() % 500) as i64 + 1;
                    if honest_round(&mut raw, &sid, base, n) {
                        honest_rounds.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    base += 3;
                }
            });
        }
        for t in 0..HOSTILE {
            let (d, done, attacks, tcp) = (&d, &done, &attacks, tcp.as_str());
            s.spawn(move || {
                let mut rng = Rng(0xdead_beef + t as u64);
                while done.load(Ordering::Relaxed) < total {
                    done.fetch_add(attack(d, tcp, rng.next()), Ordering::Relaxed);
                    attacks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let (d, stop, kills) = (&d, &stop, &kills);
        let killer = s.spawn(move || {
            let mut rng = Rng(7);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1500));
                let w = workers(d);
                if let Some(&pid) = w.get((rng.next() % 4) as usize) {
                    // SAFETY: kill(2) on a child of our child, the daemon.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    kills.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        while done.load(Ordering::Relaxed) < total {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        killer.join().unwrap();
    });
    let peak = d.status("VmHWM") / 1024;
    eprintln!(
        "daemon soak: {} computes in {:.1} s ({} honest rounds correct, {} attacks, {} workers killed); daemon peak RSS {peak} MiB, threads {}",
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        honest_rounds.load(Ordering::Relaxed),
        attacks.load(Ordering::Relaxed),
        kills.load(Ordering::Relaxed),
        d.status("Threads"),
    );
    assert!(honest_rounds.load(Ordering::Relaxed) > 0);
    assert!(peak < RSS_BOUND_MIB, "daemon peak RSS {peak} MiB");
    // Everything the attackers left behind is freed; the daemon still serves.
    super::harness::eventually("the attackers' sessions are freed", || {
        d.operator().stats().unwrap().sessions == 0
    });
    d.workers_are_free();
}

#[test]
fn every_attack_leaves_nothing_behind_when_its_client_is_gone() {
    let d = Daemon::start(FLAGS);
    let tcp = d.tcp_addr();
    let baseline = d.tables().0;
    for kind in 0..ATTACKS {
        attack(&d, &tcp, kind);
        super::harness::eventually(&format!("attack {kind} leaves no session"), || {
            d.tables() == (baseline, 0)
        });
    }
    d.workers_are_free();
}
