//! What the host API hands its callers, the same in the embedded supervisor
//! (`luapool-supervisor`) and in a daemon client (`luapool-client`):
//!
//! - [`HostValue`]: plain data going into the store and coming out of it,
//!   with its serde impls ([`to_host`], [`from_host`]) and JSON conversions.
//!   A daemon client decodes every reply into a `HostValue`, so it reads
//!   results into typed values by exactly the supervisor's rules.
//! - [`ComputeError`]: why a compute did not return values; the daemon sends
//!   it in its serde form, which a client decodes back.
//! - [`ComputeOutput`], [`TableInfo`], [`StoreStats`], [`HomeInfo`]:
//!   results, defined once.
//! - [`Latency`], [`WorkerState`]: what monitoring reads (`PoolStats`, `stats`).

mod error;
mod host_value;
mod metrics;
mod types;

pub use error::ComputeError;
pub use host_value::{from_host, to_host, to_msgpack, HostValue, HostValueError};
pub use metrics::{Latency, WorkerState};
pub use types::{ComputeOutput, HomeInfo, StoreStats, TableInfo};
