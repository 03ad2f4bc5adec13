//! Round-trip latency between two processes: the ring with spinning, the ring
//! with the futex path forced (spin = 0), and a Unix-socket ping-pong of the
//! same message, in one run.
//!
//! ```text
//! cargo run --release -p luapool-protocol --example ring_bench [-- OPTIONS]
//!   --iters N        round trips per measurement (default 200000; futex and
//!                    socket use N/4)
//!   --spin-us X      spin before sleeping, in µs (default: DEFAULT_SPIN)
//!   --size B         message size in bytes (default 32)
//!   --work-us W      the echo child busy-works W µs before replying (default
//!                    0), to see what a wait longer than the spin costs
//! taskset -c 0 cargo run ...   # both processes on the same core
//! ```
//!
//! The program re-executes itself as the echo child (`child-ring` /
//! `child-sock` arguments).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use luapool_protocol::{Endpoint, RingError, DEFAULT_SPIN};

struct Options {
    iters: usize,
    spin: Duration,
    size: usize,
    work: Duration,
}

fn parse(args: &[String]) -> Options {
    let mut o = Options {
        iters: 200_000,
        spin: DEFAULT_SPIN,
        size: 32,
        work: Duration::ZERO,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--iters" => o.iters = value.parse().expect("--iters N"),
            "--spin-us" => {
                o.spin = Duration::from_secs_f64(value.parse::<f64>().expect("--spin-us X") / 1e6)
            }
            "--size" => o.size = value.parse().expect("--size B"),
            "--work-us" => {
                o.work = Duration::from_secs_f64(value.parse::<f64>().expect("--work-us W") / 1e6)
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child-ring") => child_ring(
            &args[1],
            Duration::from_nanos(args[2].parse().unwrap()),
            Duration::from_nanos(args[3].parse().unwrap()),
        ),
        Some("child-sock") => child_sock(&args[1]),
        _ => parent(parse(&args)),
    }
}

fn child_ring(os_id: &str, spin: Duration, work: Duration) {
    let mut ring = Endpoint::open(os_id).expect("open ring");
    ring.set_spin(spin);
    let mut buf = Vec::new();
    loop {
        match ring.recv(&mut buf, None) {
            Ok(()) => {
                let t = Instant::now();
                while t.elapsed() < work {
                    std::hint::spin_loop();
                }
                ring.send(&buf).expect("echo")
            }
            Err(RingError::Closed) => return,
            Err(e) => panic!("child: {e}"),
        }
    }
}

fn child_sock(path: &str) {
    let mut s = UnixStream::connect(path).expect("connect");
    let mut len = [0u8; 4];
    let mut buf = Vec::new();
    while s.read_exact(&mut len).is_ok() {
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        s.read_exact(&mut buf).unwrap();
        s.write_all(&len).unwrap();
        s.write_all(&buf).unwrap();
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(args)
        .spawn()
        .expect("spawn child")
}

/// Latencies in ns, sorted.
struct Stats(Vec<u64>);

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let i = ((self.0.len() - 1) as f64 * p).round() as usize;
        self.0[i] as f64 / 1000.0
    }
    fn median(&self) -> f64 {
        self.pct(0.5)
    }
    fn print(&self, name: &str) {
        let mean = self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0;
        println!(
            "{name:<24} median {:>8.2} µs   p99 {:>8.2} µs   p99.9 {:>8.2} µs   mean {:>8.2} µs   (n = {})",
            self.median(),
            self.pct(0.99),
            self.pct(0.999),
            mean,
            self.0.len()
        );
    }
}

/// Times `n` round trips of `rt` after `n / 10` warm-up ones.
fn measure(n: usize, mut rt: impl FnMut()) -> Stats {
    for _ in 0..n / 10 {
        rt();
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        rt();
        v.push(t.elapsed().as_nanos() as u64);
    }
    v.sort_unstable();
    Stats(v)
}

fn ring_rt(spin: Duration, work: Duration, n: usize, msg: &[u8]) -> Stats {
    let mut ring = Endpoint::create().expect("create ring");
    ring.set_spin(spin);
    let spin_ns = spin.as_nanos().to_string();
    let work_ns = work.as_nanos().to_string();
    let mut child = spawn(&["child-ring", ring.os_id(), &spin_ns, &work_ns]);
    let mut buf = Vec::new();
    let stats = measure(n, || {
        ring.send(msg).unwrap();
        ring.recv(&mut buf, None).unwrap();
        debug_assert_eq!(buf, msg);
    });
    ring.close();
    child.wait().unwrap();
    stats
}

fn socket_rt(n: usize, msg: &[u8]) -> Stats {
    let path = std::env::temp_dir().join(format!("luapool_ring_bench_{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let mut child = spawn(&["child-sock", path.to_str().unwrap()]);
    let (mut s, _) = listener.accept().unwrap();
    let _ = std::fs::remove_file(&path);
    let len = (msg.len() as u32).to_le_bytes();
    let mut back = vec![0u8; msg.len()];
    let mut hdr = [0u8; 4];
    let stats = measure(n, || {
        s.write_all(&len).unwrap();
        s.write_all(msg).unwrap();
        s.read_exact(&mut hdr).unwrap();
        s.read_exact(&mut back).unwrap();
    });
    drop(s);
    child.wait().unwrap();
    stats
}

fn parent(o: Options) {
    let msg: Vec<u8> = (0..o.size).map(|i| i as u8).collect();
    println!(
        "ring_bench: {}-byte message, spin {:?}, child work {:?}, {} CPUs",
        o.size,
        o.spin,
        o.work,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let spin = ring_rt(o.spin, o.work, o.iters, &msg);
    spin.print("ring, spin");
    let futex = ring_rt(Duration::ZERO, o.work, o.iters / 4, &msg);
    futex.print("ring, futex (spin 0)");
    let sock = socket_rt(o.iters / 4, &msg);
    sock.print("unix socket");
    println!(
        "socket / ring-spin (median): {:.1}x   socket / ring-futex: {:.1}x",
        sock.median() / spin.median(),
        sock.median() / futex.median()
    );
}
