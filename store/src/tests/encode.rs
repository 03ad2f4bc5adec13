//! `handle_into` writes exactly what encoding `handle`'s reply writes.

use luapool_protocol::{decode, Key, Request, TableId, ToWorker};
use serde_json::json;

use super::{loaded, only};

fn same_reply(store: &crate::Store, scope: &crate::Scope, req: Request) {
    let mut out = Vec::new();
    store.handle_into(scope, req.clone(), &mut out);
    let direct: ToWorker = decode(&out).expect("handle_into writes a message the codec reads");
    assert_eq!(direct, ToWorker::Reply(store.handle(scope, req)));
}

#[test]
fn direct_encoding_matches_the_codec_for_every_read() {
    let (store, a, id) = loaded(json!({
        "items": (0..300).map(|i| json!({"id": i, "name": format!("n{i}"), "v": i as f64 / 3.0, "ok": i % 2 == 0,
                                          "tags": [i, -i, "x"], "big": if i == 7 { json!((0..100).collect::<Vec<_>>()) } else { json!(null) }}))
                         .collect::<Vec<_>>(),
        "long": "y".repeat(70_000),
        "nested": {"a": {"b": {"c": {"d": 1}}}},
        "2.5": 1, "t": true
    }));
    let sc = only(a);
    let items = match store.host_get(id, &Key::str("items")).unwrap() {
        luapool_protocol::Value::Table(t) => t,
        other => panic!("{other:?}"),
    };
    same_reply(
        &store,
        &sc,
        Request::Get {
            table: id,
            key: Key::str("items"),
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Get {
            table: id,
            key: Key::str("long"),
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Get {
            table: id,
            key: Key::str("nested"),
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Get {
            table: id,
            key: Key::str("absent"),
        },
    );
    same_reply(
        &store,
        &sc,
        Request::GetRange {
            table: items,
            start: 1,
            count: 1024,
        },
    );
    same_reply(
        &store,
        &sc,
        Request::GetRange {
            table: items,
            start: -5,
            count: 10,
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Next {
            table: id,
            after: None,
            limit: 3,
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Next {
            table: items,
            after: Some(Key::Int(250)),
            limit: 100,
        },
    );
    same_reply(
        &store,
        &sc,
        Request::Next {
            table: id,
            after: Some(Key::str("no such key")),
            limit: 1,
        },
    );
    same_reply(
        &store,
        &sc,
        Request::GetRange {
            table: TableId::from_raw(12345),
            start: 1,
            count: 1,
        },
    );
    same_reply(&store, &sc, Request::Len { table: items });
    for offset in [0, 5, 69_999, 70_000, u64::MAX] {
        same_reply(
            &store,
            &sc,
            Request::GetStr {
                table: id,
                key: Key::str("long"),
                offset,
            },
        );
    }
    same_reply(
        &store,
        &sc,
        Request::GetStr {
            table: id,
            key: Key::str("t"),
            offset: 0,
        },
    );
}

#[test]
fn a_window_of_flat_records_of_one_shape_travels_as_records() {
    let store = crate::Store::new();
    let a = store.create_arena(0);
    let data = json!({
        "items": (0..40).map(|i| json!({"id": i, "name": format!("n{i}"), "v": i as f64 / 3.0, "ok": null}))
                        .collect::<Vec<_>>(),
        "rows": [[1, 2], [3, 4]],
        "mixed": [{"a": 1}, {"b": 1}],
        "nested": [{"a": {"b": 1}}],
    });
    let luapool_protocol::Value::Table(id) = store.load(a, &super::j(data), true).unwrap() else {
        panic!("not a table")
    };
    let sc = only(a);
    let table = |k: &str| match store.host_get(id, &Key::str(k)).unwrap() {
        luapool_protocol::Value::Table(t) => t,
        other => panic!("{other:?}"),
    };
    let range = |t, count| Request::GetRange {
        table: t,
        start: 1,
        count,
    };
    for (name, count, flat) in [
        ("items", 40, true),
        ("items", 41, false), // a nil past the end
        ("rows", 2, true),
        ("mixed", 2, false),
        ("nested", 1, false),
    ] {
        let req = range(table(name), count);
        same_reply(&store, &sc, req.clone());
        match (store.handle(&sc, req), flat) {
            (luapool_protocol::Reply::Records(r), true) => {
                assert_eq!(r.ids.len(), count as usize, "{name}");
                assert_eq!(r.values.len(), r.ids.len() * r.keys.len(), "{name}");
            }
            (luapool_protocol::Reply::Fetched(_), false) => {}
            (other, _) => panic!("{name} {count}: {other:?}"),
        }
    }
    // The same records in a writable array: views, as for any writable table.
    let ids = match store.handle(&sc, range(table("items"), 3)) {
        luapool_protocol::Reply::Records(r) => r.ids,
        other => panic!("{other:?}"),
    };
    let luapool_protocol::Value::Table(w) = store.load(a, &super::j(json!([])), false).unwrap()
    else {
        panic!("not a table")
    };
    for (i, id) in ids.iter().enumerate() {
        store
            .host_set(
                w,
                Key::Int(i as i64 + 1),
                luapool_protocol::Value::Table(*id),
            )
            .unwrap();
    }
    same_reply(&store, &sc, range(w, 3));
    assert!(matches!(
        store.handle(&sc, range(w, 3)),
        luapool_protocol::Reply::Fetched(_)
    ));
    // `{"id", "name", "v"}`: the null is no key at all.
    match store.handle(&sc, range(table("items"), 2)) {
        luapool_protocol::Reply::Records(r) => {
            assert_eq!(
                r.keys,
                vec![Key::str("id"), Key::str("name"), Key::str("v")]
            );
            assert_eq!(r.values[3], luapool_protocol::Value::Int(1));
        }
        other => panic!("{other:?}"),
    }
}

/// A read-only array loaded from `data`, with the scope that reads it.
fn readonly_array(data: serde_json::Value) -> (crate::Store, crate::Scope, TableId) {
    let store = crate::Store::new();
    let a = store.create_arena(0);
    let luapool_protocol::Value::Table(id) = store.load(a, &super::j(data), true).unwrap() else {
        panic!("not a table")
    };
    (store, only(a), id)
}

/// How many records a `Records` reply carries, or `None` for another reply.
fn records_in(store: &crate::Store, sc: &crate::Scope, req: Request) -> Option<usize> {
    same_reply(store, sc, req.clone());
    match store.handle(sc, req) {
        luapool_protocol::Reply::Records(r) => Some(r.ids.len()),
        _ => None,
    }
}

#[test]
fn a_window_of_records_ends_where_the_reply_budget_or_a_long_string_ends_it() {
    let range = |table, start, count| Request::GetRange {
        table,
        start,
        count,
    };
    // 20 KB a record: the 1 MB reply budget ends the window near 52.
    let big = |i: usize| json!({"s": "x".repeat(20_000), "n": i});
    let (store, sc, id) = readonly_array(json!((0..100).map(big).collect::<Vec<_>>()));
    let n = records_in(&store, &sc, range(id, 1, 100)).expect("records");
    assert!(n > 1 && n < 100, "{n}");
    // A number past where the budget ends the window is not reached.
    let mut items: Vec<_> = (0..60).map(big).collect();
    items.push(json!(5));
    let (store, sc, id) = readonly_array(json!(items));
    assert_eq!(records_in(&store, &sc, range(id, 1, 61)), Some(n));
    // Within the budget it is, and the window is not records.
    assert_eq!(records_in(&store, &sc, range(id, 58, 4)), None);
    // A long string ends the window after the records before it.
    let long = "y".repeat(luapool_protocol::LONG_STRING + 1);
    let (store, sc, id) = readonly_array(json!([{"a": 1}, {"a": 2}, long, {"a": 3}]));
    assert_eq!(records_in(&store, &sc, range(id, 1, 4)), Some(2));
    assert_eq!(records_in(&store, &sc, range(id, 3, 2)), None);
}

#[test]
fn only_windows_of_flat_read_only_records_of_one_shape_travel_as_records() {
    let range = |table, start, count| Request::GetRange {
        table,
        start,
        count,
    };
    // Ten keys: a hash part past the short vector.
    let wide = |i: i64| json!({"a": i, "b": 1, "c": 2, "d": 3, "e": 4, "f": 5, "g": 6, "h": 7, "i": 8, "j": "ten"});
    let (store, sc, id) = readonly_array(json!((0..20).map(wide).collect::<Vec<_>>()));
    assert_eq!(records_in(&store, &sc, range(id, 1, 20)), Some(20));
    assert_eq!(records_in(&store, &sc, range(id, 15, 100)), None); // nils past the end
    assert_eq!(records_in(&store, &sc, range(id, -5, 10)), None);
    assert_eq!(records_in(&store, &sc, range(id, i64::MAX - 1, 5)), None);
    for data in [
        json!([{"a": 1, "b": 2}, {"b": 1, "a": 2}]), // another key order
        json!([{"a": 1, "b": 2}, {"a": 1, "c": 2}]), // another key
        json!([{"a": 1}, {"a": 1, "b": 2}]),         // more keys
        json!([{"a": 1}, {"a": [1]}]),               // a nested table
        json!([{"a": 1}, null, {"a": 1}]),           // a hole
        json!([{"a": 1}, "x"]),                      // not a table
        json!([[1, 2], [1, 2, 3]]),                  // another array length
        json!([(0..40).collect::<Vec<_>>(), [1]]),   // past INLINE_MAX_ENTRIES
    ] {
        let (store, sc, id) = readonly_array(data.clone());
        assert_eq!(records_in(&store, &sc, range(id, 1, 3)), None, "{data}");
    }
    let (store, sc, id) = readonly_array(json!([[1, "a"], [2, "b"]]));
    assert_eq!(records_in(&store, &sc, range(id, 1, 2)), Some(2));
}
