//! A hostile worker (`src/bin/hostile_worker.rs`) in place of the real one:
//! it speaks the protocol, or pretends to, against a real pool. The
//! supervisor must answer with an error or replace it; never panic, hang,
//! or show it another session's tables.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use luapool_protocol::Key;
use luapool_supervisor::{ComputeError, ComputeOptions, HostValue, Pool};

use super::{expect_err, heavy, hostile_pool, rss_kib, wait_for_full_pool, wait_until};

const SECRET: &str = "TOP-SECRET-7f3a9";

/// The string a hostile compute returned.
fn text(r: Result<luapool_supervisor::ComputeOutput, ComputeError>) -> String {
    match r {
        Ok(out) => match out.values.as_slice() {
            [HostValue::Str(s)] => String::from_utf8_lossy(s).into_owned(),
            other => panic!("expected one string, got {other:?}"),
        },
        Err(e) => panic!("expected a result, got {e:?}"),
    }
}

/// A victim session in `pool` holding the secret, and its `_io` id.
fn victim(pool: &Arc<Pool>) -> luapool_supervisor::Session {
    let v = pool.session();
    v.set_input(&serde_json::json!({ "secret": SECRET, "rows": [SECRET, SECRET] }))
        .unwrap();
    v.set_metadata(&serde_json::json!({ "secret": SECRET }))
        .unwrap();
    v
}

/// The victim's `_io.input`, read directly from the store.
fn victim_input(pool: &Pool, v: &luapool_supervisor::Session) -> serde_json::Value {
    let store = pool.store();
    let hv = store
        .extract(&store.host_get(v.io_table_id(), &Key::str("input")).unwrap())
        .unwrap();
    luapool_supervisor::from_host(hv).unwrap()
}

/// What the victim's input must still be.
fn intact() -> serde_json::Value {
    serde_json::json!({ "secret": SECRET, "rows": [SECRET, SECRET] })
}

#[test]
fn garbage_and_broken_frames_cost_the_compute_and_the_worker_only() {
    let attacks = [
        "garbage",
        "garbage-message",
        "huge-frame",
        "huge-lengths",
        "deep-nesting",
        "nan-key",
        "ready-mid-compute",
        "scribble",
    ];
    for attack in attacks {
        let (_h, pool) = hostile_pool(attack, 1);
        let v = victim(&pool);
        let attacker = pool.session();
        for round in 0..3 {
            let e = expect_err(attacker.compute("return 1"), attack);
            match &e {
                ComputeError::WorkerCrashed { message } => {
                    assert!(!message.contains(SECRET));
                    assert!(
                        message.contains("protocol violation") || message.contains("ring"),
                        "{attack}: {message}"
                    );
                }
                // A scribbled region may also just go quiet.
                ComputeError::Timeout { .. } if attack == "scribble" => {}
                other => panic!("{attack} round {round}: {other:?}"),
            }
        }
        wait_for_full_pool(&pool);
        let st = pool.stats();
        assert!(st.restarts == 3 && !st.crash_loop, "{attack}: {st:?}");
        assert_eq!(victim_input(&pool, &v), intact(), "{attack}");
    }
}

#[test]
fn forged_table_ids_of_another_session_are_unknown_tables_never_data() {
    let (h, pool) = hostile_pool("forge", 1);
    let v = victim(&pool);
    h.set_victim(v.io_table_id());
    let attacker = pool.session();
    attacker
        .set_input(&serde_json::json!({ "mine": 1 }))
        .unwrap();
    let seen = text(attacker.compute("return 1"));
    assert!(!seen.contains(SECRET), "leaked: {seen}");
    let lines: Vec<&str> = seen.lines().collect();
    // 7 forged requests + 256 slots of the victim's arena + the arena sweep.
    assert!(lines.len() > 7 + 256, "{} replies", lines.len());
    for line in &lines {
        assert!(
            line.starts_with("Error(RequestError { kind: UnknownTable"),
            "not refused: {line}"
        );
    }
    // Nothing was written anywhere: not the victim, not our own `_io`.
    assert_eq!(victim_input(&pool, &v), intact());
    let store = pool.store();
    assert_eq!(
        store
            .host_get(attacker.io_table_id(), &Key::str("stolen"))
            .unwrap(),
        luapool_protocol::Value::Nil
    );
    // Probing is not a protocol violation: the worker stays.
    assert_eq!(pool.stats().restarts, 0);
}

#[test]
fn a_result_naming_another_sessions_table_is_a_protocol_violation() {
    let (h, pool) = hostile_pool("forge-result", 1);
    let v = victim(&pool);
    h.set_victim(v.io_table_id());
    let e = expect_err(pool.session().compute("return 1"), "forged result");
    match e {
        ComputeError::WorkerCrashed { message } => {
            assert!(message.contains("outside the compute's scope"), "{message}");
            assert!(!message.contains(SECRET));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.stats().crashes, 1);
}

#[test]
fn requests_with_edge_values_get_errors_or_bounded_answers() {
    let (_h, pool) = hostile_pool("bad-requests", 1);
    let s = pool.session();
    s.set_input(&serde_json::json!({ "a": 1 })).unwrap();
    let seen = text(s.compute("return 1"));
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 6, "{seen}");
    // Ranges are capped (4096 values), never 4 billion.
    for line in &lines[..2] {
        assert!(line.starts_with("Fetched"), "{line}");
        assert!(line.matches("Nil").count() <= 4096, "range not capped");
    }
    assert!(
        lines[2].starts_with("Error"),
        "next after a missing key: {}",
        lines[2]
    );
    assert!(lines[3].starts_with("Entries"), "{}", lines[3]);
    // The store refuses a write to `_io.input` whatever the worker sends.
    assert!(
        lines[4].starts_with("Error") && lines[4].contains("ReadOnly"),
        "own _io.input replaced: {}",
        lines[4]
    );
    assert!(
        lines[5].starts_with("Ok"),
        "a cycle through _io: {}",
        lines[5]
    );
    assert_eq!(
        pool.stats().restarts,
        0,
        "edge values are errors, not violations"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_h, pool) = hostile_pool("pipelined", 1);
    let s = pool.session();
    s.set_input(&"first").unwrap();
    s.set_metadata(&"second").unwrap();
    let seen = text(s.compute("return 1"));
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines.len(), 3, "{seen}");
    assert!(lines[0].contains("102, 105, 114, 115, 116"), "{}", lines[0]); // "first"
    assert!(
        lines[1].contains("115, 101, 99, 111, 110, 100"),
        "{}",
        lines[1]
    ); // "second"
    assert!(lines[2].contains("values: [Nil]"), "{}", lines[2]);
}

#[test]
fn a_worker_that_never_reads_its_replies_is_killed_at_the_deadline() {
    let (_h, pool) = hostile_pool("never-drain", 1);
    let s = pool.session();
    let opts = || ComputeOptions {
        timeout: Some(Duration::from_millis(500)),
        ..ComputeOptions::default()
    };
    for _ in 0..2 {
        let e = expect_err(s.compute_with("return 1", opts()), "never-drain");
        assert!(matches!(e, ComputeError::Timeout { .. }), "{e:?}");
    }
    wait_for_full_pool(&pool);
    let st = pool.stats();
    assert_eq!((st.restarts, st.crashes), (2, 0), "{st:?}");
}

#[test]
fn a_silent_worker_times_out() {
    let (_h, pool) = hostile_pool("silent", 1);
    let opts = ComputeOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ComputeOptions::default()
    };
    let e = expect_err(pool.session().compute_with("return 1", opts), "silent");
    assert!(matches!(e, ComputeError::Timeout { .. }), "{e:?}");
}

#[test]
fn a_message_announced_huge_but_never_sent_does_not_allocate_its_length() {
    let _heavy = heavy();
    let (_h, pool) = hostile_pool("trickle", 1);
    let before = rss_kib(std::process::id());
    let opts = || ComputeOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ComputeOptions::default()
    };
    for _ in 0..5 {
        let e = expect_err(pool.session().compute_with("return 1", opts()), "trickle");
        assert!(matches!(e, ComputeError::Timeout { .. }), "{e:?}");
    }
    let grew = rss_kib(std::process::id()).saturating_sub(before) >> 10;
    // Allocating what was announced would be 200 MB at once.
    assert!(
        grew < 100,
        "5 announced 200 MB messages grew the supervisor by {grew} MiB"
    );
}

#[test]
fn a_worker_talking_between_computes_is_replaced_before_the_next_one() {
    let (_h, pool) = hostile_pool("unsolicited", 1);
    let s = pool.session();
    assert_eq!(text(s.compute("return 1")), "ok");
    wait_until(
        "the idle check replaces the chatty worker",
        Duration::from_secs(10),
        || pool.stats().crashes == 1,
    );
    // Its successor starts clean (and misbehaves again, after its compute).
    assert_eq!(text(s.compute("return 1")), "ok");
}

#[test]
fn a_log_flood_reaches_the_sink_but_keeps_at_most_one_mib() {
    let (_h, pool) = hostile_pool("log-flood", 1);
    let lines = Arc::new(Mutex::new(0usize));
    let counted = lines.clone();
    let opts = ComputeOptions {
        timeout: Some(Duration::from_secs(60)),
        on_log: Some(Box::new(move |_: &str| *counted.lock().unwrap() += 1)),
        ..ComputeOptions::default()
    };
    let out = pool.session().compute_with("return 1", opts).unwrap();
    assert_eq!(out.values, vec![HostValue::Str("flooded".into())]);
    assert_eq!(*lines.lock().unwrap(), 20_000);
    let kept: usize = out.logs.iter().map(String::len).sum();
    assert!(
        kept <= 1 << 20 && out.logs.len() < 20_000,
        "kept {kept} bytes"
    );
}
