//! `Request::Move`: `table.move(t, first, last, to)` within one table, done
//! by the store in one request, so that `table.insert` and `table.remove`
//! in the middle of a large array cost the worker no request per element.
//!
//! The result is Lua's: the keys `to..to + n` get the values the keys
//! `first..=last` held before (a hole moves as a hole). Only keys that hold
//! a value before or after are touched, so the work is bounded by the
//! table's size however wide the range. The bytes it adds are reserved
//! first (a move that would pass the quota changes nothing); then every
//! change goes through [`Arena::set_unchecked`] (and so through whatever
//! the arena keeps to undo a compute), in Lua's own order.

use luapool_protocol::{Key, TableId, Value};

use super::super::arena::Arena;
use super::super::cell::{KeyView, SValue};
use super::super::table::Table;
use super::super::StoreError;

/// The integer keys in `lo..=hi` that hold a value, ascending.
fn present(t: &Table, lo: i64, hi: i64) -> Vec<i64> {
    let len = t.border();
    let live = |k: i64| t.get_view(KeyView::Int(k)).is_some_and(|v| !v.is_nil());
    let mut keys: Vec<i64> = (lo.max(1)..=hi.min(len)).filter(|&k| live(k)).collect();
    // Keys below 1 or past the array part live in the hash part.
    if lo < 1 || hi > len {
        let mut more: Vec<i64> = t
            .hash_live()
            .filter_map(|(k, _)| match k.view() {
                KeyView::Int(i) if i >= lo && i <= hi && (i < 1 || i > len) => Some(i),
                _ => None,
            })
            .collect();
        keys.append(&mut more);
        keys.sort_unstable();
    }
    keys
}

/// `table.move(t, first, last, to)` on table `id` of `arena`.
pub(super) fn move_keys(
    arena: &mut Arena,
    id: TableId,
    first: i64,
    last: i64,
    to: i64,
) -> Result<(), StoreError> {
    if last < first {
        return Ok(());
    }
    let bad = || StoreError::MoveRange { first, last, to };
    let span = last.checked_sub(first).ok_or_else(bad)?;
    let to_last = to.checked_add(span).ok_or_else(bad)?;
    let t = arena.table(id)?;
    let get = |k: i64| {
        t.get_view(KeyView::Int(k))
            .map_or(Value::Nil, SValue::to_value)
    };
    // Every key written, with its value after the move.
    let mut writes: Vec<(i64, Value)> = present(t, first, last)
        .into_iter()
        .map(|k| (to + (k - first), get(k)))
        .collect();
    let mut cleared: Vec<(i64, Value)> = present(t, to, to_last)
        .into_iter()
        .filter(|&k| get(first + (k - to)) == Value::Nil)
        .map(|k| (k, Value::Nil))
        .collect();
    writes.append(&mut cleared);
    // What the writes add, each counted against the table as it is: exact
    // for a shift within the array part, about right for any other move.
    let added: i64 = writes
        .iter()
        .map(|(k, after)| t.set_delta(&Key::Int(*k), after))
        .sum();
    arena.reserve(added.max(0) as u64)?;
    // Lua's order: ascending, unless the ranges overlap with `to` after
    // `first` (then a forward copy would read what it wrote).
    let forward = to > last || to <= first;
    writes.sort_unstable_by_key(|w| w.0);
    if !forward {
        writes.reverse();
    }
    for (k, after) in writes {
        arena.set_unchecked(id, Key::Int(k), after)?;
    }
    Ok(())
}
