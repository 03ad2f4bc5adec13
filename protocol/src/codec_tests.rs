//! Round trips of every message through MessagePack, and decoding of junk.

use crate::*;

fn round_trip<T>(msg: T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = encode(&msg);
    let back: T = decode(&bytes).expect("decodes");
    assert_eq!(back, msg);
}

fn binary_string() -> Vec<u8> {
    (0..=255u8).chain([0, 0xff, 0xc1]).collect()
}

fn big_string() -> Vec<u8> {
    // Larger than the whole 64 KiB ring.
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

fn view(id: TableId) -> TableView {
    TableView {
        id,
        readonly: true,
        len: 2,
        complete: true,
        array: vec![Value::Int(1), Value::Str(binary_string())],
        hash: vec![
            (Key::str("value"), Value::Float(0.5)),
            (Key::Bool(true), Value::Table(TableId::from_raw(9))),
        ],
    }
}

#[test]
fn values_and_keys_round_trip() {
    for v in [
        Value::Nil,
        Value::Bool(false),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Float(-0.25),
        Value::Float(f64::INFINITY),
        Value::Str(Vec::new()),
        Value::Str(binary_string()),
        Value::Str(big_string()),
        Value::Table(TableId::from_raw(u64::MAX)),
    ] {
        round_trip(v);
    }
    for k in [
        Key::Int(-1),
        Key::str("1"),
        Key::Bool(false),
        Key::Float(2.5f64.to_bits()),
    ] {
        round_trip(k);
    }
}

#[test]
fn nan_survives_as_a_value() {
    let back: Value = decode(&encode(&Value::Float(f64::NAN))).unwrap();
    assert!(matches!(back, Value::Float(f) if f.is_nan()));
}

#[test]
fn worker_bound_messages_round_trip() {
    round_trip(ToWorker::Start(Start {
        compute: 7,
        code: b"return 1\0\xff".to_vec(),
        chunk_name: "=script.lua".into(),
        io: TableId::from_raw(1),
        home: TableId::from_raw(2),
        limits: WorkerLimits {
            instructions: 10,
            cpu_time_ms: 15,
            memory: 20,
        },
    }));
    round_trip(ToWorker::Shutdown);
    for reply in [
        Reply::Ok,
        Reply::Records(Records {
            keys: vec![Key::Int(1), Key::str("value")],
            len: 1,
            ids: vec![TableId::from_raw(1 << 33), TableId::from_raw((1 << 33) + 1)],
            values: vec![
                Value::Nil,
                Value::Float(0.5),
                Value::Int(2),
                Value::Str(b"x".to_vec()),
            ],
        }),
        Reply::Len(5),
        Reply::NewTable(TableId::from_raw(4)),
        Reply::Reserved(vec![TableId::from_raw(5), TableId::from_raw(6)]),
        Reply::Long {
            key: Key::str("big"),
            len: 3 << 30,
        },
        Reply::Bytes(vec![0, 255, 7]),
        Reply::Fetched(Fetched {
            values: vec![Value::Table(TableId::from_raw(3)), Value::Str(big_string())],
            tables: vec![view(TableId::from_raw(3))],
        }),
        Reply::Entries(Entries {
            entries: vec![(Key::Int(1), Value::Nil)],
            tables: vec![view(TableId::from_raw(1))],
            done: true,
        }),
        Reply::Error(RequestError {
            kind: RequestErrorKind::UnknownTable,
            message: "unknown table 5".into(),
        }),
    ] {
        round_trip(ToWorker::Reply(reply));
    }
}

#[test]
fn supervisor_bound_messages_round_trip() {
    let nested = Literal::Table {
        array: vec![
            Literal::Value(Value::Int(1)),
            Literal::Table {
                array: vec![],
                hash: vec![],
            },
        ],
        hash: vec![(Key::str("s"), Literal::Value(Value::Str(big_string())))],
    };
    for req in [
        Request::Get {
            table: TableId::from_raw(1),
            key: Key::str("items"),
        },
        Request::GetRange {
            table: TableId::from_raw(1),
            start: 1,
            count: 1024,
        },
        Request::Len {
            table: TableId::from_raw(1),
        },
        Request::Next {
            table: TableId::from_raw(1),
            after: None,
            limit: 64,
        },
        Request::Next {
            table: TableId::from_raw(1),
            after: Some(Key::Float(0.5f64.to_bits())),
            limit: 64,
        },
        Request::Write(vec![Write {
            table: TableId::from_raw(2),
            key: Key::Int(1),
            value: nested.clone(),
        }]),
        Request::NewTable,
        Request::Move {
            table: TableId::from_raw(9),
            first: -3,
            last: i64::MAX,
            to: 1,
        },
        Request::Reserve {
            like: TableId::from_raw(9),
            count: 3,
        },
        Request::GetStr {
            table: TableId::from_raw(9),
            key: Key::Int(4),
            offset: 1 << 20,
        },
        Request::Append {
            table: TableId::from_raw(9),
            key: Key::Int(4),
            bytes: vec![1, 2, 3],
        },
    ] {
        round_trip(ToSupervisor::Request(req));
    }
    round_trip(ToSupervisor::Ready { pid: 42 });
    round_trip(ToSupervisor::Log(binary_string()));
    round_trip(ToSupervisor::Done(Outcome::Returned(vec![nested])));
    round_trip(ToSupervisor::Done(Outcome::Failed(Failure {
        kind: FailureKind::MemoryLimit,
        message: "not enough memory".into(),
        traceback: String::new(),
    })));
}

#[test]
fn junk_is_an_error_not_a_panic() {
    for junk in [
        &b""[..],
        b"\xc1",
        b"\x91",
        b"\xdd\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff\x00",
    ] {
        assert!(decode::<ToSupervisor>(junk).is_err());
    }
}

#[test]
fn every_literal_a_worker_may_send_decodes() {
    let mut lit = Literal::Value(Value::Nil);
    for _ in 0..MAX_LITERAL_DEPTH {
        lit = Literal::Table {
            array: vec![],
            hash: vec![(Key::str("x"), lit)],
        };
    }
    let done = ToSupervisor::Done(Outcome::Returned(vec![lit.clone()]));
    assert_eq!(decode::<ToSupervisor>(&encode(&done)).unwrap(), done);
    let write = ToSupervisor::Request(Request::Write(vec![Write {
        table: TableId::from_raw(1),
        key: Key::Int(1),
        value: lit,
    }]));
    assert_eq!(decode::<ToSupervisor>(&encode(&write)).unwrap(), write);
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut lit = Literal::Value(Value::Nil);
    for _ in 0..MAX_DEPTH {
        lit = Literal::Table {
            array: vec![lit],
            hash: vec![],
        };
    }
    let bytes = encode(&ToSupervisor::Done(Outcome::Returned(vec![lit])));
    assert!(decode::<ToSupervisor>(&bytes).is_err());
}
