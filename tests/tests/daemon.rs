//! The daemon end to end: a real `luapool serve` process, reached through
//! the Rust client, raw MessagePack-RPC frames, signals and the Python
//! example. Every test starts its own daemon (two workers) on its own socket.

mod api;
mod faults;
pub(crate) mod harness;
mod lifecycle;
mod output;
