//! Managing named homes: [`Homes::list`], [`Homes::drop_home`],
//! [`Homes::export`], [`Homes::import`]. They block (on a home's turn, on
//! the disk): the daemon runs them on its call threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use luapool_protocol::api::{HomeInfo, HostValue};
use luapool_protocol::{Key, Value};
use luapool_store::{OutputBudget, Scope, StoreError};

use crate::error::HomeError;
use crate::home::Home;
use crate::homes::Homes;

/// How many times an import reads and replaces a home of a shared store
/// that other daemons keep committing to.
const IMPORT_ATTEMPTS: u32 = 10;

impl Homes {
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
        let shared = self.backend.as_ref().is_some_and(|b| b.is_shared());
        for (name, h) in &self.map.lock().loaded {
            if !h.is_loaded() && !out.contains_key(name) {
                continue; // named by a session, nothing stored yet
            }
            if shared && !out.contains_key(name) {
                continue; // the shared store is the truth: dropped elsewhere
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
    /// A home that a session holds is [`HomeError::InUse`]; while it is
    /// being deleted, opening it is [`HomeError::Dropping`].
    pub fn drop_home(&self, name: &str) -> Result<bool, HomeError> {
        let held = {
            let mut reg = self.map.lock();
            if reg.dropping.contains(name) {
                return Err(HomeError::Dropping {
                    name: name.to_string(),
                });
            }
            if let Some(h) = reg.loaded.get(name) {
                let sessions = Arc::strong_count(h) - 1;
                if sessions > 0 {
                    return Err(HomeError::InUse {
                        name: name.to_string(),
                        sessions,
                    });
                }
            }
            if self.backend.is_some() {
                reg.dropping.insert(name.to_string());
            }
            reg.loaded.remove(name)
        };
        let existed = match &self.backend {
            None => held.is_some(),
            Some(b) => {
                let dropped = b.drop_home(name);
                let mut reg = self.map.lock();
                reg.dropping.remove(name);
                if dropped.is_ok() {
                    reg.on_disk.remove(name);
                }
                dropped?
            }
        };
        drop(held);
        Ok(existed)
    }

    /// The home `name` as one value (its root table as a map), for backups
    /// and moves. A table reachable along two paths comes out twice; a home
    /// that contains a cycle cannot be exported ([`HomeError::Export`]); one
    /// past `max_output_bytes` is `StoreError::OutputTooLarge`.
    pub fn export(&self, name: &str) -> Result<HostValue, HomeError> {
        self.read_home(name, |home, budget| {
            self.store.extract_within(&Value::Table(home.root), budget)
        })
    }

    /// [`export`](Self::export) as the bytes of one MessagePack value,
    /// written straight from the store.
    pub fn export_msgpack(&self, name: &str) -> Result<Vec<u8>, HomeError> {
        self.read_home(name, |home, budget| {
            let mut out = Vec::new();
            self.store
                .extract_msgpack(&Value::Table(home.root), budget, &mut out)?;
            Ok(out)
        })
    }

    /// Runs `read` on the home `name`, loaded, holding its turn.
    fn read_home<T>(
        &self,
        name: &str,
        read: impl FnOnce(&Home, &mut OutputBudget) -> Result<T, StoreError>,
    ) -> Result<T, HomeError> {
        let not_found = || HomeError::NotFound {
            name: name.to_string(),
        };
        if !self.exists(name)? {
            return Err(not_found());
        }
        let home = self.open_home(name)?;
        let result = {
            let turn = home.lock();
            turn.load()?;
            if self.backend.is_some() && !home.is_saved() {
                // Dropped since `exists` looked.
                Err(not_found())
            } else {
                let mut budget = OutputBudget::new(self.limits.max_output_bytes);
                read(&home, &mut budget).map_err(|e| match e {
                    e @ StoreError::OutputTooLarge { .. } => HomeError::Store(e),
                    e => HomeError::Export(e.to_string()),
                })
            }
        };
        drop(home);
        self.evict(None, 0);
        result
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
        // In a shared store another daemon may commit to the home between
        // the read and the write: then read it again and replace it again.
        let mut attempts = 1;
        let result = loop {
            match self.replace_home(&home, &entries) {
                Err(HomeError::Conflict { .. }) if attempts < IMPORT_ATTEMPTS => attempts += 1,
                r => break r,
            }
        };
        drop(home);
        if result.is_ok() && self.backend.is_some() {
            self.map.lock().on_disk.insert(name.to_string());
        }
        self.evict(None, 0);
        result
    }

    /// Reads `home` (if it is not in memory, or stale) and replaces it
    /// with `entries`: durable on return.
    fn replace_home(
        &self,
        home: &Arc<Home>,
        entries: &[(Key, &HostValue)],
    ) -> Result<(), HomeError> {
        let turn = home.lock();
        turn.load()?;
        let scope = home_scope(home);
        self.store.begin(&scope);
        match self.fill(home, entries) {
            Ok(()) => self.store.commit(&scope),
            Err(e) => {
                self.store.rollback(&scope);
                return Err(match e {
                    e @ (StoreError::Quota { .. }
                    | StoreError::GroupQuota { .. }
                    | StoreError::ArenaFull(_)) => HomeError::Store(e),
                    e => HomeError::Import(e.to_string()),
                });
            }
        }
        self.store.collect(home.arena);
        turn.replace()
    }

    /// Empties the root of `home` and stores `entries` in it.
    fn fill(&self, home: &Home, entries: &[(Key, &HostValue)]) -> Result<(), StoreError> {
        let scope = home_scope(home);
        loop {
            let reply = self.store.handle(
                &scope,
                luapool_protocol::Request::Next {
                    table: home.root,
                    after: None,
                    limit: 4096,
                },
            );
            let luapool_protocol::Reply::Entries(luapool_protocol::Entries {
                entries: page, ..
            }) = reply
            else {
                return Err(StoreError::UnknownTable(home.root));
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
            self.store.host_set(home.root, k.clone(), v)?;
        }
        Ok(())
    }

    /// Whether a home of that name exists (on disk, or in memory; in a
    /// shared store, there only: another daemon may have made or dropped it).
    fn exists(&self, name: &str) -> Result<bool, HomeError> {
        if let Some(b) = self.backend.as_ref().filter(|b| b.is_shared()) {
            return Ok(b.version(name)? != luapool_homes::ABSENT);
        }
        {
            let reg = self.map.lock();
            if reg.on_disk.contains(name) || reg.loaded.get(name).is_some_and(|h| h.is_loaded()) {
                return Ok(true);
            }
        }
        Ok(match &self.backend {
            Some(b) => b.list()?.iter().any(|h| h.name == name),
            None => false,
        })
    }
}

/// The scope of host writes to a home alone.
fn home_scope(home: &Home) -> Scope {
    Scope {
        session: home.arena,
        home: home.arena,
        io: None,
    }
}
