//! End-to-end tests: real worker processes (and, for the daemon, a real
//! `luapool serve` process). One test binary; one module per area.

mod common;
mod daemon;
mod reference;
mod contract;
mod cli;
mod faults;
mod sandbox;
mod soak;
