//! Deep reads for the host: a table becomes a [`HostValue`] array or map.
//!
//! A table whose keys are exactly `1..n` (n ≥ 1) is an array; an empty table
//! is an array if it was made from an array, else a map; every other table is
//! a map (array-part entries first, then the hash part in insertion order).
//!
//! A table that contains itself is [`StoreError::Cycle`]. A table reachable
//! along two paths is converted twice (the result is a tree); the number of
//! values a result may hold is bounded so that sharing cannot blow it up.

use std::collections::HashSet;

use luapool_protocol::{Key, TableId, Value};

use super::arena::Arena;
use super::cell::SValue;
use super::table::{Table, SLOT_BYTES};
use super::{StoreError, MAX_NESTING};
use luapool_protocol::api::HostValue;

/// A result may hold at least this many values, whatever the arena's size.
const EXTRACT_MIN_LIMIT: u64 = 1 << 20;
/// ... and up to this many times the entries the arena accounts.
const EXTRACT_SHARING_FACTOR: u64 = 8;

/// Converts a value that is not a table.
pub(crate) fn extract_scalar(v: &Value) -> Result<HostValue, StoreError> {
    Ok(match v {
        Value::Nil => HostValue::Nil,
        Value::Bool(b) => HostValue::Bool(*b),
        Value::Int(i) => HostValue::Int(*i),
        Value::Float(f) => HostValue::Float(*f),
        Value::Str(s) => HostValue::Str(s.clone()),
        Value::Table(id) => return Err(StoreError::UnknownTable(*id)),
    })
}

/// Converts table `id` of `arena`, deeply.
pub(crate) fn extract(arena: &Arena, id: TableId) -> Result<HostValue, StoreError> {
    let entries = arena.stats().bytes / SLOT_BYTES;
    let limit = EXTRACT_MIN_LIMIT.max(entries.saturating_mul(EXTRACT_SHARING_FACTOR));
    let mut x = Extractor {
        arena,
        on_path: HashSet::new(),
        emitted: 0,
        limit,
    };
    x.table(id, 0)
}

struct Extractor<'a> {
    arena: &'a Arena,
    /// Tables being converted (the path from the root), to detect cycles.
    on_path: HashSet<TableId>,
    emitted: u64,
    limit: u64,
}

impl Extractor<'_> {
    fn value(&mut self, v: &SValue, depth: usize) -> Result<HostValue, StoreError> {
        Ok(match v {
            SValue::Table(id) => return self.table(*id, depth + 1),
            SValue::Nil => HostValue::Nil,
            SValue::Bool(b) => HostValue::Bool(*b),
            SValue::Int(i) => HostValue::Int(*i),
            SValue::Float(f) => HostValue::Float(*f),
            SValue::Short(..) | SValue::Long(_) => {
                HostValue::Str(v.bytes().unwrap_or_default().to_vec())
            }
        })
    }

    fn table(&mut self, id: TableId, depth: usize) -> Result<HostValue, StoreError> {
        if !self.on_path.insert(id) {
            return Err(StoreError::Cycle);
        }
        if depth >= MAX_NESTING {
            return Err(StoreError::TooDeep);
        }
        let t = self.arena.table(id)?;
        self.emitted += t.entry_count() as u64;
        if self.emitted > self.limit {
            return Err(StoreError::TooLarge { limit: self.limit });
        }
        let out = if is_array(t) {
            HostValue::Array(
                t.array()
                    .iter()
                    .map(|v| self.value(v, depth))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            let mut entries = Vec::with_capacity(t.entry_count());
            for (i, v) in t.array().iter().enumerate() {
                if !v.is_nil() {
                    entries.push((Key::Int(i as i64 + 1), self.value(v, depth)?));
                }
            }
            for (k, v) in t.hash_live() {
                entries.push((k.to_key(), self.value(v, depth)?));
            }
            HostValue::Map(entries)
        };
        self.on_path.remove(&id);
        Ok(out)
    }
}

/// True if the table's keys are exactly `1..n` (n ≥ 1), or it is empty and was
/// made from an array. (Integer keys `1..=n` live only in the array part, and
/// key `n + 1` never in the hash part, so a hole-free array part with an empty
/// hash part means exactly `1..n`.)
fn is_array(t: &Table) -> bool {
    t.hash_is_empty()
        && (t.from_array || !t.array().is_empty())
        && !t.array().iter().any(SValue::is_nil)
}
