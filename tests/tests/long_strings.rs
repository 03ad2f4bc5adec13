//! Strings of any length within the quota travel both ways through the
//! ring, and windows and batches are bounded by bytes as well as keys
//! (issue 10): anything a compute could store, it can read back.

use luapool_supervisor::{ComputeError, ComputeOptions, Session};
use serde_json::json;

use crate::common::eval;
use crate::common::pool;
use crate::faults::heavy;

/// `code` with a Lua heap limit of `mib` MiB.
fn eval_with(s: &Session, mib: u64, code: &str) -> serde_json::Value {
    let opts = ComputeOptions {
        memory: Some(mib << 20),
        ..ComputeOptions::default()
    };
    match s.compute_with(code, opts) {
        Ok(mut out) => luapool_supervisor::from_host(out.values.pop().unwrap()).unwrap(),
        Err(e) => panic!("compute failed: {e:?}\n{code}"),
    }
}

#[test]
fn a_300_mib_string_is_written_and_read_back() {
    // Hundreds of MiB in the store, in this process: not beside a test
    // that measures its RSS.
    let _heavy = heavy();
    // Issue 10: writing one 300 MiB string was a "protocol violation".
    let s = pool().session();
    let v = eval_with(
        &s,
        1024,
        "local s = string.rep('0123456789abcdef', 300 * 2^20 // 16)
         _home.big = s
         local t = ext.table(); t.s = s; _io.output = t
         return #s",
    );
    assert_eq!(v, json!(300u64 << 20));
    // One compute each: every read builds the 300 MiB string in the heap.
    let reads = [
        ("return #_home.big", json!(300u64 << 20)),
        ("local s = _home.big return { s:sub(1, 4), s:sub(-4), s:sub(150 * 2^20 + 1, 150 * 2^20 + 3) }", json!(["0123", "cdef", "012"])),
        ("local n = 0; for k, v in pairs(_home) do if k == 'big' then n = #v end end return n", json!(300u64 << 20)),
        ("return #_io.output.s", json!(300u64 << 20)),
    ];
    for (code, want) in reads {
        assert_eq!(eval_with(&s, 1024, code), want, "{code}");
    }
    eval(&s, "_home.big = nil; _io.output = nil; return 0");
}

#[test]
fn a_table_of_300_strings_of_one_mib_reads_back_one_by_one_and_whole() {
    // Hundreds of MiB in the store, in this process: not beside a test
    // that measures its RSS.
    let _heavy = heavy();
    // Issue 10: reading element 1 fetched the whole window of 1024 keys,
    // past the 256 MiB message limit, and killed the worker.
    let s = pool().session();
    // Written into `_home`, a table this compute did not make: a table
    // cached whole in the worker (made this compute, or small enough to
    // arrive whole) keeps every value it is given (see docs/).
    eval(
        &s,
        "for i = 1, 300 do _home[i] = string.rep(string.char(64 + i % 26), 2^20) end
         return 0",
    );
    let v = eval(
        &s,
        "local t = _home
         local first, last = t[1], t[300]
         local total, ok = 0, 0
         for i = 1, #t do total = total + #t[i]; if t[i]:sub(1, 1) == string.char(64 + i % 26) then ok = ok + 1 end end
         local walked = 0
         for _, v in pairs(t) do walked = walked + #v end
         return { #first, #last, total, ok, walked }",
    );
    let mib = 1u64 << 20;
    assert_eq!(v, json!([mib, mib, 300 * mib, 300, 300 * mib]));
    eval(&s, "for i = 1, 300 do _home[i] = nil end return 0");
}

#[test]
fn long_strings_in_the_input_and_in_stored_tables_read_back_in_every_position() {
    // Hundreds of MiB in the store, in this process: not beside a test
    // that measures its RSS.
    let _heavy = heavy();
    let s = pool().session();
    let big = "x".repeat(3 << 20);
    let mut list: Vec<serde_json::Value> = (0..100).map(|i| json!(i)).collect();
    list[0] = json!(big);
    list[50] = json!(big);
    s.set_input(&json!({ "big": big, "list": list, "nested": { "deep": { "big": big } } }))
        .unwrap();
    let v = eval(
        &s,
        "local i = _io.input
         local n = 0; for _, v in ipairs(i.list) do n = n + (type(v) == 'string' and #v or 1) end
         local w = 0; for k, v in pairs(i) do if k == 'big' then w = #v end end
         -- A plain table holding long strings, at depth, stored and read back.
         local t = ext.table()
         t.plain = { a = i.big, b = { c = i.big .. 'y' }, 1, 2 }
         _home.plain = t.plain
         return { #i.big, n, w, #i.nested.deep.big, #t.plain.a, #t.plain.b.c, t.plain[2] }",
    );
    let m = 3u64 << 20;
    assert_eq!(v, json!([m, 2 * m + 98, m, m, m, m + 1, 2]));
    let v = eval(&s, "return { #_home.plain.a, #_home.plain.b.c }");
    assert_eq!(v, json!([m, m + 1]));
}

#[test]
fn a_string_too_big_for_the_heap_limit_is_a_memory_limit_not_a_crash() {
    // Hundreds of MiB in the store, in this process: not beside a test
    // that measures its RSS.
    let _heavy = heavy();
    let s = pool().session();
    eval_with(
        &s,
        1024,
        "_home.huge = string.rep('z', 100 * 2^20) return 0",
    );
    let opts = ComputeOptions {
        memory: Some(64 << 20),
        ..ComputeOptions::default()
    };
    match s.compute_with("return #_home.huge", opts) {
        Err(ComputeError::MemoryLimit { .. }) => {}
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert_eq!(eval(&s, "_home.huge = nil return 1"), json!(1));
}
