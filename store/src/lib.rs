//! `luapool-store`: the table store. It owns every external table.
//!
//! Tables live in *arenas* (one per session, one per home). Each arena has
//! its own lock, byte quota and GC roots; dropping an arena drops all its
//! tables at once. A [`TableId`] is `(arena << 32) | slot`, so scoping a
//! worker's request to its session and home is a comparison.
//!
//! Values in an arena only reference tables of that arena: storing a table of
//! another arena deep-copies it. So dropping a session arena can never leave
//! a home pointing at freed tables.
//!
//! Locks: the arena map is a read-write lock held only to look arenas up;
//! an operation locks at most two arenas, always in address order.
//!
//! Where things are: [`Store`] (this file) looks arenas up and locks them;
//! `arena.rs` holds one arena's tables, quota and collector; `table.rs` one
//! table (array and hash parts, `cell.rs` the stored keys and values);
//! `handle.rs` serves a worker's requests within a [`Scope`], `encode.rs`
//! writes read replies straight from the cells and `inline.rs` picks the
//! small tables that travel with them; `convert.rs` stores worker
//! literals and copies across arenas; `load_bytes.rs` loads host data from
//! MessagePack, `extract.rs` reads it back out (within an output byte
//! budget). `journal.rs` is the undo log that makes a compute atomic
//! ([`Store::begin`], `commit`, `rollback`); `persist.rs` the form a
//! durable home is kept in (a snapshot, then each commit's changes).
#![deny(missing_docs)]

mod arena;
mod cell;
mod convert;
mod encode;
mod error;
mod extract;
mod handle;
mod hash_part;
mod inline;
mod journal;
mod load_bytes;
mod persist;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use luapool_protocol::{Key, TableId, Value};
use parking_lot::{Mutex, MutexGuard, RwLock};

pub use arena::ArenaGroup;
use arena::{arena_of, Arena};

pub use error::StoreError;
pub use extract::{OutputBudget, DEFAULT_MAX_OUTPUT_BYTES};
pub use handle::{MAX_ENTRIES, MAX_RANGE};
pub use inline::{
    INLINE_BUDGET_BYTES, INLINE_BUDGET_ENTRIES, INLINE_MAX_DEPTH, INLINE_MAX_ENTRIES,
};
pub use persist::{ChangeSet, Entry, PersistTable, EXT_TABLE};
pub use table::{SLOT_BYTES, TABLE_BYTES};

use luapool_protocol::api::HostValue;

/// Identifies an arena: the tables of one session or one home.
pub type ArenaId = u32;

/// Arena ids are drawn from `1..=MAX_ARENA_ID`.
pub const MAX_ARENA_ID: ArenaId = (1 << 21) - 1;

/// How deep [`Store::load`], [`Store::extract`] and copied literals may nest.
pub const MAX_NESTING: usize = 256;

/// The arenas a worker's request may touch: its session's and its home's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// The session's arena (`_io`, new tables).
    pub session: ArenaId,
    /// The home's arena (`_home`).
    pub home: ArenaId,
    /// The session's `_io` table, whose `input` key no worker may write
    /// (the input tree itself is read-only in the store). `None`: no such
    /// rule (a scope of the host's own).
    pub io: Option<TableId>,
}

/// Totals over every arena (the shared host-API type).
pub use luapool_protocol::api::StoreStats;

/// Counts for one arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Tables alive.
    pub tables: usize,
    /// Bytes accounted.
    pub bytes: u64,
    /// The byte quota (0: unlimited).
    pub quota: u64,
}

type ArenaRef = Arc<Mutex<Arena>>;

#[derive(Default)]
struct Arenas {
    map: HashMap<ArenaId, ArenaRef>,
    /// How many arenas were made; the id of each is this count under a
    /// keyed hash, so ids (and so table ids) say nothing about how many
    /// arenas other sessions made.
    made: u64,
    ids: RandomState,
}

/// Owns every external table. `Send + Sync`; share it behind an `Arc`.
#[derive(Default)]
pub struct Store {
    arenas: RwLock<Arenas>,
}

/// Up to two locked arenas, locked in address order (so never deadlocking).
pub(crate) struct Locked<'a> {
    first: MutexGuard<'a, Arena>,
    second: Option<MutexGuard<'a, Arena>>,
}

impl<'a> Locked<'a> {
    fn lock(a: &'a ArenaRef, b: Option<&'a ArenaRef>) -> Locked<'a> {
        match b {
            Some(b) if !Arc::ptr_eq(a, b) => {
                let (lo, hi) = if a.data_ptr() < b.data_ptr() {
                    (a, b)
                } else {
                    (b, a)
                };
                let first = lo.lock();
                let second = hi.lock();
                Locked {
                    first,
                    second: Some(second),
                }
            }
            _ => Locked {
                first: a.lock(),
                second: None,
            },
        }
    }

    /// The locked arena `id`.
    pub fn get(&self, id: ArenaId) -> Option<&Arena> {
        std::iter::once(&self.first)
            .chain(&self.second)
            .find(|a| a.id() == id)
            .map(|g| &**g)
    }

    /// The locked arena `id`, mutably, and the other locked arena if any.
    pub fn split(&mut self, id: ArenaId) -> Option<(&mut Arena, Option<&Arena>)> {
        let first = &mut *self.first;
        let second = self.second.as_deref_mut();
        if first.id() == id {
            Some((first, second.map(|s| &*s)))
        } else {
            second.filter(|s| s.id() == id).map(|s| (s, Some(&*first)))
        }
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    fn arena(&self, id: ArenaId) -> Result<ArenaRef, StoreError> {
        self.arenas
            .read()
            .map
            .get(&id)
            .cloned()
            .ok_or(StoreError::UnknownArena(id))
    }

    /// The arena holding `table`.
    fn arena_for(&self, table: TableId) -> Result<ArenaRef, StoreError> {
        self.arena(arena_of(table))
            .map_err(|_| StoreError::UnknownTable(table))
    }

    /// A new arena (one per session, one per home) with a byte quota (0: unlimited).
    pub fn create_arena(&self, quota_bytes: u64) -> ArenaId {
        self.create_arena_in(quota_bytes, None)
    }

    /// [`create_arena`](Self::create_arena), counted in `group` as well.
    pub fn create_arena_in(&self, quota_bytes: u64, group: Option<Arc<ArenaGroup>>) -> ArenaId {
        let mut arenas = self.arenas.write();
        let id = loop {
            arenas.made += 1;
            // SipHash with the process's random keys: unpredictable ids,
            // below 2^21 so that table ids stay below 2^53 (exact as a
            // JavaScript number or a JSON double).
            let id = (arenas.ids.hash_one(arenas.made) % u64::from(MAX_ARENA_ID)) as ArenaId + 1;
            if !arenas.map.contains_key(&id) {
                break id;
            }
        };
        arenas.map.insert(
            id,
            Arc::new(Mutex::new(Arena::new(id, quota_bytes).in_group(group))),
        );
        id
    }

    /// The group `arena` is counted in, if any.
    pub fn arena_group(&self, arena: ArenaId) -> Option<Arc<ArenaGroup>> {
        self.arena(arena).ok()?.lock().group().cloned()
    }

    /// Empties `arena`: every table is freed (a home that must be read
    /// again from disk). Its quota and group stay.
    pub fn clear_arena(&self, arena: ArenaId) {
        if let Ok(a) = self.arena(arena) {
            let mut a = a.lock();
            let (quota, group) = (a.stats().quota, a.group().cloned());
            *a = Arena::new(arena, quota).in_group(group);
        }
    }

    /// Drops the arena and every table in it. Unknown arenas are ignored.
    pub fn drop_arena(&self, arena: ArenaId) {
        let removed = self.arenas.write().map.remove(&arena);
        drop(removed); // frees the tables outside the map lock
    }

    /// A new empty, writable table in `arena`.
    pub fn new_table(&self, arena: ArenaId) -> Result<TableId, StoreError> {
        self.arena(arena)?.lock().new_table(false)
    }

    /// Marks a table as a GC root of its arena (a session's `_io`, a home's root).
    /// Unknown ids are ignored.
    pub fn add_root(&self, id: TableId) {
        if let Ok(a) = self.arena_for(id) {
            a.lock().add_root(id);
        }
    }

    /// Loads host data into `arena`: arrays and maps become new tables (all
    /// read-only if `readonly`), scalars stay values. An array stays an array
    /// even when empty. Quota checked before anything is created.
    pub fn load(&self, arena: ArenaId, v: &HostValue, readonly: bool) -> Result<Value, StoreError> {
        // One loading path: a HostValue is encoded as the MessagePack it
        // stands for and loaded like any other host data.
        let bytes = rmp_serde::to_vec(v).map_err(|_| StoreError::Malformed)?;
        self.load_msgpack(arena, &bytes, readonly)
    }

    /// Host-side loading of one MessagePack value (what `rmp_serde` writes,
    /// or a daemon client sent) into `arena`, without building Rust values
    /// on the way; [`load`](Self::load)'s rules. `bytes` must be exactly one
    /// value (trailing bytes are [`StoreError::Malformed`]).
    pub fn load_msgpack(
        &self,
        arena: ArenaId,
        bytes: &[u8],
        readonly: bool,
    ) -> Result<Value, StoreError> {
        load_bytes::load(&mut self.arena(arena)?.lock(), bytes, readonly)
    }

    /// `table[key]`, for the host (no scope).
    pub fn host_get(&self, table: TableId, key: &Key) -> Result<Value, StoreError> {
        Ok(self.arena_for(table)?.lock().table(table)?.get(key))
    }

    /// `table[key] = value` for the host: no read-only check; quota checked;
    /// [`Value::Nil`] deletes; a table of another arena is deep-copied.
    pub fn host_set(&self, table: TableId, key: Key, value: Value) -> Result<(), StoreError> {
        let dst = self.arena_for(table)?;
        let src = match &value {
            Value::Table(id) if arena_of(*id) != arena_of(table) => Some(self.arena_for(*id)?),
            _ => None,
        };
        let mut locked = Locked::lock(&dst, src.as_ref());
        let (arena, other) = locked
            .split(arena_of(table))
            .ok_or(StoreError::UnknownTable(table))?;
        convert::store(
            arena,
            other,
            table,
            key,
            luapool_protocol::Literal::Value(value),
        )
    }

    /// Deep read for the host: tables become arrays or maps (see
    /// [`HostValue`] for the rules), within [`DEFAULT_MAX_OUTPUT_BYTES`]. A
    /// cycle is [`StoreError::Cycle`].
    pub fn extract(&self, v: &Value) -> Result<HostValue, StoreError> {
        self.extract_within(v, &mut OutputBudget::new(DEFAULT_MAX_OUTPUT_BYTES))
    }

    /// [`extract`](Self::extract) charging `budget`: the MessagePack bytes
    /// of the value plus what the tree takes in memory. Past the budget,
    /// [`StoreError::OutputTooLarge`].
    pub fn extract_within(
        &self,
        v: &Value,
        budget: &mut OutputBudget,
    ) -> Result<HostValue, StoreError> {
        let mut bytes = Vec::new();
        self.emit(v, budget, true, &mut bytes)?;
        extract::to_host(&bytes)
    }

    /// Deep read for the host as one MessagePack value appended to `out`,
    /// written straight from the store, charging `budget` for every byte.
    /// Past the budget, [`StoreError::OutputTooLarge`] (and `out` holds a
    /// partial value: discard it).
    pub fn extract_msgpack(
        &self,
        v: &Value,
        budget: &mut OutputBudget,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        self.emit(v, budget, false, out)
    }

    fn emit(
        &self,
        v: &Value,
        budget: &mut OutputBudget,
        tree: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        match v {
            Value::Table(id) => {
                let arena = self.arena_for(*id)?;
                let guard = arena.lock();
                extract::emit(Some(&guard), v, budget, tree, out)
            }
            _ => extract::emit(None, v, budget, tree, out),
        }
    }

    /// Serves one worker request within `scope`. Never panics; every failure
    /// is a [`Reply::Error`](luapool_protocol::Reply::Error).
    pub fn handle(&self, scope: &Scope, req: luapool_protocol::Request) -> luapool_protocol::Reply {
        self.with_scope(scope, |locked| handle::handle(locked, scope, req))
    }

    /// Runs `f` with the scope's arenas locked (`None`: neither exists).
    fn with_scope<R>(&self, scope: &Scope, f: impl FnOnce(Option<Locked<'_>>) -> R) -> R {
        let session = self.arena(scope.session).ok();
        let home = self.arena(scope.home).ok();
        let locked = match (&session, &home) {
            (Some(s), h) => Some(Locked::lock(s, h.as_ref())),
            (None, Some(h)) => Some(Locked::lock(h, None)),
            (None, None) => None,
        };
        f(locked)
    }

    /// Like [`handle`](Self::handle), but writes the whole encoded
    /// `ToWorker::Reply` message into `out` (cleared first), encoding reads
    /// straight from the store. Returns the error kind if the reply is an error.
    pub fn handle_into(
        &self,
        scope: &Scope,
        req: luapool_protocol::Request,
        out: &mut Vec<u8>,
    ) -> Option<luapool_protocol::RequestErrorKind> {
        out.clear();
        self.with_scope(scope, |locked| handle::handle_into(locked, scope, req, out))
    }

    /// Begins a transaction on the scope's arenas (see `journal.rs`): until
    /// [`commit`](Self::commit) or [`rollback`](Self::rollback), every write
    /// to them can be undone. Unknown arenas are ignored.
    pub fn begin(&self, scope: &Scope) {
        self.each_arena(scope, Arena::begin);
    }

    /// Ends the scope's transactions keeping their writes.
    pub fn commit(&self, scope: &Scope) {
        self.each_arena(scope, Arena::commit);
    }

    /// Ends the scope's transactions undoing their writes: the arenas'
    /// tables, contents and byte counts are as they were at
    /// [`begin`](Self::begin).
    pub fn rollback(&self, scope: &Scope) {
        self.each_arena(scope, Arena::rollback);
    }

    fn each_arena(&self, scope: &Scope, mut f: impl FnMut(&mut Arena)) {
        let mut ids = vec![scope.session];
        if scope.home != scope.session {
            ids.push(scope.home);
        }
        for id in ids {
            if let Ok(a) = self.arena(id) {
                f(&mut a.lock());
            }
        }
    }

    /// Mark-and-sweep `arena` from its roots; returns the tables freed. Call
    /// only while no compute uses the arena.
    pub fn collect(&self, arena: ArenaId) -> usize {
        self.collect_slots(arena).len()
    }

    /// [`collect`](Self::collect), returning the slots of the tables freed
    /// (what a durable home deletes: [`ChangeSet::freed`]).
    pub fn collect_slots(&self, arena: ArenaId) -> Vec<u32> {
        self.arena(arena).map_or(Vec::new(), |a| a.lock().collect())
    }

    /// What `arena`'s open transaction changed, for a durable home to write
    /// before [`commit`](Self::commit): the keys written (with their values
    /// now) and the tables created. `None` if no transaction is open.
    pub fn changes(&self, arena: ArenaId) -> Option<ChangeSet> {
        persist::changes(&self.arena(arena).ok()?.lock())
    }

    /// All of `arena` as a change set that replaces a persisted home.
    pub fn snapshot(&self, arena: ArenaId) -> Result<ChangeSet, StoreError> {
        Ok(persist::snapshot(&self.arena(arena)?.lock()))
    }

    /// Fills the empty `arena` with a persisted home: its tables, then its
    /// entries as `(slot, key, value)` in the order first written. Fails
    /// with [`StoreError::Corrupt`] (and leaves the arena empty) if the data
    /// is not what [`changes`](Self::changes) and [`snapshot`](Self::snapshot)
    /// write.
    pub fn load_persisted(
        &self,
        arena: ArenaId,
        tables: &[PersistTable],
        entries: impl IntoIterator<Item = (u32, Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let a = self.arena(arena)?;
        let mut a = a.lock();
        if a.stats().tables != 0 {
            return Err(StoreError::Corrupt("loading into an arena in use".into()));
        }
        let loaded = persist::load(&mut a, tables, entries);
        if loaded.is_err() {
            let (id, quota, group) = (a.id(), a.stats().quota, a.group().cloned());
            *a = Arena::new(id, quota).in_group(group);
        }
        loaded
    }

    /// Totals over every arena.
    pub fn stats(&self) -> StoreStats {
        let arenas: Vec<ArenaRef> = self.arenas.read().map.values().cloned().collect();
        let mut s = StoreStats {
            arenas: arenas.len(),
            ..StoreStats::default()
        };
        for a in arenas {
            let a = a.lock().stats();
            s.tables += a.tables;
            s.bytes += a.bytes;
        }
        s
    }

    /// Counts for one arena, or `None` if it does not exist.
    pub fn arena_stats(&self, arena: ArenaId) -> Option<ArenaStats> {
        self.arena(arena).ok().map(|a| a.lock().stats())
    }
}
