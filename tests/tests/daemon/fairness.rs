//! No tenant keeps a worker from another: computes of every session wait
//! for a worker in one queue, in the order they arrived. A pool thread
//! that finishes a compute runs the next one it starts itself (a
//! pipeline's next, started by the reply) at once only when no other
//! compute waits (`keep_here` in `supervisor/src/pool.rs`); otherwise that
//! one joins the queue behind the others.

use rmpv::Value;

use super::harness::{eventually, Answer, Daemon, Raw};

/// Computes waiting for a worker, daemon-wide.
fn waiting(d: &Daemon) -> usize {
    d.operator()
        .stats()
        .unwrap()
        .queued
        .expect("the operator's figures")
}

/// The next message is the log line `line` of a compute that runs now.
fn runs(raw: &mut Raw, line: &str) {
    let m = raw.next().expect("a log notification");
    assert_eq!(m[0], Value::from(2), "{m}");
    assert_eq!(m[2][2].as_str(), Some(line), "{m}");
}

/// One worker. Tenant A pipelines 8 computes, the first of which waits
/// for the worker; then tenant B's compute waits too, behind it. Once the
/// worker is free, A's first compute runs, then B's (it spins until
/// cancelled), and A's second waits behind it: the `stats` A sends while B
/// runs is answered before any compute of A but the first. (Were A's next
/// compute kept on the pool thread that answered A's first, all 8 would
/// run before B's.)
#[test]
fn a_tenants_pipeline_does_not_keep_the_only_worker_from_another_tenants_compute() {
    let d = Daemon::start(&["--workers", "1", "--cpu-time", "0", "--max-cpu-time", "0"]);
    let long = || Value::Map(vec![("timeout_ms".into(), 120_000.into())]);
    let spin = |name: &str| format!("print('{name}') while true do end");
    // C holds the only worker until cancelled.
    let mut c = d.raw();
    let sc = c.open(1, None);
    c.request(2, "compute", vec![sc.clone(), spin("c").into(), long()]);
    runs(&mut c, "c");

    let mut a = d.raw();
    let sa = a.open(1, None);
    const N: u32 = 8;
    for i in 0..N {
        let code = format!("return {i}");
        a.request(10 + i, "compute", vec![sa.clone(), code.into()]);
    }
    // Its first waits for the worker; the others wait in A's session.
    eventually("A's first compute waits for the worker", || {
        waiting(&d) == 1
    });
    let mut b = d.raw();
    let sb = b.open(1, None);
    b.request(2, "compute", vec![sb.clone(), spin("b").into(), long()]);
    eventually("B's compute waits behind it", || waiting(&d) == 2);

    c.request(3, "cancel", vec![sc]);
    assert_eq!(c.answer(2), Answer::Err("Cancelled".into()));
    runs(&mut b, "b");
    // B runs: answered at once, this `stats` comes before every compute
    // of A that has not run yet.
    a.request(99, "stats", vec![]);
    let ids = |replies: &[(Option<u64>, Answer)]| -> Vec<u64> {
        replies.iter().map(|(id, _)| id.expect("a msgid")).collect()
    };
    let before = a.responses_until(Some(99));
    assert_eq!(
        ids(&before),
        [10, 99],
        "the msgids A had answered when B's compute started, then its `stats`"
    );

    b.request(3, "cancel", vec![sb]);
    assert_eq!(b.answer(2), Answer::Err("Cancelled".into()));
    let rest = a.responses_until(Some(10 + N - 1));
    assert_eq!(ids(&rest), (11..10 + u64::from(N)).collect::<Vec<_>>());
    for (i, (_, answer)) in before.iter().take(1).chain(&rest).enumerate() {
        let Answer::Ok(out) = answer else {
            panic!("A's compute {i}: {answer:?}")
        };
        assert_eq!(out["values"], Value::Array(vec![(i as u64).into()]));
    }
}
