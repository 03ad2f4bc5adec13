//! Soak: many mixed computes from several threads (successes, Lua errors,
//! instruction and wall-clock timeouts, heap and quota errors) while a
//! killer thread SIGKILLs workers. Every compute gets exactly one answer, of
//! its own kind and with its own payload; the pool counts exactly as many
//! computes as were served; the store's table count returns to its
//! baseline; the supervisor's RSS stays within a stated bound.
//!
//! CI runs 300 computes; by hand: `LUAPOOL_SOAK=20000 cargo test --release
//! -p luapool-tests --test e2e soak -- --nocapture`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_supervisor::{ComputeError, ComputeOptions, HostValue, Limits, Pool};

use crate::faults::{heavy, kill, rss_kib, wait_for_full_pool};

/// Supervisor RSS growth allowed over the warmed-up baseline, in MiB.
const RSS_BOUND_MIB: u64 = 64;
const THREADS: u64 = 4;
/// A thread drops its session and opens a fresh one every this many computes.
const SESSION_LIFE: u64 = 50;

/// What a compute is, and so what must come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Ok,
    Input,
    LuaError,
    Budget,
    WallClock,
    Memory,
    Quota,
}

fn kind_of(i: u64) -> Kind {
    match i % 40 {
        0 => Kind::WallClock,
        1 | 21 => Kind::Memory,
        2 | 12 | 22 | 32 => Kind::Quota,
        3 | 13 | 23 | 33 | 7 | 27 => Kind::Budget,
        4 | 14 | 24 | 34 | 9 | 19 | 29 | 39 => Kind::LuaError,
        5 | 15 | 25 | 35 => Kind::Input,
        _ => Kind::Ok,
    }
}

fn code_of(kind: Kind, i: u64) -> String {
    match kind {
        Kind::Ok => {
            format!("_io.output = {{ i = {i}, list = {{ 1, 2, {{ deep = true }} }} }} return {i}")
        }
        Kind::Input => "return _io.input.owner".into(),
        Kind::LuaError => format!("local t = {{}} t.x.y = 1 -- {i}\nerror('never reached')"),
        Kind::Budget => "while true do pcall(function() while true do end end) end".into(),
        Kind::WallClock => "while true do end".into(),
        Kind::Memory => "local s = 'x' while true do s = s .. s end".into(),
        Kind::Quota if i.is_multiple_of(3) => "while true do ext.table() end".into(),
        Kind::Quota => "_io.output = { blob = string.rep('q', 2e6) }".into(),
    }
}

#[derive(Default, Debug)]
struct Tally {
    answered: u64,
    ok: u64,
    lua_errors: u64,
    timeouts: u64,
    memory: u64,
    quota: u64,
    crashed: u64,
}

#[test]
fn soak_mixed_computes_with_kills_lose_nothing() {
    let _heavy = heavy();
    let total: u64 = std::env::var("LUAPOOL_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let pool = Pool::builder()
        .workers(2)
        .queue(64)
        .session_quota(1 << 20)
        .restart_intensity(100_000, Duration::from_secs(1))
        .limits(Limits {
            timeout: Duration::from_secs(30),
            cpu_time: Duration::ZERO,
            instructions: 2_000_000,
            memory: 32 << 20,
        })
        .build()
        .unwrap();
    let baseline_tables = pool.stats().store.tables;
    let me = std::process::id();
    let rss_before = rss_kib(me);
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let kills = AtomicU64::new(0);
    // RSS once a tenth of the computes ran (allocator and pool warmed up).
    let rss_warm = AtomicU64::new(0);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            // A kill every ~40 computes, on whichever worker is there.
            let mut last = 0;
            let warm_at = (total / 10).max(1);
            // Stops when every compute was handed out, even if a client
            // panicked (the scope would otherwise wait for us for ever).
            while !done.load(Ordering::Relaxed) && next.load(Ordering::Relaxed) < total {
                let n = next.load(Ordering::Relaxed);
                if n >= warm_at && rss_warm.load(Ordering::Relaxed) == 0 {
                    rss_warm.store(rss_kib(me), Ordering::Relaxed);
                }
                if n >= last + 40 {
                    last = n;
                    if let Some(&pid) = pool.worker_pids().get((n / 40 % 2) as usize) {
                        kill(pid);
                        kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let clients: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn({
                    let (pool, next) = (&pool, &next);
                    move || client(pool, next, total, t)
                })
            })
            .collect();
        let tallies = clients.into_iter().map(|c| c.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        killer.join().unwrap();
        tallies
    });
    let elapsed = started.elapsed();
    wait_for_full_pool(&pool);
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let st = pool.stats();
    let kills = kills.load(Ordering::Relaxed);
    let rss_after = rss_kib(me);
    let rss_warm = rss_warm.load(Ordering::Relaxed);
    eprintln!(
        "soak: {total} computes in {elapsed:.1?} on {} workers: ok {} (values checked), lua errors {}, \
         timeouts {}, memory {}, quota {}, worker crashed {} / {kills} kills; pool: computes {}, restarts {}, \
         crashes {}; store tables {} (baseline {baseline_tables}); supervisor RSS {} MiB at start, \
         {} MiB after a tenth, {} MiB at the end",
        st.workers,
        sum(|t| t.ok),
        sum(|t| t.lua_errors),
        sum(|t| t.timeouts),
        sum(|t| t.memory),
        sum(|t| t.quota),
        sum(|t| t.crashed),
        st.computes,
        st.restarts,
        st.crashes,
        st.store.tables,
        rss_before >> 10,
        rss_warm >> 10,
        rss_after >> 10,
    );
    // Every compute answered once, and the pool served each exactly once.
    assert_eq!(sum(|t| t.answered), total);
    assert_eq!(st.computes, total, "computes served by the pool");
    // Only a kill can cost a compute.
    assert!(
        sum(|t| t.crashed) <= kills,
        "more crashed computes than kills"
    );
    assert!(!st.crash_loop);
    // Every session was dropped: the store is back to its baseline.
    assert_eq!(
        st.store.tables, baseline_tables,
        "store tables after the soak"
    );
    // Stated bound: the supervisor's RSS at the end is within 64 MiB of its
    // RSS before the first compute, whatever the number of computes.
    let grew = rss_after.saturating_sub(rss_before) >> 10;
    assert!(
        grew < RSS_BOUND_MIB,
        "supervisor RSS grew by {grew} MiB (bound {RSS_BOUND_MIB} MiB)"
    );
}

/// One client thread: takes compute numbers until `total`, checks each answer.
fn client(pool: &Arc<Pool>, next: &AtomicU64, total: u64, thread: u64) -> Tally {
    let mut tally = Tally::default();
    let mut session = None;
    let mut session_no = 0;
    let mut used = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return tally;
        }
        if session.is_none() || used == SESSION_LIFE {
            drop(session.take()); // dropped before the next is made
            session_no += 1;
            let s = pool.session();
            let owner = format!("thread {thread} session {session_no}");
            s.set_input(&serde_json::json!({ "owner": owner, "rows": [1, 2, 3] }))
                .unwrap();
            session = Some((s, owner));
            used = 0;
        }
        used += 1;
        let (s, owner) = session.as_ref().unwrap();
        let kind = kind_of(i);
        let opts = match kind {
            Kind::WallClock => ComputeOptions {
                timeout: Some(Duration::from_millis(100)),
                instructions: Some(0),
                ..ComputeOptions::default()
            },
            _ => ComputeOptions::default(),
        };
        let r = s.compute_with(&code_of(kind, i), opts);
        tally.answered += 1;
        match (kind, r) {
            (_, Err(ComputeError::WorkerCrashed { .. })) => tally.crashed += 1,
            (Kind::Ok, Ok(out)) => {
                assert_eq!(out.values, vec![HostValue::Int(i as i64)], "compute {i}");
                tally.ok += 1;
            }
            (Kind::Input, Ok(out)) => {
                assert_eq!(
                    out.values,
                    vec![HostValue::Str(owner.clone().into_bytes())],
                    "compute {i}"
                );
                tally.ok += 1;
            }
            (Kind::LuaError, Err(ComputeError::LuaError { message, .. })) => {
                assert!(
                    message.contains("attempt to index a nil value"),
                    "compute {i}: {message}"
                );
                tally.lua_errors += 1;
            }
            (Kind::Budget, Err(ComputeError::Timeout { message })) => {
                assert!(
                    message.contains("instruction limit"),
                    "compute {i}: {message}"
                );
                tally.timeouts += 1;
            }
            (Kind::WallClock, Err(ComputeError::Timeout { message })) => {
                assert!(message.contains("wall-clock"), "compute {i}: {message}");
                tally.timeouts += 1;
            }
            (Kind::Memory, Err(ComputeError::MemoryLimit { .. })) => tally.memory += 1,
            (Kind::Quota, Err(ComputeError::QuotaExceeded { .. })) => tally.quota += 1,
            (kind, other) => panic!("compute {i} ({kind:?}): unexpected {other:?}"),
        }
    }
}
