//! The Rust half of external tables: fetching entries into a proxy's cache,
//! buffering writes, lengths and batched iteration. The Lua half is
//! `prelude.lua`; see it for how a proxy is laid out.

use std::cell::{Cell as StdCell, OnceCell, RefCell};
use std::rc::Rc;

use luapool_protocol::{decode, Key, Reply, Request, TableId, ToWorker, Write};
use mlua::{Lua, MultiValue, Table};

use crate::conn::{Conn, ConnError, MAX_AHEAD};
use crate::convert::{key_of, literal_of};
use crate::materialize::{self, Fns, Target};
use crate::ro_cache::{Cell, LKey, RoCache, Values};
use crate::wire::Reader;

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
    fns: OnceCell<Fns>,
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
    /// refused, which the script sees as a Lua error.
    fn request_contents<'c>(
        &self,
        conn: &'c mut Conn,
        req: Request,
    ) -> mlua::Result<Result<Reader<'c>, String>> {
        let bytes = match self.send_for_contents(conn, req)? {
            Ok(bytes) => bytes,
            Err(message) => return Ok(Err(message)),
        };
        let reply = match Reader::parse(bytes) {
            Ok(Some(reply)) => reply,
            Ok(None) => return Ok(Err(self.refusal(bytes)?)),
            Err(_) => return Err(self.die(ConnError::Unexpected("malformed table contents"))),
        };
        // Only a reply that describes read-only tables is read a second time.
        if reply.any_readonly && self.ro.borrow_mut().add(bytes, Values::None).is_err() {
            return Err(self.die(ConnError::Unexpected("malformed table contents")));
        }
        Ok(Ok(reply))
    }

    /// [`request_contents`](Self::request_contents) for a read-only table:
    /// the reply goes into the read-only cache only, `values` saying where
    /// its values go. Returns the cell index of the first value and how
    /// many there are. Runs no Lua code; `Err`: the message of the error
    /// to raise (the ring broke, or the supervisor refused).
    fn request_ro(
        &self,
        conn: &mut Conn,
        req: Request,
        values: Values,
    ) -> Result<(u32, usize), String> {
        let bytes = match self.send_for_contents(conn, req) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(message)) => return Err(message),
            Err(e) => return Err(e.to_string()),
        };
        match self.ro.borrow_mut().add(bytes, values) {
            Ok(Some(got)) => Ok(got),
            Ok(None) => Err(self.refusal(bytes).map_err(|e| e.to_string())?),
            Err(_) => Err(self
                .die(ConnError::Unexpected("malformed table contents"))
                .to_string()),
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

    /// The message of a reply that should have carried table contents and
    /// is the supervisor's refusal instead.
    fn refusal(&self, bytes: &[u8]) -> mlua::Result<String> {
        match decode::<ToWorker>(bytes) {
            Ok(ToWorker::Reply(Reply::Error(e))) => Ok(e.message),
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
        let id: i64 = m.raw_get("lp_id")?;
        let Ok(key) = key_of(&k) else {
            return Ok(MultiValue::new()); // t[nil], t[0/0]: nil, as in Lua
        };
        let len: Option<i64> = m.raw_get("lp_len")?;
        let window = match (&key, len) {
            (Key::Int(i), Some(n)) if n > SMALL && *i >= 1 && *i <= n => {
                let start = (*i - 1) / WINDOW * WINDOW + 1;
                Some((start, (n - start + 1).min(WINDOW)))
            }
            _ => None,
        };
        let req = match window {
            Some((start, count)) => Request::GetRange {
                table: TableId::from_raw(id as u64),
                start,
                count: count as u32,
            },
            None => Request::Get {
                table: TableId::from_raw(id as u64),
                key: key.clone(),
            },
        };
        let mut conn = self.conn.borrow_mut();
        let reply = match self.request_contents(&mut conn, req)? {
            Ok(reply) => reply,
            Err(message) => return lua_err(lua, message),
        };
        let count = (reply.values.0 + reply.inlined) as i64;
        let mut d = d;
        let mut cached: i64 = m.raw_get::<Option<i64>>("lp_n")?.unwrap_or(0);
        if cached + count > CACHE_LIMIT {
            // Drop the old cache: its proxies stay reachable by id while Lua holds them.
            let fresh = lua.create_table()?;
            fresh.set_metatable(d.metatable())?;
            m.raw_set("__index", &fresh)?;
            d = fresh;
            cached = 0;
        }
        let target = match window {
            Some((start, _)) => Target::Range {
                start,
                want: if let Key::Int(i) = key {
                    i
                } else {
                    unreachable!()
                },
            },
            None => Target::Key(&k),
        };
        let result = materialize::fill(lua, &self.proxies(), &d, self.fns(), &reply, target)?;
        drop(conn);
        m.raw_set("lp_n", cached + count)?;
        Ok(MultiValue::from_vec(vec![result]))
    }

    /// `R.write(id, k, v)`: buffers `t[k] = v`. Returns whether `v` may be
    /// cached as it is: scalars, and external tables of the target's own
    /// arena. The store copies a plain table into a new external table, and
    /// also copies an external table stored into another arena (a session's
    /// table into `_home`, a home's table into `_io`); either way the entry
    /// then names a table the worker has not seen, so the next read fetches it.
    fn write(
        &self,
        lua: &Lua,
        id: i64,
        k: mlua::Value,
        v: mlua::Value,
    ) -> mlua::Result<MultiValue> {
        let key = match key_of(&k) {
            Ok(key) => key,
            Err(e) => return lua_err(lua, format!("invalid key for an external table: {e}")),
        };
        let (value, bytes) = match literal_of(&v) {
            Ok(x) => x,
            Err(e) => return lua_err(lua, format!("cannot assign to key {key}: {e}")),
        };
        // A table id's high 32 bits name its arena (the store's id layout):
        // a reference within one arena is stored as it is, so its proxy stays
        // valid; the store copies anything else.
        let same_arena = |t: TableId| t.arena() == TableId::from_raw(id as u64).arena();
        let cacheable = match &value {
            luapool_protocol::Literal::Value(luapool_protocol::Value::Table(t)) => same_arena(*t),
            luapool_protocol::Literal::Value(_) => true,
            luapool_protocol::Literal::Table { .. } => false,
        };
        let r = self.conn.borrow_mut().write(
            Write {
                table: TableId::from_raw(id as u64),
                key,
                value,
            },
            bytes,
        );
        match r.map_err(|e| self.die(e))? {
            Some(Reply::Error(e)) => lua_err(lua, e.message),
            _ => Ok(MultiValue::from_vec(vec![mlua::Value::Boolean(cacheable)])),
        }
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
            Err(message) => return self.batch_err(lua, message),
        };
        let (keys, vals) = materialize::entries(lua, &self.proxies(), self.fns(), &reply)?;
        let (n, done) = (reply.values.0 as i64, reply.done);
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
    /// `__index` calls it); `Err`: the message of the Lua error to raise.
    pub fn ro_fetch(&self, id: TableId, key: LKey) -> Result<Cell, String> {
        // Not `match (key, self.ro.borrow()…)`: the borrow would live
        // through the match, and ro_len updates the cache.
        let cached = self.ro.borrow().len(id);
        let len = match (key, cached) {
            (LKey::Int(_), None) => Some(self.ro_len(id)?),
            (_, len) => len,
        };
        if let (LKey::Int(i), Some(n)) = (key, len) {
            if n > SMALL && i >= 1 && i <= n {
                let (start, first, _) = self.ro_window(id, i, n)?;
                return Ok(self.ro.borrow().cell_at(first + (i - start) as u32));
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
    /// first key has the next windows fetched while Lua walks this one.
    /// Runs no Lua code; `Err`: the message of the Lua error to raise.
    fn ro_window(&self, id: TableId, i: i64, n: i64) -> Result<(i64, u32, usize), String> {
        let mut win = self.ro.borrow().window_holding(id, i);
        while win.is_none() && self.ingest_ahead()? {
            win = self.ro.borrow().window_holding(id, i);
        }
        let mut conn = self.conn.borrow_mut();
        let (start, first, count) = match win {
            Some(w) => w,
            None => {
                let start = (i - 1) / RO_WINDOW * RO_WINDOW + 1;
                let req = Request::GetRange {
                    table: id,
                    start,
                    count: (n - start + 1).min(RO_WINDOW) as u32,
                };
                let (first, count) =
                    self.request_ro(&mut conn, req, Values::Range { table: id, start })?;
                (start, first, count)
            }
        };
        if i - start >= count as i64 {
            return Err(self
                .die(ConnError::Unexpected("a window shorter than asked"))
                .to_string());
        }
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
                    .map_err(|e| self.die(e).to_string())?;
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
    pub fn ro_next(
        &self,
        id: TableId,
        after: Option<LKey>,
    ) -> Result<Option<(Cell, Cell)>, String> {
        if self.ro.borrow().is_complete(id) {
            return self
                .ro
                .borrow()
                .next_complete(id, after)
                .map_err(|()| "invalid key to 'next'".to_string());
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

    /// `ext.table()`: a new, empty, writable external table.
    pub fn new_table(&self, lua: &Lua) -> mlua::Result<Table> {
        match self.request(Request::NewTable)? {
            Reply::NewTable(id) => self.make(lua, id, true, false),
            Reply::Error(e) => Err(mlua::Error::runtime(e.message)),
            _ => Err(self.die(ConnError::Unexpected("expected a new table"))),
        }
    }

    /// Fills the table `R` the prelude received with the Rust callbacks.
    pub fn install(self: &Rc<Ext>, lua: &Lua, r: &Table) -> mlua::Result<()> {
        let e = self.clone();
        r.raw_set(
            "fetch",
            lua.create_function(move |lua, (m, d, k)| e.fetch(lua, m, d, k))?,
        )?;
        let e = self.clone();
        r.raw_set(
            "write",
            lua.create_function(move |lua, (id, k, v)| e.write(lua, id, k, v))?,
        )?;
        let e = self.clone();
        r.raw_set("len", lua.create_function(move |lua, id| e.len(lua, id))?)?;
        let e = self.clone();
        r.raw_set(
            "next_batch",
            lua.create_function(move |lua, (id, after, limit)| {
                e.next_batch(lua, id, after, limit)
            })?,
        )?;
        Ok(())
    }
}
