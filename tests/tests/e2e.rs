//! End-to-end tests: real worker processes (and, for the daemon, a real
//! `luapool serve` process). One test binary; one module per area.

mod atomic;
mod cli;
mod common;
mod contract;
mod daemon;
mod durable;
mod faults;
mod reference;
mod sandbox;
mod soak;
