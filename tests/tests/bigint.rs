//! `bigint` in real workers: the global every compute has, fresh per
//! compute, its errors, and its limits under the compute's own.

use luapool_supervisor::{ComputeError, ComputeOptions};
use serde_json::json;

use crate::common::{eval, pool};

#[test]
fn every_compute_has_bigint_and_it_computes_exactly() {
    let s = pool().session();
    assert_eq!(
        eval(
            &s,
            "local f = bigint.new(1)
             for i = 2, 30 do f = f * i end
             return { tostring(f), f:tostring(16), (f // bigint.new('1000000007')):tostring(),
                      type(f), bigint.isbigint(f), bigint.isbigint(1) }"
        ),
        json!([
            "265252859812191058636308480000000",
            "d13f6370f96865df5dd54000000",
            "265252857955421052948361",
            "userdata",
            true,
            false
        ])
    );
}

#[test]
fn a_compute_that_changes_bigint_changes_only_its_own_copy() {
    let s = pool().session();
    for _ in 0..4 {
        // Every worker of the pool sees the change attempt at least once.
        let _ = s.compute("bigint.new = nil; bigint.add = function() return 'hijacked' end");
    }
    assert_eq!(
        eval(&s, "return tostring(bigint.add(bigint.new(2), 3))"),
        json!("5")
    );
}

#[test]
fn bigint_errors_are_lua_errors_a_script_can_catch() {
    let s = pool().session();
    assert_eq!(
        eval(
            &s,
            "local ok, e = pcall(function() return bigint.new(1) // 0 end)
             return { ok, tostring(e):match('bigint: division by zero') ~= nil }"
        ),
        json!([false, true])
    );
    match s.compute("local x = bigint.new('12abc')") {
        Err(ComputeError::LuaError { message, .. }) => {
            assert!(
                message.contains("is not an integer in base 10"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bigint_loop_stops_at_the_compute_limits() {
    let s = pool().session();
    let opts = ComputeOptions {
        instructions: Some(1_000_000),
        ..ComputeOptions::default()
    };
    let r = s.compute_with(
        "local x = bigint.new(3) while true do x = (x * x) % bigint.new('1' .. string.rep('0', 5000)) + 1 end",
        opts,
    );
    assert!(matches!(r, Err(ComputeError::Timeout { .. })), "{r:?}");
    // The worker is fine afterwards.
    assert_eq!(
        eval(&s, "return tostring(bigint.new(2) ^ 64)"),
        json!("18446744073709551616")
    );
}
