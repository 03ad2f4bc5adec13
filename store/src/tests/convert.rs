//! load / extract: host data in and out of the store.

use luapool_protocol::{Key, TableId, Value};
use serde_json::json;

use super::{j, loaded};
use crate::{Store, StoreError};
use luapool_protocol::api::HostValue;

#[test]
fn nested_data_round_trips_through_load_and_extract() {
    let data = json!({
        "name": "x", "n": 3, "f": 2.5, "ok": true,
        "list": [1, "two", 3.5, [4, 5], {"six": 6}],
        "nested": {"a": {"b": {"c": [true, false]}}},
        "empty_list": [], "empty_map": {}
    });
    let (store, _, id) = loaded(data.clone());
    assert_eq!(store.extract(&Value::Table(id)).unwrap().to_json(), data);
}

#[test]
fn empty_array_stays_array_and_empty_map_stays_map() {
    let (store, _, id) = loaded(json!({"a": [], "m": {}}));
    let out = store.extract(&Value::Table(id)).unwrap();
    let HostValue::Map(entries) = out else {
        panic!("not a map")
    };
    assert!(entries.contains(&(Key::str("a"), HostValue::Array(vec![]))));
    assert!(entries.contains(&(Key::str("m"), HostValue::Map(vec![]))));
}

#[test]
fn array_emptied_by_writes_converts_back_to_an_empty_array() {
    let (store, _, id) = loaded(json!([1, 2]));
    store.host_set(id, Key::Int(2), Value::Nil).unwrap();
    store.host_set(id, Key::Int(1), Value::Nil).unwrap();
    assert_eq!(
        store.extract(&Value::Table(id)).unwrap(),
        HostValue::Array(vec![])
    );
}

#[test]
fn holes_make_a_map() {
    let (store, _, id) = loaded(json!([10, 20, 30]));
    store.host_set(id, Key::Int(2), Value::Nil).unwrap();
    let expected = HostValue::Map(vec![
        (Key::Int(1), HostValue::Int(10)),
        (Key::Int(3), HostValue::Int(30)),
    ]);
    assert_eq!(store.extract(&Value::Table(id)).unwrap(), expected);

    let store = Store::new();
    let a = store.create_arena(0);
    let v = store
        .load(
            a,
            &HostValue::Array(vec![HostValue::Nil, HostValue::Int(2)]),
            false,
        )
        .unwrap();
    assert_eq!(
        store.extract(&v).unwrap(),
        HostValue::Map(vec![(Key::Int(2), HostValue::Int(2))])
    );
    // A trailing nil is simply absent.
    let v = store
        .load(
            a,
            &HostValue::Array(vec![HostValue::Int(1), HostValue::Nil]),
            false,
        )
        .unwrap();
    assert_eq!(
        store.extract(&v).unwrap(),
        HostValue::Array(vec![HostValue::Int(1)])
    );
}

#[test]
fn integer_key_one_and_string_key_one_are_different() {
    let store = Store::new();
    let a = store.create_arena(0);
    let map = HostValue::Map(vec![
        (Key::Int(1), HostValue::str("int")),
        (Key::str("1"), HostValue::str("str")),
    ]);
    let Value::Table(id) = store.load(a, &map, false).unwrap() else {
        panic!()
    };
    assert_eq!(
        store.host_get(id, &Key::Int(1)).unwrap(),
        Value::Str(b"int".to_vec())
    );
    assert_eq!(
        store.host_get(id, &Key::str("1")).unwrap(),
        Value::Str(b"str".to_vec())
    );
    assert_eq!(store.extract(&Value::Table(id)).unwrap(), map);
}

#[test]
fn map_with_keys_exactly_one_to_n_is_an_array_in_key_order() {
    let store = Store::new();
    let a = store.create_arena(0);
    let map = HostValue::Map(vec![
        (Key::Int(3), HostValue::Int(30)),
        (Key::Int(1), HostValue::Int(10)),
        (Key::Int(2), HostValue::Int(20)),
    ]);
    let v = store.load(a, &map, false).unwrap();
    let expected = HostValue::Array(vec![
        HostValue::Int(10),
        HostValue::Int(20),
        HostValue::Int(30),
    ]);
    assert_eq!(store.extract(&v).unwrap(), expected);
}

#[test]
fn cycle_in_extract_is_an_error_but_sharing_is_not() {
    let store = Store::new();
    let a = store.create_arena(0);
    let t = store.new_table(a).unwrap();
    let u = store.new_table(a).unwrap();
    store.host_set(u, Key::str("x"), Value::Int(1)).unwrap();
    store
        .host_set(t, Key::str("left"), Value::Table(u))
        .unwrap();
    store
        .host_set(t, Key::str("right"), Value::Table(u))
        .unwrap();
    let shared = store.extract(&Value::Table(t)).unwrap();
    assert_eq!(
        shared.to_json(),
        json!({"left": {"x": 1}, "right": {"x": 1}})
    );

    store
        .host_set(u, Key::str("back"), Value::Table(t))
        .unwrap();
    assert_eq!(store.extract(&Value::Table(t)), Err(StoreError::Cycle));
}

#[test]
fn too_deep_load_is_refused_and_creates_nothing() {
    let store = Store::new();
    let a = store.create_arena(0);
    let mut v = HostValue::Int(1);
    for _ in 0..300 {
        v = HostValue::Array(vec![v]);
    }
    assert_eq!(store.load(a, &v, false), Err(StoreError::TooDeep));
    assert_eq!(store.arena_stats(a).unwrap().tables, 0);
}

#[test]
fn scalars_load_and_extract_as_themselves() {
    let store = Store::new();
    let a = store.create_arena(0);
    assert_eq!(store.load(a, &j(json!(7)), true).unwrap(), Value::Int(7));
    assert_eq!(
        store.extract(&Value::Float(1.5)).unwrap(),
        HostValue::Float(1.5)
    );
    assert_eq!(
        store.extract(&Value::Table(TableId::from_raw(12345))),
        Err(StoreError::UnknownTable(TableId::from_raw(12345)))
    );
}
