//! [`Homes`]: the named homes of a pool, and the way to manage them.
//!
//! Named homes are bounded: at most `max_homes` of them (on disk, or in
//! memory for a pool without a data directory), and every home in memory,
//! private ones included, counts towards `homes_bytes` (a write past it is
//! `QuotaExceeded`). With a data directory, homes in memory are a cache:
//! a home is read on its first compute, and one that no session holds stays
//! only while the idle homes take at most `idle_homes_bytes` (least
//! recently used first out), so memory is bounded by the homes in use.
//! Without one, a named home lives until it is dropped.
//!
//! Management ([`list`](Homes::list), [`drop_home`](Homes::drop_home),
//! [`export`](Homes::export), [`import`](Homes::import)) works on a running
//! pool ([`Pool`](crate::Pool) has the same methods) and, through
//! [`Homes::open`], on a data directory no daemon holds (`luapool home`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use luapool_homes::{HomeBackend, SqliteHomes};
use luapool_protocol::api::HostValue;
use luapool_protocol::{Key, Value};
use luapool_store::{ArenaGroup, OutputBudget, Store};
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

/// A named home as [`Homes::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeInfo {
    /// Its name.
    pub name: String,
    /// Bytes it accounts (in memory if loaded, else at its last commit).
    pub bytes: u64,
    /// True if it is in memory now.
    pub loaded: bool,
    /// Sessions holding it now.
    pub sessions: usize,
}

/// The named homes of a pool (or of a data directory).
pub struct Homes {
    store: Arc<Store>,
    backend: Option<Arc<dyn HomeBackend>>,
    limits: HomeLimits,
    group: Arc<ArenaGroup>,
    map: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Homes in memory, by name.
    loaded: HashMap<String, Arc<Home>>,
    /// Names kept by the backend.
    on_disk: HashSet<String>,
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
                loaded: HashMap::new(),
                on_disk,
            }),
        })
    }

    /// The homes kept in data directory `dir` (SQLite), for managing them
    /// without a pool: fails if a running daemon holds the directory.
    pub fn open(dir: impl AsRef<Path>, limits: HomeLimits) -> Result<Homes, HomeError> {
        let backend = Arc::new(SqliteHomes::open(dir)?);
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
            reg.loaded.remove(&name);
        }
    }

    /// Every named home: on disk, and in memory.
    pub fn list(&self) -> Result<Vec<HomeInfo>, HomeError> {
        let mut out: BTreeMap<String, HomeInfo> = BTreeMap::new();
        if let Some(b) = &self.backend {
            for h in b.list()? {
                out.insert(
                    h.name.clone(),
                    HomeInfo {
                        name: h.name,
                        bytes: h.bytes,
                        loaded: false,
                        sessions: 0,
                    },
                );
            }
        }
        for (name, h) in &self.map.lock().loaded {
            if !h.is_loaded() && !out.contains_key(name) {
                continue; // named by a session, nothing stored yet
            }
            let info = out.entry(name.clone()).or_insert_with(|| HomeInfo {
                name: name.clone(),
                bytes: 0,
                loaded: false,
                sessions: 0,
            });
            info.sessions = Arc::strong_count(h) - 1;
            if h.is_loaded() {
                info.loaded = true;
                info.bytes = h.bytes();
            }
        }
        Ok(out.into_values().collect())
    }

    /// Deletes the home `name` (from disk too); `false` if there was none.
    /// A home that a session holds is [`HomeError::InUse`].
    pub fn drop_home(&self, name: &str) -> Result<bool, HomeError> {
        let mut reg = self.map.lock();
        let mut existed = false;
        if let Some(h) = reg.loaded.get(name) {
            let sessions = Arc::strong_count(h) - 1;
            if sessions > 0 {
                return Err(HomeError::InUse {
                    name: name.to_string(),
                    sessions,
                });
            }
            existed = self.backend.is_none();
            reg.loaded.remove(name);
        }
        if let Some(b) = &self.backend {
            existed = b.drop_home(name)?;
            reg.on_disk.remove(name);
        }
        Ok(existed)
    }

    /// The home `name` as one value (its root table as a map), for backups
    /// and moves. A table reachable along two paths comes out twice; a home
    /// that contains a cycle cannot be exported ([`HomeError::Export`]).
    pub fn export(&self, name: &str) -> Result<HostValue, HomeError> {
        if !self.exists(name)? {
            return Err(HomeError::NotFound {
                name: name.to_string(),
            });
        }
        let home = self.open_home(name)?;
        let guard = home.acquire()?;
        let v = self
            .store
            .extract_within(
                &Value::Table(home.root),
                &mut OutputBudget::new(self.limits.max_output_bytes),
            )
            .map_err(|e| HomeError::Export(e.to_string()));
        drop(guard);
        drop(home);
        self.evict(None, 0);
        v
    }

    /// Replaces the home `name` (created if new) with `value`, a map (or
    /// array) that becomes its root table: durable on return. A home that a
    /// session holds is [`HomeError::InUse`].
    pub fn import(&self, name: &str, value: &HostValue) -> Result<(), HomeError> {
        let entries: Vec<(Key, &HostValue)> = match value {
            HostValue::Map(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            HostValue::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Key::Int(i as i64 + 1), v))
                .collect(),
            _ => return Err(HomeError::Import("a home must be a map or an array".into())),
        };
        let home = self.open_home(name)?;
        let sessions = Arc::strong_count(&home) - 2;
        if sessions > 0 {
            return Err(HomeError::InUse {
                name: name.to_string(),
                sessions,
            });
        }
        let result = (|| {
            let mut guard = home.acquire()?;
            let scope = luapool_store::Scope {
                session: home.arena,
                home: home.arena,
                io: None,
            };
            self.store.begin(&scope);
            let filled = self.fill(&home, entries);
            match filled {
                Ok(()) => self.store.commit(&scope),
                Err(e) => {
                    self.store.rollback(&scope);
                    return Err(HomeError::Import(e.to_string()));
                }
            }
            self.store.collect(home.arena);
            guard.replace()
        })();
        drop(home);
        if result.is_ok() && self.backend.is_some() {
            self.map.lock().on_disk.insert(name.to_string());
        }
        self.evict(None, 0);
        result
    }

    /// Empties the root of `home` and stores `entries` in it.
    fn fill(
        &self,
        home: &Home,
        entries: Vec<(Key, &HostValue)>,
    ) -> Result<(), luapool_store::StoreError> {
        let scope = luapool_store::Scope {
            session: home.arena,
            home: home.arena,
            io: None,
        };
        loop {
            let reply = self.store.handle(
                &scope,
                luapool_protocol::Request::Next {
                    table: home.root,
                    after: None,
                    limit: 4096,
                },
            );
            let luapool_protocol::Reply::Entries { entries: page, .. } = reply else {
                return Err(luapool_store::StoreError::UnknownTable(home.root));
            };
            if page.is_empty() {
                break;
            }
            for (k, _) in page {
                self.store.host_set(home.root, k, Value::Nil)?;
            }
        }
        for (k, v) in entries {
            let v = self.store.load(home.arena, v, false)?;
            self.store.host_set(home.root, k, v)?;
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> Result<bool, HomeError> {
        let reg = self.map.lock();
        Ok(reg.on_disk.contains(name)
            || reg.loaded.get(name).is_some_and(|h| h.is_loaded())
            || match &self.backend {
                Some(b) => b.list()?.iter().any(|h| h.name == name),
                None => false,
            })
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
