//! `Request::Move` (`table.move` within one table, behind `table.insert`
//! and `table.remove`) against Lua's own loop on a model, for random
//! tables and ranges; its refusals; and its quota.

use std::collections::BTreeMap;

use luapool_protocol::{Key, Literal, Reply, Request, RequestErrorKind, TableId, Value, Write};

use super::{only, s};
use crate::{Scope, Store};

/// Lua's `tmove(t, f, e, d)` on a model table.
fn model_move(m: &mut BTreeMap<i64, i64>, f: i64, e: i64, d: i64) {
    if e < f {
        return;
    }
    let n = e - f + 1;
    let mut step = |i: i64| match m.get(&(f + i)).copied() {
        Some(v) => {
            m.insert(d + i, v);
        }
        None => {
            m.remove(&(d + i));
        }
    };
    if d > e || d <= f {
        (0..n).for_each(&mut step);
    } else {
        (0..n).rev().for_each(&mut step);
    }
}

fn write(store: &Store, sc: &Scope, table: TableId, key: Key, value: Value) {
    let w = Write {
        table,
        key,
        value: Literal::Value(value),
    };
    assert_eq!(store.handle(sc, Request::Write(vec![w])), Reply::Ok);
}

fn value(store: &Store, table: TableId, k: i64) -> Option<i64> {
    match store.host_get(table, &Key::Int(k)).unwrap() {
        Value::Nil => None,
        Value::Int(v) => Some(v),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_move_leaves_what_luas_loop_leaves() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64
    };
    for case in 0..2000 {
        let store = Store::new();
        let a = store.create_arena(0);
        let sc = only(a);
        let t = store.new_table(a).unwrap();
        let mut model = BTreeMap::new();
        // An array part with holes, keys below 1 and far past the end.
        let len = rand(40);
        for k in 1..=len {
            if rand(6) != 0 {
                model.insert(k, k * 10);
            }
        }
        for _ in 0..rand(4) {
            model.insert(rand(60) - 5, 7);
        }
        for (&k, &v) in &model {
            write(&store, &sc, t, Key::Int(k), Value::Int(v));
        }
        write(&store, &sc, t, Key::str("name"), s("kept"));
        let (f, e, d) = (rand(50) - 5, rand(50) - 5, rand(50) - 5);
        let req = Request::Move {
            table: t,
            first: f,
            last: e,
            to: d,
        };
        assert_eq!(store.handle(&sc, req), Reply::Ok, "case {case}");
        model_move(&mut model, f, e, d);
        for k in -12..=110 {
            assert_eq!(
                value(&store, t, k),
                model.get(&k).copied(),
                "case {case}: move({f}, {e}, {d}) at key {k}"
            );
        }
        assert_eq!(store.host_get(t, &Key::str("name")).unwrap(), s("kept"));
    }
}

#[test]
fn inserting_at_the_front_of_a_large_array_shifts_it() {
    let store = Store::new();
    let a = store.create_arena(0);
    let sc = only(a);
    let t = store.new_table(a).unwrap();
    let n = 100_000;
    let values: Vec<Literal> = (1..=n).map(|i| Literal::Value(Value::Int(i))).collect();
    let w = Write {
        table: t,
        key: Key::str("x"),
        value: Literal::Table {
            array: values,
            hash: vec![],
        },
    };
    assert_eq!(store.handle(&sc, Request::Write(vec![w])), Reply::Ok);
    let Value::Table(arr) = store.host_get(t, &Key::str("x")).unwrap() else {
        panic!()
    };
    let shift = Request::Move {
        table: arr,
        first: 1,
        last: n,
        to: 2,
    };
    assert_eq!(store.handle(&sc, shift), Reply::Ok);
    write(&store, &sc, arr, Key::Int(1), Value::Int(0));
    assert_eq!(
        store.handle(&sc, Request::Len { table: arr }),
        Reply::Len(n + 1)
    );
    for k in [1, 2, 3, 50_000, n, n + 1] {
        assert_eq!(value(&store, arr, k), Some(k - 1));
    }
}

#[test]
fn a_move_that_passes_the_quota_changes_nothing() {
    let store = Store::new();
    let a = store.create_arena(4096);
    let sc = only(a);
    let t = store.new_table(a).unwrap();
    for k in 1..=20 {
        write(&store, &sc, t, Key::Int(k), Value::Int(k));
    }
    let before = store.arena_stats(a).unwrap().bytes;
    // A move far past the end makes a second copy in the hash part.
    let req = Request::Move {
        table: t,
        first: 1,
        last: 20,
        to: 1000,
    };
    let copies = (0..10).map(|i| Request::Move {
        table: t,
        first: 1,
        last: 20,
        to: 1000 + 100 * i,
    });
    let mut refused = false;
    for r in std::iter::once(req).chain(copies) {
        match store.handle(&sc, r) {
            Reply::Ok => {}
            Reply::Error(e) => {
                assert_eq!(e.kind, RequestErrorKind::Quota);
                refused = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused, "the quota was never reached");
    assert!(store.arena_stats(a).unwrap().bytes <= 4096);
    assert!(store.arena_stats(a).unwrap().bytes > before);
    for k in 1..=20 {
        assert_eq!(value(&store, t, k), Some(k));
    }
}

#[test]
fn moves_on_read_only_tables_and_past_the_integers_are_refused() {
    let store = Store::new();
    let a = store.create_arena(0);
    let sc = only(a);
    let Value::Table(ro) = store
        .load(a, &super::j(serde_json::json!([1, 2, 3])), true)
        .unwrap()
    else {
        panic!()
    };
    let refused = |req| match store.handle(&sc, req) {
        Reply::Error(e) => e.kind,
        other => panic!("{other:?}"),
    };
    let mv = |table, first, last, to| Request::Move {
        table,
        first,
        last,
        to,
    };
    assert_eq!(refused(mv(ro, 1, 3, 2)), RequestErrorKind::ReadOnly);
    let t = store.new_table(a).unwrap();
    assert_eq!(refused(mv(t, i64::MIN, 0, 1)), RequestErrorKind::Invalid);
    assert_eq!(
        refused(mv(t, 1, 10, i64::MAX - 2)),
        RequestErrorKind::Invalid
    );
    // A range as wide as the integers costs what the table holds: all
    // nil moved over 1.., then 5 moved up by one.
    write(&store, &sc, t, Key::Int(5), Value::Int(5));
    assert_eq!(store.handle(&sc, mv(t, i64::MIN + 2, -1, 1)), Reply::Ok);
    assert_eq!(value(&store, t, 5), None);
    write(&store, &sc, t, Key::Int(5), Value::Int(5));
    assert_eq!(store.handle(&sc, mv(t, 1, i64::MAX - 1, 2)), Reply::Ok);
    assert_eq!(value(&store, t, 6), Some(5));
    assert_eq!(value(&store, t, 5), None);
}

#[test]
#[ignore = "a measurement: cargo test --release -p luapool-store -- --ignored --nocapture move_speed"]
fn move_speed() {
    let store = Store::new();
    let a = store.create_arena(0);
    let sc = only(a);
    let t = store.new_table(a).unwrap();
    let n = 100_000;
    let values: Vec<Literal> = (1..=n).map(|i| Literal::Value(Value::Int(i))).collect();
    let w = Write {
        table: t,
        key: Key::str("x"),
        value: Literal::Table {
            array: values,
            hash: vec![],
        },
    };
    assert_eq!(store.handle(&sc, Request::Write(vec![w])), Reply::Ok);
    let Value::Table(arr) = store.host_get(t, &Key::str("x")).unwrap() else {
        panic!()
    };
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    for _ in 0..reps {
        let start = std::time::Instant::now();
        let shift = Request::Move {
            table: arr,
            first: 1,
            last: n,
            to: 2,
        };
        assert_eq!(store.handle(&sc, shift), Reply::Ok);
        println!("move of {n}: {:?}", start.elapsed());
    }
}
