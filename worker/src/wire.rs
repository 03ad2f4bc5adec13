//! Reading the replies that carry table contents (`Fetched`, `Entries`)
//! straight from their MessagePack bytes, without building Rust values.
//!
//! [`Reader::parse`] checks the whole reply once and indexes the table views
//! by id; after that, building Lua values from it cannot meet malformed
//! bytes. The format is what `luapool_protocol::encode` writes (rmp-serde:
//! enums as one-entry maps keyed by variant name, structs as arrays, a
//! table reference as `[id]`, strings as bin). Views are flat: tables nest
//! by id, never by bytes, so reading needs no recursion.

use luapool_protocol::{IdMap, TableId};

use luapool_protocol::mp::Token;
pub use luapool_protocol::mp::{Cursor, Malformed};

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

/// Reads one key or value (the same shapes: a table reference is `[id]`).
pub fn item<'a>(c: &mut Cursor<'a>) -> Result<Item<'a>, Malformed> {
    Ok(match c.token()? {
        Token::Nil => Item::Nil,
        Token::Bool(b) => Item::Bool(b),
        Token::Int(i) => Item::Int(i),
        // An integer past i64 is a float, as the codec decodes it.
        Token::BigUint(u) => Item::Float(u as f64),
        Token::Float(f) => Item::Float(f),
        Token::Str(b) | Token::Bin(b) => Item::Str(b),
        Token::Array(1) => match c.token()? {
            Token::Int(id) => Item::Table(TableId::from_raw(id as u64)),
            Token::BigUint(id) => Item::Table(TableId::from_raw(id)),
            _ => return Err(Malformed),
        },
        _ => return Err(Malformed),
    })
}

fn expect_variant(c: &mut Cursor<'_>, name: &[u8]) -> Result<bool, Malformed> {
    if c.map()? != 1 {
        return Err(Malformed);
    }
    Ok(c.bytes()? == name)
}

/// Which reply with table contents a message is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contents {
    /// `Fetched`: values, then views.
    Fetched,
    /// `Entries`: `[key, value]` pairs, views, done.
    Entries,
    /// `Records`: keys, len, ids, values.
    Records,
}

/// Reads up to the first field of a `ToWorker::Reply(Fetched | Entries |
/// Records)` and says which; `None` for any other message, to decode the
/// ordinary way.
pub fn contents_header(c: &mut Cursor<'_>) -> Result<Option<Contents>, Malformed> {
    if !matches!(expect_variant(c, b"Reply"), Ok(true)) {
        return Ok(None); // a unit variant such as `Shutdown`, or not a reply
    }
    let mut probe = *c;
    if probe.map().is_err() {
        return Ok(None); // a unit variant such as `Ok`
    }
    let (kind, fields) = match probe.bytes()? {
        b"Fetched" => (Contents::Fetched, 2),
        b"Entries" => (Contents::Entries, 3),
        b"Records" => (Contents::Records, 4),
        _ => return Ok(None),
    };
    *c = probe;
    if c.array()? != fields {
        return Err(Malformed);
    }
    Ok(Some(kind))
}

/// The piece of a string a `ToWorker::Reply(Reply::Bytes(..))` carries,
/// borrowed; `Ok(None)`: another message (an error reply), to decode the
/// ordinary way.
pub fn bytes_reply(buf: &[u8]) -> Result<Option<&[u8]>, Malformed> {
    let mut c = Cursor::new(buf);
    if !matches!(expect_variant(&mut c, b"Reply"), Ok(true)) {
        return Ok(None);
    }
    let mut probe = c;
    if probe.map().is_err() || probe.bytes()? != b"Bytes" {
        return Ok(None);
    }
    Ok(Some(probe.bytes()?))
}

/// The contents of one table view, checked.
#[derive(Clone, Copy)]
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
    /// Tables the reply describes plus their entries: what building it adds
    /// to the worker's memory beyond the values themselves (a record costs
    /// a proxy, a metatable and a cache, and its fields).
    pub inlined: usize,
    /// Whether it describes a read-only table (then the read-only cache
    /// wants it too).
    pub any_readonly: bool,
    /// The reply's size in bytes.
    pub bytes: usize,
    views: IdMap<View<'a>>,
}

impl<'a> Reader<'a> {
    /// Parses a `ToWorker::Reply(Fetched | Entries)`. `Ok(None)`: some other
    /// message, to decode the ordinary way.
    pub fn parse(buf: &'a [u8]) -> Result<Option<Reader<'a>>, Malformed> {
        let mut c = Cursor::new(buf);
        let entries = match contents_header(&mut c)? {
            Some(Contents::Fetched) => false,
            Some(Contents::Entries) => true,
            // Only read-only windows come as records (ro_cache.rs).
            Some(Contents::Records) | None => return Ok(None),
        };
        let n = c.array()?;
        let values = c;
        for _ in 0..n {
            if entries {
                if c.array()? != 2 {
                    return Err(Malformed);
                }
                item(&mut c)?;
            }
            item(&mut c)?;
        }
        let nviews = c.array()?;
        let mut views = IdMap::with_capacity_and_hasher(nviews.min(1 << 16), Default::default());
        let mut inlined = 0;
        let mut any_readonly = false;
        for _ in 0..nviews {
            let (id, readonly, len, complete) = view_head(&mut c)?;
            any_readonly |= readonly;
            let narr = c.array()?;
            let body = c;
            for _ in 0..narr {
                item(&mut c)?;
            }
            let nhash = c.array()?;
            inlined += 1 + narr + nhash;
            views.insert(
                id,
                View {
                    readonly,
                    complete,
                    len,
                    counts: (narr, nhash),
                    body,
                },
            );
            for _ in 0..nhash {
                pair_checked(&mut c)?;
            }
        }
        let done = if entries { c.bool()? } else { false };
        Ok(Some(Reader {
            values: (n, values),
            done,
            inlined,
            any_readonly,
            bytes: buf.len(),
            views,
        }))
    }

    /// The view of table `id`, if the reply carries one (parsed once, by
    /// [`parse`](Self::parse)).
    pub fn view(&self, id: TableId) -> Option<View<'a>> {
        self.views.get(&id).copied()
    }
}

/// Reads one `[key, value]` pair of a view's hash part or of `Entries`.
pub fn pair<'a>(c: &mut Cursor<'a>) -> (Item<'a>, Item<'a>) {
    let _ = c.array();
    let k = item(c).unwrap_or(Item::Nil);
    let v = item(c).unwrap_or(Item::Nil);
    (k, v)
}

/// Reads the head of a table view: `[id, readonly, len, complete, …` (the
/// array values and hash pairs follow).
pub fn view_head(c: &mut Cursor<'_>) -> Result<(TableId, bool, i64, bool), Malformed> {
    if c.array()? != 6 {
        return Err(Malformed);
    }
    Ok((
        TableId::from_raw(c.int()? as u64),
        c.bool()?,
        c.int()?,
        c.bool()?,
    ))
}

/// Reads one `[key, value]` pair, checked.
pub fn pair_checked<'a>(c: &mut Cursor<'a>) -> Result<(Item<'a>, Item<'a>), Malformed> {
    if c.array()? != 2 {
        return Err(Malformed);
    }
    Ok((item(c)?, item(c)?))
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
            id: TableId::from_raw(1 << 40),
            readonly: true,
            len: 2,
            complete: true,
            array: vec![Value::Int(-5), Value::Str(vec![0xff; 300])],
            hash: vec![
                (Key::str("value"), Value::Float(0.25)),
                (Key::Int(70000), Value::Table(TableId::from_raw(3))),
            ],
        };
        let msg = ToWorker::Reply(Reply::Fetched(Fetched {
            values: vec![
                Value::Table(TableId::from_raw(1 << 40)),
                Value::Nil,
                Value::Int(i64::MIN),
                Value::Bool(true),
            ],
            tables: vec![view],
        }));
        let bytes = encode(&msg);
        let r = Reader::parse(&bytes).unwrap().unwrap();
        let (n, mut c) = r.values;
        assert_eq!(n, 4);
        let items: Vec<_> = (0..n).map(|_| item(&mut c).unwrap()).collect();
        assert_eq!(
            items,
            vec![
                Item::Table(TableId::from_raw(1 << 40)),
                Item::Nil,
                Item::Int(i64::MIN),
                Item::Bool(true)
            ]
        );
        let v = r.view(TableId::from_raw(1 << 40)).unwrap();
        assert!(v.readonly && v.complete);
        assert_eq!((v.len, v.counts), (2, (2, 2)));
        let mut b = v.body;
        assert_eq!(item(&mut b).unwrap(), Item::Int(-5));
        assert_eq!(item(&mut b).unwrap(), Item::Str(&[0xff; 300][..]));
        hash_header(&mut b);
        assert_eq!(pair(&mut b), (Item::Str(b"value"), Item::Float(0.25)));
        assert_eq!(
            pair(&mut b),
            (Item::Int(70000), Item::Table(TableId::from_raw(3)))
        );
    }

    #[test]
    fn a_piece_of_a_string_is_read_in_place() {
        let bytes = encode(&ToWorker::Reply(Reply::Bytes(vec![7; 300])));
        assert_eq!(bytes_reply(&bytes), Ok(Some(&[7u8; 300][..])));
        let err = encode(&ToWorker::Reply(Reply::Len(3)));
        assert_eq!(bytes_reply(&err), Ok(None));
        for cut in 0..bytes.len() {
            let _ = bytes_reply(&bytes[..cut]);
        }
    }

    #[test]
    fn other_replies_are_left_to_the_codec() {
        for msg in [
            ToWorker::Reply(Reply::Ok),
            ToWorker::Reply(Reply::Len(3)),
            ToWorker::Shutdown,
        ] {
            assert!(Reader::parse(&encode(&msg)).unwrap().is_none());
        }
    }

    #[test]
    fn truncated_replies_are_malformed_not_panics() {
        let msg = ToWorker::Reply(Reply::Fetched(Fetched {
            values: vec![Value::Str(b"abc".to_vec())],
            tables: vec![],
        }));
        let bytes = encode(&msg);
        for cut in 0..bytes.len() {
            let _ = Reader::parse(&bytes[..cut]);
        }
    }
}
