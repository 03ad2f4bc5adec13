//! Get, GetRange, Len and inlining.

use luapool_protocol::{Key, Reply, Request, TableId, TableView, Value};
use serde_json::json;

use super::{fetched, get, loaded, only, s};
use crate::{INLINE_BUDGET_ENTRIES, INLINE_MAX_DEPTH, INLINE_MAX_ENTRIES, MAX_RANGE};

fn len(store: &crate::Store, scope: &crate::Scope, table: TableId) -> i64 {
    match store.handle(scope, Request::Len { table }) {
        Reply::Len(n) => n,
        other => panic!("expected Len, got {other:?}"),
    }
}

#[test]
fn len_is_a_border_as_lua_computes_it() {
    let (store, a, id) = loaded(json!([1, 2, 3]));
    let sc = only(a);
    assert_eq!(len(&store, &sc, id), 3);
    store.host_set(id, Key::Int(5), Value::Int(5)).unwrap();
    assert_eq!(
        len(&store, &sc, id),
        3,
        "5 is in the hash part, 4 is absent"
    );
    store.host_set(id, Key::Int(4), Value::Int(4)).unwrap();
    assert_eq!(
        len(&store, &sc, id),
        5,
        "appending 4 migrates 5 into the array part"
    );
    store.host_set(id, Key::Int(5), Value::Nil).unwrap();
    assert_eq!(len(&store, &sc, id), 4);
    store.host_set(id, Key::Int(2), Value::Nil).unwrap();
    assert_eq!(
        len(&store, &sc, id),
        4,
        "a hole in the middle leaves 4 a border"
    );
    store.host_set(id, Key::Int(4), Value::Nil).unwrap();
    store.host_set(id, Key::Int(3), Value::Nil).unwrap();
    assert_eq!(
        len(&store, &sc, id),
        1,
        "trailing holes go with the last element"
    );

    let (store, a, id) = loaded(json!({"a": 1}));
    assert_eq!(len(&store, &only(a), id), 0);
    store.host_set(id, Key::Int(1), s("x")).unwrap();
    assert_eq!(len(&store, &only(a), id), 1);
}

#[test]
fn get_range_returns_a_window_with_nil_past_the_end() {
    let (store, a, id) = loaded(json!((1..=10).collect::<Vec<i64>>()));
    let sc = only(a);
    let f = fetched(store.handle(
        &sc,
        Request::GetRange {
            table: id,
            start: 8,
            count: 5,
        },
    ));
    assert_eq!(
        f.values,
        vec![
            Value::Int(8),
            Value::Int(9),
            Value::Int(10),
            Value::Nil,
            Value::Nil
        ]
    );
    let f = fetched(store.handle(
        &sc,
        Request::GetRange {
            table: id,
            start: i64::MAX - 1,
            count: 4,
        },
    ));
    assert_eq!(f.values, vec![Value::Nil; 4]);
    let f = fetched(store.handle(
        &sc,
        Request::GetRange {
            table: id,
            start: -1,
            count: 3,
        },
    ));
    assert_eq!(f.values, vec![Value::Nil, Value::Nil, Value::Int(1)]);
    let f = fetched(store.handle(
        &sc,
        Request::GetRange {
            table: id,
            start: 1,
            count: u32::MAX,
        },
    ));
    assert_eq!(f.values.len(), MAX_RANGE as usize);
}

fn view(views: &[TableView], id: TableId) -> &TableView {
    views
        .iter()
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("no view of {id}"))
}

#[test]
fn small_children_are_inlined_and_big_ones_are_not() {
    let big: Vec<i64> = (0..=INLINE_MAX_ENTRIES as i64).collect();
    let (store, a, id) = loaded(json!({"small": {"a": 1, "b": {"c": 2}}, "big": big}));
    let sc = only(a);

    let f = fetched(get(&store, &sc, id, Key::str("small")));
    let Value::Table(small) = f.values[0] else {
        panic!()
    };
    let v = view(&f.tables, small);
    assert!(v.complete && v.array.is_empty() && v.hash.len() == 2);
    let Value::Table(child) = v.hash[1].1 else {
        panic!()
    };
    let c = view(&f.tables, child);
    assert!(c.complete);
    assert_eq!(c.hash, vec![(Key::str("c"), Value::Int(2))]);

    let f = fetched(get(&store, &sc, id, Key::str("big")));
    let Value::Table(big) = f.values[0] else {
        panic!()
    };
    let v = view(&f.tables, big);
    assert!(!v.complete && v.array.is_empty() && v.hash.is_empty());
    assert_eq!(v.len, INLINE_MAX_ENTRIES as i64 + 1);
    assert!(!v.readonly);
}

#[test]
fn a_table_appears_once_per_reply() {
    let (store, a, id) = loaded(json!({"x": 1}));
    let root = store.new_table(a).unwrap();
    store.host_set(root, Key::Int(1), Value::Table(id)).unwrap();
    store.host_set(root, Key::Int(2), Value::Table(id)).unwrap();
    let f = fetched(store.handle(
        &only(a),
        Request::GetRange {
            table: root,
            start: 1,
            count: 2,
        },
    ));
    assert_eq!(f.tables.len(), 1);
}

#[test]
fn inlining_respects_the_reply_budget_and_still_describes_every_table() {
    let records: Vec<_> = (0..4096)
        .map(|i| json!((0..20).map(|k| i * 100 + k).collect::<Vec<i64>>()))
        .collect();
    let (store, a, id) = loaded(json!(records));
    let f = fetched(store.handle(
        &only(a),
        Request::GetRange {
            table: id,
            start: 1,
            count: 4096,
        },
    ));
    assert_eq!(f.tables.len(), 4096, "every table mentioned has a view");
    let inlined: usize = f
        .tables
        .iter()
        .filter(|v| v.complete)
        .map(|v| v.array.len())
        .sum();
    assert!(inlined <= INLINE_BUDGET_ENTRIES);
    let complete = f.tables.iter().filter(|v| v.complete).count();
    assert!(
        complete > 1000 && complete < 4096,
        "{complete} records inlined"
    );
    // The window is inlined in order, up to where the budget ran out.
    assert!(f.tables[..complete].iter().all(|v| v.complete));
    assert!(f.tables.iter().all(|v| v.len == 20));
}

#[test]
fn readonly_tables_are_described_as_readonly() {
    let store = crate::Store::new();
    let a = store.create_arena(0);
    let Value::Table(id) = store
        .load(a, &super::j(json!({"t": {"x": 1}})), true)
        .unwrap()
    else {
        panic!()
    };
    let f = fetched(get(&store, &only(a), id, Key::str("t")));
    assert!(f.tables[0].readonly && f.tables[0].complete);
}

#[test]
fn inlining_stops_at_the_depth_limit() {
    let mut nested = json!({"leaf": true});
    for _ in 0..INLINE_MAX_DEPTH + 3 {
        nested = json!({ "next": nested });
    }
    let (store, a, id) = loaded(json!({ "top": nested }));
    let f = fetched(get(&store, &only(a), id, Key::str("top")));
    let complete = f.tables.iter().filter(|v| v.complete).count();
    assert_eq!(
        complete,
        INLINE_MAX_DEPTH + 1,
        "the value's own table plus INLINE_MAX_DEPTH levels"
    );
    assert_eq!(
        f.tables.len(),
        complete + 1,
        "the first table not inlined still has a view"
    );
}
