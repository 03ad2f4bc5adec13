//! Writable external tables (`_io`, `_home`, `ext.table()`): Lua proxies
//! over a per-table cache, as `prelude.lua` lays them out. This side
//! fetches into a cache (`materialize.rs` builds the values in bulk),
//! answers `#`, walks by batches and makes new tables; `write.rs` buffers
//! writes, `bulk.rs` moves and sorts whole arrays, `callbacks.rs` hands it
//! all to the prelude.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use luapool_protocol::hot::{self, Contents, HotReply};
use luapool_protocol::{Key, Reply, Request, TableId};
use mlua::{Lua, MultiValue, Table};

use super::conn::Conn;
use super::error::ExtError;
use super::{Ext, Got};

mod bulk;
mod callbacks;
mod materialize;
mod tablelib;
mod write;

pub use materialize::{id_key, Fns};

use materialize::Target;

/// Keys of an array fetched per request when a loop walks it.
const WINDOW: i64 = 1024;
/// Tables at most this long are fetched key by key, not by window.
pub(super) const SMALL: i64 = 32;
/// Entries cached per table before its cache is dropped and refilled. The
/// tables a fetch brings along count with their entries, so a window of
/// 1024 two-field records counts 4096: the cache of an array of records
/// holds about 4 windows (~5 MiB of Lua heap), of plain values 16.
const CACHE_LIMIT: i64 = 16 * 1024;
/// Bytes of a reply counted as one entry against [`CACHE_LIMIT`]: a
/// partial cache holds about 16 MiB of strings at most.
const CACHE_BYTES_PER_ENTRY: usize = 1024;

/// The state of the writable tables of the running compute.
#[derive(Default)]
pub struct Writable {
    /// id → proxy, weak-valued; replaced per compute.
    proxies: RefCell<Option<Table>>,
    /// Per arena: empty tables reserved for plain tables a script stores,
    /// and how many to ask for next (`write.rs`).
    reserve: RefCell<HashMap<u32, (Vec<TableId>, u32)>>,
    fns: OnceCell<Fns>,
}

impl Writable {
    pub(super) fn set_fns(&self, fns: Fns) {
        let _ = self.fns.set(fns);
    }

    fn fns(&self) -> &Fns {
        self.fns.get().expect("set_fns() runs before any compute")
    }

    /// Forgets the previous compute's proxies and reserved tables.
    pub(super) fn begin(&self, lua: &Lua) -> mlua::Result<()> {
        self.reserve.borrow_mut().clear();
        let proxies = lua.create_table()?;
        let mt = lua.create_table()?;
        mt.raw_set("__mode", "v")?;
        proxies.set_metatable(Some(mt))?;
        *self.proxies.borrow_mut() = Some(proxies);
        Ok(())
    }

    fn proxies(&self) -> Table {
        self.proxies
            .borrow()
            .clone()
            .expect("begin() runs before any compute")
    }

    /// A proxy of table `id`, registered for identity; its cache `d` holds
    /// every entry when `complete` (then `d` has no metatable).
    fn proxy(&self, id: TableId, d: Table, complete: bool, io: bool) -> mlua::Result<Table> {
        let len = if complete { Some(0) } else { None };
        let p: Table = self
            .fns()
            .make
            .call((id.raw() as i64, complete, len, d, io))?;
        self.proxies().raw_set(id.raw() as i64, &p)?;
        Ok(p)
    }

    /// A proxy with an empty cache: complete (a new table) or fetching on
    /// a miss.
    pub(super) fn make(
        &self,
        lua: &Lua,
        id: TableId,
        complete: bool,
        io: bool,
    ) -> mlua::Result<Table> {
        self.proxy(id, lua.create_table()?, complete, io)
    }
}

impl Ext {
    /// Sends a request whose reply carries table contents (`Fetched`,
    /// `Entries`) and reads it in place; the read-only tables it describes
    /// also go into the read-only cache.
    fn contents<'c>(
        &self,
        conn: &'c mut Conn,
        req: Request,
    ) -> Result<Got<Contents<'c>>, ExtError> {
        let bytes = self.link.request_raw(conn, req)?;
        let reply = match hot::read(bytes) {
            Ok(Some(HotReply::Fetched(reply) | HotReply::Entries(reply))) => reply,
            Ok(_) => {
                return match self.link.other(bytes)? {
                    Reply::Long { key, len } => Ok(Got::Long(key, len)),
                    _ => Err(self.link.unexpected("expected table contents")),
                }
            }
            Err(_) => return Err(self.link.unexpected("malformed table contents")),
        };
        if reply.any_readonly {
            self.readonly.cache.borrow_mut().add_views(&reply);
        }
        Ok(Got::Value(reply))
    }

    /// `R.fetch(m, d, k)`: a cache miss on the table whose metatable is
    /// `m` and whose cache is `d`: fetches the key, or the window of the
    /// array holding it, into the cache and returns the value.
    fn fetch(&self, lua: &Lua, m: Table, d: Table, k: mlua::Value) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(m.raw_get::<i64>("lp_id")? as u64);
        let Ok(key) = super::key(&k) else {
            return Ok(MultiValue::new()); // t[nil], t[0/0]: nil, as in Lua
        };
        let len: Option<i64> = m.raw_get("lp_len")?;
        let mut window = match (&key, len) {
            (Key::Int(i), Some(n)) if n > SMALL && *i >= 1 && *i <= n => {
                let start = (*i - 1) / WINDOW * WINDOW + 1;
                Some((start, (n - start + 1).min(WINDOW), n))
            }
            _ => None,
        };
        loop {
            let req = match window {
                Some((start, count, _)) => Request::GetRange {
                    table,
                    start,
                    count: count as u32,
                },
                None => Request::Get {
                    table,
                    key: key.clone(),
                },
            };
            let mut conn = self.link.conn();
            let reply = match self.contents(&mut conn, req)? {
                Got::Value(reply) => reply,
                Got::Long(at, n) if at == key => {
                    drop(conn);
                    // Not cached: the store keeps it (and a cache of a
                    // table made this compute never misses).
                    let s = self.long_string(lua, table, at, n)?;
                    return Ok(MultiValue::from_vec(vec![mlua::Value::String(s)]));
                }
                Got::Long(..) => {
                    // A long string opens the window: ask for the key alone.
                    window = None;
                    continue;
                }
            };
            if let (Some((start, _, n)), Key::Int(i)) = (window, &key) {
                if *i - start >= reply.len() as i64 {
                    // The window ended early (its byte budget): one from the key.
                    window = Some((*i, (n - *i + 1).min(WINDOW), n));
                    continue;
                }
            }
            // What the cache takes on: entries, and bytes (a big string
            // counts as many entries), so a partial cache stays small.
            let count = (reply.len() + reply.inlined + reply.bytes / CACHE_BYTES_PER_ENTRY) as i64;
            let mut d = d;
            let mut cached: i64 = m.raw_get::<Option<i64>>("lp_n")?.unwrap_or(0);
            // Only a partial cache is dropped (a whole one has no way to
            // refill), and not while a sort works on it (`bulk.rs`).
            let partial = m.raw_get::<Option<bool>>("lp_incomplete")?.unwrap_or(false);
            let pinned = m.raw_get::<Option<bool>>("lp_pinned")?.unwrap_or(false);
            if partial && !pinned && cached + count > CACHE_LIMIT {
                // Drop the old cache: its proxies stay reachable by id while Lua holds them.
                let fresh = lua.create_table()?;
                fresh.set_metatable(d.metatable())?;
                m.raw_set("__index", &fresh)?;
                d = fresh;
                cached = 0;
            }
            let target = match (window, &key) {
                (Some((start, _, _)), Key::Int(want)) => Target::Range { start, want: *want },
                _ => Target::Key(&k),
            };
            let w = &self.writable;
            let result = materialize::fill(lua, &w.proxies(), &d, w.fns(), &reply, target)?;
            drop(conn);
            m.raw_set("lp_n", cached + count)?;
            return Ok(MultiValue::from_vec(vec![result]));
        }
    }

    /// `R.get(id, k)`: `t[k]` alone from the supervisor (no window, and
    /// not cached: for `table.remove`, whose cache is dropped next).
    fn get(&self, lua: &Lua, id: i64, k: mlua::Value) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        let Ok(key) = super::key(&k) else {
            return Ok(MultiValue::new());
        };
        let mut conn = self.link.conn();
        let req = Request::Get {
            table,
            key: key.clone(),
        };
        let v = match self.contents(&mut conn, req)? {
            Got::Value(reply) => {
                let w = &self.writable;
                let scratch = lua.create_table()?;
                let target = Target::Key(&k);
                materialize::fill(lua, &w.proxies(), &scratch, w.fns(), &reply, target)?
            }
            Got::Long(key, n) => {
                drop(conn);
                mlua::Value::String(self.long_string(lua, table, key, n)?)
            }
        };
        Ok(MultiValue::from_vec(vec![v]))
    }

    /// `R.len(id)`: a border of the table, from the supervisor.
    fn len(&self, id: i64) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        match self.link.request(Request::Len { table })? {
            Reply::Len(n) => Ok(MultiValue::from_vec(vec![mlua::Value::Integer(n)])),
            _ => Err(self.link.unexpected("expected a length")),
        }
    }

    /// `R.next_batch(id, after, limit)` → keys, values, n, done: up to
    /// `limit` entries after `after`, from the supervisor.
    fn next_batch(
        &self,
        lua: &Lua,
        id: i64,
        after: mlua::Value,
        limit: u32,
    ) -> Result<MultiValue, ExtError> {
        let table = TableId::from_raw(id as u64);
        let after = match after {
            mlua::Value::Nil => None,
            k => Some(super::key(&k)?),
        };
        let mut conn = self.link.conn();
        let next = Request::Next {
            table,
            after,
            limit,
        };
        let (keys, vals, n, done) = match self.contents(&mut conn, next)? {
            Got::Value(reply) => {
                let w = &self.writable;
                let (keys, vals) = materialize::entries(lua, &w.proxies(), w.fns(), &reply)?;
                (keys, vals, reply.len() as i64, reply.done)
            }
            Got::Long(key, n) => {
                drop(conn);
                let s = self.long_string(lua, table, key.clone(), n)?;
                let keys = lua.create_sequence_from([key_value(lua, &key)?])?;
                let vals = lua.create_sequence_from([s])?;
                (keys, vals, 1, false)
            }
        };
        Ok(MultiValue::from_vec(vec![
            mlua::Value::Table(keys),
            mlua::Value::Table(vals),
            mlua::Value::Integer(n),
            mlua::Value::Boolean(done),
        ]))
    }

    /// `R.new_table()`, behind `ext.table()`: a new, empty, writable
    /// external table.
    pub fn new_table(&self, lua: &Lua) -> Result<Table, ExtError> {
        match self.link.request(Request::NewTable)? {
            Reply::NewTable(id) => Ok(self.writable.make(lua, id, true, false)?),
            _ => Err(self.link.unexpected("expected a new table")),
        }
    }
}

/// A key as a Lua value.
fn key_value(lua: &Lua, key: &Key) -> mlua::Result<mlua::Value> {
    Ok(match key {
        Key::Int(i) => mlua::Value::Integer(*i),
        Key::Str(s) => mlua::Value::String(lua.create_string(s)?),
        Key::Bool(b) => mlua::Value::Boolean(*b),
        Key::Float(bits) => mlua::Value::Number(f64::from_bits(*bits)),
    })
}
