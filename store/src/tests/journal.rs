//! Transactions: a rollback leaves an arena exactly as it was at `begin`
//! (contents, tables, bytes), a commit keeps every write.

use luapool_protocol::api::HostValue;
use luapool_protocol::{Key, Literal, Request, TableId, Value, Write};
use serde_json::json;

use super::{j, only};
use crate::{ArenaId, ArenaStats, Scope, Store};

fn write(table: TableId, key: Key, value: Literal) -> Request {
    Request::Write(vec![Write { table, key, value }])
}

/// A store with a session and a home arena, each loaded with some data, and
/// collected (so no tombstones are left).
fn two_arenas() -> (Store, Scope, TableId, TableId) {
    let store = Store::new();
    let (session, home) = (store.create_arena(0), store.create_arena(0));
    let Value::Table(io) = store
        .load(
            session,
            &j(json!({"output": {"a": 1, "list": [1, 2, 3], "s": "x".repeat(100)}})),
            false,
        )
        .unwrap()
    else {
        panic!()
    };
    let Value::Table(root) = store
        .load(
            home,
            &j(json!({"count": 5, "records": [{"id": 1}], "m": {"k": "v"}})),
            false,
        )
        .unwrap()
    else {
        panic!()
    };
    store.add_root(io);
    store.add_root(root);
    store.collect(session);
    store.collect(home);
    (
        store,
        Scope {
            session,
            home,
            io: None,
        },
        io,
        root,
    )
}

fn snapshot(store: &Store, arena: ArenaId, root: TableId) -> (HostValue, ArenaStats) {
    (
        store.extract(&Value::Table(root)).unwrap(),
        store.arena_stats(arena).unwrap(),
    )
}

/// Every kind of write a compute can make, on both arenas.
fn scribble(store: &Store, scope: &Scope, io: TableId, root: TableId) {
    let Value::Table(out) = store.host_get(io, &Key::str("output")).unwrap() else {
        panic!()
    };
    let Value::Table(list) = store.host_get(out, &Key::str("list")).unwrap() else {
        panic!()
    };
    let Value::Table(records) = store.host_get(root, &Key::str("records")).unwrap() else {
        panic!()
    };
    let fresh = match store.handle(scope, Request::NewTable) {
        luapool_protocol::Reply::NewTable(id) => id,
        other => panic!("{other:?}"),
    };
    let lit = |v: Value| Literal::Value(v);
    let record = Literal::Table {
        array: vec![],
        hash: vec![(Key::str("id"), lit(Value::Int(2)))],
    };
    for req in [
        write(out, Key::str("a"), lit(Value::Int(2))),
        write(out, Key::str("a"), lit(Value::Int(3))),
        write(out, Key::str("s"), lit(Value::Nil)),
        write(out, Key::str("new"), lit(Value::Str(vec![7; 5000]))),
        write(list, Key::Int(3), lit(Value::Nil)),
        write(list, Key::Int(2), lit(Value::Nil)),
        write(list, Key::Int(5), lit(Value::Int(5))),
        write(list, Key::Int(4), lit(Value::Int(4))),
        write(fresh, Key::str("x"), lit(Value::Int(1))),
        write(out, Key::str("t"), lit(Value::Table(fresh))),
        write(root, Key::str("count"), lit(Value::Int(6))),
        write(root, Key::str("m"), lit(Value::Nil)),
        write(records, Key::Int(2), record),
        // A session table stored into the home is copied there.
        write(root, Key::str("copy"), lit(Value::Table(out))),
        write(io, Key::str("meta"), lit(Value::Table(fresh))),
    ] {
        assert_eq!(store.handle(scope, req), luapool_protocol::Reply::Ok);
    }
}

#[test]
fn a_rollback_leaves_both_arenas_exactly_as_they_were() {
    let (store, scope, io, root) = two_arenas();
    let before = (
        snapshot(&store, scope.session, io),
        snapshot(&store, scope.home, root),
    );
    store.begin(&scope);
    scribble(&store, &scope, io, root);
    assert_ne!(
        snapshot(&store, scope.home, root),
        before.1,
        "the writes showed"
    );
    store.rollback(&scope);
    assert_eq!(snapshot(&store, scope.session, io), before.0);
    assert_eq!(snapshot(&store, scope.home, root), before.1);
    // And the arenas work on: nothing to collect, new writes land.
    assert_eq!(store.collect(scope.session), 0);
    assert_eq!(store.collect(scope.home), 0);
    store
        .host_set(root, Key::str("count"), Value::Int(9))
        .unwrap();
    assert_eq!(store.host_get(root, &Key::str("count")), Ok(Value::Int(9)));
}

#[test]
fn a_commit_keeps_every_write_and_a_later_rollback_keeps_the_commit() {
    let (store, scope, io, root) = two_arenas();
    store.begin(&scope);
    scribble(&store, &scope, io, root);
    let written = (
        snapshot(&store, scope.session, io),
        snapshot(&store, scope.home, root),
    );
    store.commit(&scope);
    assert_eq!(snapshot(&store, scope.session, io), written.0);
    assert_eq!(snapshot(&store, scope.home, root), written.1);
    store.begin(&scope);
    store
        .host_set(root, Key::str("count"), Value::Int(100))
        .unwrap();
    store.rollback(&scope);
    assert_eq!(snapshot(&store, scope.home, root).0, written.1 .0);
    assert_eq!(store.host_get(root, &Key::str("count")), Ok(Value::Int(6)));
}

#[test]
fn a_compute_sees_its_own_writes_before_it_ends() {
    let (store, scope, _, root) = two_arenas();
    store.begin(&scope);
    store.handle(
        &scope,
        write(root, Key::str("count"), Literal::Value(Value::Int(7))),
    );
    assert_eq!(store.host_get(root, &Key::str("count")), Ok(Value::Int(7)));
    store.rollback(&scope);
    assert_eq!(store.host_get(root, &Key::str("count")), Ok(Value::Int(5)));
}

#[test]
fn random_writes_roll_back_to_the_same_contents_and_bytes() {
    let mut rand = super::rand_below(7);
    for round in 0..200 {
        let store = Store::new();
        let a = store.create_arena(0);
        let data: Vec<serde_json::Value> = (0..rand(40))
            .map(|i| {
                if i % 3 == 0 {
                    json!({"k": i})
                } else {
                    json!(i)
                }
            })
            .collect();
        let Value::Table(t) = store
            .load(
                a,
                &j(json!({"arr": data, "h": {"x": 1, "y": "two"}})),
                false,
            )
            .unwrap()
        else {
            panic!()
        };
        store.add_root(t);
        let Value::Table(arr) = store.host_get(t, &Key::str("arr")).unwrap() else {
            panic!()
        };
        let before = snapshot(&store, a, t);
        let scope = only(a);
        store.begin(&scope);
        for _ in 0..rand(60) {
            let key = match rand(4) {
                0 => Key::str(["x", "y", "z", "w"][rand(4) as usize]),
                _ => Key::Int(rand(50) as i64),
            };
            let value = match rand(5) {
                0 | 1 => Value::Nil,
                2 => Value::Str(vec![b'q'; rand(40) as usize]),
                3 => Value::Table(store.new_table(a).unwrap()),
                _ => Value::Int(rand(1000) as i64),
            };
            let target = if rand(2) == 0 { arr } else { t };
            if key != Key::str("arr") {
                store.host_set(target, key, value).unwrap();
            }
        }
        store.rollback(&scope);
        assert_eq!(snapshot(&store, a, t), before, "round {round}");
    }
}
