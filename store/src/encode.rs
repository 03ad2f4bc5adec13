//! Read replies written straight from the store's cells as MessagePack.
//!
//! The bytes are exactly what `luapool_protocol::encode` writes for
//! `ToWorker::Reply(Reply::Fetched(..))` / `Reply::Entries { .. }` (the
//! tests decode them with the codec and compare), but no `TableView`, `Key`
//! or `Value` is built on the way: a window of 1024 records is encoded
//! without allocating per field.

use luapool_protocol::{Key, TableId, Value};
use rmp::encode as mp;

use super::arena::Arena;
use super::cell::{KeyView, SKey, SValue};
use super::inline::{plan, INLINE_MAX_ENTRIES};
use super::table::Table;

/// `{"Reply": {"Fetched": [` … and `{"Reply": {"Entries": [` …
fn envelope(out: &mut Vec<u8>, variant: &str, fields: u32) {
    let _ = mp::write_map_len(out, 1);
    let _ = mp::write_str(out, "Reply");
    let _ = mp::write_map_len(out, 1);
    let _ = mp::write_str(out, variant);
    let _ = mp::write_array_len(out, fields);
}

fn int(out: &mut Vec<u8>, i: i64) {
    let _ = mp::write_sint(out, i);
}

fn table_ref(out: &mut Vec<u8>, id: TableId) {
    let _ = mp::write_array_len(out, 1);
    let _ = mp::write_uint(out, id.raw());
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => mp::write_nil(out).unwrap_or(()),
        Value::Bool(b) => mp::write_bool(out, *b).unwrap_or(()),
        Value::Int(i) => int(out, *i),
        Value::Float(f) => mp::write_f64(out, *f).unwrap_or(()),
        Value::Str(s) => mp::write_bin(out, s).unwrap_or(()),
        Value::Table(id) => table_ref(out, *id),
    }
}

fn svalue(out: &mut Vec<u8>, v: &SValue) {
    match v {
        SValue::Nil => mp::write_nil(out).unwrap_or(()),
        SValue::Bool(b) => mp::write_bool(out, *b).unwrap_or(()),
        SValue::Int(i) => int(out, *i),
        SValue::Float(f) => mp::write_f64(out, *f).unwrap_or(()),
        SValue::Table(id) => table_ref(out, *id),
        SValue::Short(..) | SValue::Long(_) => {
            mp::write_bin(out, v.bytes().unwrap_or_default()).unwrap_or(())
        }
    }
}

fn key_view(out: &mut Vec<u8>, k: KeyView<'_>) {
    match k {
        KeyView::Int(i) => int(out, i),
        KeyView::Bool(b) => mp::write_bool(out, b).unwrap_or(()),
        KeyView::Float(bits) => mp::write_f64(out, f64::from_bits(bits)).unwrap_or(()),
        KeyView::Str(s) => mp::write_bin(out, s).unwrap_or(()),
    }
}

fn skey(out: &mut Vec<u8>, k: &SKey) {
    key_view(out, k.view());
}

/// The views of the tables `roots` mention (see [`plan`]).
fn views(out: &mut Vec<u8>, arena: &Arena, roots: impl IntoIterator<Item = TableId>) {
    let plan = plan(arena, roots);
    let _ = mp::write_array_len(
        out,
        plan.iter()
            .filter(|(id, _)| arena.table(*id).is_ok())
            .count() as u32,
    );
    for (id, complete) in plan {
        let Ok(t) = arena.table(id) else { continue };
        let _ = mp::write_array_len(out, 6);
        let _ = mp::write_uint(out, id.raw());
        let _ = mp::write_bool(out, t.readonly);
        int(out, t.border());
        let _ = mp::write_bool(out, complete);
        if complete {
            let _ = mp::write_array_len(out, t.array().len() as u32);
            for v in t.array() {
                svalue(out, v);
            }
            let _ = mp::write_array_len(out, t.hash_live().count() as u32);
            for (k, v) in t.hash_live() {
                let _ = mp::write_array_len(out, 2);
                skey(out, k);
                svalue(out, v);
            }
        } else {
            let _ = mp::write_array_len(out, 0);
            let _ = mp::write_array_len(out, 0);
        }
    }
}

/// The table a value references, if any.
fn table_id(v: &Value) -> Option<TableId> {
    match v {
        Value::Table(id) => Some(*id),
        _ => None,
    }
}

/// Writes `ToWorker::Reply(Reply::Fetched { values, tables })`.
pub(crate) fn fetched(out: &mut Vec<u8>, arena: &Arena, values: &[Value]) {
    envelope(out, "Fetched", 2);
    let _ = mp::write_array_len(out, values.len() as u32);
    for v in values {
        value(out, v);
    }
    views(out, arena, values.iter().filter_map(table_id));
}

/// The tables behind `values` if they are read-only records of one shape
/// (the same keys in the same order, at most [`INLINE_MAX_ENTRIES`] of
/// them, no table among their values): what [`Reply::Records`] carries.
///
/// [`Reply::Records`]: luapool_protocol::Reply::Records
pub(crate) fn record_shape<'a>(arena: &'a Arena, values: &[Value]) -> Option<Vec<&'a Table>> {
    let tables = values
        .iter()
        .map(|v| match v {
            Value::Table(id) => arena.table(*id).ok().filter(|t| t.readonly),
            _ => None,
        })
        .collect::<Option<Vec<&Table>>>()?;
    let first = tables.first()?;
    let same_shape = |t: &Table| {
        t.array().len() == first.array().len()
            && t.hash_live()
                .map(|(k, _)| k)
                .eq(first.hash_live().map(|(k, _)| k))
    };
    let flat = |t: &Table| t.entry_count() <= INLINE_MAX_ENTRIES && t.children().next().is_none();
    tables
        .iter()
        .all(|t| flat(t) && same_shape(t))
        .then_some(tables)
}

/// The keys of a record shape: the array part's `1..=n`, then the hash part's.
pub(crate) fn shape_keys(t: &Table) -> impl Iterator<Item = KeyView<'_>> {
    (1..=t.array().len() as i64)
        .map(KeyView::Int)
        .chain(t.hash_live().map(|(k, _)| k.view()))
}

/// A record's values in the order of [`shape_keys`].
pub(crate) fn shape_values(t: &Table) -> impl Iterator<Item = &SValue> {
    t.array().iter().chain(t.hash_live().map(|(_, v)| v))
}

/// Writes `ToWorker::Reply(Reply::Records(..))` for the records `tables`
/// (from [`record_shape`]), which `ids` name.
pub(crate) fn records(out: &mut Vec<u8>, tables: &[&Table], ids: &[Value]) {
    let first = tables[0];
    envelope(out, "Records", 4);
    let per = shape_keys(first).count();
    let _ = mp::write_array_len(out, per as u32);
    for k in shape_keys(first) {
        key_view(out, k);
    }
    int(out, first.border());
    let _ = mp::write_array_len(out, ids.len() as u32);
    for v in ids {
        if let Value::Table(id) = v {
            let _ = mp::write_uint(out, id.raw());
        }
    }
    let _ = mp::write_array_len(out, (tables.len() * per) as u32);
    for t in tables {
        for v in shape_values(t) {
            svalue(out, v);
        }
    }
}

/// Writes `ToWorker::Reply(Reply::Entries { entries, tables, done })`.
pub(crate) fn entries(out: &mut Vec<u8>, arena: &Arena, entries: &[(Key, Value)], done: bool) {
    envelope(out, "Entries", 3);
    let _ = mp::write_array_len(out, entries.len() as u32);
    for (k, v) in entries {
        let _ = mp::write_array_len(out, 2);
        key_view(out, KeyView::of(k));
        value(out, v);
    }
    views(out, arena, entries.iter().filter_map(|(_, v)| table_id(v)));
    let _ = mp::write_bool(out, done);
}
