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
//! computes' commits one transaction and one sync (`committer.rs`).
//!
//! The shared backend is PostgreSQL ([`PgHomes`], `postgres/`): several
//! daemons keep their homes in one database. It is
//! [shared](HomeBackend::is_shared): each home has a version that every
//! commit changes, a daemon checks the version of a home it caches before
//! using it ([`version`](HomeBackend::version)), and commits only on top of
//! the version it read ([`commit_if`](HomeBackend::commit_if)); a commit on
//! top of another is [`HomeStoreError::Conflict`], and the supervisor runs
//! the compute again on the home as it is now.
#![deny(missing_docs)]

use std::time::Duration;

mod committer;
mod error;
mod lock;
mod postgres;
mod schema;
mod sqlite;

pub use error::HomeStoreError;
pub use luapool_store::{ChangeSet, Entry, PersistTable};
pub use postgres::PgHomes;
pub use sqlite::SqliteHomes;

/// A home's version in a [shared](HomeBackend::is_shared) backend: each
/// commit gives the home a new one, never given before (not even to a
/// home of the same name that was dropped). [`ABSENT`] for no home.
pub type Version = u64;

/// The version of a home that is not kept.
pub const ABSENT: Version = 0;

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
    /// Its version ([`ABSENT`] from a backend that is not shared).
    pub version: Version,
}

/// A home held against other writers ([`HomeBackend::lock`]).
pub trait HomeLock: Send {
    /// The home's version, which no one else can change while this is held.
    fn version(&self) -> Version;
    /// Applies `changes` (see [`HomeBackend::commit`]) and lets the home go.
    /// Returns its new version.
    fn commit(self: Box<Self>, changes: ChangeSet, bytes: u64) -> Result<Version, HomeStoreError>;
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

    /// True if other processes may commit to the same homes (a database
    /// that several daemons share): a cached home must then be checked
    /// with [`version`](Self::version) before use, and written with
    /// [`commit_if`](Self::commit_if). False (the default) when this
    /// process is the only writer: a cached home is always current.
    fn is_shared(&self) -> bool {
        false
    }

    /// The version of the home `name` now ([`ABSENT`] if none is kept).
    /// Asked only of a shared backend; the default says [`ABSENT`].
    fn version(&self, name: &str) -> Result<Version, HomeStoreError> {
        let _ = name;
        Ok(ABSENT)
    }

    /// Holds the home `name` against every other writer until the lock
    /// commits or is dropped (dropped: nothing written), so a compute run
    /// under it cannot conflict: the supervisor takes it for a compute that
    /// conflicted, so that it does not lose again and again to computes of
    /// other daemons. A holder that goes silent for `hold` loses the lock.
    /// `None` if there is no such home, or (the default) the backend is not
    /// shared.
    fn lock(
        &self,
        name: &str,
        hold: Duration,
    ) -> Result<Option<Box<dyn HomeLock>>, HomeStoreError> {
        let _ = (name, hold);
        Ok(None)
    }

    /// [`commit`](Self::commit) only if the home `name` is at version
    /// `expected` now ([`ABSENT`]: only if there is no such home): else
    /// nothing is written and the error is [`HomeStoreError::Conflict`].
    /// Returns the home's new version. A backend that is not shared (only
    /// this process writes, one compute per home at a time) need not
    /// check: the default commits and returns [`ABSENT`].
    fn commit_if(
        &self,
        name: &str,
        changes: ChangeSet,
        bytes: u64,
        expected: Version,
    ) -> Result<Version, HomeStoreError> {
        let _ = expected;
        self.commit(name, changes, bytes).map(|()| ABSENT)
    }
}

#[cfg(test)]
mod tests;
