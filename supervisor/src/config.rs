//! What a pool is configured with: its [`Config`] and the [`Limits`] of
//! each compute. [`PoolBuilder`](crate::PoolBuilder) fills them in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use luapool_homes::HomeBackend;

use crate::homes::HomeLimits;

/// Limits of one compute; every field can be overridden per compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time before the worker is killed (`Timeout`).
    pub timeout: Duration,
    /// CPU time the compute may use (`Timeout`), on the worker's own CPU
    /// clock; a timer enforces it, so it costs nothing per instruction.
    /// `Duration::ZERO` = none.
    pub cpu_time: Duration,
    /// Lua VM instructions before the compute is stopped (`Timeout`); 0 = none.
    /// For deterministic limits: counting runs a Lua hook on every VM
    /// instruction (about a third of a tight loop's time); with 0 no hook
    /// runs at all.
    pub instructions: u64,
    /// Bytes the compute may allocate above what its worker held when it
    /// started: Lua heap and the worker's buffers for it (`MemoryLimit`);
    /// 0 = none (the worker's heap stays capped below its address space).
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(30),
            cpu_time: Duration::from_secs(10),
            instructions: 0,
            memory: 256 << 20,
        }
    }
}

/// Where named homes are kept.
#[derive(Clone, Default)]
pub(crate) enum HomeStorage {
    /// In memory, for the life of the pool.
    #[default]
    Memory,
    /// In an SQLite database in this data directory.
    Dir(PathBuf),
    /// In this PostgreSQL database (a URL), shared with other daemons.
    Postgres(String),
    /// In this backend.
    Backend(Arc<dyn HomeBackend>),
}

impl std::fmt::Debug for HomeStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HomeStorage::Memory => f.write_str("Memory"),
            HomeStorage::Dir(d) => write!(f, "Dir({})", d.display()),
            // The URL may hold a password.
            HomeStorage::Postgres(_) => f.write_str("Postgres(..)"),
            HomeStorage::Backend(_) => f.write_str("Backend(..)"),
        }
    }
}

/// Everything a [`Pool`] is built from.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) workers: usize,
    pub(crate) queue: usize,
    pub(crate) limits: Limits,
    pub(crate) session_quota: u64,
    pub(crate) home_quota: u64,
    pub(crate) worker_path: Option<PathBuf>,
    pub(crate) worker_address_space: u64,
    pub(crate) restart_intensity: usize,
    pub(crate) restart_period: Duration,
    pub(crate) max_output_bytes: u64,
    pub(crate) homes: HomeStorage,
    pub(crate) max_homes: usize,
    pub(crate) homes_bytes: u64,
    pub(crate) idle_homes_bytes: u64,
    pub(crate) cancel_grace: Duration,
    pub(crate) max_scripts: usize,
    pub(crate) script_bytes: u64,
    pub(crate) conflict_retries: u32,
    pub(crate) home_store_connections: usize,
}

impl Config {
    /// The limits of the pool's homes.
    pub(crate) fn home_limits(&self) -> HomeLimits {
        HomeLimits {
            quota: self.home_quota,
            max_homes: self.max_homes,
            homes_bytes: self.homes_bytes,
            idle_homes_bytes: self.idle_homes_bytes,
            max_output_bytes: self.max_output_bytes,
        }
    }
}
