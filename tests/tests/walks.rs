//! Walks (`pairs`, `next`) over external tables obey Lua's rule while the
//! script assigns to the table: every key present for the whole walk is
//! visited exactly once, a key cleared before the walk reaches it is not
//! visited, and every value read is the current one. A differential
//! property test against a plain Lua model (`walks.lua`), across sizes,
//! cache states and random assignments, plus the scripts of issue 12.

use luapool_supervisor::ComputeError;
use serde_json::json;

use crate::common::eval;
use crate::common::pool;

const WALK: &str = include_str!("walks.lua");

fn walk(
    s: &luapool_supervisor::Session,
    seed: u64,
    n: usize,
    state: &str,
    how: &str,
    phase: &str,
) -> Result<serde_json::Value, ComputeError> {
    let code = format!(
        "local SEED, N, STATE, HOW, PHASE = {seed}, {n}, '{state}', '{how}', '{phase}'\n{WALK}"
    );
    let mut out = s.compute(&code)?;
    Ok(luapool_supervisor::from_host(out.values.pop().unwrap()).unwrap())
}

#[test]
fn walks_visit_each_key_once_and_read_current_values_whatever_the_script_assigns() {
    let s = pool().session();
    let mut runs = 0;
    for n in [0usize, 1, 7, 40, 600, 1500] {
        for (seed, state) in ["fresh", "copied", "home", "partial"].iter().enumerate() {
            for how in ["pairs", "next"] {
                let seed = seed as u64 * 1000 + n as u64 + (how == "next") as u64;
                if matches!(*state, "home" | "partial") {
                    walk(&s, seed, n, state, how, "build").unwrap();
                }
                match walk(&s, seed, n, state, how, "walk") {
                    Ok(v) => assert!(v.as_u64().is_some_and(|k| k as usize <= n), "{v}"),
                    Err(e) => panic!("n {n}, state {state}, {how}, seed {seed}: {e:?}"),
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 6 * 4 * 2);
}

#[test]
fn replacing_every_value_by_a_table_during_pairs_visits_each_key_once() {
    // Issue 12's first script: it returned 2000, 3994, 3965, … on different runs.
    let s = pool().session();
    for _ in 0..3 {
        let v = eval(
            &s,
            "local t = ext.table()
             for i = 1, 2000 do t['k'..i] = i end
             local n = 0
             for k, v in pairs(t) do n = n + 1; t[k] = {v = v}; local _ = t[k].v end
             local sum = 0
             for k, v in pairs(t) do sum = sum + v.v end
             return {n, sum}",
        );
        assert_eq!(v, json!([2000, 2001000]));
    }
}

#[test]
fn clearing_the_other_keys_of_a_stored_table_on_the_first_visit_ends_the_walk() {
    // Issue 12's second finding: 512 cleared keys were still visited, and
    // overwriting every value on the first visit read 99 stale values.
    let s = pool().session();
    eval(
        &s,
        "local t = ext.table(); for i = 1, 2000 do t['k'..i] = i end; _home.t = t; return 0",
    );
    let v = eval(
        &s,
        "local t = _home.t
         local n, first = 0, nil
         for k in pairs(t) do
           n = n + 1
           if first == nil then
             first = k
             for i = 1, 2000 do if 'k'..i ~= k then t['k'..i] = nil end end
           end
         end
         return n",
    );
    assert_eq!(v, json!(1));
    eval(
        &s,
        "local t = ext.table(); for i = 1, 2000 do t['k'..i] = i end; _home.t = t; return 0",
    );
    let v = eval(
        &s,
        "local t = _home.t
         local stale, first = 0, true
         for k, v in pairs(t) do
           if first then
             first = false
             for i = 1, 2000 do t['k'..i] = -i end
           elseif v >= 0 then
             stale = stale + 1
           end
         end
         return stale",
    );
    assert_eq!(v, json!(0));
}
