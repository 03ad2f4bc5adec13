//! `luapool-supervisor`: runs untrusted Lua 5.4 in a pool of isolated worker
//! processes against data that stays here, in the supervisor's table store.
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
//! - [`Pool`]: worker processes (each a Lua state behind a 64 KiB
//!   shared-memory ring), a job queue, restarts with a crash-loop guard.
//! - [`Session`]: the reference API (`set_input`, `get_output`,
//!   `set_input_field`, `get_output_field`, `set_metadata`, `clear_io`,
//!   `io_table_id`, `table_info`, `compute`).
//! - [`Store`]: every external table, in per-session and per-home arenas.
//! - [`Daemon`]: `luapool serve`, the same sessions over a Unix socket
//!   (MessagePack-RPC, `docs/protocol.md`).
//!
//! The `luapool` binary (`run`, `serve`) is a thin layer over this crate.
#![deny(missing_docs)]

mod config;
mod daemon;
mod error;
mod host_value;
mod pool;
mod serve;
mod session;
mod store;
mod worker_proc;

pub use config::{Limits, PoolBuilder};
pub use daemon::{Daemon, DaemonBuilder, DaemonError, DaemonStopper, DEFAULT_MAX_FRAME};
pub use error::{PoolError, SessionError};
// The host API's value and compute-error types are shared with daemon clients.
pub use luapool_protocol::api::{from_host, to_host, ComputeError, HostValue, HostValueError};
pub use pool::{Pool, PoolStats};
pub use serve::{CancelToken, ComputeOutput, LogSink};
pub use session::{ComputeOptions, Session, TableInfo};
pub use store::*;
