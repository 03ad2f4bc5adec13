//! What the daemon tells about itself: `stats`' wait and run times, errors
//! by kind and workers' states (a client its own figures, the operator
//! everything), the same figures scraped from `--metrics` by a real HTTP
//! client, and log lines filtered by `RUST_LOG`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use luapool_client::{Client, ComputeOptions, Latency, WorkerState};

use super::harness::{eventually, fresh_socket_path, luapool_bin, Answer, Daemon, HANG};

/// A compute that runs at least 200 ms (of its worker's CPU time).
const SLOW: &str = "local t = os.clock() while os.clock() - t < 0.2 do end";

#[test]
fn stats_time_a_connections_own_computes_and_count_its_errors_only() {
    let d = Daemon::start(&[]);
    let (a, b) = (d.client(), d.client());
    let sa = a.session().unwrap();
    for _ in 0..5 {
        sa.compute("return 1").unwrap();
    }
    for _ in 0..2 {
        assert!(sa.compute("error('x')").is_err());
    }
    sa.compute(SLOW).unwrap();
    let mine = a.stats().unwrap();
    assert_eq!((mine.wait.count, mine.run.count), (8, 8), "{mine:?}");
    assert_eq!(mine.errors["LuaError"], 2);
    assert!(mine.errors.values().sum::<u64>() == 2, "{:?}", mine.errors);
    assert!(
        mine.run.p99_us >= 200_000 && mine.run.sum_us >= 200_000,
        "{mine:?}"
    );
    let r = mine.run;
    assert!(r.p50_us <= r.p90_us && r.p90_us <= r.p99_us, "{r:?}");
    assert!(mine.worker_states.is_none(), "workers are the operator's");

    // B sees none of A's computes or errors; its own are its own.
    let theirs = b.stats().unwrap();
    assert_eq!(
        (theirs.wait, theirs.run),
        (Latency::default(), Latency::default())
    );
    assert!(theirs.errors.values().all(|&n| n == 0), "{theirs:?}");
    let sb = b.session().unwrap();
    assert!(sb.compute("error('y')").is_err());
    let theirs = b.stats().unwrap();
    assert_eq!((theirs.run.count, theirs.errors["LuaError"]), (1, 1));
    assert_eq!(a.stats().unwrap().errors["LuaError"], 2);

    // The operator sees everything.
    let all = d.operator().stats().unwrap();
    assert_eq!((all.wait.count, all.run.count), (9, 9));
    assert_eq!(all.errors["LuaError"], 3);
    assert!(all.run.p99_us >= 200_000);
    assert_eq!(all.worker_states.map(|w| w.len()), Some(2));
}

#[test]
fn wait_counts_from_the_request_being_read_through_the_sessions_earlier_calls() {
    let d = Daemon::start(&[]);
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    // Pipelined: the second compute waits in its session behind the first.
    raw.request(2, "compute", vec![sid.clone(), SLOW.into()]);
    raw.request(3, "compute", vec![sid, "return 1".into()]);
    assert!(matches!(raw.answer(2), Answer::Ok(_)));
    assert!(matches!(raw.answer(3), Answer::Ok(_)));
    let Answer::Ok(s) = raw.call(4, "stats", vec![]) else {
        panic!("stats failed")
    };
    assert_eq!(s["wait"]["count"].as_u64(), Some(2), "{s}");
    assert!(s["wait"]["p99_us"].as_u64().unwrap() >= 200_000, "{s}");
}

#[test]
fn the_operator_sees_what_each_worker_does_and_for_how_long() {
    let d = Daemon::start(&["--cpu-time", "0", "--max-cpu-time", "0", "--timeout", "100"]);
    let op = d.operator();
    let states = || op.stats().unwrap().worker_states.expect("the operator's");
    eventually("both workers idle", || {
        states() == [WorkerState::Idle, WorkerState::Idle]
    });
    let c = d.client();
    let s = c.session().unwrap();
    std::thread::scope(|scope| {
        let run = scope.spawn(|| s.compute_with("while true do end", ComputeOptions::default()));
        eventually("a worker has run the loop for 200 ms", || {
            states()
                .iter()
                .any(|w| matches!(w, WorkerState::Running { for_ms } if *for_ms >= 200))
        });
        assert!(states().contains(&WorkerState::Idle), "the other one waits");
        s.cancel().unwrap();
        let e = run.join().unwrap().unwrap_err();
        assert_eq!(
            e.as_compute(),
            Some(&luapool_client::ComputeError::Cancelled)
        );
    });
    eventually("both workers idle again", || {
        states() == [WorkerState::Idle, WorkerState::Idle]
    });
    let all = op.stats().unwrap();
    assert_eq!((all.run.count, all.errors["Cancelled"]), (1, 1));
}

/// The metrics address the daemon printed.
fn metrics_addr(d: &Daemon) -> String {
    d.stderr()
        .lines()
        .find_map(|l| {
            l.strip_prefix("luapool: metrics at http://")?
                .strip_suffix("/metrics")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no metrics address in: {}", d.stderr()))
}

/// GETs `url` with a real HTTP client (curl, else Python's urllib):
/// the Content-Type and the body.
fn scrape(url: &str) -> (String, String) {
    let curl = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "60"])
        .args(["--output", "-", "--write-out", "\n%{content_type}", url])
        .output();
    let out = match curl {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request as u\n\
                 r = u.urlopen(sys.argv[1], timeout=60)\n\
                 sys.stdout.write(r.read().decode() + '\\n' + r.headers['Content-Type'])",
                url,
            ])
            .output()
            .expect("neither curl nor python3 to scrape with"),
        Err(e) => panic!("curl: {e}"),
    };
    assert!(
        out.status.success(),
        "scraping {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, ctype) = text.rsplit_once('\n').expect("the content type last");
    (ctype.to_string(), body.to_string())
}

/// Prometheus text: each family's type, and each sample's value by its
/// name and labels as written.
fn parse(body: &str) -> (HashMap<String, String>, HashMap<String, f64>) {
    let (mut types, mut samples) = (HashMap::new(), HashMap::new());
    for line in body.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').expect("TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let value = value.parse().unwrap_or_else(|_| panic!("{line}"));
            samples.insert(series.to_string(), value);
        }
    }
    (types, samples)
}

#[test]
fn metrics_serves_the_operators_figures_to_a_real_http_client() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let c = d.client();
    let s = c.session().unwrap();
    for _ in 0..3 {
        s.compute("return 1").unwrap();
    }
    assert!(s.compute("error('x')").is_err());
    let (ctype, body) = scrape(&format!("http://{}/metrics", metrics_addr(&d)));
    assert!(
        ctype.starts_with("text/plain") && ctype.contains("version=0.0.4"),
        "{ctype}"
    );
    let (types, m) = parse(&body);
    for (name, kind) in [
        ("luapool_workers", "gauge"),
        ("luapool_sessions", "gauge"),
        ("luapool_computes_total", "counter"),
        ("luapool_errors_total", "counter"),
        ("luapool_compute_wait_seconds", "summary"),
        ("luapool_compute_run_seconds", "summary"),
        ("luapool_worker_state", "gauge"),
        ("luapool_worker_running_seconds", "gauge"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "{name}:\n{body}"
        );
    }
    let at = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in:\n{body}"));
    assert_eq!(at("luapool_workers"), 2.0);
    assert_eq!(
        (at("luapool_sessions"), at("luapool_connections")),
        (1.0, 1.0)
    );
    assert_eq!(at("luapool_computes_total"), 4.0);
    assert_eq!(at("luapool_errors_total{kind=\"LuaError\"}"), 1.0);
    assert_eq!(at("luapool_errors_total{kind=\"Timeout\"}"), 0.0);
    assert_eq!(at("luapool_compute_run_seconds_count"), 4.0);
    assert_eq!(at("luapool_compute_wait_seconds_count"), 4.0);
    let q = |p: &str| at(&format!("luapool_compute_run_seconds{{quantile=\"{p}\"}}"));
    assert!(q("0.5") > 0.0 && q("0.5") <= q("0.9") && q("0.9") <= q("0.99"));
    assert!(at("luapool_compute_run_seconds_sum") >= q("0.5"));
    for w in 0..2 {
        let states: f64 = ["starting", "idle", "running", "crash_looped"]
            .iter()
            .map(|st| {
                at(&format!(
                    "luapool_worker_state{{worker=\"{w}\",state=\"{st}\"}}"
                ))
            })
            .sum();
        assert_eq!(states, 1.0, "worker {w} is in exactly one state");
    }
    // The same figures as the operator's `stats`.
    let op = d.operator().stats().unwrap();
    assert_eq!(op.computes, Some(4));
    assert_eq!(op.run.count, 4);
}

/// Sends `request` on a fresh connection and reads the whole response.
fn http(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s.write_all(request).unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn metrics_answers_only_get_of_metrics_and_bounds_what_it_reads() {
    let d = Daemon::start(&["--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&d);
    let status = |r: &str| r.lines().next().unwrap_or("").to_string();
    let r = http(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found", "{r}");
    let r = http(
        &addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status(&r), "HTTP/1.1 405 Method Not Allowed", "{r}");
    assert!(r.contains("Allow: GET, HEAD"), "{r}");
    let r = http(&addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 200 OK", "{r}");
    assert!(r.ends_with("\r\n\r\n"), "HEAD has no body: {r}");
    let r = http(&addr, b"hello\r\n\r\n");
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request", "{r}");
    // A head past 8 KiB is refused without reading on.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(20 << 10, b'a');
    let r = http(&addr, &big);
    assert_eq!(
        status(&r),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "{r}"
    );

    // Connections that send nothing cannot lock a scraper out: past 16,
    // the oldest is closed.
    let idle: Vec<TcpStream> = (0..17)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let (_, body) = scrape(&format!("http://{addr}/metrics"));
    assert!(body.contains("luapool_workers 2"), "{body}");
    let mut first = &idle[0];
    first.set_read_timeout(Some(HANG)).unwrap();
    assert_eq!(
        first.read(&mut [0u8; 16]).unwrap(),
        0,
        "the oldest was closed"
    );
    // None of it touched the daemon's clients.
    d.workers_are_free();
}

#[test]
fn metrics_are_served_on_loopback_only() {
    let socket = fresh_socket_path();
    let out = Command::new(luapool_bin())
        .args(["serve", "--socket", &socket.to_string_lossy()])
        .args(["--metrics", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback") && err.contains("0.0.0.0"), "{err}");
}

/// Starts `luapool serve` with `RUST_LOG=level`; returns it, its socket
/// and its stderr as it comes, once it accepts connections.
fn serve_logging(level: &str) -> Logging {
    let socket = fresh_socket_path();
    let mut child = Command::new(luapool_bin())
        .args([
            "serve",
            "--workers",
            "1",
            "--socket",
            &socket.to_string_lossy(),
        ])
        .env("RUST_LOG", level)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // The pool is up once a compute runs.
    eventually("the daemon answers", || {
        Client::connect(&socket)
            .is_ok_and(|c| c.session().is_ok_and(|s| s.compute("return 1").is_ok()))
    });
    Logging {
        child,
        socket,
        stderr,
        reader,
    }
}

struct Logging {
    child: std::process::Child,
    socket: std::path::PathBuf,
    stderr: Arc<Mutex<String>>,
    /// Ends when the daemon's stderr closes.
    reader: std::thread::JoinHandle<()>,
}

#[test]
fn log_lines_follow_rust_log() {
    let mut d = serve_logging("debug");
    drop(Client::connect(&d.socket).unwrap());
    eventually("a debug line for a connection", || {
        d.stderr
            .lock()
            .unwrap()
            .contains("luapool: debug: connection ")
    });
    assert!(d.stderr.lock().unwrap().contains("luapool: listening on "));
    d.child.kill().unwrap();
    d.child.wait().unwrap();

    let mut d = serve_logging("warn");
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(
        unsafe { libc::kill(d.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(d.child.wait().unwrap().success());
    d.reader.join().unwrap();
    let text = d.stderr.lock().unwrap().clone();
    assert!(
        !text.contains("listening") && !text.contains("stopped") && !text.contains("debug"),
        "info lines at RUST_LOG=warn: {text}"
    );
}
