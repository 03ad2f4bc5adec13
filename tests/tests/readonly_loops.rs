//! Loops over read-only input: the worker answers `items[i]` from the window
//! of the array that answered last and `record.field` from the run of
//! records that answered last (`worker/src/ext/readonly/fast.rs`), before
//! any lookup by id. Whatever the order of the reads, the shapes, the
//! tables read in step, a cache dropped on the way or an input replaced
//! between computes, every read gives what the store holds; and nothing a
//! script does to a record changes what a later read gives.

use serde_json::{json, Value};

use crate::common::{eval, pool};

/// `n` records `{id, value, name, flag}` with values from a fixed formula.
fn records(n: i64, scale: f64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({ "id": i, "value": (i % 97) as f64 * scale, "name": format!("n{}", i % 13),
                    "flag": i % 3 == 0 })
        })
        .collect()
}

#[test]
fn fields_read_in_any_order_and_missing_keys_give_the_store_values() {
    let n = 3_000;
    let s = pool().session();
    s.set_input(&json!({ "items": records(n, 0.5) })).unwrap();
    // Fields in turn, one field twice, a key no record has, an integer key,
    // the array walked forwards, backwards and by strides.
    let v = eval(
        &s,
        "local items = _io.input.items
         local ids, sum, names, flags, missing, ints = 0, 0, 0, 0, 0, 0
         for i = 1, #items do
           local r = items[i]
           ids = ids + r.id
           sum = sum + r.value + r.value
           if r.name == 'n' .. (r.id % 13) then names = names + 1 end
           if r.flag == (r.id % 3 == 0) then flags = flags + 1 end
           if r.nope == nil and r.Value == nil then missing = missing + 1 end
           if r[1] == nil and r[0] == nil then ints = ints + 1 end
         end
         local back = 0
         for i = #items, 1, -1 do back = back + items[i].id end
         local strided = 0
         for i = 1, #items, 7 do strided = strided + items[i].value end
         for i = 2, #items, 7 do strided = strided + items[i].value end
         return { ids, sum, names, flags, missing, ints, back, strided, items[#items + 1] == nil, items[0] == nil }",
    );
    let ids = n * (n - 1) / 2;
    let value = |i: i64| (i % 97) as f64 * 0.5;
    let sum: f64 = (0..n).map(|i| 2.0 * value(i)).sum();
    let strided: f64 = (0..n).filter(|i| i % 7 == 0 || i % 7 == 1).map(value).sum();
    assert_eq!(v, json!([ids, sum, n, n, n, n, ids, strided, true, true]));
}

#[test]
fn two_arrays_read_in_step_each_answer_from_their_own_records() {
    let n = 2_500;
    let a: Vec<Value> = (0..n).map(|i| json!({ "x": i, "k": "a" })).collect();
    let b: Vec<Value> = (0..n).map(|i| json!({ "k": "b", "y": 10 * i })).collect();
    let s = pool().session();
    s.set_input(&json!({ "a": a, "b": b })).unwrap();
    let v = eval(
        &s,
        "local a, b = _io.input.a, _io.input.b
         local sum, wrong = 0, 0
         for i = 1, #a do
           local ra, rb = a[i], b[i]
           sum = sum + ra.x + rb.y
           -- The same field name in both shapes, at another position.
           if ra.k ~= 'a' or rb.k ~= 'b' or ra.y ~= nil or rb.x ~= nil then wrong = wrong + 1 end
         end
         return { sum, wrong }",
    );
    assert_eq!(v, json!([11 * n * (n - 1) / 2, 0]));
}

#[test]
fn records_of_changing_shapes_give_each_its_own_fields() {
    // Shapes change every 300 records (inside windows), and some records
    // are arrays: every read still gives that record's own value.
    let rows: Vec<Value> = (0..2_000)
        .map(|i| match (i / 300) % 3 {
            0 => json!({ "v": i }),
            1 => json!({ "w": 0, "v": i }),
            _ => json!([i, { "v": i }]),
        })
        .collect();
    let s = pool().session();
    s.set_input(&json!({ "rows": rows })).unwrap();
    let v = eval(
        &s,
        "local rows, sum = _io.input.rows, 0
         for i = 1, #rows do
           local r = rows[i]
           sum = sum + (r.v or r[1])
         end
         return sum",
    );
    assert_eq!(v, json!(1_999 * 2_000 / 2));
}

#[test]
fn a_record_held_while_the_cache_is_dropped_still_reads_the_store() {
    // 200 000 records: the worker's read-only cache (128 Ki cells) is
    // emptied several times on the way; records held from the start read
    // their fields again through the supervisor.
    let n = 200_000;
    let s = pool().session();
    s.set_input(&json!({ "items": records(n, 1.0) })).unwrap();
    let v = eval(
        &s,
        "local items = _io.input.items
         local first, mid = items[1], items[100001]
         local sum = 0
         for i = 1, #items do sum = sum + items[i].id end
         return { sum, first.id, first.name, mid.id, mid.value, first == items[1] }",
    );
    assert_eq!(
        v,
        json!([
            n * (n - 1) / 2,
            0,
            "n0",
            100_000,
            (100_000 % 97) as f64,
            true
        ])
    );
}

#[test]
fn a_new_input_is_read_fresh_not_from_the_last_compute() {
    // Inputs replaced between computes: the store may give the new records
    // the ids of the old ones; each compute reads its own input's values.
    let s = pool().session();
    for round in 0..4 {
        let scale = f64::from(round + 1);
        s.set_input(&json!({ "items": records(1_500, scale) }))
            .unwrap();
        let v = eval(
            &s,
            "local items, sum = _io.input.items, 0
             for i = 1, #items do sum = sum + items[i].value end
             return sum",
        );
        let want: f64 = (0..1_500).map(|i| (i % 97) as f64 * scale).sum();
        assert_eq!(v, json!(want), "round {round}");
    }
}

#[test]
fn nothing_a_script_does_to_a_record_changes_what_a_loop_reads() {
    let n = 1_200;
    let s = pool().session();
    s.set_input(&json!({ "items": records(n, 1.0) })).unwrap();
    // Every way in: assignment, rawset, setmetatable, the metatable's
    // fields, rawget and next for a backing table, the array itself; then
    // the same loop reads the store's values.
    let v = eval(
        &s,
        "local items = _io.input.items
         local refused, hidden = 0, 0
         for i = 1, #items do
           local r = items[i]
           local attempts = {
             function() r.value = -1 end,
             function() r.fresh = -1 end,
             function() rawset(r, 'value', -1) end,
             function() setmetatable(r, { __index = function() return -1 end }) end,
             function() getmetatable(r).__index = function() return -1 end end,
             function() items[i] = { value = -1 } end,
             function() rawset(items, i, { value = -1 }) end,
           }
           for _, f in ipairs(attempts) do
             if not pcall(f) then refused = refused + 1 end
           end
           if rawget(r, 'value') == nil and rawlen(r) == 0 and getmetatable(r) == 'external table'
              and type(r) == 'table' then hidden = hidden + 1 end
         end
         local sum, seen = 0, 0
         for i = 1, #items do
           local r = items[i]
           sum = sum + r.value
           local k, v = next(r)
           if k ~= nil and r[k] == v then seen = seen + 1 end
         end
         return { refused, hidden, sum, seen }",
    );
    let sum: f64 = (0..n).map(|i| (i % 97) as f64).sum();
    assert_eq!(v, json!([7 * n, n, sum, n]));
}
