//! Tests of the serde and JSON conversions.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::Key;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::json;

use super::{from_host, to_host, HostValue};

#[test]
fn json_round_trips_through_to_host_and_from_host() {
    let big = (1i64 << 53) + 1;
    let data = json!({
        "null": null, "t": true, "i": -5, "big": big, "f": 0.25, "s": "héllo",
        "list": [1, [2, {"x": []}], {}], "obj": {"1": "one", "k": {"deep": [null]}}
    });
    let host = to_host(&data).unwrap();
    assert_eq!(from_host::<serde_json::Value>(host.clone()).unwrap(), data);
    assert_eq!(host.to_json(), data);
    assert_eq!(HostValue::from_json(data.clone()), host);
    let text = serde_json::to_string(&host).unwrap();
    assert!(
        text.contains("9007199254740993"),
        "i64 beyond 2^53 stays exact: {text}"
    );
}

#[test]
fn integer_map_keys_survive_and_become_strings_in_json() {
    let m: HashMap<i64, String> = [(1, "a".to_string()), (-7, "b".to_string())].into();
    let host = to_host(&m).unwrap();
    let HostValue::Map(entries) = &host else {
        panic!("{host:?}")
    };
    assert!(entries.contains(&(Key::Int(-7), HostValue::str("b"))));
    assert_eq!(from_host::<HashMap<i64, String>>(host.clone()).unwrap(), m);
    assert_eq!(
        from_host::<serde_json::Value>(host.clone()).unwrap(),
        json!({"1": "a", "-7": "b"})
    );
    assert_eq!(host.to_json(), json!({"1": "a", "-7": "b"}));
    // And back: string keys that parse feed integer-keyed maps, as in serde_json.
    let from_json = HostValue::from_json(json!({"1": "a", "-7": "b"}));
    assert_eq!(
        from_host::<BTreeMap<i64, String>>(from_json).unwrap(),
        m.into_iter().collect::<BTreeMap<_, _>>()
    );
}

#[test]
fn numbers_follow_the_conversion_rules() {
    // Past i64: a big integer, exactly.
    let max = HostValue::BigInt(u64::MAX.to_string());
    assert_eq!(to_host(&u64::MAX).unwrap(), max);
    assert_eq!(HostValue::from_json(json!(u64::MAX)), max);
    assert_eq!(to_host(&3u8).unwrap(), HostValue::Int(3));
    assert_eq!(to_host(&1.5f32).unwrap(), HostValue::Float(1.5));
    assert_eq!(HostValue::Float(f64::NAN).to_json(), json!(null));
    assert_eq!(HostValue::Float(f64::NEG_INFINITY).to_json(), json!(null));
    assert_eq!(from_host::<f64>(HostValue::Int(2)).unwrap(), 2.0);
    assert!(from_host::<u8>(HostValue::Int(300)).is_err());
}

#[test]
fn non_utf8_strings_are_lossy_as_text_and_exact_as_bytes() {
    let v = HostValue::Str(vec![b'a', 0xFF]);
    assert_eq!(v.to_json(), json!("a\u{FFFD}"));
    assert_eq!(from_host::<String>(v.clone()).unwrap(), "a\u{FFFD}");
    assert_eq!(
        from_host::<Bytes>(v.clone()).unwrap(),
        Bytes(vec![b'a', 0xFF])
    );
    assert_eq!(
        to_host(&v).unwrap(),
        v,
        "a MessagePack round trip keeps the bytes"
    );
}

/// Exact bytes, read with `deserialize_byte_buf`.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(b))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Dot,
    Circle(f64),
    Rect { w: i32, h: i32 },
    Pair(i32, i32),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u32,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
    missing: Option<i64>,
    shapes: Vec<Shape>,
    attrs: BTreeMap<String, i64>,
    #[serde(rename = "renamed")]
    inner: Inner,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    flag: bool,
    unit: (),
}

#[test]
fn derived_structs_round_trip_as_maps_of_field_names() {
    let r = Record {
        id: 7,
        name: "seven".into(),
        tags: vec!["a".into(), "b".into()],
        score: Some(0.5),
        missing: None,
        shapes: vec![
            Shape::Dot,
            Shape::Circle(2.0),
            Shape::Rect { w: 1, h: 2 },
            Shape::Pair(3, 4),
        ],
        attrs: [("x".to_string(), 1)].into(),
        inner: Inner {
            flag: true,
            unit: (),
        },
    };
    let host = to_host(&r).unwrap();
    let HostValue::Map(fields) = &host else {
        panic!("{host:?}")
    };
    assert!(fields.contains(&(Key::str("id"), HostValue::Int(7))));
    assert!(fields.contains(&(Key::str("missing"), HostValue::Nil)));
    assert_eq!(from_host::<Record>(host.clone()).unwrap(), r);
    // The JSON view matches serde_json's own rendering.
    assert_eq!(host.to_json(), serde_json::to_value(&r).unwrap());
}

/// A map written with arbitrary key values.
struct Keys(Vec<(KeyCase, i32)>);
enum KeyCase {
    F(f64),
    Nil,
}
impl Serialize for Keys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match k {
                KeyCase::F(f) => m.serialize_entry(f, v)?,
                KeyCase::Nil => m.serialize_entry(&(), v)?,
            }
        }
        m.end()
    }
}

#[test]
fn map_keys_follow_lua_rules() {
    let host = to_host(&Keys(vec![(KeyCase::F(2.0), 1), (KeyCase::F(0.5), 2)])).unwrap();
    assert_eq!(
        host,
        HostValue::Map(vec![
            (Key::Int(2), HostValue::Int(1)),
            (Key::Float(0.5f64.to_bits()), HostValue::Int(2))
        ])
    );
    assert_eq!(host.to_json(), json!({"2": 1, "0.5": 2}));
    assert!(to_host(&Keys(vec![(KeyCase::F(f64::NAN), 1)])).is_err());
    assert!(to_host(&Keys(vec![(KeyCase::Nil, 1)])).is_err());
}

#[test]
fn serialize_writes_strings_as_text_and_keys_natively() {
    let v = HostValue::Map(vec![
        (Key::Int(1), HostValue::str("x")),
        (
            Key::Bool(true),
            HostValue::Array(vec![HostValue::Nil, HostValue::Float(1.5)]),
        ),
    ]);
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"1":"x","true":[null,1.5]}"#
    );
}

#[test]
fn from_host_into_host_value_is_exact_for_non_utf8_strings() {
    let v = HostValue::Map(vec![
        (
            Key::Str(b"k\xff".to_vec()),
            HostValue::Str(b"ok\xff\xfe!".to_vec()),
        ),
        (
            Key::str("list"),
            HostValue::Array(vec![HostValue::Str(vec![0x80]), HostValue::str("fine")]),
        ),
        (Key::Int(3), HostValue::Nil),
    ]);
    assert_eq!(from_host::<HostValue>(v.clone()).unwrap(), v);
    // Through MessagePack (to_host) as well.
    assert_eq!(to_host(&v).unwrap(), v);
    // Other targets still get such strings lossily.
    assert_eq!(
        from_host::<String>(HostValue::Str(b"a\xff".to_vec())).unwrap(),
        "a\u{FFFD}"
    );
    assert_eq!(
        from_host::<serde_json::Value>(v).unwrap(),
        json!({"k\u{FFFD}": "ok\u{FFFD}\u{FFFD}!", "list": ["\u{FFFD}", "fine"], "3": null})
    );
}

#[test]
fn newtypes_still_deserialize_from_host_values() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Meters(f64);
    #[derive(Deserialize, Debug, PartialEq)]
    struct Wrapped {
        m: Meters,
        raw: HostValue,
    }
    let v = HostValue::Map(vec![
        (Key::str("m"), HostValue::Float(2.5)),
        (Key::str("raw"), HostValue::Str(vec![0xff])),
    ]);
    assert_eq!(
        from_host::<Wrapped>(v).unwrap(),
        Wrapped {
            m: Meters(2.5),
            raw: HostValue::Str(vec![0xff])
        }
    );
}

#[test]
fn json_view_writes_what_to_json_converts() {
    let host = HostValue::Map(vec![
        (Key::Int(2), HostValue::Float(f64::NAN)),
        (Key::str("b"), HostValue::Str(vec![b'x', 0xff])),
        (
            Key::Int(1),
            HostValue::Array(vec![HostValue::Nil, HostValue::Float(1.0)]),
        ),
        (Key::str("1"), HostValue::Bool(true)),
        (Key::Float(1.5f64.to_bits()), HostValue::Int(i64::MAX)),
    ]);
    for pretty in [false, true] {
        let (view, tree) = if pretty {
            (
                serde_json::to_string_pretty(&host.json()).unwrap(),
                serde_json::to_string_pretty(&host.to_json()).unwrap(),
            )
        } else {
            (
                serde_json::to_string(&host.json()).unwrap(),
                serde_json::to_string(&host.to_json()).unwrap(),
            )
        };
        assert_eq!(view, tree);
    }
}
