//! The hot replies: the read replies that carry table contents ([`Fetched`],
//! [`Entries`], [`Records`]) and pieces of long strings
//! ([`Reply::Bytes`](crate::Reply::Bytes)), each defined once here with its
//! two fast paths side by side:
//!
//! - the type, with serde derives: the plain form, and the wire format's
//!   definition (rmp-serde: enums as one-entry maps keyed by variant name,
//!   structs as arrays, a table reference as `[id]`, strings as bin);
//! - its fast encoder ([`write`]), which writes exactly the bytes serde
//!   writes, but from borrowed [`Item`]s: the store maps its cells to items
//!   and allocates nothing per field;
//! - its fast decoder ([`read`]), which reads those bytes in place: the
//!   worker builds Lua values (or its read-only cache) straight from them.
//!
//! `tests.rs` checks, by property tests, that the fast encoder writes the
//! serde bytes and that the fast decoder reads back what serde wrote.
//!
//! Reads come back as a flat list of values plus [`TableView`]s: every table
//! a reply mentions may come with its whole contents ("inlined") when it is
//! small, so a worker walking an array of records needs one round trip per
//! window of records, not one per field. Views are flat: tables nest by id,
//! never by bytes, so reading needs no recursion.

use serde::{Deserialize, Serialize};

use crate::value::{Key, TableId, Value};

pub mod read;
pub mod write;

#[cfg(test)]
mod tests;

pub use read::{
    read, visit, Contents, HotReply, Items, Pairs, RecordIds, RecordValues, RecordsReader, View,
    Visited, Visitor,
};
pub use write::{exact, Exact, ViewParts};

/// A table as the supervisor describes it to a worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableView {
    /// The table's id.
    pub id: TableId,
    /// Whether writes to it are refused (the input tree).
    pub readonly: bool,
    /// A border of the table (what `#t` returns).
    pub len: i64,
    /// True if `array` and `hash` hold every entry of the table.
    pub complete: bool,
    /// Values at keys `1..=array.len()` (only when complete).
    pub array: Vec<Value>,
    /// Every other entry (only when complete).
    pub hash: Vec<(Key, Value)>,
}

/// Values read from the store, with views of the tables they mention: the
/// answer to a `Get` or a `GetRange`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fetched {
    /// The values asked for, in order.
    pub values: Vec<Value>,
    /// Views of tables mentioned by `values` (and, transitively, by inlined contents).
    pub tables: Vec<TableView>,
}

/// A batch of entries for `pairs`: the answer to a `Next`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// Entries in iteration order.
    pub entries: Vec<(Key, Value)>,
    /// Views of tables the entries mention.
    pub tables: Vec<TableView>,
    /// True if no entries follow.
    pub done: bool,
}

/// A window of read-only records that all have the same keys, in the same
/// order, and hold no tables: the flat answer to a `GetRange` over such a
/// read-only array (a loaded JSON array of objects, say; never over a
/// writable table). The keys travel once, and a record is its id and its
/// values; the worker reads it without a view per record. Records are
/// complete read-only tables, as a [`TableView`] would describe them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// The keys of every record: the array part's `1..=n` first, then the rest.
    pub keys: Vec<Key>,
    /// A border of every record.
    pub len: i64,
    /// The records, one per value asked for, in order.
    pub ids: Vec<TableId>,
    /// Their values, record after record (`ids.len() * keys.len()`, nil for
    /// a hole in an array part).
    pub values: Vec<Value>,
}

/// A key or a value, borrowed: what the fast encoder takes (from the
/// store's cells) and the fast decoder yields (from a reply's bytes).
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
    /// a big integer's canonical decimal text
    BigInt(&'a str),
    /// a Lua function's source
    Function(&'a str),
}

impl<'a> Item<'a> {
    /// The item of a value.
    pub fn of(v: &'a Value) -> Item<'a> {
        match v {
            Value::Nil => Item::Nil,
            Value::Bool(b) => Item::Bool(*b),
            Value::Int(i) => Item::Int(*i),
            Value::Float(f) => Item::Float(*f),
            Value::Str(s) => Item::Str(s),
            Value::Table(id) => Item::Table(*id),
            Value::BigInt(t) => Item::BigInt(t),
            Value::Function(t) => Item::Function(t),
        }
    }

    /// The item of a key.
    pub fn key(k: &'a Key) -> Item<'a> {
        match k {
            Key::Int(i) => Item::Int(*i),
            Key::Str(s) => Item::Str(s),
            Key::Bool(b) => Item::Bool(*b),
            Key::Float(bits) => Item::Float(f64::from_bits(*bits)),
        }
    }

    /// The owned value.
    pub fn to_value(self) -> Value {
        match self {
            Item::Nil => Value::Nil,
            Item::Bool(b) => Value::Bool(b),
            Item::Int(i) => Value::Int(i),
            Item::Float(f) => Value::Float(f),
            Item::Str(s) => Value::Str(s.to_vec()),
            Item::Table(id) => Value::Table(id),
            Item::BigInt(t) => Value::BigInt(t.to_string()),
            Item::Function(t) => Value::Function(t.to_string()),
        }
    }

    /// The owned key, with Lua's rules (an integral float is the integer
    /// key); `None` for an item that cannot be a key (the decoder never
    /// yields one as a key).
    pub fn to_key(self) -> Option<Key> {
        Key::from_value(&self.to_value()).ok()
    }
}

/// The shape of a table view without its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewHead {
    /// The table's id.
    pub id: TableId,
    /// Whether writes to it are refused.
    pub readonly: bool,
    /// A border of the table.
    pub len: i64,
    /// Whether the entries that follow are the whole table.
    pub complete: bool,
}
