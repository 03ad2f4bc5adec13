//! [`Value`] and [`Key`]: the data that external tables hold, with Lua's rules.
//!
//! Both serialize to plain MessagePack types so any MessagePack library reads
//! them: nil, bool, int, float, bin (strings are bytes, any length); a table
//! reference is a one-element array holding its id; a big integer and a Lua
//! function are the extension types of [`ext_value`](crate::ext_value).

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ext_value::{read_ext, Ext, EXT_BIGINT, EXT_FUNCTION};

/// Identifies one external table in the supervisor's store: the arena
/// (a session's or a home's tables) in the high 32 bits, the table's slot in
/// that arena in the low 32. On the wire it is the plain `u64`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TableId(u64);

impl TableId {
    /// The id of table `slot` of `arena`.
    pub const fn new(arena: u32, slot: u32) -> TableId {
        TableId(((arena as u64) << 32) | slot as u64)
    }
    /// The id a wire value names (any `u64`; the store checks it exists).
    pub const fn from_raw(raw: u64) -> TableId {
        TableId(raw)
    }
    /// The wire form.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// The arena the table lives in.
    pub const fn arena(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The table's slot in its arena.
    pub const fn slot(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Hashes table ids (already well spread: arena and slot) with one
/// multiplication, for the maps and sets on the hot paths: SipHash is a
/// third of the work of encoding a window of records.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
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

/// A `HashMap` keyed by table id, hashed with [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<TableId, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A `HashSet` of table ids, hashed with [`IdHasher`].
pub type IdSet = std::collections::HashSet<TableId, std::hash::BuildHasherDefault<IdHasher>>;

/// A value an external table can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Lua `nil`; storing it deletes the key.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A Lua integer.
    Int(i64),
    /// A Lua float.
    Float(f64),
    /// A Lua string: bytes, not necessarily UTF-8.
    Str(Vec<u8>),
    /// A reference to another external table.
    Table(TableId),
    /// A big integer (a `bigint` in Lua): its canonical decimal text.
    BigInt(String),
    /// A Lua function: its source, a function expression
    /// (`function(x) return x end`), compiled again where it is read.
    Function(String),
}

/// A key of an external table, normalised as Lua does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key (also every float key with an integral value).
    Int(i64),
    /// A string key (bytes).
    Str(Vec<u8>),
    /// A boolean key.
    Bool(bool),
    /// A float key that is not integral, stored as its bits (never NaN).
    Float(u64),
}

/// Why a value cannot be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Lua forbids `nil` as a table index.
    #[error("table index is nil")]
    Nil,
    /// Lua forbids NaN as a table index.
    #[error("table index is NaN")]
    NaN,
    /// Tables cannot key an external table (its keys must be plain data).
    #[error("a table cannot be a key of an external table")]
    Table,
    /// Big integers cannot key an external table.
    #[error("a bigint cannot be a key of an external table")]
    BigInt,
    /// Functions cannot key an external table.
    #[error("a function cannot be a key of an external table")]
    Function,
}

impl Key {
    /// The key for a float, with Lua's rule: an integral float is the integer key.
    pub fn from_f64(f: f64) -> Result<Key, KeyError> {
        if f.is_nan() {
            return Err(KeyError::NaN);
        }
        // 2^63: the floats in [-2^63, 2^63) that are integral fit an i64.
        const TWO_63: f64 = 9_223_372_036_854_775_808.0;
        if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
            return Ok(Key::Int(f as i64));
        }
        Ok(Key::Float(f.to_bits()))
    }

    /// The key for a value, or why it cannot be one.
    pub fn from_value(v: &Value) -> Result<Key, KeyError> {
        match v {
            Value::Nil => Err(KeyError::Nil),
            Value::Bool(b) => Ok(Key::Bool(*b)),
            Value::Int(i) => Ok(Key::Int(*i)),
            Value::Float(f) => Key::from_f64(*f),
            Value::Str(s) => Ok(Key::Str(s.clone())),
            Value::Table(_) => Err(KeyError::Table),
            Value::BigInt(_) => Err(KeyError::BigInt),
            Value::Function(_) => Err(KeyError::Function),
        }
    }

    /// The key as a value.
    pub fn to_value(&self) -> Value {
        match self {
            Key::Int(i) => Value::Int(*i),
            Key::Str(s) => Value::Str(s.clone()),
            Key::Bool(b) => Value::Bool(*b),
            Key::Float(bits) => Value::Float(f64::from_bits(*bits)),
        }
    }

    /// A string key from text.
    pub fn str(s: impl AsRef<[u8]>) -> Key {
        Key::Str(s.as_ref().to_vec())
    }
}

impl fmt::Display for Key {
    /// Formats the key as Lua code would write it in an error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "'{}'", String::from_utf8_lossy(s)),
            Key::Bool(b) => write!(f, "{b}"),
            Key::Float(bits) => write!(f, "{}", f64::from_bits(*bits)),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(b) => s.serialize_bytes(b),
            Value::Table(id) => [id.raw()].serialize(s),
            Value::BigInt(t) => Ext(EXT_BIGINT, t.as_bytes()).serialize(s),
            Value::Function(t) => Ext(EXT_FUNCTION, t.as_bytes()).serialize(s),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(b) => s.serialize_bytes(b),
            Key::Bool(b) => s.serialize_bool(*b),
            Key::Float(bits) => s.serialize_f64(f64::from_bits(*bits)),
        }
    }
}

/// Accepts the MessagePack shapes of a [`Value`].
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nil, bool, integer, float, string, [table id], big integer or function")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Ok(match read_ext(d)? {
            (EXT_BIGINT, t) => Value::BigInt(t),
            (_, t) => Value::Function(t),
        })
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Int)
            .or(Ok(Value::Float(u as f64)))
    }
    fn visit_f32<E>(self, f: f32) -> Result<Value, E> {
        Ok(Value::Float(f as f64))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.as_bytes().to_vec()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s.into_bytes()))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(b.to_vec()))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Str(b))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let id: u64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &"[table id]"))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &"[table id]"));
        }
        Ok(Value::Table(TableId(id)))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let v = d.deserialize_any(ValueVisitor)?;
        Key::from_value(&v).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_float_is_the_integer_key() {
        assert_eq!(Key::from_f64(3.0), Ok(Key::Int(3)));
        assert_eq!(Key::from_f64(-0.0), Ok(Key::Int(0)));
        assert_eq!(Key::from_f64(1.5), Ok(Key::Float(1.5f64.to_bits())));
        assert_eq!(Key::from_f64(f64::NAN), Err(KeyError::NaN));
        // 2^63 does not fit an i64: it stays a float key.
        assert!(matches!(Key::from_f64(9.3e18), Ok(Key::Float(_))));
    }

    #[test]
    fn string_one_and_integer_one_are_different_keys() {
        assert_ne!(Key::str("1"), Key::Int(1));
    }
}
