//! The embedded pool's figures (`Pool::stats`): wait and run times from
//! fixed-size histograms, failed computes by kind, and what each worker
//! does. (The daemon's `stats` and `--metrics`: `daemon/metrics.rs`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_supervisor::{
    CancelToken, ComputeError, ComputeOptions, ComputeTimes, Pool, WorkerState,
};

use crate::common::eventually;

/// A compute that runs at least 200 ms (of its worker's CPU time).
const SLOW: &str = "local t = os.clock() while os.clock() - t < 0.2 do end";

#[test]
fn pool_stats_time_the_computes_that_ran_and_count_failures_by_kind() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let s = pool.session();
    s.compute("return 1").unwrap();
    s.compute(SLOW).unwrap();
    assert!(matches!(
        s.compute("error('x')"),
        Err(ComputeError::LuaError { .. })
    ));
    let budget = ComputeOptions {
        instructions: Some(100_000),
        ..ComputeOptions::default()
    };
    assert!(matches!(
        s.compute_with("while true do end", budget),
        Err(ComputeError::Timeout { .. })
    ));
    // Cancelled before it started: a failure, but it never ran, so it is
    // not timed.
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let opts = ComputeOptions {
        cancel: Some(cancelled),
        ..ComputeOptions::default()
    };
    assert_eq!(
        s.compute_with("return 1", opts),
        Err(ComputeError::Cancelled)
    );

    let st = pool.stats();
    assert_eq!((st.wait.count, st.run.count), (4, 4), "{st:?}");
    assert!(
        st.run.p99_us >= 200_000 && st.run.sum_us >= 200_000,
        "{st:?}"
    );
    let e = &st.errors;
    assert_eq!(
        (e["LuaError"], e["Timeout"], e["Cancelled"]),
        (1, 1, 1),
        "{e:?}"
    );
    assert_eq!(
        e.values().sum::<u64>(),
        3,
        "every kind listed, only these counted"
    );
    assert!(e.contains_key("Busy") && e.contains_key("WorkerCrashed"));
    eventually("the worker is idle", || {
        pool.stats().worker_states == [WorkerState::Idle]
    });
}

#[test]
fn a_caller_may_date_a_computes_arrival_and_count_its_times_too() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let s = pool.session();
    let mine = Arc::new(ComputeTimes::default());
    let opts = ComputeOptions {
        // The request arrived a second ago (say, on a socket).
        arrived: Some(Instant::now() - Duration::from_secs(1)),
        times: Some(mine.clone()),
        ..ComputeOptions::default()
    };
    s.compute_with("return 1", opts).unwrap();
    s.compute("return 2").unwrap();
    let (wait, run) = (mine.wait.latency(), mine.run.latency());
    assert_eq!(
        (wait.count, run.count),
        (1, 1),
        "only the compute it was given"
    );
    assert!(wait.p50_us >= 1_000_000, "{wait:?}");
    let all = pool.stats();
    assert_eq!(all.wait.count, 2);
    assert!(all.wait.p99_us >= 1_000_000, "{:?}", all.wait);
}

#[test]
fn a_running_compute_shows_in_its_workers_state() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let s = pool.session();
    let token = CancelToken::new();
    std::thread::scope(|scope| {
        let opts = ComputeOptions {
            cancel: Some(token.clone()),
            cpu_time: Some(Duration::ZERO),
            timeout: Some(Duration::from_secs(120)),
            ..ComputeOptions::default()
        };
        let run = scope.spawn(|| s.compute_with("while true do end", opts));
        eventually("one worker running for 100 ms, the other idle", || {
            let st = pool.stats().worker_states;
            st.contains(&WorkerState::Idle)
                && st
                    .iter()
                    .any(|w| matches!(w, WorkerState::Running { for_ms } if *for_ms >= 100))
        });
        token.cancel();
        assert_eq!(run.join().unwrap(), Err(ComputeError::Cancelled));
    });
}
