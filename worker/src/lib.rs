//! The part of the luapool worker that other programs reuse: its OS
//! confinement ([`confine`]), which the worker applies after start-up and
//! the tests' hostile worker applies to prove what it blocks. The worker
//! itself is the `luapool-worker` binary (`main.rs`).
#![deny(missing_docs)]

pub mod confine;
