//! Big integers and functions in serde's data model, which has neither:
//!
//! - in MessagePack (rmp-serde, not human-readable) they are the extension
//!   types of [`ext_value`](crate::ext_value): rmp-serde hands an ext value
//!   to a visitor as a newtype holding `(type, bytes)`;
//! - in JSON a big integer is an exact number. serde_json (built with
//!   `arbitrary_precision`, as this workspace builds it) passes a number it
//!   cannot hold in 64 bits, and every float, as a one-entry map
//!   `{JSON_NUMBER: "digits"}`, and writes such a struct as the raw number;
//!   [`JsonNumber`] writes one, [`number`] reads one. A function in JSON is
//!   its source text, a string.

use serde::de::value::{BytesDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::{HostValue, HostValueError};
use crate::ext_value::{bigint_text, ExtValueError};

/// serde_json's private name for an exact number (its `arbitrary_precision`
/// feature): a struct of this name with one field of this name, holding
/// the number's text, is written as the raw number, and a map of one such
/// entry is how its deserializer hands over a number.
pub(crate) const JSON_NUMBER: &str = "$serde_json::private::Number";

/// A number's JSON text as the value it stands for: an integer in `i64`
/// is `Int`, a larger one `BigInt` (its canonical text; one over the digit
/// limit is kept as it is, for the store to refuse by name), anything else
/// a `Float`.
pub(crate) fn number(text: &str) -> Result<HostValue, String> {
    match bigint_text(text.as_bytes()) {
        Ok(t) => Ok(t
            .parse::<i64>()
            .map_or_else(|_| HostValue::BigInt(t.into_owned()), HostValue::Int)),
        Err(ExtValueError::TooManyDigits { .. }) => Ok(HostValue::BigInt(text.to_string())),
        Err(_) => text
            .parse::<f64>()
            .map(HostValue::Float)
            .map_err(|_| format!("{text:?} is not a number")),
    }
}

/// A big integer written as an exact JSON number (through serde_json), or
/// as its text when it is not a decimal integer (so the JSON stays valid).
pub(crate) struct JsonNumber<'a>(pub &'a str);

impl Serialize for JsonNumber<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match bigint_text(self.0.as_bytes()) {
            Ok(t) => {
                let mut st = s.serialize_struct(JSON_NUMBER, 1)?;
                st.serialize_field(JSON_NUMBER, &*t)?;
                st.end()
            }
            Err(_) => s.serialize_str(self.0),
        }
    }
}

/// An extension value, handed to a visitor the way rmp-serde hands one: a
/// newtype whose content is the sequence `(type, bytes)`. What the
/// [`HostValue`] deserializer gives a `HostValue` target, so that a big
/// integer or a function converts into a `HostValue` exactly.
pub(crate) struct ExtNewtype<'a> {
    pub ty: i8,
    pub text: &'a str,
}

impl<'de> de::Deserializer<'de> for ExtNewtype<'_> {
    type Error = HostValueError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        v.visit_newtype_struct(ExtSeq {
            ty: self.ty,
            text: self.text,
            at: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The `(type, bytes)` inside an [`ExtNewtype`].
struct ExtSeq<'a> {
    ty: i8,
    text: &'a str,
    at: u8,
}

impl<'de> de::Deserializer<'de> for ExtSeq<'_> {
    type Error = HostValueError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, HostValueError> {
        v.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> SeqAccess<'de> for ExtSeq<'_> {
    type Error = HostValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, HostValueError> {
        self.at += 1;
        match self.at {
            1 => seed.deserialize(self.ty.into_deserializer()).map(Some),
            2 => seed
                .deserialize(BytesDeserializer::new(self.text.as_bytes()))
                .map(Some),
            _ => Ok(None),
        }
    }
}

/// The one-entry map `{JSON_NUMBER: text}`, for a visitor that reads
/// serde_json's exact numbers (`serde_json::Value` does).
pub(crate) fn visit_json_number<'de, V: Visitor<'de>>(
    text: &str,
    v: V,
) -> Result<V::Value, HostValueError> {
    let entry = std::iter::once((
        StrDeserializer::<HostValueError>::new(JSON_NUMBER),
        StrDeserializer::<HostValueError>::new(text),
    ));
    let mut map = de::value::MapDeserializer::new(entry);
    let out = v.visit_map(&mut map)?;
    map.end()?;
    Ok(out)
}
