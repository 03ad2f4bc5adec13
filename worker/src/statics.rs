//! Every process-wide static of the worker, in one place.
//!
//! A worker process runs one Lua state on one thread. A few things must
//! still be reachable without a `&Worker`: from C functions that Lua calls
//! (`ext/readonly/meta.rs`, `coroutines.rs`), from the instruction hook, from the
//! signal handlers of a cancel and of the CPU-time timer, and from the
//! global allocator. They live here, each with the one module that writes
//! it named; the logic stays in those modules.
//!
//! All of them are atomics: the signal handlers run on the worker's only
//! thread but at any instruction, so a plain static could be read half
//! written. Loads and stores are `Relaxed` where only that thread and its
//! own signal handlers touch a value (a signal handler sees every store
//! made before it interrupted the thread); a `compiler_fence` orders the
//! few pairs whose order a handler relies on (see `stop.rs`).

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};

use mlua::ffi::lua_State;

use crate::ext::Ext;

/// The worker's `Ext`, for the C functions of read-only tables
/// (`ext/readonly/meta.rs` sets it once, before any of them can run, and
/// reads it; a worker has one Lua state and one `Ext`, which outlives it).
pub static EXT: AtomicPtr<Ext> = AtomicPtr::new(std::ptr::null_mut());

/// The main Lua state (`stop.rs`).
pub static MAIN: AtomicPtr<lua_State> = AtomicPtr::new(std::ptr::null_mut());

/// Coroutines resumed (or being closed) and not yet returned, innermost
/// last: with [`MAIN`], every Lua thread that may be executing or waiting
/// for a coroutine it resumed (`coroutines.rs` pushes and pops; the signal
/// handlers read). Lua's C-stack limit (200) keeps the nesting below this.
pub const MAX_RUNNING: usize = 256;
/// See [`MAX_RUNNING`].
pub static RUNNING: [AtomicPtr<lua_State>; MAX_RUNNING] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_RUNNING];
/// How many entries of [`RUNNING`] are in use.
pub static RUNNING_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// How the hook runs now (`stop.rs`): `stop::Mode` as a byte.
pub static HOOK_MODE: AtomicU8 = AtomicU8::new(0);
/// The mode the running compute started with (`stop.rs`).
pub static BASE_MODE: AtomicU8 = AtomicU8::new(0);
/// Why the running compute is being stopped (`stop::Reason` as a byte, 0:
/// it is not). Set once per compute, by the hook or by Rust code.
pub static STOP_REASON: AtomicU8 = AtomicU8::new(0);
/// Instructions left in the running compute's budget (`stop.rs`).
pub static INSTRUCTIONS_LEFT: AtomicU64 = AtomicU64::new(0);
/// Whether a compute is running (between `stop::begin` and `stop::end`):
/// signals that arrive outside one are ignored.
pub static IN_COMPUTE: AtomicBool = AtomicBool::new(false);
/// Set by the CPU-time timer's signal (`cpu.rs`); the hook turns it into a stop.
pub static CPU_EXPIRED: AtomicBool = AtomicBool::new(false);
/// How often the CPU-time timer fired during this compute (`cpu.rs`).
pub static CPU_EXPIRIES: AtomicU8 = AtomicU8::new(0);
/// The worker thread's CPU time when the running compute started, in
/// nanoseconds: `os.clock` counts from it (`cpu.rs`).
pub static CPU_AT_START: AtomicU64 = AtomicU64::new(0);
/// Set by a cancel signal (`stop.rs`): the hook then reads the ring's flag.
pub static CANCEL_SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Bytes the global allocator has handed out and not taken back: Lua's
/// heap and every Rust allocation of the worker (`memory.rs`).
pub static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// [`ALLOCATED`] when the running compute started (`memory.rs`).
pub static COMPUTE_BASE: AtomicUsize = AtomicUsize::new(0);
/// The running compute's memory limit in bytes above [`COMPUTE_BASE`]
/// (0: none; `memory.rs`).
pub static COMPUTE_LIMIT: AtomicUsize = AtomicUsize::new(0);
/// The most the worker's heap may hold in all, below its OS address-space
/// limit (0: no cap; `memory.rs`).
pub static HEAP_CAP: AtomicUsize = AtomicUsize::new(0);
/// A Lua allocation refused by the limit and not granted since (Lua's
/// retry after an emergency collection may be): a key of the request, or
/// 0 (`memory.rs`).
pub static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Registry keys by address (their values never change): the stop
/// strings, one per `stop::Reason` (`stop.rs`), and `plain`
/// (`coroutines.rs`).
pub static STOP_KEYS: [u8; 5] = [0; 5];
/// See [`STOP_KEYS`].
pub static PLAIN_KEY: u8 = 0;
/// Its address is the private key under which a writable external table's
/// proxy holds its id (`ext/writable/materialize.rs`): a light userdata, which no
/// script can make.
pub static ID_KEY_ADDR: u8 = 0;

/// Its address is the registry key of the function that turns a stored
/// big integer or function into its Lua value (`values.rs`), for the C
/// code that builds values from replies.
pub static VALUE_FN_ADDR: u8 = 0;
