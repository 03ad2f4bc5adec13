//! The sandbox's `coroutine.create`, `resume`, `wrap` and `close`: Lua's
//! own (`lcorolib.c`), plus what stops need.
//!
//! Lua's hooks are per thread, and a hook set on the main state does not
//! reach a coroutine that is running. So every coroutine is pushed on
//! `statics::RUNNING` while it runs (resumed, or closed: its `__close`
//! handlers run on it) and gets the hook of the current mode before it
//! does (`stop::sync`); a limit that fires arms all of them (`stop::arm`).
//! A new coroutine is charged a step of the instruction budget. Once a
//! compute is stopped, `resume`, `wrap` and `close` raise the stop again
//! instead of returning it, and do not run a dead coroutine's `__close`
//! handlers (they would run with hooks off when the stop came from the
//! hook: Lua does not restore a dead thread's hook permission).
//!
//! These functions hold no Rust value that needs dropping: a Lua error
//! leaves them by `longjmp`.

use std::ffi::c_int;
use std::sync::atomic::{compiler_fence, Ordering};

use mlua::ffi::{self, lua_State};

use crate::statics::{PLAIN_KEY, RUNNING, RUNNING_DEPTH};
use crate::stop;

/// The C functions, in the order `functions` pushes them.
pub const NAMES: [&str; 4] = ["create", "resume", "wrap", "close"];

/// Pushes the four functions of [`NAMES`].
///
/// # Safety
/// `l` is a Lua state with 4 free stack slots.
pub unsafe fn push_functions(l: *mut lua_State) {
    for f in [
        co_create as ffi::lua_CFunction,
        co_resume,
        co_wrap,
        co_close,
    ] {
        ffi::lua_pushcfunction(l, f);
    }
}

/// Raises `msg` at the caller's position.
unsafe fn error(l: *mut lua_State, msg: &str) -> ! {
    ffi::luaL_checkstack(l, 2, std::ptr::null());
    ffi::luaL_where(l, 1);
    ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

/// Argument 1 as a coroutine, or the usual argument error.
unsafe fn getco(l: *mut lua_State) -> *mut lua_State {
    let co = ffi::lua_tothread(l, 1);
    if co.is_null() {
        ffi::luaL_argerror(l, 1, c"coroutine expected".as_ptr());
    }
    co
}

/// Runs `f` with `co` on the running stack, its hook synced. `None`: the
/// nesting is deeper than Lua's C stack allows anyway.
unsafe fn tracked<R>(co: *mut lua_State, f: impl FnOnce() -> R) -> Option<R> {
    let depth = RUNNING_DEPTH.load(Ordering::Relaxed);
    if depth >= RUNNING.len() {
        return None;
    }
    RUNNING[depth].store(co, Ordering::Relaxed);
    // SYNC POINT: the entry before the depth that publishes it, for the
    // signal handlers (same thread).
    compiler_fence(Ordering::SeqCst);
    RUNNING_DEPTH.store(depth + 1, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    stop::sync(co);
    let r = f();
    RUNNING_DEPTH.store(depth, Ordering::Relaxed);
    Some(r)
}

/// `lcorolib.c`'s `auxresume`: results moved to `l`, or -1 with the error
/// on `l`.
unsafe fn auxresume(l: *mut lua_State, co: *mut lua_State, narg: c_int) -> c_int {
    if ffi::lua_checkstack(co, narg) == 0 {
        ffi::lua_pushliteral(l, c"too many arguments to resume");
        return -1;
    }
    ffi::lua_xmove(l, co, narg);
    let mut nres = 0;
    let Some(status) = tracked(co, || ffi::lua_resume(co, l, narg, &mut nres)) else {
        ffi::lua_pushliteral(l, c"C stack overflow");
        return -1;
    };
    if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
        if ffi::lua_checkstack(l, nres + 1) == 0 {
            ffi::lua_pop(co, nres);
            ffi::lua_pushliteral(l, c"too many results to resume");
            return -1;
        }
        ffi::lua_xmove(co, l, nres);
        nres
    } else {
        ffi::lua_xmove(co, l, 1);
        -1
    }
}

/// Registers `plain(e)` (`sandbox.lua`), which turns an error raised by a
/// Rust callback into its message, for the functions here.
pub fn set_plain(lua: &mlua::Lua, plain: &mlua::Function) -> mlua::Result<()> {
    // SAFETY: stores the one argument in the registry.
    unsafe {
        lua.exec_raw::<()>(plain, |l| {
            ffi::lua_rawsetp(
                l,
                ffi::LUA_REGISTRYINDEX,
                &PLAIN_KEY as *const u8 as *const _,
            );
        })
    }
}

/// Replaces the error value on top of `l` by `plain(e)` when it is a
/// userdata (what a Rust callback raised).
unsafe fn plain_top(l: *mut lua_State) {
    if ffi::lua_type(l, -1) != ffi::LUA_TUSERDATA {
        return;
    }
    ffi::luaL_checkstack(l, 2, std::ptr::null());
    ffi::lua_rawgetp(
        l,
        ffi::LUA_REGISTRYINDEX,
        &PLAIN_KEY as *const u8 as *const _,
    );
    ffi::lua_insert(l, -2);
    ffi::lua_call(l, 1, 1);
}

/// Raises the stop, if the compute is being stopped.
unsafe fn restop(l: *mut lua_State) {
    if let Some(r) = stop::reason() {
        stop::raise(l, r);
    }
}

unsafe extern "C-unwind" fn co_create(l: *mut lua_State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
    let co = ffi::lua_newthread(l);
    ffi::lua_pushvalue(l, 1);
    ffi::lua_xmove(l, co, 1);
    stop::charge_thread(l);
    1
}

unsafe extern "C-unwind" fn co_resume(l: *mut lua_State) -> c_int {
    let co = getco(l);
    let r = auxresume(l, co, ffi::lua_gettop(l) - 1);
    restop(l);
    if r < 0 {
        plain_top(l);
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, -2);
        2
    } else {
        ffi::lua_pushboolean(l, 1);
        ffi::lua_insert(l, -(r + 1));
        r + 1
    }
}

unsafe extern "C-unwind" fn co_wrap(l: *mut lua_State) -> c_int {
    co_create(l);
    ffi::lua_pushcclosure(l, auxwrap, 1);
    1
}

unsafe extern "C-unwind" fn auxwrap(l: *mut lua_State) -> c_int {
    let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(1));
    let r = auxresume(l, co, ffi::lua_gettop(l));
    restop(l);
    if r >= 0 {
        return r;
    }
    let mut stat = ffi::lua_status(co);
    if stat != ffi::LUA_OK && stat != ffi::LUA_YIELD {
        // An error in the coroutine: close its to-be-closed variables.
        stat = tracked(co, || ffi::lua_closethread(co, l))
            .unwrap_or_else(|| error(l, "C stack overflow"));
        restop(l);
        ffi::lua_xmove(co, l, 1);
    }
    plain_top(l);
    if stat != ffi::LUA_ERRMEM && ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
        ffi::luaL_where(l, 1);
        ffi::lua_insert(l, -2);
        ffi::lua_concat(l, 2);
    }
    ffi::lua_error(l)
}

/// `lcorolib.c`'s `auxstatus`.
#[derive(PartialEq)]
enum Status {
    Running,
    Dead,
    Suspended,
    Normal,
}

unsafe fn status(l: *mut lua_State, co: *mut lua_State) -> Status {
    if l == co {
        return Status::Running;
    }
    match ffi::lua_status(co) {
        ffi::LUA_YIELD => Status::Suspended,
        ffi::LUA_OK => {
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            if ffi::lua_getstack(co, 0, &mut ar) != 0 {
                Status::Normal
            } else if ffi::lua_gettop(co) == 0 {
                Status::Dead
            } else {
                Status::Suspended
            }
        }
        _ => Status::Dead,
    }
}

unsafe extern "C-unwind" fn co_close(l: *mut lua_State) -> c_int {
    let co = getco(l);
    match status(l, co) {
        Status::Dead | Status::Suspended => {
            restop(l);
            let stat = tracked(co, || ffi::lua_closethread(co, l))
                .unwrap_or_else(|| error(l, "C stack overflow"));
            restop(l);
            if stat == ffi::LUA_OK {
                ffi::lua_pushboolean(l, 1);
                1
            } else {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_xmove(co, l, 1);
                plain_top(l);
                2
            }
        }
        Status::Running => error(l, "cannot close a running coroutine"),
        Status::Normal => error(l, "cannot close a normal coroutine"),
    }
}
