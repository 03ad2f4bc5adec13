//! The table contract of `docs/lua-semantics.md` ("External tables"),
//! point by point, with the edge cases a Lua programmer would try.

use luapool_supervisor::{ComputeError, HostValue, Pool};
use serde_json::{json, Value};

use super::lua_error;
use crate::common::{eval, output, pool, run};

// ------------------------------------------------- 1. type(t) == "table"

#[test]
fn every_external_table_has_type_table() {
    let s = pool().session();
    s.set_input(&json!({ "nested": { "deeper": [1] }, "list": [] }))
        .unwrap();
    s.set_metadata(&json!({ "m": 1 })).unwrap();
    let v = eval(
        &s,
        "_io.output = {}
         local t = ext.table()
         return { type(_io), type(_io.input), type(_io.input.nested), type(_io.input.nested.deeper),
                  type(_io.input.list), type(_io.meta), type(_io.output), type(_home), type(t) }",
    );
    assert_eq!(v, json!(vec!["table"; 9]));
}

// ------------------------------------------------------------- 2. keys

#[test]
fn integer_and_string_keys_are_different() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         t[1] = 'int'; t['1'] = 'str'
         local n = 0; for _ in pairs(t) do n = n + 1 end
         return { t[1], t['1'], n, #t }",
    );
    assert_eq!(v, json!(["int", "str", 2, 1]));
}

#[test]
fn integral_float_key_is_the_integer_key() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         t[2.0] = 'two'; t[1] = 'one'
         local kt; for k in pairs(t) do if k == 2 then kt = math.type(k) end end
         return { t[2], t[2.0], #t, kt, t[2^53] == nil }",
    );
    assert_eq!(v, json!(["two", "two", 2, "integer", true]));
    // The same rule on input: a float-keyed read of an array finds the element.
    s.set_input(&json!({ "a": [10, 20, 30] })).unwrap();
    assert_eq!(eval(&s, "return _io.input.a[3.0]"), json!(30));
}

#[test]
fn float_boolean_negative_and_extreme_keys_round_trip() {
    let s = pool().session();
    run(
        &s,
        "local t = ext.table()
         t[1.5] = 'float'; t[true] = 'yes'; t[false] = 'no'; t[0] = 'zero'; t[-1] = 'minus'
         t[math.maxinteger] = 'max'; t[math.mininteger] = 'min'; t[''] = 'empty'
         _home.t = t",
    );
    let v = eval(
        &s,
        "local t = _home.t
         local n = 0; for _ in pairs(t) do n = n + 1 end
         return { t[1.5], t[true], t[false], t[0], t[-1], t[math.maxinteger], t[math.mininteger], t[''], n, #t }",
    );
    assert_eq!(
        v,
        json!(["float", "yes", "no", "zero", "minus", "max", "min", "empty", 8, 0])
    );
}

#[test]
fn nan_nil_and_table_keys_are_errors_on_write_and_nil_on_read() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         local r = {}
         for _, f in ipairs {
           function() t[0/0] = 1 end,
           function() t[nil] = 1 end,
           function() t[{}] = 1 end,
           function() t[print] = 1 end,
         } do
           local ok, e = pcall(f); r[#r + 1] = ok == false and e or 'no error'
         end
         r[#r + 1] = t[0/0] == nil and t[nil] == nil and t[{}] == nil
         return r",
    );
    let r = v.as_array().unwrap();
    assert!(r[0].as_str().unwrap().contains("NaN"), "{v}");
    assert!(r[1].as_str().unwrap().contains("nil"), "{v}");
    assert!(
        r[2].as_str().unwrap().contains("table cannot be a key"),
        "{v}"
    );
    assert!(
        r[3].as_str().unwrap().contains("function cannot be a key"),
        "{v}"
    );
    assert_eq!(r[4], json!(true));
}

// ----------------------------------------------------------- 3. values

#[test]
fn values_of_every_allowed_type_round_trip_with_their_subtype() {
    let s = pool().session();
    run(
        &s,
        "_home.v = { b = true, f = false, i = 42, x = 1.0, big = math.maxinteger, small = math.mininteger,
                     s = 'a\\0b', e = '', inf = math.huge, t = ext.table() }",
    );
    let v = eval(
        &s,
        "local v = _home.v
         return { v.b, v.f, math.type(v.i), math.type(v.x), v.big == math.maxinteger, v.small == math.mininteger,
                  #v.s, v.s:byte(2), v.e, v.inf == math.huge, type(v.t) }",
    );
    assert_eq!(
        v,
        json!([true, false, "integer", "float", true, true, 3, 0, "", true, "table"])
    );
}

#[test]
fn nil_assignment_deletes_the_key() {
    let s = pool().session();
    run(
        &s,
        "_io.output = { a = 1, b = 2, c = 3 }; _io.output.b = nil",
    );
    assert_eq!(output(&s), json!({ "a": 1, "c": 3 }));
    let v = eval(
        &s,
        "local n = 0; for _ in pairs(_io.output) do n = n + 1 end
         return { n, _io.output.b == nil }",
    );
    assert_eq!(v, json!([2, true]));
}

#[test]
fn invalid_value_types_are_errors_naming_the_key() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         local r = {}
         for _, f in ipairs {
           function() t.fn = print end,
           function() t.co = coroutine.create(function() end) end,
           function() local u = 1 t[7] = function() return u end end,
           function() t.nested = { ok = 1, deep = { bad = print } } end,
         } do
           local ok, e = pcall(f); r[#r + 1] = ok == false and e or 'no error'
         end
         local n = 0; for _ in pairs(t) do n = n + 1 end
         r[#r + 1] = n
         return r",
    );
    let r = v.as_array().unwrap();
    let msg = |i: usize| r[i].as_str().unwrap().to_string();
    assert!(
        msg(0).contains("'fn'") && msg(0).contains("function"),
        "{v}"
    );
    assert!(msg(1).contains("'co'") && msg(1).contains("thread"), "{v}");
    assert!(
        msg(2).contains("key 7") && msg(2).contains("upvalues") && msg(2).contains("'u'"),
        "{v}"
    );
    assert!(
        msg(3).contains("'nested'") && msg(3).contains("'bad'"),
        "{v}"
    );
    assert_eq!(r[4], json!(0), "nothing was stored by the failed writes");
}

#[test]
fn an_invalid_value_not_caught_fails_the_compute_with_the_line() {
    let s = pool().session();
    let msg = lua_error(&s, "local t = ext.table()\nt.fn = print\n");
    assert!(msg.contains(":2:") && msg.contains("'fn'"), "{msg}");
}

// ------------------------------------------- 4. copy vs reference

#[test]
fn assigning_a_plain_table_copies_it_deeply() {
    let s = pool().session();
    let v = eval(
        &s,
        "local plain = { a = { b = 1 }, list = { 1, 2 } }
         local t = ext.table()
         t.p = plain
         plain.a.b = 2; plain.c = 3; plain.list[3] = 3; plain.a = nil
         return { t.p.a.b, t.p.c == nil, #t.p.list, t.p == plain, getmetatable(t.p), getmetatable(plain) == nil }",
    );
    assert_eq!(v, json!([1, true, 2, false, "external table", true]));
}

#[test]
fn a_copied_plain_table_stays_a_copy_across_computes() {
    let s = pool().session();
    run(
        &s,
        "local plain = { n = 1 }; _home.copy = plain; plain.n = 99",
    );
    assert_eq!(eval(&s, "return _home.copy.n"), json!(1));
}

#[test]
fn a_cycle_in_a_plain_table_is_an_error_not_a_hang() {
    let s = pool().session();
    let v = eval(
        &s,
        "local r = {}
         local a = {}; a.self = a
         local ok, e = pcall(function() _io.output = a end); r[1] = e
         local x, y = {}, {}; x.y = y; y.x = x
         ok, e = pcall(function() _io.output = { wrap = x } end); r[2] = e
         local l = {}; l[1] = l
         ok, e = pcall(function() _io.output = l end); r[3] = e
         r[4] = _io.output == nil
         return r",
    );
    for i in 0..3 {
        assert!(v[i].as_str().unwrap_or("").contains("cycle"), "{v}");
    }
    assert_eq!(v[3], json!(true));
}

#[test]
fn errors_inside_plain_tables_name_the_path_briefly() {
    let s = pool().session();
    let v = eval(
        &s,
        "local r = {}
         local ok, e = pcall(function() _io.output = { a = { b = { 1, 2, print } } } end); r[1] = e
         local t = {}; local c = t
         for i = 1, 250 do c.x = {}; c = c.x end
         ok, e = pcall(function() _io.output = t end); r[2] = e
         return r",
    );
    let first = v[0].as_str().unwrap();
    assert!(first.ends_with("cannot assign to key 'output': at key 'a' > 'b' > 3: a built-in or C function (print, string.upper, …) cannot be stored; only functions written in Lua by the script can"), "{first}");
    let deep = v[1].as_str().unwrap();
    assert!(
        deep.contains("nested deeper than 200 levels") && deep.len() < 300,
        "{deep}"
    );
}

#[test]
fn a_plain_table_shared_twice_is_copied_twice_not_a_cycle() {
    let s = pool().session();
    let v = eval(
        &s,
        "local shared = { 1 }
         _io.output = { a = shared, b = shared }
         shared[1] = 2
         return { _io.output.a[1], _io.output.b[1], _io.output.a == _io.output.b }",
    );
    assert_eq!(v, json!([1, 1, false]));
    assert_eq!(output(&s), json!({ "a": [1], "b": [1] }));
}

#[test]
fn a_plain_table_cannot_pass_for_an_external_one() {
    // Fields the worker uses internally, in a script's own metatable, make
    // no external table: the assignment copies, it does not store a
    // reference to table 1.
    let s = pool().session();
    let v = eval(
        &s,
        "local fake = setmetatable({ v = 1 }, { lp_id = 1, lp_rows = true, __name = 'external table' })
         _io.output = { copy = fake }
         fake.v = 2
         return { getmetatable(fake).lp_id, _io.output.copy.v, rawequal(_io.output.copy, fake) }",
    );
    assert_eq!(v, json!([1, 1, false]));
}

#[test]
fn assigning_an_external_table_stores_a_reference() {
    let s = pool().session();
    let v = eval(
        &s,
        "local u = ext.table()
         local t = ext.table()
         t.a = u; t.b = u
         t.inside = { ref = u }          -- a plain table holding an external one
         u.v = 1
         _home.t = t
         return { t.a.v, t.b.v, t.a == t.b, t.a == u, t.inside.ref == u, t.inside.ref.v }",
    );
    assert_eq!(v, json!([1, 1, true, true, true, 1]));
    // Still one table in the next compute: a write through one path shows through the other.
    let v = eval(
        &s,
        "local t = _home.t; t.a.v = 2; return { t.b.v, t.inside.ref.v, t.a == t.b }",
    );
    assert_eq!(v, json!([2, 2, true]));
}

#[test]
fn an_external_table_may_contain_itself_but_the_host_refuses_the_cycle() {
    let s = pool().session();
    let v = eval(&s, "local t = ext.table(); t.self = t; t.n = 1; _io.output = t; return { t.self.self.n, t.self == t }");
    assert_eq!(v, json!([1, true]));
    let err = s.get_output::<Value>().unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");
}

// ------------------------------------- 5. #, ipairs, pairs, next, table.*

#[test]
fn length_is_a_border() {
    let s = pool().session();
    s.set_input(&json!({ "a": [1, 2, 3], "empty": [], "obj": { "x": 1 } }))
        .unwrap();
    let v = eval(
        &s,
        "local t = ext.table()
         for i = 1, 10 do t[i] = i end
         local r = { #t }
         t[10] = nil; r[#r + 1] = #t
         t[#t + 1] = 'x'; r[#r + 1] = #t
         t[5] = nil  -- a hole: # is any border, 4 or 10
         local n = #t; r[#r + 1] = (n == 4 or n == 10) and t[n] ~= nil and t[n + 1] == nil
         r[#r + 1] = #_io.input.a; r[#r + 1] = #_io.input.empty; r[#r + 1] = #_io.input.obj
         return r",
    );
    assert_eq!(v, json!([10, 9, 10, true, 3, 0, 0]));
}

#[test]
fn ipairs_stops_at_the_first_nil() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         t[1] = 'a'; t[2] = 'b'; t[4] = 'd'; t.x = 'x'
         local seen = {}
         for i, v in ipairs(t) do seen[#seen + 1] = i .. v end
         return seen",
    );
    assert_eq!(v, json!(["1a", "2b"]));
}

#[test]
fn pairs_visits_every_key_exactly_once_in_a_large_mixed_table() {
    let s = pool().session();
    // 5 000 array entries and 5 000 hash entries, built in Lua and from the host.
    let v = eval(
        &s,
        "local t = ext.table()
         for i = 1, 5000 do t[i] = i end
         for i = 1, 5000 do t['k' .. i] = i end
         _home.big = t
         local seen, n, sum = {}, 0, 0
         for k, v in pairs(t) do
           assert(seen[k] == nil, 'key visited twice: ' .. tostring(k))
           seen[k] = true; n = n + 1; sum = sum + v
         end
         return { n, sum }",
    );
    assert_eq!(v, json!([10_000, 2 * 5000 * 5001 / 2]));
    // Again in a fresh compute (nothing cached: batches from the supervisor).
    let v = eval(
        &s,
        "local seen, n = {}, 0
         for k, v in pairs(_home.big) do
           assert(seen[k] == nil, 'key visited twice: ' .. tostring(k)); seen[k] = true; n = n + 1
         end
         return n",
    );
    assert_eq!(v, json!(10_000));

    let mut input = serde_json::Map::new();
    for i in 0..10_000 {
        input.insert(format!("key{i}"), json!(i));
    }
    s.set_input(&Value::Object(input)).unwrap();
    let v = eval(
        &s,
        "local seen, n, sum = {}, 0, 0
         for k, v in pairs(_io.input) do
           assert(seen[k] == nil, 'key visited twice: ' .. k); seen[k] = true; n = n + 1; sum = sum + v
         end
         return { n, sum }",
    );
    assert_eq!(v, json!([10_000, 9_999 * 10_000 / 2]));
}

#[test]
fn pairs_may_clear_fields_while_traversing() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         for i = 1, 50 do t[i] = i; t['k' .. i] = i end
         _home.t = t
         return 0",
    );
    assert_eq!(v, json!(0));
    let v = eval(
        &s,
        "local t, n = _home.t, 0
         for k in pairs(t) do n = n + 1; t[k] = nil end
         local left = 0; for _ in pairs(t) do left = left + 1 end
         return { n, left, #t, next(t) == nil }",
    );
    assert_eq!(v, json!([100, 0, 0, true]));
}

#[test]
fn next_walks_external_tables() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1, "b": 2, "list": [1, 2, 3], "empty": {} }))
        .unwrap();
    let v = eval(
        &s,
        "local function count(t)
           local n, k = 0, nil
           repeat k = next(t, k); if k ~= nil then n = n + 1 end until k == nil
           return n
         end
         local t = ext.table(); t.x = 1; t[1] = 'one'
         local ok, e = pcall(next, t, 'not-a-key')
         return { count(_io.input), count(_io.input.list), next(_io.input.empty) == nil, count(t),
                  next(ext.table()) == nil, ok, e }",
    );
    assert_eq!(
        v.as_array().unwrap()[0..6],
        json!([4, 3, true, 2, true, false]).as_array().unwrap()[..]
    );
    assert!(v[6].as_str().unwrap().contains("next"), "{v}");
}

#[test]
fn table_library_works_on_writable_external_tables() {
    let s = pool().session();
    let v = eval(
        &s,
        "local t = ext.table()
         for i = 1, 5 do t[i] = i * 10 end
         table.insert(t, 60); table.insert(t, 1, 0)
         local r = { table.concat(t, ',') }
         r[#r + 1] = table.remove(t); r[#r + 1] = table.remove(t, 1)
         r[#r + 1] = table.concat(t, ',', 2, 4)
         local s = ext.table(); s[1] = 'pear'; s[2] = 'apple'; s[3] = 'fig'
         table.sort(s); r[#r + 1] = table.concat(s, ' ')
         table.sort(s, function(a, b) return #a > #b end); r[#r + 1] = s[1]
         r[#r + 1] = select('#', table.unpack(t)); r[#r + 1] = select(2, table.unpack(t))
         local moved = ext.table(); table.move(t, 1, 3, 1, moved); r[#r + 1] = table.concat(moved, ',')
         return r",
    );
    assert_eq!(
        v,
        json!([
            "0,10,20,30,40,50,60",
            60,
            0,
            "20,30,40",
            "apple fig pear",
            "apple",
            5,
            20,
            "10,20,30"
        ])
    );
}

#[test]
fn table_library_reads_input_and_refuses_to_write_it() {
    let s = pool().session();
    s.set_input(&json!({ "arr": [3, 1, 2], "words": ["a", "b"] }))
        .unwrap();
    let v = eval(
        &s,
        "local a = _io.input.arr
         local r = { table.concat(a, '-'), select('#', table.unpack(a)), table.concat(_io.input.words) }
         local sorted = { table.unpack(a) }; table.sort(sorted); r[#r + 1] = table.concat(sorted, ',')
         for _, f in ipairs { function() table.insert(a, 4) end, function() table.sort(a) end,
                              function() table.remove(a) end } do
           local ok, e = pcall(f); r[#r + 1] = ok == false and e or 'no error'
         end
         r[#r + 1] = table.concat(a, '-')
         return r",
    );
    assert_eq!(
        v.as_array().unwrap()[0..4],
        json!(["3-1-2", 3, "ab", "1,2,3"]).as_array().unwrap()[..]
    );
    for i in 4..7 {
        assert!(v[i].as_str().unwrap().contains("read-only"), "{v}");
    }
    assert_eq!(v[7], json!("3-1-2"));
}

// -------------------------------------------------------- 6. identity

#[test]
fn reading_the_same_table_twice_gives_the_same_value() {
    let s = pool().session();
    s.set_input(&json!({ "a": { "x": 1 }, "b": { "y": [1, 2] } }))
        .unwrap();
    let v = eval(
        &s,
        "local i = _io.input
         local seen = {}
         seen[i.a] = 'a'
         return { i.a == i.a, rawequal(i.a, i.a), seen[_io.input.a], i.b.y == i.b.y, _io.input == _io.input }",
    );
    assert_eq!(v, json!([true, true, "a", true, true]));
}

#[test]
fn identity_holds_across_array_windows_of_a_big_array() {
    // 5 000 records: several 1024-key windows; walking them all and coming back
    // finds the same values, also as keys of a plain table.
    let rows: Vec<Value> = (0..5_000).map(|i| json!({ "id": i })).collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows })).unwrap();
    let v = eval(
        &s,
        "local rows = _io.input.rows
         local first, mid = rows[1], rows[2049]
         local seen, distinct = {}, 0
         for i = 1, #rows do
           local r = rows[i]
           if not seen[r] then distinct = distinct + 1 end
           seen[r] = i
         end
         local again = 0
         for i = #rows, 1, -1 do if seen[rows[i]] == i then again = again + 1 end end
         return { distinct, again, rows[1] == first, rows[2049] == mid, rows[1024] ~= rows[1025] }",
    );
    assert_eq!(v, json!([5000, 5000, true, true, true]));
}

#[test]
fn identity_holds_beyond_the_worker_cache() {
    // More rows than a table's cache holds: the cache is dropped and refilled,
    // and rows Lua still holds keep their identity.
    let rows: Vec<Value> = (0..40_000).map(|i| json!({ "id": i })).collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows })).unwrap();
    let v = eval(
        &s,
        "local rows = _io.input.rows
         local kept = {}
         for i = 1, #rows, 997 do kept[i] = rows[i] end
         local sum = 0
         for i = 1, #rows do sum = sum + rows[i].id end
         local same = 0
         for i, r in pairs(kept) do if rows[i] == r and r.id == i - 1 then same = same + 1 end end
         local n = 0; for _ in pairs(kept) do n = n + 1 end
         return { sum, same == n }",
    );
    assert_eq!(v, json!([39_999 * 40_000 / 2, true]));
}

#[test]
fn read_only_rows_read_again_after_the_worker_cache_dropped_them() {
    // Enough rows that the worker's read-only cache is emptied on the way
    // (128 Ki values): the rows kept are then read again through the
    // supervisor, by integer key, by string key, by length and by pairs.
    let rows: Vec<Value> = (0..60_000)
        .map(|i| json!([i, -i, { "s": format!("r{i}") }]))
        .collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows })).unwrap();
    let v = eval(
        &s,
        "local rows = _io.input.rows
         local kept = {}
         for i = 1, #rows, 997 do kept[i] = rows[i] end
         local sum = 0
         for i = 1, #rows do sum = sum + rows[i][1] end
         local ok = 0
         for i, r in pairs(kept) do
           -- r itself first: reading rows[i] would bring its window back.
           local a, b, c, len = r[1], r[2], r[3].s, #r
           local n = 0
           for _ in pairs(r) do n = n + 1 end
           if a == i - 1 and b == 1 - i and c == 'r' .. (i - 1) and len == 3 and n == 3
              and r == rows[i] then ok = ok + 1 end
         end
         local n = 0; for _ in pairs(kept) do n = n + 1 end
         return { sum, ok, n }",
    );
    assert_eq!(v, json!([59_999i64 * 60_000 / 2, 61, 61]));
}

#[test]
fn a_writable_array_of_input_records_reads_back_in_a_later_compute() {
    // A writable table holding references to read-only records: the next
    // compute fetches it by windows, whose values are those records.
    let rows: Vec<Value> = (0..100).map(|i| json!({ "id": i, "v": i * 2 })).collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows })).unwrap();
    run(
        &s,
        "local t = ext.table()
         for i = 1, #_io.input.rows do t[i] = _io.input.rows[i] end
         _io.output = { kept = t }",
    );
    let v = eval(
        &s,
        "local t, sum, same = _io.output.kept, 0, 0
         for i = 1, #t do
           sum = sum + t[i].v
           if t[i] == _io.input.rows[i] then same = same + 1 end
         end
         local ok = pcall(function() t[1].v = 0 end)
         local n, psum = 0, 0
         for k, r in pairs(_io.output.kept) do n = n + 1; psum = psum + r.id end
         local k1, r1 = next(_io.output.kept)
         return { sum, same, ok, n, psum, k1, r1 == _io.input.rows[1] }",
    );
    assert_eq!(v, json!([99 * 100, 100, false, 100, 99 * 100 / 2, 1, true]));
}

#[test]
fn input_tables_stored_in_the_output_read_back_and_convert_in_later_computes() {
    let rows: Vec<Value> = (0..50)
        .map(|i| json!({ "id": i, "tags": ["a", i] }))
        .collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows, "name": "n" })).unwrap();
    run(
        &s,
        "_io.output = { whole = _io.input, rows = _io.input.rows, first = _io.input.rows[1] }",
    );
    let v = eval(
        &s,
        "local o = _io.output
         local n, ids = 0, 0
         for i, r in ipairs(o.rows) do n = n + 1; ids = ids + r.id end
         local keys = 0
         for k in pairs(o.whole) do keys = keys + 1 end
         return { n, ids, #o.rows, keys, o.whole.name, o.first == o.rows[1],
                  o.whole.rows == o.rows, o.rows[50].tags[2], type(o.first.tags) }",
    );
    assert_eq!(
        v,
        json!([50, 49 * 50 / 2, 50, 2, "n", true, true, 49, "table"])
    );
    // And the host reads them back as data.
    let out: Value = s.get_output().unwrap();
    assert_eq!(out["first"], json!({ "id": 0, "tags": ["a", 0] }));
    assert_eq!(out["rows"].as_array().map(Vec::len), Some(50));
    assert_eq!(out["whole"]["name"], json!("n"));
}

// ----------------------------------------------------- 7. read-only input

#[test]
fn input_is_read_only_and_errors_name_the_key() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1, "nested": { "deep": { "x": 1 } }, "list": [1, 2] }))
        .unwrap();
    let v = eval(
        &s,
        "local r = {}
         for _, f in ipairs {
           function() _io.input.a = 2 end,
           function() _io.input.newkey = 1 end,
           function() _io.input.nested.deep.x = nil end,
           function() _io.input.list[3] = 3 end,
           function() _io.input = {} end,
         } do
           local ok, e = pcall(f); r[#r + 1] = ok == false and e or 'no error'
         end
         r[#r + 1] = _io.input.a; r[#r + 1] = _io.input.nested.deep.x; r[#r + 1] = #_io.input.list
         return r",
    );
    let msg = |i: usize| v[i].as_str().unwrap().to_string();
    assert!(
        msg(0).contains("read-only") && msg(0).contains("'a'"),
        "{v}"
    );
    assert!(
        msg(1).contains("read-only") && msg(1).contains("'newkey'"),
        "{v}"
    );
    assert!(
        msg(2).contains("read-only") && msg(2).contains("'x'"),
        "{v}"
    );
    assert!(msg(3).contains("read-only") && msg(3).contains('3'), "{v}");
    assert!(msg(4).contains("read-only"), "{v}");
    assert_eq!(
        v.as_array().unwrap()[5..8],
        json!([1, 1, 2]).as_array().unwrap()[..]
    );
}

#[test]
fn input_tables_referenced_from_output_stay_read_only() {
    let s = pool().session();
    s.set_input(&json!({ "user": { "name": "Alice" } }))
        .unwrap();
    let v = eval(
        &s,
        "_io.output = { user = _io.input.user }
         local ok, e = pcall(function() _io.output.user.name = 'Bob' end)
         return { ok, _io.output.user.name, _io.output.user == _io.input.user }",
    );
    assert_eq!(v, json!([false, "Alice", true]));
    assert_eq!(output(&s), json!({ "user": { "name": "Alice" } }));
}

#[test]
fn raw_access_cannot_bypass_an_external_table() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1 })).unwrap();
    let v = eval(
        &s,
        "local t = ext.table(); t.x = 1
         local r = { rawget(t, 'x') == nil, rawlen(t), rawget(_io.input, 'a') == nil }
         local ok1 = pcall(rawset, t, 'y', 1)
         local ok2 = pcall(rawset, _io.input, 'a', 2)
         r[#r + 1] = ok1; r[#r + 1] = ok2; r[#r + 1] = _io.input.a
         t.y = 5; _home.t = t
         return r",
    );
    assert_eq!(v, json!([true, 0, true, false, false, 1]));
    assert_eq!(eval(&s, "return _home.t.y"), json!(5));
}

// -------------------------------------------------- 8. failed requests

#[test]
fn quota_exceeded_is_a_lua_error_not_a_silent_nil() {
    let p = Pool::builder()
        .workers(1)
        .session_quota(256 * 1024)
        .build()
        .expect("start a pool");
    let s = p.session();
    let v = eval(
        &s,
        "local t = ext.table()
         local ok, e = pcall(function()
           for i = 1, 100 do t[i] = string.rep('x', 16 * 1024) end
         end)
         return { ok, e }",
    );
    assert_eq!(v[0], json!(false));
    assert!(v[1].as_str().unwrap().contains("quota"), "{v}");
    // Uncaught, it ends the compute with QuotaExceeded.
    let r =
        s.compute("local t = ext.table(); for i = 1, 100 do t[i] = string.rep('x', 16 * 1024) end");
    assert!(
        matches!(r, Err(ComputeError::QuotaExceeded { .. })),
        "{r:?}"
    );
    // The session still works afterwards.
    assert_eq!(eval(&s, "return 1 + 1"), json!(2));
    // The host sees the quota too.
    let big = "y".repeat(512 * 1024);
    assert!(s.set_input(&big).is_err());
}

// ------------------------------------------------ strings of any size

#[test]
fn strings_of_1_mib_and_10_mib_travel_in_and_out() {
    let s = pool().session();
    for size in [1usize << 20, 10 << 20] {
        let text: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        s.set_input(&json!({ "text": text })).unwrap();
        let v = eval(
            &s,
            "local t = _io.input.text
             _io.output = { copy = t, upper = t:upper(), len = #t }
             return { #t, t:sub(1, 3), t:sub(-2) }",
        );
        let tail: String = text[size - 2..].to_string();
        assert_eq!(v, json!([size, "abc", tail]));
        let out: String = s.get_output_field("copy").unwrap();
        assert!(out == text, "the {size}-byte string came back different");
        let upper: String = s.get_output_field("upper").unwrap();
        assert_eq!(upper, text.to_uppercase());
        // Returned directly too.
        let mut r = run(&s, "return _io.input.text .. '!'");
        let back = r.values.pop().unwrap();
        assert_eq!(back, HostValue::Str([text.as_bytes(), b"!"].concat()));
    }
}

#[test]
fn binary_strings_round_trip_exactly() {
    let s = pool().session();
    let all: Vec<u8> = (0..=255u8).collect();
    s.set_input(&HostValue::Map(vec![(
        luapool_protocol::Key::str("bytes"),
        HostValue::Str(all.clone()),
    )]))
    .unwrap();
    let mut out = run(
        &s,
        "local b = _io.input.bytes
         local made = {}; for i = 0, 255 do made[#made + 1] = string.char(i) end
         made = table.concat(made)
         _io.output = { same = b == made, b = b }
         return b, made",
    );
    let made = out.values.pop().unwrap();
    let b = out.values.pop().unwrap();
    assert_eq!(b, HostValue::Str(all.clone()));
    assert_eq!(made, HostValue::Str(all.clone()));
    let got: HostValue = s.get_output_field("b").unwrap();
    assert_eq!(got, HostValue::Str(all));
    assert!(s.get_output_field::<bool>("same").unwrap());
}
