//! [`HostValue`] and its conversions live in `luapool-protocol` (the daemon's
//! clients share them); this module keeps their old path inside the crate.

pub use luapool_protocol::api::{from_host, to_host, HostValue};
