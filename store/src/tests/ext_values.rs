//! Big integers and functions in the store: loaded from ext 1 and 2 (and
//! `u64` past `i64`), checked, counted against quotas, read by workers,
//! extracted as ext values, persisted and read back.

use luapool_protocol::api::{to_host, HostValue};
use luapool_protocol::ext_value::ExtValueError;
use luapool_protocol::{Key, KeyError, Literal, Request, Value, Write};

use super::{fetched, get, only};
use crate::{Store, StoreError};

const F: &str = "function(name) return 'hi ' .. name end";

/// `{"n": <ext 1 "-12345678901234567890">, "f": <ext 2 F>, "u": u64::MAX}`.
fn map_bytes() -> Vec<u8> {
    let mut b = vec![0x83, 0xa1, b'n'];
    let digits = b"-12345678901234567890";
    b.extend([0xc7, digits.len() as u8, 1]);
    b.extend(digits);
    b.extend([0xa1, b'f', 0xc7, F.len() as u8, 2]);
    b.extend(F.as_bytes());
    b.extend([0xa1, b'u', 0xcf]);
    b.extend(u64::MAX.to_be_bytes());
    b
}

#[test]
fn ext_values_load_extract_and_read_as_they_were_given() {
    let store = Store::new();
    let a = store.create_arena(0);
    let v = store.load_msgpack(a, &map_bytes(), true).unwrap();
    let Value::Table(id) = v else { panic!() };
    assert_eq!(
        store.host_get(id, &Key::str("n")),
        Ok(Value::BigInt("-12345678901234567890".into()))
    );
    assert_eq!(
        store.host_get(id, &Key::str("u")),
        Ok(Value::BigInt(u64::MAX.to_string()))
    );
    let host = store.extract(&v).unwrap();
    assert_eq!(
        host,
        HostValue::Map(vec![
            (
                Key::str("n"),
                HostValue::BigInt("-12345678901234567890".into())
            ),
            (Key::str("f"), HostValue::Function(F.into())),
            (Key::str("u"), HostValue::BigInt(u64::MAX.to_string())),
        ])
    );
    // Extracted as MessagePack: ext 1 and 2, read back by rmp-serde.
    let mut out = Vec::new();
    store
        .extract_msgpack(&v, &mut crate::OutputBudget::new(0), &mut out)
        .unwrap();
    assert_eq!(rmp_serde::from_slice::<HostValue>(&out).unwrap(), host);
    // Loading the HostValue gives the same.
    let b = store.create_arena(0);
    let again = store.load(b, &host, false).unwrap();
    assert_eq!(store.extract(&again).unwrap(), host);
    // A worker reads them as values.
    let f = fetched(get(&store, &only(a), id, Key::str("f")));
    assert_eq!(f.values, vec![Value::Function(F.into())]);
}

#[test]
fn bad_ext_values_are_typed_errors_and_store_nothing() {
    let store = Store::new();
    let a = store.create_arena(0);
    let cases: [(&[u8], StoreError); 4] = [
        (
            &[0x91, 0xd5, 1, b'1', b'x'],
            StoreError::BadValue(ExtValueError::NotDecimal {
                shown: "\"1x\"".into(),
            }),
        ),
        (&[0x91, 0xd4, 9, 0], ExtValueError::UnknownType(9).into()),
        (
            &[0x81, 0xd4, 1, b'1', 0x01],
            StoreError::InvalidKey(KeyError::BigInt),
        ),
        (
            &[0x91, 0xd5, 2, b'o', b's'],
            StoreError::BadValue(ExtValueError::NotAFunction {
                shown: "\"os\"".into(),
            }),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(store.load_msgpack(a, bytes, true), Err(want));
        assert_eq!(store.arena_stats(a).unwrap().tables, 0, "nothing stored");
    }
    let e = StoreError::BadValue(ExtValueError::NotDecimal {
        shown: "\"1x\"".into(),
    });
    assert!(e.to_string().contains("not a decimal integer"), "{e}");
}

#[test]
fn their_text_counts_against_the_quota() {
    let store = Store::new();
    // Room for a table and a few slots, not for 10 000 digits.
    let a = store.create_arena(4096);
    let big = HostValue::Array(vec![HostValue::BigInt("7".repeat(10_000))]);
    assert!(matches!(
        store.load(a, &big, false),
        Err(StoreError::Quota { .. })
    ));
    let root = store.new_table(a).unwrap();
    let r = store.handle(
        &only(a),
        Request::Write(vec![Write {
            table: root,
            key: Key::str("f"),
            value: Literal::Value(Value::Function(format!(
                "function() return '{}' end",
                "x".repeat(10_000)
            ))),
        }]),
    );
    assert!(matches!(r, luapool_protocol::Reply::Error(_)), "{r:?}");
    let used = store.arena_stats(a).unwrap().bytes;
    assert!(used < 4096, "{used}");
}

#[test]
fn json_numbers_beyond_64_bits_load_as_big_integers() {
    let text = r#"{"id": 340282366920938463463374607431768211456, "x": 1.5}"#;
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let store = Store::new();
    let a = store.create_arena(0);
    let v = store
        .load_msgpack(a, &luapool_protocol::api::to_msgpack(&json).unwrap(), true)
        .unwrap();
    let Value::Table(id) = v else { panic!() };
    assert_eq!(
        store.host_get(id, &Key::str("id")),
        Ok(Value::BigInt(
            "340282366920938463463374607431768211456".into()
        ))
    );
    assert_eq!(store.host_get(id, &Key::str("x")), Ok(Value::Float(1.5)));
    assert_eq!(store.extract(&v).unwrap().to_json(), json);
    assert_eq!(to_host(&json).unwrap(), store.extract(&v).unwrap());
}
