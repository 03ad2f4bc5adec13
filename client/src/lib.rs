//! `luapool-client`: the Rust client of the `luapool serve` daemon. It
//! offers the embedded supervisor's session API — same method names, typed
//! through serde — over the daemon's Unix socket (or loopback TCP with a
//! token), speaking the MessagePack-RPC protocol of `docs/protocol.md`.
//!
//! ```no_run
//! use luapool_client::Client;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), luapool_client::ClientError> {
//! let client = Client::connect("/tmp/luapool.sock")?;
//! let session = client.session()?;
//! session.set_input(&json!({ "user": { "id": 123, "name": "Alice", "age": 30 } }))?;
//! let out = session.compute(r#"
//!     local user = _io.input.user
//!     _io.output = { message = "Hello, " .. user.name, isAdult = user.age >= 18, userId = user.id }
//!     return "success"
//! "#)?;
//! assert_eq!(out.value::<String>(0)?, "success");
//! let output: serde_json::Value = session.get_output()?;
//! assert_eq!(output, json!({ "message": "Hello, Alice", "isAdult": true, "userId": 123 }));
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: one connection; open sessions with [`Client::session`] or
//!   [`Client::session_with_home`]. Share it between threads: calls on
//!   different sessions run concurrently on the daemon's workers. Load a
//!   script once ([`Client::load_script`]) and compute by its digest. Manage
//!   named homes with [`Client::list_homes`] (operator's socket),
//!   [`Client::drop_home`], [`Client::export_home`], [`Client::import_home`].
//! - [`Session`]: `set_input`, `get_output`, `set_input_field`,
//!   `get_output_field`, `set_metadata`, `clear_io`, `io_table_id`,
//!   `table_info`, `compute`, `compute_with`, `cancel`, `close`.
//! - Values: every reply is decoded into a [`Value`] (the embedded
//!   supervisor's `HostValue`, from `luapool-protocol`) and converted to the
//!   requested type with [`from_value`], so typed results follow the
//!   supervisor's conversion rules exactly.
//! - Errors: [`ClientError`]; a failed compute is
//!   [`ClientError::Compute`] holding a [`ComputeError`], the embedded
//!   supervisor's type; other refusals carry the protocol's [`ErrorKind`].
//! - [`Cluster`]: several daemons sharing their homes (PostgreSQL); each
//!   session goes to its home's daemon by rendezvous hashing ([`rank`]),
//!   or to the next one when that one is down.
//! - Requests, results and errors are `luapool_protocol::rpc`'s types, the
//!   ones the daemon uses: the two cannot disagree on a method or a field.
#![deny(missing_docs)]

mod cluster;
mod conn;
mod error;
mod session;

pub use cluster::{rank, score, Cluster, Endpoint};
pub use conn::LogSink;
pub use error::ClientError;
pub use luapool_protocol::api::{
    from_host as from_value, ComputeError, ComputeOutput, HomeInfo, HostValue as Value,
    HostValueError as DecodeError, Latency, StoreStats, TableInfo, WorkerState,
};
pub use luapool_protocol::rpc::{ErrorKind, LimitInfo, Stats, StatsScope};
pub use luapool_protocol::TableId;
pub use session::{Client, ComputeOptions, Session};
