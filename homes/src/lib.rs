//! `luapool-homes`: where durable homes are kept.
//!
//! A home on disk is what `luapool-store` persists (`persist.rs` there):
//! tables by slot, and entries by (slot, key) in the order they were first
//! written. A [`HomeBackend`] keeps such homes by name and promises:
//! - [`commit`](HomeBackend::commit) writes one [`ChangeSet`] atomically
//!   and returns only once it is durable (a crash after the return never
//!   loses it, a crash before leaves none of it);
//! - commits of one home apply in the order they were made;
//! - [`load`](HomeBackend::load) returns a home as the last commit left it.
//!
//! The embedded backend is SQLite ([`SqliteHomes`], `sqlite.rs`): one
//! database file in the data directory, locked against a second process
//! (`lock.rs`), written by one committer thread that gives several
//! computes' commits one transaction and one sync (`committer.rs`). A
//! PostgreSQL backend (issue 16) implements the same trait.
#![deny(missing_docs)]

mod committer;
mod error;
mod lock;
mod schema;
mod sqlite;

pub use error::HomeStoreError;
pub use luapool_store::{ChangeSet, Entry, PersistTable};
pub use sqlite::SqliteHomes;

/// One stored entry: `(slot, key, value)`, as `luapool-store` encodes them.
pub type StoredEntry = (u32, Vec<u8>, Vec<u8>);

/// A home as it is kept: its tables and its entries, the entries as
/// `(slot, key, value)` in the order they were first written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHome {
    /// Its tables.
    pub tables: Vec<PersistTable>,
    /// Its entries.
    pub entries: Vec<StoredEntry>,
    /// The bytes its arena accounted at the last commit.
    pub bytes: u64,
}

/// A home kept by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeInfo {
    /// Its name.
    pub name: String,
    /// The bytes its arena accounted at the last commit.
    pub bytes: u64,
}

/// Where named homes are kept. `Send + Sync`: every method may be called
/// from any thread; commits may block until they are durable.
pub trait HomeBackend: Send + Sync {
    /// Every home kept, by name.
    fn list(&self) -> Result<Vec<HomeInfo>, HomeStoreError>;
    /// The home `name`, or `None` if none is kept.
    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError>;
    /// Applies `changes` to the home `name` (created if new) in one atomic
    /// write, recording that its arena now accounts `bytes`; returns once
    /// the write is durable.
    fn commit(&self, name: &str, changes: ChangeSet, bytes: u64) -> Result<(), HomeStoreError>;
    /// Deletes the home `name`; `false` if none was kept. Durable on return.
    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError>;
}

#[cfg(test)]
mod tests;
