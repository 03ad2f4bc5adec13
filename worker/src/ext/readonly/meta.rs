//! Read-only external tables as Lua sees them: a light userdata whose
//! pointer is the table id, and one metatable (Lua has a single metatable
//! for all light userdata) whose `__index` and `__len` are C functions over
//! the Rust cache (`cache.rs`).
//!
//! Reading `items[i].value` therefore allocates nothing: two C calls, two
//! lookups by id. Identity holds for free (the same id is the same value,
//! usable as a key); the sandbox's `type` says "table" for these values, so
//! `type(t) == "table"` holds for every external table; `__name` makes
//! `tostring` say `external table: 0x…`; `__metatable` hides the metatable.
//! No script can make a light userdata, so every one it holds is an id the
//! supervisor gave this compute.
//!
//! The C functions reach the worker's [`Ext`] through a static pointer
//! (`statics.rs`).
//! They hold no Rust value that needs dropping while they call into Lua (a
//! Lua error unwinds them with `longjmp`), and borrow the cache only
//! between Lua calls.

use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

use luapool_protocol::{Key, TableId};
use mlua::{ffi, Function, Lua};

use luapool_protocol::ext_value::{EXT_BIGINT, EXT_FUNCTION};

use super::super::{push_long_or_raise, Ext, Got};
use super::cache::{Cell, Found, LKey};
use crate::values::push_converted;

/// The C functions behind read-only tables, as Lua values.
pub struct RoFunctions {
    /// `__index(t, k)`.
    pub index: Function,
    /// `__len(t)`.
    pub len: Function,
    /// `next(t, k)` for a read-only table.
    pub next: Function,
    /// `info(v)`: the table id and whether it is cached complete, or nil if
    /// `v` is not a read-only table.
    pub info: Function,
    /// The sandbox's `type`: "table" for read-only tables.
    pub type_: Function,
}

/// Builds the C functions over `ext` (which must outlive `lua`'s use of
/// them: the worker holds both).
pub fn functions(lua: &Lua, ext: &std::rc::Rc<Ext>) -> mlua::Result<RoFunctions> {
    // SYNC POINT: stored before any of the functions can run (Release);
    // `ext()` loads it (Acquire). One thread uses it.
    crate::statics::EXT.store(std::rc::Rc::as_ptr(ext) as *mut Ext, Ordering::Release);
    let fs: [ffi::lua_CFunction; 5] = [ro_index, ro_len, ro_next, ro_info, lp_type];
    // SAFETY: pushes five functions (stack space checked); nothing here can
    // raise except allocation, which unwinds only this closure.
    let (index, len, next, info, type_) = unsafe {
        lua.exec_raw::<(Function, Function, Function, Function, Function)>((), |l| {
            ffi::luaL_checkstack(l, 6, c"luapool: stack".as_ptr());
            for f in fs {
                ffi::lua_pushcfunction(l, f);
            }
        })?
    };
    Ok(RoFunctions {
        index,
        len,
        next,
        info,
        type_,
    })
}

/// Makes a metatable with the Lua-side metamethods of `lua_side` the
/// metatable of every light userdata, with the C `__index` and `__len`.
pub fn install(lua: &Lua, fs: &RoFunctions, lua_side: mlua::Table) -> mlua::Result<()> {
    // Lua looks `__index` up in this table at every read of a read-only
    // table (light userdata have no cached metamethod flags): made first in
    // a table sized for all, it sits where its hash puts it, found at the
    // first probe.
    let mt = lua.create_table_with_capacity(0, 8)?;
    mt.raw_set("__index", &fs.index)?;
    for pair in lua_side.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair?;
        mt.raw_set(k, v)?;
    }
    mt.raw_set("__len", &fs.len)?;
    mt.raw_set("__name", "external table")?;
    mt.raw_set("__metatable", "external table")?;
    // SAFETY: sets the metatable of the light userdata type; only the two
    // arguments are on the stack.
    unsafe {
        lua.exec_raw::<()>(mt, |l| {
            ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
            ffi::lua_pushvalue(l, 1);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_settop(l, 0);
        })
    }
}

/// The worker's `Ext`.
///
/// # Safety
/// Called only from the functions [`functions`] made, while the worker lives.
unsafe fn ext<'a>() -> &'a Ext {
    // SYNC POINT: pairs with the Release store in `functions`.
    &*crate::statics::EXT.load(Ordering::Acquire)
}

/// The table id a read-only table's value carries.
///
/// # Safety
/// `idx` is a valid stack index.
unsafe fn id_at(l: *mut ffi::lua_State, idx: c_int) -> Option<TableId> {
    (ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA)
        .then(|| TableId::from_raw(ffi::lua_touserdata(l, idx) as u64))
}

/// The key at `idx`, with Lua's rules (an integral float is the integer);
/// `None` for a value that cannot be a key (a read gives nil, as in Lua).
///
/// # Safety
/// `idx` is a valid stack index; the key borrows the Lua string there.
unsafe fn key_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<LKey<'a>> {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TSTRING => {
            let mut n = 0;
            let p = ffi::lua_tolstring(l, idx, &mut n);
            Some(LKey::Str(std::slice::from_raw_parts(p.cast(), n)))
        }
        ffi::LUA_TNUMBER => {
            // An integer, or a float with an integral value (Lua's key rule).
            let mut is_int = 0;
            let i = ffi::lua_tointegerx(l, idx, &mut is_int);
            if is_int != 0 {
                return Some(LKey::Int(i));
            }
            let f = ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
            match Key::from_f64(f) {
                Ok(Key::Int(i)) => Some(LKey::Int(i)),
                Ok(_) => Some(LKey::Float(f)),
                Err(_) => None,
            }
        }
        ffi::LUA_TBOOLEAN => Some(LKey::Bool(ffi::lua_toboolean(l, idx) != 0)),
        _ => None,
    }
}

/// Pushes a cached cell.
///
/// # Safety
/// One stack slot is free.
#[inline]
unsafe fn push_cell(l: *mut ffi::lua_State, ext: &Ext, cell: Cell) {
    match cell {
        Cell::Nil => ffi::lua_pushnil(l),
        Cell::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
        Cell::Int(i) => ffi::lua_pushinteger(l, i),
        Cell::Float(f) => ffi::lua_pushnumber(l, f),
        Cell::Table(id) => ffi::lua_pushlightuserdata(l, id.raw() as *mut c_void),
        other => push_text_cell(l, ext, other),
    }
}

/// [`push_cell`] of a string, big integer or function.
///
/// # Safety
/// One stack slot is free.
#[inline(never)]
unsafe fn push_text_cell(l: *mut ffi::lua_State, ext: &Ext, cell: Cell) {
    match cell {
        Cell::Nil | Cell::Bool(_) | Cell::Int(_) | Cell::Float(_) | Cell::Table(_) => {
            push_cell(l, ext, cell)
        }
        Cell::Str { off, len } => push_text(l, ext, off, len),
        // Made into their Lua values by `values.rs` (which may raise).
        Cell::BigInt { off, len } => {
            push_text(l, ext, off, len);
            push_converted(l, EXT_BIGINT);
        }
        Cell::Function { off, len } => {
            push_text(l, ext, off, len);
            push_converted(l, EXT_FUNCTION);
        }
    }
}

/// Pushes the bytes `off..off + len` of the cache as a string.
///
/// # Safety
/// One stack slot is free.
unsafe fn push_text(l: *mut ffi::lua_State, ext: &Ext, off: u32, len: u32) {
    // The borrow ends before Lua runs (it may raise); the bytes stay put
    // until the cache next changes, which only Rust code does.
    let (p, n) = {
        let s = ext.ro().borrow();
        let b = s.str(off, len);
        (b.as_ptr(), b.len())
    };
    ffi::lua_pushlstring(l, p.cast(), n);
}

/// Pushes a key. Pushing a string may raise (memory): then the key's
/// bytes leak, a few bytes at most of a key.
///
/// # Safety
/// One stack slot is free.
unsafe fn push_key(l: *mut ffi::lua_State, key: &Key) {
    match key {
        Key::Int(i) => ffi::lua_pushinteger(l, *i),
        Key::Str(s) => {
            ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
        }
        Key::Bool(b) => ffi::lua_pushboolean(l, *b as c_int),
        Key::Float(bits) => ffi::lua_pushnumber(l, f64::from_bits(*bits)),
    }
}

/// Raises `e` as a Lua error at the script's line.
///
/// # Safety
/// Never returns; the message is dropped before the `longjmp`.
pub unsafe fn raise(l: *mut ffi::lua_State, e: crate::ext::ExtError) -> c_int {
    let msg = e.to_string();
    drop(e);
    ffi::luaL_checkstack(l, 3, c"luapool: stack".as_ptr());
    ffi::luaL_where(l, 1);
    ffi::lua_pushlstring(l, msg.as_ptr().cast(), msg.len());
    drop(msg);
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

unsafe extern "C-unwind" fn ro_index(l: *mut ffi::lua_State) -> c_int {
    let ext = ext();
    // Only light userdata have this metamethod (and no script can reach
    // it otherwise), so argument 1 is one.
    let id = TableId::from_raw(ffi::lua_touserdata(l, 1) as u64);
    // The hot cases first: an integer key (a loop over a big array) and a
    // string key (a record's field), each read straight from the cache.
    let found = match ffi::lua_type(l, 2) {
        ffi::LUA_TNUMBER => {
            let mut is_int = 0;
            let i = ffi::lua_tointegerx(l, 2, &mut is_int);
            match is_int {
                0 => None,
                _ => ext.ro().borrow().fast_int(id, i),
            }
        }
        ffi::LUA_TSTRING => {
            let mut n = 0;
            let p = ffi::lua_tolstring(l, 2, &mut n);
            let s = std::slice::from_raw_parts(p.cast(), n);
            ext.ro().borrow().fast_str(id, s)
        }
        _ => None,
    };
    match found {
        Some(cell) => push_cell(l, ext, cell),
        None => return ro_index_miss(l, ext, id),
    }
    1
}

/// The rest of `ro_index`: any key, from the cache or the supervisor.
///
/// # Safety
/// As `ro_index`'s.
#[cold]
#[inline(never)]
unsafe fn ro_index_miss(l: *mut ffi::lua_State, ext: &Ext, id: TableId) -> c_int {
    let Some(key) = key_at(l, 2) else {
        ffi::lua_pushnil(l);
        return 1;
    };
    let found = ext.ro().borrow().get(id, key);
    let cell = match found {
        Found::Value(c) => c,
        Found::Miss => match ext.ro_fetch(id, key) {
            Ok(Got::Value(c)) => c,
            Ok(Got::Long(key, len)) => {
                ext.park_long(id, key);
                return push_long_or_raise(l, ext, len);
            }
            Err(e) => return raise(l, e),
        },
    };
    push_cell(l, ext, cell);
    1
}

unsafe extern "C-unwind" fn ro_len(l: *mut ffi::lua_State) -> c_int {
    let ext = ext();
    // As in ro_index, argument 1 is a light userdata.
    let id = TableId::from_raw(ffi::lua_touserdata(l, 1) as u64);
    let cached = ext.ro().borrow().len(id);
    let n = match cached {
        Some(n) => n,
        None => match ext.ro_len(id) {
            Ok(n) => n,
            Err(e) => return raise(l, e),
        },
    };
    ffi::lua_pushinteger(l, n);
    1
}

unsafe extern "C-unwind" fn ro_next(l: *mut ffi::lua_State) -> c_int {
    let ext = ext();
    // Only the prelude's `next` calls this, for a read-only table.
    let Some(id) = id_at(l, 1) else {
        return raise(l, crate::ext::ExtError::NextKey);
    };
    let after = if ffi::lua_isnoneornil(l, 2) != 0 {
        None
    } else {
        match key_at(l, 2) {
            Some(k) => Some(k),
            None => return raise(l, crate::ext::ExtError::NextKey),
        }
    };
    let entry = match ext.ro_next(id, after) {
        Ok(Got::Value(e)) => e,
        Ok(Got::Long(key, len)) => {
            ffi::luaL_checkstack(l, 2, c"luapool: stack".as_ptr());
            push_key(l, &key);
            ext.park_long(id, key);
            return push_long_or_raise(l, ext, len) + 1;
        }
        Err(e) => return raise(l, e),
    };
    match entry {
        Some((k, v)) => {
            ffi::luaL_checkstack(l, 2, c"luapool: stack".as_ptr());
            push_cell(l, ext, k);
            push_cell(l, ext, v);
            2
        }
        None => {
            ffi::lua_pushnil(l);
            1
        }
    }
}

unsafe extern "C-unwind" fn ro_info(l: *mut ffi::lua_State) -> c_int {
    let ext = ext();
    match id_at(l, 1) {
        Some(id) => {
            let complete = ext.ro().borrow().is_complete(id);
            ffi::lua_pushinteger(l, id.raw() as i64);
            ffi::lua_pushboolean(l, complete as c_int);
            2
        }
        None => {
            ffi::lua_pushnil(l);
            1
        }
    }
}

unsafe extern "C-unwind" fn lp_type(l: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checkany(l, 1);
    let t = ffi::lua_type(l, 1);
    if t == ffi::LUA_TLIGHTUSERDATA {
        ffi::lua_pushstring(l, c"table".as_ptr());
    } else {
        ffi::lua_pushstring(l, ffi::lua_typename(l, t));
    }
    1
}
