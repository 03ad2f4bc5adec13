//! Nothing a script can reach exposes the machinery of external tables
//! (issue 11): `pairs`, `next`, `getmetatable`, `rawget`, `rawequal`,
//! `rawlen`, `select` and error values give what a plain table would; the
//! store refuses a write to `_io.input` whatever the worker sends; and no
//! script makes its worker send a malformed message (which the supervisor
//! would report as a lost worker, "protocol violation").

use luapool_supervisor::ComputeError;
use serde_json::json;

use crate::common::eval;
use crate::common::pool;

/// Runs `code`; any failure but a Lua error (a lost worker above all) fails the test.
fn lua_outcome(s: &luapool_supervisor::Session, code: &str) -> Result<serde_json::Value, String> {
    match s.compute(code) {
        Ok(mut out) => Ok(out
            .values
            .pop()
            .map(|v| luapool_supervisor::from_host(v).unwrap())
            .unwrap_or(serde_json::Value::Null)),
        Err(ComputeError::LuaError { message, .. }) => Err(message),
        Err(other) => panic!("expected a result or a Lua error from:\n{code}\ngot {other:?}"),
    }
}

#[test]
fn pairs_gives_next_and_the_table_itself_nothing_more() {
    let s = pool().session();
    s.set_input(&json!({ "a": [1, 2], "big": (0..100).collect::<Vec<_>>() }))
        .unwrap();
    let v = eval(
        &s,
        "local t = ext.table(); t.x = 1
         _home.h = { y = 2 }
         local out = {}
         for _, x in ipairs { {}, t, _home.h, _io, _io.input, _io.input.a, _io.input.big } do
           local f, st, c = pairs(x)
           out[#out + 1] = { rawequal(st, x), c == nil, getmetatable(f) == nil,
                             f == next or type(f) == 'function' }
         end
         local n = pairs({})
         return { out, rawequal(n, next), select('#', pairs({})) }",
    );
    let row = json!([true, true, true, true]);
    assert_eq!(v, json!([vec![row; 7], true, 3]));
}

#[test]
fn raw_next_from_pairs_cannot_reveal_a_proxy_key_or_crash_the_worker() {
    let s = pool().session();
    // Issue 11: this crashed the worker as a "protocol violation".
    let v = eval(&s, "local n = pairs({}) return n(ext.table())");
    assert_eq!(v, json!(null));
    let v = eval(
        &s,
        "local n = pairs({})
         local k, v = n(_io)
         local seen = {}
         for k in n, _io do seen[#seen + 1] = type(k) end
         return { type(k), #seen }",
    );
    // `_io` holds no entries yet: nothing but its (empty) contents shows.
    assert_eq!(v, json!(["nil", 0]));
}

#[test]
fn the_forged_io_input_attack_of_issue_11_fails_and_changes_nothing() {
    let s = pool().session();
    s.set_input(&json!({ "secret": "real" })).unwrap();
    let attack = "local rawnext = pairs({}); local _, ioid = rawnext(_io)
                  local t = ext.table(); local _, d = pairs(t); t.x = {}
                  getmetatable(d).lp_m.lp_id = ioid
                  t.input = { secret = 'forged' }";
    let r = lua_outcome(&s, attack);
    assert!(r.is_err(), "{r:?}");
    // Writing `_io.input` in any spelling is refused, and refused by the store.
    for code in [
        "_io.input = { secret = 'forged' }",
        "_io['input'] = nil",
        "rawset(_io, 'input', 1)",
        "_io.input.secret = 'forged'",
    ] {
        assert!(lua_outcome(&s, code).is_err(), "{code}");
    }
    assert_eq!(eval(&s, "return _io.input.secret"), json!("real"));
}

#[test]
fn getmetatable_rawget_rawlen_and_rawequal_see_plain_empty_tables() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1 })).unwrap();
    let v = eval(
        &s,
        "local t = ext.table(); t[1] = 'x'; t.k = 'v'
         local out = {}
         for _, x in ipairs { t, _io, _home, _io.input } do
           local k = next({})
           out[#out + 1] = { getmetatable(x), rawget(x, 1) == nil, rawget(x, 'k') == nil,
                             rawlen(x), rawequal(x, x), select('#', rawget(x, 'k')), k == nil }
         end
         return out",
    );
    let row = json!(["external table", true, true, 0, true, 1, true]);
    assert_eq!(v, json!(vec![row; 4]));
}

#[test]
fn error_values_of_the_external_table_layer_are_strings() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1 })).unwrap();
    let v = eval(
        &s,
        "local t = ext.table()
         local out = {}
         for _, f in ipairs {
           function() t[{}] = 1 end,
           function() t.x = print end,
           function() _io.input.a = 2 end,
           function() local c = {}; c.c = c; t.c = c end,
           function() return next(t, 'absent') end,
         } do
           local ok, e = pcall(f)
           out[#out + 1] = { ok, type(e) }
         end
         return out",
    );
    assert_eq!(v, json!(vec![json!([false, "string"]); 5]));
}

/// A small deterministic generator for the fuzz-like script below.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn random_scripts_over_the_ext_api_never_lose_their_worker() {
    // Values a script can reach, and the functions that take tables; each
    // statement runs under pcall, so only the worker's fate matters.
    let values = [
        "t",
        "u",
        "_io",
        "_home",
        "_io.input",
        "_io.input.list",
        "ext.table()",
        "{}",
        "{1, {2}}",
        "deep",
        "nil",
        "0/0",
        "1",
        "2.5",
        "'input'",
        "'k'",
        "true",
        "print",
        "coroutine.create(print)",
        "n",
        "select(2, pairs(t))",
        "(pairs(t))",
        "string.rep('x', 70000)",
        "-1",
        "math.maxinteger",
    ];
    let calls = [
        "rawget(A, B)",
        "rawset(A, B, C)",
        "rawlen(A)",
        "rawequal(A, B)",
        "next(A, B)",
        "n(A, B)",
        "pairs(A)",
        "ipairs(A)",
        "getmetatable(A)",
        "setmetatable(A, B)",
        "A[B] = C",
        "local _ = A[B]",
        "local _ = #A",
        "for k, v in pairs(A) do A[k] = C end",
        "for k in pairs(A) do A[k] = nil end",
        "table.insert(A, C)",
        "table.remove(A)",
        "table.sort(A)",
        "table.concat(A)",
        "select('#', A, B)",
        "_io.output = A",
        "_home[B] = A",
        "tostring(A)",
        "type(A)",
        "table.unpack(A)",
        "return A",
    ];
    let s = pool().session();
    s.set_input(&json!({ "list": [3, 1, 2], "name": "x" }))
        .unwrap();
    let mut rng = Lcg(7);
    for round in 0..60 {
        let mut code = String::from(
            "local t = ext.table(); t[1] = 1; t.k = {v = 1}
             local u = _home; local n = pairs({})
             local deep = {}; for i = 1, 190 do deep = {deep} end
             local function try(f) pcall(f) end\n",
        );
        for _ in 0..25 {
            let call = calls[rng.next(calls.len())]
                .replace('A', values[rng.next(values.len())])
                .replace('B', values[rng.next(values.len())])
                .replace('C', values[rng.next(values.len())]);
            if call.starts_with("return") {
                code.push_str(&format!("if {} then {call} end\n", rng.next(4) == 0));
            } else {
                code.push_str(&format!("try(function() {call} end)\n"));
            }
        }
        match s.compute(&code) {
            Ok(_) | Err(ComputeError::LuaError { .. }) | Err(ComputeError::BadResult { .. }) => {}
            Err(other) => panic!("round {round}: {other:?}\n{code}"),
        }
    }
    assert_eq!(eval(&s, "return _io.input.name"), json!("x"));
}

#[test]
fn a_deep_plain_table_is_stored_and_returned_without_losing_the_worker() {
    let s = pool().session();
    for depth in [100, 150, 199, 250] {
        let code = format!(
            "local e = {{}} for d = 1, {depth} do e = {{e}} end
             local t = ext.table(); t.x = e; _io.output = t; return e"
        );
        match s.compute(&code) {
            Ok(_) | Err(ComputeError::LuaError { .. }) | Err(ComputeError::BadResult { .. }) => {}
            Err(other) => panic!("depth {depth}: {other:?}"),
        }
    }
}
