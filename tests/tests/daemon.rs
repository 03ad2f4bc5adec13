//! The daemon end to end: a real `luapool serve` process, reached through
//! the Rust client, raw MessagePack-RPC frames and signals. Every test
//! starts its own daemon (two workers) on its own socket. (The JavaScript
//! and Python clients have their own suites: `clients/*/tests`.)

mod api;
mod bounds;
mod fairness;
mod faults;
pub(crate) mod harness;
mod homes;
mod isolation;
mod lifecycle;
mod metrics;
mod output;
mod races;
mod scripts;
mod soak;
mod values;
