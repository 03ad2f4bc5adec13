//! Reading daemon replies into the caller's types: a serde `Deserializer`
//! over [`rmpv::Value`] with the same rules as the embedded supervisor.
//!
//! - A string that is not UTF-8 (sent as MessagePack `bin`) is read lossily
//!   as text and exactly as bytes (`serde_bytes`, `Vec<u8>` via bytes).
//! - Map keys are read as text when the target wants text (an integer key
//!   `1` becomes `"1"`, so a Lua table with holes reads into a JSON object),
//!   and a text key that parses as a number reads into a numeric key type.

use std::fmt;

use rmpv::Value;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::forward_to_deserialize_any;

/// Why a value did not fit the requested type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError(msg.to_string())
    }
}

/// Converts a value received from the daemon into `T`.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    T::deserialize(ValueDe(v))
}

/// Bytes as text, invalid UTF-8 replaced by U+FFFD.
fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A string or binary value as text; anything else is handed back.
fn text(v: Value) -> Result<String, Value> {
    match v {
        Value::String(s) => Ok(lossy(s.into_bytes())),
        Value::Binary(b) => Ok(lossy(b)),
        other => Err(other),
    }
}

struct ValueDe(Value);

impl<'de> IntoDeserializer<'de, DecodeError> for ValueDe {
    type Deserializer = ValueDe;
    fn into_deserializer(self) -> ValueDe {
        self
    }
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Nil => v.visit_unit(),
            Value::Boolean(b) => v.visit_bool(b),
            Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
                (Some(n), _) => v.visit_i64(n),
                (None, Some(n)) => v.visit_u64(n),
                _ => Err(de::Error::custom("integer out of range")),
            },
            Value::F32(f) => v.visit_f64(f64::from(f)),
            Value::F64(f) => v.visit_f64(f),
            Value::String(s) => v.visit_string(lossy(s.into_bytes())),
            bin @ Value::Binary(_) => v.visit_string(text(bin).expect("binary is text")),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDe));
                let out = v.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Map(entries) => {
                let mut map =
                    MapDeserializer::new(entries.into_iter().map(|(k, v)| (KeyDe(k), ValueDe(v))));
                let out = v.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
            Value::Ext(..) => Err(de::Error::custom(
                "MessagePack ext values are not supported",
            )),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Nil => v.visit_none(),
            other => v.visit_some(ValueDe(other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Binary(b) => v.visit_byte_buf(b),
            Value::String(s) => v.visit_byte_buf(s.into_bytes()),
            other => ValueDe(other).deserialize_any(v),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Map(mut entries) if entries.len() == 1 => {
                let (key, value) = entries.pop().expect("one entry");
                let key = text(key)
                    .map_err(|_| de::Error::custom("an enum variant name must be a string"))?;
                v.visit_enum(EnumDe { key, value })
            }
            other => match text(other) {
                Ok(name) => v.visit_enum(name.into_deserializer()),
                Err(_) => Err(de::Error::custom(
                    "expected an enum: a variant name or a one-entry map",
                )),
            },
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct EnumDe {
    key: String,
    value: Value,
}

impl<'de> EnumAccess<'de> for EnumDe {
    type Error = DecodeError;
    type Variant = ValueDe;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, ValueDe), DecodeError> {
        let key: de::value::StringDeserializer<DecodeError> = self.key.into_deserializer();
        Ok((seed.deserialize(key)?, ValueDe(self.value)))
    }
}

impl<'de> VariantAccess<'de> for ValueDe {
    type Error = DecodeError;
    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, DecodeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        de::Deserializer::deserialize_map(self, v)
    }
}

/// A map key: text when the target wants text, a number when it wants one.
struct KeyDe(Value);

impl<'de> IntoDeserializer<'de, DecodeError> for KeyDe {
    type Deserializer = KeyDe;
    fn into_deserializer(self) -> KeyDe {
        self
    }
}

/// A key as text: numbers as JSON writes them, booleans as `true`/`false`.
fn key_text(v: Value) -> Result<String, DecodeError> {
    match v {
        Value::Integer(i) => Ok(i.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        Value::F32(f) => Ok(float_text(f64::from(f))),
        Value::F64(f) => Ok(float_text(f)),
        other => text(other).map_err(|v| de::Error::custom(format!("cannot use {v} as a map key"))),
    }
}

fn float_text(f: f64) -> String {
    if f.is_finite() {
        let s = format!("{f:?}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    } else if f.is_nan() {
        "nan".into()
    } else if f > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

macro_rules! parse_text_key {
    ($($method:ident: $ty:ty => $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
            if let Value::String(s) = &self.0 {
                if let Some(n) = s.as_str().and_then(|t| t.parse::<$ty>().ok()) {
                    return v.$visit(n);
                }
            }
            ValueDe(self.0).deserialize_any(v)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for KeyDe {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        ValueDe(self.0).deserialize_any(v)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        v.visit_string(key_text(self.0)?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        ValueDe(self.0).deserialize_bytes(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        ValueDe(self.0).deserialize_bytes(v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DecodeError> {
        v.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        v.visit_enum(key_text(self.0)?.into_deserializer())
    }

    parse_text_key! {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn integer_keys_read_into_a_json_object() {
        let v = Value::Map(vec![
            (Value::from(1), Value::from("a")),
            (Value::from(3), Value::from("c")),
        ]);
        let j: serde_json::Value = from_value(v).unwrap();
        assert_eq!(j, serde_json::json!({"1": "a", "3": "c"}));
    }

    #[test]
    fn text_keys_read_into_numeric_keys() {
        let v = Value::Map(vec![(Value::from("7"), Value::from(true))]);
        let m: BTreeMap<i64, bool> = from_value(v).unwrap();
        assert_eq!(m, BTreeMap::from([(7, true)]));
    }

    #[test]
    fn binary_reads_lossily_as_text_and_exactly_as_bytes() {
        let v = Value::Binary(vec![b'a', 0xff]);
        let s: String = from_value(v.clone()).unwrap();
        assert_eq!(s, "a\u{fffd}");
        let b: serde_bytes::ByteBuf = from_value(v).unwrap();
        assert_eq!(b.into_vec(), vec![b'a', 0xff]);
    }

    #[test]
    fn structs_and_options_read_from_maps() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct User {
            name: String,
            age: Option<u32>,
        }
        let v = Value::Map(vec![
            (Value::from("name"), Value::from("Alice")),
            (Value::from("age"), Value::Nil),
        ]);
        assert_eq!(
            from_value::<User>(v).unwrap(),
            User {
                name: "Alice".into(),
                age: None
            }
        );
    }
}
