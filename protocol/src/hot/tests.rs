//! The hot replies' fast paths against their serde form: the fast encoder
//! writes exactly the bytes serde writes, the fast decoder reads back what
//! serde wrote, and neither panics on bytes cut or flipped anywhere.

use proptest::prelude::*;

use super::read::{read, visit, HotReply, View, Visited, Visitor};
use super::write::{self, exact, ViewParts};
use super::{Entries, Fetched, Item, Records, TableView, ViewHead};
use crate::{decode, encode, Key, Reply, TableId, ToWorker, Value};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![Just(0i64), -200..200i64, Just(i64::MIN), Just(i64::MAX)].prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 250..300).prop_map(Value::Str),
        any::<u64>().prop_map(|id| Value::Table(TableId::from_raw(id))),
        "0|-?[1-9][0-9]{0,60}".prop_map(Value::BigInt),
        "function\\([a-z, ]{0,8}\\) return [a-z0-9 .]{0,20} end".prop_map(Value::Function),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<i64>().prop_map(Key::Int),
        (-5..40i64).prop_map(Key::Int),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Key::Str),
        any::<bool>().prop_map(Key::Bool),
        any::<f64>().prop_filter_map("not a float key", |f| Key::from_f64(f)
            .ok()
            .filter(|k| matches!(k, Key::Float(_)))),
    ]
}

fn view() -> impl Strategy<Value = TableView> {
    (
        any::<u64>(),
        any::<bool>(),
        any::<i64>(),
        any::<bool>(),
        proptest::collection::vec(value(), 0..6),
        proptest::collection::vec((key(), value()), 0..6),
    )
        .prop_map(|(id, readonly, len, complete, array, hash)| TableView {
            id: TableId::from_raw(id),
            readonly,
            len,
            complete,
            array,
            hash,
        })
}

fn views() -> impl Strategy<Value = Vec<TableView>> {
    proptest::collection::vec(view(), 0..5)
}

fn records() -> impl Strategy<Value = Records> {
    (
        proptest::collection::vec(key(), 0..5),
        0usize..6,
        any::<i64>(),
        any::<u64>(),
    )
        .prop_flat_map(|(keys, n, len, base)| {
            let values = proptest::collection::vec(value(), n * keys.len());
            let ids = proptest::collection::vec(any::<u64>(), n);
            (Just(keys), Just(len), ids, values, Just(base))
        })
        .prop_map(|(keys, len, ids, values, _)| Records {
            keys,
            len,
            ids: ids.into_iter().map(TableId::from_raw).collect(),
            values,
        })
}

/// The views as the fast encoder takes them, borrowed.
fn parts(
    views: &[TableView],
) -> impl ExactSizeIterator<
    Item = ViewParts<
        impl ExactSizeIterator<Item = Item<'_>>,
        impl ExactSizeIterator<Item = (Item<'_>, Item<'_>)>,
    >,
> {
    views.iter().map(|v| ViewParts {
        head: ViewHead {
            id: v.id,
            readonly: v.readonly,
            len: v.len,
            complete: v.complete,
        },
        array: v.array.iter().map(Item::of),
        hash: v.hash.iter().map(|(k, v)| (Item::key(k), Item::of(v))),
    })
}

fn owned_views(c: &super::Contents<'_>) -> Vec<TableView> {
    c.views()
        .iter()
        .map(|v| TableView {
            id: v.head.id,
            readonly: v.head.readonly,
            len: v.head.len,
            complete: v.head.complete,
            array: v.array().map(Item::to_value).collect(),
            hash: v
                .hash()
                .map(|(k, v)| (k.to_key().expect("a key"), v.to_value()))
                .collect(),
        })
        .collect()
}

/// The reply the fast decoder reads from `bytes`, owned.
fn fast_read(bytes: &[u8]) -> Option<Reply> {
    Some(match read(bytes).expect("well-formed")? {
        HotReply::Fetched(c) => Reply::Fetched(Fetched {
            values: c.values().map(Item::to_value).collect(),
            tables: owned_views(&c),
        }),
        HotReply::Entries(c) => Reply::Entries(Entries {
            entries: c
                .entries()
                .map(|(k, v)| (k.to_key().expect("a key"), v.to_value()))
                .collect(),
            tables: owned_views(&c),
            done: c.done,
        }),
        HotReply::Records(r) => Reply::Records(Records {
            keys: r.keys().map(|k| k.to_key().expect("a key")).collect(),
            len: r.len,
            ids: r.ids().collect(),
            values: r
                .values()
                .map(|v| v.expect("well-formed").to_value())
                .collect(),
        }),
        HotReply::Bytes(b) => Reply::Bytes(b.to_vec()),
    })
}

/// Everything a visitor is handed, in order.
#[derive(Default)]
struct Events(Vec<String>);

impl<'a> Visitor<'a> for Events {
    fn value(&mut self, v: Item<'a>) {
        self.0.push(format!("value {v:?}"));
    }
    fn entry(&mut self, k: Item<'a>, v: Item<'a>) {
        self.0.push(format!("entry {k:?} {v:?}"));
    }
    fn view_start(&mut self, head: ViewHead) -> bool {
        self.0.push(format!("view {head:?}"));
        // Every other view is skipped.
        head.id.raw().is_multiple_of(2)
    }
    fn view_value(&mut self, v: Item<'a>) {
        self.0.push(format!("  value {v:?}"));
    }
    fn view_entry(&mut self, k: Item<'a>, v: Item<'a>) {
        self.0.push(format!("  entry {k:?} {v:?}"));
    }
    fn view_end(&mut self, view: &View<'a>) {
        self.0
            .push(format!("end {:?} {:?}", view.head, view.counts()));
    }
}

/// `visit` hands a visitor what `read` reads, in the order of the bytes.
fn visit_matches_read(bytes: &[u8]) {
    let mut seen = Events::default();
    let Ok(Some(Visited::Contents { len, done })) = visit(bytes, &mut seen) else {
        panic!("not contents")
    };
    let Ok(Some(HotReply::Fetched(c) | HotReply::Entries(c))) = read(bytes) else {
        panic!("not contents")
    };
    let mut want = Events::default();
    c.values().for_each(|v| want.value(v));
    c.entries().for_each(|(k, v)| want.entry(k, v));
    for view in c.views() {
        if want.view_start(view.head) {
            view.array().for_each(|v| want.view_value(v));
            view.hash().for_each(|(k, v)| want.view_entry(k, v));
        }
        want.view_end(view);
    }
    assert_eq!(seen.0, want.0);
    assert_eq!((len, done), (c.len(), c.done));
}

/// Cuts and flips: the fast decoder returns an error or a reply, never
/// panics; whatever it accepts, serde reads the same way.
fn survives_damage(bytes: &[u8], flips: &[(usize, u8)]) {
    for cut in 0..bytes.len() {
        let _ = read(&bytes[..cut]).map(|r| r.map(|r| drain(&r)));
    }
    let mut bad = bytes.to_vec();
    for &(at, b) in flips {
        if !bad.is_empty() {
            let at = at % bad.len();
            bad[at] = b;
        }
    }
    agrees_with_serde(&bad);
}

/// If the fast decoder reads `bytes` as a hot reply, serde decodes them to
/// the same reply.
pub(crate) fn agrees_with_serde(bytes: &[u8]) {
    let Ok(Some(r)) = read(bytes) else { return };
    let complete = match &r {
        HotReply::Records(r) => r.values().all(|v| v.is_ok()),
        _ => true,
    };
    if !complete {
        return;
    }
    let fast = fast_read(bytes).expect("read above");
    match decode::<ToWorker>(bytes) {
        Ok(ToWorker::Reply(slow)) => assert!(same(&slow, &fast), "{slow:?} vs {fast:?}"),
        other => panic!("the fast decoder read {fast:?}, serde {other:?}"),
    }
}

/// Equality with NaN equal to itself (a flipped byte can make one).
fn same(a: &Reply, b: &Reply) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn drain(r: &HotReply<'_>) -> usize {
    match r {
        HotReply::Fetched(c) | HotReply::Entries(c) => {
            c.values().count()
                + c.entries().count()
                + c.views()
                    .iter()
                    .map(|v| v.array().count() + v.hash().count())
                    .sum::<usize>()
        }
        HotReply::Records(r) => r.keys().count() + r.ids().count() + r.values().count(),
        HotReply::Bytes(b) => b.len(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fetched_fast_paths_match_serde(
        values in proptest::collection::vec(value(), 0..8),
        tables in views(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let owned = Reply::Fetched(Fetched { values: values.clone(), tables: tables.clone() });
        let serde_bytes = encode(&ToWorker::Reply(owned.clone()));
        let mut fast = Vec::new();
        Fetched::write(&mut fast, values.iter().map(Item::of), parts(&tables));
        prop_assert_eq!(&fast, &serde_bytes);
        prop_assert_eq!(fast_read(&serde_bytes), Some(owned));
        visit_matches_read(&serde_bytes);
        survives_damage(&serde_bytes, &flips);
    }

    #[test]
    fn entries_fast_paths_match_serde(
        entries in proptest::collection::vec((key(), value()), 0..8),
        tables in views(),
        done in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let owned = Reply::Entries(Entries { entries: entries.clone(), tables: tables.clone(), done });
        let serde_bytes = encode(&ToWorker::Reply(owned.clone()));
        let mut fast = Vec::new();
        Entries::write(
            &mut fast,
            entries.iter().map(|(k, v)| (Item::key(k), Item::of(v))),
            parts(&tables),
            done,
        );
        prop_assert_eq!(&fast, &serde_bytes);
        prop_assert_eq!(fast_read(&serde_bytes), Some(owned));
        visit_matches_read(&serde_bytes);
        survives_damage(&serde_bytes, &flips);
    }

    #[test]
    fn records_fast_paths_match_serde(
        r in records(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let owned = Reply::Records(r.clone());
        let serde_bytes = encode(&ToWorker::Reply(owned.clone()));
        let mut fast = Vec::new();
        Records::write(
            &mut fast,
            r.keys.iter().map(Item::key),
            r.len,
            r.ids.iter().copied(),
            r.values.iter().map(Item::of),
        );
        prop_assert_eq!(&fast, &serde_bytes);
        prop_assert_eq!(fast_read(&serde_bytes), Some(owned));
        survives_damage(&serde_bytes, &flips);
    }

    #[test]
    fn string_pieces_fast_paths_match_serde(
        b in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let owned = Reply::Bytes(b.clone());
        let serde_bytes = encode(&ToWorker::Reply(owned.clone()));
        let mut fast = Vec::new();
        write::bytes(&mut fast, &b);
        prop_assert_eq!(&fast, &serde_bytes);
        prop_assert_eq!(fast_read(&serde_bytes), Some(owned));
        survives_damage(&serde_bytes, &flips);
    }
}

#[test]
fn other_messages_are_left_to_serde() {
    for msg in [
        ToWorker::Reply(Reply::Ok),
        ToWorker::Reply(Reply::Len(3)),
        ToWorker::Reply(Reply::Long {
            key: Key::str("k"),
            len: 5 << 20,
        }),
        ToWorker::Shutdown,
    ] {
        assert!(read(&encode(&msg)).unwrap().is_none());
    }
}

#[test]
fn an_encoder_given_a_wrong_length_still_writes_a_message() {
    // An iterator that says 3 and yields 1, and one that says 1 and yields 3.
    let mut out = Vec::new();
    let one = [Value::Int(1)];
    let three = [Value::Int(1), Value::Int(2), Value::Int(3)];
    Fetched::write(&mut out, exact(3, one.iter().map(Item::of)), parts(&[]));
    let back: ToWorker = decode(&out).unwrap();
    assert_eq!(
        back,
        ToWorker::Reply(Reply::Fetched(Fetched {
            values: vec![Value::Int(1), Value::Nil, Value::Nil],
            tables: vec![],
        }))
    );
    out.clear();
    Fetched::write(&mut out, exact(1, three.iter().map(Item::of)), parts(&[]));
    let back: ToWorker = decode(&out).unwrap();
    assert_eq!(
        back,
        ToWorker::Reply(Reply::Fetched(Fetched {
            values: vec![Value::Int(1)],
            tables: vec![],
        }))
    );
}

#[test]
fn integral_float_keys_read_as_integers_as_serde_reads_them() {
    // A peer may write the key 2 as the float 2.0: both readers say 2.
    let mut out = Vec::new();
    Entries::write(
        &mut out,
        [(Item::Float(2.0), Item::Int(7))].into_iter(),
        parts(&[]),
        true,
    );
    assert_eq!(
        fast_read(&out),
        Some(Reply::Entries(Entries {
            entries: vec![(Key::Int(2), Value::Int(7))],
            tables: vec![],
            done: true,
        }))
    );
    agrees_with_serde(&out);
    // Nil, NaN and tables are no keys, for either reader.
    for bad in [
        Item::Nil,
        Item::Float(f64::NAN),
        Item::Table(TableId::from_raw(1)),
    ] {
        out.clear();
        Entries::write(
            &mut out,
            [(bad, Item::Int(7))].into_iter(),
            parts(&[]),
            true,
        );
        assert!(read(&out).is_err());
        assert!(decode::<ToWorker>(&out).is_err());
    }
}

#[test]
fn integers_take_the_bytes_rmp_gives_them_at_every_width_boundary() {
    let mut edges = vec![i64::MIN, i64::MAX, 0];
    for b in [5u32, 7, 8, 15, 16, 31, 32, 62] {
        let p = 1i64 << b;
        edges.extend([p - 1, p, p + 1, -p - 1, -p, -p + 1]);
    }
    for v in edges {
        let mut ours = Vec::new();
        write::item(&mut ours, Item::Int(v));
        let mut theirs = Vec::new();
        rmp::encode::write_sint(&mut theirs, v).unwrap();
        assert_eq!(ours, theirs, "{v}");
    }
    // Ids are unsigned: a Records reply writes them as `write_uint` does.
    for id in [
        0u64,
        127,
        128,
        255,
        256,
        65535,
        65536,
        u32::MAX as u64,
        1 << 32,
        u64::MAX,
    ] {
        let mut ours = Vec::new();
        Records::write(
            &mut ours,
            std::iter::empty(),
            0,
            [TableId::from_raw(id)].into_iter(),
            std::iter::empty(),
        );
        let theirs = encode(&ToWorker::Reply(Reply::Records(Records {
            keys: vec![],
            len: 0,
            ids: vec![TableId::from_raw(id)],
            values: vec![],
        })));
        assert_eq!(ours, theirs, "{id}");
    }
}
