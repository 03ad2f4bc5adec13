//! The stored forms of keys and values: 24 bytes each, strings of up to
//! [`INLINE`] bytes held inline (no allocation), longer ones in one boxed slice.
//!
//! A million records `{id = i, name = "short"}` would otherwise cost a heap
//! allocation per field name and per short string; inline they cost nothing
//! beyond the entry. Conversions to and from the protocol's [`Key`] and
//! [`Value`] happen at the store's edges.

use std::hash::{Hash, Hasher};

use luapool_protocol::{Key, TableId, Value};

/// Strings up to this many bytes are stored inline.
const INLINE: usize = 22;

/// Bytes, inline when short.
fn short(b: &[u8]) -> Option<(u8, [u8; INLINE])> {
    (b.len() <= INLINE).then(|| {
        let mut data = [0u8; INLINE];
        data[..b.len()].copy_from_slice(b);
        (b.len() as u8, data)
    })
}

/// A stored key.
#[derive(Clone, Debug)]
pub(crate) enum SKey {
    Int(i64),
    Bool(bool),
    Float(u64),
    Short(u8, [u8; INLINE]),
    Long(Box<[u8]>),
}

/// A borrowed key: what lookups hash and compare.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum KeyView<'a> {
    Int(i64),
    Bool(bool),
    Float(u64),
    Str(&'a [u8]),
}

impl KeyView<'_> {
    /// The bytes of a string key (0 for any other).
    pub fn str_len(self) -> usize {
        match self {
            KeyView::Str(s) => s.len(),
            _ => 0,
        }
    }

    /// The view of a protocol key.
    pub fn of(k: &Key) -> KeyView<'_> {
        match k {
            Key::Int(i) => KeyView::Int(*i),
            Key::Bool(b) => KeyView::Bool(*b),
            Key::Float(f) => KeyView::Float(*f),
            Key::Str(s) => KeyView::Str(s),
        }
    }

    /// The protocol key.
    pub fn to_key(self) -> Key {
        match self {
            KeyView::Int(i) => Key::Int(i),
            KeyView::Bool(b) => Key::Bool(b),
            KeyView::Float(f) => Key::Float(f),
            KeyView::Str(s) => Key::Str(s.to_vec()),
        }
    }
}

impl SKey {
    pub fn view(&self) -> KeyView<'_> {
        match self {
            SKey::Int(i) => KeyView::Int(*i),
            SKey::Bool(b) => KeyView::Bool(*b),
            SKey::Float(f) => KeyView::Float(*f),
            SKey::Short(n, d) => KeyView::Str(&d[..*n as usize]),
            SKey::Long(b) => KeyView::Str(b),
        }
    }

    pub fn to_key(&self) -> Key {
        self.view().to_key()
    }
}

impl SKey {
    /// A stored key from a borrowed one (a long string is copied).
    pub fn from_view(k: KeyView<'_>) -> SKey {
        match k {
            KeyView::Int(i) => SKey::Int(i),
            KeyView::Bool(b) => SKey::Bool(b),
            KeyView::Float(f) => SKey::Float(f),
            KeyView::Str(s) => {
                short(s).map_or_else(|| SKey::Long(s.into()), |(n, d)| SKey::Short(n, d))
            }
        }
    }
}

impl From<Key> for SKey {
    fn from(k: Key) -> SKey {
        match k {
            Key::Int(i) => SKey::Int(i),
            Key::Bool(b) => SKey::Bool(b),
            Key::Float(f) => SKey::Float(f),
            Key::Str(s) => short(&s).map_or_else(
                || SKey::Long(s.into_boxed_slice()),
                |(n, d)| SKey::Short(n, d),
            ),
        }
    }
}

impl Hash for SKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.view().hash(h)
    }
}

impl PartialEq for SKey {
    fn eq(&self, other: &SKey) -> bool {
        self.view() == other.view()
    }
}

impl Eq for SKey {}

impl indexmap::Equivalent<SKey> for KeyView<'_> {
    fn equivalent(&self, key: &SKey) -> bool {
        *self == key.view()
    }
}

/// A stored value.
#[derive(Clone, Debug)]
pub(crate) enum SValue {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Table(TableId),
    Short(u8, [u8; INLINE]),
    Long(Box<[u8]>),
    /// A big integer: its canonical decimal text.
    Big(Box<str>),
    /// A Lua function: its source.
    Func(Box<str>),
}

impl SValue {
    pub fn is_nil(&self) -> bool {
        matches!(self, SValue::Nil)
    }

    /// The table this value references, if any.
    pub fn table(&self) -> Option<TableId> {
        match self {
            SValue::Table(id) => Some(*id),
            _ => None,
        }
    }

    /// The string's bytes, if a string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            SValue::Short(n, d) => Some(&d[..*n as usize]),
            SValue::Long(b) => Some(b),
            _ => None,
        }
    }

    /// What the value holds beyond its slot: a string's bytes, a big
    /// integer's digits, a function's source (empty for any other).
    pub fn payload(&self) -> &[u8] {
        match self {
            SValue::Big(t) | SValue::Func(t) => t.as_bytes(),
            other => other.bytes().unwrap_or_default(),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            SValue::Nil => Value::Nil,
            SValue::Bool(b) => Value::Bool(*b),
            SValue::Int(i) => Value::Int(*i),
            SValue::Float(f) => Value::Float(*f),
            SValue::Table(id) => Value::Table(*id),
            SValue::Short(..) | SValue::Long(_) => {
                Value::Str(self.bytes().unwrap_or_default().to_vec())
            }
            SValue::Big(t) => Value::BigInt(t.to_string()),
            SValue::Func(t) => Value::Function(t.to_string()),
        }
    }
}

impl SValue {
    /// A stored string (inline when short).
    pub fn str(b: &[u8]) -> SValue {
        short(b).map_or_else(|| SValue::Long(b.into()), |(n, d)| SValue::Short(n, d))
    }
}

impl From<Value> for SValue {
    fn from(v: Value) -> SValue {
        match v {
            Value::Nil => SValue::Nil,
            Value::Bool(b) => SValue::Bool(b),
            Value::Int(i) => SValue::Int(i),
            Value::Float(f) => SValue::Float(f),
            Value::Table(id) => SValue::Table(id),
            Value::Str(s) => short(&s).map_or_else(
                || SValue::Long(s.into_boxed_slice()),
                |(n, d)| SValue::Short(n, d),
            ),
            Value::BigInt(t) => SValue::Big(t.into_boxed_str()),
            Value::Function(t) => SValue::Func(t.into_boxed_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_and_values_take_24_bytes() {
        assert_eq!(std::mem::size_of::<SKey>(), 24);
        assert_eq!(std::mem::size_of::<SValue>(), 24);
    }

    #[test]
    fn strings_round_trip_inline_or_boxed() {
        for len in [0, 1, INLINE, INLINE + 1, 100] {
            let s: Vec<u8> = (0..len as u8).collect();
            assert_eq!(
                SValue::from(Value::Str(s.clone())).to_value(),
                Value::Str(s.clone())
            );
            let k = SKey::from(Key::Str(s.clone()));
            assert_eq!(k.to_key(), Key::Str(s.clone()));
            assert_eq!(k.view(), KeyView::of(&Key::Str(s)));
        }
    }
}
