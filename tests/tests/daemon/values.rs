//! Big integers and functions over the socket (issue 18): MessagePack ext 1
//! and 2 both ways, through raw frames and through the Rust client, and a
//! bad ext payload refused with a clear error and nothing stored.

use luapool_protocol::api::HostValue;
use rmpv::Value;
use serde_json::json;

use super::harness::{Answer, Daemon};

const BIG: &str = "123456789012345678901234567890";

/// The result of compute `code` on session `sid`: its `values`.
fn values(raw: &mut super::harness::Raw, msgid: u32, sid: &Value, code: &str) -> Vec<Value> {
    match raw.call(msgid, "compute", vec![sid.clone(), code.into()]) {
        Answer::Ok(out) => out["values"].as_array().expect("values").clone(),
        other => panic!("{code}: {other:?}"),
    }
}

#[test]
fn ext_1_and_ext_2_travel_both_ways_on_the_socket() {
    let d = Daemon::start(&[]);
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    let input = Value::Map(vec![
        ("n".into(), Value::Ext(1, BIG.as_bytes().to_vec())),
        ("u".into(), Value::from(u64::MAX)),
        (
            "f".into(),
            Value::Ext(2, b"function(a, b) return a .. '+' .. b end".to_vec()),
        ),
    ]);
    assert_eq!(
        raw.call(2, "set_input", vec![sid.clone(), input]),
        Answer::Ok(Value::Nil)
    );
    let out = values(
        &mut raw,
        3,
        &sid,
        "local i = _io.input
         return i.n * 2, i.u, i.f('x', 'y'), bigint.isbigint(i.n), bigint.new(5),
                function(x) return x end",
    );
    assert_eq!(
        out,
        vec![
            Value::Ext(1, b"246913578024691357802469135780".to_vec()),
            Value::Ext(1, u64::MAX.to_string().into_bytes()),
            Value::from("x+y"),
            Value::from(true),
            // A bigint that fits 64 bits stays a bigint.
            Value::Ext(1, b"5".to_vec()),
            Value::Ext(2, b"function(x) return x end".to_vec()),
        ]
    );
    // get_output carries them too.
    values(&mut raw, 4, &sid, "_io.output = { big = -_io.input.n }");
    match raw.call(5, "get_output", vec![sid.clone()]) {
        Answer::Ok(v) => assert_eq!(v["big"], Value::Ext(1, format!("-{BIG}").into_bytes())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_ext_payload_is_a_bad_request_and_stores_nothing() {
    let d = Daemon::start(&[]);
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    raw.call(2, "set_input", vec![sid.clone(), Value::from(7)]);
    for (msgid, bad) in [
        (3, Value::Ext(1, b"12x".to_vec())),
        (4, Value::Ext(1, b"".to_vec())),
        (5, Value::Ext(2, b"os.exit()".to_vec())),
        (6, Value::Ext(9, b"1".to_vec())),
    ] {
        let r = raw.call(
            msgid,
            "set_input",
            vec![sid.clone(), Value::Array(vec![bad.clone()])],
        );
        assert_eq!(r, Answer::Err("BadRequest".into()), "{bad}");
    }
    // The message says what is wrong.
    raw.request(
        7,
        "set_input",
        vec![sid.clone(), Value::Ext(1, b"12x".to_vec())],
    );
    let response = raw.response(7);
    let message = response[2]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"ext type 1 (big integer) holds "12x", not a decimal integer"#),
        "{response:?}"
    );
    // The input is what it was; the connection goes on.
    assert_eq!(
        values(&mut raw, 8, &sid, "return _io.input"),
        vec![Value::from(7)]
    );
}

#[test]
fn the_rust_client_round_trips_big_integers_and_functions() {
    let d = Daemon::start(&[]);
    let c = d.client();
    let s = c.session().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"n": {BIG}, "xs": [1, 2.5, -{BIG}]}}"#)).unwrap();
    s.set_input(&json).unwrap();
    let out = s
        .compute(
            "_io.output = { n = _io.input.n + 1, xs = _io.input.xs, f = function(x) return x end }
             return _io.input.n, function(x) return -x end",
        )
        .unwrap();
    assert_eq!(
        out.values,
        vec![
            HostValue::BigInt(BIG.into()),
            HostValue::Function("function(x) return -x end".into())
        ]
    );
    let got: serde_json::Value = s.get_output().unwrap();
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        format!(
            r#"{{"f":"function(x) return x end","n":123456789012345678901234567891,"xs":[1,2.5,-{BIG}]}}"#
        )
    );
    // A HostValue goes in as it came out.
    s.set_input(&out.values).unwrap();
    let back: serde_json::Value = s
        .compute("return { tostring(_io.input[1]), _io.input[2](4) }")
        .unwrap()
        .value(0)
        .unwrap();
    assert_eq!(back, json!([BIG, -4]));
    // Typed: a u128 and a String.
    s.set_input(&(1u128 << 100)).unwrap();
    let n: u128 = s.compute("return _io.input * 2").unwrap().value(0).unwrap();
    assert_eq!(n, 1u128 << 101);
}
