//! Writes to writable tables: buffered in order (`conn.rs` flushes them
//! before any read), a plain Lua table stored into a table reserved ahead
//! (so its id, and the proxy that caches it, are known at once), long
//! strings in pieces (`long.rs`).

use luapool_protocol::{Key, Literal, Reply, Request, TableId, Value, Write, LONG_STRING};
use mlua::{Lua, MultiValue, Table};

use super::super::error::ExtError;
use super::super::Ext;

/// The most empty tables reserved at once per arena.
const RESERVE_MAX: u32 = 256;

/// Whether a plain table's literal holds a long string, at any depth.
fn holds_long(array: &[Literal], hash: &[(Key, Literal)]) -> bool {
    array
        .iter()
        .chain(hash.iter().map(|(_, l)| l))
        .any(|l| match l {
            Literal::Value(Value::Str(s)) => s.len() > LONG_STRING,
            Literal::Table { array, hash } => holds_long(array, hash),
            Literal::Value(_) => false,
        })
}

/// About the bytes a literal adds to the write buffer.
fn literal_bytes(l: &Literal) -> usize {
    match l {
        Literal::Value(Value::Str(s)) => 16 + s.len(),
        Literal::Value(_) => 16,
        Literal::Table { array, hash } => {
            16 + array.iter().map(literal_bytes).sum::<usize>()
                + hash
                    .iter()
                    .map(|(_, l)| 16 + literal_bytes(l))
                    .sum::<usize>()
        }
    }
}

/// The entries of a plain table's literal, keyed.
fn entries(array: Vec<Literal>, hash: Vec<(Key, Literal)>) -> impl Iterator<Item = (Key, Literal)> {
    array
        .into_iter()
        .enumerate()
        .map(|(i, l)| (Key::Int(i as i64 + 1), l))
        .chain(hash)
}

impl Ext {
    /// `R.write(id, k, v)`: buffers `t[k] = v` and returns what the entry
    /// holds now, for the cache: `v` itself (a scalar, an external table of
    /// the target's arena), or for a plain Lua table the proxy of the new
    /// external table the store fills from it (a table reserved ahead, so
    /// its id is known at once; its cache is `v`'s entries when those are
    /// all cacheable as they are). Third result true: `v` is an external
    /// table of the other arena (session vs home), which the store copies
    /// under an id the worker learns by reading the entry back.
    pub(super) fn write(
        &self,
        lua: &Lua,
        id: i64,
        k: mlua::Value,
        v: mlua::Value,
    ) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        let key = super::super::key(&k)?;
        if let mlua::Value::String(s) = &v {
            if s.as_bytes().len() > LONG_STRING {
                self.write_long(table, key, &s.as_bytes())?;
                return Ok(MultiValue::from_vec(vec![v]));
            }
        }
        let (value, bytes) = match crate::convert::literal_of(lua, &self.values, &v) {
            Ok(x) => x,
            Err(e) => {
                return Err(ExtError::Value {
                    key,
                    message: e.to_string(),
                })
            }
        };
        // A reference within one arena is stored as it is; the store copies
        // anything else.
        let here = |lit: &Literal| match lit {
            Literal::Value(Value::Table(t)) => t.arena() == table.arena(),
            Literal::Value(_) => true,
            Literal::Table { .. } => false,
        };
        let (value, cached) = match value {
            Literal::Table { array, hash } => {
                let fresh = self.reserved(table)?;
                let whole = array.iter().chain(hash.iter().map(|(_, l)| l)).all(here);
                for (key, value) in entries(array, hash) {
                    self.send_entry(fresh, key, value)?;
                }
                let proxy = match &v {
                    mlua::Value::Table(t) if whole => self.make_filled(lua, fresh, t)?,
                    _ => self.writable.make(lua, fresh, false, false)?,
                };
                (
                    Literal::Value(Value::Table(fresh)),
                    mlua::Value::Table(proxy),
                )
            }
            value if here(&value) => (value, v),
            value => {
                self.link.write(Write { table, key, value }, bytes)?;
                return Ok(MultiValue::from_vec(vec![
                    mlua::Value::Nil,
                    mlua::Value::Nil,
                    mlua::Value::Boolean(true),
                ]));
            }
        };
        self.link.write(Write { table, key, value }, bytes)?;
        Ok(MultiValue::from_vec(vec![cached]))
    }

    /// `table[key] = value` for an entry of a plain table being stored: a
    /// buffered write, but a long string goes in pieces and a table that
    /// holds one is reserved and sent entry by entry, so that no message
    /// holds a long string.
    fn send_entry(&self, table: TableId, key: Key, value: Literal) -> Result<(), ExtError> {
        match value {
            Literal::Value(Value::Str(s)) if s.len() > LONG_STRING => {
                self.write_long(table, key, &s)
            }
            Literal::Table { array, hash } if holds_long(&array, &hash) => {
                let fresh = self.reserved(table)?;
                for (k, v) in entries(array, hash) {
                    self.send_entry(fresh, k, v)?;
                }
                let value = Literal::Value(Value::Table(fresh));
                self.link.write(Write { table, key, value }, 0)
            }
            value => {
                let bytes = literal_bytes(&value);
                self.link.write(Write { table, key, value }, bytes)
            }
        }
    }

    /// A new empty table of `like`'s arena, from those reserved ahead
    /// (asking the supervisor for more, more each time, when none is left).
    fn reserved(&self, like: TableId) -> Result<TableId, ExtError> {
        let arena = like.arena();
        let count = {
            let mut pool = self.writable.reserve.borrow_mut();
            let entry = pool.entry(arena).or_insert_with(|| (Vec::new(), 4));
            if let Some(id) = entry.0.pop() {
                return Ok(id);
            }
            let count = entry.1;
            entry.1 = (count * 2).min(RESERVE_MAX);
            count
        };
        match self.link.request(Request::Reserve { like, count }) {
            Ok(Reply::Reserved(mut ids))
                if !ids.is_empty() && ids.iter().all(|i| i.arena() == arena) =>
            {
                let first = ids.pop().expect("not empty");
                let mut pool = self.writable.reserve.borrow_mut();
                pool.entry(arena)
                    .or_insert_with(|| (Vec::new(), 4))
                    .0
                    .extend(ids);
                Ok(first)
            }
            // Perhaps the quota has room for one only.
            Err(ExtError::Refused { .. }) if count > 1 => {
                let mut pool = self.writable.reserve.borrow_mut();
                pool.entry(arena).or_insert_with(|| (Vec::new(), 1)).1 = 1;
                drop(pool);
                self.reserved(like)
            }
            Err(e) => Err(e),
            Ok(_) => Err(self.link.unexpected("expected reserved tables")),
        }
    }

    /// A proxy of `id`, cached whole with the entries of the plain table
    /// `src` (which the store was just sent as `id`'s contents).
    fn make_filled(&self, lua: &Lua, id: TableId, src: &Table) -> mlua::Result<Table> {
        let d = lua.create_table()?;
        for pair in src.pairs::<mlua::Value, mlua::Value>() {
            let (k, v) = pair?;
            d.raw_set(k, v)?;
        }
        self.writable.proxy(id, d, true, false)
    }
}
