//! Every example of the `_io` API reference (the scripts in `examples/`,
//! listed in `examples/README.md`), through real worker
//! processes, with the outputs the reference states. The Lua code is the
//! scripts in `examples/` (so the examples are proven to run); the host side
//! is the Rust session API.

use std::collections::BTreeMap;

use luapool_supervisor::Pool;
use serde::Serialize;
use serde_json::{json, Value};

use crate::common::{eval, json_text, output, pool, run, run_named};

/// The text of `examples/<name>`.
macro_rules! example {
    ($name:literal) => {
        include_str!(concat!("../../examples/", $name))
    };
}

// ---------------------------------------------------------------- Quick Start

// ------------------------------------------------------- JavaScript API: host

#[test]
fn get_io_table_id_is_stable_per_session_and_distinct_across_sessions() {
    let a = pool().session();
    let b = pool().session();
    assert_eq!(a.io_table_id(), a.io_table_id());
    assert_ne!(a.io_table_id(), b.io_table_id());
    assert_eq!(a.table_info().io, a.io_table_id());
    // The id survives computes and clear_io: it names the same `_io` table.
    let before = a.io_table_id();
    a.set_input(&json!({ "x": 1 })).unwrap();
    run(&a, "_io.output = _io.input.x");
    a.clear_io().unwrap();
    assert_eq!(a.io_table_id(), before);
}

#[test]
fn set_input_simple_object() {
    let s = pool().session();
    s.set_input(&json!({ "message": "Hello", "value": 42, "flag": true }))
        .unwrap();
    let v = eval(
        &s,
        "local i = _io.input
         return { i.message, math.type(i.value), i.value, i.flag, type(i) }",
    );
    assert_eq!(v, json!(["Hello", "integer", 42, true, "table"]));
}

#[test]
fn set_input_nested_structure() {
    let s = pool().session();
    s.set_input(&json!({
        "user": { "name": "Alice", "address": { "city": "NYC", "zip": "10001" } },
        "items": [ { "id": 1, "name": "Item 1" }, { "id": 2, "name": "Item 2" } ]
    }))
    .unwrap();
    let v = eval(
        &s,
        "local i = _io.input
         return { i.user.name, i.user.address.city, i.user.address.zip, #i.items, i.items[1].id, i.items[2].name }",
    );
    assert_eq!(v, json!(["Alice", "NYC", "10001", 2, 1, "Item 2"]));
}

#[test]
fn set_input_primitives_and_null() {
    let s = pool().session();
    let probe = "return { type(_io.input), _io.input, tostring(math.type(_io.input)) }";
    s.set_input("simple string").unwrap();
    assert_eq!(eval(&s, probe), json!(["string", "simple string", "nil"]));
    s.set_input(&42).unwrap();
    assert_eq!(eval(&s, probe), json!(["number", 42, "integer"]));
    s.set_input(&1.5).unwrap();
    assert_eq!(eval(&s, probe), json!(["number", 1.5, "float"]));
    s.set_input(&true).unwrap();
    assert_eq!(eval(&s, probe), json!(["boolean", true, "nil"]));
    s.set_input(&Value::Null).unwrap();
    assert_eq!(eval(&s, "return type(_io.input)"), json!("nil"));
    assert_eq!(eval(&s, "return _io.input == nil"), json!(true));
}

#[test]
fn set_input_replaces_the_previous_input() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1, "b": 2 })).unwrap();
    s.set_input(&json!({ "c": 3 })).unwrap();
    assert_eq!(
        eval(
            &s,
            "return { _io.input.a == nil, _io.input.b == nil, _io.input.c }"
        ),
        json!([true, true, 3])
    );
}

#[test]
fn get_output_is_null_when_output_was_not_set() {
    let s = pool().session();
    assert_eq!(output(&s), Value::Null);
    run(&s, "local x = 1");
    assert_eq!(output(&s), Value::Null);
    let typed: Option<BTreeMap<String, i64>> = s.get_output().unwrap();
    assert_eq!(typed, None);
}

#[test]
fn set_input_field_sets_fields_seen_in_lua() {
    let s = pool().session();
    s.set_input_field("userId", &123).unwrap();
    s.set_input_field("action", "update").unwrap();
    s.set_input_field("params", &json!({ "limit": 10 }))
        .unwrap();
    let v = eval(
        &s,
        "return { _io.input.userId == 123, _io.input.action == 'update', _io.input.params.limit == 10 }",
    );
    assert_eq!(v, json!([true, true, true]));
}

#[test]
fn set_input_field_creates_the_input_table() {
    let s = pool().session();
    assert_eq!(eval(&s, "return _io.input == nil"), json!(true));
    s.set_input_field("only", "field").unwrap();
    assert_eq!(
        eval(&s, "return { type(_io.input), _io.input.only }"),
        json!(["table", "field"])
    );
    // A primitive input is not a table: the field goes into a new input table.
    s.set_input(&42).unwrap();
    s.set_input_field("k", &1).unwrap();
    assert_eq!(
        eval(&s, "return { type(_io.input), _io.input.k }"),
        json!(["table", 1])
    );
}

#[test]
fn set_input_field_keeps_other_fields_and_is_read_only_in_lua() {
    let s = pool().session();
    s.set_input(&json!({ "a": 1 })).unwrap();
    s.set_input_field("b", &json!({ "c": 2 })).unwrap();
    assert_eq!(
        eval(&s, "return { _io.input.a, _io.input.b.c }"),
        json!([1, 2])
    );
    let err = s.compute("_io.input.b.c = 3").unwrap_err().to_string();
    assert!(err.contains("read-only") && err.contains("'c'"), "{err}");
}

#[test]
fn get_output_field_returns_one_field_or_null() {
    let s = pool().session();
    run_named(&s, "get_output_field.lua", example!("get_output_field.lua"));
    assert_eq!(s.get_output_field::<Value>("status").unwrap(), json!("ok"));
    assert_eq!(s.get_output_field::<String>("status").unwrap(), "ok");
    assert_eq!(
        s.get_output_field::<Value>("data").unwrap(),
        json!({ "huge": "dataset" })
    );
    assert_eq!(s.get_output_field::<i64>("timestamp").unwrap(), 1234567890);
    assert_eq!(s.get_output_field::<Value>("missing").unwrap(), Value::Null);
    assert_eq!(
        s.get_output_field::<Option<String>>("missing").unwrap(),
        None
    );
}

#[test]
fn get_output_field_is_null_when_output_is_not_a_table() {
    let s = pool().session();
    assert_eq!(s.get_output_field::<Value>("status").unwrap(), Value::Null);
    run(&s, "_io.output = 'just a string'");
    assert_eq!(s.get_output_field::<Value>("status").unwrap(), Value::Null);
}

#[test]
fn set_metadata_is_separate_from_input_and_output() {
    let s = pool().session();
    s.set_metadata(&json!({ "requestId": "req-1" })).unwrap();
    s.set_input(&json!({ "requestId": "input" })).unwrap();
    run(&s, "_io.output = { requestId = 'output' }");
    assert_eq!(
        eval(&s, "return { _io.meta.requestId, _io.input.requestId }"),
        json!(["req-1", "input"])
    );
    assert_eq!(output(&s), json!({ "requestId": "output" }));
}

#[test]
fn clear_io_clears_input_output_and_meta_but_not_home() {
    let s = pool().session();
    s.set_input(&json!({ "data": "test" })).unwrap();
    s.set_metadata(&json!({ "requestId": "r" })).unwrap();
    run(&s, "_io.output = { result = 'done' }; _home.kept = 'yes'");
    assert_eq!(output(&s), json!({ "result": "done" }));
    s.clear_io().unwrap();
    // The reference's example: "_io.input, _io.output, and _io.meta are now nil".
    // (Its setMetadata note says meta is "not cleared by clearIo()"; luapool
    // follows the example.)
    assert_eq!(
        eval(
            &s,
            "return { _io.input == nil, _io.output == nil, _io.meta == nil, _home.kept }"
        ),
        json!([true, true, true, "yes"])
    );
    assert_eq!(output(&s), Value::Null);
}

// ------------------------------------------------------------ Lua API examples

#[test]
fn lua_input_is_nil_when_no_input_was_set() {
    let s = pool().session();
    assert_eq!(eval(&s, "return _io.input == nil"), json!(true));
}

#[test]
fn lua_output_last_assignment_wins_and_can_be_built_incrementally() {
    let s = pool().session();
    s.set_input(&json_text(example!("lua_input.json"))).unwrap();
    run_named(&s, "lua_output.lua", example!("lua_output.lua"));
    assert_eq!(output(&s), json!({ "count": 2 }));
    // The nested form, on its own.
    run(&s, "_io.output = { results = { processed = 100, errors = 0 }, items = { {id = 1, status = 'done'}, {id = 2, status = 'done'} } }");
    assert_eq!(
        output(&s),
        json!({ "results": { "processed": 100, "errors": 0 }, "items": [ { "id": 1, "status": "done" }, { "id": 2, "status": "done" } ] })
    );
}

#[test]
fn lua_output_may_be_a_primitive() {
    let s = pool().session();
    for (code, want) in [
        ("_io.output = 42", json!(42)),
        ("_io.output = 'x'", json!("x")),
        ("_io.output = false", json!(false)),
    ] {
        run(&s, code);
        assert_eq!(output(&s), want, "{code}");
    }
}

#[test]
fn lua_meta_is_readable_and_writable_from_lua() {
    let s = pool().session();
    s.set_metadata(&json_text(example!("set_metadata.meta.json")))
        .unwrap();
    let out = run_named(&s, "lua_meta.lua", example!("lua_meta.lua"));
    assert_eq!(out.logs, vec!["Request ID: req-12345", "Version: 1.0.0"]);
    assert_eq!(output(&s), json!({ "itemsProcessed": 100 }));
    // The runtime metadata stays in _io.meta for later computes.
    assert_eq!(
        eval(
            &s,
            "return { _io.meta.itemsProcessed, type(_io.meta.executionTime), _io.meta.requestId }"
        ),
        json!([100, "number", "req-12345"])
    );
}

// ------------------------------------------------------------------- Patterns

#[test]
fn pattern1_unknown_method_is_an_error_response() {
    let s = pool().session();
    s.set_input(&json!({ "method": "nope", "params": {} }))
        .unwrap();
    run_named(
        &s,
        "pattern1_request_response.lua",
        example!("pattern1_request_response.lua"),
    );
    assert_eq!(output(&s), json!({ "error": "Unknown method" }));
}

/// Records `{id, value}` with values in [0, 100), from a fixed seed.
#[derive(Serialize)]
pub struct Item {
    id: i64,
    value: f64,
}

/// `n` deterministic records (a small xorshift generator: no dependencies).
pub fn items(n: usize) -> Vec<Item> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Item {
                id: i as i64,
                value: (x >> 11) as f64 / (1u64 << 53) as f64 * 100.0,
            }
        })
        .collect()
}

#[derive(Serialize)]
struct Items<'a> {
    items: &'a [Item],
}

#[test]
fn pattern2_batch_processing_100000_records() {
    let data = items(100_000);
    let s = pool().session();
    s.set_input(&Items { items: &data }).unwrap();
    run_named(
        &s,
        "pattern2_batch_processing.lua",
        example!("pattern2_batch_processing.lua"),
    );
    let out = output(&s);
    // Lua adds in index order in f64, as this does: the sums are equal exactly.
    let sum: f64 = data.iter().map(|i| i.value).sum();
    let min = data.iter().map(|i| i.value).fold(f64::INFINITY, f64::min);
    let max = data
        .iter()
        .map(|i| i.value)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(out["count"], json!(100_000));
    assert_eq!(out["sum"].as_f64().unwrap(), sum);
    assert_eq!(out["min"].as_f64().unwrap(), min);
    assert_eq!(out["max"].as_f64().unwrap(), max);
    assert_eq!(out["average"].as_f64().unwrap(), sum / 100_000.0);
    // The reference's figures, for uniform values in [0, 100).
    assert!(
        (out["average"].as_f64().unwrap() - 50.0).abs() < 1.0,
        "{out}"
    );
    assert!(
        (0.0..0.01).contains(&min) && max < 100.0 && max > 99.99,
        "{out}"
    );

    // Performance Considerations, Memory Usage: ipairs over the same records
    // (the reference's 1 000 000 are in the large-arrays test below).
    run_named(&s, "memory_usage.lua", example!("memory_usage.lua"));
    assert_eq!(output(&s), json!({ "processed": 100_000 }));
}

#[test]
fn pattern3_pipeline_filter_then_transform() {
    let s = pool().session();
    let raw = json_text(example!("pattern3_pipeline.json"));
    s.set_input(&raw).unwrap();
    run_named(&s, "pattern3_filter.lua", example!("pattern3_filter.lua"));
    let filtered = output(&s);
    assert_eq!(filtered["items"].as_array().unwrap().len(), 2);
    assert_eq!(filtered["items"][0], raw["items"][0]);
    assert_eq!(filtered["items"][1], raw["items"][2]);

    s.set_input(&filtered).unwrap();
    run_named(
        &s,
        "pattern3_transform.lua",
        example!("pattern3_transform.lua"),
    );
    assert_eq!(
        output(&s),
        json!({ "items": [
            { "id": 1, "fullName": "Ada Lovelace", "age": 30 },
            { "id": 3, "fullName": "Grace Hopper", "age": 41 }
        ] })
    );
}

#[test]
fn pattern3_filter_of_nothing_active_is_an_empty_map() {
    // An ext.table() that stays empty was not made from an array: it is `{}`.
    let s = pool().session();
    s.set_input(&json!({ "items": [ { "id": 1, "active": false } ] }))
        .unwrap();
    run_named(&s, "pattern3_filter.lua", example!("pattern3_filter.lua"));
    assert_eq!(output(&s), json!({ "items": {} }));
}

#[test]
fn pattern5_incremental_field_updates_are_all_visible() {
    let s = pool().session();
    s.set_input(&json!({ "config": { "maxItems": 100, "timeout": 30 } }))
        .unwrap();
    s.set_input_field("currentUser", &json!({ "id": 123, "name": "Alice" }))
        .unwrap();
    let out = run_named(
        &s,
        "pattern5_incremental_fields.lua",
        example!("pattern5_incremental_fields.lua"),
    );
    assert_eq!(out.logs, vec!["Max items: 100", "Current user: Alice"]);
    assert_eq!(eval(&s, "return _io.input.config.timeout"), json!(30));
}

#[test]
fn pattern6_success_returns_the_quotient() {
    let s = pool().session();
    s.set_input(&json!({ "operation": "divide", "a": 10, "b": 4 }))
        .unwrap();
    run_named(
        &s,
        "pattern6_error_handling.lua",
        example!("pattern6_error_handling.lua"),
    );
    assert_eq!(output(&s), json!({ "status": "ok", "result": 2.5 }));
}

// ------------------------------------------------------------- Best Practices

#[test]
fn best_practice1_clear_state_between_requests() {
    let s = pool().session();
    s.set_metadata(&json!({ "requestId": "first" })).unwrap();
    s.set_input(&json!({ "numbers": [1] })).unwrap();
    run(&s, "_io.output = { leftover = true }");
    // The next request: clear, set, compute, get.
    s.clear_io().unwrap();
    s.set_input(&json_text(example!("processing_arrays.json")))
        .unwrap();
    run_named(&s, "bp1_clear_state.lua", example!("bp1_clear_state.lua"));
    assert_eq!(
        output(&s),
        json!({ "hadOutput": false, "hadMeta": false, "numbers": 5 })
    );
}

#[test]
fn best_practice2_validates_input() {
    let s = pool().session();
    let code = example!("bp2_validate_input.lua");
    s.set_input(&json_text(example!("bp2_valid_user.json")))
        .unwrap();
    run_named(&s, "bp2_validate_input.lua", code);
    assert_eq!(output(&s), json!({ "userId": 7 }));
    s.set_input(&json_text(example!("bp2_bad_user_id.json")))
        .unwrap();
    run_named(&s, "bp2_validate_input.lua", code);
    assert_eq!(output(&s), json!({ "error": "Invalid user ID" }));
    s.set_input(&json!({ "other": 1 })).unwrap();
    run_named(&s, "bp2_validate_input.lua", code);
    assert_eq!(output(&s), json!({ "error": "Missing user data" }));
    s.clear_io().unwrap();
    run_named(&s, "bp2_validate_input.lua", code);
    assert_eq!(output(&s), json!({ "error": "Missing user data" }));
}

#[test]
fn best_practice4_null_and_missing_are_both_nil() {
    #[derive(Serialize)]
    struct Input {
        value: Option<i32>,
        missing: Option<i32>,
    }
    let s = pool().session();
    // `undefined` has no JSON form; a Rust `None` is the closest.
    s.set_input(&Input {
        value: None,
        missing: None,
    })
    .unwrap();
    let out = run_named(
        &s,
        "bp4_null_handling.lua",
        example!("bp4_null_handling.lua"),
    );
    assert_eq!(out.logs, vec!["value is nil", "missing is nil"]);
    assert_eq!(
        eval(
            &s,
            "local n = 0; for _ in pairs(_io.input) do n = n + 1 end; return n"
        ),
        json!(0)
    );
    s.set_input(&json_text(example!("bp4_null_handling.json")))
        .unwrap();
    let out = run_named(
        &s,
        "bp4_null_handling.lua",
        example!("bp4_null_handling.lua"),
    );
    assert_eq!(out.logs, vec!["value is nil", "missing is nil"]);
}

#[test]
fn best_practice5_type_guards() {
    let s = pool().session();
    let code = example!("bp5_type_guards.lua");
    for (input, want) in [
        (json!({ "value": 21 }), json!(42)),
        (json!({ "value": 1.5 }), json!(3.0)),
        (json!({ "value": "hi" }), json!("HI")),
        (json!({ "value": [1, 2, 3] }), json!(3)),
        (json!({ "value": { "a": 1 } }), json!(0)),
        (json!({ "value": true }), json!("unknown type")),
        (json!({ "value": null }), json!("unknown type")),
    ] {
        s.set_input(&input).unwrap();
        let mut out = run_named(&s, "bp5_type_guards.lua", code);
        let got: Value = luapool_supervisor::from_host(out.values.pop().unwrap()).unwrap();
        assert_eq!(got, want, "input {input}");
    }
}

#[test]
fn best_practice6_home_persists_across_computes() {
    let s = pool().session();
    let code = example!("bp6_home_persistence.lua");
    s.set_input(&json_text(example!("pattern3_pipeline.json")))
        .unwrap();
    run_named(&s, "bp6_home_persistence.lua", code);
    assert_eq!(output(&s), json!({ "processed": 4, "totalProcessed": 4 }));
    s.clear_io().unwrap();
    s.set_input(&json!({ "items": [1, 2] })).unwrap();
    run_named(&s, "bp6_home_persistence.lua", code);
    assert_eq!(output(&s), json!({ "processed": 2, "totalProcessed": 6 }));
}

#[test]
fn best_practice6_home_is_shared_by_sessions_naming_it() {
    let p = pool();
    let home = format!("bp6-{}", std::process::id());
    let code = example!("bp6_home_persistence.lua");
    let a = p.session_with_home(&home).unwrap();
    a.set_input(&json!({ "items": [1, 2, 3] })).unwrap();
    run_named(&a, "bp6_home_persistence.lua", code);
    assert_eq!(output(&a), json!({ "processed": 3, "totalProcessed": 3 }));
    let b = p.session_with_home(&home).unwrap();
    b.set_input(&json!({ "items": [1] })).unwrap();
    run_named(&b, "bp6_home_persistence.lua", code);
    assert_eq!(output(&b), json!({ "processed": 1, "totalProcessed": 4 }));
}

// ------------------------------------------------ Performance: optimization tips

#[test]
fn optimization_tip_many_input_fields_and_dotted_keys() {
    let s = pool().session();
    s.set_input(&json!({})).unwrap();
    for i in 0..1000 {
        s.set_input_field(&format!("item_{i}"), &i).unwrap();
    }
    // A dotted key is one key, not a path.
    s.set_input_field("user.name", "Alice").unwrap();
    s.set_input_field("user.age", &30).unwrap();
    let v = eval(
        &s,
        "local n = 0; for _ in pairs(_io.input) do n = n + 1 end
         return { n, _io.input.item_999, _io.input['user.name'], _io.input['user.age'], _io.input.user == nil }",
    );
    assert_eq!(v, json!([1002, 999, "Alice", 30, true]));
}

// ---------------------------------------------- Comparison and Migration

#[test]
fn migration_after_sums_100000_numbers() {
    let s = pool().session();
    let data: Vec<i64> = (1..=100_000).collect();
    s.set_input(&json!({ "data": data })).unwrap();
    run_named(&s, "migration.lua", example!("migration.lua"));
    assert_eq!(output(&s), json!({ "sum": 5000050000i64, "count": 100000 }));
}

// ----------------------------------------------------------- Advanced Topics

#[test]
fn deep_nesting_200_levels_in_and_out() {
    let mut v = json!("bottom");
    for _ in 0..200 {
        v = json!({ "next": v });
    }
    let s = pool().session();
    s.set_input(&v).unwrap();
    let got = eval(&s, "local t = _io.input; local d = 0; while type(t) == 'table' do t = t.next; d = d + 1 end; return { d, t }");
    assert_eq!(got, json!([200, "bottom"]));
    run(&s, "_io.output = _io.input");
    assert_eq!(output(&s), v);
}

#[test]
fn type_conversions_host_to_lua() {
    #[derive(Serialize)]
    struct Input {
        undefined: Option<u8>,
    }
    let s = pool().session();
    s.set_input(&json_text(example!("type_conversions.json")))
        .unwrap();
    let out = run_named(&s, "type_conversions.lua", example!("type_conversions.lua"));
    assert_eq!(
        out.logs,
        vec![
            "array\ttable",
            "false\tboolean",
            "float\tnumber",
            "number\tnumber",
            "object\ttable",
            "string\tstring",
            "true\tboolean",
            "null\tnil\tundefined\tnil",
        ]
    );
    let v = eval(
        &s,
        "local i = _io.input
         return { i['true'], i['false'], math.type(i.number), math.type(i.float), i.string,
                  getmetatable(i.object), i.object.a + i.object.b, getmetatable(i.array), #i.array, i.array[3] }",
    );
    assert_eq!(
        v,
        json!([
            true,
            false,
            "integer",
            "float",
            "hello",
            "external table",
            3,
            "external table",
            3,
            3
        ])
    );
    s.set_input(&Input { undefined: None }).unwrap();
    assert_eq!(eval(&s, "return _io.input.undefined == nil"), json!(true));
}

#[test]
fn type_conversions_lua_to_host() {
    let s = pool().session();
    s.set_input(&json_text(example!("type_conversions.json")))
        .unwrap();
    run_named(&s, "type_conversions.lua", example!("type_conversions.lua"));
    assert_eq!(
        output(&s),
        json!({ "bool": false, "int": 123, "str": "hello", "object": { "a": 1, "b": 2 }, "array": [1, 2, 3] })
    );
    // Return values convert the same way: nil → null, true/false, 123, "hello", tables.
    let out = run(
        &s,
        "return nil, true, false, 123, 'hello', _io.input.object, _io.input.array, {}",
    );
    let got: Vec<Value> = out
        .values
        .into_iter()
        .map(|v| luapool_supervisor::from_host(v).unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            json!(null),
            json!(true),
            json!(false),
            json!(123),
            json!("hello"),
            json!({ "a": 1, "b": 2 }),
            json!([1, 2, 3]),
            json!({})
        ]
    );
}

#[test]
fn debugging_tips_table_info_and_logged_structure() {
    let s = pool().session();
    s.set_input(&json_text(example!("quick_start.json")))
        .unwrap();
    let info = s.table_info();
    assert_eq!(info.io, s.io_table_id());
    assert!(info.session_tables >= 3, "{info:?}"); // _io, the input, input.user
    assert!(info.session_bytes > 0);
    let out = run_named(&s, "debugging_tips.lua", example!("debugging_tips.lua"));
    assert_eq!(out.logs.len(), 3, "{:?}", out.logs);
    assert_eq!(out.logs[0], "Input type: table");
    assert!(
        out.logs[1].starts_with("  user = external table: 0x"),
        "{:?}",
        out.logs
    );
    assert!(
        out.logs[2].starts_with("Output:\texternal table: 0x"),
        "{:?}",
        out.logs
    );
    assert_eq!(output(&s), json!({ "ok": true }));
}

// ------------------------------------------------ Working with Large Arrays

/// A field of `/proc/<pid>/status`, in KiB.
fn proc_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB")
}

#[test]
fn large_arrays_1_000_000_items_with_bounded_worker_memory() {
    // A pool of its own: one fresh worker, so its peak RSS is these computes'.
    let p: std::sync::Arc<Pool> = Pool::builder().workers(1).build().expect("start a pool");
    let pid = p.worker_pids()[0].to_string();
    let worker_start = proc_kib(&pid, "VmHWM");
    let s = p.session();

    let data = items(1_000_000);
    let json_bytes = serde_json::to_vec(&Items { items: &data }).unwrap().len() as u64;
    let before = proc_kib("self", "VmRSS");
    s.set_input(&Items { items: &data }).unwrap();
    drop(data);
    // Other tests run in this process too: a rough figure, printed only.
    let supervisor_growth = proc_kib("self", "VmRSS").saturating_sub(before);
    let store_bytes = s.table_info().session_bytes;

    // Advanced Topics: Working with Large Arrays (for i = 1, #items).
    let out = run_named(&s, "large_arrays.lua", example!("large_arrays.lua"));
    assert_eq!(output(&s), json!({ "processed": 1_000_000 }));
    let want: Vec<String> = (1..=100)
        .map(|k| format!("Processed: {}", k * 10_000))
        .collect();
    assert_eq!(out.logs, want);

    let worker_peak = proc_kib(&pid, "VmHWM");
    eprintln!(
        "1M items: input JSON {} KiB; store {} KiB accounted; supervisor RSS +{} KiB; \
         worker peak RSS {} KiB (at start {} KiB)",
        json_bytes / 1024,
        store_bytes / 1024,
        supervisor_growth,
        worker_peak,
        worker_start
    );
    // The worker never holds the input: its peak (process included) is a
    // fraction of the data's size, as JSON text (measured: ~10 MB vs 39 MB)
    // and as the store holds it (~220 MB).
    assert!(
        worker_peak * 1024 < json_bytes / 3,
        "worker peak {worker_peak} KiB vs JSON {json_bytes} B"
    );
    assert!(
        worker_peak * 1024 < store_bytes / 10,
        "worker peak {worker_peak} KiB vs store {store_bytes} B"
    );
}
