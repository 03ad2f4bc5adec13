//! The Rust half of `table.insert/remove/move/sort` done whole on writable
//! external tables (`tablelib.rs` has the C functions, the prelude's
//! `MOVE`, `SORT_PREP` and `SORT_DONE` the Lua half): the store's move, and
//! the write-back of a sorted cache.

use std::ffi::c_int;
use std::rc::Rc;

use luapool_protocol::{Key, Literal, Request, TableId, Value, Write, LONG_STRING};
use mlua::{ffi, Lua, MultiValue, Table};

use super::super::error::ExtError;
use super::super::Ext;
use super::materialize::id_key;
use super::tablelib;

/// A value of a sorted cache, read from the Lua stack.
enum Cached {
    /// A value to store as it is.
    Value(Value),
    /// Anything else (no cache holds one): converted the ordinary way.
    Other,
}

/// Whether the values at `a` and `b` are the same stored value: raw
/// equality, but an integer and a float are never the same (the store
/// keeps `math.type`), and a NaN is itself.
///
/// # Safety
/// `a` and `b` are valid indices.
unsafe fn same(l: *mut ffi::lua_State, a: c_int, b: c_int) -> bool {
    if ffi::lua_type(l, a) == ffi::LUA_TNUMBER && ffi::lua_type(l, b) == ffi::LUA_TNUMBER {
        let (ia, ib) = (ffi::lua_isinteger(l, a) != 0, ffi::lua_isinteger(l, b) != 0);
        return match (ia, ib) {
            (true, true) => ffi::lua_tointeger(l, a) == ffi::lua_tointeger(l, b),
            (false, false) => {
                let x = ffi::lua_tonumber(l, a).to_bits();
                x == ffi::lua_tonumber(l, b).to_bits()
            }
            _ => false,
        };
    }
    ffi::lua_rawequal(l, a, b) != 0
}

/// The value at `idx` as the store takes it, if it is one a cache holds.
///
/// # Safety
/// `idx` is a valid index; one stack slot is free. Raises nothing.
unsafe fn cached(l: *mut ffi::lua_State, idx: c_int) -> Cached {
    Cached::Value(match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL => Value::Nil,
        ffi::LUA_TBOOLEAN => Value::Bool(ffi::lua_toboolean(l, idx) != 0),
        ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => {
            Value::Int(ffi::lua_tointeger(l, idx))
        }
        ffi::LUA_TNUMBER => Value::Float(ffi::lua_tonumber(l, idx)),
        ffi::LUA_TSTRING => {
            let mut n = 0;
            let p = ffi::lua_tolstring(l, idx, &mut n);
            Value::Str(std::slice::from_raw_parts(p.cast::<u8>(), n).to_vec())
        }
        // A read-only table: its pointer is its id.
        ffi::LUA_TLIGHTUSERDATA => {
            Value::Table(TableId::from_raw(ffi::lua_touserdata(l, idx) as u64))
        }
        ffi::LUA_TTABLE => {
            let id = match ffi::lua_rawgetp(l, idx, id_key().0) {
                ffi::LUA_TNUMBER => Some(ffi::lua_tointeger(l, -1)),
                _ => None,
            };
            ffi::lua_pop(l, 1);
            match id {
                Some(id) => Value::Table(TableId::from_raw(id as u64)),
                None => return Cached::Other,
            }
        }
        _ => return Cached::Other,
    })
}

impl Ext {
    /// `R.move(id, first, last, to)`: the store's `table.move` within the
    /// table, sent without waiting for its reply.
    fn move_keys(&self, id: i64, first: i64, last: i64, to: i64) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        self.link.send_unanswered(Request::Move {
            table,
            first,
            last,
            to,
        })?;
        Ok(MultiValue::new())
    }

    /// `R.sort_done(id, d, before, n)`: writes `d[i]` for every `i` in
    /// `1..=n` whose value is not `before[i]` (the cache of table `id`,
    /// sorted, and a copy of it made before).
    fn sort_done(
        &self,
        lua: &Lua,
        id: i64,
        d: Table,
        before: Table,
        n: i64,
    ) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        let mut changed: Vec<(i64, Value)> = Vec::new();
        let mut other: Vec<i64> = Vec::new();
        // SAFETY: two slots used at a time, popped each round; nothing here
        // raises (raw reads, no metamethods), and the vectors live in this
        // frame, not the closure's.
        unsafe {
            lua.exec_raw::<()>((&d, &before), |l| {
                for i in 1..=n {
                    ffi::lua_rawgeti(l, 1, i);
                    ffi::lua_rawgeti(l, 2, i);
                    if !same(l, -2, -1) {
                        match cached(l, -2) {
                            Cached::Value(v) => changed.push((i, v)),
                            Cached::Other => other.push(i),
                        }
                    }
                    ffi::lua_pop(l, 2);
                }
            })?;
        }
        for (i, value) in changed {
            let key = Key::Int(i);
            match value {
                Value::Str(s) if s.len() > LONG_STRING => self.write_long(table, key, &s)?,
                value => {
                    let bytes = 16
                        + if let Value::Str(s) = &value {
                            s.len()
                        } else {
                            0
                        };
                    let value = Literal::Value(value);
                    self.link.write(Write { table, key, value }, bytes)?;
                }
            }
        }
        for i in other {
            let v: mlua::Value = d.raw_get(i)?;
            self.write(lua, id, mlua::Value::Integer(i), v)?;
        }
        Ok(MultiValue::new())
    }

    /// Registers `R.move` and `R.sort_done`, and replaces the table
    /// library's functions by those of `tablelib.rs` over the prelude's
    /// helpers (`R.bulk`).
    pub(super) fn install_bulk(self: &Rc<Ext>, lua: &Lua, r: &Table) -> mlua::Result<()> {
        super::callbacks::register(lua, r, self, "move", |e, _, (id, f, l, t)| {
            e.move_keys(id, f, l, t)
        })?;
        super::callbacks::register(lua, r, self, "sort_done", |e, lua, (id, d, b, n)| {
            e.sort_done(lua, id, d, b, n)
        })?;
        let bulk: Table = r.raw_get("bulk")?;
        let table_lib: Table = lua.globals().raw_get("table")?;
        tablelib::install(lua, &table_lib, &bulk)
    }
}
