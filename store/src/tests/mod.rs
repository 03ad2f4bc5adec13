//! Unit tests of the store, one file per area.

mod convert;
mod encode;
mod ext_values;
mod extract;
mod gc;
mod group;
mod journal;
mod load_bytes;
mod measure;
mod moves;
mod next;
mod persist;
mod reads;
mod writes;

use luapool_protocol::{Fetched, Key, Reply, Request, TableId, Value};

use super::{ArenaId, Scope, Store};
use luapool_protocol::api::HostValue;

/// JSON as host data.
pub(super) fn j(v: serde_json::Value) -> HostValue {
    HostValue::from_json(v)
}

/// A store with one unlimited arena holding `v` (writable).
pub(super) fn loaded(v: serde_json::Value) -> (Store, ArenaId, TableId) {
    let store = Store::new();
    let arena = store.create_arena(0);
    let Value::Table(id) = store.load(arena, &j(v), false).unwrap() else {
        panic!("not a table")
    };
    (store, arena, id)
}

/// A scope whose session and home are both `arena`.
pub(super) fn only(arena: ArenaId) -> Scope {
    Scope {
        session: arena,
        home: arena,
        io: None,
    }
}

pub(super) fn fetched(reply: Reply) -> Fetched {
    match reply {
        Reply::Fetched(f) => f,
        other => panic!("expected Fetched, got {other:?}"),
    }
}

pub(super) fn get(store: &Store, scope: &Scope, table: TableId, key: Key) -> Reply {
    store.handle(scope, Request::Get { table, key })
}

pub(super) fn s(text: &str) -> Value {
    Value::Str(text.as_bytes().to_vec())
}

/// A deterministic generator of numbers below `n`, seeded with `seed`.
pub(super) fn rand_below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    }
}
