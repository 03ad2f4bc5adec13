//! Inlining: the [`TableView`]s that go with a reply.
//!
//! Every table a reply's values mention gets a view. A small table (at most
//! [`INLINE_MAX_ENTRIES`] entries) comes *complete*, with all its entries, as
//! long as the reply's budget lasts; the tables its entries mention get views
//! too, breadth first (so a window of records is inlined before their
//! grandchildren), down to [`INLINE_MAX_DEPTH`]. Each table appears at most
//! once per reply. Other tables get an incomplete view: no entries, but the
//! correct `len` and `readonly`.
//!
//! This is what lets a worker walk 100 000 records in ~100 round trips.

use std::collections::VecDeque;

use luapool_protocol::{IdSet, TableId, TableView, Value};

use super::arena::Arena;
use super::cell::{KeyView, SKey, SValue};
use super::table::Table;

/// Tables with at most this many entries are inlined.
pub const INLINE_MAX_ENTRIES: usize = 32;
/// The most entries inlined into one reply.
pub const INLINE_BUDGET_ENTRIES: usize = 64 * 1024;
/// The most estimated encoded bytes inlined into one reply.
pub const INLINE_BUDGET_BYTES: usize = 1 << 20;
/// How many levels below the reply's own values tables are inlined.
pub const INLINE_MAX_DEPTH: usize = 8;

/// A rough MessagePack size of a value (or key).
fn wire_bytes(v: &SValue) -> usize {
    match v {
        SValue::Short(..) | SValue::Long(_) | SValue::Big(_) | SValue::Func(_) => {
            5 + v.payload().len()
        }
        _ => 9,
    }
}

fn key_wire_bytes(k: &SKey) -> usize {
    match k.view() {
        KeyView::Str(s) => 5 + s.len(),
        _ => 9,
    }
}

/// Which tables a reply describes, in order, and whether each comes
/// complete: the tables `roots` mention, then (breadth first) those that
/// complete ones mention, within the reply's budget.
pub(crate) fn plan(
    arena: &Arena,
    roots: impl IntoIterator<Item = TableId>,
) -> Vec<(TableId, bool)> {
    let mut seen = IdSet::default();
    let mut queue: VecDeque<(TableId, usize)> = VecDeque::new();
    for id in roots {
        if seen.insert(id) {
            queue.push_back((id, 0));
        }
    }
    let mut out = Vec::with_capacity(queue.len());
    let (mut entries_left, mut bytes_left) = (INLINE_BUDGET_ENTRIES, INLINE_BUDGET_BYTES);
    while let Some((id, depth)) = queue.pop_front() {
        let Ok(t) = arena.table(id) else { continue };
        let n = t.entry_count();
        let mut complete = false;
        if n <= INLINE_MAX_ENTRIES && depth <= INLINE_MAX_DEPTH && n <= entries_left {
            let bytes = inline_bytes(t);
            if bytes <= bytes_left {
                entries_left -= n;
                bytes_left -= bytes;
                complete = true;
                for c in t.children() {
                    if seen.insert(c) {
                        queue.push_back((c, depth + 1));
                    }
                }
            }
        }
        out.push((id, complete));
    }
    out
}

/// Views of the tables (of `arena`) that `values` mention, and transitively
/// of tables inlined ones mention.
pub(crate) fn views<'v>(
    arena: &Arena,
    values: impl IntoIterator<Item = &'v Value>,
) -> Vec<TableView> {
    let roots = values.into_iter().filter_map(|v| {
        if let Value::Table(id) = v {
            Some(*id)
        } else {
            None
        }
    });
    plan(arena, roots)
        .into_iter()
        .filter_map(|(id, complete)| {
            let t = arena.table(id).ok()?;
            let mut view = TableView {
                id,
                readonly: t.readonly,
                len: t.border(),
                complete,
                array: Vec::new(),
                hash: Vec::new(),
            };
            if complete {
                view.array = t.array().iter().map(SValue::to_value).collect();
                view.hash = t
                    .hash_live()
                    .map(|(k, v)| (k.to_key(), v.to_value()))
                    .collect();
            }
            Some(view)
        })
        .collect()
}

/// About the encoded bytes of a table's entries.
pub(crate) fn inline_bytes(t: &Table) -> usize {
    t.array().iter().map(wire_bytes).sum::<usize>()
        + t.hash_live()
            .map(|(k, v)| key_wire_bytes(k) + wire_bytes(v))
            .sum::<usize>()
}
