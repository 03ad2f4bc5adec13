//! Workers that die: killed mid-compute, killed while idle, killed over and
//! over, or a worker program that keeps exiting (the crash-loop guard).

use std::sync::mpsc;
use std::time::Duration;

use luapool_supervisor::{
    ComputeError, ComputeOptions, HostValue, Limits, Pool, PoolError, WorkerState,
};

use super::{
    builder, expect_err, int, kill, rss_kib, still_works, wait_for_full_pool, wait_until, Hostile,
};

#[test]
fn worker_killed_mid_compute_returns_worker_crashed_for_that_compute_only() {
    let pool = builder(2).build().unwrap();
    let (victim, bystander) = (pool.session(), pool.session());
    victim
        .set_input(&serde_json::json!({ "name": "victim" }))
        .unwrap();
    bystander
        .set_input(&serde_json::json!({ "name": "bystander" }))
        .unwrap();
    let (started_tx, started) = mpsc::channel();
    std::thread::scope(|s| {
        // The victim marks its worker with 64 MiB of heap, says it runs, spins.
        let doomed = s.spawn(|| {
            let opts = ComputeOptions {
                timeout: Some(Duration::from_secs(120)),
                instructions: Some(0),
                on_log: Some(Box::new(move |_: &str| {
                    let _ = started_tx.send(());
                })),
                ..ComputeOptions::default()
            };
            victim.compute_with(
                "local pad = string.rep('k', 64 << 20) print('running') while true do end",
                opts,
            )
        });
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("the victim compute started");
        // Meanwhile the other worker keeps serving the other session.
        let busy = s.spawn(|| {
            (0..20)
                .map(|i| {
                    int(
                        &bystander,
                        &format!("local n = 0 for j = 1, 20000 do n = n + 1 end return n + {i}"),
                    )
                })
                .collect::<Vec<_>>()
        });
        let pids = pool.worker_pids();
        let target = *pids.iter().max_by_key(|&&p| rss_kib(p)).unwrap();
        assert!(
            rss_kib(target) > 48 << 10,
            "the victim's worker holds its 64 MiB"
        );
        kill(target);
        let e = expect_err(doomed.join().unwrap(), "killed compute");
        assert!(
            matches!(&e, ComputeError::WorkerCrashed { message } if message.contains("signal 9")),
            "{e:?}"
        );
        assert_eq!(
            busy.join().unwrap(),
            (0..20).map(|i| 20000 + i).collect::<Vec<i64>>()
        );
    });
    wait_for_full_pool(&pool);
    // Both sessions carry on, with their own data intact.
    for (s, name) in [(&victim, "victim"), (&bystander, "bystander")] {
        let out = s.compute("return _io.input.name").unwrap();
        assert_eq!(out.values, vec![HostValue::Str(name.into())]);
        still_works(s);
    }
    let st = pool.stats();
    assert_eq!(
        (st.crashes, st.restarts, st.crash_loop),
        (1, 1, false),
        "{st:?}"
    );
}

#[test]
fn worker_killed_while_idle_is_replaced_before_it_is_needed() {
    let pool = builder(2).build().unwrap();
    let before = pool.worker_pids();
    for &pid in &before {
        kill(pid);
    }
    wait_until("both workers replaced", Duration::from_secs(20), || {
        let now = pool.worker_pids();
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    let s = pool.session();
    for _ in 0..5 {
        still_works(&s);
    }
    assert_eq!(pool.stats().crashes, 2);
}

#[test]
fn killing_a_worker_over_and_over_trips_the_crash_loop_guard() {
    let pool = builder(1)
        .restart_intensity(3, Duration::from_secs(600))
        .build()
        .unwrap();
    let session = pool.session();
    for round in 0..3 {
        let pid = pool.worker_pids()[0];
        kill(pid);
        wait_until("a replacement worker", Duration::from_secs(20), || {
            pool.worker_pids().first().is_some_and(|&p| p != pid)
        });
        still_works(&session);
        assert!(!pool.stats().crash_loop, "round {round}");
    }
    // The fourth crash within the period is one too many.
    kill(pool.worker_pids()[0]);
    wait_until(
        "the crash-loop guard trips",
        Duration::from_secs(20),
        || pool.stats().crash_loop,
    );
    let st = pool.stats();
    assert_eq!((st.alive, st.crashes, st.restarts), (0, 4, 3), "{st:?}");
    let e = expect_err(session.compute("return 1"), "after the crash loop");
    assert!(
        matches!(&e, ComputeError::Unavailable { message } if message.contains("crashed repeatedly")),
        "{e:?}"
    );
}

#[test]
fn a_worker_program_that_keeps_exiting_stops_being_respawned() {
    let (_h, pool) = {
        let h = Hostile::new("ready-then-exit");
        let pool = builder(2)
            .worker_path(h.path())
            .restart_intensity(5, Duration::from_secs(600))
            .build()
            .unwrap();
        (h, pool)
    };
    wait_until(
        "the guard trips and the last worker is gone",
        Duration::from_secs(30),
        || {
            let st = pool.stats();
            st.crash_loop && st.alive == 0
        },
    );
    let settled = pool.stats();
    // A spawn already under way when the guard tripped may still finish
    // (at most one per serving thread); nothing new starts after that.
    wait_until("restarts stop", Duration::from_secs(30), || {
        let before = pool.stats();
        std::thread::sleep(Duration::from_millis(200));
        let after = pool.stats();
        (before.restarts, before.crashes) == (after.restarts, after.crashes) && after.alive == 0
    });
    let later = pool.stats();
    assert!(
        later.restarts <= settled.restarts + 2,
        "no respawning after the guard: {settled:?} then {later:?}"
    );
    assert!(later.crashes > 5 && later.alive == 0, "{later:?}");
    let e = expect_err(pool.session().compute("return 1"), "crash-looping pool");
    assert!(matches!(e, ComputeError::Unavailable { .. }), "{e:?}");
    assert_eq!(pool.stats().errors["Unavailable"], 1);
    wait_until(
        "every worker shows the crash loop",
        Duration::from_secs(30),
        || {
            let st = pool.stats().worker_states;
            st.len() == 2 && st.iter().all(|w| *w == WorkerState::CrashLooped)
        },
    );
}

#[test]
fn a_worker_that_never_gets_ready_fails_the_build_with_a_clear_error() {
    let h = Hostile::new("no-ready");
    let r = Pool::builder().workers(2).worker_path(h.path()).build();
    match r {
        Err(PoolError::Spawn(msg)) => assert!(msg.contains("did not get ready"), "{msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a pool of workers that never start was built"),
    }
}

#[test]
fn timeouts_and_cancels_replace_workers_without_tripping_the_crash_guard() {
    // Intensity 1: two real crashes would trip it, twenty timeouts must not.
    let pool = builder(1)
        .restart_intensity(1, Duration::from_secs(600))
        .limits(Limits {
            timeout: Duration::from_millis(150),
            cpu_time: Duration::ZERO,
            instructions: 0,
            memory: 64 << 20,
        })
        .build()
        .unwrap();
    let session = pool.session();
    for _ in 0..20 {
        let e = expect_err(session.compute("while true do end"), "timeout");
        assert!(matches!(e, ComputeError::Timeout { .. }), "{e:?}");
    }
    still_works(&session);
    let st = pool.stats();
    assert_eq!(
        (st.restarts, st.crashes, st.crash_loop),
        (20, 0, false),
        "{st:?}"
    );
}

#[test]
fn a_worker_that_exits_mid_compute_costs_that_compute_and_is_replaced() {
    // Stands for a script that crashes its worker: repeating it must not
    // take the pool down, even with a guard that trips at the second crash.
    let h = Hostile::new("exit");
    let pool = builder(1)
        .worker_path(h.path())
        .restart_intensity(1, Duration::from_secs(600))
        .build()
        .unwrap();
    let session = pool.session();
    for _ in 0..3 {
        let e = expect_err(session.compute("return 1"), "exit");
        assert!(
            matches!(&e, ComputeError::WorkerCrashed { message } if message.contains("exited with status 1")),
            "{e:?}"
        );
    }
    wait_for_full_pool(&pool);
    let st = pool.stats();
    assert_eq!(
        (st.crashes, st.restarts, st.crash_loop),
        (3, 3, false),
        "{st:?}"
    );
}
