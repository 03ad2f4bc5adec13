//! Building Lua values from a reply in bulk, through Lua's C API.
//!
//! A writable table becomes 3 Lua tables (proxy, its own metatable, cache;
//! see `prelude.lua`); a read-only one is only its id, as a light userdata
//! (`ro_meta.rs`). Going through mlua's safe API costs a call per
//! field, and decoding into Rust values first costs an allocation per field;
//! this file reads the reply's bytes ([`Contents`]) and pushes the values
//! straight onto the Lua stack.

use std::ffi::{c_int, c_void};

use luapool_protocol::TableId;
use mlua::{ffi, LightUserData, Lua, Table};

use luapool_protocol::ext_value::{EXT_BIGINT, EXT_FUNCTION};
use luapool_protocol::hot::{Contents, Item};

use crate::values::push_converted;

// Stack slots of the arguments every raw call receives.
const PROXIES: c_int = 1;
const CACHE: c_int = 2;
const NEWINDEX: c_int = 3;
const LEN: c_int = 4;
const PAIRS: c_int = 5;
const MAKE: c_int = 6;
const KEY: c_int = 7;
// Pushed once per raw call: field names (`lua_setfield` would intern each C
// string again per table) and the proxies' private key.
const S_INDEX: c_int = 8;
const S_NEWINDEX: c_int = 9;
const S_LEN: c_int = 10;
const S_PAIRS: c_int = 11;
const S_NAME: c_int = 12;
const S_EXTERNAL: c_int = 13;
const S_ID: c_int = 14;
const ID_KEY: c_int = 15;
const NAMES: [&std::ffi::CStr; 7] = [
    c"__index",
    c"__newindex",
    c"__len",
    c"__pairs",
    c"__name",
    c"external table",
    c"lp_id",
];

/// The private key under which a writable table's proxy holds its id, for
/// `prelude.lua` (`R.idkey`) and for reading a proxy's id.
pub fn id_key() -> LightUserData {
    LightUserData(&crate::statics::ID_KEY_ADDR as *const u8 as *mut c_void)
}

/// The prelude's functions and tables that proxies refer to.
#[derive(Clone)]
pub struct Fns {
    /// `__newindex` of writable tables.
    pub newindex: mlua::Function,
    /// `__len` of tables with their own metatable.
    pub len: mlua::Function,
    /// `__pairs` of tables with their own metatable.
    pub pairs: mlua::Function,
    /// Builds a proxy whose cache fetches on a miss.
    pub make: mlua::Function,
}

impl Fns {
    fn args<'a>(
        &'a self,
        proxies: &'a Table,
        cache: &'a Table,
        key: mlua::Value,
    ) -> impl mlua::IntoLuaMulti + 'a {
        (
            proxies,
            cache,
            &self.newindex,
            &self.len,
            &self.pairs,
            &self.make,
            key,
        )
    }
}

/// Where fetched values go in the cache table.
pub enum Target<'a> {
    /// `values[j]` is the value at integer key `start + j`; return the one at `want`.
    Range {
        /// Key of the first value.
        start: i64,
        /// The key whose value is returned.
        want: i64,
    },
    /// `values[0]` is the value at the key `key` (already converted to Lua); return it.
    Key(&'a mlua::Value),
}

/// Stores the reply's values into `cache` (skipping nils) as `target`
/// says, building proxies for the tables they mention, and returns the
/// wanted value.
pub fn fill(
    lua: &Lua,
    proxies: &Table,
    cache: &Table,
    fns: &Fns,
    reply: &Contents,
    target: Target,
) -> mlua::Result<mlua::Value> {
    let key = match target {
        Target::Key(k) => k.clone(),
        Target::Range { .. } => mlua::Value::Nil,
    };
    let args = fns.args(proxies, cache, key);
    // SAFETY: the closure only uses the stack slots exec_raw pushed (1..=7,
    // see the constants) plus what it pushes itself, checks stack space
    // before pushing, and its frames own nothing that needs dropping (the
    // reply is borrowed), so a Lua error unwinding through it leaks nothing.
    unsafe {
        lua.exec_raw(args, |l| {
            push_names(l);
            match target {
                Target::Range { start, want } => {
                    for (j, v) in reply.values().enumerate() {
                        if v != Item::Nil {
                            push_item(l, v, reply);
                            ffi::lua_rawseti(l, CACHE, start + j as i64);
                        }
                    }
                    ffi::lua_rawgeti(l, CACHE, want);
                }
                Target::Key(_) => match reply.values().next() {
                    Some(Item::Nil) | None => ffi::lua_pushnil(l),
                    Some(v) => {
                        ffi::lua_pushvalue(l, KEY);
                        push_item(l, v, reply);
                        ffi::lua_pushvalue(l, -1);
                        ffi::lua_rotate(l, -3, 1);
                        ffi::lua_rawset(l, CACHE);
                    }
                },
            }
            // Return only the wanted value.
            ffi::lua_copy(l, -1, 1);
            ffi::lua_settop(l, 1);
        })
    }
}

/// Builds `(keys, values)` arrays for a batch of `pairs` entries.
pub fn entries(
    lua: &Lua,
    proxies: &Table,
    fns: &Fns,
    reply: &Contents,
) -> mlua::Result<(Table, Table)> {
    let n = reply.len();
    let keys = lua.create_table_with_capacity(n, 0)?;
    let vals = lua.create_table_with_capacity(n, 0)?;
    // SAFETY: as in `fill`; slot 2 (CACHE) holds `vals`, slot 7 (KEY) `keys`.
    unsafe {
        lua.exec_raw::<()>(
            fns.args(proxies, &vals, mlua::Value::Table(keys.clone())),
            |l| {
                push_names(l);
                for (i, (k, v)) in reply.entries().enumerate() {
                    push_item(l, k, reply);
                    ffi::lua_rawseti(l, KEY, i as i64 + 1);
                    push_item(l, v, reply);
                    ffi::lua_rawseti(l, CACHE, i as i64 + 1);
                }
                ffi::lua_settop(l, 0);
            },
        )?;
    }
    Ok((keys, vals))
}

/// Pushes the field names and the proxies' key at their slots.
///
/// # Safety
/// `l` is a raw-call stack holding exactly the 7 arguments.
unsafe fn push_names(l: *mut ffi::lua_State) {
    ffi::luaL_checkstack(l, NAMES.len() as c_int + 1, c"luapool: stack".as_ptr());
    for name in NAMES {
        ffi::lua_pushstring(l, name.as_ptr());
    }
    ffi::lua_pushlightuserdata(l, id_key().0);
}

/// Pushes a key or value; a table becomes its proxy (an existing one if
/// this compute already has it, so identity holds); a big integer or a
/// function becomes its Lua value (`values.rs`, which may raise).
///
/// # Safety
/// `l` is a raw-call stack laid out as the constants above say.
unsafe fn push_item(l: *mut ffi::lua_State, item: Item, reply: &Contents) {
    ffi::luaL_checkstack(l, 8, c"luapool: tables nested too deep".as_ptr());
    match item {
        Item::Nil => ffi::lua_pushnil(l),
        Item::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
        Item::Int(i) => ffi::lua_pushinteger(l, i),
        Item::Float(f) => ffi::lua_pushnumber(l, f),
        Item::Str(s) => {
            ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
        }
        Item::Table(id) => push_proxy(l, id, reply),
        Item::BigInt(t) => {
            ffi::lua_pushlstring(l, t.as_ptr().cast(), t.len());
            push_converted(l, EXT_BIGINT);
        }
        Item::Function(t) => {
            ffi::lua_pushlstring(l, t.as_ptr().cast(), t.len());
            push_converted(l, EXT_FUNCTION);
        }
    }
}

/// # Safety
/// As for [`push_item`].
unsafe fn push_proxy(l: *mut ffi::lua_State, id: TableId, reply: &Contents) {
    let view = reply.view(id);
    if view.is_some_and(|v| v.head.readonly) {
        // Read-only: the id itself (`ro_meta.rs`); the caller put the view
        // into the read-only cache.
        ffi::lua_pushlightuserdata(l, id.raw() as *mut c_void);
        return;
    }
    if ffi::lua_rawgeti(l, PROXIES, id.raw() as i64) != ffi::LUA_TNIL {
        return;
    }
    ffi::lua_pop(l, 1);
    let view = match view {
        Some(v) if v.head.complete => v,
        other => {
            // Known only by id (or too big to inline): the prelude's `make`
            // builds a proxy whose cache fetches on a miss.
            ffi::lua_pushvalue(l, MAKE);
            ffi::lua_pushinteger(l, id.raw() as i64);
            ffi::lua_pushboolean(l, 0);
            match other {
                Some(v) => ffi::lua_pushinteger(l, v.head.len),
                None => ffi::lua_pushnil(l),
            }
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_pushboolean(l, 0);
            ffi::lua_call(l, 5, 1);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawseti(l, PROXIES, id.raw() as i64);
            return;
        }
    };
    // D: the cache, complete; M: the table's own metatable; P: the proxy,
    // holding only its id.
    let (narr, nhash) = view.counts();
    ffi::lua_createtable(l, narr as c_int, nhash as c_int);
    let d = ffi::lua_gettop(l);
    ffi::lua_createtable(l, 0, 6);
    let set = |key: c_int, value: c_int| {
        ffi::lua_pushvalue(l, key);
        ffi::lua_pushvalue(l, value);
        ffi::lua_rawset(l, -3);
    };
    set(S_INDEX, d);
    set(S_NEWINDEX, NEWINDEX);
    set(S_LEN, LEN);
    set(S_PAIRS, PAIRS);
    set(S_NAME, S_EXTERNAL);
    ffi::lua_pushvalue(l, S_ID);
    ffi::lua_pushinteger(l, id.raw() as i64);
    ffi::lua_rawset(l, -3);
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushvalue(l, ID_KEY);
    ffi::lua_pushinteger(l, id.raw() as i64);
    ffi::lua_rawset(l, -3);
    ffi::lua_rotate(l, -2, 1);
    ffi::lua_setmetatable(l, -2);
    // Registered before the cache is filled, so a cycle among inlined
    // tables resolves to this proxy.
    ffi::lua_pushvalue(l, -1);
    ffi::lua_rawseti(l, PROXIES, id.raw() as i64);
    for (i, x) in view.array().enumerate() {
        if x != Item::Nil {
            push_item(l, x, reply);
            ffi::lua_rawseti(l, d, i as i64 + 1);
        }
    }
    for (k, x) in view.hash() {
        push_item(l, k, reply);
        push_item(l, x, reply);
        ffi::lua_rawset(l, d);
    }
    // Leave only P, where D was.
    ffi::lua_copy(l, -1, d);
    ffi::lua_settop(l, d);
}
