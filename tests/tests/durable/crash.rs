//! The crash loop of issue 14: a real daemon on a real data directory,
//! killed with SIGKILL at random moments while several connections run
//! computes that increment counters in several homes and append records.
//! After every restart, every acknowledged compute's writes are there, and
//! no compute is half there (each home's count equals its records).
//!
//! `LUAPOOL_CRASH_CYCLES` sets the number of kills (default 3; the soak of
//! issue 14 is 200). Also: a home of 1 000 000 records survives a restart,
//! and the restart does not wait for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use luapool_client::Client;

use super::TempDir;
use crate::daemon::harness::{eventually, fresh_socket_path, Daemon};

const HOMES: usize = 3;
const CONNECTIONS: usize = 4;

/// One compute: the count and the log grow together, or not at all.
const STEP: &str = r#"
    _home.count = (_home.count or 0) + 1
    _home.log = _home.log or {}
    _home.log[#_home.log + 1] = { conn = CONN, seq = SEQ }
    return _home.count
"#;

fn cycles() -> usize {
    std::env::var("LUAPOOL_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// A cheap random number (the test's own, seeded by the clock).
fn rand_below(state: &mut u64, n: u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) % n
}

/// What the homes hold now: per home, its count and its (conn, seq) records.
fn read_homes(d: &Daemon) -> Vec<(i64, Vec<(i64, i64)>)> {
    let c = d.client();
    (0..HOMES)
        .map(|h| {
            let s = c.session_with_home(&format!("h{h}")).unwrap();
            let out = s
                .compute("local r = {} for i, e in ipairs(_home.log or {}) do r[i] = {e.conn, e.seq} end return _home.count or 0, r")
                .unwrap();
            let count: i64 = out.value(0).unwrap();
            let log: Vec<(i64, i64)> = out.value(1).unwrap_or_default();
            (count, log)
        })
        .collect()
}

#[test]
fn acknowledged_computes_survive_sigkill_and_none_is_half_there() {
    let dir = TempDir::new("crash");
    let socket = fresh_socket_path();
    let args = ["--data", dir.path()];
    let mut daemon = Daemon::start_at(socket.clone(), &args);
    // (home, conn, seq) of every acknowledged compute.
    let acked: Arc<Mutex<BTreeSet<(usize, i64, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let (acked, stop, socket) = (acked.clone(), stop.clone(), socket.clone());
            std::thread::spawn(move || {
                let mut seq = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(c) = Client::connect(&socket) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let home = conn % HOMES;
                    let Ok(s) = c.session_with_home(&format!("h{home}")) else {
                        continue;
                    };
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let code = STEP
                            .replace("CONN", &conn.to_string())
                            .replace("SEQ", &seq.to_string());
                        match s.compute(&code) {
                            Ok(_) => {
                                acked.lock().unwrap().insert((home, conn as i64, seq));
                            }
                            Err(_) => break, // the daemon died: reconnect
                        }
                    }
                }
            })
        })
        .collect();

    let mut rng = Instant::now().elapsed().as_nanos() as u64 | 1;
    for cycle in 0..cycles() {
        let before = acked.lock().unwrap().len();
        eventually("the clients make progress", || {
            acked.lock().unwrap().len() > before + 5
        });
        std::thread::sleep(Duration::from_millis(rand_below(&mut rng, 200)));
        daemon.signal(libc::SIGKILL);
        daemon.wait_exit();
        // Everything acknowledged before the kill is final now.
        let acknowledged = acked.lock().unwrap().clone();
        drop(daemon); // (removes the socket file: before the next one binds)
        daemon = Daemon::start_at(socket.clone(), &args);
        let homes = read_homes(&daemon);
        for (h, (count, log)) in homes.iter().enumerate() {
            assert_eq!(
                *count as usize,
                log.len(),
                "cycle {cycle}, home h{h}: a compute is half there"
            );
            let present: BTreeSet<(i64, i64)> = log.iter().copied().collect();
            assert_eq!(present.len(), log.len(), "cycle {cycle}: a record twice");
            for &(home, conn, seq) in acknowledged.iter().filter(|a| a.0 == h) {
                assert!(
                    present.contains(&(conn, seq)),
                    "cycle {cycle}: acknowledged compute (home h{home}, conn {conn}, seq {seq}) was lost"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let total: BTreeMap<usize, usize> = read_homes(&daemon)
        .iter()
        .enumerate()
        .map(|(h, (count, _))| (h, *count as usize))
        .collect();
    assert!(total.values().sum::<usize>() >= acked.lock().unwrap().len());
}

#[test]
fn a_home_of_a_million_records_survives_a_restart_that_does_not_wait_for_it() {
    let dir = TempDir::new("million");
    // A debug build on a busy machine: allow the fill 10 minutes.
    let args = [
        "--data",
        dir.path(),
        "--max-timeout",
        "600",
        "--max-cpu-time",
        "0",
        "--max-memory",
        "0",
    ];
    let socket = fresh_socket_path();
    {
        let d = Daemon::start_at(socket.clone(), &args);
        let c = d.client();
        let s = c.session_with_home("big").unwrap();
        let opts = luapool_client::ComputeOptions {
            timeout: Some(Duration::from_secs(600)),
            cpu_time: Some(Duration::ZERO),
            instructions: Some(0),
            memory: Some(0),
            ..luapool_client::ComputeOptions::default()
        };
        s.compute_with(
            "_home.records = {} local r = _home.records \
             for i = 1, 1000000 do r[i] = {id = i, name = 'n' .. i} end _home.n = 1000000",
            opts,
        )
        .unwrap();
        d.signal(libc::SIGKILL);
    }
    let d = Daemon::start_at(socket, &args);
    // The daemon answers at once, with the big home still on disk only.
    let c = d.client();
    let small = c.session_with_home("small").unwrap();
    small.compute("_home.x = 1").unwrap();
    // The operator's stats cover the whole store, homes included.
    let op = d.operator();
    let stats = op.stats().unwrap();
    assert!(
        stats.store.tables < 1000,
        "the restart loaded the big home: {} tables",
        stats.store.tables
    );
    let s = c.session_with_home("big").unwrap();
    let out = s
        .compute("local r = _home.records return #r, r[1].name, r[1000000].id, _home.n")
        .unwrap();
    assert_eq!(out.value::<i64>(0).unwrap(), 1_000_000);
    assert_eq!(out.value::<String>(1).unwrap(), "n1");
    assert_eq!(out.value::<i64>(2).unwrap(), 1_000_000);
    assert_eq!(out.value::<i64>(3).unwrap(), 1_000_000);
    eventually("the big home is in memory now", || {
        op.stats().unwrap().store.tables > 1_000_000
    });
}
