//! [`PoolBuilder`]: a [`Pool`] with sane defaults, `Pool::builder().workers(4).build()`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, HomeStorage, Limits};
use crate::error::PoolError;
use crate::pool::Pool;

impl Pool {
    /// A builder with defaults: one worker per CPU, 30 s of wall clock and
    /// 10 s of CPU time per compute, 256 MiB of memory per compute, 1 GiB
    /// of store per session.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }
}

/// Builds a [`Pool`]: `Pool::builder().workers(4).build()`.
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    config: Config,
}

impl Default for PoolBuilder {
    fn default() -> PoolBuilder {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        PoolBuilder {
            config: Config {
                workers,
                queue: 1024,
                limits: Limits::default(),
                session_quota: 1 << 30,
                home_quota: 1 << 30,
                worker_path: None,
                worker_address_space: 4 << 30,
                restart_intensity: 10,
                restart_period: Duration::from_secs(10),
                max_output_bytes: luapool_store::DEFAULT_MAX_OUTPUT_BYTES,
                homes: HomeStorage::Memory,
                max_homes: 10_000,
                homes_bytes: 4 << 30,
                idle_homes_bytes: 256 << 20,
                cancel_grace: Duration::from_secs(1),
                max_scripts: 10_000,
                script_bytes: 64 << 20,
                conflict_retries: 10,
                home_store_connections: 0,
            },
        }
    }
}

impl PoolBuilder {
    /// Worker processes (default: the number of CPUs).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }
    /// Computes that may wait for a worker before `Busy` (default 1024).
    pub fn queue(mut self, n: usize) -> Self {
        self.config.queue = n;
        self
    }
    /// Default limits of every compute.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }
    /// Bytes of external store per session (default 1 GiB; 0 = none).
    pub fn session_quota(mut self, bytes: u64) -> Self {
        self.config.session_quota = bytes;
        self
    }
    /// Bytes of external store per home (default 1 GiB; 0 = none).
    pub fn home_quota(mut self, bytes: u64) -> Self {
        self.config.home_quota = bytes;
        self
    }
    /// The worker binary (default: `$LUAPOOL_WORKER`, else `luapool-worker`
    /// next to the running executable or one directory up).
    pub fn worker_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.worker_path = Some(path.into());
        self
    }
    /// The OS address-space limit of each worker, the backstop behind the
    /// Lua heap limit (default 4 GiB; 0 = none).
    pub fn worker_address_space(mut self, bytes: u64) -> Self {
        self.config.worker_address_space = bytes;
        self
    }
    /// Crash-loop guard: more than `restarts` crashes within `period` that
    /// no compute caused (a worker that fails to start, or dies while idle)
    /// stop respawning; the pool then answers `Unavailable` (default 10 in
    /// 10 s). Crashes during a compute, timeouts and cancels do not count.
    pub fn restart_intensity(mut self, restarts: usize, period: Duration) -> Self {
        self.config.restart_intensity = restarts;
        self.config.restart_period = period;
        self
    }
    /// The most bytes one conversion out of the store may produce (default
    /// 1 GiB; 0 = none): `get_output`, `get_output_field` and a compute's
    /// return values, counted as their MessagePack bytes (the `*_msgpack`
    /// methods, the daemon's replies) plus, for a value tree, what it takes
    /// in memory. A table shared many times counts each time it is emitted.
    /// Past it: `OutputTooLarge`, and nothing stored changes.
    pub fn max_output_bytes(mut self, bytes: u64) -> Self {
        self.config.max_output_bytes = bytes;
        self
    }
    /// Keeps every named home in the data directory `dir` (an SQLite
    /// database, created if missing; locked against a second process):
    /// homes survive a restart and a crash, and a compute's reply waits
    /// until its home writes are on disk. Without it, named homes live in
    /// memory for the life of the pool. Private homes are always in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.homes = HomeStorage::Dir(dir.into());
        self
    }
    /// Keeps every named home in the PostgreSQL database at `url`
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`; a Unix socket's
    /// directory, percent-encoded, in place of HOST), which several pools
    /// (daemons, on several machines) may share: a compute's home writes
    /// commit in one PostgreSQL transaction before its reply, computes
    /// that share a home are serializable across pools (see
    /// `docs/deploy.md`), and a home cached here is checked against the
    /// database before each use. The tables are created if the database
    /// has none. The pool fails to build if the server cannot be reached.
    pub fn home_store(mut self, url: impl Into<String>) -> Self {
        self.config.homes = HomeStorage::Postgres(url.into());
        self
    }
    /// With [`home_store`](Self::home_store): how many times a compute
    /// runs again when another pool committed to its home while it ran
    /// (default 10), before it fails with `Conflict`.
    pub fn conflict_retries(mut self, n: u32) -> Self {
        self.config.conflict_retries = n;
        self
    }
    /// With [`home_store`](Self::home_store): the most connections to the
    /// database (default 0: twice the workers plus 4, enough for every
    /// pool thread, which may hold a home on one while it reads it on
    /// another, and a few management calls at once).
    pub fn home_store_connections(mut self, n: usize) -> Self {
        self.config.home_store_connections = n;
        self
    }
    /// Keeps named homes in `backend` instead (see [`data_dir`](Self::data_dir)).
    pub fn home_backend(mut self, backend: Arc<dyn luapool_homes::HomeBackend>) -> Self {
        self.config.homes = HomeStorage::Backend(backend);
        self
    }
    /// The most named homes (default 10 000; 0 = none): on disk with a data
    /// directory, in memory without. One more is `TooManyHomes`.
    pub fn max_homes(mut self, n: usize) -> Self {
        self.config.max_homes = n;
        self
    }
    /// The most bytes all homes in memory may take together, private ones
    /// included (default 4 GiB; 0 = none). A write past it is
    /// `QuotaExceeded` naming `homes_bytes`.
    pub fn homes_bytes(mut self, bytes: u64) -> Self {
        self.config.homes_bytes = bytes;
        self
    }
    /// With a data directory or a home store: how many bytes of homes that no session holds
    /// stay in memory, as a cache (default 256 MiB; the least recently used
    /// leave first). 0: a home leaves memory when its last session closes.
    pub fn idle_homes_bytes(mut self, bytes: u64) -> Self {
        self.config.idle_homes_bytes = bytes;
        self
    }
    /// How long a cancelled compute gets to stop by itself before its
    /// worker is killed (default 1 s; a cancel normally stops the compute
    /// at its next Lua instruction).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.config.cancel_grace = grace;
        self
    }
    /// The most scripts loaded at once ([`Pool::load_script`]), and bytes
    /// of their code together (default 10 000 and 64 MiB; 0 = none). Past
    /// either, loading a new script is
    /// [`ScriptError::Limit`](crate::ScriptError) naming `max_scripts` or
    /// `script_bytes`.
    pub fn max_scripts(mut self, scripts: usize, bytes: u64) -> Self {
        self.config.max_scripts = scripts;
        self.config.script_bytes = bytes;
        self
    }
    /// Starts the workers and returns the pool.
    pub fn build(self) -> Result<Arc<Pool>, PoolError> {
        if self.config.workers == 0 {
            return Err(PoolError::Config("workers must be at least 1".into()));
        }
        Pool::start(self.config)
    }
}
