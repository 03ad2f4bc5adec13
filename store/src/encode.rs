//! Read replies written straight from the store's cells, through the
//! protocol's fast encoders (`luapool_protocol::hot`): cells and keys map
//! to borrowed [`Item`]s, so a window of 1024 records is encoded without
//! allocating per field. The bytes are what the codec writes for the owned
//! reply (the protocol's tests check the encoders; `tests/encode.rs` checks
//! that `handle_into` and `handle` agree).

use luapool_protocol::hot::{exact, write, Item, ViewHead, ViewParts};
use luapool_protocol::{Entries, Fetched, Key, Records, TableId, Value};

use super::arena::Arena;
use super::cell::{KeyView, SValue};
use super::inline::{plan, INLINE_MAX_ENTRIES};
use super::table::Table;

/// The item of a stored value.
pub(crate) fn item(v: &SValue) -> Item<'_> {
    match v {
        SValue::Nil => Item::Nil,
        SValue::Bool(b) => Item::Bool(*b),
        SValue::Int(i) => Item::Int(*i),
        SValue::Float(f) => Item::Float(*f),
        SValue::Table(id) => Item::Table(*id),
        SValue::Short(..) | SValue::Long(_) => Item::Str(v.bytes().unwrap_or_default()),
        SValue::Big(t) => Item::BigInt(t),
        SValue::Func(t) => Item::Function(t),
    }
}

/// The item of a stored key.
pub(crate) fn key_item(k: KeyView<'_>) -> Item<'_> {
    match k {
        KeyView::Int(i) => Item::Int(i),
        KeyView::Bool(b) => Item::Bool(b),
        KeyView::Float(bits) => Item::Float(f64::from_bits(bits)),
        KeyView::Str(s) => Item::Str(s),
    }
}

/// The views of the tables `roots` mention (see [`plan`]), as the encoders
/// take them.
fn views(arena: &Arena, roots: impl IntoIterator<Item = TableId>) -> Vec<(TableId, bool, &Table)> {
    plan(arena, roots)
        .into_iter()
        .filter_map(|(id, complete)| Some((id, complete, arena.table(id).ok()?)))
        .collect()
}

/// A table's view: its entries when `complete`, else none.
fn parts<'a>(
    &(id, complete, t): &(TableId, bool, &'a Table),
) -> ViewParts<
    impl ExactSizeIterator<Item = Item<'a>>,
    impl ExactSizeIterator<Item = (Item<'a>, Item<'a>)>,
> {
    let (narr, nhash) = match complete {
        true => (t.array().len(), t.entry_count() - t.array().len()),
        false => (0, 0),
    };
    ViewParts {
        head: ViewHead {
            id,
            readonly: t.readonly,
            len: t.border(),
            complete,
        },
        array: t.array()[..narr].iter().map(item),
        hash: exact(
            nhash,
            t.hash_live().map(|(k, v)| (key_item(k.view()), item(v))),
        ),
    }
}

/// Writes `ToWorker::Reply(Reply::Fetched(..))` of the cells `values`
/// (`None`: nil).
pub(crate) fn fetched(out: &mut Vec<u8>, arena: &Arena, values: &[Option<&SValue>]) {
    let tables = views(
        arena,
        values.iter().filter_map(|v| v.and_then(SValue::table)),
    );
    Fetched::write(
        out,
        values.iter().map(|v| v.map_or(Item::Nil, item)),
        tables.iter().map(parts),
    );
}

/// Writes `ToWorker::Reply(Reply::Entries(..))`.
pub(crate) fn entries(out: &mut Vec<u8>, arena: &Arena, entries: &[(Key, Value)], done: bool) {
    let tables = views(
        arena,
        entries.iter().filter_map(|(_, v)| match v {
            Value::Table(id) => Some(*id),
            _ => None,
        }),
    );
    Entries::write(
        out,
        entries.iter().map(|(k, v)| (Item::key(k), Item::of(v))),
        tables.iter().map(parts),
        done,
    );
}

/// The tables behind `values` if they are read-only records of one shape
/// (the same keys in the same order, at most [`INLINE_MAX_ENTRIES`] of
/// them, no table among their values): what [`Reply::Records`] carries.
///
/// [`Reply::Records`]: luapool_protocol::Reply::Records
pub(crate) fn record_shape<'a>(
    arena: &'a Arena,
    values: &[Option<&SValue>],
) -> Option<Vec<&'a Table>> {
    let tables = values
        .iter()
        .map(|v| {
            let id = v.and_then(SValue::table)?;
            arena.table(id).ok().filter(|t| t.readonly)
        })
        .collect::<Option<Vec<&Table>>>()?;
    let first = tables.first()?;
    tables
        .iter()
        .all(|t| same_flat_shape(t, first))
        .then_some(tables)
}

/// Whether `t` is flat (at most [`INLINE_MAX_ENTRIES`] entries, no table
/// among its values) and has `first`'s keys in `first`'s order.
pub(crate) fn same_flat_shape(t: &Table, first: &Table) -> bool {
    t.entry_count() <= INLINE_MAX_ENTRIES
        && t.children().next().is_none()
        && t.array().len() == first.array().len()
        && t.hash_live()
            .map(|(k, _)| k)
            .eq(first.hash_live().map(|(k, _)| k))
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
/// (of one shape, as [`record_shape`] finds them), which `ids` name.
pub(crate) fn records(out: &mut Vec<u8>, tables: &[&Table], ids: &[TableId]) {
    let first = tables[0];
    let nkeys = shape_keys(first).count();
    Records::write(
        out,
        exact(nkeys, shape_keys(first).map(key_item)),
        first.border(),
        ids.iter().copied(),
        tables.iter().flat_map(|t| shape_values(t).map(item)),
    );
}

/// Writes `ToWorker::Reply(Reply::Bytes(..))`: a piece of a long string.
pub(crate) fn bytes(out: &mut Vec<u8>, piece: &[u8]) {
    write::bytes(out, piece);
}
