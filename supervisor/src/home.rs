//! A `_home`: the arena shared by every session that names it, the turn
//! that serializes the computes using it (a wait for it can be cancelled),
//! and, for a named home of a pool with a data directory or a home store,
//! its durable copy.
//!
//! The durable state (whether the arena holds the home, whether the disk
//! does) lives next to the turn and is touched only through a [`HomeTurn`],
//! which holds the turn: whoever holds it may load the home
//! ([`HomeTurn::load`]), write the open transaction's changes
//! ([`HomeTurn::persist`]) and collect ([`HomeTurn::collect`]). A home is
//! read from disk when a compute first needs it, on the pool thread that
//! takes that compute, never when the daemon starts or a session names it.
//!
//! A durable home's writes reach disk before the compute's reply:
//! [`HomeTurn::persist`] writes the open transaction's changes (the first
//! time, the whole home) and returns once they are durable; a collection's
//! freed tables go the same way. When the disk refuses a write, the
//! in-memory copy is read again on next use, so memory never holds what the
//! disk does not.
//!
//! A home in a shared store (PostgreSQL, several daemons) may change
//! under the copy in memory. The copy remembers the version it was read
//! at: [`HomeTurn::load`] asks the store for the home's version first (one
//! query) and reads the home again when it differs, and
//! [`HomeTurn::persist`] commits only on top of that version. A commit on
//! top of a version that is no longer current writes nothing and is
//! [`HomeError::Conflict`]; the copy is then read again on next use, and
//! the compute runs again (`atomic.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_homes::{HomeBackend, HomeLock, HomeStoreError, Version, ABSENT};
use luapool_protocol::TableId;
use luapool_store::{ArenaGroup, ArenaId, ChangeSet, Store};
use parking_lot::Mutex;

use crate::compute::CancelToken;
use crate::error::{ComputeError, HomeError};
use crate::turn::{Turn, TurnGuard};

/// The durable state beside a home's turn; only its holder changes it.
#[derive(Debug, Default, Clone, Copy)]
struct HomeState {
    /// The arena holds the home (read from disk, or new).
    loaded: bool,
    /// The home exists in the backend (so commits are incremental).
    on_disk: bool,
    /// The version the arena holds (a shared backend's; else `ABSENT`).
    version: Version,
}

/// A durable home's name and where it is kept.
pub(crate) struct Durable {
    pub name: String,
    pub backend: Arc<dyn HomeBackend>,
}

/// A `_home`: an arena with one root table (slot 1) and a turn that
/// serializes the computes using it.
pub struct Home {
    store: Arc<Store>,
    pub(crate) arena: ArenaId,
    pub(crate) root: TableId,
    turn: Arc<Turn>,
    /// Changed only by the holder of `turn` (the lock is never contended
    /// for long: no disk work runs under it).
    state: Mutex<HomeState>,
    pub(crate) live_bytes: Mutex<u64>,
    durable: Option<Durable>,
    /// When a session last released it (ms since `epoch`), for eviction.
    last_used: AtomicU64,
    /// The backend keeps it (something was committed).
    saved: AtomicBool,
    epoch: Instant,
}

/// Holding a home's turn: the only way to its durable state.
pub(crate) struct HomeTurn {
    home: Arc<Home>,
    _turn: TurnGuard,
    /// A shared store's lock on the home, from [`hold`](HomeTurn::hold)
    /// to the next write (or [`release`](HomeTurn::release)).
    held: Mutex<Option<Box<dyn HomeLock>>>,
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

    /// A durable home, not loaded yet: [`HomeTurn::load`] reads it.
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
            turn: Turn::new(),
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
        self.state.lock().loaded
    }

    /// Bytes the home's arena accounts now.
    pub(crate) fn bytes(&self) -> u64 {
        self.store.arena_stats(self.arena).map_or(0, |s| s.bytes)
    }

    /// True once the backend keeps the home.
    pub(crate) fn is_saved(&self) -> bool {
        // SYNC POINT: Relaxed; set by the turn's holder, read as a hint.
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

    /// Takes the home's turn without holding a thread: `grant` runs now if
    /// it is free, else when it comes, or with `Cancelled` as soon as
    /// `cancel` is cancelled. Loading is the holder's next step.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        cancel: Option<&CancelToken>,
        grant: Box<dyn FnOnce(Result<HomeTurn, ComputeError>) + Send>,
    ) {
        let home = self.clone();
        self.turn.acquire(
            cancel,
            Box::new(move |t| {
                grant(t.map(|turn| HomeTurn {
                    home,
                    _turn: turn,
                    held: Mutex::new(None),
                }))
            }),
        );
    }

    /// Waits for the home's turn on this thread (home management).
    pub(crate) fn lock(self: &Arc<Self>) -> HomeTurn {
        HomeTurn {
            home: self.clone(),
            _turn: self.turn.lock(),
            held: Mutex::new(None),
        }
    }

    fn group(&self) -> Option<Arc<ArenaGroup>> {
        self.store.arena_group(self.arena)
    }
}

impl HomeTurn {
    /// Reads a durable home into its arena if it is not there, or if a
    /// shared store holds another version of it now (blocking: a large
    /// home takes seconds; call it on a pool thread).
    pub(crate) fn load(&self) -> Result<(), HomeError> {
        let home = &*self.home;
        let Some(d) = &home.durable else {
            return Ok(());
        };
        let state = *home.state.lock();
        if state.loaded && (!d.backend.is_shared() || self.current_version(d)? == state.version) {
            return Ok(());
        }
        home.store.clear_arena(home.arena);
        let (on_disk, version) = match d.backend.load(&d.name)? {
            Some(stored) => {
                if let Some(group) = home.group() {
                    group
                        .reserve(stored.bytes)
                        .map_err(|e| HomeError::HomesFull {
                            needed: stored.bytes,
                            message: e.to_string(),
                        })?;
                }
                home.store
                    .load_persisted(home.arena, &stored.tables, stored.entries)
                    .map_err(|e| HomeError::Corrupt {
                        name: d.name.clone(),
                        message: e.to_string(),
                    })?;
                // SYNC POINT: Relaxed; see is_saved().
                home.saved.store(true, Ordering::Relaxed);
                (true, stored.version)
            }
            None => {
                home.create_root();
                // Dropped by another daemon since it was read, or never kept.
                // SYNC POINT: Relaxed; see is_saved().
                home.saved.store(false, Ordering::Relaxed);
                (false, ABSENT)
            }
        };
        *home.live_bytes.lock() = home.bytes();
        *home.state.lock() = HomeState {
            loaded: true,
            on_disk,
            version,
        };
        Ok(())
    }

    /// The home's version in the shared store now: the held one, if held.
    fn current_version(&self, d: &Durable) -> Result<Version, HomeStoreError> {
        match &*self.held.lock() {
            Some(lock) => Ok(lock.version()),
            None => d.backend.version(&d.name),
        }
    }

    /// Holds the home in a shared store against other daemons' commits
    /// until the next write or [`release`](Self::release) (for at most
    /// `hold`), so that a compute run meanwhile cannot conflict. Nothing
    /// to do for a store that is not shared, or a home it does not keep.
    pub(crate) fn hold(&self, hold: Duration) -> Result<(), HomeError> {
        if let Some(d) = self.home.durable.as_ref().filter(|d| d.backend.is_shared()) {
            let lock = d.backend.lock(&d.name, hold)?;
            *self.held.lock() = lock;
        }
        Ok(())
    }

    /// Lets go of what [`hold`](Self::hold) holds, writing nothing.
    pub(crate) fn release(&self) {
        let lock = self.held.lock().take();
        drop(lock);
    }

    /// Writes what the open transaction changed in this home to disk (all
    /// of the home if it is new there), returning once it is durable. A
    /// home kept in memory has nothing to write.
    pub(crate) fn persist(&self) -> Result<(), HomeError> {
        let home = &*self.home;
        let Some(d) = &home.durable else {
            return Ok(());
        };
        let cs = if home.state.lock().on_disk {
            home.store.changes(home.arena).unwrap_or_default()
        } else {
            home.store.snapshot(home.arena)?
        };
        self.write(d, cs)
    }

    /// Writes all of the home to disk, replacing what was there (an import).
    pub(crate) fn replace(&self) -> Result<(), HomeError> {
        let home = &*self.home;
        match &home.durable {
            Some(d) => {
                let cs = home.store.snapshot(home.arena)?;
                self.write(d, cs)
            }
            None => Ok(()),
        }
    }

    /// Collects the home's garbage now (`force`) or when it has grown
    /// enough, and deletes the freed tables from disk.
    pub(crate) fn collect(&self, force: bool) -> Result<(), HomeError> {
        let home = &*self.home;
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
            Some(d) if home.state.lock().on_disk && !freed.is_empty() => self.write(
                d,
                ChangeSet {
                    freed,
                    ..ChangeSet::default()
                },
            ),
            _ => Ok(()),
        }
    }

    fn write(&self, d: &Durable, cs: ChangeSet) -> Result<(), HomeError> {
        if cs.is_empty() {
            return Ok(());
        }
        let home = &*self.home;
        let expected = home.state.lock().version;
        let held = self.held.lock().take();
        let committed = match held {
            Some(lock) => lock.commit(cs, home.bytes()),
            None => d.backend.commit_if(&d.name, cs, home.bytes(), expected),
        };
        match committed {
            Ok(version) => {
                let mut state = home.state.lock();
                state.on_disk = true;
                state.version = version;
                // SYNC POINT: Relaxed; see is_saved().
                home.saved.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Memory may now differ from the disk: read it again next time.
                home.state.lock().loaded = false;
                Err(match e {
                    HomeStoreError::Conflict { name } => HomeError::Conflict { name },
                    e => e.into(),
                })
            }
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.store.drop_arena(self.arena);
    }
}
