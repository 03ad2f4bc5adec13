//! `luapool-supervisor`: runs untrusted Lua 5.4 in a pool of isolated worker
//! processes against data that stays here, in the table store
//! (`luapool-store`). This is the library an embedder uses; the daemon
//! (`luapool-daemon`) and the `luapool` binary are built on it.
//!
//! ```no_run
//! use luapool_supervisor::Pool;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder().workers(2).build()?;
//! let session = pool.session();
//! session.set_input(&serde_json::json!({ "numbers": [1, 2, 3, 4, 5] }))?;
//! session.compute(r#"
//!     local sum = 0
//!     for _, n in ipairs(_io.input.numbers) do sum = sum + n end
//!     _io.output = { sum = sum, count = #_io.input.numbers }
//! "#)?;
//! let out: serde_json::Value = session.get_output()?;
//! assert_eq!(out, serde_json::json!({ "sum": 15, "count": 5 }));
//! # Ok(()) }
//! ```
//!
//! - [`Pool`] (`pool.rs`, built by [`PoolBuilder`] in `builder.rs` from the
//!   [`Limits`] and configuration in `config.rs`): worker processes
//!   (`worker_proc.rs`), each a Lua state behind a 64 KiB shared-memory
//!   ring, one serving thread each, a job queue, restarts with a
//!   crash-loop guard.
//! - [`Session`] (`session.rs`): the reference API (`set_input`,
//!   `get_output`, `set_input_field`, `get_output_field`, `set_metadata`,
//!   `clear_io`, `io_table_id`, `table_info`, `compute`), bound to a
//!   `_home` (`home.rs`).
//!   A wait for a session's or a home's turn holds no thread (`turn.rs`).
//! - Homes: `home.rs` is one `_home` (its arena, its turn, its durable
//!   state), `homes.rs` the pool's named homes (limits, a cache of durable
//!   homes), `home_admin.rs` list/drop/export/import ([`Homes`]).
//! - [`Script`] (`scripts.rs`): code loaded once and named by its digest
//!   (SHA-1, as Redis's `SCRIPT LOAD`), in a bounded store.
//! - `compute.rs`: one compute's conversation with its worker, answering
//!   its table requests from the store within the session's scope;
//!   `atomic.rs` wraps it in a transaction (home loaded, undo log begun;
//!   durable commit or rollback) on the pool thread that runs it.
//!
//! docs/architecture.md follows a compute through all of this.
//! - `metrics.rs`: what [`PoolStats`] measures besides counters: wait and
//!   run times ([`ComputeTimes`], fixed-size [`Histogram`]s), errors by
//!   kind, each worker's state.
#![deny(missing_docs)]

mod atomic;
mod builder;
mod compute;
mod config;
mod error;
mod home;
mod home_admin;
mod homes;
mod metrics;
mod pool;
mod scripts;
mod session;
mod turn;
mod worker_proc;

pub use builder::PoolBuilder;
pub use compute::{CancelToken, ComputeOutput, LogSink, Reply};
pub use config::Limits;
pub use error::{HomeError, PoolError, SessionError};
pub use homes::{HomeInfo, HomeLimits, Homes};
pub use luapool_homes::{HomeBackend, HomeStoreError, PgHomes, SqliteHomes};
// The host API's value and compute-error types are shared with daemon clients.
pub use luapool_protocol::api::{from_host, to_host, ComputeError, HostValue, HostValueError};
pub use luapool_protocol::api::{Latency, WorkerState};
pub use luapool_protocol::TableId;
pub use luapool_store::{StoreError, StoreStats};
pub use metrics::{ComputeTimes, Histogram};
pub use pool::{Pool, PoolStats};
pub use scripts::{is_digest, script_digest, Script, ScriptError};
pub use session::{ComputeOptions, Session, TableInfo};
