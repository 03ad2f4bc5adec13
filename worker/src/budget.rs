//! Switching the instruction-budget hook on and off per compute.
//!
//! Lua 5.4 runs a count hook through `luaG_traceexec` on *every* VM
//! instruction, whatever the count: about a third of a tight loop's time
//! here. A compute with a budget needs it (the hook counts, and checks the
//! cancel flag). A compute without one (`instructions: 0`) runs with no
//! hook at all; its wall-time limit is the supervisor's hard kill, and a
//! cancel arrives as `SIGUSR1`, whose handler turns the hook on (Lua's
//! `lua_sethook` is safe to call from a signal handler, as `lua.c` does for
//! Ctrl-C) so that the next instruction looks at the flag. A coroutine that
//! was created while the hook was off does not see it: a cancel then ends
//! such a compute by the supervisor's kill after the grace period.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use mlua::{ffi, Lua};

/// The main Lua state and mlua's hook function, for the signal handler.
static MAIN: AtomicPtr<ffi::lua_State> = AtomicPtr::new(std::ptr::null_mut());
static HOOK: AtomicUsize = AtomicUsize::new(0);
/// Whether the running compute counts instructions: then the count hook is
/// already on, and a stray signal must not shorten its count.
static COUNTING: AtomicBool = AtomicBool::new(true);

/// The hook of a worker, captured after `set_global_hook` installed it.
pub struct Budget {
    main: *mut ffi::lua_State,
    hook: Option<ffi::lua_Hook>,
    every: c_int,
}

impl Budget {
    /// Captures the hook mlua installed on the main state (call right after
    /// `Lua::set_global_hook`, with its instruction count) and installs the
    /// `SIGUSR1` handler.
    pub fn capture(lua: &Lua, every: u32) -> mlua::Result<Budget> {
        let mut main = std::ptr::null_mut();
        // SAFETY: reads the main thread from the registry and its hook;
        // pushes one value, which exec_raw pops.
        unsafe {
            lua.exec_raw::<()>((), |l| {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
                main = ffi::lua_tothread(l, -1);
                ffi::lua_pop(l, 1);
            })?;
        }
        // SAFETY: `main` is the live main state of `lua`.
        let hook = unsafe { ffi::lua_gethook(main) };
        // SYNC POINT: published before the handler is installed (Release);
        // the handler's Acquire loads see them.
        MAIN.store(main, Ordering::Release);
        HOOK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
        // SAFETY: installs a handler that only calls lua_sethook, which Lua
        // documents as callable asynchronously; SA_RESTART keeps the ring's
        // futex waits going.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_cancel_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
        Ok(Budget {
            main,
            hook,
            every: every as c_int,
        })
    }

    /// Before a compute: the count hook on if it has a budget, else off.
    pub fn set(&self, counting: bool) {
        // SYNC POINT: read by the signal handler on this same thread; no
        // other memory hangs on it.
        COUNTING.store(counting, Ordering::Relaxed);
        // SAFETY: between computes no Lua code runs; `main` lives as long as
        // the worker's Lua state, which owns this.
        unsafe {
            if counting {
                ffi::lua_sethook(self.main, self.hook, ffi::LUA_MASKCOUNT, self.every);
            } else {
                ffi::lua_sethook(self.main, None, 0, 0);
            }
        }
    }
}

/// Turns the hook off again from inside it (a signal that found no cancel:
/// one that arrived late, after its compute).
pub fn off_from_hook() {
    // SYNC POINT: pairs with the Release store in `capture`.
    let main = MAIN.load(Ordering::Acquire);
    if !main.is_null() {
        // SAFETY: called from the hook, on the main state's thread.
        unsafe { ffi::lua_sethook(main, None, 0, 0) };
    }
}

extern "C" fn on_cancel_signal(_: c_int) {
    // SYNC POINT: pairs with the Release stores in `capture` and the
    // Relaxed store in `set` (same thread).
    let main = MAIN.load(Ordering::Acquire);
    let hook = HOOK.load(Ordering::Acquire);
    if main.is_null() || hook == 0 || COUNTING.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: `hook` is the function pointer lua_gethook returned (a
    // `lua_Hook`); lua_sethook may be called from a signal handler.
    unsafe {
        let hook: ffi::lua_Hook = std::mem::transmute::<usize, ffi::lua_Hook>(hook);
        ffi::lua_sethook(main, Some(hook), ffi::LUA_MASKCOUNT, 1);
    }
}
