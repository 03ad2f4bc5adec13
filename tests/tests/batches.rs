//! Computes started by a reply: the thread that finished a compute runs
//! the next one its reply starts (a session's pipelined batch wakes one
//! pool thread, not one per compute), and a reply that blocks on a compute
//! of its own does not wait for itself.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use luapool_supervisor::{ComputeOptions, Pool, Session};

use crate::common::HANG;

/// Runs `n` computes one after another, each started by the reply of the
/// one before; sends the thread each reply ran on.
fn chain(s: Arc<Session>, n: usize, threads: mpsc::Sender<String>) {
    if n == 0 {
        return;
    }
    let next = s.clone();
    s.compute_async(
        "return 1",
        ComputeOptions::default(),
        Box::new(move |r| {
            assert!(r.is_ok(), "{r:?}");
            let name = std::thread::current().name().unwrap_or("").to_string();
            let _ = threads.send(name);
            chain(next, n - 1, threads);
            // Another pool thread, idle, would take the next compute now
            // if this one did not keep it.
            std::thread::sleep(Duration::from_millis(20));
        }),
    );
}

#[test]
fn a_chain_of_computes_started_by_replies_stays_on_the_thread_that_replied() {
    let p = Pool::builder().workers(2).build().unwrap();
    let s = Arc::new(p.session());
    let (tx, rx) = mpsc::channel();
    chain(s, 30, tx);
    let threads: Vec<String> = (0..30).map(|_| rx.recv_timeout(HANG).unwrap()).collect();
    assert!(threads[0].starts_with("luapool-slot-"), "{threads:?}");
    assert!(threads.iter().all(|t| *t == threads[0]), "{threads:?}");
}

#[test]
fn a_reply_that_blocks_on_a_compute_of_its_own_is_answered() {
    let p = Pool::builder().workers(2).build().unwrap();
    let (a, b) = (p.session(), Arc::new(p.session()));
    let (tx, rx) = mpsc::channel();
    a.compute_async(
        "return 1",
        ComputeOptions::default(),
        Box::new(move |_| {
            // On the pool thread that served `a`: a blocking compute.
            let out = b.compute("return 2").map(|o| o.value::<i64>(0).unwrap());
            let _ = tx.send(out);
        }),
    );
    assert_eq!(rx.recv_timeout(HANG).unwrap().unwrap(), 2);
}
