//! [`HostValue`]: plain data on the host side of the store (what sessions
//! load as input and get back as output), with serde and JSON conversions.
//!
//! Conversion rules (docs/protocol.md and docs/lua-semantics.md):
//! - into a `HostValue`: null/unit → `Nil`; bool; integers → `Int`, or
//!   `BigInt` beyond `i64` (a `u64` above `i64::MAX`, an `i128`/`u128`, a
//!   JSON integer of any length: serde_json is built with
//!   `arbitrary_precision`, so its numbers keep their digits); other numbers
//!   → `Float`; strings and byte strings → `Str`; sequences → `Array`; maps
//!   → `Map`, with keys normalised as Lua does (an integral float key is the
//!   integer key; a nil or NaN key is an error); MessagePack ext 1 →
//!   `BigInt`, ext 2 → `Function` ([`ext_value`](crate::ext_value): checked
//!   when the store loads them).
//! - out of the store (the supervisor's `Store::extract`): a table
//!   whose keys are exactly `1..n` is an `Array`, an empty table made from an
//!   array is an `Array`, any other table a `Map` (so a table with holes is a
//!   map with integer keys).
//! - to JSON ([`HostValue::to_json`], or `from_host::<serde_json::Value>`):
//!   map keys become strings (`1` → `"1"`, as serde_json does for numeric
//!   keys; a map with both `1` and `"1"` keeps the later one); NaN and ±inf
//!   become `null`; strings that are not UTF-8 are converted lossily (invalid
//!   bytes become U+FFFD); an `i64` beyond 2^53 stays an exact integer in the
//!   JSON text, which JavaScript readers will round; a `BigInt` is an exact
//!   JSON integer (however long); a `Function` is its source text, a string.
//! - to MessagePack (the `Serialize` impl with rmp-serde, which is not
//!   human-readable): `BigInt` is ext 1 (its decimal text), `Function` ext 2
//!   (its source); with a human-readable serializer (serde_json) they are
//!   written as in JSON above.
//! - to a `HostValue` (`from_host::<HostValue>`, `get_output::<HostValue>()`):
//!   exact, strings that are not UTF-8 included; to bytes
//!   (`serde_bytes::ByteBuf`) exact too. A `BigInt` read into another type:
//!   an integer type that holds it (`i128`, `u128`, …), a string (its
//!   digits), a float (rounded), or, into untyped data such as
//!   `serde_json::Value`, an exact number. A `Function` read into another
//!   type is its source text.

mod de;
mod ext;
#[cfg(test)]
mod ext_tests;
#[cfg(test)]
mod tests;
mod to_msgpack;

use std::fmt;

use crate::ext_value::{read_ext, Ext, EXT_BIGINT, EXT_FUNCTION};
use crate::Key;
use ext::{number, JsonNumber, JSON_NUMBER};
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Plain data: what the host loads into the store and reads back out.
#[derive(Clone, Debug, PartialEq)]
pub enum HostValue {
    /// Nil (null, unit, `None`).
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string: bytes, not necessarily UTF-8.
    Str(Vec<u8>),
    /// An array: keys `1..n` in Lua.
    Array(Vec<HostValue>),
    /// A map, in order; keys follow Lua's rules.
    Map(Vec<(Key, HostValue)>),
    /// A big integer (a `bigint` in Lua): its decimal text, `-?[0-9]+`.
    BigInt(String),
    /// A Lua function: its source, a function expression
    /// (`function(name) return "hi " .. name end`).
    Function(String),
}

/// Why a conversion to or from a [`HostValue`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HostValueError {
    /// The data does not fit the target type, or a key is not a valid Lua key.
    #[error("{0}")]
    Message(String),
    /// The value could not be serialized (in [`to_host`]).
    #[error("cannot serialize: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The serialized value could not be read back (in [`to_host`]).
    #[error("cannot convert: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

impl serde::de::Error for HostValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        HostValueError::Message(msg.to_string())
    }
}

/// Converts any serializable value (structs become maps keyed by field name).
pub fn to_host<T: Serialize + ?Sized>(v: &T) -> Result<HostValue, HostValueError> {
    let bytes = to_msgpack(v)?;
    Ok(rmp_serde::from_slice::<HostValue>(&bytes)?)
}

pub use to_msgpack::to_msgpack;

/// Converts a [`HostValue`] into any deserializable type. A non-UTF-8 string
/// read as a string is converted lossily; read as bytes it is exact.
pub fn from_host<T: DeserializeOwned>(v: HostValue) -> Result<T, HostValueError> {
    T::deserialize(v)
}

/// A key as text: integers and floats as serde_json writes them, booleans as
/// `true`/`false`, non-UTF-8 strings lossily.
pub(crate) fn key_string(k: &Key) -> String {
    match k {
        Key::Int(i) => i.to_string(),
        Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Key::Bool(b) => b.to_string(),
        Key::Float(bits) => {
            let f = f64::from_bits(*bits);
            match serde_json::Number::from_f64(f) {
                Some(n) => n.to_string(),
                None if f.is_nan() => "nan".into(),
                None if f > 0.0 => "inf".into(),
                None => "-inf".into(),
            }
        }
    }
}

impl HostValue {
    /// A string value.
    pub fn str(s: impl AsRef<[u8]>) -> HostValue {
        HostValue::Str(s.as_ref().to_vec())
    }

    /// Converts JSON (see the module documentation for the rules).
    pub fn from_json(v: serde_json::Value) -> HostValue {
        use serde_json::Value as J;
        match v {
            J::Null => HostValue::Nil,
            J::Bool(b) => HostValue::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => HostValue::Int(i),
                None => number(n.as_str()).unwrap_or(HostValue::Float(f64::NAN)),
            },
            J::String(s) => HostValue::Str(s.into_bytes()),
            J::Array(a) => HostValue::Array(a.into_iter().map(HostValue::from_json).collect()),
            J::Object(o) => HostValue::Map(
                o.into_iter()
                    .map(|(k, v)| (Key::Str(k.into_bytes()), HostValue::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON (see the module documentation for the lossy cases).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            HostValue::Nil => J::Null,
            HostValue::Bool(b) => J::Bool(*b),
            HostValue::Int(i) => J::from(*i),
            HostValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            HostValue::Str(s) => J::String(String::from_utf8_lossy(s).into_owned()),
            HostValue::BigInt(t) => t.parse().map_or_else(|_| J::String(t.clone()), J::Number),
            HostValue::Function(t) => J::String(t.clone()),
            HostValue::Array(a) => J::Array(a.iter().map(HostValue::to_json).collect()),
            HostValue::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (key_string(k), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A [`HostValue`] serialized as [`HostValue::to_json`] converts it (keys
/// as text, sorted, the later of two equal keys kept; NaN and ±inf as null;
/// strings lossily), without building a `serde_json::Value` first: what
/// `serde_json::to_writer(w, &v.json())` writes is
/// `serde_json::to_string(&v.to_json())`.
pub struct Json<'a>(&'a HostValue);

impl HostValue {
    /// This value as JSON, for `serde_json::to_writer` and friends.
    pub fn json(&self) -> Json<'_> {
        Json(self)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            HostValue::Nil => s.serialize_unit(),
            HostValue::Bool(b) => s.serialize_bool(*b),
            HostValue::Int(i) => s.serialize_i64(*i),
            HostValue::Float(f) if f.is_finite() => s.serialize_f64(*f),
            HostValue::Float(_) => s.serialize_unit(),
            HostValue::Str(b) => s.serialize_str(&String::from_utf8_lossy(b)),
            HostValue::BigInt(t) => JsonNumber(t).serialize(s),
            HostValue::Function(t) => s.serialize_str(t),
            HostValue::Array(a) => s.collect_seq(a.iter().map(Json)),
            HostValue::Map(m) => {
                let sorted: std::collections::BTreeMap<String, &HostValue> =
                    m.iter().map(|(k, v)| (key_string(k), v)).collect();
                let mut map = s.serialize_map(Some(sorted.len()))?;
                for (k, v) in sorted {
                    map.serialize_entry(&k, &Json(v))?;
                }
                map.end()
            }
        }
    }
}

impl From<serde_json::Value> for HostValue {
    fn from(v: serde_json::Value) -> HostValue {
        HostValue::from_json(v)
    }
}

impl From<&HostValue> for serde_json::Value {
    fn from(v: &HostValue) -> serde_json::Value {
        v.to_json()
    }
}

/// Serializes a string as `str` when it is UTF-8, else as bytes.
fn serialize_text<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(b) {
        Ok(t) => s.serialize_str(t),
        Err(_) => s.serialize_bytes(b),
    }
}

/// A key serialized with its native type.
struct KeyRef<'a>(&'a Key);

impl Serialize for KeyRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(b) => serialize_text(b, s),
            Key::Bool(b) => s.serialize_bool(*b),
            Key::Float(bits) => s.serialize_f64(f64::from_bits(*bits)),
        }
    }
}

impl Serialize for HostValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HostValue::Nil => s.serialize_unit(),
            HostValue::Bool(b) => s.serialize_bool(*b),
            HostValue::Int(i) => s.serialize_i64(*i),
            HostValue::Float(f) => s.serialize_f64(*f),
            HostValue::Str(b) => serialize_text(b, s),
            HostValue::BigInt(t) if s.is_human_readable() => JsonNumber(t).serialize(s),
            HostValue::BigInt(t) => Ext(EXT_BIGINT, t.as_bytes()).serialize(s),
            HostValue::Function(t) if s.is_human_readable() => s.serialize_str(t),
            HostValue::Function(t) => Ext(EXT_FUNCTION, t.as_bytes()).serialize(s),
            HostValue::Array(a) => s.collect_seq(a),
            HostValue::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(&KeyRef(k), v)?;
                }
                map.end()
            }
        }
    }
}

/// Accepts any self-describing data. `nested`: inside the newtype a
/// `HostValue` asks for (see [`EXACT`]), where a further newtype is an
/// extension value (rmp-serde hands ext 1 and 2 over so).
#[derive(Clone, Copy)]
struct HostVisitor {
    nested: bool,
}

impl<'de> Visitor<'de> for HostVisitor {
    type Value = HostValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any plain data")
    }
    fn visit_unit<E>(self) -> Result<HostValue, E> {
        Ok(HostValue::Nil)
    }
    fn visit_none<E>(self) -> Result<HostValue, E> {
        Ok(HostValue::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<HostValue, D::Error> {
        HostValue::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<HostValue, D::Error> {
        if !self.nested {
            return d.deserialize_any(HostVisitor { nested: true });
        }
        Ok(match read_ext(d)? {
            (EXT_BIGINT, t) => HostValue::BigInt(t),
            (_, t) => HostValue::Function(t),
        })
    }
    fn visit_bool<E>(self, b: bool) -> Result<HostValue, E> {
        Ok(HostValue::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<HostValue, E> {
        Ok(HostValue::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<HostValue, E> {
        Ok(i64::try_from(u).map_or_else(|_| HostValue::BigInt(u.to_string()), HostValue::Int))
    }
    fn visit_i128<E>(self, i: i128) -> Result<HostValue, E> {
        Ok(i64::try_from(i).map_or_else(|_| HostValue::BigInt(i.to_string()), HostValue::Int))
    }
    fn visit_u128<E>(self, u: u128) -> Result<HostValue, E> {
        Ok(i64::try_from(u).map_or_else(|_| HostValue::BigInt(u.to_string()), HostValue::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<HostValue, E> {
        Ok(HostValue::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<HostValue, E> {
        Ok(HostValue::str(s))
    }
    fn visit_string<E>(self, s: String) -> Result<HostValue, E> {
        Ok(HostValue::Str(s.into_bytes()))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<HostValue, E> {
        Ok(HostValue::str(b))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<HostValue, E> {
        Ok(HostValue::Str(b))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HostValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(HostValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostValue, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((HostKey(k), v)) = map.next_entry()? {
            entries.push((k, v));
        }
        // serde_json's exact number: `{JSON_NUMBER: "text"}` (see ext.rs).
        if let [(Key::Str(k), HostValue::Str(text))] = &entries[..] {
            if k == JSON_NUMBER.as_bytes() {
                let text = String::from_utf8_lossy(text);
                return number(&text).map_err(serde::de::Error::custom);
            }
        }
        Ok(HostValue::Map(entries))
    }
}

/// The newtype name a [`HostValue`] (and a map key inside one) asks to be
/// deserialized as. Other deserializers see an ordinary newtype and visit
/// the data itself; the [`HostValue`] deserializer recognises the name and
/// hands a string that is not UTF-8 over as bytes, so that converting a
/// `HostValue` into a `HostValue` is exact (other targets get such a string
/// lossily, as documented).
pub(crate) const EXACT: &str = "$luapool::HostValue";

impl<'de> Deserialize<'de> for HostValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HostValue, D::Error> {
        d.deserialize_newtype_struct(EXACT, HostVisitor { nested: false })
    }
}

/// A map key, normalised by Lua's rules.
struct HostKey(Key);

impl<'de> Deserialize<'de> for HostKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HostKey, D::Error> {
        d.deserialize_newtype_struct(EXACT, KeyVisitor).map(HostKey)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table key: a boolean, a number (not NaN) or a string")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Key, E> {
        Err(E::custom("table index is nil"))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Key, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Key, E> {
        Ok(Key::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Key, E> {
        Ok(Key::Int(i))
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Key, E> {
        match i64::try_from(u) {
            Ok(i) => Ok(Key::Int(i)),
            Err(_) => self.visit_f64(u as f64),
        }
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Key, E> {
        Key::from_f64(f).map_err(E::custom)
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(Key::str(s))
    }
    fn visit_string<E>(self, s: String) -> Result<Key, E> {
        Ok(Key::Str(s.into_bytes()))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Key, E> {
        Ok(Key::str(b))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<Key, E> {
        Ok(Key::Str(b))
    }
}
