//! A `GetRange` over a read-only array of flat records of one shape (a
//! loaded JSON array of objects), served in one pass: each record's table
//! is looked up once, its bytes, flatness and keys checked together, and
//! the window written as a `Records` reply.
//!
//! The reply is exactly what [`read`](super::read), then
//! [`records_of`](super::records_of) and [`encode::records`] give: the same
//! byte budget cuts the window at the same record, and a window that is not
//! all records of the first one's shape (a nil, a writable table, a nested
//! table, another key) is left to them (`tests/encode.rs` compares both
//! paths).

use luapool_protocol::{TableId, REPLY_BYTES};

use super::super::arena::{prefetch, Arena};
use super::super::cell::{KeyView, SKey, SValue};
use super::super::encode;
use super::super::inline::{inline_bytes, INLINE_MAX_ENTRIES};
use super::super::table::Table;
use super::{long_len, Budget, MAX_RANGE};

/// Writes the `Records` reply to `GetRange { table, start, count }` if the
/// window is one; `false`: it is not (nothing written).
pub(super) fn window(
    out: &mut Vec<u8>,
    arena: &Arena,
    table: &Table,
    start: i64,
    count: u32,
) -> bool {
    if !table.readonly {
        return false;
    }
    let n = count.min(MAX_RANGE) as i64;
    let mut budget = Budget(REPLY_BYTES);
    let mut ids: Vec<TableId> = Vec::with_capacity(n as usize);
    let mut records: Vec<&Table> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let Some(k) = start.checked_add(i) else {
            return false;
        };
        ahead(arena, table, k);
        let v = table.get_view(KeyView::Int(k));
        // As `read`: a long string ends the window (or is the reply).
        if v.and_then(long_len).is_some() {
            if records.is_empty() {
                return false;
            }
            break;
        }
        let Some(&SValue::Table(id)) = v else {
            // Not a record: if the budget takes it, the window is not records.
            if !budget.take(records.len(), v.map_or(1, |v| 9 + v.payload().len())) {
                break;
            }
            return false;
        };
        let Ok(t) = arena.table(id) else {
            if !budget.take(records.len(), 9) {
                break;
            }
            return false;
        };
        let first = records.first().copied().unwrap_or(t);
        let (bytes, fits) = scan(t, first);
        if !budget.take(records.len(), bytes) {
            break;
        }
        if !fits || !t.readonly {
            return false;
        }
        ids.push(id);
        records.push(t);
    }
    if records.is_empty() {
        return false;
    }
    encode::records(out, &records, &ids);
    true
}

/// How many records ahead of the one read [`ahead`] asks the CPU for: the
/// records of a big array are scattered over memory the cache does not
/// hold, and waiting for each in turn costs more than reading it.
const AHEAD: i64 = 8;

/// Prefetches the table of the record `AHEAD` keys past `k`, and the hash
/// part of the one half as far (its table has arrived by now).
#[inline]
fn ahead(arena: &Arena, table: &Table, k: i64) {
    let at = |d: i64| match k.checked_add(d).map(|k| table.get_view(KeyView::Int(k))) {
        Some(Some(&SValue::Table(id))) => Some(id),
        _ => None,
    };
    if let Some(id) = at(AHEAD) {
        arena.prefetch(id);
    }
    if let Some(t) = at(AHEAD / 2).and_then(|id| arena.table(id).ok()) {
        if let Some(h) = t.hash_slice() {
            prefetch(h.as_ptr());
        }
    }
}

/// One pass over a record: the bytes it adds to a reply (as `reply_bytes`
/// counts them) and whether it is flat (no table among its values, at
/// most [`INLINE_MAX_ENTRIES`] entries) with `first`'s keys in order.
fn scan(t: &Table, first: &Table) -> (usize, bool) {
    if t.entry_count() > INLINE_MAX_ENTRIES {
        return (9, false);
    }
    let (Some(hash), Some(first_hash)) = (t.hash_slice(), first.hash_slice()) else {
        // A bigger hash part, or tombstones: the general checks.
        return (9 + inline_bytes(t), encode::same_flat_shape(t, first));
    };
    let mut bytes = 9;
    let mut fits = t.array().len() == first.array().len() && hash.len() == first_hash.len();
    for v in t.array() {
        bytes += wire(v);
        fits &= !matches!(v, SValue::Table(_));
    }
    for ((k, v), (k0, _)) in hash.iter().zip(first_hash) {
        bytes += key_wire(k) + wire(v);
        fits &= !matches!(v, SValue::Table(_)) && same_key(k, k0);
    }
    (bytes, fits)
}

/// `inline::wire_bytes`, for a value of a record.
#[inline]
fn wire(v: &SValue) -> usize {
    match v {
        SValue::Short(n, _) => 5 + *n as usize,
        SValue::Long(_) | SValue::Big(_) | SValue::Func(_) => 5 + v.payload().len(),
        _ => 9,
    }
}

/// `inline::key_wire_bytes`.
#[inline]
fn key_wire(k: &SKey) -> usize {
    match k {
        SKey::Short(n, _) => 5 + *n as usize,
        SKey::Long(b) => 5 + b.len(),
        _ => 9,
    }
}

/// `a == b`, without a call to `memcmp` for a short field name.
#[inline]
fn same_key(a: &SKey, b: &SKey) -> bool {
    match (a, b) {
        (SKey::Short(n, x), SKey::Short(m, y)) => {
            n == m && x[..*n as usize].iter().zip(y).all(|(p, q)| p == q)
        }
        _ => a == b,
    }
}
