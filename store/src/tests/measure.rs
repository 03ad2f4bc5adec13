//! Measurements, run by hand:
//! `cargo test -p luapool-supervisor --lib measure -- --ignored --nocapture --test-threads 1`

use luapool_protocol::{Key, Literal, Reply, Request, Value, Write};

use super::only;
use crate::Store;
use luapool_protocol::api::HostValue;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

#[test]
#[ignore = "measures process RSS; run alone"]
fn memory_per_record_of_a_million_small_records() {
    const N: i64 = 1_000_000;
    let store = Store::new();
    let a = store.create_arena(0);
    let root = store.new_table(a).unwrap();
    let before = rss_bytes();
    // As a worker writes them: `out[i] = {id = i, value = i / 2}`, 1000 per request.
    for chunk in 0..N / 1000 {
        let writes = (1..=1000)
            .map(|j| {
                let i = chunk * 1000 + j;
                let record = Literal::Table {
                    array: vec![],
                    hash: vec![
                        (Key::str("id"), Literal::Value(Value::Int(i))),
                        (
                            Key::str("value"),
                            Literal::Value(Value::Float(i as f64 / 2.0)),
                        ),
                    ],
                };
                Write {
                    table: root,
                    key: Key::Int(i),
                    value: record,
                }
            })
            .collect();
        assert_eq!(store.handle(&only(a), Request::Write(writes)), Reply::Ok);
    }
    let after = rss_bytes();
    let stats = store.arena_stats(a).unwrap();
    println!(
        "worker writes: {} tables, RSS +{} bytes/record, accounted {} bytes/record",
        stats.tables,
        (after - before) / N as u64,
        stats.bytes / N as u64
    );

    // As the host loads them, one record at a time into a fresh arena.
    let b = store.create_arena(0);
    let root = store.new_table(b).unwrap();
    let before = rss_bytes();
    for i in 1..=N {
        let record = HostValue::Map(vec![
            (Key::str("id"), HostValue::Int(i)),
            (Key::str("value"), HostValue::Float(i as f64 / 2.0)),
        ]);
        let v = store.load(b, &record, true).unwrap();
        store.host_set(root, Key::Int(i), v).unwrap();
    }
    let after = rss_bytes();
    println!(
        "host loads: RSS +{} bytes/record",
        (after - before) / N as u64
    );
}

#[test]
#[ignore = "timing; run alone"]
fn time_to_serve_a_loop_over_100k_records() {
    const N: usize = 100_000;
    let records: Vec<_> = (0..N)
        .map(|i| serde_json::json!({"id": i, "value": i as f64 / 2.0}))
        .collect();
    let store = Store::new();
    let a = store.create_arena(0);
    let Value::Table(id) = store
        .load(a, &super::j(serde_json::json!(records)), true)
        .unwrap()
    else {
        panic!()
    };
    let started = std::time::Instant::now();
    let (mut start, mut requests, mut inlined) = (1i64, 0, 0);
    while start <= N as i64 {
        let Reply::Fetched(f) = store.handle(
            &only(a),
            Request::GetRange {
                table: id,
                start,
                count: 1000,
            },
        ) else {
            panic!()
        };
        inlined += f.tables.iter().filter(|t| t.complete).count();
        start += 1000;
        requests += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(inlined, N);
    println!(
        "{requests} requests, {:.0} ns/record (this crate unoptimised in a debug build)",
        elapsed.as_nanos() as f64 / N as f64
    );
}
