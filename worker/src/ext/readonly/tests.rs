//! The read-only cache against replies as the supervisor writes them: every
//! way a record is found, malformed and mutated replies, and (ignored, by
//! hand) how fast a window is taken in.

use luapool_protocol::{Key, TableId};

use super::cache::{Cell, Found, LKey, RoCache, Values};
use luapool_protocol::{encode, Fetched, Records, Reply, TableView, ToWorker, Value};

/// A window of `n` records `{id = i, value = i / 3}` as the supervisor sends it.
fn window(n: u64) -> Vec<u8> {
    let base = 1u64 << 32;
    let views = (0..n)
        .map(|i| TableView {
            id: TableId::from_raw(base + 10 + i),
            readonly: true,
            len: 0,
            complete: true,
            array: vec![],
            hash: vec![
                (Key::str("id"), Value::Int(i as i64)),
                (Key::str("value"), Value::Float(i as f64 / 3.0)),
            ],
        })
        .collect();
    encode(&ToWorker::Reply(Reply::Fetched(Fetched {
        values: (0..n)
            .map(|i| Value::Table(TableId::from_raw(base + 10 + i)))
            .collect(),
        tables: views,
    })))
}

fn records(ids: &[TableId], keys: Vec<Key>, values: Vec<Value>) -> Vec<u8> {
    encode(&ToWorker::Reply(Reply::Records(Records {
        keys,
        len: 1,
        ids: ids.to_vec(),
        values,
    })))
}

fn s(c: &RoCache, cell: Cell) -> Vec<u8> {
    match cell {
        Cell::Str { off, len } => c.str(off, len).to_vec(),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn records_read_back_by_key_position_and_iteration() {
    let base = 5u64 << 32;
    let values = vec![
        Value::Int(7),
        Value::Int(-70000),
        Value::Int(i64::MIN),
        Value::Float(0.5),
        Value::Str(b"ann".to_vec()),
        Value::Bool(true),
        Value::Nil,
        Value::Int(300),
        Value::Int(u32::MAX as i64 + 1),
        Value::Float(-1e300),
        Value::Str(vec![0xff; 40]),
        Value::Bool(false),
    ];
    let keys = vec![
        Key::Int(1),
        Key::Int(2),
        Key::str("x"),
        Key::str("y"),
        Key::str("name"),
        Key::Bool(true),
    ];
    for ids in [[base + 3, base + 4], [base + 9, base + 3]].map(|p| p.map(TableId::from_raw)) {
        let mut c = RoCache::default();
        let bytes = records(&ids, keys.clone(), values.clone());
        let (first, n) = c
            .add(
                &bytes,
                Values::Range {
                    table: TableId::from_raw(1),
                    start: 11,
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(c.cell_at(first + 1), Cell::Table(ids[1]));
        assert_eq!(
            c.get(TableId::from_raw(1), LKey::Int(12)),
            Found::Value(Cell::Table(ids[1]))
        );
        let (a, b) = (ids[0], ids[1]);
        assert_eq!(c.get(a, LKey::Int(1)), Found::Value(Cell::Int(7)));
        assert_eq!(c.get(a, LKey::Int(2)), Found::Value(Cell::Int(-70000)));
        assert_eq!(c.get(a, LKey::Str(b"x")), Found::Value(Cell::Int(i64::MIN)));
        assert_eq!(c.get(a, LKey::Str(b"y")), Found::Value(Cell::Float(0.5)));
        let Found::Value(name) = c.get(a, LKey::Str(b"name")) else {
            panic!()
        };
        assert_eq!(s(&c, name), b"ann");
        assert_eq!(c.get(a, LKey::Bool(true)), Found::Value(Cell::Bool(true)));
        assert_eq!(c.get(a, LKey::Str(b"absent")), Found::Value(Cell::Nil));
        assert_eq!(c.get(b, LKey::Int(1)), Found::Value(Cell::Nil), "a hole");
        assert_eq!(c.get(b, LKey::Int(2)), Found::Value(Cell::Int(300)));
        assert_eq!(
            c.get(b, LKey::Str(b"x")),
            Found::Value(Cell::Int(u32::MAX as i64 + 1))
        );
        assert_eq!(c.get(b, LKey::Str(b"y")), Found::Value(Cell::Float(-1e300)));
        assert_eq!(c.len(b), Some(1));
        // Iteration: the array part (skipping the hole), then the rest.
        let mut seen = Vec::new();
        let mut k: Option<Cell> = None;
        loop {
            let after = k.map(|k| match k {
                Cell::Int(i) => LKey::Int(i),
                Cell::Bool(v) => LKey::Bool(v),
                Cell::Str { off, len } => LKey::Str(c.str(off, len)),
                other => panic!("{other:?}"),
            });
            let Some((key, _)) = c.next_complete(b, after).unwrap() else {
                break;
            };
            seen.push(key);
            k = Some(key);
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[0], Cell::Int(2));
    }
}

#[test]
fn every_record_is_found_whatever_its_ids() {
    let base = 5u64 << 32;
    let patterns: Vec<Vec<TableId>> = vec![
        (0..6).map(|k| TableId::from_raw(base + k)).collect(), // up by one
        (0..6).map(|k| TableId::from_raw(base + 100 - k)).collect(), // down by one (reused slots)
        (0..6).map(|k| TableId::from_raw(base + 3 * k)).collect(), // up by three
        (0..6)
            .map(|k| TableId::from_raw(base + 50 - 7 * k))
            .collect(), // down by seven
        vec![
            TableId::from_raw(base + 9),
            TableId::from_raw(base + 3),
            TableId::from_raw(base + 4),
            TableId::from_raw(base + 1),
            TableId::from_raw(base + 20),
            TableId::from_raw(base + 2),
        ], // no pattern
        vec![
            TableId::from_raw(base + 9),
            TableId::from_raw(base + 3),
            TableId::from_raw(base + 4),
        ], // starts like a run, is not one
        vec![
            TableId::from_raw(u64::MAX - 1),
            TableId::from_raw(u64::MAX),
            TableId::from_raw(0),
        ], // would wrap
        vec![TableId::from_raw(base)],
    ];
    for ids in patterns {
        let values = (0..ids.len()).map(|k| Value::Int(k as i64 * 10)).collect();
        let mut c = RoCache::default();
        c.add(
            &records(&ids, vec![Key::str("x")], values),
            Values::Range {
                table: TableId::from_raw(1),
                start: 1,
            },
        )
        .unwrap()
        .unwrap();
        for (k, id) in ids.iter().enumerate() {
            assert_eq!(
                c.get(*id, LKey::Str(b"x")),
                Found::Value(Cell::Int(k as i64 * 10)),
                "{ids:?} record {k}"
            );
        }
        assert_eq!(
            c.get(TableId::from_raw(base + 1000), LKey::Str(b"x")),
            Found::Miss,
            "{ids:?}"
        );
    }
}

#[test]
fn bad_records_are_malformed_and_leave_nothing_dangling() {
    let base = 5u64 << 32;
    let good = records(
        &[TableId::from_raw(base), TableId::from_raw(base + 1)],
        vec![Key::str("v")],
        vec![Value::Int(1), Value::Int(2)],
    );
    for cut in 0..good.len() {
        let mut c = RoCache::default();
        if c.add(
            &good[..cut],
            Values::Range {
                table: TableId::from_raw(1),
                start: 1,
            },
        )
        .is_err()
        {
            // Whatever was kept, reading it is safe.
            let _ = c.get(TableId::from_raw(base), LKey::Str(b"v"));
            let _ = c.get(TableId::from_raw(base + 1), LKey::Str(b"v"));
            let _ = c.get(TableId::from_raw(1), LKey::Int(2));
        }
    }
    // Values count not ids x keys.
    let bad = records(
        &[TableId::from_raw(base), TableId::from_raw(base + 1)],
        vec![Key::str("v")],
        vec![Value::Int(1)],
    );
    assert!(RoCache::default()
        .add(
            &bad,
            Values::Range {
                table: TableId::from_raw(1),
                start: 1
            }
        )
        .is_err());
    // Records answer only a window.
    assert!(RoCache::default().add(&good, Values::Pairs).is_err());
}

#[test]
fn mutated_replies_never_panic_and_leave_the_cache_readable() {
    // A valid Records window and a valid Fetched window (strings, holes,
    // nested tables), each with bytes flipped at random, many times.
    let base = 3u64 << 32;
    let ids: Vec<TableId> = (0..20).map(|i| TableId::from_raw(base + 40 - i)).collect();
    let values = (0..20)
        .flat_map(|i| {
            [
                Value::Int(i),
                Value::Str(format!("v{i}").into_bytes()),
                Value::Nil,
            ]
        })
        .collect();
    let flat = records(
        &ids,
        vec![Key::Int(1), Key::str("s"), Key::str("n")],
        values,
    );
    let nested = window(20);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            flat.clone()
        } else {
            nested.clone()
        };
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        bytes.truncate(bytes.len() - (next() % 8) as usize);
        let values = match round % 4 {
            0 | 1 => Values::Range {
                table: TableId::from_raw(1),
                start: 1,
            },
            2 => Values::Pairs,
            _ => Values::None,
        };
        let mut c = RoCache::default();
        let _ = c.add(&bytes, values);
        for id in ids
            .iter()
            .copied()
            .chain([TableId::from_raw(base + 10), TableId::from_raw(1)])
        {
            for key in [
                LKey::Int(1),
                LKey::Int(2),
                LKey::Str(b"s"),
                LKey::Str(b"value"),
            ] {
                if let Found::Value(Cell::Str { off, len }) = c.get(id, key) {
                    let _ = c.str(off, len);
                }
            }
            let _ = c.len(id);
            let mut after = None;
            for _ in 0..8 {
                match c.next_complete(id, after) {
                    Ok(Some((Cell::Int(k), _))) => after = Some(LKey::Int(k)),
                    _ => break,
                }
            }
        }
    }
}

/// Nanoseconds per record of taking in `bytes`, a window of 512.
fn ns_per_record(bytes: &[u8]) -> f64 {
    let mut c = RoCache::default();
    let t = std::time::Instant::now();
    let reps = 2000;
    for r in 0..reps {
        let start = 1 + 512 * r;
        c.add(
            bytes,
            Values::Range {
                table: TableId::from_raw(7),
                start,
            },
        )
        .unwrap();
    }
    t.elapsed().as_nanos() as f64 / (reps * 512) as f64
}

#[test]
#[ignore = "a measurement: cargo test --release -p luapool-worker -- --ignored --nocapture"]
fn add_records_speed() {
    let base = 1u64 << 32;
    let ids: Vec<TableId> = (0..512).map(|i| TableId::from_raw(base + 10 + i)).collect();
    let values = (0..512)
        .flat_map(|i| [Value::Int(i), Value::Float(i as f64 / 3.0)])
        .collect();
    let bytes = records(&ids, vec![Key::str("id"), Key::str("value")], values);
    let per = ns_per_record(&bytes);
    println!(
        "add records: {per:.1} ns per record ({} bytes per window)",
        bytes.len()
    );
}

#[test]
#[ignore = "a measurement: cargo test --release -p luapool-worker -- --ignored --nocapture"]
fn add_speed() {
    let bytes = window(512);
    let per = ns_per_record(&bytes);
    println!(
        "add: {per:.1} ns per record ({} bytes per window)",
        bytes.len()
    );
}
