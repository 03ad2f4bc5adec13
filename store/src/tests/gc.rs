//! collect / drop_arena: memory comes back.

use luapool_protocol::{Key, Value};
use serde_json::json;

use super::loaded;
use crate::Store;

#[test]
fn collect_frees_unreachable_tables_and_keeps_reachable_ones() {
    let store = Store::new();
    let a = store.create_arena(0);
    let root = store.new_table(a).unwrap();
    store.add_root(root);
    let data = store
        .load(a, &super::j(json!({"x": {"y": [1, 2]}})), false)
        .unwrap();
    store.host_set(root, Key::str("data"), data).unwrap();
    let orphan = store
        .load(a, &super::j(json!([{"a": 1}, {"b": 2}])), false)
        .unwrap();
    assert_eq!(store.arena_stats(a).unwrap().tables, 7);

    assert_eq!(store.collect(a), 3);
    assert_eq!(store.arena_stats(a).unwrap().tables, 4);
    let out = store.extract(&Value::Table(root)).unwrap().to_json();
    assert_eq!(out, json!({"data": {"x": {"y": [1, 2]}}}));
    assert!(store.extract(&orphan).is_err());
    // Freed slots are reused (slots 5..=7 held the orphans).
    let reused = store.new_table(a).unwrap();
    assert_eq!(reused.slot(), 5);
}

#[test]
fn collect_drops_tombstones_and_their_bytes() {
    let (store, a, id) = loaded(json!({}));
    store.add_root(id);
    let before = store.arena_stats(a).unwrap().bytes;
    for i in 0..100 {
        store
            .host_set(id, Key::str(format!("k{i}")), Value::Int(i))
            .unwrap();
    }
    for i in 0..100 {
        store
            .host_set(id, Key::str(format!("k{i}")), Value::Nil)
            .unwrap();
    }
    assert!(store.arena_stats(a).unwrap().bytes > before);
    store.collect(a);
    assert_eq!(store.arena_stats(a).unwrap().bytes, before);
}

#[test]
fn table_count_is_back_to_baseline_after_drop_arena() {
    let store = Store::new();
    let keep = store.create_arena(0);
    store.load(keep, &super::j(json!([[1]])), false).unwrap();
    let baseline = store.stats();
    let a = store.create_arena(0);
    let records: Vec<_> = (0..1000)
        .map(|i| json!({"id": i, "value": i as f64 / 2.0}))
        .collect();
    store.load(a, &super::j(json!(records)), true).unwrap();
    assert_eq!(store.stats().tables, baseline.tables + 1001);
    store.drop_arena(a);
    assert_eq!(store.stats(), baseline);
    assert_eq!(store.arena_stats(a), None);
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn concurrent_sessions_sharing_a_home_do_not_deadlock() {
    use luapool_protocol::{Literal, Reply, Request, Write};
    let store = std::sync::Arc::new(Store::new());
    let home = store.create_arena(0);
    let home_root = store.new_table(home).unwrap();
    let home_small = store.new_table(home).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let store = store.clone();
            std::thread::spawn(move || {
                let session = store.create_arena(0);
                let scope = crate::Scope {
                    session,
                    home,
                    io: None,
                };
                let local = store
                    .load(session, &super::j(json!({"n": n})), false)
                    .unwrap();
                for i in 0..500 {
                    let w = Write {
                        table: home_root,
                        key: Key::Int(n * 1000 + i),
                        value: Literal::Value(local.clone()),
                    };
                    assert_eq!(store.handle(&scope, Request::Write(vec![w])), Reply::Ok);
                    // The host copies the other way at the same time.
                    let Value::Table(t) = local else {
                        unreachable!()
                    };
                    store
                        .host_set(t, Key::str("home"), Value::Table(home_small))
                        .unwrap();
                    store.host_set(t, Key::str("home"), Value::Nil).unwrap();
                }
                store.drop_arena(session);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.arena_stats(home).unwrap().tables, 2 + 4 * 500);
    assert_eq!(store.stats().arenas, 1);
}
