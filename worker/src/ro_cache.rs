//! The worker's cache of read-only external tables (the input and all it
//! holds), kept in Rust, not as Lua tables.
//!
//! Lua sees a read-only table as a light userdata whose pointer *is* the
//! table id (see `ro_meta.rs`): reading `items[i].value` from 100 000
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

use crate::wire::{hash_header, item, pair, Item, Reader};

/// Cells kept before the cache is emptied (16 bytes each).
pub const MAX_CELLS: usize = 128 * 1024;
/// String bytes kept before the cache is emptied.
pub const MAX_BYTES: usize = 4 << 20;
/// Partial tables whose border survives emptying the cache.
const MAX_PARTIAL: usize = 4096;

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
/// `nhash` key/value pairs.
#[derive(Clone, Copy)]
struct Complete {
    len: i64,
    first: u32,
    narr: u32,
    nhash: u32,
}

/// A table too big to inline.
#[derive(Default)]
struct Partial {
    len: Option<i64>,
    /// `(start, first cell, count)`: the values at keys `start..start + count`.
    window: Option<(i64, u32, u32)>,
    keyed: HashMap<Key, Cell>,
}

enum Entry {
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
    tables: IdMap<Entry>,
    cells: Vec<Cell>,
    bytes: Vec<u8>,
    partials: usize,
}

impl RoCache {
    /// Forgets everything (a new compute: ids may have been reused).
    pub fn clear(&mut self) {
        *self = RoCache::default();
    }

    /// The string bytes of a `Cell::Str`.
    pub fn str(&self, off: u32, len: u32) -> &[u8] {
        &self.bytes[off as usize..off as usize + len as usize]
    }

    /// `table[key]`, if the cache can answer.
    pub fn get(&self, table: TableId, key: LKey) -> Found {
        match self.tables.get(&table) {
            Some(Entry::Complete(c)) => Found::Value(self.get_complete(c, key)),
            Some(Entry::Partial(p)) => {
                if let (LKey::Int(i), Some((start, first, count))) = (key, p.window) {
                    if i >= start && i - start < count as i64 {
                        return Found::Value(self.cells[first as usize + (i - start) as usize]);
                    }
                }
                match p.keyed.get(&key.to_key()) {
                    Some(c) => Found::Value(*c),
                    None => Found::Miss,
                }
            }
            None => Found::Miss,
        }
    }

    fn get_complete(&self, c: &Complete, key: LKey) -> Cell {
        let first = c.first as usize;
        if let LKey::Int(i) = key {
            if i >= 1 && i <= c.narr as i64 {
                return self.cells[first + i as usize - 1];
            }
        }
        let hash = &self.cells[first + c.narr as usize..][..2 * c.nhash as usize];
        for kv in hash.chunks_exact(2) {
            if self.key_is(kv[0], key) {
                return kv[1];
            }
        }
        Cell::Nil
    }

    fn key_is(&self, cell: Cell, key: LKey) -> bool {
        match (cell, key) {
            (Cell::Str { off, len }, LKey::Str(s)) => self.str(off, len) == s,
            (Cell::Int(a), LKey::Int(b)) => a == b,
            (Cell::Float(a), LKey::Float(b)) => a == b,
            (Cell::Bool(a), LKey::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// A border of `table`, if known.
    pub fn len(&self, table: TableId) -> Option<i64> {
        match self.tables.get(&table)? {
            Entry::Complete(c) => Some(c.len),
            Entry::Partial(p) => p.len,
        }
    }

    /// Whether every entry of `table` is cached.
    pub fn is_complete(&self, table: TableId) -> bool {
        matches!(self.tables.get(&table), Some(Entry::Complete(_)))
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
        let Some(Entry::Complete(c)) = self.tables.get(&table) else {
            return Err(());
        };
        let first = c.first as usize;
        let narr = c.narr as usize;
        let arr = &self.cells[first..first + narr];
        let hash = &self.cells[first + narr..][..2 * c.nhash as usize];
        // Position to resume from: array index, or narr + hash pair index.
        let from = match after {
            None => 0,
            Some(LKey::Int(i)) if i >= 1 && i as usize <= narr => i as usize,
            Some(k) => match hash.chunks_exact(2).position(|kv| self.key_is(kv[0], k)) {
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
        Ok(hash.chunks_exact(2).nth(skip).map(|kv| (kv[0], kv[1])))
    }

    /// Takes in a reply: every read-only table it describes, and its values
    /// as `values` says. Returns the first cell of the values.
    pub fn add(&mut self, reply: &Reader, values: Values) -> u32 {
        let wanted = reply.values.0 + 2 * reply.inlined;
        if self.cells.len() + wanted > MAX_CELLS || self.bytes.len() > MAX_BYTES {
            self.empty();
        }
        for (id, view) in reply.views() {
            if !view.readonly {
                continue;
            }
            if !view.complete {
                if !self.tables.contains_key(&id) {
                    self.set_len(id, view.len);
                }
                continue;
            }
            let (narr, nhash) = view.counts;
            let first = self.cells.len() as u32;
            let mut body = view.body;
            for _ in 0..narr {
                let c = self.cell(item(&mut body).unwrap_or(Item::Nil));
                self.cells.push(c);
            }
            hash_header(&mut body);
            for _ in 0..nhash {
                let (k, v) = pair(&mut body);
                let (k, v) = (self.cell(k), self.cell(v));
                self.cells.push(k);
                self.cells.push(v);
            }
            let complete = Complete {
                len: view.len,
                first,
                narr: narr as u32,
                nhash: nhash as u32,
            };
            if let Some(Entry::Partial(_)) = self.tables.insert(id, Entry::Complete(complete)) {
                self.partials -= 1;
            }
        }
        let first = self.cells.len() as u32;
        let (n, mut c) = reply.values;
        match values {
            Values::None => {}
            Values::Range { table, start } => {
                for _ in 0..n {
                    let v = self.cell(item(&mut c).unwrap_or(Item::Nil));
                    self.cells.push(v);
                }
                self.partial(table).window = Some((start, first, n as u32));
            }
            Values::Pairs => {
                for _ in 0..n {
                    let (k, v) = pair(&mut c);
                    let (k, v) = (self.cell(k), self.cell(v));
                    self.cells.push(k);
                    self.cells.push(v);
                }
            }
            Values::Key { table, key } => {
                let v = self.cell(item(&mut c).unwrap_or(Item::Nil));
                self.cells.push(v);
                self.partial(table).keyed.insert(key.to_key(), v);
            }
        }
        first
    }

    /// The cell at `index` (as returned by [`add`](Self::add)).
    pub fn cell_at(&self, index: u32) -> Cell {
        self.cells[index as usize]
    }

    fn partial(&mut self, table: TableId) -> &mut Partial {
        if !matches!(self.tables.get(&table), Some(Entry::Partial(_))) {
            self.partials += 1;
            self.tables.insert(table, Entry::Partial(Box::default()));
        }
        match self.tables.get_mut(&table) {
            Some(Entry::Partial(p)) => p,
            _ => unreachable!("inserted above"),
        }
    }

    fn cell(&mut self, it: Item) -> Cell {
        match it {
            Item::Nil => Cell::Nil,
            Item::Bool(b) => Cell::Bool(b),
            Item::Int(i) => Cell::Int(i),
            Item::Float(f) => Cell::Float(f),
            Item::Table(id) => Cell::Table(id),
            Item::Str(s) => {
                let off = self.bytes.len() as u32;
                self.bytes.extend_from_slice(s);
                Cell::Str {
                    off,
                    len: s.len() as u32,
                }
            }
        }
    }

    /// Drops every cached entry; partial tables keep their border.
    fn empty(&mut self) {
        self.cells.clear();
        self.bytes.clear();
        if self.partials > MAX_PARTIAL {
            self.tables.clear();
            self.partials = 0;
            return;
        }
        self.tables.retain(|_, e| match e {
            Entry::Complete(_) => false,
            Entry::Partial(p) => {
                p.window = None;
                p.keyed.clear();
                true
            }
        });
    }
}
