//! The Rust callbacks the prelude calls (its table `R`). Each returns its
//! values, or `nil, message, memory` for an [`ExtError`] (see
//! `error.rs`), which the prelude raises at the script's line.

use std::rc::Rc;

use mlua::{FromLuaMulti, Lua, MultiValue, Table};

use super::super::error::{to_lua, ExtError};
use super::super::Ext;

/// Registers `f` as `R[name]`, its errors handed back as values.
pub(super) fn register<A: FromLuaMulti + 'static>(
    lua: &Lua,
    r: &Table,
    ext: &Rc<Ext>,
    name: &str,
    f: impl Fn(&Ext, &Lua, A) -> Result<MultiValue, ExtError> + 'static,
) -> mlua::Result<()> {
    let e = ext.clone();
    r.raw_set(
        name,
        lua.create_function(move |lua, args: A| to_lua(lua, f(&e, lua, args)))?,
    )
}

impl Ext {
    /// Fills the table `R` the prelude received with the Rust callbacks.
    pub fn install(self: &Rc<Ext>, lua: &Lua, r: &Table) -> mlua::Result<()> {
        register(lua, r, self, "fetch", |e, lua, (m, d, k)| {
            e.fetch(lua, m, d, k)
        })?;
        register(lua, r, self, "write", |e, lua, (id, k, v)| {
            e.write(lua, id, k, v)
        })?;
        register(lua, r, self, "len", |e, _, id| e.len(id))?;
        register(lua, r, self, "get", |e, lua, (id, k)| e.get(lua, id, k))?;
        register(lua, r, self, "new_table", |e, lua, ()| {
            let t = e.new_table(lua)?;
            Ok(MultiValue::from_vec(vec![mlua::Value::Table(t)]))
        })?;
        register(lua, r, self, "next_batch", |e, lua, (id, after, limit)| {
            e.next_batch(lua, id, after, limit)
        })?;
        self.install_bulk(lua, r)
    }
}
