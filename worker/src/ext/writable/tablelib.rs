//! `table.insert`, `table.remove`, `table.move` and `table.sort` as C
//! functions that know writable external tables.
//!
//! Lua's own functions move an external array element by element through
//! its metamethods: a read and a buffered write per element, a Lua call
//! each. These run Lua's own argument checks (same messages), then, for a
//! writable external table and enough elements ([`FAST_MIN`]), do the
//! operation whole: a move is one request to the store (`Request::Move`)
//! plus Lua's own `table.move` on the worker's cache; a sort sorts the
//! cache (a plain table) with Lua's own `table.sort` and the script's
//! comparator, then writes back the keys whose value changed. Anything
//! else calls Lua's function, in the same frame: for a plain table nothing
//! differs, error messages included.
//!
//! Each is a C closure over Lua's function (upvalue 1) and the prelude's
//! helpers (`MOVE` and `GET`, or `SORT_PREP` and `SORT_DONE`). No Rust value that
//! needs dropping is alive while Lua runs (a Lua error `longjmp`s).

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};

use super::materialize::id_key;

/// The fewest elements moved or sorted whole; fewer go through Lua's
/// function and the metamethods.
const FAST_MIN: i64 = 32;

/// Lua's own function (upvalue 1).
///
/// # Safety
/// Called from one of the closures [`install`] made.
unsafe fn native(l: *mut lua_State) -> ffi::lua_CFunction {
    ffi::lua_tocfunction(l, ffi::lua_upvalueindex(1)).expect("made by install() over a C function")
}

/// Whether the value at `idx` is a writable external table's proxy.
///
/// # Safety
/// `idx` is a valid index and one stack slot is free.
unsafe fn writable(l: *mut lua_State, idx: c_int) -> bool {
    if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
        return false;
    }
    let t = ffi::lua_rawgetp(l, idx, id_key().0);
    ffi::lua_pop(l, 1);
    t != ffi::LUA_TNIL
}

/// Raises Lua's "bad argument" error for argument `arg`.
///
/// # Safety
/// Never returns.
unsafe fn bad(l: *mut lua_State, arg: c_int, msg: &CStr) -> c_int {
    ffi::luaL_argerror(l, arg, msg.as_ptr())
}

/// Calls the prelude's `MOVE(t, first, last, to)` (upvalue 2): the store's
/// move and the cache's.
///
/// # Safety
/// `t` is a valid index of a writable external table; 5 slots are free.
unsafe fn move_whole(l: *mut lua_State, t: c_int, first: i64, last: i64, to: i64) {
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
    ffi::lua_pushvalue(l, t);
    ffi::lua_pushinteger(l, first);
    ffi::lua_pushinteger(l, last);
    ffi::lua_pushinteger(l, to);
    ffi::lua_call(l, 4, 0);
}

/// `table.insert(t, [pos,] v)`.
pub unsafe extern "C-unwind" fn insert(l: *mut lua_State) -> c_int {
    if ffi::lua_gettop(l) != 3 || !writable(l, 1) {
        return native(l)(l);
    }
    let e = ffi::luaL_len(l, 1).wrapping_add(1);
    let pos = ffi::luaL_checkinteger(l, 2);
    if (pos as u64).wrapping_sub(1) >= e as u64 {
        return bad(l, 2, c"position out of bounds");
    }
    if e - pos < FAST_MIN {
        return native(l)(l);
    }
    move_whole(l, 1, pos, e - 1, pos + 1);
    ffi::lua_seti(l, 1, pos);
    0
}

/// `table.remove(t [, pos])`.
pub unsafe extern "C-unwind" fn remove(l: *mut lua_State) -> c_int {
    if !writable(l, 1) {
        return native(l)(l);
    }
    let size = ffi::luaL_len(l, 1);
    let pos = ffi::luaL_optinteger(l, 2, size);
    if pos != size && (pos as u64).wrapping_sub(1) > size as u64 {
        return bad(l, 2, c"position out of bounds");
    }
    if pos < 1 || size - pos < FAST_MIN {
        return native(l)(l);
    }
    // The value removed: `GET(t, pos)` (upvalue 3), one key, not a window.
    ffi::lua_settop(l, 1);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushinteger(l, pos);
    ffi::lua_call(l, 2, 1);
    move_whole(l, 1, pos + 1, size, pos);
    ffi::lua_pushnil(l);
    ffi::lua_seti(l, 1, size);
    1
}

/// `table.move(a1, f, e, t [, a2])`, within one writable external table.
pub unsafe extern "C-unwind" fn move_(l: *mut lua_State) -> c_int {
    let f = ffi::luaL_checkinteger(l, 2);
    let e = ffi::luaL_checkinteger(l, 3);
    let t = ffi::luaL_checkinteger(l, 4);
    let tt = if ffi::lua_isnoneornil(l, 5) != 0 {
        1
    } else {
        5
    };
    if e < f || !writable(l, 1) || (tt == 5 && ffi::lua_rawequal(l, 1, 5) == 0) {
        return native(l)(l);
    }
    if !(f > 0 || e < i64::MAX + f) {
        return bad(l, 3, c"too many elements to move");
    }
    let n = e - f + 1;
    if t > i64::MAX - n + 1 {
        return bad(l, 4, c"destination wrap around");
    }
    if n < FAST_MIN {
        return native(l)(l);
    }
    move_whole(l, 1, f, e, t);
    ffi::lua_pushvalue(l, tt);
    1
}

/// `table.sort(t [, comp])`.
pub unsafe extern "C-unwind" fn sort(l: *mut lua_State) -> c_int {
    if !writable(l, 1) {
        return native(l)(l);
    }
    let n = ffi::luaL_len(l, 1);
    if n > 1 {
        if n >= c_int::MAX as i64 {
            return bad(l, 1, c"array too big");
        }
        if ffi::lua_isnoneornil(l, 2) == 0 {
            ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);
        }
    }
    if n < FAST_MIN {
        return native(l)(l);
    }
    ffi::lua_settop(l, 2);
    // 3, 4: the cache to sort (1..n, no holes) and its order before.
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushinteger(l, n);
    ffi::lua_call(l, 2, 2);
    if ffi::lua_isnil(l, 3) != 0 {
        ffi::lua_settop(l, 2);
        return native(l)(l);
    }
    // Lua's sort of the cache, caught so that what it did is written back
    // whatever happens (as Lua leaves a table a failed sort was sorting).
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_pushvalue(l, 3);
    ffi::lua_pushvalue(l, 2);
    let sorted = ffi::lua_pcall(l, 2, 0, 0) == ffi::LUA_OK;
    let top = ffi::lua_gettop(l); // the sort's error, if it failed
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushvalue(l, 3);
    ffi::lua_pushvalue(l, 4);
    ffi::lua_pushinteger(l, n);
    ffi::lua_call(l, 4, 2);
    if !sorted {
        ffi::lua_pushvalue(l, top);
        ffi::lua_error(l);
    }
    // `SORT_DONE` returns the write-back's error: message, memory.
    if ffi::lua_isnil(l, -2) == 0 {
        if ffi::lua_toboolean(l, -1) == 0 {
            ffi::luaL_where(l, 1);
            ffi::lua_pushvalue(l, -3);
            ffi::lua_concat(l, 2);
        } else {
            ffi::lua_pushvalue(l, -2);
        }
        ffi::lua_error(l);
    }
    0
}

/// Replaces Lua's `table.insert`, `table.remove`, `table.move` and
/// `table.sort` in `table_lib` (the library the sandbox copies) by the
/// functions above, over the prelude's helpers `bulk` (`move`, `get`,
/// `sort_prep`, `sort_done`).
pub fn install(lua: &mlua::Lua, table_lib: &mlua::Table, bulk: &mlua::Table) -> mlua::Result<()> {
    let mv: mlua::Function = bulk.raw_get("move")?;
    let prep: mlua::Function = bulk.raw_get("sort_prep")?;
    let done: mlua::Function = bulk.raw_get("sort_done")?;
    let get: mlua::Function = bulk.raw_get("get")?;
    let closures: [(&str, ffi::lua_CFunction, Vec<&mlua::Function>); 4] = [
        ("insert", insert, vec![&mv]),
        ("remove", remove, vec![&mv, &get]),
        ("move", move_, vec![&mv]),
        ("sort", sort, vec![&prep, &done]),
    ];
    for (name, f, helpers) in closures {
        let lua_fn: mlua::Function = table_lib.raw_get(name)?;
        let n = 1 + helpers.len() as c_int;
        let mut args = vec![lua_fn];
        args.extend(helpers.into_iter().cloned());
        // SAFETY: the arguments are the closure's upvalues, all on the
        // stack; pushcclosure pops them and pushes the closure, the result.
        let wrapped = unsafe {
            lua.exec_raw::<mlua::Function>(
                mlua::MultiValue::from_iter(args.into_iter().map(mlua::Value::Function)),
                |l| ffi::lua_pushcclosure(l, f, n),
            )?
        };
        table_lib.raw_set(name, wrapped)?;
    }
    Ok(())
}
