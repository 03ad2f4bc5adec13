//! Reading the replies that carry table contents (`Fetched`, `Entries`)
//! straight from their MessagePack bytes, without building Rust values.
//!
//! [`Reader::parse`] checks the whole reply once and indexes the table views
//! by id; after that, building Lua values from it cannot meet malformed
//! bytes. The format is what `luapool_protocol::encode` writes (rmp-serde:
//! enums as one-entry maps keyed by variant name, structs as arrays, a
//! table reference as `[id]`, strings as bin). Views are flat: tables nest
//! by id, never by bytes, so reading needs no recursion.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use luapool_protocol::TableId;

/// Hashes table ids (already well spread: arena and slot) by multiplying.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (i ^ (i >> 32)).wrapping_mul(0x9e3779b97f4a7c15);
    }
}

type IdMap<V> = HashMap<TableId, V, BuildHasherDefault<IdHasher>>;

/// The reply was not a well-formed `Fetched`/`Entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// A scalar or a table reference, borrowed from the reply's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// nil
    Nil,
    /// boolean
    Bool(bool),
    /// integer
    Int(i64),
    /// float
    Float(f64),
    /// string bytes
    Str(&'a [u8]),
    /// a table reference
    Table(TableId),
}

/// A cursor over MessagePack bytes.
#[derive(Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, Malformed> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| acc << 8 | *b as u64))
    }

    /// An array header; returns its length.
    pub fn array(&mut self) -> Result<usize, Malformed> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok((m & 0x0f) as usize),
            0xdc => Ok(self.be(2)? as usize),
            0xdd => Ok(self.be(4)? as usize),
            _ => Err(Malformed),
        }
    }

    fn map(&mut self) -> Result<usize, Malformed> {
        match self.byte()? {
            m @ 0x80..=0x8f => Ok((m & 0x0f) as usize),
            0xde => Ok(self.be(2)? as usize),
            0xdf => Ok(self.be(4)? as usize),
            _ => Err(Malformed),
        }
    }

    fn int_after(&mut self, m: u8) -> Result<Option<i128>, Malformed> {
        Ok(Some(match m {
            0x00..=0x7f => m as i128,
            0xe0..=0xff => m as i8 as i128,
            0xcc => self.be(1)? as i128,
            0xcd => self.be(2)? as i128,
            0xce => self.be(4)? as i128,
            0xcf => self.be(8)? as i128,
            0xd0 => self.be(1)? as u8 as i8 as i128,
            0xd1 => self.be(2)? as u16 as i16 as i128,
            0xd2 => self.be(4)? as u32 as i32 as i128,
            0xd3 => self.be(8)? as i64 as i128,
            _ => return Ok(None),
        }))
    }

    /// An integer that fits `i64`.
    pub fn int(&mut self) -> Result<i64, Malformed> {
        let m = self.byte()?;
        self.int_after(m)?.and_then(|i| i64::try_from(i).ok()).ok_or(Malformed)
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            _ => Err(Malformed),
        }
    }

    fn bytes_after(&mut self, m: u8) -> Result<Option<&'a [u8]>, Malformed> {
        let n = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xc4 | 0xd9 => self.be(1)? as usize,
            0xc5 | 0xda => self.be(2)? as usize,
            0xc6 | 0xdb => self.be(4)? as usize,
            _ => return Ok(None),
        };
        self.take(n).map(Some)
    }

    fn str(&mut self) -> Result<&'a [u8], Malformed> {
        let m = self.byte()?;
        self.bytes_after(m)?.ok_or(Malformed)
    }

    /// One value (a key or a value: the same shapes).
    pub fn item(&mut self) -> Result<Item<'a>, Malformed> {
        let m = self.byte()?;
        if let Some(i) = self.int_after(m)? {
            // An integer past i64 is a float, as the codec decodes it.
            return Ok(i64::try_from(i).map_or(Item::Float(i as f64), Item::Int));
        }
        if let Some(b) = self.bytes_after(m)? {
            return Ok(Item::Str(b));
        }
        Ok(match m {
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xca => Item::Float(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => Item::Float(f64::from_bits(self.be(8)?)),
            0x91 => Item::Table(match self.byte()? {
                m @ 0x00..=0x7f => m as u64,
                0xcc => self.be(1)?,
                0xcd => self.be(2)?,
                0xce => self.be(4)?,
                0xcf => self.be(8)?,
                _ => return Err(Malformed),
            }),
            _ => return Err(Malformed),
        })
    }

    fn expect_variant(&mut self, name: &[u8]) -> Result<bool, Malformed> {
        if self.map()? != 1 {
            return Err(Malformed);
        }
        Ok(self.str()? == name)
    }
}

/// The contents of one table view, checked.
pub struct View<'a> {
    /// Whether writes are refused.
    pub readonly: bool,
    /// True if `array` and `hash` are the whole table.
    pub complete: bool,
    /// A border of the table.
    pub len: i64,
    /// How many array values and hash pairs follow in `body`.
    pub counts: (usize, usize),
    /// Array values, then `[key, value]` pairs (starting at the hash header).
    pub body: Cursor<'a>,
}

/// A parsed `Fetched` or `Entries` reply.
pub struct Reader<'a> {
    /// The values (for `Entries`: `[key, value]` pairs), count and cursor.
    pub values: (usize, Cursor<'a>),
    /// `Entries`: whether the iteration is done.
    pub done: bool,
    views: IdMap<Cursor<'a>>,
}

impl<'a> Reader<'a> {
    /// Parses a `ToWorker::Reply(Fetched | Entries)`. `Ok(None)`: some other
    /// message, to decode the ordinary way.
    pub fn parse(buf: &'a [u8]) -> Result<Option<Reader<'a>>, Malformed> {
        let mut c = Cursor::new(buf);
        if !c.expect_variant(b"Reply")? {
            return Ok(None);
        }
        let mut probe = c;
        if probe.map().is_err() {
            return Ok(None); // a unit variant such as `Ok`
        }
        let entries = match probe.str()? {
            b"Fetched" => false,
            b"Entries" => true,
            _ => return Ok(None),
        };
        c = probe;
        if c.array()? != if entries { 3 } else { 2 } {
            return Err(Malformed);
        }
        let n = c.array()?;
        let values = c;
        for _ in 0..n {
            if entries {
                if c.array()? != 2 {
                    return Err(Malformed);
                }
                c.item()?;
            }
            c.item()?;
        }
        let nviews = c.array()?;
        let mut views = IdMap::with_capacity_and_hasher(nviews.min(1 << 16), Default::default());
        for _ in 0..nviews {
            let start = c;
            if c.array()? != 6 {
                return Err(Malformed);
            }
            let id = c.int()? as u64;
            c.bool()?;
            c.int()?;
            c.bool()?;
            for _ in 0..c.array()? {
                c.item()?;
            }
            for _ in 0..c.array()? {
                if c.array()? != 2 {
                    return Err(Malformed);
                }
                c.item()?;
                c.item()?;
            }
            views.insert(id, start);
        }
        let done = if entries { c.bool()? } else { false };
        Ok(Some(Reader { values: (n, values), done, views }))
    }

    /// The view of table `id`, if the reply carries one.
    pub fn view(&self, id: TableId) -> Option<View<'a>> {
        let mut c = *self.views.get(&id)?;
        // Checked by parse(): these cannot fail.
        let read = |c: &mut Cursor<'a>| -> Result<View<'a>, Malformed> {
            c.array()?;
            c.int()?;
            let readonly = c.bool()?;
            let len = c.int()?;
            let complete = c.bool()?;
            let narr = c.array()?;
            let mut skip = *c;
            for _ in 0..narr {
                skip.item()?;
            }
            let nhash = skip.array()?;
            Ok(View { readonly, complete, len, counts: (narr, nhash), body: *c })
        };
        read(&mut c).ok()
    }
}

/// Reads one `[key, value]` pair of a view's hash part or of `Entries`.
pub fn pair<'a>(c: &mut Cursor<'a>) -> (Item<'a>, Item<'a>) {
    let _ = c.array();
    let k = c.item().unwrap_or(Item::Nil);
    let v = c.item().unwrap_or(Item::Nil);
    (k, v)
}

/// Skips the hash part's header (after a view's array values).
pub fn hash_header(c: &mut Cursor<'_>) {
    let _ = c.array();
}

#[cfg(test)]
mod tests {
    use super::*;
    use luapool_protocol::{encode, Fetched, Key, Reply, TableView, ToWorker, Value};

    #[test]
    fn reads_what_the_codec_writes() {
        let view = TableView {
            id: 1 << 40,
            readonly: true,
            len: 2,
            complete: true,
            array: vec![Value::Int(-5), Value::Str(vec![0xff; 300])],
            hash: vec![(Key::str("value"), Value::Float(0.25)), (Key::Int(70000), Value::Table(3))],
        };
        let msg = ToWorker::Reply(Reply::Fetched(Fetched {
            values: vec![Value::Table(1 << 40), Value::Nil, Value::Int(i64::MIN), Value::Bool(true)],
            tables: vec![view],
        }));
        let bytes = encode(&msg);
        let r = Reader::parse(&bytes).unwrap().unwrap();
        let (n, mut c) = r.values;
        assert_eq!(n, 4);
        let items: Vec<_> = (0..n).map(|_| c.item().unwrap()).collect();
        assert_eq!(items, vec![Item::Table(1 << 40), Item::Nil, Item::Int(i64::MIN), Item::Bool(true)]);
        let v = r.view(1 << 40).unwrap();
        assert!(v.readonly && v.complete);
        assert_eq!((v.len, v.counts), (2, (2, 2)));
        let mut b = v.body;
        assert_eq!(b.item().unwrap(), Item::Int(-5));
        assert_eq!(b.item().unwrap(), Item::Str(&[0xff; 300][..]));
        hash_header(&mut b);
        assert_eq!(pair(&mut b), (Item::Str(b"value"), Item::Float(0.25)));
        assert_eq!(pair(&mut b), (Item::Int(70000), Item::Table(3)));
    }

    #[test]
    fn other_replies_are_left_to_the_codec() {
        for msg in [ToWorker::Reply(Reply::Ok), ToWorker::Reply(Reply::Len(3)), ToWorker::Shutdown] {
            assert!(Reader::parse(&encode(&msg)).unwrap().is_none());
        }
    }

    #[test]
    fn truncated_replies_are_malformed_not_panics() {
        let msg = ToWorker::Reply(Reply::Fetched(Fetched { values: vec![Value::Str(b"abc".to_vec())], tables: vec![] }));
        let bytes = encode(&msg);
        for cut in 0..bytes.len() {
            let _ = Reader::parse(&bytes[..cut]);
        }
    }
}
