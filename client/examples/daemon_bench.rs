//! Trivial computes through the daemon: throughput and latency percentiles.
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p luapool-client --example daemon_bench -- [--threads 8] [--workers 2] [--seconds 5] [--shared] [--socket PATH]
//! ```
//!
//! Starts `luapool serve` (the binary next to this example's directory, i.e.
//! target/release/luapool) with `--workers N`, unless `--socket` names a
//! running daemon. Each client thread has its own connection and session
//! (`--shared`: all threads share one connection) and runs `return 1` in a
//! loop; the figures are computes per second over all threads and the
//! p50/p99 of each compute's round trip.
//!
//! `--records N`: instead, times moving bulk data through one session:
//! `set_input` of N records and `get_output` of the same N records (median
//! of `--rounds` rounds, default 10), each a full client round trip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_client::Client;

struct Args {
    threads: usize,
    workers: usize,
    seconds: f64,
    shared: bool,
    socket: Option<PathBuf>,
    records: Option<usize>,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        threads: 8,
        workers: 2,
        seconds: 5.0,
        shared: false,
        socket: None,
        records: None,
        rounds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => a.threads = value().parse().expect("--threads N"),
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds S"),
            "--socket" => a.socket = Some(value().into()),
            "--shared" => a.shared = true,
            "--records" => a.records = Some(value().parse().expect("--records N")),
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Starts `luapool serve` and waits until it accepts connections.
fn start_daemon(workers: usize) -> (Child, PathBuf) {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("luapool");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release --workspace",
        bin.display()
    );
    let socket = std::env::temp_dir().join(format!("luapool-bench-{}.sock", std::process::id()));
    let child = Command::new(&bin)
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .args(["--workers", &workers.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("start luapool serve");
    let end = Instant::now() + Duration::from_secs(30);
    while Client::connect(&socket).is_err() {
        assert!(Instant::now() < end, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, socket)
}

fn main() {
    let a = args();
    let (mut child, socket) = match &a.socket {
        Some(s) => (None, s.clone()),
        None => {
            let (c, s) = start_daemon(a.workers);
            (Some(c), s)
        }
    };
    if let Some(n) = a.records {
        bulk(&socket, n, a.rounds);
    } else {
        computes(&a, &socket);
    }
    if let Some(c) = child.as_mut() {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let _ = c.wait();
    }
}

/// One record of the bulk data.
#[derive(serde::Serialize)]
struct Record {
    id: u64,
    name: String,
    score: f64,
    active: bool,
    tags: [&'static str; 2],
}

/// `--records N`: the median round trip of `set_input` and `get_output` of N records.
fn bulk(socket: &std::path::Path, n: usize, rounds: usize) {
    let data: Vec<Record> = (0..n as u64)
        .map(|i| Record {
            id: i,
            name: format!("user-{i}"),
            score: i as f64 * 0.5,
            active: i % 2 == 0,
            tags: ["a", "b"],
        })
        .collect();
    let client = Client::connect(socket).expect("connect");
    let session = client.session().expect("session");
    session.compute("_io.output = _io.input").ok();
    let (mut set, mut get) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        session.set_input(&data).expect("set_input");
        set.push(t.elapsed());
        session.compute("_io.output = _io.input").expect("compute");
        let t = Instant::now();
        let out: luapool_client::Value = session.get_output().expect("get_output");
        get.push(t.elapsed());
        drop(out);
    }
    set.sort();
    get.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{n} records, {} rounds: set_input median {:.1} ms (min {:.1}), get_output median {:.1} ms (min {:.1})",
        set.len(),
        ms(set[set.len() / 2]),
        ms(set[0]),
        ms(get[get.len() / 2]),
        ms(get[0]),
    );
}

/// The default mode: `return 1` in a loop on every client thread.
fn computes(a: &Args, socket: &std::path::Path) {
    let shared = a
        .shared
        .then(|| Arc::new(Client::connect(socket).expect("connect")));
    let run_for = Duration::from_secs_f64(a.seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..a.threads)
        .map(|_| {
            let (socket, shared) = (socket.to_path_buf(), shared.clone());
            std::thread::spawn(move || {
                let own = shared
                    .is_none()
                    .then(|| Client::connect(&socket).expect("connect"));
                let client = shared.as_deref().or(own.as_ref()).expect("a client");
                let session = client.session().expect("session");
                for _ in 0..50 {
                    session.compute("return 1").expect("warm-up compute");
                }
                let mut lat = Vec::new();
                let t0 = Instant::now();
                while t0.elapsed() < run_for {
                    let t = Instant::now();
                    session.compute("return 1").expect("compute");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    let wall = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{} computes in {:.1} s over {} client threads ({} connection{}), {} workers: {:.0} computes/s, p50 {:.0} us, p99 {:.0} us",
        lat.len(),
        wall,
        a.threads,
        if a.shared { 1 } else { a.threads },
        if a.shared { "" } else { "s" },
        a.workers,
        lat.len() as f64 / a.seconds,
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
    );
}
