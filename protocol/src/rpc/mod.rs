//! The daemon's socket API, defined once: every method ([`Method`]) with
//! its params ([`Request`]), results ([`Stats`],
//! [`ComputeOutput`](crate::api::ComputeOutput),
//! [`TableInfo`](crate::api::TableInfo),
//! [`HomeInfo`](crate::api::HomeInfo), [`ComputeOptions`] for the
//! `compute` options) and error kinds ([`ErrorKind`], [`RpcError`]), and the
//! MessagePack-RPC messages that carry them ([`decode_request`],
//! [`encode_response`], [`encode_log`], [`FromDaemon`]). The daemon
//! (`luapool-daemon`) decodes and answers with these types and the Rust
//! client (`luapool-client`) builds and reads them, so a method name or a
//! field is spelled once. `docs/protocol.md` documents the same, and a test
//! checks that it names every method and every error kind.

mod error;
mod frame;
mod method;
#[cfg(test)]
mod tests;
mod types;

pub use error::{ErrorKind, LimitInfo, RpcError};
pub use frame::{
    decode_request, encode_log, encode_response, Answer, FromDaemon, Incoming, RawRequest,
    LOG_NOTIFICATION,
};
pub use method::{Method, Request};
pub use types::{ComputeOptions, Stats, StatsScope};
