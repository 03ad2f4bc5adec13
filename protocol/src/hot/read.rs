//! The hot replies' fast decoders, reading in place (strings are borrowed
//! from the message's bytes):
//!
//! - [`read`] recognises a hot reply and reads it: a [`Contents`] (a
//!   `Fetched` or an `Entries`) is checked whole, after which iterating it
//!   cannot meet malformed bytes, and its views are found by id;
//! - [`visit`] reads a `Fetched` or an `Entries` in one pass, handing its
//!   parts to a [`Visitor`] (the worker's read-only cache copies them so);
//! - a [`RecordsReader`] checks the small parts of a `Records` window
//!   (keys, ids) at once and reads its values as they are asked for,
//!   numbers straight from the bytes.
//!
//! Anything else (`Ok`, `Error`, `Long`, …) is `Ok(None)`, for
//! [`decode`](crate::decode). What decodes here decodes the same way
//! through serde (`tests.rs`, and the `hot_replies` fuzz target): keys are
//! never nil, a table or NaN, and an integral float key is the integer key.
//! One function, `walk`, knows the layout of a `Fetched` and an `Entries`.

use std::borrow::Cow;
use std::cell::OnceCell;

use super::{Item, ViewHead};
use crate::ext_value::{bigint_text, function_text, EXT_BIGINT, EXT_FUNCTION};
use crate::mp::{Cursor, Malformed, Token};
use crate::value::{IdMap, Key, TableId};

/// Reads one value (a table reference is `[id]`).
pub fn value<'a>(c: &mut Cursor<'a>) -> Result<Item<'a>, Malformed> {
    Ok(match c.token()? {
        Token::Nil => Item::Nil,
        Token::Bool(b) => Item::Bool(b),
        Token::Int(i) => Item::Int(i),
        // An integer past i64 is a float, as serde reads a `Value`.
        Token::BigUint(u) => Item::Float(u as f64),
        Token::Float(f) => Item::Float(f),
        Token::Str(b) | Token::Bin(b) => Item::Str(b),
        Token::Array(1) => Item::Table(TableId::from_raw(id(c)?)),
        // What the store writes is canonical: anything else is malformed.
        Token::Ext(EXT_BIGINT, b) => match bigint_text(b) {
            Ok(Cow::Borrowed(t)) => Item::BigInt(t),
            _ => return Err(Malformed),
        },
        Token::Ext(EXT_FUNCTION, b) => Item::Function(function_text(b).map_err(|_| Malformed)?),
        _ => return Err(Malformed),
    })
}

/// Reads one key: a value that can be a key, normalised as [`Key`] is.
pub fn key<'a>(c: &mut Cursor<'a>) -> Result<Item<'a>, Malformed> {
    match value(c)? {
        Item::Nil | Item::Table(_) | Item::BigInt(_) | Item::Function(_) => Err(Malformed),
        Item::Float(f) => match Key::from_f64(f).map_err(|_| Malformed)? {
            Key::Int(i) => Ok(Item::Int(i)),
            _ => Ok(Item::Float(f)),
        },
        other => Ok(other),
    }
}

/// A table id (a non-negative integer).
fn id(c: &mut Cursor<'_>) -> Result<u64, Malformed> {
    match c.token()? {
        Token::Int(i) => u64::try_from(i).map_err(|_| Malformed),
        Token::BigUint(u) => Ok(u),
        _ => Err(Malformed),
    }
}

/// Reads one `[key, value]` pair.
pub fn pair<'a>(c: &mut Cursor<'a>) -> Result<(Item<'a>, Item<'a>), Malformed> {
    if c.array()? != 2 {
        return Err(Malformed);
    }
    Ok((key(c)?, value(c)?))
}

/// A hot reply, read in place.
pub enum HotReply<'a> {
    /// `Reply::Fetched`.
    Fetched(Contents<'a>),
    /// `Reply::Entries`.
    Entries(Contents<'a>),
    /// `Reply::Records`.
    Records(RecordsReader<'a>),
    /// `Reply::Bytes`: a piece of a long string.
    Bytes(&'a [u8]),
}

/// Reads a `ToWorker::Reply` that is a hot reply. `Ok(None)`: another
/// message, to decode the ordinary way; `Err`: a hot reply's variant whose
/// body is malformed.
pub fn read(buf: &[u8]) -> Result<Option<HotReply<'_>>, Malformed> {
    Ok(Some(match header(buf)? {
        None => return Ok(None),
        Some((Kind::Bytes, mut c)) => HotReply::Bytes(c.bytes()?),
        Some((Kind::Fetched, c)) => HotReply::Fetched(Contents::parse(c, false, buf.len())?),
        Some((Kind::Entries, c)) => HotReply::Entries(Contents::parse(c, true, buf.len())?),
        Some((Kind::Records, c)) => HotReply::Records(RecordsReader::parse(c)?),
    }))
}

/// What [`visit`] read.
pub enum Visited<'a> {
    /// A `Fetched` or an `Entries`, whose parts went to the visitor.
    Contents {
        /// How many values (`Fetched`) or entries (`Entries`).
        len: usize,
        /// `Entries`: true if no entries follow.
        done: bool,
    },
    /// `Reply::Records`.
    Records(RecordsReader<'a>),
    /// `Reply::Bytes`.
    Bytes(&'a [u8]),
}

/// Reads a hot reply in one pass, handing the parts of a `Fetched` or an
/// `Entries` to `visitor` as they are read. On `Err` the visitor has seen
/// the parts before the malformed bytes, and a view's end only for a view
/// read whole.
pub fn visit<'a>(
    buf: &'a [u8],
    visitor: &mut impl Visitor<'a>,
) -> Result<Option<Visited<'a>>, Malformed> {
    Ok(Some(match header(buf)? {
        None => return Ok(None),
        Some((Kind::Bytes, mut c)) => Visited::Bytes(c.bytes()?),
        Some((Kind::Records, c)) => Visited::Records(RecordsReader::parse(c)?),
        Some((kind, c)) => {
            let (len, done, _) = walk(c, kind == Kind::Entries, visitor)?;
            Visited::Contents { len, done }
        }
    }))
}

/// The hot replies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fetched,
    Entries,
    Records,
    Bytes,
}

/// The kind of hot reply `buf` holds and a cursor at its body (the fields
/// of a struct, the bytes of a piece); `None`: another message.
fn header(buf: &[u8]) -> Result<Option<(Kind, Cursor<'_>)>, Malformed> {
    let mut c = Cursor::new(buf);
    if !matches!(variant(&mut c), Ok(Some(b"Reply"))) {
        return Ok(None); // `Shutdown`, `Start`, or not a message at all
    }
    let mut probe = c;
    let Ok(Some(name)) = variant(&mut probe) else {
        return Ok(None); // a unit variant such as `Ok`
    };
    let mut c = probe;
    let (kind, fields) = match name {
        b"Bytes" => return Ok(Some((Kind::Bytes, c))),
        b"Fetched" => (Kind::Fetched, 2),
        b"Entries" => (Kind::Entries, 3),
        b"Records" => (Kind::Records, 4),
        _ => return Ok(None),
    };
    if c.array()? != fields {
        return Err(Malformed);
    }
    Ok(Some((kind, c)))
}

/// The name of a one-entry map `{name: …}` (an enum's variant), leaving
/// the cursor at its value; `None`: not such a map.
fn variant<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, Malformed> {
    if c.map()? != 1 {
        return Ok(None);
    }
    match c.token()? {
        Token::Str(s) => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// Receives the parts of a `Fetched` or an `Entries` as [`visit`] reads
/// them, in the order of the bytes. Every method does nothing by default.
pub trait Visitor<'a> {
    /// One of a `Fetched`'s values.
    fn value(&mut self, _v: Item<'a>) {}
    /// One of an `Entries`' entries.
    fn entry(&mut self, _k: Item<'a>, _v: Item<'a>) {}
    /// A view begins; returns whether to receive its entries.
    fn view_start(&mut self, _head: ViewHead) -> bool {
        false
    }
    /// A value of the view's array part, in order.
    fn view_value(&mut self, _v: Item<'a>) {}
    /// An entry of the view's hash part, in order.
    fn view_entry(&mut self, _k: Item<'a>, _v: Item<'a>) {}
    /// The view was read whole.
    fn view_end(&mut self, _view: &View<'a>) {}
}

/// Reads the body of a `Fetched` (`entries` false) or an `Entries`,
/// checking every part and handing it to `v`. Returns the count of values
/// or entries, `done`, and a cursor at the first of them.
fn walk<'a>(
    mut c: Cursor<'a>,
    entries: bool,
    v: &mut impl Visitor<'a>,
) -> Result<(usize, bool, Cursor<'a>), Malformed> {
    let n = c.array()?;
    let first = c;
    for _ in 0..n {
        if entries {
            let (k, x) = pair(&mut c)?;
            v.entry(k, x);
        } else {
            v.value(value(&mut c)?);
        }
    }
    for _ in 0..c.array()? {
        if c.array()? != 6 {
            return Err(Malformed);
        }
        let head = ViewHead {
            id: TableId::from_raw(id(&mut c)?),
            readonly: c.bool()?,
            len: c.int()?,
            complete: c.bool()?,
        };
        let keep = v.view_start(head);
        let narr = c.array()?;
        let array = c;
        for _ in 0..narr {
            let x = value(&mut c)?;
            if keep {
                v.view_value(x);
            }
        }
        let nhash = c.array()?;
        let hash = c;
        for _ in 0..nhash {
            let (k, x) = pair(&mut c)?;
            if keep {
                v.view_entry(k, x);
            }
        }
        v.view_end(&View {
            head,
            narr,
            nhash,
            array,
            hash,
        });
    }
    let done = if entries { c.bool()? } else { false };
    Ok((n, done, first))
}

/// A `Fetched` (values) or an `Entries` (`[key, value]` pairs, and whether
/// they are the last), checked.
pub struct Contents<'a> {
    n: usize,
    entries: bool,
    values: Cursor<'a>,
    /// `Entries`: true if no entries follow.
    pub done: bool,
    views: Vec<View<'a>>,
    /// Views by id, made on the first [`view`](Self::view).
    index: OnceCell<IdMap<u32>>,
    /// Tables described plus their entries: what building them adds to a
    /// worker's memory beyond the values themselves.
    pub inlined: usize,
    /// Whether a read-only table is among the views.
    pub any_readonly: bool,
    /// The reply's size in bytes.
    pub bytes: usize,
}

impl<'a> Contents<'a> {
    fn parse(c: Cursor<'a>, entries: bool, bytes: usize) -> Result<Contents<'a>, Malformed> {
        /// Keeps the views.
        struct Views<'a>(Vec<View<'a>>);
        impl<'a> Visitor<'a> for Views<'a> {
            fn view_end(&mut self, view: &View<'a>) {
                self.0.push(*view);
            }
        }
        let mut views = Views(Vec::new());
        let (n, done, values) = walk(c, entries, &mut views)?;
        let views = views.0;
        Ok(Contents {
            n,
            entries,
            values,
            done,
            inlined: views.iter().map(|v| 1 + v.narr + v.nhash).sum(),
            any_readonly: views.iter().any(|v| v.head.readonly),
            views,
            index: OnceCell::new(),
            bytes,
        })
    }

    /// How many values (`Fetched`) or entries (`Entries`).
    pub fn len(&self) -> usize {
        self.n
    }

    /// True if there are no values or entries.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The values of a `Fetched` (none for an `Entries`).
    pub fn values(&self) -> Items<'a> {
        Items::new(if self.entries { 0 } else { self.n }, self.values, value)
    }

    /// The entries of an `Entries` (none for a `Fetched`).
    pub fn entries(&self) -> Pairs<'a> {
        Pairs::new(if self.entries { self.n } else { 0 }, self.values)
    }

    /// The views, in the order the reply lists them.
    pub fn views(&self) -> &[View<'a>] {
        &self.views
    }

    /// The view of table `id`, if the reply carries one (the last, if it
    /// carries several).
    pub fn view(&self, id: TableId) -> Option<&View<'a>> {
        let index = self.index.get_or_init(|| {
            let mut index = IdMap::with_capacity_and_hasher(self.views.len(), Default::default());
            for (i, v) in self.views.iter().enumerate() {
                index.insert(v.head.id, i as u32);
            }
            index
        });
        index.get(&id).map(|&i| &self.views[i as usize])
    }
}

/// One table view, checked.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// Id, read-only flag, border, completeness.
    pub head: ViewHead,
    narr: usize,
    nhash: usize,
    array: Cursor<'a>,
    hash: Cursor<'a>,
}

impl<'a> View<'a> {
    /// How many array values and hash entries it carries.
    pub fn counts(&self) -> (usize, usize) {
        (self.narr, self.nhash)
    }

    /// The values at keys `1..=n`.
    pub fn array(&self) -> Items<'a> {
        Items::new(self.narr, self.array, value)
    }

    /// Every other entry.
    pub fn hash(&self) -> Pairs<'a> {
        Pairs::new(self.nhash, self.hash)
    }
}

/// Values (or keys) of checked bytes, in order.
#[derive(Clone, Copy)]
pub struct Items<'a> {
    left: usize,
    c: Cursor<'a>,
    read: fn(&mut Cursor<'a>) -> Result<Item<'a>, Malformed>,
}

impl<'a> Items<'a> {
    fn new(
        left: usize,
        c: Cursor<'a>,
        read: fn(&mut Cursor<'a>) -> Result<Item<'a>, Malformed>,
    ) -> Items<'a> {
        Items { left, c, read }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;
    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when the reply was read.
        Some((self.read)(&mut self.c).unwrap_or(Item::Nil))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Items<'_> {}

/// `[key, value]` pairs of checked bytes, in order.
#[derive(Clone, Copy)]
pub struct Pairs<'a> {
    left: usize,
    c: Cursor<'a>,
}

impl<'a> Pairs<'a> {
    fn new(left: usize, c: Cursor<'a>) -> Pairs<'a> {
        Pairs { left, c }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (Item<'a>, Item<'a>);
    fn next(&mut self) -> Option<(Item<'a>, Item<'a>)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when the reply was read.
        Some(pair(&mut self.c).unwrap_or((Item::Nil, Item::Nil)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Pairs<'_> {}

/// A `Records` window: its keys and ids checked, its values read as they
/// are asked for.
pub struct RecordsReader<'a> {
    nkeys: usize,
    keys: Cursor<'a>,
    /// A border of every record.
    pub len: i64,
    n: usize,
    ids: Cursor<'a>,
    values: Cursor<'a>,
}

impl<'a> RecordsReader<'a> {
    fn parse(mut c: Cursor<'a>) -> Result<RecordsReader<'a>, Malformed> {
        let nkeys = c.array()?;
        let keys = c;
        for _ in 0..nkeys {
            key(&mut c)?;
        }
        let len = c.int()?;
        let n = c.array()?;
        let ids = c;
        let mut check = RecordIds { left: n, c };
        for _ in 0..n {
            check.read()?;
        }
        c = check.c;
        if Some(c.array()?) != n.checked_mul(nkeys) {
            return Err(Malformed);
        }
        Ok(RecordsReader {
            nkeys,
            keys,
            len,
            n,
            ids,
            values: c,
        })
    }

    /// The keys every record has, in order.
    pub fn keys(&self) -> Items<'a> {
        Items::new(self.nkeys, self.keys, key)
    }

    /// How many records.
    pub fn count(&self) -> usize {
        self.n
    }

    /// The records' ids, in order.
    pub fn ids(&self) -> RecordIds<'a> {
        RecordIds {
            left: self.n,
            c: self.ids,
        }
    }

    /// The records' values, record after record, as they are read: an
    /// `Err` stops the reading (the bytes are malformed there).
    pub fn values(&self) -> RecordValues<'a> {
        RecordValues {
            left: self.n * self.nkeys,
            c: self.values,
        }
    }
}

/// The ids of a `Records` window (checked when it was read).
#[derive(Clone)]
pub struct RecordIds<'a> {
    left: usize,
    c: Cursor<'a>,
}

impl RecordIds<'_> {
    #[inline]
    fn read(&mut self) -> Result<TableId, Malformed> {
        // A session's ids are past u32 (the arena is in the high bits).
        if let [0xcf, x0, x1, x2, x3, x4, x5, x6, x7, ..] = *self.c.rest() {
            self.c.advance(9);
            return Ok(TableId::from_raw(u64::from_be_bytes([
                x0, x1, x2, x3, x4, x5, x6, x7,
            ])));
        }
        if let Some((f, used)) = fixed(self.c.rest()) {
            let id = match f {
                Fixed::Int(i) if i >= 0 => i as u64,
                Fixed::U64(u) => u,
                _ => return Err(Malformed),
            };
            self.c.advance(used);
            return Ok(TableId::from_raw(id));
        }
        id(&mut self.c).map(TableId::from_raw)
    }
}

impl Iterator for RecordIds<'_> {
    type Item = TableId;
    #[inline]
    fn next(&mut self) -> Option<TableId> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.read().unwrap_or_default())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for RecordIds<'_> {}

impl<'a> RecordsReader<'a> {
    /// Hands every value to `sink`, record after record, in one tight
    /// loop (numbers, booleans and nil straight from the bytes, the rest
    /// through [`value`]): the bulk path of a window. Stops at the first
    /// malformed value; `sink` has then had the values before it.
    #[inline]
    pub fn each_value(&self, mut sink: impl FnMut(Item<'a>)) -> Result<(), Malformed> {
        let mut b = self.values.rest();
        for _ in 0..self.n * self.nkeys {
            // The two commonest first: a small integer, a float.
            match b {
                [m @ 0x00..=0x7f, rest @ ..] => {
                    sink(Item::Int(i64::from(*m)));
                    b = rest;
                    continue;
                }
                [0xcb, x0, x1, x2, x3, x4, x5, x6, x7, rest @ ..] => {
                    sink(Item::Float(f64::from_be_bytes([
                        *x0, *x1, *x2, *x3, *x4, *x5, *x6, *x7,
                    ])));
                    b = rest;
                    continue;
                }
                _ => {}
            }
            match fixed(b) {
                Some((f, used)) => {
                    // `fixed` read `used` bytes of `b`.
                    b = b.get(used..).unwrap_or_default();
                    sink(f.item());
                }
                None => {
                    let mut c = Cursor::new(b);
                    sink(value(&mut c)?);
                    b = c.rest();
                }
            }
        }
        Ok(())
    }
}

/// The values of a `Records` window, read as they are asked for.
pub struct RecordValues<'a> {
    left: usize,
    c: Cursor<'a>,
}

impl<'a> Iterator for RecordValues<'a> {
    type Item = Result<Item<'a>, Malformed>;
    /// Numbers, booleans and nil straight from the bytes (the bulk of a
    /// window of records); the rest through [`value`].
    #[inline]
    fn next(&mut self) -> Option<Result<Item<'a>, Malformed>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some((f, used)) = fixed(self.c.rest()) else {
            return Some(value(&mut self.c));
        };
        self.c.advance(used);
        Some(Ok(f.item()))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// A fixed-size MessagePack value.
enum Fixed {
    Nil,
    Bool(bool),
    Int(i64),
    U64(u64),
    Float(f64),
}

impl Fixed {
    #[inline(always)]
    fn item<'a>(self) -> Item<'a> {
        match self {
            Fixed::Int(i) => Item::Int(i),
            Fixed::U64(u) => match i64::try_from(u) {
                Ok(i) => Item::Int(i),
                // Past i64: a float, as serde reads it.
                Err(_) => Item::Float(u as f64),
            },
            Fixed::Float(f) => Item::Float(f),
            Fixed::Bool(b) => Item::Bool(b),
            Fixed::Nil => Item::Nil,
        }
    }
}

/// The fixed-size value at the start of `b` and its length in bytes, if it
/// is one (`None`: anything else, or too few bytes; the caller falls back
/// to the general reader, which reports malformed input).
#[inline(always)]
fn fixed(b: &[u8]) -> Option<(Fixed, usize)> {
    #[inline(always)]
    fn be<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.get(1..1 + N)?.try_into().ok()
    }
    Some(match *b.first()? {
        m @ 0x00..=0x7f => (Fixed::Int(i64::from(m)), 1),
        m @ 0xe0..=0xff => (Fixed::Int(i64::from(m as i8)), 1),
        0xc0 => (Fixed::Nil, 1),
        0xc2 => (Fixed::Bool(false), 1),
        0xc3 => (Fixed::Bool(true), 1),
        0xcb => (Fixed::Float(f64::from_be_bytes(be(b)?)), 9),
        0xca => (Fixed::Float(f64::from(f32::from_be_bytes(be(b)?))), 5),
        0xcc => (Fixed::Int(i64::from(u8::from_be_bytes(be(b)?))), 2),
        0xcd => (Fixed::Int(i64::from(u16::from_be_bytes(be(b)?))), 3),
        0xce => (Fixed::Int(i64::from(u32::from_be_bytes(be(b)?))), 5),
        0xcf => (Fixed::U64(u64::from_be_bytes(be(b)?)), 9),
        0xd0 => (Fixed::Int(i64::from(i8::from_be_bytes(be(b)?))), 2),
        0xd1 => (Fixed::Int(i64::from(i16::from_be_bytes(be(b)?))), 3),
        0xd2 => (Fixed::Int(i64::from(i32::from_be_bytes(be(b)?))), 5),
        0xd3 => (Fixed::Int(i64::from_be_bytes(be(b)?)), 9),
        _ => return None,
    })
}
