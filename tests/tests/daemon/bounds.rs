//! The daemon as a whole is bounded (issue 10's findings, one test each):
//! a client that never reads, a session's queue, sessions and connections,
//! threads, bytes before `auth`, and the per-compute limits a client may
//! ask for. Each prints the daemon's peak RSS under its attack.

use std::io::Write;
use std::net::TcpStream;

use luapool_client::{ClientError, ComputeOptions, ErrorKind, StatsScope};
use rmpv::Value;

use super::harness::{eventually, Answer, Daemon, Raw};

fn mib(kb: u64) -> u64 {
    kb / 1024
}

#[test]
fn a_client_that_never_reads_gets_no_more_work_and_others_are_served() {
    let d = Daemon::start(&["--max-unsent-mib", "1", "--max-queued-calls", "1000"]);
    let owner = d.client();
    let s = owner.session().unwrap();
    s.compute("_io.output = string.rep('x', 2 * 2^20)").unwrap();
    let before = d.status("VmRSS");
    // The attacker pipelines 300 reads of a 2 MiB output and reads nothing.
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    raw.request(
        2,
        "compute",
        vec![sid.clone(), "_io.output = string.rep('y', 2 * 2^20)".into()],
    );
    let n = 300u32;
    for i in 0..n {
        raw.request(100 + i, "get_output", vec![sid.clone()]);
    }
    // Other clients are served meanwhile.
    let other = d.client().session().unwrap();
    for i in 0..20 {
        let v: i64 = other
            .compute(&format!("return {i}"))
            .unwrap()
            .value(0)
            .unwrap();
        assert_eq!(v, i);
    }
    // The attacker's calls wait in its session's queue, not in memory as replies.
    eventually(
        "the attacker's calls park behind its unread replies",
        || d.operator().stats().unwrap().queued_calls > 250,
    );
    let peak = d.status("VmHWM");
    eprintln!(
        "never-reading client: daemon RSS {} MiB before, peak {} MiB with {n} unread 2 MiB replies asked for",
        mib(before),
        mib(peak)
    );
    // Unbounded, the daemon would hold 600 MiB of replies.
    assert!(mib(peak) < mib(before) + 128, "peak {} MiB", mib(peak));
    // Once it reads, every call is answered exactly once, in full.
    let mut answered = 0;
    for i in 0..n {
        let r = raw.response(100 + i);
        assert!(r[2].is_nil(), "{:?}", r[2]);
        assert_eq!(r[3].as_str().map(str::len), Some(2 << 20));
        answered += 1;
    }
    assert_eq!(answered, n);
}

#[test]
fn a_sessions_queue_is_bounded_in_count_and_bytes_and_shown_in_stats() {
    let d = Daemon::start(&["--max-queued-calls", "4", "--max-queued-mib", "1"]);
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    let long = Value::Map(vec![("timeout_ms".into(), 60_000.into())]);
    raw.request(
        2,
        "compute",
        vec![sid.clone(), "print('go') while true do end".into(), long],
    );
    assert_eq!(raw.next().unwrap()[0], Value::from(2), "it runs");
    for i in 0..6u32 {
        raw.request(10 + i, "compute", vec![sid.clone(), "return 1".into()]);
    }
    for i in 4..6u32 {
        let r = raw.response(10 + i);
        assert_eq!(r[2]["kind"].as_str(), Some("Busy"));
        assert_eq!(Raw::limit_of(&r), ("queued_calls".into(), 4));
    }
    // The client sees its own queue in stats; the operator sees all.
    let Answer::Ok(stats) = raw.call(30, "stats", vec![]) else {
        panic!("stats")
    };
    assert_eq!(stats["scope"].as_str(), Some("connection"));
    assert_eq!(stats["queued_calls"].as_u64(), Some(4));
    assert_eq!(d.operator().stats().unwrap().queued_calls, 4);
    // Bytes: behind a running compute, one 600 KiB call is taken, the next is Busy.
    let sid2 = raw.open(40, None);
    let long = Value::Map(vec![("timeout_ms".into(), 60_000.into())]);
    raw.request(
        41,
        "compute",
        vec![sid2.clone(), "print('go') while true do end".into(), long],
    );
    let big = format!("return 1 --{}", "x".repeat(600 << 10));
    raw.request(42, "compute", vec![sid2.clone(), big.clone().into()]);
    raw.request(43, "compute", vec![sid2.clone(), big.into()]);
    let r = raw.response(43);
    assert_eq!(Raw::limit_of(&r), ("queued_bytes".into(), 1 << 20));
    let peak = d.status("VmHWM");
    eprintln!("bounded session queues: daemon peak RSS {} MiB", mib(peak));
    // Cancel both: every queued call is answered.
    raw.request(50, "cancel", vec![sid.clone()]);
    raw.request(51, "cancel", vec![sid2.clone()]);
    for id in [2, 10, 11, 12, 13, 41, 42] {
        assert_eq!(
            raw.answer(id),
            Answer::Err("Cancelled".into()),
            "msgid {id}"
        );
    }
    d.workers_are_free();
}

#[test]
fn sessions_and_connections_are_bounded() {
    let d = Daemon::start(&[
        "--max-sessions-per-connection",
        "2",
        "--max-sessions",
        "3",
        "--max-connections",
        "4",
    ]);
    let c1 = d.client();
    let _a = (c1.session().unwrap(), c1.session().unwrap());
    let limited = |r: Result<luapool_client::Session, ClientError>, name: &str, value: u64| match r
    {
        Err(ClientError::Daemon {
            kind: ErrorKind::LimitReached,
            limit: Some(l),
            ..
        }) => assert_eq!((l.limit.as_str(), l.value), (name, value)),
        Err(e) => panic!("{name}: {e}"),
        Ok(_) => panic!("{name}: a session past the limit"),
    };
    limited(c1.session(), "sessions_per_connection", 2);
    let c2 = d.client();
    let _b = c2.session().unwrap();
    limited(c2.session(), "sessions", 3);
    // Connections: c1, c2 and two more; the fifth is refused and closed.
    let (_c3, _c4) = (d.raw(), d.raw());
    let mut c5 = d.raw();
    let r = c5.next().expect("a refusal");
    assert_eq!(r[2]["kind"].as_str(), Some("LimitReached"), "{r}");
    assert_eq!(r[2]["limit"].as_str(), Some("connections"));
    assert!(c5.closed());
    // The operator's socket does not count: nobody can lock it out.
    assert_eq!(d.operator().stats().unwrap().connections, Some(5));
    drop(_c3);
    eventually("a freed connection slot is usable", || {
        let mut c = d.raw();
        matches!(c.call(1, "stats", vec![]), Answer::Ok(_))
    });
}

#[test]
fn threads_do_not_grow_with_connections_or_sessions() {
    let d = Daemon::start(&["--max-sessions-per-connection", "4000"]);
    d.workers_are_free();
    let threads = d.status("Threads");
    let before = d.status("VmRSS");
    let mut raw = d.raw();
    for i in 0..3000u32 {
        raw.request(i, "session.open", vec![]);
    }
    for i in 0..3000u32 {
        assert!(matches!(raw.answer(i), Answer::Ok(_)));
    }
    let conns: Vec<Raw> = (0..300)
        .map(|_| {
            let mut c = d.raw();
            c.open(1, None);
            c
        })
        .collect();
    assert_eq!(d.operator().stats().unwrap().sessions, 3300);
    let (after_threads, after) = (d.status("Threads"), d.status("VmRSS"));
    eprintln!(
        "3 000 sessions on one connection and 300 more connections: {threads} -> {after_threads} threads, RSS {} -> {} MiB",
        mib(before),
        mib(after)
    );
    assert_eq!(after_threads, threads);
    drop(conns);
}

#[test]
fn an_unauthenticated_tcp_client_is_cut_off_after_a_few_kib() {
    let d = Daemon::start(&["--tcp", "127.0.0.1:0", "--token", "s3cret"]);
    let addr = d.tcp_addr();
    let before = d.status("VmRSS");
    // An auth request whose token claims 200 MB: refused on sight.
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut frame = vec![0x94, 0x00, 0x01, 0xa4, b'a', b'u', b't', b'h', 0x91, 0xdb];
    frame.extend_from_slice(&200_000_000u32.to_be_bytes());
    s.write_all(&frame).unwrap();
    let mut raw = Raw::tcp(s);
    assert_eq!(raw.answer(0), Answer::Err("BadRequest".into()));
    assert!(raw.closed());
    // The same claim made honestly, byte by byte: cut off after 4 KiB.
    let mut s = TcpStream::connect(&addr).unwrap();
    let mut frame = vec![
        0x94, 0x00, 0x01, 0xa4, b'a', b'u', b't', b'h', 0x91, 0xda, 0x40, 0x00,
    ];
    frame.extend(std::iter::repeat_n(b'x', 1 << 14));
    let _ = s.write_all(&frame);
    let mut raw = Raw::tcp(s);
    assert_eq!(raw.answer(0), Answer::Err("BadRequest".into()));
    assert!(raw.closed());
    let peak = d.status("VmHWM");
    eprintln!(
        "unauthenticated floods: daemon RSS {} MiB before, peak {} MiB",
        mib(before),
        mib(peak)
    );
    // An honest client still gets in.
    let c = luapool_client::Client::connect_tcp(addr.as_str(), "s3cret").unwrap();
    assert_eq!(c.stats().unwrap().scope, StatsScope::Connection);
}

#[test]
fn a_compute_may_ask_for_less_than_the_maxima_and_never_more() {
    let d = Daemon::start(&[
        "--timeout",
        "5",
        "--max-timeout",
        "5",
        "--memory",
        "64",
        "--instructions",
        "100000000",
    ]);
    let c = d.client();
    let s = c.session().unwrap();
    let refused = |opts: ComputeOptions, limit: &str| match s.compute_with("return 1", opts) {
        Err(ClientError::Daemon {
            kind: ErrorKind::LimitReached,
            limit: Some(l),
            ..
        }) => assert_eq!(l.limit, limit),
        other => panic!("{limit}: {other:?}"),
    };
    refused(
        ComputeOptions {
            memory: Some(0),
            ..Default::default()
        },
        "memory",
    );
    refused(
        ComputeOptions {
            memory: Some(65 << 20),
            ..Default::default()
        },
        "memory",
    );
    refused(
        ComputeOptions {
            instructions: Some(0),
            ..Default::default()
        },
        "instructions",
    );
    refused(
        ComputeOptions {
            instructions: Some(100_000_001),
            ..Default::default()
        },
        "instructions",
    );
    refused(
        ComputeOptions {
            timeout: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        },
        "timeout_ms",
    );
    // Less is honoured.
    let small = ComputeOptions {
        instructions: Some(10_000),
        ..Default::default()
    };
    assert!(matches!(
        s.compute_with("while true do end", small),
        Err(ClientError::Compute(
            luapool_client::ComputeError::Timeout { .. }
        ))
    ));
    let small = ComputeOptions {
        memory: Some(8 << 20),
        ..Default::default()
    };
    assert!(matches!(
        s.compute_with("local t = {} for i = 1, 1e8 do t[i] = i end", small),
        Err(ClientError::Compute(
            luapool_client::ComputeError::MemoryLimit { .. }
        ))
    ));
    // "No limit" where the operator allows it.
    let d = Daemon::start(&["--max-memory", "0", "--max-instructions", "0"]);
    let s = d.client().session().unwrap();
    let none = ComputeOptions {
        memory: Some(0),
        instructions: Some(0),
        ..Default::default()
    };
    assert_eq!(
        s.compute_with("return 7", none)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        7
    );
}

/// Raises this process's soft limit on open files to the hard one.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the live struct above.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

/// Idle connections, each with an open session, cost the daemon memory
/// and no threads. CI holds 1 000; by hand:
/// `LUAPOOL_IDLE_CONNECTIONS=10000 cargo test -p luapool-tests --test e2e idle -- --nocapture`.
#[test]
fn idle_connections_with_a_session_each_cost_no_threads() {
    let n: usize = std::env::var("LUAPOOL_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let fds = raise_fd_limit() as usize;
    assert!(fds > n + 100, "raise the open-file limit above {n}");
    let max = (n + 16).to_string();
    let d = Daemon::start(&["--max-connections", &max, "--max-sessions", &max]);
    d.workers_are_free();
    let (threads, before) = (d.status("Threads"), d.status("VmRSS"));
    let mut conns: Vec<std::os::unix::net::UnixStream> = Vec::with_capacity(n);
    let open = rmp_serde_open();
    for _ in 0..n {
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        s.write_all(&open).unwrap();
        conns.push(s);
    }
    // Each got its session.
    for s in &mut conns {
        let mut r = Raw::new(s.try_clone().unwrap());
        assert!(matches!(r.answer(1), Answer::Ok(_)));
    }
    assert_eq!(d.operator().stats().unwrap().sessions, n);
    let (after_threads, after) = (d.status("Threads"), d.status("VmRSS"));
    eprintln!(
        "{n} idle connections with a session each: daemon threads {threads} -> {after_threads}, RSS {} -> {} MiB ({} bytes per connection)",
        mib(before),
        mib(after),
        (after.saturating_sub(before) * 1024) / n as u64
    );
    assert_eq!(after_threads, threads);
    // Still serving.
    d.workers_are_free();
}

/// `[0, 1, "session.open", []]`.
fn rmp_serde_open() -> Vec<u8> {
    let mut b = vec![0x94, 0x00, 0x01, 0xac];
    b.extend_from_slice(b"session.open");
    b.push(0x90);
    b
}

#[test]
fn many_clients_that_never_read_are_bounded_together() {
    // Each may leave 8 MiB unread; all together no more than 16 MiB (plus
    // the one reply each call in flight may add).
    let d = Daemon::start(&[
        "--max-unsent-mib",
        "8",
        "--max-unsent-total-mib",
        "16",
        "--max-queued-calls",
        "1000",
    ]);
    let before = d.status("VmRSS");
    let n = 40;
    let attackers: Vec<Raw> = (0..n)
        .map(|_| {
            let mut raw = d.raw();
            let sid = raw.open(1, None);
            raw.request(
                2,
                "compute",
                vec![sid.clone(), "_io.output = string.rep('y', 2^20)".into()],
            );
            for i in 0..40 {
                raw.request(100 + i, "get_output", vec![sid.clone()]);
            }
            raw
        })
        .collect();
    eventually("the attackers' calls park", || {
        d.operator().stats().unwrap().queued_calls > n * 30
    });
    // An honest client is still served.
    let s = d.client().session().unwrap();
    assert_eq!(s.compute("return 5").unwrap().value::<i64>(0).unwrap(), 5);
    let peak = d.status("VmHWM");
    eprintln!(
        "{n} clients never reading 40 x 1 MiB each: daemon RSS {} MiB before, peak {} MiB",
        mib(before),
        mib(peak)
    );
    // Unbounded together, they would hold 1.6 GB; each alone 8 MiB (320 MiB).
    assert!(mib(peak) < mib(before) + 160, "peak {} MiB", mib(peak));
    drop((attackers, s));
    eventually("the attackers' sessions are freed", || d.tables().1 == 0);
}
