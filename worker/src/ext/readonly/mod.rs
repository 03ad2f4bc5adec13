//! Read-only external tables (the input and all it holds): each is a light
//! userdata whose pointer is its id, read by the C metamethods of
//! `meta.rs` from a Rust cache (`cache.rs`). This side answers the cache's
//! misses: one key, or a window of a big array, with the next windows of
//! an array a loop walks fetched ahead while Lua works on this one. None
//! of it runs Lua code (the C functions call it, and a Lua error unwinds
//! them with `longjmp`).

use std::cell::{Cell as StdCell, RefCell};

use luapool_protocol::{Key, Reply, Request, TableId};

use super::conn::{Conn, MAX_AHEAD};
use super::error::ExtError;
use super::writable::SMALL;
use super::{Ext, Got};

mod cache;
mod fast;
mod fill;
mod meta;
mod run;
#[cfg(test)]
mod tests;

pub use cache::{Cell, LKey, RoCache, Values};
pub use meta::{functions, install, raise};

/// Keys of a read-only array fetched per request. Smaller than a writable
/// array's window, so that a window of small records (~50 bytes each)
/// fits the ring whole: the next one, fetched ahead while Lua walks this
/// one, then waits in the ring, and the supervisor is not left blocked
/// halfway through sending it.
const RO_WINDOW: i64 = 512;

/// The state of the read-only tables of the running compute.
#[derive(Default)]
pub struct ReadOnly {
    /// What was read of them.
    pub cache: RefCell<RoCache>,
    /// How far windows of an array were asked for ahead: the table and the
    /// first key not asked for yet.
    ahead_end: StdCell<(TableId, i64)>,
}

impl ReadOnly {
    /// Forgets everything (a new compute: ids may have been reused).
    pub(super) fn clear(&self) {
        self.cache.borrow_mut().clear();
        self.ahead_end.set((TableId::default(), 0));
    }
}

impl Ext {
    /// The read-only cache.
    pub fn ro(&self) -> &RefCell<RoCache> {
        &self.readonly.cache
    }

    /// Sends a request whose reply goes into the read-only cache, `values`
    /// saying where its values go. Returns the cell index of the first
    /// value and how many there are.
    fn request_ro(
        &self,
        conn: &mut Conn,
        req: Request,
        values: Values,
    ) -> Result<Got<(u32, usize)>, ExtError> {
        let bytes = self.link.request_raw(conn, req)?;
        let added = self.readonly.cache.borrow_mut().add(bytes, values);
        match added {
            Ok(Some(got)) => Ok(Got::Value(got)),
            Ok(None) => match self.link.other(bytes)? {
                Reply::Long { key, len } => Ok(Got::Long(key, len)),
                _ => Err(self.link.unexpected("expected table contents")),
            },
            Err(_) => Err(self.link.unexpected("malformed table contents")),
        }
    }

    /// `t[key]` of a read-only table the cache could not answer: fetches a
    /// window of its array part, or the one key.
    pub fn ro_fetch(&self, id: TableId, key: LKey) -> Result<Got<Cell>, ExtError> {
        // Not `match (key, self.ro().borrow()…)`: the borrow would live
        // through the match, and ro_len updates the cache.
        let cached = self.ro().borrow().len(id);
        let len = match (key, cached) {
            (LKey::Int(_), None) => Some(self.ro_len(id)?),
            (_, len) => len,
        };
        if let (LKey::Int(i), Some(n)) = (key, len) {
            if n > SMALL && i >= 1 && i <= n {
                match self.ro_window(id, i, n)? {
                    Got::Value((start, first, _)) => {
                        let cell = self.ro().borrow().cell_at(first + (i - start) as u32);
                        return Ok(Got::Value(cell));
                    }
                    // A long string opens the window: read the key alone.
                    Got::Long(at, _) if at != Key::Int(i) => {}
                    Got::Long(at, len) => return Ok(Got::Long(at, len)),
                }
            }
        }
        let req = Request::Get {
            table: id,
            key: key.to_key(),
        };
        let mut conn = self.link.conn();
        Ok(
            match self.request_ro(&mut conn, req, Values::Key { table: id, key })? {
                Got::Value((first, _)) => Got::Value(self.ro().borrow().cell_at(first)),
                Got::Long(k, len) => Got::Long(k, len),
            },
        )
    }

    /// The window of the read-only array `id` (border `n`) that holds key
    /// `i`: its first key, first cell and length. From the cache, a reply
    /// fetched ahead, or the supervisor; a loop entering a window at its
    /// first key has the next windows fetched while Lua walks this one. A
    /// window may end early (its reply's byte budget): then one from `i`.
    fn ro_window(&self, id: TableId, i: i64, n: i64) -> Result<Got<(i64, u32, usize)>, ExtError> {
        let mut win = self.ro().borrow().window_holding(id, i);
        while win.is_none() && self.ingest_ahead()? {
            win = self.ro().borrow().window_holding(id, i);
        }
        let mut conn = self.link.conn();
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
                    let values = Values::Range { table: id, start };
                    let (first, count) = match self.request_ro(&mut conn, req, values)? {
                        Got::Value(x) => x,
                        Got::Long(k, len) => return Ok(Got::Long(k, len)),
                    };
                    if i - start < count as i64 {
                        break (start, first, count);
                    }
                    if start == i {
                        return Err(self.link.unexpected("an empty window"));
                    }
                    start = i;
                }
            }
        };
        if i == start {
            let (t, mut next) = self.readonly.ahead_end.get();
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
                    .map_err(|e| self.link.lost(e))?;
                next += RO_WINDOW;
            }
            self.readonly.ahead_end.set((id, next));
        }
        Ok(Got::Value((start, first, count)))
    }

    /// Takes the reply to a window fetched ahead into the read-only cache.
    /// Returns whether there was one. A refusal is not raised here: the
    /// fetch that needs the window asks again and raises it then.
    fn ingest_ahead(&self) -> Result<bool, ExtError> {
        let mut conn = self.link.conn();
        let ((table, start), bytes) = match conn.take_ahead() {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(false),
            Err(e) => return Err(self.link.lost(e)),
        };
        let added = self
            .readonly
            .cache
            .borrow_mut()
            .add(bytes, Values::Range { table, start });
        match added {
            Ok(_) => Ok(true),
            Err(_) => Err(self.link.unexpected("malformed table contents")),
        }
    }

    /// A border of a read-only table the cache does not know, from the supervisor.
    pub fn ro_len(&self, id: TableId) -> Result<i64, ExtError> {
        match self.link.request(Request::Len { table: id })? {
            Reply::Len(n) => {
                self.ro().borrow_mut().set_len(id, n);
                Ok(n)
            }
            _ => Err(self.link.unexpected("expected a length")),
        }
    }

    /// `next(t, after)` of a read-only table: from the cache when it holds
    /// the whole table, else one entry from the supervisor.
    pub fn ro_next(
        &self,
        id: TableId,
        after: Option<LKey>,
    ) -> Result<Got<Option<(Cell, Cell)>>, ExtError> {
        if self.ro().borrow().is_complete(id) {
            let next = self.ro().borrow().next_complete(id, after);
            return next.map(Got::Value).map_err(|()| ExtError::NextKey);
        }
        let req = Request::Next {
            table: id,
            after: after.map(LKey::to_key),
            limit: 1,
        };
        let mut conn = self.link.conn();
        Ok(match self.request_ro(&mut conn, req, Values::Pairs)? {
            Got::Value((first, n)) => Got::Value((n > 0).then(|| {
                let ro = self.ro().borrow();
                (ro.cell_at(first), ro.cell_at(first + 1))
            })),
            Got::Long(k, len) => Got::Long(k, len),
        })
    }
}
