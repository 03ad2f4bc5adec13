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

use luapool_protocol::hot::{
    self, Contents, Item, RecordsReader, View, ViewHead, Visited, Visitor,
};
use luapool_protocol::mp::Malformed;

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
/// come `nhash` key/value pairs, or, for a record of a shape, the values of
/// the shape's other keys.
#[derive(Clone, Copy)]
struct Complete {
    len: i64,
    first: u32,
    narr: u32,
    nhash: u32,
    /// Index in `shapes`, or [`PAIRS`]: keys and values alternate.
    shape: u32,
}

/// `Complete::shape` of a table whose keys are among its cells.
const PAIRS: u32 = u32::MAX;

/// The records of one `Records` reply whose ids step evenly, up or down
/// (a loaded array's records do: up in a fresh arena, down where the store
/// reuses freed slots): found by arithmetic on the id, with no map entry
/// per record.
struct Run {
    first_id: u64,
    /// The distance between neighbours' ids (at least 1).
    step: u64,
    /// Whether the ids go down.
    down: bool,
    n: u64,
    /// Every record's `Complete`, but `first` is the first record's.
    record: Complete,
}

impl Run {
    /// The run of `ids`, if they step evenly (without wrapping around).
    fn of(ids: impl Iterator<Item = TableId> + Clone, record: Complete) -> Option<Run> {
        let mut it = ids.clone();
        let first_id = it.next()?.raw();
        let second = it.next().map_or(first_id.wrapping_add(1), TableId::raw);
        let step = first_id.abs_diff(second);
        if step == 0 {
            return None;
        }
        let mut run = Run {
            first_id,
            step,
            down: second < first_id,
            n: u64::MAX,
            record,
        };
        let mut n = 0;
        for (k, id) in ids.enumerate() {
            if run.index(id) != Some(k as u64) {
                return None;
            }
            n += 1;
        }
        run.n = n;
        Some(run)
    }

    /// The position of `id` in the run, if it is there.
    fn index(&self, id: TableId) -> Option<u64> {
        let id = id.raw();
        let d = if self.down {
            self.first_id.checked_sub(id)?
        } else {
            id.checked_sub(self.first_id)?
        };
        // Consecutive ids, the common case, need no division.
        let k = if self.step == 1 {
            d
        } else if d.is_multiple_of(self.step) {
            d / self.step
        } else {
            return None;
        };
        (k < self.n).then_some(k)
    }

    fn find(&self, id: TableId) -> Option<Complete> {
        let k = self.index(id)?;
        Some(Complete {
            first: self.record.first + (k * u64::from(self.record.narr + self.record.nhash)) as u32,
            ..self.record
        })
    }
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
    /// The keys of the records of each `Records` reply, past their array part.
    shapes: Vec<Vec<Cell>>,
    runs: Vec<Run>,
    /// The run that answered last: a loop reads its records one after another.
    hint: std::cell::Cell<usize>,
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

    /// The complete table `id` if the run that answered last holds it.
    fn hinted(&self, id: TableId) -> Option<Complete> {
        self.runs.get(self.hint.get()).and_then(|r| r.find(id))
    }

    /// The complete table `id` if some run holds it (remembered as the hint).
    fn in_runs(&self, id: TableId) -> Option<Complete> {
        self.runs.iter().enumerate().rev().find_map(|(i, r)| {
            let c = r.find(id)?;
            self.hint.set(i);
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

    fn key_is(&self, cell: Cell, key: LKey) -> bool {
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

    /// Takes in a reply's bytes (`Fetched`, `Entries` or `Records`): every
    /// read-only table it describes, and its values as `values` says.
    /// Returns the index of the first value's cell and the number of values
    /// (pairs for `Values::Pairs`); `Ok(None)`: not a reply with table
    /// contents (an error reply, say). On `Err` the cache holds what came
    /// before the bad bytes, consistently.
    pub fn add(&mut self, buf: &[u8], values: Values) -> Result<Option<(u32, usize)>, Malformed> {
        self.make_room(buf.len());
        let first = self.cells.len() as u32;
        let mut adder = Adder {
            cache: self,
            values: &values,
            taken: 0,
            view_at: None,
        };
        let (n, taken) = match hot::visit(buf, &mut adder)? {
            None => return Ok(None),
            Some(Visited::Records(r)) => return self.add_records(&r, values).map(Some),
            Some(Visited::Bytes(_)) => return Err(Malformed),
            Some(Visited::Contents { len, .. }) => (len, adder.taken),
        };
        // Values of the kind `values` wants, as many as the reply says.
        let fits = match values {
            Values::None => true,
            Values::Key { .. } => taken == 1 && n == 1,
            Values::Range { .. } | Values::Pairs => taken == n,
        };
        if !fits {
            return Err(Malformed);
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

    /// Takes in the read-only tables a reply already read describes.
    pub fn add_views(&mut self, c: &Contents<'_>) {
        self.make_room(c.bytes);
        let mut adder = Adder {
            cache: self,
            values: &Values::None,
            taken: 0,
            view_at: None,
        };
        for view in c.views() {
            if adder.view_start(view.head) {
                for v in view.array() {
                    adder.view_value(v);
                }
                for (k, v) in view.hash() {
                    adder.view_entry(k, v);
                }
            }
            adder.view_end(view);
        }
    }

    /// Empties the cache if a reply of `bytes` might take it past its bounds
    /// (a reply makes about one cell per 8 bytes).
    fn make_room(&mut self, bytes: usize) {
        if self.cells.len() + bytes / 8 > MAX_CELLS || self.bytes.len() > MAX_BYTES {
            self.empty();
        }
    }

    /// The rest of [`add`](Self::add) for a `Records` reply (a window of
    /// records of one shape): the window's cells name the records, each
    /// record's values follow in shape order.
    fn add_records(
        &mut self,
        r: &RecordsReader<'_>,
        values: Values,
    ) -> Result<(u32, usize), Malformed> {
        let Values::Range { table, start } = values else {
            return Err(Malformed);
        };
        let nkeys = r.keys().len();
        self.make_room(16 * r.count() * (nkeys + 1));
        let mut keys = Vec::with_capacity(nkeys);
        for k in r.keys() {
            let k = self.cell(k);
            keys.push(k);
        }
        // The array part: the leading keys 1, 2, 3, …
        let narr = keys
            .iter()
            .enumerate()
            .take_while(|(j, k)| **k == Cell::Int(*j as i64 + 1))
            .count();
        let n = r.count();
        let first = self.cells.len() as u32;
        self.cells.extend(r.ids().map(Cell::Table));
        // Values first: nothing may name a cell before it exists (bad bytes
        // stop the loop halfway).
        let values_at = self.cells.len() as u32;
        for v in r.values() {
            let v = match v? {
                Item::Str(s) => self.cell(Item::Str(s)),
                other => scalar(other),
            };
            self.cells.push(v);
        }
        let shape = self.shapes.len() as u32;
        self.shapes.push(keys.split_off(narr));
        let record = |at: u32| Complete {
            len: r.len,
            first: at,
            narr: narr as u32,
            nhash: (nkeys - narr) as u32,
            shape,
        };
        let ids = &self.cells[first as usize..][..n];
        let id_at = |k: usize| match ids[k] {
            Cell::Table(id) => id,
            _ => unreachable!("pushed as tables above"),
        };
        match Run::of((0..n).map(id_at), record(values_at)) {
            Some(run) => self.runs.push(run),
            None => {
                for k in 0..n {
                    let id = id_at(k);
                    let at = values_at + (k * nkeys) as u32;
                    if let Some(Entry::Partial(_)) =
                        self.tables.insert(id, Entry::Complete(record(at)))
                    {
                        self.partials -= 1;
                    }
                }
            }
        }
        self.partial(table).window = Some((start, first, n as u32));
        Ok((first, n))
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
        self.shapes.clear();
        self.runs.clear();
        self.hint.set(0);
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

/// Takes a `Fetched` or an `Entries` into the cache as [`hot::visit`]
/// reads it: its values as `values` says, and every complete read-only
/// table it describes (the border of the others).
struct Adder<'c, 'k> {
    cache: &'c mut RoCache,
    values: &'c Values<'k>,
    /// Values (or entries) taken.
    taken: usize,
    /// The cell where the view being read starts, if it is kept.
    view_at: Option<u32>,
}

impl<'a> Visitor<'a> for Adder<'_, '_> {
    fn value(&mut self, v: Item<'a>) {
        if matches!(self.values, Values::Range { .. } | Values::Key { .. }) {
            let v = self.cache.cell(v);
            self.cache.cells.push(v);
            self.taken += 1;
        }
    }

    fn entry(&mut self, k: Item<'a>, v: Item<'a>) {
        if matches!(self.values, Values::Pairs) {
            let (k, v) = (self.cache.cell(k), self.cache.cell(v));
            self.cache.cells.push(k);
            self.cache.cells.push(v);
            self.taken += 1;
        }
    }

    fn view_start(&mut self, head: ViewHead) -> bool {
        self.view_at = None;
        if !head.readonly {
            return false;
        }
        if !head.complete {
            if !self.cache.tables.contains_key(&head.id) {
                self.cache.set_len(head.id, head.len);
            }
            return false;
        }
        self.view_at = Some(self.cache.cells.len() as u32);
        true
    }

    fn view_value(&mut self, v: Item<'a>) {
        let v = self.cache.cell(v);
        self.cache.cells.push(v);
    }

    fn view_entry(&mut self, k: Item<'a>, v: Item<'a>) {
        let (k, v) = (self.cache.cell(k), self.cache.cell(v));
        self.cache.cells.push(k);
        self.cache.cells.push(v);
    }

    fn view_end(&mut self, view: &View<'a>) {
        let Some(at) = self.view_at.take() else {
            return;
        };
        let (narr, nhash) = view.counts();
        let complete = Complete {
            len: view.head.len,
            first: at,
            narr: narr as u32,
            nhash: nhash as u32,
            shape: PAIRS,
        };
        let old = self
            .cache
            .tables
            .insert(view.head.id, Entry::Complete(complete));
        if let Some(Entry::Partial(_)) = old {
            self.cache.partials -= 1;
        }
    }
}

/// The cell of an item that is not a string.
#[inline]
fn scalar(it: Item) -> Cell {
    match it {
        Item::Nil | Item::Str(_) => Cell::Nil,
        Item::Bool(b) => Cell::Bool(b),
        Item::Int(i) => Cell::Int(i),
        Item::Float(f) => Cell::Float(f),
        Item::Table(id) => Cell::Table(id),
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

#[cfg(test)]
mod tests {
    use super::*;
    use luapool_protocol::{encode, Fetched, Records, Reply, TableView, ToWorker, Value};

    /// A window of `n` records `{id = i, value = i / 3}` as the supervisor sends it.
    fn window(n: u64) -> Vec<u8> {
        let base = 1u64 << 32;
        let views = (0..n)
            .map(|i| TableView {
                id: TableId::from_raw(base + 10 + i),
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
            values: (0..n)
                .map(|i| Value::Table(TableId::from_raw(base + 10 + i)))
                .collect(),
            tables: views,
        })))
    }

    fn records(ids: &[TableId], keys: Vec<Key>, values: Vec<Value>) -> Vec<u8> {
        encode(&ToWorker::Reply(Reply::Records(Records {
            keys,
            len: 1,
            ids: ids.to_vec(),
            values,
        })))
    }

    fn s(c: &RoCache, cell: Cell) -> Vec<u8> {
        match cell {
            Cell::Str { off, len } => c.str(off, len).to_vec(),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn records_read_back_by_key_position_and_iteration() {
        let base = 5u64 << 32;
        let values = vec![
            Value::Int(7),
            Value::Int(-70000),
            Value::Int(i64::MIN),
            Value::Float(0.5),
            Value::Str(b"ann".to_vec()),
            Value::Bool(true),
            Value::Nil,
            Value::Int(300),
            Value::Int(u32::MAX as i64 + 1),
            Value::Float(-1e300),
            Value::Str(vec![0xff; 40]),
            Value::Bool(false),
        ];
        let keys = vec![
            Key::Int(1),
            Key::Int(2),
            Key::str("x"),
            Key::str("y"),
            Key::str("name"),
            Key::Bool(true),
        ];
        for ids in [[base + 3, base + 4], [base + 9, base + 3]].map(|p| p.map(TableId::from_raw)) {
            let mut c = RoCache::default();
            let bytes = records(&ids, keys.clone(), values.clone());
            let (first, n) = c
                .add(
                    &bytes,
                    Values::Range {
                        table: TableId::from_raw(1),
                        start: 11,
                    },
                )
                .unwrap()
                .unwrap();
            assert_eq!(n, 2);
            assert_eq!(c.cell_at(first + 1), Cell::Table(ids[1]));
            assert_eq!(
                c.get(TableId::from_raw(1), LKey::Int(12)),
                Found::Value(Cell::Table(ids[1]))
            );
            let (a, b) = (ids[0], ids[1]);
            assert_eq!(c.get(a, LKey::Int(1)), Found::Value(Cell::Int(7)));
            assert_eq!(c.get(a, LKey::Int(2)), Found::Value(Cell::Int(-70000)));
            assert_eq!(c.get(a, LKey::Str(b"x")), Found::Value(Cell::Int(i64::MIN)));
            assert_eq!(c.get(a, LKey::Str(b"y")), Found::Value(Cell::Float(0.5)));
            let Found::Value(name) = c.get(a, LKey::Str(b"name")) else {
                panic!()
            };
            assert_eq!(s(&c, name), b"ann");
            assert_eq!(c.get(a, LKey::Bool(true)), Found::Value(Cell::Bool(true)));
            assert_eq!(c.get(a, LKey::Str(b"absent")), Found::Value(Cell::Nil));
            assert_eq!(c.get(b, LKey::Int(1)), Found::Value(Cell::Nil), "a hole");
            assert_eq!(c.get(b, LKey::Int(2)), Found::Value(Cell::Int(300)));
            assert_eq!(
                c.get(b, LKey::Str(b"x")),
                Found::Value(Cell::Int(u32::MAX as i64 + 1))
            );
            assert_eq!(c.get(b, LKey::Str(b"y")), Found::Value(Cell::Float(-1e300)));
            assert_eq!(c.len(b), Some(1));
            // Iteration: the array part (skipping the hole), then the rest.
            let mut seen = Vec::new();
            let mut k: Option<Cell> = None;
            loop {
                let after = k.map(|k| match k {
                    Cell::Int(i) => LKey::Int(i),
                    Cell::Bool(v) => LKey::Bool(v),
                    Cell::Str { off, len } => LKey::Str(c.str(off, len)),
                    other => panic!("{other:?}"),
                });
                let Some((key, _)) = c.next_complete(b, after).unwrap() else {
                    break;
                };
                seen.push(key);
                k = Some(key);
            }
            assert_eq!(seen.len(), 5, "{seen:?}");
            assert_eq!(seen[0], Cell::Int(2));
        }
    }

    #[test]
    fn every_record_is_found_whatever_its_ids() {
        let base = 5u64 << 32;
        let patterns: Vec<Vec<TableId>> = vec![
            (0..6).map(|k| TableId::from_raw(base + k)).collect(), // up by one
            (0..6).map(|k| TableId::from_raw(base + 100 - k)).collect(), // down by one (reused slots)
            (0..6).map(|k| TableId::from_raw(base + 3 * k)).collect(),   // up by three
            (0..6)
                .map(|k| TableId::from_raw(base + 50 - 7 * k))
                .collect(), // down by seven
            vec![
                TableId::from_raw(base + 9),
                TableId::from_raw(base + 3),
                TableId::from_raw(base + 4),
                TableId::from_raw(base + 1),
                TableId::from_raw(base + 20),
                TableId::from_raw(base + 2),
            ], // no pattern
            vec![
                TableId::from_raw(base + 9),
                TableId::from_raw(base + 3),
                TableId::from_raw(base + 4),
            ], // starts like a run, is not one
            vec![
                TableId::from_raw(u64::MAX - 1),
                TableId::from_raw(u64::MAX),
                TableId::from_raw(0),
            ], // would wrap
            vec![TableId::from_raw(base)],
        ];
        for ids in patterns {
            let values = (0..ids.len()).map(|k| Value::Int(k as i64 * 10)).collect();
            let mut c = RoCache::default();
            c.add(
                &records(&ids, vec![Key::str("x")], values),
                Values::Range {
                    table: TableId::from_raw(1),
                    start: 1,
                },
            )
            .unwrap()
            .unwrap();
            for (k, id) in ids.iter().enumerate() {
                assert_eq!(
                    c.get(*id, LKey::Str(b"x")),
                    Found::Value(Cell::Int(k as i64 * 10)),
                    "{ids:?} record {k}"
                );
            }
            assert_eq!(
                c.get(TableId::from_raw(base + 1000), LKey::Str(b"x")),
                Found::Miss,
                "{ids:?}"
            );
        }
    }

    #[test]
    fn bad_records_are_malformed_and_leave_nothing_dangling() {
        let base = 5u64 << 32;
        let good = records(
            &[TableId::from_raw(base), TableId::from_raw(base + 1)],
            vec![Key::str("v")],
            vec![Value::Int(1), Value::Int(2)],
        );
        for cut in 0..good.len() {
            let mut c = RoCache::default();
            if c.add(
                &good[..cut],
                Values::Range {
                    table: TableId::from_raw(1),
                    start: 1,
                },
            )
            .is_err()
            {
                // Whatever was kept, reading it is safe.
                let _ = c.get(TableId::from_raw(base), LKey::Str(b"v"));
                let _ = c.get(TableId::from_raw(base + 1), LKey::Str(b"v"));
                let _ = c.get(TableId::from_raw(1), LKey::Int(2));
            }
        }
        // Values count not ids x keys.
        let bad = records(
            &[TableId::from_raw(base), TableId::from_raw(base + 1)],
            vec![Key::str("v")],
            vec![Value::Int(1)],
        );
        assert!(RoCache::default()
            .add(
                &bad,
                Values::Range {
                    table: TableId::from_raw(1),
                    start: 1
                }
            )
            .is_err());
        // Records answer only a window.
        assert!(RoCache::default().add(&good, Values::Pairs).is_err());
    }

    #[test]
    fn mutated_replies_never_panic_and_leave_the_cache_readable() {
        // A valid Records window and a valid Fetched window (strings, holes,
        // nested tables), each with bytes flipped at random, many times.
        let base = 3u64 << 32;
        let ids: Vec<TableId> = (0..20).map(|i| TableId::from_raw(base + 40 - i)).collect();
        let values = (0..20)
            .flat_map(|i| {
                [
                    Value::Int(i),
                    Value::Str(format!("v{i}").into_bytes()),
                    Value::Nil,
                ]
            })
            .collect();
        let flat = records(
            &ids,
            vec![Key::Int(1), Key::str("s"), Key::str("n")],
            values,
        );
        let nested = window(20);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                flat.clone()
            } else {
                nested.clone()
            };
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            bytes.truncate(bytes.len() - (next() % 8) as usize);
            let values = match round % 4 {
                0 | 1 => Values::Range {
                    table: TableId::from_raw(1),
                    start: 1,
                },
                2 => Values::Pairs,
                _ => Values::None,
            };
            let mut c = RoCache::default();
            let _ = c.add(&bytes, values);
            for id in ids
                .iter()
                .copied()
                .chain([TableId::from_raw(base + 10), TableId::from_raw(1)])
            {
                for key in [
                    LKey::Int(1),
                    LKey::Int(2),
                    LKey::Str(b"s"),
                    LKey::Str(b"value"),
                ] {
                    if let Found::Value(Cell::Str { off, len }) = c.get(id, key) {
                        let _ = c.str(off, len);
                    }
                }
                let _ = c.len(id);
                let mut after = None;
                for _ in 0..8 {
                    match c.next_complete(id, after) {
                        Ok(Some((Cell::Int(k), _))) => after = Some(LKey::Int(k)),
                        _ => break,
                    }
                }
            }
        }
    }

    /// Nanoseconds per record of taking in `bytes`, a window of 512.
    fn ns_per_record(bytes: &[u8]) -> f64 {
        let mut c = RoCache::default();
        let t = std::time::Instant::now();
        let reps = 2000;
        for r in 0..reps {
            let start = 1 + 512 * r;
            c.add(
                bytes,
                Values::Range {
                    table: TableId::from_raw(7),
                    start,
                },
            )
            .unwrap();
        }
        t.elapsed().as_nanos() as f64 / (reps * 512) as f64
    }

    #[test]
    #[ignore = "a measurement: cargo test --release -p luapool-worker -- --ignored --nocapture"]
    fn add_records_speed() {
        let base = 1u64 << 32;
        let ids: Vec<TableId> = (0..512).map(|i| TableId::from_raw(base + 10 + i)).collect();
        let values = (0..512)
            .flat_map(|i| [Value::Int(i), Value::Float(i as f64 / 3.0)])
            .collect();
        let bytes = records(&ids, vec![Key::str("id"), Key::str("value")], values);
        let per = ns_per_record(&bytes);
        println!(
            "add records: {per:.1} ns per record ({} bytes per window)",
            bytes.len()
        );
    }

    #[test]
    #[ignore = "a measurement: cargo test --release -p luapool-worker -- --ignored --nocapture"]
    fn add_speed() {
        let bytes = window(512);
        let per = ns_per_record(&bytes);
        println!(
            "add: {per:.1} ns per record ({} bytes per window)",
            bytes.len()
        );
    }
}
