//! The Rust half of external tables: fetching entries into a proxy's cache,
//! buffering writes, lengths and batched iteration. The Lua half is
//! `prelude.lua`; see it for how a proxy is laid out.

use std::cell::{Cell as StdCell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use luapool_protocol::{
    decode, Key, Literal, Reply, Request, TableId, ToWorker, Value, Write, LONG_STRING,
};
use mlua::{Lua, MultiValue, Table};

use crate::conn::{Conn, ConnError, MAX_AHEAD};
use crate::convert::{key_of, literal_of};
use crate::materialize::{self, Fns, Target};
use crate::ro_cache::{Cell, LKey, RoCache, Values};
use luapool_protocol::hot::{self, Contents, HotReply};

mod long;
pub use long::push_long_or_raise;

/// Keys of an array fetched per request when a loop walks it.
const WINDOW: i64 = 1024;
/// The same for a read-only array. Smaller, so that a window of small
/// records (~50 bytes each) fits the ring whole: the next one, fetched
/// ahead while Lua walks this one, then waits in the ring, and the
/// supervisor is not left blocked halfway through sending it.
const RO_WINDOW: i64 = 512;
/// Tables at most this long are fetched key by key, not by window.
const SMALL: i64 = 32;
/// Entries cached per table before its cache is dropped and refilled. The
/// tables a fetch brings along count with their entries, so a window of
/// 1024 two-field records counts 4096: the cache of an array of records
/// holds about 4 windows (~5 MiB of Lua heap), of plain values 16.
const CACHE_LIMIT: i64 = 16 * 1024;
/// Bytes of a reply counted as one entry against [`CACHE_LIMIT`]: a
/// partial cache holds about 16 MiB of strings at most.
const CACHE_BYTES_PER_ENTRY: usize = 1024;
/// The most empty tables reserved at once per arena (see [`Ext::write`]).
const RESERVE_MAX: u32 = 256;

/// State shared by the Rust callbacks of the external-table layer.
pub struct Ext {
    /// The connection to the supervisor.
    pub conn: RefCell<Conn>,
    /// Set when the ring broke mid-compute: the worker must exit after it.
    pub fatal: RefCell<Option<ConnError>>,
    /// id → proxy of writable tables, weak-valued; replaced per compute.
    proxies: RefCell<Option<Table>>,
    /// The contents of read-only tables read this compute (`ro_meta.rs`).
    pub ro: RefCell<RoCache>,
    /// How far windows of a read-only array were asked for ahead: the
    /// table and the first key not asked for yet.
    ahead_end: StdCell<(TableId, i64)>,
    /// Per arena: empty tables reserved for plain tables a script stores,
    /// and how many to ask for next.
    reserve: RefCell<HashMap<u32, (Vec<TableId>, u32)>>,
    /// The long string being read (see `long.rs`).
    long_key: RefCell<Option<(TableId, Key)>>,
    fns: OnceCell<Fns>,
}

/// A reply to a read that carries no table contents.
#[derive(Debug)]
pub enum Other {
    /// The supervisor refused (or the ring broke): the Lua error's message.
    Refused(String),
    /// The value is a string longer than `LONG_STRING`: its key and length.
    Long(Key, u64),
}

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

/// A key as a Lua value.
fn key_value(lua: &Lua, key: &Key) -> mlua::Result<mlua::Value> {
    Ok(match key {
        Key::Int(i) => mlua::Value::Integer(*i),
        Key::Str(s) => mlua::Value::String(lua.create_string(s)?),
        Key::Bool(b) => mlua::Value::Boolean(*b),
        Key::Float(bits) => mlua::Value::Number(f64::from_bits(*bits)),
    })
}

/// The result a callback hands back to Lua: values, or (nil, message).
fn lua_err(lua: &Lua, msg: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![
        mlua::Value::Nil,
        mlua::Value::String(lua.create_string(msg)?),
    ]))
}

impl Ext {
    /// Builds the shared state; [`set_fns`](Self::set_fns) completes it.
    pub fn new(conn: Conn) -> Rc<Ext> {
        Rc::new(Ext {
            conn: RefCell::new(conn),
            fatal: RefCell::new(None),
            proxies: RefCell::new(None),
            ro: RefCell::new(RoCache::default()),
            ahead_end: StdCell::new((TableId::default(), 0)),
            reserve: RefCell::new(HashMap::new()),
            long_key: RefCell::new(None),
            fns: OnceCell::new(),
        })
    }

    /// Hands over the prelude's functions (the prelude itself needs the
    /// read-only functions, which need this `Ext`, so they come second).
    pub fn set_fns(&self, fns: Fns) {
        let _ = self.fns.set(fns);
    }

    fn fns(&self) -> &Fns {
        self.fns.get().expect("set_fns() runs before any compute")
    }

    fn make(&self, lua: &Lua, id: TableId, complete: bool, io: bool) -> mlua::Result<Table> {
        let d = lua.create_table()?;
        let len = if complete {
            mlua::Value::Integer(0)
        } else {
            mlua::Value::Nil
        };
        let p: Table = self
            .fns()
            .make
            .call((id.raw() as i64, complete, len, d, io))?;
        self.proxies().raw_set(id.raw() as i64, &p)?;
        Ok(p)
    }

    /// Starts a compute: forgets every proxy and cached table of the
    /// previous one (between computes the store may reuse ids).
    pub fn begin(&self, lua: &Lua) -> mlua::Result<()> {
        self.ro.borrow_mut().clear();
        self.ahead_end.set((TableId::default(), 0));
        self.reserve.borrow_mut().clear();
        loop {
            match self.conn.borrow_mut().take_ahead() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(self.die(e)),
            }
        }
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

    /// A proxy for a table known only by id (its contents are fetched on use).
    pub fn bare(&self, lua: &Lua, id: TableId, io: bool) -> mlua::Result<Table> {
        self.make(lua, id, false, io)
    }

    /// Sends a request; a broken ring becomes a fatal error for the compute.
    fn request(&self, req: Request) -> mlua::Result<Reply> {
        let r = self.conn.borrow_mut().request(req);
        r.map_err(|e| self.die(e))
    }

    /// Sends a request whose reply carries table contents (`Fetched`,
    /// `Entries`) and reads it in place; the read-only tables it describes
    /// also go into the read-only cache. `Ok(Err(message))`: the supervisor
    /// refused, which the script sees as a Lua error, or the value is a
    /// long string.
    fn request_contents<'c>(
        &self,
        conn: &'c mut Conn,
        req: Request,
    ) -> mlua::Result<Result<Contents<'c>, Other>> {
        let bytes = match self.send_for_contents(conn, req)? {
            Ok(bytes) => bytes,
            Err(message) => return Ok(Err(Other::Refused(message))),
        };
        let reply = match hot::read(bytes) {
            Ok(Some(HotReply::Fetched(reply) | HotReply::Entries(reply))) => reply,
            Ok(_) => return Ok(Err(self.other(bytes)?)),
            Err(_) => return Err(self.die(ConnError::Unexpected("malformed table contents"))),
        };
        // The read-only tables it describes go into the read-only cache too.
        if reply.any_readonly {
            self.ro.borrow_mut().add_views(&reply);
        }
        Ok(Ok(reply))
    }

    /// [`request_contents`](Self::request_contents) for a read-only table:
    /// the reply goes into the read-only cache only, `values` saying where
    /// its values go. Returns the cell index of the first value and how
    /// many there are. Runs no Lua code; `Err`: the error to raise (the
    /// ring broke, or the supervisor refused) or a long string to read.
    fn request_ro(
        &self,
        conn: &mut Conn,
        req: Request,
        values: Values,
    ) -> Result<(u32, usize), Other> {
        let bytes = match self.send_for_contents(conn, req) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(message)) => return Err(Other::Refused(message)),
            Err(e) => return Err(Other::Refused(e.to_string())),
        };
        let added = self.ro.borrow_mut().add(bytes, values);
        match added {
            Ok(Some(got)) => Ok(got),
            Ok(None) => Err(self
                .other(bytes)
                .unwrap_or_else(|e| Other::Refused(e.to_string()))),
            Err(_) => Err(Other::Refused(
                self.die(ConnError::Unexpected("malformed table contents"))
                    .to_string(),
            )),
        }
    }

    /// Sends `req` and returns its reply's bytes, or the message of a failed
    /// flush of buffered writes.
    fn send_for_contents<'c>(
        &self,
        conn: &'c mut Conn,
        req: Request,
    ) -> mlua::Result<Result<&'c [u8], String>> {
        match conn.request_raw(req) {
            Ok(Ok(bytes)) => Ok(Ok(bytes)),
            Ok(Err(Reply::Error(e))) => Ok(Err(e.message)),
            Ok(Err(_)) => Err(self.die(ConnError::Unexpected("expected Ok after writes"))),
            Err(e) => Err(self.die(e)),
        }
    }

    /// A reply that should have carried table contents and is the
    /// supervisor's refusal, or a long string, instead.
    fn other(&self, bytes: &[u8]) -> mlua::Result<Other> {
        match decode::<ToWorker>(bytes) {
            Ok(ToWorker::Reply(Reply::Error(e))) => Ok(Other::Refused(e.message)),
            Ok(ToWorker::Reply(Reply::Long { key, len })) => Ok(Other::Long(key, len)),
            _ => Err(self.die(ConnError::Unexpected("expected table contents"))),
        }
    }

    fn die(&self, e: ConnError) -> mlua::Error {
        let msg = format!("luapool: lost the supervisor: {e}");
        *self.fatal.borrow_mut() = Some(e);
        mlua::Error::runtime(msg)
    }

    /// `R.fetch(m, d, k)`: a cache miss on the table whose metatable is `m`.
    fn fetch(&self, lua: &Lua, m: Table, d: Table, k: mlua::Value) -> mlua::Result<MultiValue> {
        let table = TableId::from_raw(m.raw_get::<i64>("lp_id")? as u64);
        let Ok(key) = key_of(&k) else {
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
            let mut conn = self.conn.borrow_mut();
            let reply = match self.request_contents(&mut conn, req)? {
                Ok(reply) => reply,
                Err(Other::Refused(message)) => return lua_err(lua, message),
                Err(Other::Long(at, n)) if at == key => {
                    drop(conn);
                    let s = match self.long_string(lua, table, at, n)? {
                        Ok(s) => s,
                        Err(message) => return lua_err(lua, message),
                    };
                    // Not cached: the store keeps it (and a cache of a
                    // table made this compute never misses).
                    return Ok(MultiValue::from_vec(vec![mlua::Value::String(s)]));
                }
                Err(Other::Long(..)) => {
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
            // Only a partial cache is dropped: a whole one has no way to refill.
            let partial = m.raw_get::<Option<bool>>("lp_incomplete")?.unwrap_or(false);
            if partial && cached + count > CACHE_LIMIT {
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
            let result = materialize::fill(lua, &self.proxies(), &d, self.fns(), &reply, target)?;
            drop(conn);
            m.raw_set("lp_n", cached + count)?;
            return Ok(MultiValue::from_vec(vec![result]));
        }
    }

    /// `R.write(id, k, v)`: buffers `t[k] = v` and returns what the entry
    /// holds now, for the cache: `v` itself (a scalar, an external table of
    /// the target's arena), or for a plain Lua table the proxy of the new
    /// external table the store fills from it (a table reserved ahead, so
    /// its id is known at once; its cache is `v`'s entries when those are
    /// all cacheable as they are). Third result true: `v` is an external
    /// table of the other arena (session vs home), which the store copies
    /// under an id the worker learns by reading the entry back.
    fn write(
        &self,
        lua: &Lua,
        id: i64,
        k: mlua::Value,
        v: mlua::Value,
    ) -> mlua::Result<MultiValue> {
        let table = TableId::from_raw(id as u64);
        let key = match key_of(&k) {
            Ok(key) => key,
            Err(e) => return lua_err(lua, format!("invalid key for an external table: {e}")),
        };
        if let mlua::Value::String(s) = &v {
            if s.as_bytes().len() > LONG_STRING {
                return match self.write_long(table, key, &s.as_bytes())? {
                    Some(message) => lua_err(lua, message),
                    None => Ok(MultiValue::from_vec(vec![v])),
                };
            }
        }
        let (value, bytes) = match literal_of(&v) {
            Ok(x) => x,
            Err(e) => return lua_err(lua, format!("cannot assign to key {key}: {e}")),
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
                let fresh = match self.reserved(table)? {
                    Ok(fresh) => fresh,
                    Err(message) => return lua_err(lua, message),
                };
                let whole = array.iter().chain(hash.iter().map(|(_, l)| l)).all(here);
                let entries = array
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| (Key::Int(i as i64 + 1), l))
                    .chain(hash);
                for (key, value) in entries {
                    if let Some(message) = self.send_entry(fresh, key, value)? {
                        return lua_err(lua, message);
                    }
                }
                let proxy = match &v {
                    mlua::Value::Table(t) if whole => self.make_filled(lua, fresh, t)?,
                    _ => self.bare(lua, fresh, false)?,
                };
                (
                    Literal::Value(Value::Table(fresh)),
                    mlua::Value::Table(proxy),
                )
            }
            value if here(&value) => (value, v),
            value => {
                let w = Write { table, key, value };
                if let Some(message) = self.buffer(w, bytes)? {
                    return lua_err(lua, message);
                }
                return Ok(MultiValue::from_vec(vec![
                    mlua::Value::Nil,
                    mlua::Value::Nil,
                    mlua::Value::Boolean(true),
                ]));
            }
        };
        let w = Write { table, key, value };
        match self.buffer(w, bytes)? {
            Some(message) => lua_err(lua, message),
            None => Ok(MultiValue::from_vec(vec![cached])),
        }
    }

    /// `table[key] = value` for an entry of a plain table being stored: a
    /// buffered write, but a long string goes in pieces and a table that
    /// holds one is reserved and sent entry by entry, so that no message
    /// holds a long string. `Some(message)`: refused.
    fn send_entry(&self, table: TableId, key: Key, value: Literal) -> mlua::Result<Option<String>> {
        match value {
            Literal::Value(Value::Str(s)) if s.len() > LONG_STRING => {
                self.write_long(table, key, &s)
            }
            Literal::Table { array, hash } if holds_long(&array, &hash) => {
                let fresh = match self.reserved(table)? {
                    Ok(fresh) => fresh,
                    Err(message) => return Ok(Some(message)),
                };
                let entries = array
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| (Key::Int(i as i64 + 1), l))
                    .chain(hash);
                for (k, v) in entries {
                    if let Some(message) = self.send_entry(fresh, k, v)? {
                        return Ok(Some(message));
                    }
                }
                let w = Write {
                    table,
                    key,
                    value: Literal::Value(Value::Table(fresh)),
                };
                self.buffer(w, 0)
            }
            value => {
                let bytes = literal_bytes(&value);
                self.buffer(Write { table, key, value }, bytes)
            }
        }
    }

    /// Buffers a write; `Some(message)`: a flush it forced was refused.
    fn buffer(&self, w: Write, bytes: usize) -> mlua::Result<Option<String>> {
        let r = self.conn.borrow_mut().write(w, bytes);
        match r.map_err(|e| self.die(e))? {
            Some(Reply::Error(e)) => Ok(Some(e.message)),
            _ => Ok(None),
        }
    }

    /// A new empty table of `like`'s arena, from those reserved ahead
    /// (asking the supervisor for more, more each time, when none is left).
    fn reserved(&self, like: TableId) -> mlua::Result<Result<TableId, String>> {
        let arena = like.arena();
        let mut pool = self.reserve.borrow_mut();
        let entry = pool.entry(arena).or_insert_with(|| (Vec::new(), 4));
        if let Some(id) = entry.0.pop() {
            return Ok(Ok(id));
        }
        let count = entry.1;
        entry.1 = (count * 2).min(RESERVE_MAX);
        drop(pool);
        match self.request(Request::Reserve { like, count })? {
            Reply::Reserved(mut ids)
                if !ids.is_empty() && ids.iter().all(|i| i.arena() == arena) =>
            {
                let first = ids.pop().expect("not empty");
                self.reserve
                    .borrow_mut()
                    .entry(arena)
                    .or_insert_with(|| (Vec::new(), 4))
                    .0
                    .extend(ids);
                Ok(Ok(first))
            }
            Reply::Error(e) if count > 1 => {
                // Perhaps the quota has room for one only.
                let _ = e;
                self.reserve
                    .borrow_mut()
                    .entry(arena)
                    .or_insert_with(|| (Vec::new(), 1))
                    .1 = 1;
                self.reserved(like)
            }
            Reply::Error(e) => Ok(Err(e.message)),
            _ => Err(self.die(ConnError::Unexpected("expected reserved tables"))),
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
        let p: Table = self
            .fns()
            .make
            .call((id.raw() as i64, true, mlua::Value::Nil, d, false))?;
        self.proxies().raw_set(id.raw() as i64, &p)?;
        Ok(p)
    }

    /// `R.len(id)`: a border of the table, from the supervisor.
    fn len(&self, lua: &Lua, id: i64) -> mlua::Result<MultiValue> {
        match self.request(Request::Len {
            table: TableId::from_raw(id as u64),
        })? {
            Reply::Len(n) => Ok(MultiValue::from_vec(vec![mlua::Value::Integer(n)])),
            Reply::Error(e) => lua_err(lua, e.message),
            _ => Err(self.die(ConnError::Unexpected("expected a length"))),
        }
    }

    /// `R.next_batch(id, after, limit)` → keys, values, n, done [, err].
    fn next_batch(
        &self,
        lua: &Lua,
        id: i64,
        after: mlua::Value,
        limit: u32,
    ) -> mlua::Result<MultiValue> {
        let after = if after.is_nil() {
            None
        } else {
            match key_of(&after) {
                Ok(k) => Some(k),
                Err(e) => return self.batch_err(lua, e),
            }
        };
        let mut conn = self.conn.borrow_mut();
        let next = Request::Next {
            table: TableId::from_raw(id as u64),
            after,
            limit,
        };
        let reply = match self.request_contents(&mut conn, next)? {
            Ok(reply) => reply,
            Err(Other::Refused(message)) => return self.batch_err(lua, message),
            Err(Other::Long(key, n)) => {
                drop(conn);
                let s = match self.long_string(lua, TableId::from_raw(id as u64), key.clone(), n)? {
                    Ok(s) => s,
                    Err(message) => return self.batch_err(lua, message),
                };
                let keys = lua.create_sequence_from([key_value(lua, &key)?])?;
                let vals = lua.create_sequence_from([s])?;
                return Ok(MultiValue::from_vec(vec![
                    mlua::Value::Table(keys),
                    mlua::Value::Table(vals),
                    mlua::Value::Integer(1),
                    mlua::Value::Boolean(false),
                ]));
            }
        };
        let (keys, vals) = materialize::entries(lua, &self.proxies(), self.fns(), &reply)?;
        let (n, done) = (reply.len() as i64, reply.done);
        drop(conn);
        Ok(MultiValue::from_vec(vec![
            mlua::Value::Table(keys),
            mlua::Value::Table(vals),
            mlua::Value::Integer(n),
            mlua::Value::Boolean(done),
        ]))
    }

    fn batch_err(&self, lua: &Lua, msg: String) -> mlua::Result<MultiValue> {
        let msg = mlua::Value::String(lua.create_string(msg)?);
        Ok(MultiValue::from_vec(vec![
            mlua::Value::Nil,
            mlua::Value::Nil,
            mlua::Value::Integer(0),
            mlua::Value::Boolean(true),
            msg,
        ]))
    }

    /// `t[key]` of a read-only table the cache could not answer: fetches a
    /// window of its array part, or the one key. Runs no Lua code (the C
    /// `__index` calls it); `Err`: the Lua error to raise, or a long string
    /// to read.
    pub fn ro_fetch(&self, id: TableId, key: LKey) -> Result<Cell, Other> {
        // Not `match (key, self.ro.borrow()…)`: the borrow would live
        // through the match, and ro_len updates the cache.
        let cached = self.ro.borrow().len(id);
        let len = match (key, cached) {
            (LKey::Int(_), None) => Some(self.ro_len(id).map_err(Other::Refused)?),
            (_, len) => len,
        };
        if let (LKey::Int(i), Some(n)) = (key, len) {
            if n > SMALL && i >= 1 && i <= n {
                match self.ro_window(id, i, n) {
                    Ok((start, first, _)) => {
                        return Ok(self.ro.borrow().cell_at(first + (i - start) as u32))
                    }
                    // A long string opens the window: read the key alone.
                    Err(Other::Long(at, _)) if at != Key::Int(i) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let req = Request::Get {
            table: id,
            key: key.to_key(),
        };
        let mut conn = self.conn.borrow_mut();
        let (first, _) = self.request_ro(&mut conn, req, Values::Key { table: id, key })?;
        Ok(self.ro.borrow().cell_at(first))
    }

    /// The window of the read-only array `id` (border `n`) that holds key
    /// `i`: its first key, first cell and length. From the cache, a reply
    /// fetched ahead, or the supervisor; a loop entering a window at its
    /// first key has the next windows fetched while Lua walks this one. A
    /// window may end early (its reply's byte budget): then one from `i`.
    /// Runs no Lua code.
    fn ro_window(&self, id: TableId, i: i64, n: i64) -> Result<(i64, u32, usize), Other> {
        let mut win = self.ro.borrow().window_holding(id, i);
        while win.is_none() && self.ingest_ahead().map_err(Other::Refused)? {
            win = self.ro.borrow().window_holding(id, i);
        }
        let mut conn = self.conn.borrow_mut();
        let (start, first, count) = match win {
            Some(w) => w,
            None => {
                let mut start = (i - 1) / RO_WINDOW * RO_WINDOW + 1;
                loop {
                    let req = Request::GetRange {
                        table: id,
                        start,
                        count: (n - start + 1).min(RO_WINDOW) as u32,
                    };
                    let (first, count) =
                        self.request_ro(&mut conn, req, Values::Range { table: id, start })?;
                    if i - start < count as i64 {
                        break (start, first, count);
                    }
                    if start == i {
                        return Err(Other::Refused(
                            self.die(ConnError::Unexpected("an empty window"))
                                .to_string(),
                        ));
                    }
                    start = i;
                }
            }
        };
        if i == start {
            let (t, mut next) = self.ahead_end.get();
            let furthest = start + count as i64 + (MAX_AHEAD as i64 - 1) * RO_WINDOW;
            if t != id || next <= start || next > furthest + RO_WINDOW {
                next = start + count as i64;
            }
            while next <= n && next <= furthest && conn.ahead() < MAX_AHEAD {
                let req = Request::GetRange {
                    table: id,
                    start: next,
                    count: (n - next + 1).min(RO_WINDOW) as u32,
                };
                conn.send_ahead(req, (id, next))
                    .map_err(|e| Other::Refused(self.die(e).to_string()))?;
                next += RO_WINDOW;
            }
            self.ahead_end.set((id, next));
        }
        Ok((start, first, count))
    }

    /// Takes the reply to a window fetched ahead into the read-only cache.
    /// Returns whether there was one.
    fn ingest_ahead(&self) -> Result<bool, String> {
        let mut conn = self.conn.borrow_mut();
        let ((table, start), bytes) = match conn.take_ahead() {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(false),
            Err(e) => return Err(self.die(e).to_string()),
        };
        // `Ok(None)`: refused (the supervisor's error reply); the fetch that
        // needs the window asks again and raises the error then.
        match self
            .ro
            .borrow_mut()
            .add(bytes, Values::Range { table, start })
        {
            Ok(_) => {}
            Err(_) => {
                return Err(self
                    .die(ConnError::Unexpected("malformed table contents"))
                    .to_string())
            }
        }
        Ok(true)
    }

    /// A border of a read-only table the cache does not know, from the supervisor.
    pub fn ro_len(&self, id: TableId) -> Result<i64, String> {
        match self.request(Request::Len { table: id }) {
            Ok(Reply::Len(n)) => {
                self.ro.borrow_mut().set_len(id, n);
                Ok(n)
            }
            Ok(Reply::Error(e)) => Err(e.message),
            Ok(_) => Err(self
                .die(ConnError::Unexpected("expected a length"))
                .to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// `next(t, after)` of a read-only table: from the cache when it holds
    /// the whole table, else one entry from the supervisor.
    pub fn ro_next(&self, id: TableId, after: Option<LKey>) -> Result<Option<(Cell, Cell)>, Other> {
        if self.ro.borrow().is_complete(id) {
            return self
                .ro
                .borrow()
                .next_complete(id, after)
                .map_err(|()| Other::Refused("invalid key to 'next'".to_string()));
        }
        let req = Request::Next {
            table: id,
            after: after.map(LKey::to_key),
            limit: 1,
        };
        let mut conn = self.conn.borrow_mut();
        let (first, n) = self.request_ro(&mut conn, req, Values::Pairs)?;
        Ok((n > 0).then(|| {
            let ro = self.ro.borrow();
            (ro.cell_at(first), ro.cell_at(first + 1))
        }))
    }

    /// `R.new_table()`, behind `ext.table()`: a new, empty, writable
    /// external table, or (nil, message).
    fn new_table(&self, lua: &Lua) -> mlua::Result<MultiValue> {
        match self.request(Request::NewTable)? {
            Reply::NewTable(id) => Ok(MultiValue::from_vec(vec![mlua::Value::Table(
                self.make(lua, id, true, false)?,
            )])),
            Reply::Error(e) => lua_err(lua, e.message),
            _ => Err(self.die(ConnError::Unexpected("expected a new table"))),
        }
    }

    /// Fills the table `R` the prelude received with the Rust callbacks.
    /// Each returns its values, or (nil, message): the prelude raises the
    /// message (running out of memory as Lua's own memory error).
    pub fn install(self: &Rc<Ext>, lua: &Lua, r: &Table) -> mlua::Result<()> {
        fn soft(lua: &Lua, r: mlua::Result<MultiValue>) -> mlua::Result<MultiValue> {
            match r {
                Err(mlua::Error::MemoryError(_)) => lua_err(lua, "not enough memory".into()),
                other => other,
            }
        }
        let e = self.clone();
        r.raw_set(
            "fetch",
            lua.create_function(move |lua, (m, d, k)| soft(lua, e.fetch(lua, m, d, k)))?,
        )?;
        let e = self.clone();
        r.raw_set(
            "write",
            lua.create_function(move |lua, (id, k, v)| soft(lua, e.write(lua, id, k, v)))?,
        )?;
        let e = self.clone();
        r.raw_set(
            "len",
            lua.create_function(move |lua, id| soft(lua, e.len(lua, id)))?,
        )?;
        let e = self.clone();
        r.raw_set(
            "new_table",
            lua.create_function(move |lua, ()| soft(lua, e.new_table(lua)))?,
        )?;
        let e = self.clone();
        r.raw_set(
            "next_batch",
            lua.create_function(move |lua, (id, after, limit)| {
                match e.next_batch(lua, id, after, limit) {
                    Err(mlua::Error::MemoryError(_)) => {
                        e.batch_err(lua, "not enough memory".into())
                    }
                    other => other,
                }
            })?,
        )?;
        Ok(())
    }
}
