//! Every process-wide static of the worker, in one place.
//!
//! A worker process runs one Lua state on one thread. A few things must
//! still be reachable without a `&Worker`, from the C functions that Lua
//! calls: they live here, each with the one module that writes it named;
//! the logic stays in those modules.

use std::sync::atomic::AtomicPtr;

use crate::ext::Ext;

/// The worker's `Ext`, for the C functions of external tables
/// (`ext/readonly/meta.rs` sets it once, before any of them can run, and
/// reads it; a worker has one Lua state and one `Ext`, which outlives it).
pub static EXT: AtomicPtr<Ext> = AtomicPtr::new(std::ptr::null_mut());
