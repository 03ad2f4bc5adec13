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

use crate::wire::{contents_header, item, pair_checked, Cursor, Item, Malformed};

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

    /// Takes in a reply's bytes (`Fetched` or `Entries`), in one pass:
    /// every read-only table it describes, and its values as `values` says.
    /// Returns the index of the first value's cell and the number of values
    /// (pairs for `Values::Pairs`); `Ok(None)`: not a reply with table
    /// contents (an error reply, say). On `Err` the cache holds what came
    /// before the bad bytes, consistently.
    pub fn add(&mut self, buf: &[u8], values: Values) -> Result<Option<(u32, usize)>, Malformed> {
        let mut c = Cursor::new(buf);
        let Some(entries) = contents_header(&mut c)? else {
            return Ok(None);
        };
        // About one cell per 8 bytes of reply.
        if self.cells.len() + buf.len() / 8 > MAX_CELLS || self.bytes.len() > MAX_BYTES {
            self.empty();
        }
        let first = self.cells.len() as u32;
        let n = c.array()?;
        if matches!(values, Values::Key { .. }) && n != 1 {
            return Err(Malformed);
        }
        for _ in 0..n {
            match values {
                Values::None => {
                    if entries {
                        pair_checked(&mut c)?;
                    } else {
                        item(&mut c)?;
                    }
                }
                Values::Pairs => {
                    let (k, v) = pair_checked(&mut c)?;
                    let (k, v) = (self.cell(k), self.cell(v));
                    self.cells.push(k);
                    self.cells.push(v);
                }
                Values::Range { .. } | Values::Key { .. } => {
                    let v = self.cell(item(&mut c)?);
                    self.cells.push(v);
                }
            }
        }
        for _ in 0..c.array()? {
            if c.array()? != 6 {
                return Err(Malformed);
            }
            let id = c.int()? as TableId;
            let readonly = c.bool()?;
            let len = c.int()?;
            let complete = c.bool()?;
            let keep = readonly && complete;
            let at = self.cells.len() as u32;
            let narr = c.array()?;
            for _ in 0..narr {
                let v = item(&mut c)?;
                if keep {
                    let v = self.cell(v);
                    self.cells.push(v);
                }
            }
            let nhash = c.array()?;
            for _ in 0..nhash {
                let (k, v) = pair_checked(&mut c)?;
                if keep {
                    let (k, v) = (self.cell(k), self.cell(v));
                    self.cells.push(k);
                    self.cells.push(v);
                }
            }
            if keep {
                let complete = Complete {
                    len,
                    first: at,
                    narr: narr as u32,
                    nhash: nhash as u32,
                };
                if let Some(Entry::Partial(_)) = self.tables.insert(id, Entry::Complete(complete)) {
                    self.partials -= 1;
                }
            } else if readonly && !self.tables.contains_key(&id) {
                self.set_len(id, len);
            }
        }
        if entries {
            c.bool()?;
        }
        match values {
            Values::Range { table, start } => {
                self.partial(table).window = Some((start, first, n as u32));
            }
            Values::Key { table, key } => {
                let v = self.cells[first as usize];
                self.partial(table).keyed.insert(key.to_key(), v);
            }
            Values::None | Values::Pairs => {}
        }
        Ok(Some((first, n)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use luapool_protocol::{encode, Fetched, Reply, TableView, ToWorker, Value};

    /// A window of `n` records `{id = i, value = i / 3}` as the supervisor sends it.
    fn window(n: u64) -> Vec<u8> {
        let base = 1u64 << 32;
        let views = (0..n)
            .map(|i| TableView {
                id: base + 10 + i,
                readonly: true,
                len: 0,
                complete: true,
                array: vec![],
                hash: vec![
                    (Key::str("id"), Value::Int(i as i64)),
                    (Key::str("value"), Value::Float(i as f64 / 3.0)),
                ],
            })
            .collect();
        encode(&ToWorker::Reply(Reply::Fetched(Fetched {
            values: (0..n).map(|i| Value::Table(base + 10 + i)).collect(),
            tables: views,
        })))
    }

    #[test]
    #[ignore = "a measurement: cargo test --release -p luapool-worker -- --ignored --nocapture"]
    fn add_speed() {
        let bytes = window(512);
        let mut c = RoCache::default();
        let t = std::time::Instant::now();
        let reps = 2000;
        for r in 0..reps {
            c.add(
                &bytes,
                Values::Range {
                    table: 7,
                    start: 1 + 512 * r,
                },
            )
            .unwrap();
        }
        let per = t.elapsed().as_nanos() as f64 / (reps * 512) as f64;
        println!(
            "add: {per:.1} ns per record ({} bytes per window)",
            bytes.len()
        );
    }
}
