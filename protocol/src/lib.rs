//! `luapool-protocol`: everything the luapool supervisor and a worker agree on.
//!
//! - [`Value`], [`Key`] and the messages ([`ToWorker`], [`ToSupervisor`]) that
//!   cross between the two processes, encoded as MessagePack with
//!   [`encode`] / [`decode`].
//! - The ring ([`Endpoint`]): one 64 KiB shared-memory region per worker with a
//!   `#[repr(C)]` versioned header and two single-producer single-consumer
//!   byte rings, one each way. Messages travel as frames; a message larger than
//!   a ring is sent in chunks. Waiting spins briefly, then sleeps on a futex.
//! - [`api`]: the host API's value and error types ([`api::HostValue`],
//!   [`api::ComputeError`]), shared by the supervisor and its daemon clients.
//! - [`hot`]: the replies that carry table contents, each defined once with
//!   its fast encoder (from borrowed values, for the store) and its fast
//!   zero-copy decoder (for the worker), round-trip tested against serde.
//! - [`rpc`]: the daemon's socket API (methods, params, results, error
//!   kinds), used by the daemon and its Rust client.
//! - [`stream`]: where one MessagePack value ends in a byte stream (the
//!   daemon's socket framing), without trusting the bytes.
//! - [`ext_value`]: the big integer and the Lua function, MessagePack
//!   extension types 1 and 2 everywhere they travel, and their checks.
//! - [`mp`]: a zero-copy MessagePack reader for the hot paths that read
//!   messages without building Rust values; [`IdMap`]/[`IdSet`] hash table
//!   ids cheaply on the same paths.
//!
//! Every byte that arrives from the other side is treated as hostile: decoding
//! returns typed errors and never panics, allocates without bound, or loops.
#![deny(missing_docs)]

pub mod api;
mod codec;
#[cfg(test)]
mod codec_tests;
pub mod ext_value;
pub mod hot;
mod message;
pub mod mp;
mod ring;
pub mod rpc;
pub mod stream;
mod sync;
mod value;

pub use codec::{decode, encode, encode_into, DecodeError, MAX_DEPTH, MAX_LITERAL_DEPTH};
pub use hot::{Entries, Fetched, Records, TableView};
pub use message::*;
pub use ring::*;
pub use value::{IdHasher, IdMap, IdSet, Key, KeyError, TableId, Value};
