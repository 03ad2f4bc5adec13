//! Back-pressure and cancellation: `Busy` at once when every worker is busy
//! and the queue is full; cancelling a queued or a running compute gives
//! `Cancelled` and frees the worker.

use std::sync::mpsc;
use std::time::Duration;

use luapool_supervisor::{CancelToken, ComputeError, ComputeOptions, Limits};

use super::{builder, expect_err, still_works, wait_until};

/// Options for a compute that runs until cancelled and says when it started.
fn spinning(started: mpsc::Sender<()>, cancel: Option<CancelToken>) -> ComputeOptions {
    ComputeOptions {
        timeout: Some(Duration::from_secs(120)),
        instructions: Some(0),
        cancel,
        on_log: Some(Box::new(move |_: &str| {
            let _ = started.send(());
        })),
        ..ComputeOptions::default()
    }
}

#[test]
fn busy_at_once_when_every_worker_is_busy_and_the_queue_is_full() {
    let pool = builder(1).queue(1).build().unwrap();
    let (running, queued, rejected) = (pool.session(), pool.session(), pool.session());
    let (started_tx, started) = mpsc::channel();
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            running.compute_with("print('go') while true do end", spinning(started_tx, None))
        });
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("the first compute runs");
        let second = s.spawn(|| queued.compute("return 2"));
        wait_until(
            "the second compute is queued",
            Duration::from_secs(10),
            || pool.stats().queued == 1,
        );
        // The worker is busy and the queue is full: Busy, without waiting.
        let e = expect_err(rejected.compute("return 3"), "third");
        assert!(matches!(e, ComputeError::Busy), "{e:?}");
        // Cancel both: the queued one never runs, the running one stops.
        queued.cancel();
        let e = expect_err(second.join().unwrap(), "queued");
        assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
        running.cancel();
        let e = expect_err(first.join().unwrap(), "running");
        assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
    });
    // The worker stopped by itself at the cancel flag: freed, not killed.
    let st = pool.stats();
    assert_eq!((st.restarts, st.alive, st.computes), (0, 1, 1), "{st:?}");
    for s in [&running, &queued, &rejected] {
        still_works(s);
    }
}

#[test]
fn cancelling_a_compute_stuck_in_a_c_call_kills_the_worker_after_the_grace() {
    let pool = builder(1)
        .limits(Limits {
            timeout: Duration::from_secs(120),
            cpu_time: Duration::ZERO,
            instructions: 0,
            memory: 64 << 20,
        })
        .build()
        .unwrap();
    let session = pool.session();
    let cancel = CancelToken::new();
    let (started_tx, started) = mpsc::channel();
    std::thread::scope(|s| {
        let stuck = s.spawn(|| {
            // The hook never runs inside this one string.find call.
            let code = "print('go') return string.find(string.rep('a', 50000), '.-.-.-.-b')";
            session.compute_with(code, spinning(started_tx, Some(cancel.clone())))
        });
        started.recv_timeout(Duration::from_secs(30)).unwrap();
        // A cancel that lands between `print` and the call stops the compute
        // at once (the signal turns the hook on for the next instruction):
        // give it time to be inside the call.
        std::thread::sleep(Duration::from_millis(300));
        cancel.cancel();
        let e = expect_err(stuck.join().unwrap(), "stuck");
        assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
    });
    wait_until("a replacement worker", Duration::from_secs(20), || {
        pool.stats().alive == 1
    });
    still_works(&session);
    let st = pool.stats();
    assert_eq!(
        (st.restarts, st.crashes),
        (1, 0),
        "a cancel kill is not a crash: {st:?}"
    );
}

#[test]
fn a_token_cancelled_before_the_compute_is_queued_never_runs() {
    let pool = builder(1).build().unwrap();
    let session = pool.session();
    let cancel = CancelToken::new();
    cancel.cancel();
    let opts = ComputeOptions {
        cancel: Some(cancel),
        ..ComputeOptions::default()
    };
    let e = expect_err(
        session.compute_with("_io.output = 'ran'", opts),
        "pre-cancelled",
    );
    assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
    let out: serde_json::Value = session.get_output().unwrap();
    assert_eq!(out, serde_json::Value::Null, "the compute did not run");
}

#[test]
fn cancelling_a_compute_that_waits_for_its_home_returns_at_once() {
    let pool = builder(2).build().unwrap();
    let (holder, waiter) = (
        pool.session_with_home("h").unwrap(),
        pool.session_with_home("h").unwrap(),
    );
    let (started_tx, started) = mpsc::channel();
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            holder.compute_with("print('go') while true do end", spinning(started_tx, None))
        });
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("the holder runs");
        let token = CancelToken::new();
        let (cancel, waiter) = (token.clone(), &waiter);
        let second = s.spawn(move || {
            waiter.compute_with(
                "return 1",
                ComputeOptions {
                    cancel: Some(cancel),
                    ..ComputeOptions::default()
                },
            )
        });
        // Let it reach the home's line (if it has not, it is cancelled
        // before it gets there: the answer is the same).
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
        let e = expect_err(second.join().unwrap(), "waiting for the home");
        assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
        // It did not wait for the holder, which still runs.
        assert!(!first.is_finished(), "the holder ended first");
        holder.cancel();
        let e = expect_err(first.join().unwrap(), "holder");
        assert!(matches!(e, ComputeError::Cancelled), "{e:?}");
    });
    still_works(&waiter);
}
