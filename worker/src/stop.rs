//! Stopping a compute: one mechanism for the instruction budget, the
//! CPU-time limit, the memory limit, the conversion limit and a cancel.
//!
//! A stop is raised by one C hook, installed with `lua_sethook` on every
//! Lua thread that can run: the main state, and each coroutine when it is
//! resumed or closed (`coroutines.rs` wraps `coroutine.*` and keeps the
//! threads that are running in `statics::RUNNING`). The hook runs in one of
//! three modes:
//!
//! - **off** (a compute with no instruction budget, the default): no hook
//!   at all, so Lua runs at full speed. A limit that needs the compute to
//!   stop (the CPU-time timer's signal, a cancel signal, a refused
//!   allocation, a value too large to copy) *arms* the hook.
//! - **counting**: every [`EVERY`] instructions the hook takes them from
//!   the budget, and looks at the flags. A new coroutine is charged
//!   [`EVERY`] up front, since Lua counts per thread and a thread's partial
//!   count is lost when it dies: at most one step per coroutine goes
//!   uncounted, so no script runs more than about twice its budget.
//! - **armed**: the hook runs at every instruction of every thread. Once a
//!   stop is decided ([`halt`]), it raises the stop's error at every
//!   instruction, so a `pcall`, a `load` reader, a `__close` handler or a
//!   metamethod that catches it gets one instruction further at most.
//!   `coroutine.resume`, `wrap` and `close` raise it again at once, and an
//!   `xpcall` message handler is not called after a stop (Lua calls it
//!   with hooks off when the error came from the hook; `sandbox.lua`).
//!
//! The error raised is a string that names the stop; the kind reported to
//! the supervisor is [`reason`], never read back from the error's text.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{compiler_fence, Ordering};

use mlua::ffi::{self, lua_State};

use crate::statics::{
    BASE_MODE, CANCEL_SIGNALLED, CPU_EXPIRED, HOOK_MODE, INSTRUCTIONS_LEFT, IN_COMPUTE, MAIN,
    RUNNING, RUNNING_DEPTH, STOP_REASON,
};

/// Instructions between two runs of the counting hook.
pub const EVERY: c_int = 1000;

/// How the hook runs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Off = 0,
    Counting = 1,
    Armed = 2,
}

fn mode() -> Mode {
    match HOOK_MODE.load(Ordering::Relaxed) {
        1 => Mode::Counting,
        2 => Mode::Armed,
        _ => Mode::Off,
    }
}

/// Why a compute is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// The instruction budget ran out.
    Instructions = 1,
    /// The CPU-time limit passed.
    CpuTime = 2,
    /// The memory limit refused an allocation that a collection could not
    /// make room for.
    Memory = 3,
    /// The supervisor cancelled the compute.
    Cancel = 4,
    /// A value copied out of Lua passed the conversion limit.
    Conversion = 5,
}

const REASONS: [Reason; 5] = [
    Reason::Instructions,
    Reason::CpuTime,
    Reason::Memory,
    Reason::Cancel,
    Reason::Conversion,
];

impl Reason {
    /// The error value a script sees (a `__close` handler's second
    /// argument, say): short and fixed; the failure's message is built
    /// from the limits (`compute.rs`).
    fn text(self) -> &'static str {
        match self {
            Reason::Instructions => "compute stopped: instruction limit exceeded",
            Reason::CpuTime => "compute stopped: CPU-time limit exceeded",
            Reason::Memory => "not enough memory",
            Reason::Cancel => "compute cancelled",
            Reason::Conversion => "compute stopped: value too large to copy",
        }
    }

    /// The registry key of the Lua string [`text`](Self::text).
    fn key(self) -> *const c_void {
        &crate::statics::STOP_KEYS[self as usize - 1] as *const u8 as *const c_void
    }
}

/// Why the running compute is being stopped, if it is.
pub fn reason() -> Option<Reason> {
    REASONS
        .get((STOP_REASON.load(Ordering::Relaxed) as usize).wrapping_sub(1))
        .copied()
}

/// Registers the main state and the stop strings (once, before any script
/// runs). `main` must be the worker's main Lua state.
///
/// # Safety
/// `main` is a live Lua state on this thread with 2 free stack slots, and
/// stays alive as long as the process runs Lua.
pub unsafe fn install(main: *mut lua_State) {
    for r in REASONS {
        let t = r.text();
        ffi::lua_pushlstring(main, t.as_ptr().cast(), t.len());
        ffi::lua_rawsetp(main, ffi::LUA_REGISTRYINDEX, r.key());
    }
    MAIN.store(main, Ordering::Relaxed);
}

/// Starts a compute: nothing stopped, the budget set (0: none, and no
/// hook), the main state's hook to match.
pub fn begin(instructions: u64) {
    STOP_REASON.store(0, Ordering::Relaxed);
    CPU_EXPIRED.store(false, Ordering::Relaxed);
    CANCEL_SIGNALLED.store(false, Ordering::Relaxed);
    RUNNING_DEPTH.store(0, Ordering::Relaxed);
    INSTRUCTIONS_LEFT.store(instructions, Ordering::Relaxed);
    let m = if instructions > 0 {
        Mode::Counting
    } else {
        Mode::Off
    };
    HOOK_MODE.store(m as u8, Ordering::Relaxed);
    BASE_MODE.store(m as u8, Ordering::Relaxed);
    // SYNC POINT: the mode is stored before IN_COMPUTE, which the signal
    // handlers read first (same thread: a compiler fence orders them).
    compiler_fence(Ordering::SeqCst);
    IN_COMPUTE.store(true, Ordering::Relaxed);
    // SAFETY: no Lua code runs here; MAIN is the live main state.
    unsafe { sync(MAIN.load(Ordering::Relaxed)) };
}

/// Ends a compute: the hook off, signals ignored until the next.
pub fn end() {
    IN_COMPUTE.store(false, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    HOOK_MODE.store(Mode::Off as u8, Ordering::Relaxed);
    RUNNING_DEPTH.store(0, Ordering::Relaxed);
    // SAFETY: no Lua code runs here; MAIN is the live main state.
    unsafe { sync(MAIN.load(Ordering::Relaxed)) };
}

/// Decides a stop (the first reason wins) and arms the hook on every
/// thread that can run. Callable from the hook, from Rust callbacks, from
/// the allocator, not from a signal handler (use [`arm`] there).
pub fn halt(r: Reason) {
    if !IN_COMPUTE.load(Ordering::Relaxed) {
        return;
    }
    let _ = STOP_REASON.compare_exchange(0, r as u8, Ordering::Relaxed, Ordering::Relaxed);
    arm();
}

/// Arms the hook at every instruction on the main state and every running
/// coroutine. Async-signal-safe: only atomics and `lua_sethook`, which Lua
/// allows from a signal handler (`lua.c` stops a script on Ctrl-C so).
pub fn arm() {
    HOOK_MODE.store(Mode::Armed as u8, Ordering::Relaxed);
    // SYNC POINT: the mode before the walk, so a coroutine pushed after we
    // read the depth syncs to Armed itself (coroutines.rs pushes, then syncs).
    compiler_fence(Ordering::SeqCst);
    let main = MAIN.load(Ordering::Relaxed);
    if main.is_null() {
        return;
    }
    // SAFETY: MAIN and every RUNNING entry below the depth are live Lua
    // states (a running coroutine is referenced by its resumer's stack).
    unsafe {
        ffi::lua_sethook(main, Some(hook), ffi::LUA_MASKCOUNT, 1);
        let depth = RUNNING_DEPTH.load(Ordering::Relaxed).min(RUNNING.len());
        for slot in &RUNNING[..depth] {
            let co = slot.load(Ordering::Relaxed);
            if !co.is_null() {
                ffi::lua_sethook(co, Some(hook), ffi::LUA_MASKCOUNT, 1);
            }
        }
    }
}

/// Gives thread `l` the hook of the current mode. A counting thread that
/// already has it keeps its count (resetting it would lose instructions).
///
/// # Safety
/// `l` is a live Lua state of this worker.
pub unsafe fn sync(l: *mut lua_State) {
    if l.is_null() {
        return;
    }
    match mode() {
        Mode::Off => ffi::lua_sethook(l, None, 0, 0),
        Mode::Counting => {
            let has = ffi::lua_gethook(l)
                .is_some_and(|h| std::ptr::fn_addr_eq(h, hook as ffi::lua_Hook))
                && ffi::lua_gethookcount(l) == EVERY;
            if !has {
                ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, EVERY);
            }
        }
        Mode::Armed => {}
    }
    // SYNC POINT: a signal handler that armed the hook while the writes
    // above were half done left `l` in a mixed state; it set the mode first
    // (arm), so reading it after them is enough (same thread).
    compiler_fence(Ordering::SeqCst);
    if mode() == Mode::Armed {
        ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, 1);
    }
}

/// A new Lua thread costs a step of the budget (see the module
/// documentation). Raises the stop on `l` if that ends the budget.
///
/// # Safety
/// Called from a C function Lua called on `l`; may not return (longjmp).
pub unsafe fn charge_thread(l: *mut lua_State) {
    if mode() == Mode::Counting && take(EVERY as u64) {
        halt(Reason::Instructions);
    }
    if let Some(r) = reason() {
        raise(l, r);
    }
}

/// Takes `n` from the budget; true when it ran out.
fn take(n: u64) -> bool {
    let left = INSTRUCTIONS_LEFT.load(Ordering::Relaxed);
    INSTRUCTIONS_LEFT.store(left.saturating_sub(n), Ordering::Relaxed);
    left <= n
}

/// Whether the supervisor asked to cancel: the ring's flag (the signal
/// only wakes the hook; the flag is what the supervisor set for *this*
/// compute).
fn cancel_requested() -> bool {
    let ext = crate::statics::EXT.load(Ordering::Acquire);
    if ext.is_null() {
        return false;
    }
    // SAFETY: EXT points at the worker's Ext, alive while Lua runs
    // (ext/readonly/meta.rs stores it); the link answers false while a
    // Rust callback holds the connection and Lua code it called runs this
    // hook.
    unsafe { &*ext }.link.cancel_requested()
}

/// Whether the compute is being stopped or soon will be (a limit fired and
/// the hook has not run since): long Rust loops give up early.
pub fn pending() -> bool {
    reason().is_some() || CPU_EXPIRED.load(Ordering::Relaxed) || cancel_requested()
}

/// What the hook decides: the stop to raise, if any.
fn poll() -> Option<Reason> {
    if let Some(r) = reason() {
        return Some(r);
    }
    let m = mode();
    if m == Mode::Counting && take(EVERY as u64) {
        halt(Reason::Instructions);
    }
    if CPU_EXPIRED.load(Ordering::Relaxed) {
        halt(Reason::CpuTime);
    }
    if crate::memory::refused() {
        halt(Reason::Memory);
    }
    if (m == Mode::Counting || CANCEL_SIGNALLED.load(Ordering::Relaxed)) && cancel_requested() {
        halt(Reason::Cancel);
    }
    reason()
}

/// Raises the stop's error on `l`.
///
/// # Safety
/// `l` is the running Lua state, in a C function or hook; never returns.
pub unsafe fn raise(l: *mut lua_State, r: Reason) -> ! {
    // The string lives in the registry: pushing it allocates nothing, so
    // this works at the memory limit too.
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, r.key());
    ffi::lua_error(l)
}

unsafe extern "C-unwind" fn hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    if let Some(r) = poll() {
        raise(l, r);
    }
    if mode() == Mode::Armed {
        // Armed for nothing: a cancel signal that came after its compute,
        // an allocation refused and then granted on Lua's retry. Back to
        // the compute's own mode; each armed thread returns likewise.
        CANCEL_SIGNALLED.store(false, Ordering::Relaxed);
        HOOK_MODE.store(BASE_MODE.load(Ordering::Relaxed), Ordering::Relaxed);
        sync(l);
    }
}

/// `stopped()` for `sandbox.lua`: the stop's error value, or nothing.
pub unsafe extern "C-unwind" fn lp_stopped(l: *mut lua_State) -> c_int {
    match reason() {
        Some(r) => {
            ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, r.key());
            1
        }
        None => 0,
    }
}

/// The `SIGUSR1` handler: a cancel. A counting compute's hook reads the
/// ring's flag anyway, so only a compute without a hook is armed (a late
/// signal must not reset a count).
extern "C" fn on_cancel_signal(_: c_int) {
    if !IN_COMPUTE.load(Ordering::Relaxed) || mode() == Mode::Counting {
        return;
    }
    CANCEL_SIGNALLED.store(true, Ordering::Relaxed);
    arm();
}

/// Installs `handler` for `signal`, with `SA_RESTART` so that the ring's
/// futex waits go on.
///
/// # Safety
/// `handler` is async-signal-safe.
pub unsafe fn on_signal(signal: c_int, handler: extern "C" fn(c_int)) {
    let mut sa: libc::sigaction = std::mem::zeroed();
    sa.sa_sigaction = handler as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    libc::sigemptyset(&mut sa.sa_mask);
    libc::sigaction(signal, &sa, std::ptr::null_mut());
}

/// Installs the cancel signal's handler.
pub fn install_cancel_signal() {
    // SAFETY: on_cancel_signal only touches atomics and calls lua_sethook.
    unsafe { on_signal(libc::SIGUSR1, on_cancel_signal) };
}
