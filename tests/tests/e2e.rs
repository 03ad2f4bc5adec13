//! End-to-end tests: real worker processes (and, for the daemon, a real
//! `luapool serve` process). One test binary; one module per area.

mod atomic;
mod batches;
mod bigint;
mod cli;
mod cli_call;
mod common;
mod contract;
mod daemon;
mod durable;
mod examples;
mod faults;
mod functions;
mod long_strings;
mod machinery;
mod pool_stats;
mod readonly_loops;
mod reference;
mod sandbox;
mod scripts;
mod shared;
mod soak;
mod tablelib;
mod walks;
