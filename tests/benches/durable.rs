//! `cargo bench -p luapool-tests --bench durable`: durable homes against
//! Redis, side by side in one run (README, "Durable homes").
//!
//! - Computes per second that increment a counter in a durable home
//!   (`luapool serve --data DIR`, reply after the write is on disk), with 1
//!   and 8 connections (8: each on its own home, and all on one home).
//! - Redis doing the same through EVALSHA, with `appendfsync always` and
//!   with `everysec`, with 1 and 8 connections (each on its own key).
//! - The restart time of a daemon with about 1 GiB of homes on disk: until
//!   it answers, and until a compute has read one 128 MiB home.
//!
//! Needs `cargo build --release --workspace` (the daemon is the release
//! `luapool`) and `redis-server` on the PATH (`apt-get install
//! redis-server`; without it the Redis rows are skipped).
//! `LUAPOOL_BENCH_SECS` sets each row's duration (default 5);
//! `LUAPOOL_BENCH_RESTART_GIB` the homes written for the restart row
//! (default 1; 0 skips it); `LUAPOOL_BENCH_ONLY=restart` runs that row only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use luapool_client::{Client, ComputeOptions};

#[path = "common/daemon.rs"]
mod daemon;
use daemon::Daemon;

const INCREMENT: &str = "_home.n = (_home.n or 0) + 1 return _home.n";

fn secs() -> Duration {
    Duration::from_secs_f64(
        std::env::var("LUAPOOL_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0),
    )
}

fn scratch(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("luapool-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Runs `f(conn)` on `conns` threads for the bench duration; computes per second.
fn rate(conns: usize, f: impl Fn(usize, &AtomicBool, &AtomicU64) + Sync) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..conns {
            let (f, stop, done) = (&f, &stop, &done);
            s.spawn(move || f(c, stop, done));
        }
        std::thread::sleep(secs());
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

fn luapool_rate(d: &Daemon, conns: usize, shared: bool) -> f64 {
    rate(conns, |c, stop, done| {
        let client = Client::connect(&d.socket).expect("connect");
        let home = if shared {
            "shared".into()
        } else {
            format!("c{c}")
        };
        let s = client.session_with_home(&home).expect("session");
        let opts = || ComputeOptions {
            instructions: Some(0),
            ..ComputeOptions::default()
        };
        while !stop.load(Ordering::Relaxed) {
            s.compute_with(INCREMENT, opts()).expect("compute");
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// A `redis-server` child with its AOF fsync policy; killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Redis {
    fn start(fsync: &str, port: u16) -> Option<Redis> {
        let dir = scratch(&format!("redis-{fsync}"));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", fsync, "--save", ""])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// One RESP command; returns the reply's first line.
fn resp(conn: &mut BufReader<TcpStream>, args: &[&str]) -> String {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    conn.get_mut().write_all(out.as_bytes()).expect("send");
    let mut line = String::new();
    conn.read_line(&mut line).expect("reply");
    if let Some(n) = line.strip_prefix('$') {
        let n: usize = n.trim().parse().unwrap_or(0);
        let mut body = vec![0; n + 2];
        conn.read_exact(&mut body).expect("bulk");
        return String::from_utf8_lossy(&body[..n]).into_owned();
    }
    line.trim().to_string()
}

fn redis_rate(r: &Redis, conns: usize) -> f64 {
    let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", r.port)).unwrap());
    let script = "return redis.call('INCR', KEYS[1])";
    let sha = resp(&mut c, &["SCRIPT", "LOAD", script]);
    rate(conns, |i, stop, done| {
        let mut c = BufReader::new(TcpStream::connect(("127.0.0.1", r.port)).unwrap());
        c.get_ref().set_nodelay(true).unwrap();
        let key = format!("c{i}");
        while !stop.load(Ordering::Relaxed) {
            let reply = resp(&mut c, &["EVALSHA", &sha, "1", &key]);
            assert!(reply.starts_with(':'), "{reply}");
            done.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn restart(gib: f64) {
    let dir = scratch("restart");
    let homes = ((gib * 8.0).ceil() as usize).max(1);
    {
        let (d, _) = Daemon::start("fill", &["--data", dir.to_str().unwrap()]);
        let c = Client::connect(&d.socket).unwrap();
        for h in 0..homes {
            let s = c.session_with_home(&format!("big{h}")).unwrap();
            // ~128 MiB of store per home: 1 000 000 records of 3 fields.
            s.compute_with(
                "_home.records = {} local r = _home.records \
                 for i = 1, 1000000 do r[i] = {id = i, name = 'record ' .. i, v = i * 0.5} end",
                ComputeOptions {
                    instructions: Some(0),
                    memory: Some(0),
                    cpu_time: Some(Duration::ZERO),
                    timeout: Some(Duration::from_secs(600)),
                    ..ComputeOptions::default()
                },
            )
            .unwrap();
        }
    }
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let (d, up) = Daemon::start("restart", &["--data", dir.to_str().unwrap()]);
    let c = Client::connect(&d.socket).unwrap();
    let t = Instant::now();
    let s = c.session_with_home("small").unwrap();
    s.compute(INCREMENT).unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    let s = c.session_with_home("big0").unwrap();
    let n = s.compute("return #_home.records").unwrap();
    let big = t.elapsed();
    assert_eq!(n.value::<i64>(0).unwrap(), 1_000_000);
    println!(
        "| restart with {:.2} GiB on disk ({homes} homes of 1 000 000 records) | listening after {:.0} ms; first compute on another home {:.1} ms; first compute on one 1 000 000-record home {:.2} s |",
        on_disk as f64 / (1u64 << 30) as f64,
        up.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        big.as_secs_f64()
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::var("LUAPOOL_BENCH_ONLY").as_deref() == Ok("restart") {
        restart(restart_gib());
        return;
    }
    println!("| what | computes per second |");
    println!("|---|---|");
    let dir = scratch("incr");
    let (d, _) = Daemon::start("incr", &["--data", dir.to_str().unwrap()]);
    let l1 = luapool_rate(&d, 1, false);
    println!("| luapool, durable home, 1 connection | {l1:.0} |");
    let l8 = luapool_rate(&d, 8, false);
    println!("| luapool, durable homes, 8 connections (a home each) | {l8:.0} |");
    let l8s = luapool_rate(&d, 8, true);
    println!("| luapool, durable home, 8 connections (one home) | {l8s:.0} |");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
    for (fsync, port) in [("always", 16391), ("everysec", 16392)] {
        let Some(r) = Redis::start(fsync, port) else {
            println!("| Redis {fsync}: redis-server not found, skipped | |");
            continue;
        };
        let r1 = redis_rate(&r, 1);
        let r8 = redis_rate(&r, 8);
        println!(
            "| Redis EVALSHA, appendfsync {fsync}, 1 connection | {r1:.0} (luapool {:.2}x) |",
            l1 / r1
        );
        println!(
            "| Redis EVALSHA, appendfsync {fsync}, 8 connections | {r8:.0} (luapool {:.2}x) |",
            l8 / r8
        );
    }
    let gib = restart_gib();
    if gib > 0.0 {
        restart(gib);
    }
}

fn restart_gib() -> f64 {
    std::env::var("LUAPOOL_BENCH_RESTART_GIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}
