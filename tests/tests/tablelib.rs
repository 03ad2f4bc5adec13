//! `table.insert`, `table.remove`, `table.move` and `table.sort` on external
//! arrays leave what Lua leaves on a plain table: a differential property
//! test against a plain model (`tablelib.lua`) across sizes (small ones go
//! through the metamethods, large ones are done whole) and cache states,
//! then read back from the store in the next compute; Lua's error messages;
//! and a sort stopped by a comparator that fails, yields or runs out of
//! instructions.

use luapool_supervisor::{ComputeError, ComputeOptions, Session};
use serde_json::json;

use crate::common::{eval, pool};

const OPS: &str = include_str!("tablelib.lua");

fn run(s: &Session, seed: u64, n: usize, state: &str, phase: &str) -> serde_json::Value {
    let code = format!("local SEED, N, STATE, PHASE = {seed}, {n}, '{state}', '{phase}'\n{OPS}");
    match s.compute(&code) {
        Ok(mut out) => luapool_supervisor::from_host(out.values.pop().unwrap()).unwrap(),
        Err(e) => panic!("seed {seed}, n {n}, {state}, {phase}: {e:?}"),
    }
}

#[test]
fn insert_remove_move_and_sort_leave_what_lua_leaves_whatever_the_cache() {
    let s = pool().session();
    for n in [0usize, 5, 31, 40, 300, 1500] {
        for (i, state) in ["fresh", "copied", "home", "partial"].iter().enumerate() {
            for round in 0..3u64 {
                let seed = 100 * n as u64 + 10 * i as u64 + round;
                if matches!(*state, "home" | "partial") {
                    run(&s, seed, n, state, "build");
                }
                let left = run(&s, seed, n, state, "ops");
                let stored = run(&s, seed, n, state, "verify");
                assert_eq!(left, stored, "seed {seed}, n {n}, {state}");
            }
        }
    }
}

#[test]
fn bad_arguments_give_luas_messages() {
    let s = pool().session();
    let v = eval(
        &s,
        "local out = {}
         for _, big in ipairs({false, true}) do
           local t, p = ext.table(), {}
           for i = 1, big and 100 or 3 do t[i] = i; p[i] = i end
           for _, call in ipairs({
             function(x) table.insert(x, 0, 1) end,
             function(x) table.insert(x, #x + 2, 1) end,
             function(x) table.insert(x, 1, 2, 3) end,
             function(x) table.insert(x, 'a', 1) end,
             function(x) table.remove(x, #x + 2) end,
             function(x) table.move(x, 1, math.maxinteger, 2) end,
             function(x) table.move(x, -1, math.maxinteger - 1, 5) end,
             function(x) table.sort(x, 3) end,
           }) do
             local _, a = pcall(call, t)
             local _, b = pcall(call, p)
             out[#out + 1] = a == b and 'same' or (tostring(a) .. ' vs ' .. tostring(b))
           end
         end
         return out",
    );
    assert_eq!(v, json!(vec!["same"; 16]));
}

#[test]
fn a_sort_whose_comparator_yields_fails_as_lua_does_and_keeps_every_element() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t, p = ext.table(), {}
         for i = 1, 200 do t[i] = (i * 37) % 101; p[i] = (i * 37) % 101 end
         local function cmp(a, b) coroutine.yield(); return a < b end
         local r1 = { coroutine.resume(coroutine.create(function() table.sort(t, cmp) end)) }
         local r2 = { coroutine.resume(coroutine.create(function() table.sort(p, cmp) end)) }
         local same = r1[1] == r2[1] and r1[2] == r2[2]
         for i = 1, 200 do same = same and t[i] == p[i] end
         return { same, r1[1], #t }",
    );
    assert_eq!(v, json!([true, false, 200]));
}

#[test]
fn a_sort_stopped_by_the_instruction_limit_ends_the_compute_and_loses_no_element() {
    let s = pool().session();
    eval(
        &s,
        "local t = ext.table(); for i = 1, 5000 do t[i] = (i * 7919) % 5003 end
         _home.nums = t; return 0",
    );
    let err = s
        .compute_with(
            "table.sort(_home.nums, function(a, b) for _ = 1, 100 do end return a < b end)",
            ComputeOptions {
                instructions: Some(2_000_000),
                ..ComputeOptions::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, ComputeError::Timeout { .. }), "{err:?}");
    // Whatever a stopped compute left (nothing, once computes are atomic),
    // the table holds each of its elements once.
    let v = eval(
        &s,
        "local t, seen, n = _home.nums, {}, 0
         for i = 1, #t do
           local v = t[i]
           if seen[v] then error('twice: ' .. v) end
           seen[v] = true; n = n + 1
         end
         for i = 1, 5000 do if not seen[(i * 7919) % 5003] then error('lost ' .. i) end end
         return n",
    );
    assert_eq!(v, json!(5000));
}

#[test]
fn a_sort_of_records_by_a_field_sorts_the_stored_array() {
    let s = pool().session();
    s.set_input(&json!({
        "rows": (0..3000).map(|i| json!({"id": i, "v": (i * 7919) % 3001})).collect::<Vec<_>>()
    }))
    .unwrap();
    eval(
        &s,
        "local out = ext.table()
         for i, r in ipairs(_io.input.rows) do out[i] = { id = r.id, v = r.v } end
         _io.output = { rows = out }
         return 0",
    );
    eval(
        &s,
        "table.sort(_io.output.rows, function(a, b) return a.v < b.v end) return 0",
    );
    let out: serde_json::Value = s.get_output().unwrap();
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3000);
    assert!(rows
        .windows(2)
        .all(|w| w[0]["v"].as_i64() <= w[1]["v"].as_i64()));
    let mut ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..3000).collect::<Vec<_>>());
}

#[test]
fn a_sort_during_a_walk_by_batches_keeps_the_walk_to_current_values() {
    // Lua's rule for a walk: assigning existing fields is allowed, and a
    // sort assigns only existing fields.
    let s = pool().session();
    eval(
        &s,
        "local t = ext.table(); for i = 1, 2000 do t[i] = (i * 7919) % 2003 end
         _home.walked = t; return 0",
    );
    let v = eval(
        &s,
        "local t, seen, n, first = _home.walked, {}, 0, true
         for k, v in pairs(t) do
           if seen[k] then error('twice: ' .. k) end
           seen[k] = true; n = n + 1
           if first then
             first = false; table.sort(t) -- v was read before the sort
           elseif t[k] ~= v then
             error(('stale at %d: %s, now %s'):format(k, v, t[k]))
           end
         end
         for i = 2, #t do if t[i - 1] > t[i] then error('not sorted at ' .. i) end end
         return n",
    );
    assert_eq!(v, json!(2000));
}
