//! Errors of the session API. [`ComputeError`] is defined in
//! `luapool-protocol` (the daemon's clients share it) and re-exported here.

pub use luapool_protocol::api::ComputeError;

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
    /// The configuration is invalid.
    #[error("invalid pool configuration: {0}")]
    Config(String),
}
