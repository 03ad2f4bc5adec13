//! The host side's conversion edge cases: holes, empty tables, NaN,
//! integers past 2^53, bytes that are not UTF-8, keys of other types.

use luapool_supervisor::{from_host, HostValue};
use serde_json::{json, Value};

use crate::common::{eval, output, pool, run};

// ------------------------------------------- host conversion edge cases

#[test]
fn host_arrays_with_holes_become_maps() {
    let s = pool().session();
    run(&s, "_io.output = { 1, nil, 3 }");
    assert_eq!(output(&s), json!({ "1": 1, "3": 3 }));
    run(
        &s,
        "local t = ext.table(); t[1] = 'a'; t[2] = 'b'; t[4] = 'd'; _io.output = t",
    );
    assert_eq!(output(&s), json!({ "1": "a", "2": "b", "4": "d" }));
    run(&s, "_io.output = { 'a', 'b', n = 2 }");
    assert_eq!(output(&s), json!({ "1": "a", "2": "b", "n": 2 }));
    run(&s, "_io.output = { [0] = 'zero', 'one' }");
    assert_eq!(output(&s), json!({ "1": "one", "0": "zero" }));
    // A null inside a host array is a hole: the array comes back as a map.
    s.set_input(&json!([1, null, 3])).unwrap();
    let v = eval(
        &s,
        "local t = _io.input; _io.output = t; return { t[2] == nil, #t == 1 or #t == 3, t[3] }",
    );
    assert_eq!(v, json!([true, true, 3]));
    assert_eq!(output(&s), json!({ "1": 1, "3": 3 }));
    // Exactly 1..n is an array.
    run(
        &s,
        "local t = ext.table(); for i = 3, 1, -1 do t[i] = i end; _io.output = t",
    );
    assert_eq!(output(&s), json!([1, 2, 3]));
}

#[test]
fn empty_tables_keep_their_origin() {
    let s = pool().session();
    s.set_input(&json!({ "list": [], "obj": {} })).unwrap();
    run(&s, "_io.output = { list = _io.input.list, obj = _io.input.obj, plain = {}, ext = ext.table() }");
    assert_eq!(
        output(&s),
        json!({ "list": [], "obj": {}, "plain": {}, "ext": {} })
    );
    // An array emptied in Lua stays an array.
    run(
        &s,
        "local t = ext.table(); t[1] = 1; t[1] = nil; _io.output = { emptied = t }",
    );
    let out = output(&s);
    assert!(
        out == json!({ "emptied": {} }) || out == json!({ "emptied": [] }),
        "{out}"
    );
}

#[test]
fn nan_and_infinity_become_null_in_json_and_stay_exact_in_host_values() {
    let s = pool().session();
    run(
        &s,
        "_io.output = { nan = 0/0, inf = math.huge, ninf = -math.huge, one = 1.0 }",
    );
    assert_eq!(
        output(&s),
        json!({ "nan": null, "inf": null, "ninf": null, "one": 1.0 })
    );
    assert_eq!(s.get_output_field::<f64>("inf").unwrap(), f64::INFINITY);
    assert_eq!(
        s.get_output_field::<f64>("ninf").unwrap(),
        f64::NEG_INFINITY
    );
    assert!(s.get_output_field::<f64>("nan").unwrap().is_nan());
    match s.get_output_field::<HostValue>("nan").unwrap() {
        HostValue::Float(f) => assert!(f.is_nan()),
        other => panic!("{other:?}"),
    }
    // NaN and infinity from the host reach Lua as floats.
    s.set_input(&vec![f64::NAN, f64::INFINITY]).unwrap();
    let v = eval(
        &s,
        "local a = _io.input; return { a[1] ~= a[1], a[2] == math.huge }",
    );
    assert_eq!(v, json!([true, true]));
}

#[test]
fn integers_beyond_2_pow_53_stay_exact() {
    let s = pool().session();
    let big: i64 = (1 << 53) + 1;
    s.set_input(&json!({ "big": big, "max": i64::MAX, "min": i64::MIN }))
        .unwrap();
    let v = eval(
        &s,
        "local i = _io.input
         _io.output = { big = i.big, max = i.max, min = i.min, lua = math.maxinteger - 1 }
         return { math.type(i.big), i.big - (1 << 53), i.big + 1 == (1 << 53) + 2, i.max == math.maxinteger,
                  i.min == math.mininteger }",
    );
    assert_eq!(v, json!(["integer", 1, true, true, true]));
    let out = output(&s);
    assert_eq!(out["big"].as_i64(), Some(big));
    assert_eq!(out["max"].as_i64(), Some(i64::MAX));
    assert_eq!(out["min"].as_i64(), Some(i64::MIN));
    assert_eq!(out["lua"].as_i64(), Some(i64::MAX - 1));
    assert_eq!(
        serde_json::to_string(&out["big"]).unwrap(),
        "9007199254740993"
    );
    // A u64 above i64::MAX has no Lua integer: it becomes a bigint, exactly.
    s.set_input(&u64::MAX).unwrap();
    assert_eq!(
        eval(
            &s,
            "return { bigint.isbigint(_io.input), tostring(_io.input) }"
        ),
        json!([true, "18446744073709551615"])
    );
}

#[test]
fn non_utf8_strings_are_exact_as_bytes_and_lossy_in_json() {
    let s = pool().session();
    run(
        &s,
        "_io.output = { bad = 'ok\\xff\\xfe!', [\"k\\xff\"] = 1 }",
    );
    let out = output(&s);
    assert_eq!(out["bad"], json!("ok\u{FFFD}\u{FFFD}!"));
    assert_eq!(out["k\u{FFFD}"], json!(1));
    let exact: HostValue = s.get_output_field("bad").unwrap();
    assert_eq!(exact, HostValue::Str(b"ok\xff\xfe!".to_vec()));
}

#[test]
fn map_keys_of_other_types_become_strings_in_json() {
    let s = pool().session();
    run(
        &s,
        "_io.output = { [true] = 't', [1.5] = 'f', [10] = 'i', s = 's' }",
    );
    assert_eq!(
        output(&s),
        json!({ "true": "t", "1.5": "f", "10": "i", "s": "s" })
    );
    // As host values the keys keep their types.
    let hv: HostValue = s.get_output().unwrap();
    let HostValue::Map(entries) = hv else {
        panic!("a map")
    };
    assert!(entries
        .iter()
        .any(|(k, _)| *k == luapool_protocol::Key::Bool(true)));
    assert!(entries
        .iter()
        .any(|(k, _)| *k == luapool_protocol::Key::Int(10)));
}

#[test]
fn integer_and_float_types_survive_the_host_round_trip() {
    let s = pool().session();
    s.set_input(&json!({ "i": 3, "f": 3.0, "neg": -0.5 }))
        .unwrap();
    let v = eval(
        &s,
        "return { math.type(_io.input.i), math.type(_io.input.f), _io.input.neg }",
    );
    assert_eq!(v, json!(["integer", "float", -0.5]));
    run(&s, "_io.output = { i = 3, f = 3.0, d = 7 // 2, q = 7 / 2 }");
    let out = output(&s);
    assert!(out["i"].is_i64() && out["d"].is_i64(), "{out}");
    assert!(out["f"].is_f64() && out["q"].is_f64(), "{out}");
    assert_eq!(
        from_host::<Value>(s.get_output::<HostValue>().unwrap()).unwrap(),
        out
    );
}
