//! The worker's fast decoder of the hot replies (`luapool_protocol::hot`)
//! on hostile bytes: it never panics, and whatever it reads as a hot reply
//! serde decodes to the same reply (differential against the plain form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use luapool_protocol::hot::{read, HotReply, Item};
use luapool_protocol::{decode, Entries, Fetched, Records, Reply, TableView, ToWorker};

fn views(c: &luapool_protocol::hot::Contents<'_>) -> Vec<TableView> {
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
                .map(|(k, v)| (k.to_key().expect("the decoder yields keys"), v.to_value()))
                .collect(),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(r)) = read(data) else { return };
    let fast = match r {
        HotReply::Fetched(c) => Reply::Fetched(Fetched {
            values: c.values().map(Item::to_value).collect(),
            tables: views(&c),
        }),
        HotReply::Entries(c) => Reply::Entries(Entries {
            entries: c
                .entries()
                .map(|(k, v)| (k.to_key().expect("the decoder yields keys"), v.to_value()))
                .collect(),
            tables: views(&c),
            done: c.done,
        }),
        HotReply::Records(r) => {
            let Ok(values) = r.values().map(|v| v.map(Item::to_value)).collect() else {
                return; // malformed past the header: the cache stops there
            };
            Reply::Records(Records {
                keys: r
                    .keys()
                    .map(|k| k.to_key().expect("the decoder yields keys"))
                    .collect(),
                len: r.len,
                ids: r.ids().collect(),
                values,
            })
        }
        HotReply::Bytes(b) => Reply::Bytes(b.to_vec()),
    };
    match decode::<ToWorker>(data) {
        // Debug text: a NaN read by both is equal there.
        Ok(ToWorker::Reply(slow)) => assert_eq!(format!("{slow:?}"), format!("{fast:?}")),
        other => panic!("the fast decoder read {fast:?}, serde {other:?}"),
    }
});
