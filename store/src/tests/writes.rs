//! Scoping, writes, read-only tables, quotas, cross-arena copies.

use luapool_protocol::{Key, Literal, Reply, Request, RequestErrorKind, TableId, Value, Write};
use serde_json::json;

use super::{fetched, get, j, loaded, only, s};
use crate::{Scope, Store, StoreError};
use luapool_protocol::api::HostValue;

fn error_kind(reply: Reply) -> (RequestErrorKind, String) {
    match reply {
        Reply::Error(e) => (e.kind, e.message),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn set(table: TableId, key: &str, value: Literal) -> Request {
    Request::Write(vec![Write {
        table,
        key: Key::str(key),
        value,
    }])
}

#[test]
fn another_arenas_table_is_an_unknown_table() {
    let (store, _, theirs) = loaded(json!({"secret": 1}));
    let mine = store.create_arena(0);
    let sc = only(mine);
    let (kind, msg) = error_kind(get(&store, &sc, theirs, Key::str("secret")));
    assert_eq!(kind, RequestErrorKind::UnknownTable);
    assert_eq!(msg, format!("unknown table {theirs}"));
    let own = store.new_table(mine).unwrap();
    let (kind, _) =
        error_kind(store.handle(&sc, set(own, "x", Literal::Value(Value::Table(theirs)))));
    assert_eq!(
        kind,
        RequestErrorKind::UnknownTable,
        "a reference cannot smuggle it in either"
    );
}

#[test]
fn forged_ids_with_a_valid_arena_are_unknown_tables() {
    let store = Store::new();
    let a = store.create_arena(0);
    let freed = store.new_table(a).unwrap();
    assert_eq!(store.collect(a), 1);
    for forged in [
        freed,
        TableId::new(a, 0),
        TableId::new(a, u32::MAX),
        TableId::from_raw(0),
        TableId::from_raw(u64::MAX),
    ] {
        let (kind, _) = error_kind(store.handle(&only(a), Request::Len { table: forged }));
        assert_eq!(kind, RequestErrorKind::UnknownTable, "{forged}");
    }
}

#[test]
fn writes_to_readonly_tables_are_refused_naming_the_key() {
    let store = Store::new();
    let a = store.create_arena(0);
    let Value::Table(input) = store
        .load(a, &j(json!({"x": 1, "inner": {"y": 2}})), true)
        .unwrap()
    else {
        panic!()
    };
    let (kind, msg) =
        error_kind(store.handle(&only(a), set(input, "x", Literal::Value(Value::Int(2)))));
    assert_eq!(kind, RequestErrorKind::ReadOnly);
    assert_eq!(
        msg,
        "attempt to write key 'x' of a read-only table (_io.input)"
    );
    let Value::Table(inner) = store.host_get(input, &Key::str("inner")).unwrap() else {
        panic!()
    };
    let (kind, _) = error_kind(store.handle(&only(a), set(inner, "y", Literal::Value(Value::Nil))));
    assert_eq!(kind, RequestErrorKind::ReadOnly, "read-only is deep");
    assert_eq!(
        store.host_get(input, &Key::str("x")).unwrap(),
        Value::Int(1)
    );
    // The host may always write.
    store.host_set(input, Key::str("x"), Value::Int(3)).unwrap();
    assert_eq!(
        store.host_get(input, &Key::str("x")).unwrap(),
        Value::Int(3)
    );
}

#[test]
fn quota_refuses_before_applying() {
    let store = Store::new();
    let a = store.create_arena(1000);
    let t = store.new_table(a).unwrap();
    let used = store.arena_stats(a).unwrap().bytes;
    let big = Value::Str(vec![b'x'; 2000]);
    let (kind, _) = error_kind(store.handle(&only(a), set(t, "s", Literal::Value(big))));
    assert_eq!(kind, RequestErrorKind::Quota);
    let nested = Literal::Table {
        array: (0..40).map(|i| Literal::Value(Value::Int(i))).collect(),
        hash: vec![],
    };
    let (kind, _) = error_kind(store.handle(&only(a), set(t, "t", nested)));
    assert_eq!(kind, RequestErrorKind::Quota);
    let stats = store.arena_stats(a).unwrap();
    assert_eq!(
        (stats.tables, stats.bytes),
        (1, used),
        "nothing was applied"
    );
    assert_eq!(store.host_get(t, &Key::str("s")).unwrap(), Value::Nil);

    let too_big = j(json!((0..100).collect::<Vec<i64>>()));
    assert!(matches!(
        store.load(a, &too_big, false),
        Err(StoreError::Quota { .. })
    ));
    assert!(matches!(
        store.host_set(t, Key::str("s"), Value::Str(vec![0; 2000])),
        Err(StoreError::Quota { .. })
    ));
    assert_eq!(store.arena_stats(a).unwrap().bytes, used);
    // Small writes still fit.
    assert_eq!(
        store.handle(&only(a), set(t, "ok", Literal::Value(Value::Int(1)))),
        Reply::Ok
    );
}

#[test]
fn earlier_writes_in_a_batch_stay_applied() {
    let (store, a, t) = loaded(json!({}));
    let writes = vec![
        Write {
            table: t,
            key: Key::str("a"),
            value: Literal::Value(Value::Int(1)),
        },
        Write {
            table: TableId::from_raw(999),
            key: Key::str("b"),
            value: Literal::Value(Value::Int(2)),
        },
        Write {
            table: t,
            key: Key::str("c"),
            value: Literal::Value(Value::Int(3)),
        },
    ];
    let (kind, _) = error_kind(store.handle(&only(a), Request::Write(writes)));
    assert_eq!(kind, RequestErrorKind::UnknownTable);
    assert_eq!(store.host_get(t, &Key::str("a")).unwrap(), Value::Int(1));
    assert_eq!(store.host_get(t, &Key::str("c")).unwrap(), Value::Nil);
}

#[test]
fn literal_tables_are_copied_deeply_and_keep_their_shape() {
    let (store, a, t) = loaded(json!({}));
    let lit = Literal::Table {
        array: vec![
            Literal::Value(Value::Int(1)),
            Literal::Table {
                array: vec![],
                hash: vec![],
            },
        ],
        hash: vec![(
            Key::str("list"),
            Literal::Table {
                array: vec![Literal::Value(s("x"))],
                hash: vec![],
            },
        )],
    };
    assert_eq!(store.handle(&only(a), set(t, "v", lit)), Reply::Ok);
    let out = store
        .extract(&store.host_get(t, &Key::str("v")).unwrap())
        .unwrap();
    assert_eq!(out.to_json(), json!({"1": 1, "2": {}, "list": ["x"]}));
}

#[test]
fn new_table_lives_in_the_session_arena() {
    let store = Store::new();
    let (session, home) = (store.create_arena(0), store.create_arena(0));
    let Reply::NewTable(id) = store.handle(
        &Scope {
            session,
            home,
            io: None,
        },
        Request::NewTable,
    ) else {
        panic!()
    };
    assert_eq!(id.arena(), session);
    assert_eq!(store.arena_stats(session).unwrap().tables, 1);
}

#[test]
fn cross_arena_writes_copy_deeply_and_survive_dropping_the_source() {
    let store = Store::new();
    let (session, home) = (store.create_arena(0), store.create_arena(0));
    let scope = Scope {
        session,
        home,
        io: None,
    };
    let Value::Table(src) = store
        .load(session, &j(json!({"a": {"b": [1, 2]}})), true)
        .unwrap()
    else {
        panic!()
    };
    store
        .host_set(src, Key::str("self"), Value::Table(src))
        .unwrap(); // a cycle, copied as a cycle
    let root = store.new_table(home).unwrap();
    assert_eq!(
        store.handle(&scope, set(root, "data", Literal::Value(Value::Table(src)))),
        Reply::Ok
    );

    let Value::Table(copy) = store.host_get(root, &Key::str("data")).unwrap() else {
        panic!()
    };
    assert_eq!(copy.arena(), home);
    assert_eq!(
        store.host_get(copy, &Key::str("self")).unwrap(),
        Value::Table(copy)
    );
    let f = fetched(get(&store, &scope, copy, Key::str("a")));
    assert!(!f.tables[0].readonly, "the copy is writable");

    store.host_set(src, Key::str("a"), Value::Nil).unwrap();
    store.drop_arena(session);
    store.host_set(copy, Key::str("self"), Value::Nil).unwrap();
    assert_eq!(
        store.extract(&Value::Table(copy)).unwrap().to_json(),
        json!({"a": {"b": [1, 2]}})
    );
    assert_eq!(store.arena_stats(home).unwrap().tables, 4);
}

#[test]
fn host_set_copies_tables_of_other_arenas_too() {
    let store = Store::new();
    let (a, b) = (store.create_arena(0), store.create_arena(0));
    let src = store
        .load(a, &HostValue::Array(vec![HostValue::Int(1)]), false)
        .unwrap();
    let dst = store.new_table(b).unwrap();
    store.host_set(dst, Key::str("x"), src.clone()).unwrap();
    assert_ne!(store.host_get(dst, &Key::str("x")).unwrap(), src);
    store.drop_arena(a);
    assert_eq!(
        store.extract(&Value::Table(dst)).unwrap().to_json(),
        json!({"x": [1]})
    );
}

#[test]
fn handle_never_panics_on_odd_requests() {
    let (store, a, t) = loaded(json!({"x": [1, 2, {"y": 3}]}));
    let sc = only(a);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..5000 {
        let table = match next() % 4 {
            0 => t,
            1 => TableId::from_raw(next()),
            2 => TableId::from_raw(t.raw() + next() % 8),
            _ => TableId::new(a, 0),
        };
        let key = match next() % 4 {
            0 => Key::Int(next() as i64 % 8),
            1 => Key::str("x"),
            2 => Key::Float(1.5f64.to_bits()),
            _ => Key::Bool(true),
        };
        let value = match next() % 4 {
            0 => Literal::Value(Value::Table(table)),
            1 => Literal::Value(Value::Nil),
            2 => Literal::Table {
                array: vec![Literal::Value(Value::Table(t))],
                hash: vec![],
            },
            _ => Literal::Value(Value::Int(1)),
        };
        let req = match next() % 6 {
            0 => Request::Get { table, key },
            1 => Request::GetRange {
                table,
                start: next() as i64,
                count: next() as u32 % 5000,
            },
            2 => Request::Len { table },
            3 => Request::Next {
                table,
                after: Some(key),
                limit: next() as u32,
            },
            4 => Request::Write(vec![Write { table, key, value }]),
            _ => Request::NewTable,
        };
        let _ = store.handle(&sc, req);
    }
    assert!(
        store.extract(&Value::Table(t)).is_ok()
            || store.extract(&Value::Table(t)) == Err(StoreError::Cycle)
    );
}

#[test]
fn no_worker_write_replaces_io_input_whatever_it_sends() {
    let store = Store::new();
    let session = store.create_arena(0);
    let io = store.new_table(session).unwrap();
    let Value::Table(input) = store.load(session, &j(json!({"secret": 1})), true).unwrap() else {
        panic!()
    };
    store
        .host_set(io, Key::str("input"), Value::Table(input))
        .unwrap();
    let scope = Scope {
        session,
        home: session,
        io: Some(io),
    };
    let forged = store.new_table(session).unwrap();
    for value in [
        Literal::Value(Value::Nil),
        Literal::Value(Value::Table(forged)),
        Literal::Value(Value::Int(1)),
        Literal::Table {
            array: vec![],
            hash: vec![],
        },
    ] {
        let reply = store.handle(
            &scope,
            Request::Write(vec![Write {
                table: io,
                key: Key::str("input"),
                value,
            }]),
        );
        assert!(
            matches!(&reply, Reply::Error(e) if e.kind == RequestErrorKind::ReadOnly),
            "{reply:?}"
        );
    }
    // Nor a key of the input tree itself.
    let reply = store.handle(
        &scope,
        Request::Write(vec![Write {
            table: input,
            key: Key::str("secret"),
            value: Literal::Value(Value::Int(2)),
        }]),
    );
    assert!(matches!(&reply, Reply::Error(e) if e.kind == RequestErrorKind::ReadOnly));
    assert_eq!(
        store.host_get(io, &Key::str("input")).unwrap(),
        Value::Table(input)
    );
    assert_eq!(
        store.host_get(input, &Key::str("secret")).unwrap(),
        Value::Int(1)
    );
    // Other keys of `_io` stay writable.
    let reply = store.handle(
        &scope,
        Request::Write(vec![Write {
            table: io,
            key: Key::str("output"),
            value: Literal::Value(Value::Int(3)),
        }]),
    );
    assert_eq!(reply, Reply::Ok);
}

#[test]
fn reserved_tables_are_empty_writable_and_in_the_arena_asked_for() {
    let store = Store::new();
    let (session, home) = (store.create_arena(0), store.create_arena(0));
    let scope = Scope {
        session,
        home,
        io: None,
    };
    let root = store.new_table(home).unwrap();
    let Reply::Reserved(ids) = store.handle(
        &scope,
        Request::Reserve {
            like: root,
            count: 5,
        },
    ) else {
        panic!()
    };
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|id| id.arena() == home));
    assert_eq!(store.arena_stats(home).unwrap().tables, 6);
    // Outside the scope: refused.
    let other = store.create_arena(0);
    let stranger = store.new_table(other).unwrap();
    let reply = store.handle(
        &scope,
        Request::Reserve {
            like: stranger,
            count: 1,
        },
    );
    assert!(matches!(reply, Reply::Error(e) if e.kind == RequestErrorKind::UnknownTable));
    // Within a quota only.
    let tight = store.create_arena(100);
    let t = store.new_table(tight).unwrap();
    let scope = Scope {
        session: tight,
        home: tight,
        io: None,
    };
    let reply = store.handle(
        &scope,
        Request::Reserve {
            like: t,
            count: 1000,
        },
    );
    assert!(matches!(reply, Reply::Error(e) if e.kind == RequestErrorKind::Quota));
    assert_eq!(store.arena_stats(tight).unwrap().tables, 1);
}
