//! A `_home`: the arena shared by every session that names it, the lock
//! that serializes the computes using it, and (for a named home of a pool
//! with a data directory) its durable copy.
//!
//! The lock is taken through one function, [`Home::acquire`], which also
//! loads a durable home on first use: a home is read from disk when a
//! compute first needs it, not when the daemon starts or a session names
//! it. (The daemon's cancellable wait for a home goes here.)
//!
//! A durable home's writes reach disk before the compute's reply:
//! [`HomeGuard::persist`] writes the open transaction's changes (the first
//! time, the whole home) and returns once they are durable; a collection's
//! freed tables go the same way ([`HomeGuard::collect`]). When the disk
//! refuses a write, the in-memory copy is dropped and read again on next
//! use, so memory never holds what the disk does not.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use luapool_homes::HomeBackend;
use luapool_protocol::TableId;
use luapool_store::{ArenaGroup, ArenaId, ChangeSet, Store};
use parking_lot::{Mutex, MutexGuard};

use crate::error::HomeError;

/// The state behind a home's lock.
#[derive(Debug, Default)]
pub(crate) struct HomeState {
    /// The arena holds the home (read from disk, or new).
    loaded: bool,
    /// The home exists in the backend (so commits are incremental).
    on_disk: bool,
}

/// A durable home's name and where it is kept.
pub(crate) struct Durable {
    pub name: String,
    pub backend: Arc<dyn HomeBackend>,
}

/// A `_home`: an arena with one root table (slot 1) and a lock that
/// serializes the computes using it.
pub struct Home {
    store: Arc<Store>,
    pub(crate) arena: ArenaId,
    pub(crate) root: TableId,
    state: Mutex<HomeState>,
    pub(crate) live_bytes: Mutex<u64>,
    durable: Option<Durable>,
    /// When a session last released it (ms since `epoch`), for eviction.
    last_used: AtomicU64,
    /// The backend keeps it (something was committed).
    saved: AtomicBool,
    epoch: Instant,
}

/// A held home lock (see [`Home::acquire`]).
pub(crate) struct HomeGuard<'a> {
    home: &'a Home,
    state: MutexGuard<'a, HomeState>,
}

impl Home {
    /// A home kept in memory only (a private home, or a named one of a pool
    /// without a data directory), with its root table.
    pub(crate) fn in_memory(store: Arc<Store>, quota: u64, group: Option<Arc<ArenaGroup>>) -> Home {
        let home = Home::new(store, quota, group, None);
        home.create_root();
        home.state.lock().loaded = true;
        home
    }

    /// A durable home, not loaded yet: [`acquire`](Self::acquire) reads it.
    pub(crate) fn durable(
        store: Arc<Store>,
        quota: u64,
        group: Option<Arc<ArenaGroup>>,
        durable: Durable,
    ) -> Home {
        Home::new(store, quota, group, Some(durable))
    }

    fn new(
        store: Arc<Store>,
        quota: u64,
        group: Option<Arc<ArenaGroup>>,
        durable: Option<Durable>,
    ) -> Home {
        let arena = store.create_arena_in(quota, group);
        Home {
            root: TableId::new(arena, 1),
            store,
            arena,
            state: Mutex::new(HomeState::default()),
            live_bytes: Mutex::new(0),
            durable,
            last_used: AtomicU64::new(0),
            saved: AtomicBool::new(false),
            epoch: Instant::now(),
        }
    }

    fn create_root(&self) {
        let root = self
            .store
            .new_table(self.arena)
            .expect("an empty arena has room for its root");
        debug_assert_eq!(root, self.root);
        self.store.add_root(root);
    }

    /// The home's name, if it is durable.
    pub(crate) fn name(&self) -> Option<&str> {
        self.durable.as_ref().map(|d| d.name.as_str())
    }

    /// True if the arena holds the home now.
    pub(crate) fn is_loaded(&self) -> bool {
        self.state.try_lock().is_none_or(|s| s.loaded)
    }

    /// Bytes the home's arena accounts now.
    pub(crate) fn bytes(&self) -> u64 {
        self.store.arena_stats(self.arena).map_or(0, |s| s.bytes)
    }

    /// True once the backend keeps the home.
    pub(crate) fn is_saved(&self) -> bool {
        // SYNC POINT: Relaxed; set under the home's lock, read as a hint.
        self.saved.load(Ordering::Relaxed)
    }

    /// Records a use now (for eviction of idle homes).
    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        // SYNC POINT: Relaxed; an eviction hint read under the registry's lock.
        self.last_used.store(ms, Ordering::Relaxed);
    }

    /// When it was last used (larger is later).
    pub(crate) fn last_used(&self) -> u64 {
        // SYNC POINT: Relaxed; see touch().
        self.last_used.load(Ordering::Relaxed)
    }

    /// Waits for the home's lock (computes sharing a home run one at a
    /// time) and loads a durable home on its first use. The only way to
    /// the lock: keep it so.
    pub(crate) fn acquire(&self) -> Result<HomeGuard<'_>, HomeError> {
        let mut state = self.state.lock();
        if !state.loaded {
            self.load(&mut state)?;
        }
        Ok(HomeGuard { home: self, state })
    }

    fn load(&self, state: &mut HomeState) -> Result<(), HomeError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        self.store.clear_arena(self.arena);
        match d.backend.load(&d.name)? {
            Some(stored) => {
                if let Some(group) = self.group() {
                    group
                        .reserve(stored.bytes)
                        .map_err(|e| HomeError::HomesFull {
                            needed: stored.bytes,
                            message: e.to_string(),
                        })?;
                }
                self.store
                    .load_persisted(self.arena, &stored.tables, stored.entries)
                    .map_err(|e| HomeError::Corrupt {
                        name: d.name.clone(),
                        message: e.to_string(),
                    })?;
                state.on_disk = true;
                // SYNC POINT: Relaxed; see is_saved().
                self.saved.store(true, Ordering::Relaxed);
            }
            None => {
                self.create_root();
                state.on_disk = false;
            }
        }
        *self.live_bytes.lock() = self.bytes();
        state.loaded = true;
        Ok(())
    }

    fn group(&self) -> Option<Arc<ArenaGroup>> {
        self.store.arena_group(self.arena)
    }
}

impl HomeGuard<'_> {
    /// Writes what the open transaction changed in this home to disk (all
    /// of the home if it is new there), returning once it is durable. A
    /// home kept in memory has nothing to write.
    pub fn persist(&mut self) -> Result<(), HomeError> {
        let home = self.home;
        let Some(d) = &home.durable else {
            return Ok(());
        };
        let cs = if self.state.on_disk {
            home.store.changes(home.arena).unwrap_or_default()
        } else {
            home.store.snapshot(home.arena)?
        };
        self.write(d, cs)
    }

    /// Writes all of the home to disk, replacing what was there (an import).
    pub fn replace(&mut self) -> Result<(), HomeError> {
        let home = self.home;
        match &home.durable {
            Some(d) => {
                let cs = home.store.snapshot(home.arena)?;
                self.write(d, cs)
            }
            None => Ok(()),
        }
    }

    /// Collects the home's garbage now or when it has grown enough
    /// (`force`), and deletes the freed tables from disk.
    pub fn collect(&mut self, force: bool) -> Result<(), HomeError> {
        let home = self.home;
        let freed = {
            let mut live = home.live_bytes.lock();
            let Some(stats) = home.store.arena_stats(home.arena) else {
                return Ok(());
            };
            if !force && !crate::session::should_collect(&stats, *live) {
                return Ok(());
            }
            let freed = home.store.collect_slots(home.arena);
            *live = home.bytes();
            freed
        };
        match &home.durable {
            Some(d) if self.state.on_disk && !freed.is_empty() => self.write(
                d,
                ChangeSet {
                    freed,
                    ..ChangeSet::default()
                },
            ),
            _ => Ok(()),
        }
    }

    fn write(&mut self, d: &Durable, cs: ChangeSet) -> Result<(), HomeError> {
        if cs.is_empty() {
            return Ok(());
        }
        match d.backend.commit(&d.name, cs, self.home.bytes()) {
            Ok(()) => {
                self.state.on_disk = true;
                // SYNC POINT: Relaxed; see is_saved().
                self.home.saved.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Memory may now differ from the disk: read it again next time.
                self.state.loaded = false;
                Err(e.into())
            }
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.store.drop_arena(self.arena);
    }
}
