//! Host data to MessagePack, the one way the session APIs (embedded and
//! client) encode what they load: rmp-serde (structs as maps keyed by field
//! name), through a serializer adapter that keeps numbers exact.
//!
//! serde_json is built with `arbitrary_precision` (so a JSON integer of any
//! length keeps its digits), and then writes each of its numbers to any
//! serializer but its own as a struct `{JSON_NUMBER: "text"}`; rmp-serde
//! alone would make that a map. The adapter writes it as the number it
//! stands for: an integer in `i64` as one, a longer one as a big integer
//! (ext 1), anything else as a float. An `i128`/`u128` beyond `u64` is a
//! big integer too (rmp-serde would write 16 bytes of `bin`). Everything
//! else passes through untouched, nested values included.

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use super::ext::{number, JSON_NUMBER};
use super::{HostValue, HostValueError};
use crate::ext_value::{Ext, EXT_BIGINT};

/// Encodes host data as MessagePack (see the module documentation).
pub fn to_msgpack<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, HostValueError> {
    let mut out = Vec::with_capacity(64);
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    v.serialize(Numbers(&mut ser))?;
    Ok(out)
}

/// The adapter: a serializer, or one of its compound serializers.
struct Numbers<S>(S);

/// A value to serialize through the adapter.
struct Through<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Through<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Numbers(s))
    }
}

/// Writes an integer beyond `i64` and `u64` as a big integer.
fn wide<S: Serializer>(s: S, text: String) -> Result<S::Ok, S::Error> {
    Ext(EXT_BIGINT, text.as_bytes()).serialize(s)
}

macro_rules! pass {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self $(, $arg: $ty)*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Numbers<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Numbers<S::SerializeSeq>;
    type SerializeTuple = Numbers<S::SerializeTuple>;
    type SerializeTupleStruct = Numbers<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Numbers<S::SerializeTupleVariant>;
    type SerializeMap = Numbers<S::SerializeMap>;
    type SerializeStruct = StructOrNumber<S>;
    type SerializeStructVariant = Numbers<S::SerializeStructVariant>;

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    pass! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => self.0.serialize_i64(i),
            (_, Ok(u)) => self.0.serialize_u64(u),
            _ => wide(self.0, v.to_string()),
        }
    }

    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        match u64::try_from(v) {
            Ok(u) => self.0.serialize_u64(u),
            Err(_) => wide(self.0, v.to_string()),
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Through(v))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Through(v))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Through(v))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Numbers)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Numbers)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Numbers)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Numbers)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Numbers)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        if name == JSON_NUMBER {
            return Ok(StructOrNumber::Number(self.0, None));
        }
        self.0
            .serialize_struct(name, len)
            .map(StructOrNumber::Struct)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Numbers)
    }
}

/// A struct, or serde_json's exact number (the number, once its field came).
enum StructOrNumber<S: Serializer> {
    Struct(S::SerializeStruct),
    Number(S, Option<Num>),
}

/// A number read from its JSON text.
enum Num {
    Int(i64),
    Float(f64),
    Big(String),
}

impl Num {
    /// The number a JSON number's text stands for (see [`number`]).
    fn of(text: &str) -> Result<Num, String> {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Num::Int(i));
        }
        match number(text)? {
            HostValue::Int(i) => Ok(Num::Int(i)),
            HostValue::BigInt(t) => Ok(Num::Big(t)),
            HostValue::Float(f) => Ok(Num::Float(f)),
            _ => Err(format!("{text:?} is not a number")),
        }
    }
}

/// Reads the field of serde_json's number struct (its text) without
/// copying it: a serializer that takes a string and nothing else.
struct NumberText;

/// Why [`NumberText`] refuses anything but a string.
fn not_text() -> serde_json::Error {
    ser::Error::custom("a JSON number without its text")
}

macro_rules! not_text {
    ($($method:ident($($ty:ty),*);)*) => {$(
        fn $method(self $(, _: $ty)*) -> Result<Num, serde_json::Error> {
            Err(not_text())
        }
    )*};
}

type No = ser::Impossible<Num, serde_json::Error>;

impl Serializer for NumberText {
    type Ok = Num;
    type Error = serde_json::Error;
    type SerializeSeq = No;
    type SerializeTuple = No;
    type SerializeTupleStruct = No;
    type SerializeTupleVariant = No;
    type SerializeMap = No;
    type SerializeStruct = No;
    type SerializeStructVariant = No;

    fn serialize_str(self, v: &str) -> Result<Num, serde_json::Error> {
        Num::of(v).map_err(ser::Error::custom)
    }

    not_text! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Num, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Num, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Num, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_tuple(self, _: usize) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, serde_json::Error> {
        Err(not_text())
    }
}

impl<S: Serializer> SerializeStruct for StructOrNumber<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        match self {
            StructOrNumber::Struct(st) => st.serialize_field(key, &Through(v)),
            StructOrNumber::Number(_, num) => {
                *num = Some(v.serialize(NumberText).map_err(ser::Error::custom)?);
                Ok(())
            }
        }
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        match self {
            StructOrNumber::Struct(st) => st.end(),
            StructOrNumber::Number(s, num) => {
                match num.ok_or_else(|| ser::Error::custom("a JSON number without its text"))? {
                    Num::Int(i) => s.serialize_i64(i),
                    Num::Big(t) => wide(s, t),
                    Num::Float(f) => s.serialize_f64(f),
                }
            }
        }
    }
}

/// The compound serializers whose values go one by one through the adapter.
macro_rules! through_each {
    ($($trait:ident::$method:ident;)*) => {$(
        impl<S: $trait> $trait for Numbers<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
                self.0.$method(&Through(v))
            }
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

through_each! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
}

impl<S: SerializeMap> SerializeMap for Numbers<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Through(k))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Through(v))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Numbers<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, &Through(v))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}
