//! Bringing a worker's data into an arena: literals and values that may
//! reference the other arena of a scope ([`store`]). Host data is loaded by
//! [`load_bytes`](super::load_bytes).
//!
//! Every operation first computes what it will add (an upper bound of the
//! accounted bytes), checks the quota, and only then builds: a refused
//! operation changes nothing.
//!
//! A table of another arena is deep-copied, preserving sharing and cycles
//! (a graph copy, iterative, so a long chain cannot overflow the stack).
//!
//! Shape: a worker literal with only an array part makes a table "created
//! from an array" (empty, it converts back to `[]`), as a host array does; a
//! worker's empty literal `{}` is a map (Lua cannot tell the two apart).

use std::collections::{HashMap, HashSet};

use luapool_protocol::{Key, Literal, TableId, Value};

use super::arena::{arena_of, Arena};
use super::cell::SValue;
use super::table::{
    array_entry_bytes, hash_entry_bytes, key_extra, value_extra, Table, SLOT_BYTES, TABLE_BYTES,
};
use super::{StoreError, MAX_NESTING};

/// `table[key] = lit` in `arena` (the table's own arena). `other` is the
/// other arena a table reference may come from (copied deeply); a reference to
/// any arena but these two is [`StoreError::UnknownTable`]. No read-only check.
pub(crate) fn store(
    arena: &mut Arena,
    other: Option<&Arena>,
    table: TableId,
    key: Key,
    lit: Literal,
) -> Result<(), StoreError> {
    // Fast path: a plain value or a reference within the arena.
    match lit {
        Literal::Value(Value::Table(id)) if arena_of(id) == arena.id() => {
            arena.table(id)?;
            return arena.set(table, key, Value::Table(id));
        }
        Literal::Value(v) if !matches!(v, Value::Table(_)) => return arena.set(table, key, v),
        _ => {}
    }
    let mut foreign = Vec::new();
    let lit_cost = literal_cost(&lit, arena, other, &mut foreign, 0)?;
    let plan = match (other, foreign.is_empty()) {
        (_, true) => None,
        (Some(src), false) => Some(CopyPlan::new(src, &foreign)?),
        (None, false) => return Err(StoreError::UnknownTable(foreign[0])),
    };
    let delta = arena
        .table(table)?
        .set_delta(&key, &Value::Table(TableId::default()))
        .max(0) as u64;
    arena.reserve(lit_cost + plan.as_ref().map_or(0, |p| p.cost) + delta)?;
    let copies = match (plan, other) {
        (Some(plan), Some(src)) => plan.apply(src, arena)?,
        _ => HashMap::new(),
    };
    let value = build_literal(arena, lit, &copies)?;
    arena.set_unchecked(table, key, value)
}

fn literal_extra(lit: &Literal) -> u64 {
    match lit {
        Literal::Value(v) => value_extra(v),
        Literal::Table { .. } => 0,
    }
}

/// Accounted bytes of the new tables in `lit`; checks every table reference
/// and collects those into `other` (to copy) in `foreign`.
fn literal_cost(
    lit: &Literal,
    arena: &Arena,
    other: Option<&Arena>,
    foreign: &mut Vec<TableId>,
    depth: usize,
) -> Result<u64, StoreError> {
    if depth > MAX_NESTING {
        return Err(StoreError::TooDeep);
    }
    match lit {
        Literal::Value(Value::Table(id)) => {
            if arena_of(*id) == arena.id() {
                arena.table(*id)?;
            } else {
                match other {
                    Some(o) if o.id() == arena_of(*id) => {
                        o.table(*id).map(|_| foreign.push(*id))?
                    }
                    _ => return Err(StoreError::UnknownTable(*id)),
                }
            }
            Ok(0)
        }
        Literal::Value(_) => Ok(0),
        Literal::Table { array, hash } => {
            let mut cost = TABLE_BYTES;
            for item in array {
                cost += SLOT_BYTES
                    + literal_extra(item)
                    + literal_cost(item, arena, other, foreign, depth + 1)?;
            }
            for (k, item) in hash {
                cost += 2 * SLOT_BYTES
                    + key_extra(k)
                    + literal_extra(item)
                    + literal_cost(item, arena, other, foreign, depth + 1)?;
            }
            Ok(cost)
        }
    }
}

/// Builds `lit` in `arena` (checked and reserved by the caller); `copies` maps
/// foreign table ids to their copies.
fn build_literal(
    arena: &mut Arena,
    lit: Literal,
    copies: &HashMap<TableId, TableId>,
) -> Result<Value, StoreError> {
    match lit {
        Literal::Value(Value::Table(id)) => {
            Ok(Value::Table(copies.get(&id).copied().unwrap_or(id)))
        }
        Literal::Value(v) => Ok(v),
        Literal::Table { array, hash } => {
            let from_array = hash.is_empty() && !array.is_empty();
            let values = array
                .into_iter()
                .map(|l| build_literal(arena, l, copies))
                .collect::<Result<Vec<_>, _>>()?;
            let (mut t, bytes) = Table::from_array_values(values, false);
            t.from_array = from_array;
            let id = arena.insert(t, bytes)?;
            for (k, l) in hash {
                let v = build_literal(arena, l, copies)?;
                arena.set_unchecked(id, k, v)?;
            }
            arena.compact(id)?;
            Ok(Value::Table(id))
        }
    }
}

/// The tables reachable from some roots in a source arena, and what copying
/// them costs.
struct CopyPlan {
    order: Vec<TableId>,
    cost: u64,
}

impl CopyPlan {
    fn new(src: &Arena, roots: &[TableId]) -> Result<CopyPlan, StoreError> {
        let mut seen: HashSet<TableId> = HashSet::new();
        let mut stack: Vec<TableId> = roots.to_vec();
        let (mut order, mut cost) = (Vec::new(), 0u64);
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let t = src.table(id)?;
            cost += TABLE_BYTES + t.array().iter().map(array_entry_bytes).sum::<u64>();
            cost += t
                .hash_live()
                .map(|(k, v)| hash_entry_bytes(k, v))
                .sum::<u64>();
            stack.extend(t.children().filter(|c| !seen.contains(c)));
            order.push(id);
        }
        Ok(CopyPlan { order, cost })
    }

    /// Copies the planned tables into `dst`; returns source id → copy id.
    fn apply(self, src: &Arena, dst: &mut Arena) -> Result<HashMap<TableId, TableId>, StoreError> {
        let mut map = HashMap::with_capacity(self.order.len());
        for &id in &self.order {
            map.insert(id, dst.insert(Table::new(false, false), 0)?);
        }
        for &id in &self.order {
            let (copy, bytes) = src.table(id)?.map_copy(|v| match v {
                SValue::Table(c) => SValue::Table(map.get(c).copied().unwrap_or(*c)),
                other => other.clone(),
            });
            dst.fill(map[&id], copy, bytes)?;
        }
        Ok(map)
    }
}
