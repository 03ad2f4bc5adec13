//! [`Homes`]: the named homes of a pool, and the way to manage them.
//!
//! Named homes are bounded: at most `max_homes` of them (on disk, or in
//! memory for a pool without a data directory), and every home in memory,
//! private ones included, counts towards `homes_bytes` (a write past it is
//! `QuotaExceeded`). With a data directory (or a home store), homes in
//! memory are a cache: a home is read on its first compute (and again when
//! another daemon sharing the store changed it), and one that no session
//! holds stays only while the idle homes take at most `idle_homes_bytes`
//! (least recently used first out), so memory is bounded by the homes in
//! use.
//! Without one, a named home lives until it is dropped.
//!
//! Management (`home_admin.rs`: [`list`](Homes::list),
//! [`drop_home`](Homes::drop_home), [`export`](Homes::export),
//! [`import`](Homes::import)) works on a running pool ([`Pool`](crate::Pool)
//! has the same methods, the daemon has them on its socket) and, through
//! [`Homes::open`], on a data directory no daemon holds (`luapool home`).
//!
//! The registry's lock is never held across disk work or while a home's
//! memory is freed: the daemon's event loop takes it to open a session.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use luapool_homes::{HomeBackend, PgHomes, SqliteHomes};
pub use luapool_protocol::api::HomeInfo;
use luapool_store::{ArenaGroup, Store};
use parking_lot::Mutex;

use crate::error::HomeError;
use crate::home::{Durable, Home};

/// Limits of a pool's homes (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct HomeLimits {
    /// Bytes of store per home (0: none).
    pub quota: u64,
    /// Named homes (0: none).
    pub max_homes: usize,
    /// Bytes of every home in memory together (0: none).
    pub homes_bytes: u64,
    /// Bytes of the homes in memory that no session holds (durable homes).
    pub idle_homes_bytes: u64,
    /// Bytes an export may produce (0: none).
    pub max_output_bytes: u64,
}

/// The named homes of a pool (or of a data directory).
pub struct Homes {
    pub(crate) store: Arc<Store>,
    pub(crate) backend: Option<Arc<dyn HomeBackend>>,
    pub(crate) limits: HomeLimits,
    group: Arc<ArenaGroup>,
    pub(crate) map: Mutex<Registry>,
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Homes in memory, by name.
    pub loaded: HashMap<String, Arc<Home>>,
    /// Names kept by the backend.
    pub on_disk: HashSet<String>,
    /// Names being deleted from the backend: not to be opened meanwhile.
    pub dropping: HashSet<String>,
}

impl Homes {
    /// The homes of `store`, kept by `backend` (in memory only if `None`).
    pub(crate) fn new(
        store: Arc<Store>,
        backend: Option<Arc<dyn HomeBackend>>,
        limits: HomeLimits,
    ) -> Result<Homes, HomeError> {
        let on_disk = match &backend {
            Some(b) => b.list()?.into_iter().map(|h| h.name).collect(),
            None => HashSet::new(),
        };
        Ok(Homes {
            store,
            backend,
            group: Arc::new(ArenaGroup::new(limits.homes_bytes, "homes_bytes")),
            limits,
            map: Mutex::new(Registry {
                on_disk,
                ..Registry::default()
            }),
        })
    }

    /// The homes kept in data directory `dir` (SQLite), for managing them
    /// without a pool: fails if a running daemon holds the directory.
    pub fn open(dir: impl AsRef<Path>, limits: HomeLimits) -> Result<Homes, HomeError> {
        let backend = Arc::new(SqliteHomes::open(dir)?);
        Homes::new(Arc::new(Store::new()), Some(backend), limits)
    }

    /// The homes kept in the PostgreSQL database at `url`, for managing
    /// them without a pool (daemons may be using the same database).
    pub fn open_store(url: &str, limits: HomeLimits) -> Result<Homes, HomeError> {
        let backend = Arc::new(PgHomes::open(url, 2)?);
        Homes::new(Arc::new(Store::new()), Some(backend), limits)
    }

    /// A new private home: in memory, gone with its session.
    pub(crate) fn private(&self) -> Arc<Home> {
        Arc::new(Home::in_memory(
            self.store.clone(),
            self.limits.quota,
            Some(self.group.clone()),
        ))
    }

    /// The home `name`, created if new (within `max_homes`). Not read from
    /// disk yet: its first compute does that.
    pub(crate) fn open_home(&self, name: &str) -> Result<Arc<Home>, HomeError> {
        let mut reg = self.map.lock();
        if let Some(h) = reg.loaded.get(name) {
            h.touch();
            return Ok(h.clone());
        }
        if reg.dropping.contains(name) {
            return Err(HomeError::Dropping {
                name: name.to_string(),
            });
        }
        if !reg.on_disk.contains(name) {
            let count = reg.on_disk.len()
                + reg
                    .loaded
                    .keys()
                    .filter(|n| !reg.on_disk.contains(*n))
                    .count();
            if self.limits.max_homes != 0 && count >= self.limits.max_homes {
                return Err(HomeError::TooManyHomes {
                    limit: self.limits.max_homes,
                });
            }
        }
        let (store, quota, group) = (
            self.store.clone(),
            self.limits.quota,
            Some(self.group.clone()),
        );
        let home = Arc::new(match &self.backend {
            Some(backend) => Home::durable(
                store,
                quota,
                group,
                Durable {
                    name: name.to_string(),
                    backend: backend.clone(),
                },
            ),
            None => Home::in_memory(store, quota, group),
        });
        home.touch();
        reg.loaded.insert(name.to_string(), home.clone());
        Ok(home)
    }

    /// Called when a session lets go of `home`: it may leave memory.
    pub(crate) fn release(&self, home: &Arc<Home>) {
        home.touch();
        if let (Some(name), true) = (home.name(), home.is_saved()) {
            self.map.lock().on_disk.insert(name.to_string());
        }
        self.evict(Some(home), 0);
    }

    /// Drops idle durable homes, least recently used first, until the idle
    /// ones take at most `idle_homes_bytes` and `need` more bytes fit in
    /// `homes_bytes`. `releasing` is held by a session that is closing.
    pub(crate) fn evict(&self, releasing: Option<&Arc<Home>>, need: u64) {
        if self.backend.is_none() {
            return;
        }
        let mut evicted = Vec::new();
        let mut reg = self.map.lock();
        let idle = |h: &Arc<Home>| {
            let holders = Arc::strong_count(h);
            holders == 1 || (holders == 2 && releasing.is_some_and(|r| Arc::ptr_eq(r, h)))
        };
        let mut candidates: Vec<(u64, String, u64)> = reg
            .loaded
            .iter()
            .filter(|(_, h)| idle(h))
            .map(|(n, h)| (h.last_used(), n.clone(), h.bytes()))
            .collect();
        candidates.sort();
        let mut idle_bytes: u64 = candidates.iter().map(|c| c.2).sum();
        let limit = self.group.limit();
        for (_, name, bytes) in candidates {
            let room = limit == 0 || self.group.used().saturating_add(need) <= limit;
            if idle_bytes <= self.limits.idle_homes_bytes && room {
                break;
            }
            idle_bytes -= bytes;
            evicted.extend(reg.loaded.remove(&name));
        }
        drop(reg);
        // Freed here, after the registry's lock: a large home takes a while.
        drop(evicted);
    }

    /// Named homes in memory now.
    pub fn loaded(&self) -> usize {
        self.map
            .lock()
            .loaded
            .values()
            .filter(|h| h.is_loaded())
            .count()
    }

    /// Bytes of every home in memory (private ones included).
    pub fn bytes(&self) -> u64 {
        self.group.used()
    }
}
