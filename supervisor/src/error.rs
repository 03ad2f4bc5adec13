//! Errors of the session API. [`ComputeError`] is defined in
//! `luapool-protocol` (the daemon's clients share it) and re-exported here.

pub use luapool_protocol::api::ComputeError;

use luapool_homes::HomeStoreError;
use luapool_store::StoreError;

/// Why a session operation (other than compute) failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store refused (quota, cycle, nesting, closed session).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be converted to or from the host type.
    #[error("conversion: {0}")]
    Convert(String),
    /// A compute failed.
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// A home could not be opened (too many homes, its store failed).
    #[error(transparent)]
    Home(#[from] HomeError),
}

/// Why a home could not be opened, read, written or managed.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// Creating one more named home would pass `max_homes`.
    #[error("too many homes: the limit is {limit} named homes (max_homes); drop one first")]
    TooManyHomes {
        /// The limit.
        limit: usize,
    },
    /// The homes in memory take `homes_bytes` already, and none is idle.
    #[error("homes full: cannot load a home of {needed} bytes: {message}")]
    HomesFull {
        /// The bytes the home needs.
        needed: u64,
        /// The store's message, naming the limit.
        message: String,
    },
    /// The home is held by sessions, so it cannot be dropped or replaced.
    #[error("home {name:?} is in use by {sessions} session(s)")]
    InUse {
        /// The home.
        name: String,
        /// Sessions holding it.
        sessions: usize,
    },
    /// The home is being dropped: it cannot be opened until that is done.
    #[error("home {name:?} is being dropped; try again")]
    Dropping {
        /// The home.
        name: String,
    },
    /// No home of that name exists.
    #[error("no home named {name:?}")]
    NotFound {
        /// The name.
        name: String,
    },
    /// What the disk holds for the home is not what the store wrote.
    #[error("home {name:?} cannot be read: {message}")]
    Corrupt {
        /// The home.
        name: String,
        /// What was wrong.
        message: String,
    },
    /// The home cannot be exported as one value (a cycle, the output limit).
    #[error("cannot export the home: {0}")]
    Export(String),
    /// The value given cannot be a home (not a table, over quota).
    #[error("cannot import the home: {0}")]
    Import(String),
    /// Another daemon committed to the home (or dropped it) after this
    /// one read it, so this commit was refused and nothing was written (a
    /// shared home store only).
    #[error("home {name:?} was changed by another daemon since it was read")]
    Conflict {
        /// The home.
        name: String,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The home store (the data directory) failed.
    #[error(transparent)]
    Backend(#[from] HomeStoreError),
}

/// Why a pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The worker binary was not found.
    #[error("cannot find the luapool-worker binary (looked at {looked}); build it with `cargo build` or set LUAPOOL_WORKER")]
    WorkerNotFound {
        /// The paths tried.
        looked: String,
    },
    /// A worker could not be started.
    #[error("cannot start a worker: {0}")]
    Spawn(String),
    /// The home store (data directory or database) cannot be used (see [`HomeStoreError`]).
    #[error("cannot use the home store: {0}")]
    Homes(#[from] HomeError),
    /// The configuration is invalid.
    #[error("invalid pool configuration: {0}")]
    Config(String),
}
