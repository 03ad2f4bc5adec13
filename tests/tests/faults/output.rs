//! Output expansion (issue 10): a table stored once and referenced many
//! times is emitted once per reference, and every conversion out of the
//! store is bounded by bytes. Past the bound: `OutputTooLarge` naming the
//! limit, never an abort, and what was stored stays.

use luapool_supervisor::{ComputeError, HostValue, SessionError, StoreError};

use super::{builder, expect_err, heavy, int, rss_kib};

/// The attack of issue 10: 100 000 references to one 1 MiB string (a 4 MB
/// session that naively converts to ~100 GiB), also under `big` so that
/// `get_output_field` reaches it.
const SHARED_100K: &str = r#"
    local s = ext.table(); s[1] = string.rep("x", 2^20)
    local out = ext.table(); for i = 1, 100000 do out[i] = s end
    _io.output = out
    _io.output.big = out
"#;

#[test]
fn a_table_shared_100_000_times_is_refused_by_bytes_and_stays_stored() {
    let _heavy = heavy();
    let limit = 64 << 20;
    let pool = builder(1).max_output_bytes(limit).build().unwrap();
    let session = pool.session();
    session.compute(SHARED_100K).unwrap();
    let me = std::process::id();
    let before = rss_kib(me);

    let too_large = |r: Result<_, SessionError>| match r {
        Err(SessionError::Store(StoreError::OutputTooLarge { limit: l })) => assert_eq!(l, limit),
        Err(e) => panic!("expected OutputTooLarge, got {e}"),
        Ok(_) => panic!("expected OutputTooLarge, got a value"),
    };
    too_large(session.get_output::<HostValue>().map(drop));
    too_large(session.get_output::<serde_json::Value>().map(drop));
    too_large(session.get_output_msgpack().map(drop));
    too_large(session.get_output_field::<HostValue>("big").map(drop));
    too_large(session.get_output_field_msgpack("big").map(drop));
    let e = expect_err(session.compute("return _io.output"), "return the output");
    assert_eq!(e, ComputeError::OutputTooLarge { limit });
    assert!(e.to_string().contains("67108864 bytes"), "{e}");
    let e = expect_err(
        session.compute("return {a = _io.output, b = 1}"),
        "return it inside a plain table",
    );
    assert_eq!(e, ComputeError::OutputTooLarge { limit });

    // Nothing was lost, and the supervisor never held much more than the limit.
    let grown_mib = rss_kib(me).saturating_sub(before) / 1024;
    assert!(grown_mib < 1024, "the supervisor grew by {grown_mib} MiB");
    assert_eq!(int(&session, "return #_io.output"), 100_000);
    assert_eq!(int(&session, "return #_io.output[77777][1]"), 1 << 20);
    assert_eq!(
        session.get_output_field::<HostValue>("missing").unwrap(),
        HostValue::Nil
    );
}

#[test]
fn outputs_within_the_limit_convert_whole() {
    let pool = builder(1).max_output_bytes(1 << 20).build().unwrap();
    let session = pool.session();
    session
        .compute("local s = {v = string.rep('y', 1000)} local o = {} for i = 1, 100 do o[i] = s end _io.output = o")
        .unwrap();
    let out: Vec<serde_json::Value> = session.get_output().unwrap();
    assert_eq!(out.len(), 100);
    assert_eq!(out[99]["v"].as_str().map(str::len), Some(1000));
    let bytes = session.get_output_msgpack().unwrap();
    assert!(
        bytes.len() > 100_000 && bytes.len() < 110_000,
        "{}",
        bytes.len()
    );
}
