//! Big integers and functions through every host conversion: JSON (text and
//! `serde_json::Value`), MessagePack (ext 1 and 2), typed targets.

use serde::Deserialize;
use serde_json::json;

use super::{from_host, to_host, to_msgpack, HostValue};
use crate::Key;

const BIG: &str = "123456789012345678901234567890";

#[test]
fn json_integers_beyond_64_bits_arrive_as_big_integers_and_leave_exact() {
    let text = format!(
        r#"{{"n": {BIG}, "neg": -{BIG}, "small": 5, "f": 0.5, "u": 18446744073709551615}}"#
    );
    // Straight from JSON text.
    let hv: HostValue = serde_json::from_str(&text).unwrap();
    let HostValue::Map(m) = &hv else {
        panic!("{hv:?}")
    };
    let get = |k: &str| {
        m.iter()
            .find(|(key, _)| *key == Key::str(k))
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(get("n"), HostValue::BigInt(BIG.into()));
    assert_eq!(get("neg"), HostValue::BigInt(format!("-{BIG}")));
    assert_eq!(get("small"), HostValue::Int(5));
    assert_eq!(get("f"), HostValue::Float(0.5));
    assert_eq!(get("u"), HostValue::BigInt(u64::MAX.to_string()));
    // Through serde_json::Value (arbitrary_precision keeps the digits).
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let from_value = HostValue::from_json(json.clone());
    assert_eq!(to_host(&json).unwrap(), from_value);
    assert_eq!(from_value.to_json(), json);
    // And out again as exact JSON integers, every way.
    let out = serde_json::to_string(&hv.json()).unwrap();
    assert!(
        out.contains(&format!(":{BIG}")) && out.contains(&format!(":-{BIG}")),
        "{out}"
    );
    let out = serde_json::to_string(&hv).unwrap();
    assert!(out.contains(&format!(":{BIG}")), "{out}");
    assert_eq!(from_host::<serde_json::Value>(hv.clone()).unwrap(), json);
}

#[test]
fn big_integers_and_functions_are_ext_1_and_2_in_messagepack() {
    let f = "function(x) return x end";
    let v = HostValue::Array(vec![
        HostValue::BigInt("-5".into()),
        HostValue::Function(f.into()),
    ]);
    let bytes = rmp_serde::to_vec(&v).unwrap();
    // fixarray 2; ext of 2 bytes (fixext 2: 0xd5), type 1, "-5"; ext 8 of 24 bytes, type 2.
    assert_eq!(&bytes[..5], &[0x92, 0xd5, 1, b'-', b'5']);
    assert_eq!(&bytes[5..8], &[0xc7, f.len() as u8, 2]);
    assert_eq!(&bytes[8..], f.as_bytes());
    assert_eq!(rmp_serde::from_slice::<HostValue>(&bytes).unwrap(), v);
    assert_eq!(to_msgpack(&v).unwrap(), bytes);
    // A HostValue converts into a HostValue exactly, nested or not.
    let nested = HostValue::Map(vec![(Key::str("v"), v.clone())]);
    assert_eq!(from_host::<HostValue>(nested.clone()).unwrap(), nested);
    assert_eq!(to_host(&nested).unwrap(), nested);
}

#[test]
fn bad_ext_payloads_are_refused_when_decoded() {
    let bad = [0xd5, 1, b'1', b'x'];
    let e = rmp_serde::from_slice::<HostValue>(&bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a decimal integer"), "{e}");
    let other = [0xd4, 7, 0];
    let e = rmp_serde::from_slice::<HostValue>(&other)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ext type 7"), "{e}");
}

#[test]
fn a_big_integer_reads_into_typed_targets_that_hold_it() {
    let big = HostValue::BigInt(BIG.into());
    assert_eq!(
        from_host::<u128>(big.clone()).unwrap(),
        BIG.parse::<u128>().unwrap()
    );
    assert_eq!(
        from_host::<i128>(big.clone()).unwrap(),
        BIG.parse::<i128>().unwrap()
    );
    assert_eq!(from_host::<String>(big.clone()).unwrap(), BIG);
    assert_eq!(
        from_host::<f64>(big.clone()).unwrap(),
        1.2345678901234568e29
    );
    assert!(from_host::<i64>(big.clone()).is_err());
    let huge = HostValue::BigInt("9".repeat(50));
    assert!(from_host::<u128>(huge.clone()).is_err());
    assert_eq!(
        from_host::<serde_json::Value>(huge.clone())
            .unwrap()
            .to_string(),
        "9".repeat(50)
    );
    // A small one is an ordinary integer to anything but a HostValue.
    assert_eq!(
        from_host::<i64>(HostValue::BigInt("-7".into())).unwrap(),
        -7
    );
    assert_eq!(
        to_host(&(1u128 << 100)).unwrap(),
        HostValue::BigInt((1u128 << 100).to_string())
    );
    assert_eq!(to_host(&-5i128).unwrap(), HostValue::Int(-5));
    // Structs and options around them.
    #[derive(Deserialize, Debug, PartialEq)]
    struct Account {
        id: u128,
        code: String,
        note: Option<String>,
    }
    let v = HostValue::Map(vec![
        (Key::str("id"), big.clone()),
        (
            Key::str("code"),
            HostValue::Function("function() end".into()),
        ),
        (Key::str("note"), HostValue::Nil),
    ]);
    assert_eq!(
        from_host::<Account>(v).unwrap(),
        Account {
            id: BIG.parse().unwrap(),
            code: "function() end".into(),
            note: None
        }
    );
}

#[test]
fn a_function_is_its_source_text_in_json() {
    let f = HostValue::Function("function(name) return 'hi ' .. name end".into());
    assert_eq!(
        f.to_json(),
        json!("function(name) return 'hi ' .. name end")
    );
    assert_eq!(
        serde_json::to_string(&f.json()).unwrap(),
        r#""function(name) return 'hi ' .. name end""#
    );
    assert_eq!(
        from_host::<serde_json::Value>(f).unwrap(),
        json!("function(name) return 'hi ' .. name end")
    );
}

#[test]
fn serde_json_numbers_load_as_numbers_not_as_maps() {
    // What serde_json writes for each number under arbitrary_precision is a
    // private struct; loading goes through the adapter, so none becomes a map.
    let v = json!({"i": 1, "f": 2.5, "neg": -3, "list": [1.0, 4, 1e300], "u": u64::MAX});
    let hv = to_host(&v).unwrap();
    assert_eq!(hv.to_json(), v);
    let text = serde_json::to_string(&hv.json()).unwrap();
    assert!(!text.contains("serde_json"), "{text}");
    let bytes = to_msgpack(&v).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("serde_json"));
}
