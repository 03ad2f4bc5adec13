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
use super::super::table::{Table, SLOT_BYTES};
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

/// The writes of any other move: the keys that hold a value before or
/// after, in Lua's order.
fn anywhere(
    t: &Table,
    first: i64,
    last: i64,
    to: i64,
    to_last: i64,
    forward: bool,
) -> Vec<(i64, Value)> {
    let get = |k: i64| t.get_view(KeyView::Int(k));
    let mut writes: Vec<(i64, Value)> = present(t, first, last)
        .into_iter()
        .map(|k| {
            (
                to + (k - first),
                get(k).map_or(Value::Nil, SValue::to_value),
            )
        })
        .collect();
    writes.extend(
        present(t, to, to_last)
            .into_iter()
            .filter(|&k| get(first + (k - to)).is_none_or(SValue::is_nil))
            .map(|k| (k, Value::Nil)),
    );
    writes.sort_unstable_by_key(|w| w.0);
    if !forward {
        writes.reverse();
    }
    writes
}

/// A move whose keys all lie in the array part (the destination may end
/// one past it, appending): Lua's own loop, key by key in its order,
/// reading each source as it is then (`n` is at most the array's length).
fn within_array(
    arena: &mut Arena,
    id: TableId,
    first: i64,
    span: i64,
    to: i64,
    forward: bool,
) -> Result<(), StoreError> {
    let t = arena.table(id)?;
    // The bytes it adds: the strings that land past those they replace (the
    // two ranges' sums differ by the keys outside their overlap), and a
    // slot if it appends.
    let sum = |lo: i64, hi: i64| -> u64 {
        (lo..=hi)
            .filter_map(|k| t.get_view(KeyView::Int(k)).and_then(SValue::bytes))
            .map(|b| b.len() as u64)
            .sum()
    };
    let shift = (to - first).abs().min(span + 1);
    let (gained, lost) = if to >= first {
        (
            sum(first, first + shift - 1),
            sum(to + span - shift + 1, to + span),
        )
    } else {
        (
            sum(first + span - shift + 1, first + span),
            sum(to, to + shift - 1),
        )
    };
    let appends = to + span > t.border();
    arena.reserve(gained.saturating_sub(lost) + if appends { SLOT_BYTES } else { 0 })?;
    let mut step = |i: i64| -> Result<(), StoreError> {
        let arr = arena.table(id)?.array();
        let at = |k: i64| arr.get((k - 1) as usize).filter(|v| !v.is_nil());
        let after = match at(first + i) {
            Some(v) => v.to_value(),
            // A hole moved over a hole changes nothing.
            None if at(to + i).is_none() => return Ok(()),
            None => Value::Nil,
        };
        arena.set_unchecked(id, Key::Int(to + i), after)
    };
    if forward {
        (0..=span).try_for_each(&mut step)
    } else {
        (0..=span).rev().try_for_each(&mut step)
    }
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
    // Lua's order: ascending, unless the ranges overlap with `to` after
    // `first` (then a forward copy would read what it wrote).
    let forward = to > last || to <= first;
    let len = t.border();
    if first >= 1 && last <= len && to >= 1 && to_last <= len + 1 {
        return within_array(arena, id, first, span, to, forward);
    }
    let writes = anywhere(t, first, last, to, to_last, forward);
    // What the writes add, each counted against the table as it is: exact
    // for a move within the array part, about right for any other.
    let added: i64 = writes
        .iter()
        .map(|(k, after)| t.set_delta(&Key::Int(*k), after))
        .sum();
    arena.reserve(added.max(0) as u64)?;
    for (k, after) in writes {
        arena.set_unchecked(id, Key::Int(k), after)?;
    }
    Ok(())
}
