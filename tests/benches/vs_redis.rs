//! `cargo bench -p luapool-tests --bench vs_redis`: trivial computes
//! through the daemon against Redis `EVALSHA`, side by side in one run
//! (README, "Performance").
//!
//! Both servers listen on Unix sockets; both run `return 1`: luapool by
//! digest (`script.load`, then `compute` with the digest), Redis through
//! `EVALSHA` of the same script. Each client connection has one request in
//! flight, as `redis-benchmark` does by default: luapool is driven by the
//! same kind of client (one thread, an event loop over all connections),
//! Redis by `redis-benchmark` itself. With 1, 4 and 16 connections, each
//! side runs the same number of computes, alternating so both see the same
//! machine (and one connection pipelining 32 requests, `redis-benchmark -P
//! 32`); the table gives computes per second, the median latency (p50)
//! and luapool's ratios to Redis.
//!
//! Needs `cargo build --release --workspace` (the daemon is the release
//! `luapool`), and `redis-server` and `redis-benchmark` on the PATH
//! (`apt-get install redis-server`; without them only luapool's rows run).
//! `LUAPOOL_BENCH_COMPUTES` sets the computes per row (default 100 000),
//! `LUAPOOL_BENCH_ROUNDS` how many times each row runs (default 3; the
//! table gives the median round), `LUAPOOL_BENCH_ROW=CONNSxDEPTH` (`1x1`,
//! `4x1`, `16x1`, `1x32`) one row only, `LUAPOOL_BENCH_BIN` another `luapool`
//! binary to compare (the worker next to it is used; the daemon has 2
//! workers, the machine's cores). `LUAPOOL_BENCH_STATS=1` also
//! prints where the time goes: the daemon's CPU time and context switches
//! per compute by thread (event loop `luapool`, `luapool-slot-*`, the
//! `worker` processes) and the client's, and the daemon's own wait and run
//! medians.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use luapool_protocol::rpc::{ComputeOptions, Request};
use luapool_protocol::stream::{FrameScanner, Scan};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

#[path = "common/daemon.rs"]
mod daemon;
use daemon::Daemon;

const SCRIPT: &str = "return 1";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A child process killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_socket(path: &Path) {
    let end = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(path).is_err() {
        assert!(
            Instant::now() < end,
            "nothing listens on {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_redis(dir: &Path) -> Option<Server> {
    Command::new("redis-benchmark")
        .arg("--version")
        .output()
        .ok()?;
    let child = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no"])
        .arg("--unixsocket")
        .arg(dir.join("redis.sock"))
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    wait_for_socket(&dir.join("redis.sock"));
    Some(server)
}

/// One blocking MessagePack-RPC call (setup only); its result.
fn call(s: &mut UnixStream, req: &Request<'_>) -> rmpv::Value {
    let mut frame = Vec::new();
    req.encode(1, &mut frame);
    s.write_all(&frame).expect("send");
    let msg = rmpv::decode::read_value(s).expect("a reply");
    assert_eq!(msg[2], rmpv::Value::Nil, "{msg}");
    msg[3].clone()
}

/// A connection of the load generator, with its session and the
/// `compute` request it sends again and again.
struct Conn {
    stream: UnixStream,
    frame: Vec<u8>,
    buf: Vec<u8>,
    scanner: FrameScanner,
    /// When each request in flight was sent, oldest first (a session's
    /// replies come in order).
    sent: std::collections::VecDeque<Instant>,
}

impl Conn {
    /// Connects, loads the script (a digest is the connection's own) and
    /// opens a session.
    fn open(socket: &Path) -> (Conn, String) {
        let mut s = UnixStream::connect(socket).expect("connect");
        let digest = call(
            &mut s,
            &Request::ScriptLoad {
                code: SCRIPT.into(),
            },
        );
        let digest = digest.as_str().expect("a digest").to_string();
        let sid = call(&mut s, &Request::SessionOpen { home: None });
        let req = Request::Compute {
            sid: sid.as_u64().expect("a session id"),
            code: digest.clone(),
            options: ComputeOptions::default(),
        };
        let mut frame = Vec::new();
        req.encode(7, &mut frame);
        s.set_nonblocking(true).expect("nonblocking");
        let conn = Conn {
            stream: s,
            frame,
            buf: Vec::with_capacity(4096),
            scanner: FrameScanner::new(1 << 20),
            sent: Default::default(),
        };
        (conn, digest)
    }

    fn send(&mut self) {
        self.sent.push_back(Instant::now());
        self.stream.write_all(&self.frame).expect("send");
    }
}

/// Runs `total` computes over `conns` connections, `depth` requests in
/// flight on each (pipelined on its one session), from this one thread:
/// computes per second and each compute's latency in µs, sorted.
fn luapool_run(socket: &Path, conns: usize, depth: usize, total: usize) -> (f64, Vec<u32>) {
    let mut poll = Poll::new().expect("poll");
    let mut cs: Vec<Conn> = (0..conns).map(|_| Conn::open(socket).0).collect();
    for (i, c) in cs.iter().enumerate() {
        let fd = c.stream.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
            .expect("register");
    }
    let mut lat = Vec::with_capacity(total);
    let mut events = Events::with_capacity(64);
    let mut chunk = vec![0u8; 4096];
    let t = Instant::now();
    let mut started = 0;
    for _ in 0..depth {
        for c in cs.iter_mut() {
            if started < total {
                c.send();
                started += 1;
            }
        }
    }
    while lat.len() < total {
        poll.poll(&mut events, None).expect("poll");
        for ev in events.iter() {
            let c = &mut cs[ev.token().0];
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => panic!("the daemon closed a connection"),
                    Ok(n) => {
                        c.buf.extend_from_slice(&chunk[..n]);
                        if n < chunk.len() {
                            break; // all there was (a new edge brings more)
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            while let Scan::Complete(len) = c.scanner.scan(&c.buf) {
                // [1, 7, nil, result]: anything else is an error reply.
                assert_eq!(c.buf[..4], [0x94, 0x01, 0x07, 0xc0], "an error reply");
                c.buf.drain(..len);
                c.scanner.reset();
                let sent = c.sent.pop_front().expect("a request in flight");
                lat.push(sent.elapsed().as_micros() as u32);
                if started < total {
                    started += 1;
                    c.send();
                }
            }
        }
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    lat.sort_unstable();
    (rate, lat)
}

/// `SCRIPT LOAD` over RESP; the digest.
fn redis_load(socket: &Path) -> String {
    let mut s = BufReader::new(UnixStream::connect(socket).expect("connect to redis"));
    let cmd = format!(
        "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n${}\r\n{SCRIPT}\r\n",
        SCRIPT.len()
    );
    s.get_mut().write_all(cmd.as_bytes()).expect("send");
    let mut line = String::new();
    s.read_line(&mut line).expect("reply");
    line.clear();
    s.read_line(&mut line).expect("reply");
    line.trim().to_string()
}

/// `redis-benchmark` running `EVALSHA digest 0` (`-P depth`): (requests per
/// second, p50 µs).
fn redis_run(
    socket: &Path,
    conns: usize,
    depth: usize,
    total: usize,
    sha: &str,
) -> Option<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .arg("-s")
        .arg(socket)
        .args(["-c", &conns.to_string(), "-n", &total.to_string(), "--csv"])
        .args(["-P", &depth.to_string()])
        .args(["EVALSHA", sha, "0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with("\"EVALSHA"))?;
    // "test", rps, avg, min, p50, p95, p99, max (ms)
    let fields: Vec<f64> = row
        .split(',')
        .skip(1)
        .filter_map(|f| f.trim_matches('"').parse().ok())
        .collect();
    Some((*fields.first()?, fields.get(3)? * 1e3))
}

/// CPU time (µs) and context switches of a thread or process at `dir`
/// (`/proc/PID` or `/proc/PID/task/TID`).
fn usage(dir: &Path) -> [u64; 2] {
    let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
    // After `(comm) `: utime and stime are the 12th and 13th fields, in
    // clock ticks of 10 ms.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let cpu = (f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) * 10_000;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    let switches = status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    [cpu, switches]
}

type Usage = Vec<(String, [u64; 2])>;

/// [`usage`] of each thread of process `pid` by name (numbers dropped, so
/// the slots add up), and of its children (`with_children`) as `worker`.
fn usage_by_thread(pid: u32, with_children: bool) -> Usage {
    let mut out: Usage = Vec::new();
    let mut add = |name: &str, u: [u64; 2]| match out.iter_mut().find(|(n, _)| n == name) {
        Some(e) => (e.1[0], e.1[1]) = (e.1[0] + u[0], e.1[1] + u[1]),
        None => out.push((name.to_string(), u)),
    };
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for t in tasks.flatten() {
        let dir = t.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        add(
            comm.trim().trim_end_matches(|c: char| c.is_ascii_digit()),
            usage(&dir),
        );
        if with_children {
            let children = std::fs::read_to_string(dir.join("children")).unwrap_or_default();
            for child in children.split_whitespace() {
                add("worker", usage(Path::new(&format!("/proc/{child}"))));
            }
        }
    }
    out
}

/// CPU µs and context switches per compute of each part, between two readings.
fn per_compute(before: &Usage, after: &Usage, computes: usize) -> String {
    let parts: Vec<String> = after
        .iter()
        .map(|(name, a)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or([0, 0], |e| e.1);
            let per = |i: usize| a[i].saturating_sub(b[i]) as f64 / computes as f64;
            format!("{name} {:.1} µs, {:.2} switches", per(0), per(1))
        })
        .collect();
    parts.join("; ")
}

/// The daemon's own wait and run medians so far (µs).
fn daemon_times(operator: &Path) -> String {
    let mut s = UnixStream::connect(operator).expect("operator socket");
    let stats = call(&mut s, &Request::Stats);
    let p50 = |what: &str| stats[what]["p50_us"].as_u64().unwrap_or(0);
    format!(
        "wait p50 {} µs (request read → worker starts), run p50 {} µs (worker start → result)",
        p50("wait"),
        p50("run")
    )
}

fn median(mut xs: Vec<(f64, f64)>) -> (f64, f64) {
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    xs[xs.len() / 2]
}

fn main() {
    let total = env("LUAPOOL_BENCH_COMPUTES", 100_000);
    let rounds = env("LUAPOOL_BENCH_ROUNDS", 3).max(1);
    let stats = std::env::var("LUAPOOL_BENCH_STATS").is_ok();
    let dir = std::env::temp_dir().join(format!("luapool-vs-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let operator = dir.join("operator.sock");
    let (daemon, _) = Daemon::start(
        "vs-redis",
        &["--operator-socket", operator.to_str().unwrap()],
    );
    let socket = daemon.socket.clone();
    let digest = Conn::open(&socket).1;
    let redis = start_redis(&dir);
    let sha = redis.as_ref().map(|_| redis_load(&dir.join("redis.sock")));
    match &sha {
        Some(sha) => assert_eq!(*sha, digest, "luapool's digest is Redis's SHA-1"),
        None => println!("(redis-server or redis-benchmark not found: luapool rows only)"),
    }
    println!(
        "`return 1`, {total} computes per row, median of {rounds} rounds; \
         luapool by digest, Redis EVALSHA (redis-benchmark); Unix sockets"
    );
    println!("| connections | luapool computes/s | luapool p50 | Redis EVALSHA/s | Redis p50 | throughput ratio | p50 ratio |");
    println!("|---|---|---|---|---|---|---|");
    // The last row: one connection pipelining 32 requests on its session.
    // `LUAPOOL_BENCH_ROW=CONNSxDEPTH` (e.g. `1x32`) runs only that row.
    let only = std::env::var("LUAPOOL_BENCH_ROW").ok();
    for (conns, depth) in [(1, 1), (4, 1), (16, 1), (1, 32)] {
        if only
            .as_ref()
            .is_some_and(|r| *r != format!("{conns}x{depth}"))
        {
            continue;
        }
        let label = if depth == 1 {
            conns.to_string()
        } else {
            format!("{conns}, {depth} pipelined")
        };
        let (mut lp, mut rd) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let before = (
                usage_by_thread(daemon.pid(), true),
                usage_by_thread(std::process::id(), false),
            );
            let (rate, lat) = luapool_run(&socket, conns, depth, total);
            if stats {
                let after = (
                    usage_by_thread(daemon.pid(), true),
                    usage_by_thread(std::process::id(), false),
                );
                println!(
                    "  ({label}) per compute: daemon: {}; client: {}",
                    per_compute(&before.0, &after.0, total),
                    per_compute(&before.1, &after.1, total)
                );
            }
            lp.push((rate, f64::from(lat[lat.len() / 2])));
            if let Some(sha) = &sha {
                rd.extend(redis_run(&dir.join("redis.sock"), conns, depth, total, sha));
            }
        }
        if stats {
            println!(
                "  ({label}, all rounds so far) daemon: {}",
                daemon_times(&operator)
            );
        }
        let (lr, lp50) = median(lp);
        if rd.is_empty() {
            println!("| {label} | {lr:.0} | {lp50:.0} µs | | | | |");
        } else {
            let (rr, rp50) = median(rd);
            println!(
                "| {label} | {lr:.0} | {lp50:.0} µs | {rr:.0} | {rp50:.0} µs | {:.2}x | {:.2}x |",
                lr / rr,
                lp50 / rp50
            );
        }
    }
    drop(redis);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}
