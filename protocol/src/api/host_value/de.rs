//! A serde `Deserializer` over an owned [`HostValue`], so host data converts
//! into any typed output ([`from_host`](super::from_host)).
//!
//! - `deserialize_any` visits the native type. A `Str` visits a `String`; one
//!   that is not UTF-8 is converted lossily (invalid bytes become U+FFFD),
//!   except for a `HostValue` target, which gets it exactly (see `EXACT`).
//!   `deserialize_bytes`/`byte_buf` give the exact bytes.
//! - Options: `Nil` is `None`, anything else `Some`.
//! - Map keys visit their native type, except that a target asking for a
//!   string (`deserialize_str`/`string`/`identifier`) gets integer, float and
//!   boolean keys as text, and a target asking for a number or boolean gets a
//!   string key parsed when it parses. So `serde_json::Value` (which asks for
//!   string keys) works with integer keys, as serde_json itself does.
//! - Enums: a string names a unit variant; a single-entry map is
//!   `{variant: content}`.
//! - A `BigInt` visits an `i64` or `u64` when it fits one, else serde_json's
//!   exact number (`ext.rs`); a target asking for `i128`/`u128` gets it
//!   when it fits, one asking for a string its digits, one asking for a
//!   float the nearest float. A `Function` visits its source text. A
//!   `HostValue` target gets both exactly (as rmp-serde's extension newtype).

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use crate::Key;

use super::ext::{visit_json_number, ExtNewtype};
use super::{key_string, HostValue, HostValueError, EXACT};
use crate::ext_value::{EXT_BIGINT, EXT_FUNCTION};

fn lossy(s: Vec<u8>) -> String {
    String::from_utf8(s).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl HostValue {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            HostValue::Nil => Unexpected::Unit,
            HostValue::Bool(b) => Unexpected::Bool(*b),
            HostValue::Int(i) => Unexpected::Signed(*i),
            HostValue::Float(f) => Unexpected::Float(*f),
            HostValue::Str(s) => Unexpected::Bytes(s),
            HostValue::Array(_) => Unexpected::Seq,
            HostValue::Map(_) => Unexpected::Map,
            HostValue::BigInt(_) => Unexpected::Other("a big integer"),
            HostValue::Function(_) => Unexpected::Other("a function"),
        }
    }
}

impl<'de> IntoDeserializer<'de, HostValueError> for HostValue {
    type Deserializer = HostValue;
    fn into_deserializer(self) -> HostValue {
        self
    }
}

impl<'de> de::Deserializer<'de> for HostValue {
    type Error = HostValueError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::Nil => v.visit_unit(),
            HostValue::Bool(b) => v.visit_bool(b),
            HostValue::Int(i) => v.visit_i64(i),
            HostValue::Float(f) => v.visit_f64(f),
            HostValue::Str(s) => v.visit_string(lossy(s)),
            HostValue::BigInt(t) => match (t.parse::<i64>(), t.parse::<u64>()) {
                (Ok(i), _) => v.visit_i64(i),
                (_, Ok(u)) => v.visit_u64(u),
                _ => visit_json_number(&t, v),
            },
            HostValue::Function(t) => v.visit_string(t),
            HostValue::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let out = v.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            HostValue::Map(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter().map(|(k, v)| (KeyDe(k), v)));
                let out = v.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::Nil => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::Str(s) => v.visit_byte_buf(s),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, HostValueError> {
        match self {
            // A HostValue asking for itself: strings exactly, as bytes when not UTF-8.
            HostValue::Str(s) if name == EXACT && std::str::from_utf8(&s).is_err() => {
                v.visit_byte_buf(s)
            }
            HostValue::BigInt(t) if name == EXACT => v.visit_newtype_struct(ExtNewtype {
                ty: EXT_BIGINT,
                text: &t,
            }),
            HostValue::Function(t) if name == EXACT => v.visit_newtype_struct(ExtNewtype {
                ty: EXT_FUNCTION,
                text: &t,
            }),
            other if name == EXACT => other.deserialize_any(v),
            other => v.visit_newtype_struct(other),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::BigInt(t) => v.visit_string(t),
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_str(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::BigInt(t) => match t.parse::<f64>() {
                Ok(f) => v.visit_f64(f),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&t), &v)),
            },
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_f64(v)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::BigInt(t) => match t.parse::<i128>() {
                Ok(i) => v.visit_i128(i),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&t), &v)),
            },
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::BigInt(t) => match t.parse::<u128>() {
                Ok(u) => v.visit_u128(u),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&t), &v)),
            },
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, HostValueError> {
        match self {
            HostValue::Str(s) => v.visit_enum(lossy(s).into_deserializer()),
            HostValue::Map(mut entries) if entries.len() == 1 => {
                let (key, value) = entries.pop().expect("one entry");
                v.visit_enum(EnumDe { key, value })
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a string or a map with one entry",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        v.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 u8 u16 u32 u64 char
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

/// `{variant: content}`.
struct EnumDe {
    key: Key,
    value: HostValue,
}

impl<'de> EnumAccess<'de> for EnumDe {
    type Error = HostValueError;
    type Variant = HostValue;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, HostValue), HostValueError> {
        Ok((seed.deserialize(KeyDe(self.key))?, self.value))
    }
}

impl<'de> VariantAccess<'de> for HostValue {
    type Error = HostValueError;

    fn unit_variant(self) -> Result<(), HostValueError> {
        match self {
            HostValue::Nil => Ok(()),
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a unit variant",
            )),
        }
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, HostValueError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, HostValueError> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, HostValueError> {
        de::Deserializer::deserialize_map(self, v)
    }
}

/// A map key.
pub(crate) struct KeyDe(Key);

impl<'de> IntoDeserializer<'de, HostValueError> for KeyDe {
    type Deserializer = KeyDe;
    fn into_deserializer(self) -> KeyDe {
        self
    }
}

/// For targets that ask for a number or a boolean: a string key that parses
/// as one is visited as one; anything else is visited natively.
macro_rules! parse_string_key {
    ($($method:ident: $ty:ty => $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
            if let Key::Str(s) = &self.0 {
                if let Some(n) = std::str::from_utf8(s).ok().and_then(|t| t.parse::<$ty>().ok()) {
                    return v.$visit(n);
                }
            }
            self.deserialize_any(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDe {
    type Error = HostValueError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self.0 {
            Key::Int(i) => v.visit_i64(i),
            Key::Str(s) => v.visit_string(lossy(s)),
            Key::Bool(b) => v.visit_bool(b),
            Key::Float(bits) => v.visit_f64(f64::from_bits(bits)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self.0 {
            Key::Str(s) => v.visit_string(lossy(s)),
            other => v.visit_string(key_string(&other)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        match self.0 {
            Key::Str(s) => v.visit_byte_buf(s),
            other => KeyDe(other).deserialize_any(v),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, HostValueError> {
        match self.0 {
            // A HostValue's key asking for itself: exact, as bytes when not UTF-8.
            Key::Str(s) if name == EXACT && std::str::from_utf8(&s).is_err() => v.visit_byte_buf(s),
            other if name == EXACT => KeyDe(other).deserialize_any(v),
            other => v.visit_newtype_struct(KeyDe(other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, HostValueError> {
        let name = match self.0 {
            Key::Str(s) => lossy(s),
            other => key_string(&other),
        };
        v.visit_enum(name.into_deserializer())
    }

    parse_string_key! {
        deserialize_bool: bool => visit_bool;
        deserialize_i8: i64 => visit_i64;
        deserialize_i16: i64 => visit_i64;
        deserialize_i32: i64 => visit_i64;
        deserialize_i64: i64 => visit_i64;
        deserialize_u8: u64 => visit_u64;
        deserialize_u16: u64 => visit_u64;
        deserialize_u32: u64 => visit_u64;
        deserialize_u64: u64 => visit_u64;
        deserialize_f32: f64 => visit_f64;
        deserialize_f64: f64 => visit_f64;
    }

    forward_to_deserialize_any! {
        i128 u128 char unit unit_struct seq tuple tuple_struct map struct ignored_any
    }
}
