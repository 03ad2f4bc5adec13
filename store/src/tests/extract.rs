//! Conversions out of the store are bounded by bytes: a shared table counts
//! each time it is emitted, and the refusal is a typed error, never an abort.

use luapool_protocol::api::HostValue;
use luapool_protocol::{Key, Value};
use serde_json::json;

use super::loaded;
use crate::{OutputBudget, Store, StoreError};

/// An arena whose table `out` holds `refs` references to one table holding
/// a string of `len` bytes: a few MB stored, refs × len emitted.
fn shared_many_times(refs: i64, len: usize) -> (Store, Value) {
    let store = Store::new();
    let a = store.create_arena(0);
    let s = store.new_table(a).unwrap();
    store
        .host_set(s, Key::Int(1), Value::Str(vec![b'x'; len]))
        .unwrap();
    let out = store.new_table(a).unwrap();
    for i in 1..=refs {
        store.host_set(out, Key::Int(i), Value::Table(s)).unwrap();
    }
    (store, Value::Table(out))
}

#[test]
fn a_table_shared_100_000_times_stops_at_the_byte_limit() {
    // 100 000 references to 1 MiB: ~100 GiB if converted naively.
    let (store, out) = shared_many_times(100_000, 1 << 20);
    let limit = 64 << 20;
    let mut bytes = Vec::new();
    let err = store
        .extract_msgpack(&out, &mut OutputBudget::new(limit), &mut bytes)
        .unwrap_err();
    assert_eq!(err, StoreError::OutputTooLarge { limit });
    assert!(err.to_string().contains("67108864 bytes"), "{err}");
    assert!(
        bytes.capacity() as u64 <= limit + 1024,
        "the buffer grew to {} bytes, past its limit",
        bytes.capacity()
    );
    assert_eq!(
        store.extract_within(&out, &mut OutputBudget::new(limit)),
        Err(StoreError::OutputTooLarge { limit })
    );
    // Nothing stored changed: a smaller walk still reads the data.
    let Value::Table(id) = out else { panic!() };
    assert!(matches!(
        store.host_get(id, &Key::Int(100_000)),
        Ok(Value::Table(_))
    ));
}

#[test]
fn every_emission_of_a_shared_table_counts() {
    let (store, out) = shared_many_times(10, 1000);
    let mut once = OutputBudget::new(0);
    let mut bytes = Vec::new();
    store.extract_msgpack(&out, &mut once, &mut bytes).unwrap();
    assert_eq!(
        once.used(),
        bytes.len() as u64 + (once.used() - bytes.len() as u64)
    );
    assert!(
        bytes.len() > 10 * 1000,
        "{} bytes for 10 copies",
        bytes.len()
    );
    // A limit just below what the ten copies take refuses; at it, passes.
    let need = bytes.len() as u64;
    let mut again = Vec::new();
    assert!(store
        .extract_msgpack(&out, &mut OutputBudget::new(need), &mut again)
        .is_ok());
    assert_eq!(
        store.extract_msgpack(&out, &mut OutputBudget::new(need - 1000), &mut Vec::new()),
        Err(StoreError::OutputTooLarge { limit: need - 1000 })
    );
}

#[test]
fn msgpack_output_is_what_the_host_value_serializes_to() {
    let (store, _, id) = loaded(json!({
        "s": "héllo", "i": -3, "big": 1u64 << 40, "f": 0.5, "t": true,
        "list": [1, [2, {"x": []}], {}], "m": {"1": "one"}
    }));
    store
        .host_set(id, Key::Int(7), Value::Str(vec![0xff, 0]))
        .unwrap();
    let tree = store.extract(&Value::Table(id)).unwrap();
    let mut bytes = Vec::new();
    store
        .extract_msgpack(&Value::Table(id), &mut OutputBudget::new(0), &mut bytes)
        .unwrap();
    assert_eq!(bytes, rmp_serde::to_vec(&tree).unwrap());
    assert_eq!(rmp_serde::from_slice::<HostValue>(&bytes).unwrap(), tree);
}

#[test]
fn a_value_tree_counts_its_memory_too() {
    // 10 000 small integers: ~20 KB of MessagePack, ~320 KB as a tree.
    let (store, _, id) = loaded(json!((0..10_000).collect::<Vec<i32>>()));
    let mut bytes = Vec::new();
    let mut wire = OutputBudget::new(100_000);
    store
        .extract_msgpack(&Value::Table(id), &mut wire, &mut bytes)
        .unwrap();
    assert!(matches!(
        store.extract_within(&Value::Table(id), &mut OutputBudget::new(100_000)),
        Err(StoreError::OutputTooLarge { limit: 100_000 })
    ));
}

#[test]
fn one_string_longer_than_the_limit_is_refused_before_it_is_copied() {
    let store = Store::new();
    let a = store.create_arena(0);
    let t = store.new_table(a).unwrap();
    store
        .host_set(t, Key::str("big"), Value::Str(vec![1; 8 << 20]))
        .unwrap();
    let mut bytes = Vec::new();
    assert_eq!(
        store.extract_msgpack(
            &Value::Table(t),
            &mut OutputBudget::new(1 << 20),
            &mut bytes
        ),
        Err(StoreError::OutputTooLarge { limit: 1 << 20 })
    );
    assert!(bytes.len() < 1024, "{} bytes copied", bytes.len());
}
