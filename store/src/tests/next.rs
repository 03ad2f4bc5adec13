//! Next: `pairs` over an external table.

use std::collections::HashSet;

use luapool_protocol::{Key, Literal, Reply, Request, RequestErrorKind, TableId, Value, Write};
use serde_json::json;

use super::{loaded, only};
use crate::{ArenaId, Store};

/// A table with an array part 1..=50 and 30 hash keys (past the small-vector size).
fn mixed() -> (Store, ArenaId, TableId) {
    let (store, a, id) = loaded(json!((1..=50).collect::<Vec<i64>>()));
    for i in 0..30 {
        store
            .host_set(id, Key::str(format!("k{i}")), Value::Int(i))
            .unwrap();
    }
    store
        .host_set(id, Key::Int(100), Value::Bool(true))
        .unwrap();
    (store, a, id)
}

/// Iterates in batches of `limit`; `clear` is called with each batch first.
fn iterate(
    store: &Store,
    a: ArenaId,
    id: TableId,
    limit: u32,
    mut clear: impl FnMut(&[(Key, Value)]),
) -> Vec<Key> {
    let (mut after, mut seen) = (None, Vec::new());
    loop {
        let reply = store.handle(
            &only(a),
            Request::Next {
                table: id,
                after: after.clone(),
                limit,
            },
        );
        let Reply::Entries(luapool_protocol::Entries { entries, done, .. }) = reply else {
            panic!("{reply:?}")
        };
        assert!(entries.len() <= limit as usize);
        clear(&entries);
        seen.extend(entries.iter().map(|(k, _)| k.clone()));
        if done {
            return seen;
        }
        after = Some(entries.last().expect("not done, so not empty").0.clone());
    }
}

fn assert_each_once(keys: &[Key], expected: usize) {
    let unique: HashSet<&Key> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a key was visited twice");
    assert_eq!(keys.len(), expected);
}

#[test]
fn pairs_visits_every_key_once_array_part_first() {
    let (store, a, id) = mixed();
    let keys = iterate(&store, a, id, 7, |_| {});
    assert_each_once(&keys, 81);
    assert_eq!(keys[..50], (1..=50).map(Key::Int).collect::<Vec<_>>()[..]);
    assert_eq!(
        keys[50],
        Key::str("k0"),
        "then the hash part in insertion order"
    );
}

#[test]
fn pairs_visits_every_key_once_while_clearing_visited_keys() {
    let (store, a, id) = mixed();
    let keys = iterate(&store, a, id, 7, |batch| {
        let writes = batch
            .iter()
            .map(|(k, _)| Write {
                table: id,
                key: k.clone(),
                value: Literal::Value(Value::Nil),
            })
            .collect();
        assert_eq!(store.handle(&only(a), Request::Write(writes)), Reply::Ok);
    });
    assert_each_once(&keys, 81);
    let Reply::Entries(luapool_protocol::Entries { entries, done, .. }) = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: None,
            limit: 10,
        },
    ) else {
        panic!()
    };
    assert!(entries.is_empty() && done, "the table is empty now");
}

#[test]
fn next_after_an_unknown_key_is_invalid() {
    let (store, a, id) = mixed();
    let reply = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: Some(Key::str("nope")),
            limit: 1,
        },
    );
    let Reply::Error(e) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(e.kind, RequestErrorKind::Invalid);
    assert!(e.message.contains("'nope'"), "{}", e.message);
    let reply = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: Some(Key::Int(51)),
            limit: 1,
        },
    );
    assert!(matches!(reply, Reply::Error(_)));
}

#[test]
fn next_reports_done_exactly_when_nothing_follows() {
    let (store, a, id) = loaded(json!({"a": 1, "b": 2}));
    let reply = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: None,
            limit: 2,
        },
    );
    let Reply::Entries(luapool_protocol::Entries { entries, done, .. }) = reply else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
    assert!(done);
    let reply = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: None,
            limit: 1,
        },
    );
    assert!(matches!(
        reply,
        Reply::Entries(luapool_protocol::Entries { done: false, .. })
    ));
    // limit 0 still makes progress
    let reply = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: None,
            limit: 0,
        },
    );
    let Reply::Entries(luapool_protocol::Entries { entries, .. }) = reply else {
        panic!()
    };
    assert_eq!(entries.len(), 1);
}

#[test]
fn next_inlines_small_tables_among_entries() {
    let (store, a, id) = loaded(json!([{"id": 1}, {"id": 2}]));
    let Reply::Entries(luapool_protocol::Entries {
        entries, tables, ..
    }) = store.handle(
        &only(a),
        Request::Next {
            table: id,
            after: None,
            limit: 10,
        },
    )
    else {
        panic!()
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(tables.len(), 2);
    assert!(tables
        .iter()
        .all(|t| t.complete && t.hash == vec![(Key::str("id"), t.hash[0].1.clone())]));
}
