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
use super::inline::plan;

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
    let _ = mp::write_uint(out, id);
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
        let _ = mp::write_uint(out, id);
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
