//! Persisted homes: change sets applied to a model of a durable engine
//! (rows keyed by slot and key, kept in first-written order) read back to
//! exactly the arena they came from.

use std::collections::{BTreeMap, BTreeSet};

use luapool_protocol::{Key, Literal, Request, TableId, Value, Write};
use serde_json::json;

use super::{j, only};
use crate::{ChangeSet, PersistTable, Store, StoreError};

/// What an engine keeps: tables, and entries with the order they were first written.
#[derive(Default)]
struct Disk {
    tables: BTreeMap<u32, bool>,
    entries: BTreeMap<(u32, Vec<u8>), (u64, Vec<u8>)>,
    seq: u64,
}

impl Disk {
    fn apply(&mut self, cs: &ChangeSet) {
        if cs.replace {
            self.tables.clear();
            self.entries.clear();
        }
        for slot in cs.freed.iter().chain(cs.created.iter().map(|t| &t.slot)) {
            self.tables.remove(slot);
            self.entries.retain(|(s, _), _| s != slot);
        }
        for t in &cs.created {
            self.tables.insert(t.slot, t.from_array);
        }
        for e in &cs.entries {
            let k = (e.slot, e.key.clone());
            match &e.value {
                None => drop(self.entries.remove(&k)),
                Some(v) => match self.entries.get_mut(&k) {
                    Some(row) => row.1 = v.clone(),
                    None => {
                        self.seq += 1;
                        self.entries.insert(k, (self.seq, v.clone()));
                    }
                },
            }
        }
    }

    fn load(&self, store: &Store) -> Result<TableId, StoreError> {
        let arena = store.create_arena(0);
        let tables: Vec<PersistTable> = self
            .tables
            .iter()
            .map(|(&slot, &from_array)| PersistTable { slot, from_array })
            .collect();
        let mut rows: Vec<_> = self.entries.iter().collect();
        rows.sort_by_key(|(_, (seq, _))| *seq);
        store.load_persisted(
            arena,
            &tables,
            rows.into_iter()
                .map(|((slot, k), (_, v))| (*slot, k.clone(), v.clone())),
        )?;
        Ok(TableId::new(arena, 1))
    }
}

fn home(store: &Store) -> (crate::ArenaId, TableId) {
    let arena = store.create_arena(0);
    let root = store.new_table(arena).unwrap();
    store.add_root(root);
    assert_eq!(root.slot(), 1);
    (arena, root)
}

fn set(store: &Store, arena: crate::ArenaId, table: TableId, key: Key, value: Literal) {
    let r = store.handle(
        &only(arena),
        Request::Write(vec![Write { table, key, value }]),
    );
    assert_eq!(r, luapool_protocol::Reply::Ok);
}

#[test]
fn a_snapshot_reads_back_as_the_same_home() {
    let store = Store::new();
    let (arena, root) = home(&store);
    let Value::Table(data) = store
        .load(
            arena,
            &j(json!({"n": 1, "f": 2.5, "s": "héllo", "list": [1, [2], {"x": []}], "empty": []})),
            false,
        )
        .unwrap()
    else {
        panic!()
    };
    store
        .host_set(root, Key::str("data"), Value::Table(data))
        .unwrap();
    store
        .host_set(root, Key::Int(7), Value::Str(vec![0xff, 0]))
        .unwrap();
    store
        .host_set(root, Key::Bool(true), Value::Float(f64::NAN))
        .unwrap();
    store
        .host_set(
            root,
            Key::str("big"),
            Value::BigInt("-98765432109876543210".into()),
        )
        .unwrap();
    store
        .host_set(
            root,
            Key::str("f"),
            Value::Function("function(x) return x end".into()),
        )
        .unwrap();
    store
        .host_set(root, Key::str("self"), Value::Table(root))
        .unwrap();
    store
        .host_set(root, Key::str("same"), Value::Table(data))
        .unwrap();
    let mut disk = Disk::default();
    disk.apply(&store.snapshot(arena).unwrap());
    let back = disk.load(&store).unwrap();
    let (a, b) = (
        store.host_get(root, &Key::str("data")).unwrap(),
        store.host_get(back, &Key::str("data")).unwrap(),
    );
    assert_eq!(store.extract(&a).unwrap(), store.extract(&b).unwrap());
    // References keep their identity (the self-reference and the sharing).
    assert_eq!(
        store.host_get(back, &Key::str("self")),
        Ok(Value::Table(back))
    );
    assert_eq!(store.host_get(back, &Key::str("same")), Ok(b.clone()));
    assert_eq!(
        store.host_get(back, &Key::Int(7)),
        Ok(Value::Str(vec![0xff, 0]))
    );
    assert_eq!(
        store.host_get(back, &Key::str("big")),
        Ok(Value::BigInt("-98765432109876543210".into()))
    );
    assert_eq!(
        store.host_get(back, &Key::str("f")),
        Ok(Value::Function("function(x) return x end".into()))
    );
    let Ok(Value::Float(nan)) = store.host_get(back, &Key::Bool(true)) else {
        panic!()
    };
    assert!(nan.is_nan());
    assert_eq!(
        store.arena_stats(arena).unwrap().tables,
        store.arena_stats(back.arena()).unwrap().tables
    );
}

#[test]
fn committed_changes_and_collections_applied_in_order_read_back_the_same() {
    let store = Store::new();
    let (arena, root) = home(&store);
    let mut disk = Disk::default();
    disk.apply(&store.snapshot(arena).unwrap());
    let mut rand = super::rand_below(11);
    let mut live: Vec<TableId> = vec![root];
    for round in 0..300 {
        store.begin(&only(arena));
        for _ in 0..rand(8) {
            let t = live[rand(live.len() as u64) as usize];
            let key = if rand(2) == 0 {
                Key::Int(rand(6) as i64 + 1)
            } else {
                Key::str(["a", "b", "c"][rand(3) as usize])
            };
            let value = match rand(6) {
                0 => Literal::Value(Value::Nil),
                1 => Literal::Table {
                    array: vec![Literal::Value(Value::Int(round))],
                    hash: vec![],
                },
                2 => Literal::Value(Value::Table(live[rand(live.len() as u64) as usize])),
                _ => Literal::Value(Value::Int(rand(100) as i64)),
            };
            set(&store, arena, t, key, value);
        }
        let cs = store.changes(arena).unwrap();
        if rand(4) == 0 {
            store.rollback(&only(arena));
        } else {
            disk.apply(&cs);
            store.commit(&only(arena));
        }
        if rand(5) == 0 {
            let freed = store.collect_slots(arena);
            disk.apply(&ChangeSet {
                freed,
                ..ChangeSet::default()
            });
        }
        // Tables reachable now, for the next round's writes.
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            if seen.insert(t) {
                let r = store.handle(
                    &only(arena),
                    Request::Next {
                        table: t,
                        after: None,
                        limit: 4096,
                    },
                );
                let luapool_protocol::Reply::Entries(luapool_protocol::Entries { entries, .. }) = r
                else {
                    panic!("{r:?}")
                };
                stack.extend(entries.into_iter().filter_map(|(_, v)| match v {
                    Value::Table(id) => Some(id),
                    _ => None,
                }));
            }
        }
        live = seen.into_iter().collect();
        let back = disk.load(&store).unwrap();
        assert_eq!(
            store.extract(&Value::Table(back)),
            store.extract(&Value::Table(root)),
            "round {round}"
        );
        store.drop_arena(back.arena());
    }
}

#[test]
fn corrupt_rows_are_an_error_and_load_nothing() {
    let store = Store::new();
    let (arena, root) = home(&store);
    store.host_set(root, Key::str("x"), Value::Int(1)).unwrap();
    let good = store.snapshot(arena).unwrap();
    let mut dangling = good.clone();
    dangling.entries[0].value = Some(vec![0xd6, 16, 0, 0, 0, 9]);
    let mut junk = good.clone();
    junk.entries[0].key = vec![0xc1];
    let mut rootless = good.clone();
    rootless.created.clear();
    let mut bad_bigint = good.clone();
    bad_bigint.entries[0].value = Some(vec![0xd5, 1, b'1', b'x']);
    let mut bad_function = good.clone();
    bad_function.entries[0].value = Some(vec![0xd5, 2, b'o', b's']);
    for bad in [dangling, junk, rootless, bad_bigint, bad_function] {
        let mut disk = Disk::default();
        disk.apply(&bad);
        let arena = store.create_arena(0);
        let tables: Vec<PersistTable> = disk
            .tables
            .iter()
            .map(|(&slot, &from_array)| PersistTable { slot, from_array })
            .collect();
        let rows = disk
            .entries
            .iter()
            .map(|((s, k), (_, v))| (*s, k.clone(), v.clone()));
        assert!(matches!(
            store.load_persisted(arena, &tables, rows),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(store.arena_stats(arena).unwrap().tables, 0);
    }
}

/// Arena ids are random (a keyed hash, different in every process): what a
/// home persists names tables by slot only, so it is the same bytes under
/// any arena id and reads back, references included, under a new one.
#[test]
fn a_persisted_home_does_not_depend_on_its_arena_id() {
    let fill = |store: &Store| {
        let (arena, root) = home(store);
        let Value::Table(data) = store
            .load(arena, &j(json!({"rows": [{"id": 1}, {"id": 2}]})), false)
            .unwrap()
        else {
            panic!()
        };
        store
            .host_set(root, Key::str("data"), Value::Table(data))
            .unwrap();
        store
            .host_set(root, Key::str("again"), Value::Table(data))
            .unwrap();
        store
            .host_set(root, Key::str("self"), Value::Table(root))
            .unwrap();
        arena
    };
    let (one, two) = (Store::new(), Store::new());
    let (a, b) = (fill(&one), fill(&two));
    let c = fill(&one);
    assert_ne!(a, c);
    let snap = one.snapshot(a).unwrap();
    assert_eq!(snap, two.snapshot(b).unwrap(), "the same bytes");
    assert_eq!(snap, one.snapshot(c).unwrap(), "the same bytes");
    // Read back in a third store, under whatever id it gives.
    let mut disk = Disk::default();
    disk.apply(&snap);
    let three = Store::new();
    let back = disk.load(&three).unwrap();
    let data = three.host_get(back, &Key::str("data")).unwrap();
    let Value::Table(data_id) = data else {
        panic!("{data:?}")
    };
    assert_eq!(data_id.arena(), back.arena());
    assert_eq!(three.host_get(back, &Key::str("again")), Ok(data.clone()));
    assert_eq!(
        three.host_get(back, &Key::str("self")),
        Ok(Value::Table(back))
    );
    assert_eq!(
        three.extract(&data).unwrap(),
        j(json!({"rows": [{"id": 1}, {"id": 2}]}))
    );
}
