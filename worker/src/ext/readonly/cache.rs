//! The worker's cache of read-only external tables (the input and all it
//! holds), kept in Rust, not as Lua tables.
//!
//! Lua sees a read-only table as a light userdata whose pointer *is* the
//! table id (see `meta.rs`): reading `items[i].value` from 100 000
//! records creates no Lua object at all, only the field values read. The
//! metamethods look the table up here by id. A table comes in one of two
//! shapes: *complete* (a record inlined in a reply: all its entries, in
//! [`Cell`]s) or *partial* (a big table: its border, the last window of its
//! array fetched, and the keys read one by one).
//!
//! The store never lets a read-only table reference a writable one (it
//! builds read-only tables only when it loads host data, as a whole tree),
//! so every table a cell names is read-only too.
//!
//! The cache is bounded: when a reply would take it past [`MAX_CELLS`] or
//! [`MAX_BYTES`] it drops every entry (a partial table keeps its border);
//! a light userdata Lua still holds then reads through the supervisor again.

use std::collections::HashMap;

use luapool_protocol::{IdMap, Key, TableId};

use super::fast::{HotRun, LastWindow};
use super::run::Run;

/// Cells kept before the cache is emptied (16 bytes each).
pub(super) const MAX_CELLS: usize = 128 * 1024;
/// String bytes kept before the cache is emptied.
pub(super) const MAX_BYTES: usize = 4 << 20;
/// Partial tables whose border survives emptying the cache.
pub(super) const MAX_PARTIAL: usize = 4096;

/// A key or value of a cached table; strings live in the cache's byte arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// nil (a hole in an array part)
    Nil,
    /// boolean
    Bool(bool),
    /// integer
    Int(i64),
    /// float
    Float(f64),
    /// `bytes[off..off + len]` of the cache
    Str {
        /// Offset in the byte arena.
        off: u32,
        /// Length in bytes.
        len: u32,
    },
    /// a (read-only) table
    Table(TableId),
    /// a big integer: its text at `bytes[off..off + len]` of the cache
    BigInt {
        /// Offset in the byte arena.
        off: u32,
        /// Length in bytes.
        len: u32,
    },
    /// a function: its source at `bytes[off..off + len]` of the cache
    Function {
        /// Offset in the byte arena.
        off: u32,
        /// Length in bytes.
        len: u32,
    },
}

/// A key Lua asked for, borrowed from the Lua stack.
#[derive(Clone, Copy, Debug)]
pub enum LKey<'a> {
    /// integer (or a float with an integral value)
    Int(i64),
    /// any other float (never NaN)
    Float(f64),
    /// string bytes
    Str(&'a [u8]),
    /// boolean
    Bool(bool),
}

impl LKey<'_> {
    /// The protocol's key.
    pub fn to_key(self) -> Key {
        match self {
            LKey::Int(i) => Key::Int(i),
            LKey::Float(f) => Key::Float(f.to_bits()),
            LKey::Str(s) => Key::Str(s.to_vec()),
            LKey::Bool(b) => Key::Bool(b),
        }
    }
}

/// A complete table: `cells[first..first + narr]` is its array part, then
/// come `nhash` key/value pairs, or, for a record of a shape, the values of
/// the shape's other keys.
#[derive(Clone, Copy)]
pub(super) struct Complete {
    pub(super) len: i64,
    pub(super) first: u32,
    pub(super) narr: u32,
    pub(super) nhash: u32,
    /// Index in `shapes`, or [`PAIRS`]: keys and values alternate.
    pub(super) shape: u32,
}

/// `Complete::shape` of a table whose keys are among its cells.
pub(super) const PAIRS: u32 = u32::MAX;

/// A table too big to inline.
#[derive(Default)]
pub(super) struct Partial {
    pub(super) len: Option<i64>,
    /// `(start, first cell, count)`: the values at keys `start..start + count`.
    pub(super) window: Option<(i64, u32, u32)>,
    pub(super) keyed: HashMap<Key, Cell>,
}

pub(super) enum Entry {
    Complete(Complete),
    Partial(Box<Partial>),
}

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Found {
    /// The value (`Cell::Nil`: the table has no such key).
    Value(Cell),
    /// Not cached: ask the supervisor.
    Miss,
}

/// Where the values of a reply go.
pub enum Values<'k> {
    /// Views only.
    None,
    /// A window of `table`'s array part starting at key `start`.
    Range {
        /// The table read.
        table: TableId,
        /// Key of the first value.
        start: i64,
    },
    /// `[key, value]` pairs of an iteration (not recorded as entries).
    Pairs,
    /// `table[key]`.
    Key {
        /// The table read.
        table: TableId,
        /// The key read.
        key: LKey<'k>,
    },
}

/// The cache.
#[derive(Default)]
pub struct RoCache {
    pub(super) tables: IdMap<Entry>,
    pub(super) cells: Vec<Cell>,
    pub(super) bytes: Vec<u8>,
    /// The keys of the records of each `Records` reply, past their array part.
    pub(super) shapes: Vec<Vec<Cell>>,
    pub(super) runs: Vec<Run>,
    /// The run that answered last: a loop reads its records one after another.
    pub(super) hint: std::cell::Cell<usize>,
    /// The window of a partial table that answered last, or was fetched
    /// last: a loop reads its keys one after another (`fast.rs`).
    pub(super) last: std::cell::Cell<LastWindow>,
    /// The run of the hint, for `fast.rs`.
    pub(super) hot: std::cell::Cell<HotRun>,
    pub(super) partials: usize,
}

impl RoCache {
    /// Forgets everything (a new compute: ids may have been reused).
    pub fn clear(&mut self) {
        // The arenas keep their capacity (bounded by MAX_CELLS and
        // MAX_BYTES): the next compute need not grow them again.
        let (mut cells, mut bytes) = (
            std::mem::take(&mut self.cells),
            std::mem::take(&mut self.bytes),
        );
        cells.clear();
        bytes.clear();
        *self = RoCache {
            cells,
            bytes,
            ..RoCache::default()
        };
    }

    /// The string bytes of a `Cell::Str`.
    pub fn str(&self, off: u32, len: u32) -> &[u8] {
        &self.bytes[off as usize..off as usize + len as usize]
    }

    /// The complete table `id` if the run that answered last holds it.
    #[inline]
    fn hinted(&self, id: TableId) -> Option<Complete> {
        self.runs.get(self.hint.get()).and_then(|r| r.find(id))
    }

    /// The complete table `id` if some run holds it (remembered as the hint).
    fn in_runs(&self, id: TableId) -> Option<Complete> {
        self.runs.iter().enumerate().rev().find_map(|(i, r)| {
            let c = r.find(id)?;
            self.hint.set(i);
            self.hot.set(r.hot());
            Some(c)
        })
    }

    /// The complete table `id`, if cached.
    fn complete(&self, id: TableId) -> Option<Complete> {
        self.hinted(id).or_else(|| match self.tables.get(&id) {
            Some(Entry::Complete(c)) => Some(*c),
            Some(Entry::Partial(_)) => None,
            None => self.in_runs(id),
        })
    }

    /// `table[key]`, if the cache can answer.
    pub fn get(&self, table: TableId, key: LKey) -> Found {
        if let Some(c) = self.hinted(table) {
            return Found::Value(self.get_complete(&c, key));
        }
        match self.tables.get(&table) {
            Some(Entry::Complete(c)) => Found::Value(self.get_complete(c, key)),
            Some(Entry::Partial(p)) => {
                if let (LKey::Int(i), Some((start, first, count))) = (key, p.window) {
                    if i >= start && i - start < count as i64 {
                        self.last.set(LastWindow {
                            table,
                            start,
                            first,
                            count,
                        });
                        return Found::Value(self.cells[first as usize + (i - start) as usize]);
                    }
                }
                match p.keyed.get(&key.to_key()) {
                    Some(c) => Found::Value(*c),
                    None => Found::Miss,
                }
            }
            None => match self.in_runs(table) {
                Some(c) => Found::Value(self.get_complete(&c, key)),
                None => Found::Miss,
            },
        }
    }

    #[inline]
    fn get_complete(&self, c: &Complete, key: LKey) -> Cell {
        let first = c.first as usize;
        if let LKey::Int(i) = key {
            if i >= 1 && i <= c.narr as i64 {
                return self.cells[first + i as usize - 1];
            }
        }
        let rest = first + c.narr as usize;
        if c.shape != PAIRS {
            let keys = &self.shapes[c.shape as usize];
            return match keys.iter().position(|k| self.key_is(*k, key)) {
                Some(j) => self.cells[rest + j],
                None => Cell::Nil,
            };
        }
        let hash = &self.cells[rest..][..2 * c.nhash as usize];
        for kv in hash.chunks_exact(2) {
            if self.key_is(kv[0], key) {
                return kv[1];
            }
        }
        Cell::Nil
    }

    #[inline]
    pub(super) fn key_is(&self, cell: Cell, key: LKey) -> bool {
        match (cell, key) {
            (Cell::Str { off, len }, LKey::Str(s)) => {
                len as usize == s.len() && short_eq(self.str(off, len), s)
            }
            (Cell::Int(a), LKey::Int(b)) => a == b,
            (Cell::Float(a), LKey::Float(b)) => a == b,
            (Cell::Bool(a), LKey::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// The cached window of the partial table `table` if it holds key `i`:
    /// its first key, first cell and length.
    pub fn window_holding(&self, table: TableId, i: i64) -> Option<(i64, u32, usize)> {
        match self.tables.get(&table) {
            Some(Entry::Partial(p)) => {
                let (start, first, count) = p.window?;
                (i >= start && i - start < i64::from(count)).then_some((
                    start,
                    first,
                    count as usize,
                ))
            }
            _ => None,
        }
    }

    /// A border of `table`, if known.
    pub fn len(&self, table: TableId) -> Option<i64> {
        if let Some(c) = self.complete(table) {
            return Some(c.len);
        }
        match self.tables.get(&table)? {
            Entry::Complete(c) => Some(c.len),
            Entry::Partial(p) => p.len,
        }
    }

    /// Whether every entry of `table` is cached.
    pub fn is_complete(&self, table: TableId) -> bool {
        self.complete(table).is_some()
    }

    /// Records a border of a partial table learned from the supervisor.
    pub fn set_len(&mut self, table: TableId, len: i64) {
        match self.tables.get_mut(&table) {
            Some(Entry::Complete(_)) => {}
            Some(Entry::Partial(p)) => p.len = Some(len),
            None => {
                self.partials += 1;
                self.tables.insert(
                    table,
                    Entry::Partial(Box::new(Partial {
                        len: Some(len),
                        ..Partial::default()
                    })),
                );
            }
        }
    }

    /// The entry after `after` (`None`: the first) of a complete table, in
    /// the order array part, then hash part; `None` at the end. `Err(())`:
    /// `after` is not a key of the table.
    #[allow(clippy::result_unit_err)]
    pub fn next_complete(
        &self,
        table: TableId,
        after: Option<LKey>,
    ) -> Result<Option<(Cell, Cell)>, ()> {
        let Some(c) = self.complete(table) else {
            return Err(());
        };
        let first = c.first as usize;
        let narr = c.narr as usize;
        let arr = &self.cells[first..first + narr];
        // The hash part as (key, value) pairs, whichever way it is laid out.
        let rest = &self.cells[first + narr..];
        let pair = |j: usize| -> (Cell, Cell) {
            if c.shape == PAIRS {
                (rest[2 * j], rest[2 * j + 1])
            } else {
                (self.shapes[c.shape as usize][j], rest[j])
            }
        };
        let nhash = c.nhash as usize;
        // Position to resume from: array index, or narr + hash pair index.
        let from = match after {
            None => 0,
            Some(LKey::Int(i)) if i >= 1 && i as usize <= narr => i as usize,
            Some(k) => match (0..nhash).position(|j| self.key_is(pair(j).0, k)) {
                Some(p) => narr + p + 1,
                None => return Err(()),
            },
        };
        for (j, v) in arr.iter().enumerate().skip(from) {
            if *v != Cell::Nil {
                return Ok(Some((Cell::Int(j as i64 + 1), *v)));
            }
        }
        let skip = from.saturating_sub(narr);
        Ok((skip < nhash).then(|| pair(skip)))
    }

    /// The cell at `index` (as returned by [`add`](Self::add)).
    pub fn cell_at(&self, index: u32) -> Cell {
        self.cells[index as usize]
    }
}

/// `a == b` for slices of one length; field names are short, and a byte
/// loop beats a call to `memcmp` for them.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() > 16 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}
