//! Real daemons sharing one PostgreSQL home store: the main test of issue
//! 16 (three daemons, eight clients, four shared homes, a daemon killed
//! with -9 mid-run and restarted: every acknowledged increment is there,
//! and each counter equals its records), homes made, read and dropped
//! across daemons, caches never served stale, and `Cluster` placing and
//! failing over.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use luapool_client::{Client, Cluster, ComputeError, Session};

use super::PgDb;
use crate::daemon::harness::{eventually, fresh_socket_path, luapool_bin, Daemon};

const HOMES: usize = 4;
const CLIENTS: usize = 8;

/// One compute: the count and the log grow together, or not at all.
const STEP: &str = r#"
    _home.count = (_home.count or 0) + 1
    _home.log = _home.log or {}
    _home.log[#_home.log + 1] = { client = CLIENT, seq = SEQ }
    return _home.count
"#;

fn start(socket: &Path, db: &PgDb) -> Daemon {
    Daemon::start_at(socket.to_path_buf(), &["--home-store", db.url()])
}

/// Per home: its count and its (client, seq) records, read through `c`.
fn read_homes(c: &Client) -> Vec<(i64, Vec<(i64, i64)>)> {
    (0..HOMES)
        .map(|h| {
            let s = c.session_with_home(&format!("h{h}")).unwrap();
            let out = s
                .compute("local r = {} for i, e in ipairs(_home.log or {}) do r[i] = {e.client, e.seq} end return _home.count or 0, r")
                .unwrap();
            let count: i64 = out.value(0).unwrap();
            let log: Vec<(i64, i64)> = out.value(1).unwrap_or_default();
            (count, log)
        })
        .collect()
}

/// A cheap random number (the test's own, seeded by the clock).
fn rand_below(state: &mut u64, n: u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) % n
}

/// A client's way to a session on home `home`: half the clients go through
/// a `Cluster` (placement and failover), half talk to one daemon and move
/// to the next when it is gone, so each home is used through several
/// daemons at once.
fn open(
    client: usize,
    home: usize,
    sockets: &[PathBuf],
    cluster: &Cluster,
    attempt: usize,
) -> Option<Session> {
    let name = format!("h{home}");
    if client % 2 == 1 {
        return cluster.session_with_home(&name).ok();
    }
    let socket = &sockets[(client / 2 + attempt) % sockets.len()];
    Client::connect(socket).ok()?.session_with_home(&name).ok()
}

#[test]
fn three_daemons_lose_no_acknowledged_increment_when_one_is_killed() {
    let Some(db) = PgDb::fresh("main") else {
        return;
    };
    let sockets: Vec<PathBuf> = (0..3).map(|_| fresh_socket_path()).collect();
    let mut daemons: Vec<Daemon> = sockets.iter().map(|s| start(s, &db)).collect();
    // (home, client, seq) of every acknowledged compute.
    let acked: Arc<Mutex<BTreeSet<(usize, i64, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (acked, stop, sockets) = (acked.clone(), stop.clone(), sockets.clone());
            std::thread::spawn(move || {
                let cluster = Cluster::new(sockets.iter().cloned());
                let home = client % HOMES;
                let (mut seq, mut attempt) = (0i64, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let Some(s) = open(client, home, &sockets, &cluster, attempt) else {
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let code = STEP
                            .replace("CLIENT", &client.to_string())
                            .replace("SEQ", &seq.to_string());
                        match s.compute(&code) {
                            Ok(_) => {
                                acked.lock().unwrap().insert((home, client as i64, seq));
                            }
                            // Lost the race too often: not acknowledged, go on.
                            Err(e)
                                if matches!(
                                    e.as_compute(),
                                    Some(ComputeError::Conflict { .. })
                                ) => {}
                            Err(_) => {
                                attempt += 1;
                                break; // the daemon died: another session
                            }
                        }
                    }
                }
            })
        })
        .collect();

    let progress = |what: &str| {
        let before = acked.lock().unwrap().len();
        eventually(what, || acked.lock().unwrap().len() > before + 30);
    };
    let mut rng = Instant::now().elapsed().as_nanos() as u64 | 1;
    progress("the clients make progress on three daemons");
    for cycle in 0..cycles() {
        let victim = cycle % daemons.len();
        std::thread::sleep(Duration::from_millis(rand_below(&mut rng, 300)));
        daemons[victim].signal(libc::SIGKILL);
        daemons[victim].wait_exit();
        // Everything acknowledged before the kill is final now.
        let before_kill = acked.lock().unwrap().clone();
        progress("the clients go on with two daemons");
        // (Dropping the dead one removes its socket file before the new one binds.)
        drop(daemons.remove(victim));
        daemons.insert(victim, start(&sockets[victim], &db));
        progress("the clients go on with the restarted daemon");
        let view = read_homes(&daemons[victim].client());
        check(&view, &before_kill, &format!("cycle {cycle}"));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acknowledged = acked.lock().unwrap().clone();
    // Every daemon reads the same homes, and they hold every acknowledged
    // increment.
    let views: Vec<_> = daemons.iter().map(|d| read_homes(&d.client())).collect();
    assert_eq!(views[0], views[1], "two daemons disagree");
    assert_eq!(views[0], views[2], "two daemons disagree");
    check(&views[0], &acknowledged, "at the end");
    let counts: Vec<i64> = views[0].iter().map(|(c, _)| *c).collect();
    eprintln!(
        "{} increments acknowledged, counters {counts:?}",
        acknowledged.len()
    );
}

/// Kill cycles of the main test (`LUAPOOL_SHARED_CYCLES`, default 2).
fn cycles() -> usize {
    std::env::var("LUAPOOL_SHARED_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Each home's count equals its records, no record is there twice, and
/// every acknowledged increment is there.
fn check(view: &[(i64, Vec<(i64, i64)>)], acked: &BTreeSet<(usize, i64, i64)>, when: &str) {
    for (h, (count, log)) in view.iter().enumerate() {
        assert_eq!(
            *count as usize,
            log.len(),
            "{when}, home h{h}: a compute is half there"
        );
        let present: BTreeSet<(i64, i64)> = log.iter().copied().collect();
        assert_eq!(
            present.len(),
            log.len(),
            "{when}, home h{h}: a record twice"
        );
        for &(_, client, seq) in acked.iter().filter(|a| a.0 == h) {
            assert!(
                present.contains(&(client, seq)),
                "{when}, home h{h}: acknowledged increment (client {client}, seq {seq}) was lost"
            );
        }
    }
}

#[test]
fn a_home_made_through_one_daemon_is_read_through_another_and_a_drop_is_seen_by_all() {
    let Some(db) = PgDb::fresh("across") else {
        return;
    };
    let (a, b) = (
        Daemon::start(&["--home-store", db.url()]),
        Daemon::start(&["--home-store", db.url()]),
    );
    let (ca, cb) = (a.client(), b.client());
    let sa = ca.session_with_home("shared").unwrap();
    sa.compute("_home.greeting = 'hello' _home.list = { 1, 2, 3 }")
        .unwrap();
    let sb = cb.session_with_home("shared").unwrap();
    let out = sb.compute("return _home.greeting, #_home.list").unwrap();
    assert_eq!(out.value::<String>(0).unwrap(), "hello");
    assert_eq!(out.value::<i64>(1).unwrap(), 3);

    // The CLI runs scripts on, and manages, the same store while the
    // daemons run.
    let tmp = crate::common::TempDir::new("shared-cli");
    let script = tmp.file(
        "add.lua",
        "_home.list[#_home.list + 1] = 4 _io.output = #_home.list",
    );
    let out = crate::cli::luapool_run(
        &["run", &script, "--home-store", db.url(), "--home", "shared"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    assert_eq!(
        sb.compute("return #_home.list")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        4
    );
    let home = |args: &[&str]| {
        let out = Command::new(luapool_bin())
            .arg("home")
            .args(args)
            .args(["--home-store", db.url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "luapool home {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(home(&["list"]).starts_with("shared\t"));
    home(&["drop", "shared"]);
    assert_eq!(home(&["list"]), "");
    // Both daemons' sessions (and caches) find the home gone: empty.
    for s in [&sa, &sb] {
        let out = s
            .compute("return _home.greeting == nil and _home.list == nil")
            .unwrap();
        assert!(out.value::<bool>(0).unwrap(), "a dropped home was served");
    }
}

#[test]
fn a_daemon_never_serves_a_cached_home_stale() {
    let Some(db) = PgDb::fresh("cache") else {
        return;
    };
    let (a, b) = (
        Daemon::start(&["--home-store", db.url()]),
        Daemon::start(&["--home-store", db.url()]),
    );
    let (ca, cb) = (a.client(), b.client());
    let (sa, sb) = (
        ca.session_with_home("c").unwrap(),
        cb.session_with_home("c").unwrap(),
    );
    sa.compute("_home.n = 0").unwrap();
    for n in 1..=5i64 {
        // A has it cached; B commits; A's next compute sees B's write.
        assert_eq!(
            sb.compute("_home.n = _home.n + 1 return _home.n")
                .unwrap()
                .value::<i64>(0)
                .unwrap(),
            n
        );
        assert_eq!(
            sa.compute("return _home.n")
                .unwrap()
                .value::<i64>(0)
                .unwrap(),
            n
        );
    }
}

#[test]
fn a_cluster_puts_a_home_on_its_daemon_and_fails_over_while_it_is_down() {
    let Some(db) = PgDb::fresh("failover") else {
        return;
    };
    let sockets: Vec<PathBuf> = (0..3).map(|_| fresh_socket_path()).collect();
    let mut daemons: Vec<Option<Daemon>> = sockets.iter().map(|s| Some(start(s, &db))).collect();
    let cluster = Cluster::new(sockets.iter().cloned());
    let order = luapool_client::rank(&cluster.ids(), "placed");
    let (s, at) = cluster.open(Some("placed")).unwrap();
    assert_eq!(at, order[0], "not on the home's first daemon");
    s.compute("_home.n = 1").unwrap();
    // Its daemon dies: the open session's next call fails (not repeated
    // elsewhere), and a new session goes to the next daemon, same home.
    let mut first = daemons[order[0]].take().unwrap();
    first.signal(libc::SIGKILL);
    first.wait_exit();
    drop(first);
    assert!(s.compute("_home.n = _home.n + 1").is_err());
    let (s, at) = cluster.open(Some("placed")).unwrap();
    assert_eq!(at, order[1]);
    assert_eq!(
        s.compute("_home.n = _home.n + 1 return _home.n")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        2
    );
    // Back up: new sessions of the home go to it again (after the second
    // it is tried last for).
    daemons[order[0]] = Some(start(&sockets[order[0]], &db));
    eventually(
        "the home goes back to its daemon",
        || matches!(cluster.open(Some("placed")), Ok((_, at)) if at == order[0]),
    );
}

#[test]
fn serve_refuses_a_bad_home_store_at_start() {
    let run = |args: &[&str]| {
        Command::new(luapool_bin())
            .arg("serve")
            .args(["--socket", fresh_socket_path().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--home-store", "postgres://me:secret@127.0.0.1:1/none"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot connect to the home store postgres://me@127.0.0.1:1/none"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    let out = run(&["--home-store", "postgres://x@y/z", "--data", "/tmp/x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--data and --home-store together"
    );
}

#[test]
fn a_daemon_on_the_home_store_keeps_its_thread_count() {
    let Some(db) = PgDb::fresh("threads") else {
        return;
    };
    let d = Daemon::start(&["--home-store", db.url()]);
    let c = d.client();
    c.session_with_home("warm")
        .unwrap()
        .compute("_home.n = 1")
        .unwrap();
    let before = d.status("Threads");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let d = &d;
            scope.spawn(move || {
                let c = d.client();
                for h in 0..10 {
                    let s = c.session_with_home(&format!("t{t}h{h}")).unwrap();
                    s.compute("_home.n = (_home.n or 0) + 1").unwrap();
                }
            });
        }
    });
    assert_eq!(
        d.status("Threads"),
        before,
        "PostgreSQL work started threads"
    );
}

#[test]
fn a_daemon_on_the_home_store_logs_through_rust_log_only() {
    let Some(db) = PgDb::fresh("quiet") else {
        return;
    };
    let socket = fresh_socket_path();
    let child = Command::new(luapool_bin())
        .args(["serve", "--workers", "1", "--socket"])
        .arg(&socket)
        .args(["--home-store", db.url()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the daemon keeps a home", || {
        Client::connect(&socket).is_ok_and(|c| {
            c.session_with_home("quiet")
                .is_ok_and(|s| s.compute("_home.n = 1").is_ok())
        })
    });
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "info lines at RUST_LOG=warn: {err}");
}
