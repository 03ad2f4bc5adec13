//! What a durable home writes and reads back: an arena as rows of tables and
//! entries, independent of the engine that keeps them.
//!
//! A home on disk is a set of [`PersistTable`]s (slot, shape) and
//! [`Entry`]s (slot, key, value), each entry's key and value as MessagePack
//! bytes:
//! - keys are canonical, so equal keys have equal bytes and an engine can
//!   index them: an integer in its shortest form, a float as f64, a boolean,
//!   a string as `str` when it is UTF-8, else `bin`;
//! - values are the same, plus a table reference as the extension type
//!   [`EXT_TABLE`] whose 4 bytes are the table's slot, big-endian. (Ext 1
//!   and 2 are the big integer and the Lua function of the socket API.) Nil
//!   is never stored: a deleted key is a deleted row.
//!
//! Slots are kept as they are in memory (the root is slot 1), so a
//! reference needs no rewriting; the arena id is not stored. An engine
//! keeps entries in the order they were first written and returns them so
//! ([`Store::load_persisted`](super::Store::load_persisted)): the order
//! `pairs` walks survives a restart.
//!
//! [`ChangeSet`]s are incremental: a committed compute yields the keys it
//! wrote and the tables it created, a collection the tables it freed, so a
//! counter increment writes one row whatever the home's size.

use luapool_protocol::ext_value::{ext_text, EXT_BIGINT, EXT_FUNCTION};
use luapool_protocol::mp::{Cursor, Token};
use luapool_protocol::TableId;
use rmp::encode as mp;

use super::arena::Arena;
use super::cell::{KeyView, SKey, SValue};
use super::table::{Table, TABLE_BYTES};
use super::StoreError;

/// The MessagePack extension type of a table reference in persisted data.
pub const EXT_TABLE: i8 = 16;

/// A table of a persisted home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistTable {
    /// Its slot in the arena (the root is 1).
    pub slot: u32,
    /// Made from an array: empty, it converts back to an array.
    pub from_array: bool,
}

/// One key of one table: `value` `None` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The table's slot.
    pub slot: u32,
    /// The key, canonical MessagePack.
    pub key: Vec<u8>,
    /// The value, MessagePack (see the module documentation); `None`: deleted.
    pub value: Option<Vec<u8>>,
}

/// What to write to make a persisted home match its arena.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Replace the whole home (an import): delete everything it holds first.
    pub replace: bool,
    /// Tables freed: delete them and all their entries.
    pub freed: Vec<u32>,
    /// Tables created: (re)create them empty; their entries follow in `entries`.
    pub created: Vec<PersistTable>,
    /// Entries to write or delete, in order.
    pub entries: Vec<Entry>,
}

impl ChangeSet {
    /// True if there is nothing to write.
    pub fn is_empty(&self) -> bool {
        !self.replace && self.freed.is_empty() && self.created.is_empty() && self.entries.is_empty()
    }
}

/// The canonical bytes of a key.
pub(crate) fn encode_key(k: KeyView<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    match k {
        KeyView::Int(i) => drop(mp::write_sint(&mut out, i)),
        KeyView::Float(bits) => mp::write_f64(&mut out, f64::from_bits(bits)).unwrap_or(()),
        KeyView::Bool(b) => mp::write_bool(&mut out, b).unwrap_or(()),
        KeyView::Str(s) => text(&mut out, s),
    }
    out
}

/// The bytes of a value; `None` for nil.
pub(crate) fn encode_value(v: &SValue) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(10);
    match v {
        SValue::Nil => return None,
        SValue::Bool(b) => mp::write_bool(&mut out, *b).unwrap_or(()),
        SValue::Int(i) => drop(mp::write_sint(&mut out, *i)),
        SValue::Float(f) => mp::write_f64(&mut out, *f).unwrap_or(()),
        SValue::Table(id) => {
            let _ = mp::write_ext_meta(&mut out, 4, EXT_TABLE);
            out.extend_from_slice(&id.slot().to_be_bytes());
        }
        SValue::Short(..) | SValue::Long(_) => text(&mut out, v.bytes().unwrap_or_default()),
        SValue::Big(t) => ext(&mut out, EXT_BIGINT, t),
        SValue::Func(t) => ext(&mut out, EXT_FUNCTION, t),
    }
    Some(out)
}

fn text(out: &mut Vec<u8>, s: &[u8]) {
    match std::str::from_utf8(s) {
        Ok(t) => mp::write_str(out, t).unwrap_or(()),
        Err(_) => mp::write_bin(out, s).unwrap_or(()),
    }
}

fn ext(out: &mut Vec<u8>, ty: i8, t: &str) {
    let _ = mp::write_ext_meta(out, t.len() as u32, ty);
    out.extend_from_slice(t.as_bytes());
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// Reads back a key written by [`encode_key`].
pub(crate) fn decode_key(b: &[u8]) -> Result<SKey, StoreError> {
    let mut c = Cursor::new(b);
    let k = match c.token().map_err(|_| corrupt("a key is not MessagePack"))? {
        Token::Int(i) => KeyView::Int(i),
        Token::Float(f) => KeyView::Float(f.to_bits()),
        Token::Bool(b) => KeyView::Bool(b),
        Token::Str(s) | Token::Bin(s) => KeyView::Str(s),
        _ => return Err(corrupt("a key of a type keys cannot have")),
    };
    if !c.rest().is_empty() {
        return Err(corrupt("bytes after a key"));
    }
    Ok(SKey::from_view(k))
}

/// Reads back a value written by [`encode_value`], in `arena`.
pub(crate) fn decode_value(b: &[u8], arena: u32) -> Result<SValue, StoreError> {
    let mut c = Cursor::new(b);
    let v = match c
        .token()
        .map_err(|_| corrupt("a value is not MessagePack"))?
    {
        Token::Bool(b) => SValue::Bool(b),
        Token::Int(i) => SValue::Int(i),
        Token::Float(f) => SValue::Float(f),
        Token::Str(s) | Token::Bin(s) => SValue::str(s),
        Token::Ext(EXT_TABLE, &[a, b, c, d]) => {
            SValue::Table(TableId::new(arena, u32::from_be_bytes([a, b, c, d])))
        }
        Token::Ext(ty @ (EXT_BIGINT | EXT_FUNCTION), b) => {
            match ext_text(ty, b).map_err(|e| corrupt(&e.to_string()))? {
                (EXT_BIGINT, t) => SValue::Big(t.into()),
                (_, t) => SValue::Func(t.into()),
            }
        }
        _ => return Err(corrupt("a value of an unknown type")),
    };
    if !c.rest().is_empty() {
        return Err(corrupt("bytes after a value"));
    }
    Ok(v)
}

/// The changes of `arena`'s open transaction, read from its journal and the
/// tables as they are now (call before committing). `None` without one.
pub(crate) fn changes(arena: &Arena) -> Option<ChangeSet> {
    let j = arena.journal()?;
    let mut cs = ChangeSet::default();
    for ((slot, key), _) in &j.old {
        let now = arena.slot_table(*slot).and_then(|t| t.get_view(key.view()));
        cs.entries.push(Entry {
            slot: *slot,
            key: encode_key(key.view()),
            value: now.and_then(encode_value),
        });
    }
    for &slot in &j.created {
        if let Some(t) = arena.slot_table(slot) {
            table_rows(slot, t, &mut cs);
        }
    }
    Some(cs)
}

/// Every table of `arena`, as a change set that replaces a persisted home.
pub(crate) fn snapshot(arena: &Arena) -> ChangeSet {
    let mut cs = ChangeSet {
        replace: true,
        ..ChangeSet::default()
    };
    for (slot, t) in arena.tables() {
        table_rows(slot, t, &mut cs);
    }
    cs
}

fn table_rows(slot: u32, t: &Table, cs: &mut ChangeSet) {
    cs.created.push(PersistTable {
        slot,
        from_array: t.from_array,
    });
    for (i, v) in t.array().iter().enumerate() {
        if let Some(value) = encode_value(v) {
            cs.entries.push(Entry {
                slot,
                key: encode_key(KeyView::Int(i as i64 + 1)),
                value: Some(value),
            });
        }
    }
    for (k, v) in t.hash_live() {
        cs.entries.push(Entry {
            slot,
            key: encode_key(k.view()),
            value: encode_value(v),
        });
    }
}

/// Fills the empty `arena` with persisted tables and their entries (in the
/// order first written). Every reference must name a table given; the root
/// (slot 1) must be there. Quota is not checked: what was stored stays.
pub(crate) fn load(
    arena: &mut Arena,
    tables: &[PersistTable],
    entries: impl IntoIterator<Item = (u32, Vec<u8>, Vec<u8>)>,
) -> Result<(), StoreError> {
    let mut built: Vec<Option<Table>> = Vec::new();
    for t in tables {
        let s = t.slot as usize;
        if s == 0 {
            return Err(corrupt("a table in slot 0"));
        }
        if built.len() <= s {
            built.resize_with(s + 1, || None);
        }
        built[s] = Some(Table::new(false, t.from_array));
    }
    if !matches!(built.get(1), Some(Some(_))) {
        return Err(corrupt("the home has no root table"));
    }
    for (slot, key, value) in entries {
        let value = decode_value(&value, arena.id())?;
        if let SValue::Table(id) = &value {
            if !matches!(built.get(id.slot() as usize), Some(Some(_))) {
                return Err(corrupt("a reference to a table that does not exist"));
            }
        }
        let key = decode_key(&key)?;
        match built.get_mut(slot as usize) {
            Some(Some(t)) => drop(t.replace(key.view(), value)),
            _ => return Err(corrupt("an entry of a table that does not exist")),
        }
    }
    for (slot, t) in built.into_iter().enumerate() {
        if let Some(mut t) = t {
            t.compact();
            let bytes = t.bytes().max(TABLE_BYTES);
            arena.place(slot as u32, t, bytes)?;
        }
    }
    arena.add_root(TableId::new(arena.id(), 1));
    Ok(())
}
