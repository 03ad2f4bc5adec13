//! The hot replies' fast encoders: whole `ToWorker::Reply(..)` messages
//! written from borrowed [`Item`]s, byte for byte what
//! [`encode`](crate::encode) writes for the owned form (see `tests.rs`).
//!
//! Every sequence is written from an [`ExactSizeIterator`]: its length goes
//! into the header, then exactly that many elements follow (padded with nil
//! should an iterator end early, cut should it run long), so whatever a
//! caller passes, the bytes are a well-formed message.

use rmp::encode as mp;

use super::{Entries, Fetched, Item, Records, ViewHead};
use crate::ext_value::{EXT_BIGINT, EXT_FUNCTION};
use crate::value::TableId;

/// Writing to a `Vec` cannot fail: the `rmp` calls' results carry nothing.
fn ok<T, E>(_: Result<T, E>) {}

/// `{"Reply": {variant: [` with `fields` fields, the envelope of every hot
/// reply with fields.
fn envelope(out: &mut Vec<u8>, variant: &str, fields: u32) {
    ok(mp::write_map_len(out, 1));
    ok(mp::write_str(out, "Reply"));
    ok(mp::write_map_len(out, 1));
    ok(mp::write_str(out, variant));
    ok(mp::write_array_len(out, fields));
}

/// Writes one key or value as [`Value`](crate::Value) and
/// [`Key`](crate::Key) serialize. The bulk of a window of records (small
/// integers, floats, nil, booleans) is written here byte by byte, as
/// `rmp` writes it; the rest through `rmp`.
#[inline]
pub fn item(out: &mut Vec<u8>, it: Item<'_>) {
    match it {
        Item::Nil => out.push(0xc0),
        Item::Bool(b) => out.push(if b { 0xc3 } else { 0xc2 }),
        Item::Int(i) => sint(out, i),
        Item::Float(f) => {
            out.reserve(9);
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        other => item_rest(out, other),
    }
}

/// An unsigned integer in the fewest bytes, as `rmp::encode::write_uint`
/// writes it.
#[inline]
fn uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65536 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < 1 << 32 {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A signed integer in the fewest bytes, as `rmp::encode::write_sint`
/// writes it (a non-negative one as [`uint`]).
#[inline]
fn sint(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= -128 {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn item_rest(out: &mut Vec<u8>, it: Item<'_>) {
    match it {
        Item::Nil => ok(mp::write_nil(out)),
        Item::Bool(b) => ok(mp::write_bool(out, b)),
        Item::Int(i) => ok(mp::write_sint(out, i)),
        Item::Float(f) => ok(mp::write_f64(out, f)),
        Item::Str(s) => ok(mp::write_bin(out, s)),
        Item::Table(id) => {
            ok(mp::write_array_len(out, 1));
            ok(mp::write_uint(out, id.raw()));
        }
        Item::BigInt(t) => ext(out, EXT_BIGINT, t.as_bytes()),
        Item::Function(t) => ext(out, EXT_FUNCTION, t.as_bytes()),
    }
}

/// Writes an extension value (as rmp-serde writes one).
pub fn ext(out: &mut Vec<u8>, ty: i8, payload: &[u8]) {
    ok(mp::write_ext_meta(out, payload.len() as u32, ty));
    out.extend_from_slice(payload);
}

/// Writes an array of exactly `it.len()` elements.
fn seq<T>(
    out: &mut Vec<u8>,
    it: impl ExactSizeIterator<Item = T>,
    pad: impl Fn() -> T,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    let n = it.len();
    ok(mp::write_array_len(out, n as u32));
    let mut it = it.fuse();
    for _ in 0..n {
        let x = it.next().unwrap_or_else(&pad);
        each(out, x);
    }
}

fn items<'a>(out: &mut Vec<u8>, it: impl ExactSizeIterator<Item = Item<'a>>) {
    seq(out, it, || Item::Nil, item);
}

fn pairs<'a>(out: &mut Vec<u8>, it: impl ExactSizeIterator<Item = (Item<'a>, Item<'a>)>) {
    seq(
        out,
        it,
        || (Item::Nil, Item::Nil),
        |out, (k, v)| {
            ok(mp::write_array_len(out, 2));
            item(out, k);
            item(out, v);
        },
    );
}

/// One table view to write: its head, and its entries (none unless
/// `head.complete`).
pub struct ViewParts<A, H> {
    /// Id, read-only flag, border, completeness.
    pub head: ViewHead,
    /// Values at keys `1..=n`.
    pub array: A,
    /// Every other entry.
    pub hash: H,
}

fn views<'a, A, H>(out: &mut Vec<u8>, views: impl ExactSizeIterator<Item = ViewParts<A, H>>)
where
    A: ExactSizeIterator<Item = Item<'a>>,
    H: ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
{
    let n = views.len();
    ok(mp::write_array_len(out, n as u32));
    let mut written = 0;
    for v in views.take(n) {
        view(out, v.head, v.array, v.hash);
        written += 1;
    }
    // An iterator that ended early: empty, incomplete views of table 0.
    let none = ViewHead {
        id: TableId::default(),
        readonly: false,
        len: 0,
        complete: false,
    };
    for _ in written..n {
        view(out, none, std::iter::empty(), std::iter::empty());
    }
}

fn view<'a>(
    out: &mut Vec<u8>,
    head: ViewHead,
    array: impl ExactSizeIterator<Item = Item<'a>>,
    hash: impl ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
) {
    ok(mp::write_array_len(out, 6));
    ok(mp::write_uint(out, head.id.raw()));
    ok(mp::write_bool(out, head.readonly));
    ok(mp::write_sint(out, head.len));
    ok(mp::write_bool(out, head.complete));
    items(out, array);
    pairs(out, hash);
}

impl Fetched {
    /// Writes `ToWorker::Reply(Reply::Fetched(..))` from borrowed parts.
    pub fn write<'a, A, H>(
        out: &mut Vec<u8>,
        values: impl ExactSizeIterator<Item = Item<'a>>,
        tables: impl ExactSizeIterator<Item = ViewParts<A, H>>,
    ) where
        A: ExactSizeIterator<Item = Item<'a>>,
        H: ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
    {
        envelope(out, "Fetched", 2);
        items(out, values);
        views(out, tables);
    }
}

impl Entries {
    /// Writes `ToWorker::Reply(Reply::Entries(..))` from borrowed parts.
    pub fn write<'a, A, H>(
        out: &mut Vec<u8>,
        entries: impl ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
        tables: impl ExactSizeIterator<Item = ViewParts<A, H>>,
        done: bool,
    ) where
        A: ExactSizeIterator<Item = Item<'a>>,
        H: ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
    {
        envelope(out, "Entries", 3);
        pairs(out, entries);
        views(out, tables);
        ok(mp::write_bool(out, done));
    }
}

impl Records {
    /// Writes `ToWorker::Reply(Reply::Records(..))` from borrowed parts:
    /// `values` are the records' values, record after record; exactly
    /// `ids.len() * keys.len()` of them are written.
    pub fn write<'a>(
        out: &mut Vec<u8>,
        keys: impl ExactSizeIterator<Item = Item<'a>>,
        len: i64,
        ids: impl ExactSizeIterator<Item = TableId>,
        values: impl Iterator<Item = Item<'a>>,
    ) {
        envelope(out, "Records", 4);
        let nkeys = keys.len();
        items(out, keys);
        ok(mp::write_sint(out, len));
        let nids = ids.len();
        seq(out, ids, TableId::default, |out, id| uint(out, id.raw()));
        items(out, exact(nids * nkeys, values));
    }
}

/// Writes `ToWorker::Reply(Reply::Bytes(bytes))`: a piece of a long string.
pub fn bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    ok(mp::write_map_len(out, 1));
    ok(mp::write_str(out, "Reply"));
    ok(mp::write_map_len(out, 1));
    ok(mp::write_str(out, "Bytes"));
    ok(mp::write_bin(out, bytes));
}

/// An iterator whose length its maker states: for the encoders, which
/// write a sequence's length before its elements (say, a table's live hash
/// entries, which a filter finds).
pub struct Exact<I> {
    len: usize,
    it: I,
}

/// `it`, said to yield `len` elements (the encoders write exactly `len`).
pub fn exact<I: Iterator>(len: usize, it: I) -> Exact<I> {
    Exact { len, it }
}

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        self.it.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}
