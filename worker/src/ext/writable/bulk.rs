//! `table.insert`, `table.remove`, `table.move` and `table.sort` on
//! writable external tables as whole operations.

use std::rc::Rc;

use mlua::{Lua, Table};

use super::super::Ext;

impl Ext {
    /// Registers the bulk operations in `R`.
    pub(super) fn install_bulk(self: &Rc<Ext>, _lua: &Lua, _r: &Table) -> mlua::Result<()> {
        Ok(())
    }
}
