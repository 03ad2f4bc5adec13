//! Filling the read-only cache from replies: a `Fetched` or an `Entries`
//! as `hot::visit` reads it (one pass), a `Records` window through its
//! reader, and the views of a reply the writable side read already.

use luapool_protocol::hot::{
    self, Contents, Item, RecordsReader, View, ViewHead, Visited, Visitor,
};
use luapool_protocol::mp::Malformed;
use luapool_protocol::TableId;

use super::cache::{
    Cell, Complete, Entry, Partial, RoCache, Values, MAX_BYTES, MAX_CELLS, MAX_PARTIAL, PAIRS,
};
use super::fast::{HotRun, LastWindow};
use super::run::Run;

impl RoCache {
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
            Values::Range { table, start } => self.set_window(table, start, first, n as u32),
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
        self.cells.reserve(n * (nkeys + 1));
        let first = self.cells.len() as u32;
        // The ids, then the values, are written into the room reserved
        // above, then counted in at once: the loops keep no length.
        let room = &mut self.cells.spare_capacity_mut()[..n];
        let mut written = 0;
        for (cell, id) in room.iter_mut().zip(r.ids()) {
            cell.write(Cell::Table(id));
            written += 1;
        }
        // SAFETY: the `written` cells past the length were written above.
        unsafe { self.cells.set_len(first as usize + written) };
        if written != n {
            return Err(Malformed);
        }
        // Values first: nothing may name a cell before it exists (bad bytes
        // stop the loop halfway).
        let values_at = self.cells.len() as u32;
        let room = &mut self.cells.spare_capacity_mut()[..n * nkeys];
        let bytes = &mut self.bytes;
        let mut written = 0;
        // Numbers inline; text out of line, so this loop stays tight.
        r.each_value(|v| {
            if let Some(cell) = room.get_mut(written) {
                cell.write(match v {
                    Item::Int(i) => Cell::Int(i),
                    Item::Float(f) => Cell::Float(f),
                    Item::Bool(b) => Cell::Bool(b),
                    Item::Nil => Cell::Nil,
                    other => text_cell(bytes, other),
                });
                written += 1;
            }
        })?;
        if written != n * nkeys {
            return Err(Malformed);
        }
        // SAFETY: the `written` cells past the length were written above
        // (`Cell` is `Copy`: nothing to drop should the loop stop early).
        unsafe { self.cells.set_len(values_at as usize + written) };
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
        self.set_window(table, start, first, n as u32);
        Ok((first, n))
    }

    /// Makes `count` cells from `first` the window of the partial table
    /// `table` from key `start` (and the window a loop reads next).
    fn set_window(&mut self, table: TableId, start: i64, first: u32, count: u32) {
        self.partial(table).window = Some((start, first, count));
        self.last.set(LastWindow {
            table,
            start,
            first,
            count,
        });
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
                let (off, len) = self.text(s);
                Cell::Str { off, len }
            }
            Item::BigInt(t) => {
                let (off, len) = self.text(t.as_bytes());
                Cell::BigInt { off, len }
            }
            Item::Function(t) => {
                let (off, len) = self.text(t.as_bytes());
                Cell::Function { off, len }
            }
        }
    }

    /// Copies bytes into the byte arena: where they are.
    fn text(&mut self, s: &[u8]) -> (u32, u32) {
        let off = self.bytes.len() as u32;
        (off, text(&mut self.bytes, s))
    }

    /// Drops every cached entry; partial tables keep their border.
    fn empty(&mut self) {
        self.cells.clear();
        self.bytes.clear();
        self.shapes.clear();
        self.runs.clear();
        self.hint.set(0);
        self.last.set(LastWindow::default());
        self.hot.set(HotRun::default());
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

/// The cell of a string, big integer or function, its text appended to
/// the byte arena `bytes` (and of any other item).
#[inline(never)]
fn text_cell(bytes: &mut Vec<u8>, it: Item) -> Cell {
    let off = bytes.len() as u32;
    match it {
        Item::Str(s) => Cell::Str {
            off,
            len: text(bytes, s),
        },
        Item::BigInt(t) => Cell::BigInt {
            off,
            len: text(bytes, t.as_bytes()),
        },
        Item::Function(t) => Cell::Function {
            off,
            len: text(bytes, t.as_bytes()),
        },
        other => scalar(other),
    }
}

/// Appends `s` to the byte arena `bytes`: its length.
#[inline]
fn text(bytes: &mut Vec<u8>, s: &[u8]) -> u32 {
    bytes.extend_from_slice(s);
    s.len() as u32
}

/// The cell of an item that is not a string.
#[inline]
fn scalar(it: Item) -> Cell {
    match it {
        Item::Nil | Item::Str(_) | Item::BigInt(_) | Item::Function(_) => Cell::Nil,
        Item::Bool(b) => Cell::Bool(b),
        Item::Int(i) => Cell::Int(i),
        Item::Float(f) => Cell::Float(f),
        Item::Table(id) => Cell::Table(id),
    }
}
