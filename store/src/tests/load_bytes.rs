//! `load_msgpack` gives what `load` of the same data gives.

use serde_json::json;

use crate::{Store, StoreError};
use luapool_protocol::api::{to_host, to_msgpack};

#[test]
fn loading_bytes_matches_loading_host_values() {
    let cases = [
        json!(null),
        json!(42),
        json!("text"),
        json!([]),
        json!({}),
        json!([1, null, 3]),
        json!({"1": "string key", "a": [1.5, true, {"deep": [[], {}]}], "big": 9007199254740993u64, "huge": u64::MAX}),
        json!({"items": (0..100).map(|i| json!({"id": i, "value": i as f64 / 7.0, "name": "n".repeat(i)})).collect::<Vec<_>>()}),
    ];
    for case in cases {
        let store = Store::new();
        let (a, b) = (store.create_arena(0), store.create_arena(0));
        let from_bytes = store
            .load_msgpack(a, &to_msgpack(&case).unwrap(), true)
            .unwrap();
        let from_host = store.load(b, &to_host(&case).unwrap(), true).unwrap();
        assert_eq!(
            store.extract(&from_bytes).unwrap(),
            store.extract(&from_host).unwrap(),
            "{case}"
        );
        assert_eq!(
            store.arena_stats(a).unwrap().tables,
            store.arena_stats(b).unwrap().tables,
            "{case}"
        );
    }
}

#[test]
fn integer_and_float_keys_follow_lua_rules() {
    let store = Store::new();
    let a = store.create_arena(0);
    // {1: "a", 2.0: "b", 2.5: "c"} as MessagePack, keys as numbers.
    let bytes = rmp_serde::to_vec(&vec![(1i64, "a")]).unwrap();
    assert!(store.load_msgpack(a, &bytes, false).is_ok());
    let mut map = vec![0x83u8, 0x01, 0xa1, b'a', 0xcb];
    map.extend(2.0f64.to_be_bytes());
    map.extend([0xa1, b'b', 0xcb]);
    map.extend(2.5f64.to_be_bytes());
    map.extend([0xa1, b'c']);
    let v = store.load_msgpack(a, &map, false).unwrap();
    let out: serde_json::Value =
        luapool_protocol::api::from_host(store.extract(&v).unwrap()).unwrap();
    assert_eq!(out, json!({"1": "a", "2": "b", "2.5": "c"}));
}

#[test]
fn malformed_bad_keys_and_quota_change_nothing() {
    let store = Store::new();
    let a = store.create_arena(10_000);
    let before = store.arena_stats(a).unwrap();
    for bad in [
        &b"\xc1"[..],
        b"\x92\x01",
        b"\xdd\xff\xff\xff\xff",
        b"\x81\xc0\x01",
        b"\x81\x90\x01",
        b"\xd4\x01\x02",
    ] {
        assert!(store.load_msgpack(a, bad, false).is_err(), "{bad:?}");
    }
    let big = rmp_serde::to_vec(&vec!["x".repeat(100); 1000]).unwrap();
    assert!(matches!(
        store.load_msgpack(a, &big, false),
        Err(StoreError::Quota { .. })
    ));
    assert_eq!(store.arena_stats(a).unwrap(), before);
    let deep = vec![0x91u8; 10_000];
    assert_eq!(
        store.load_msgpack(a, &deep, false),
        Err(StoreError::TooDeep)
    );
}

#[test]
fn bytes_after_the_value_are_refused_before_anything_is_built() {
    let store = Store::new();
    let a = store.create_arena(0);
    let before = store.arena_stats(a).unwrap();
    let mut two = rmp_serde::to_vec(&vec![1, 2]).unwrap();
    two.push(0x01);
    assert_eq!(
        store.load_msgpack(a, &two, false),
        Err(StoreError::Malformed)
    );
    assert_eq!(store.arena_stats(a).unwrap(), before);
}
