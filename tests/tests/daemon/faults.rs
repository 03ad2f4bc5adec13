//! Clients that misbehave: disconnecting mid-compute, using closed or
//! foreign sessions, and sending frames that are not the protocol.

use rmpv::Value;
use serde_json::json;

use super::harness::{eventually, Answer, Daemon};

#[test]
fn a_client_that_disconnects_mid_compute_has_its_session_freed() {
    let d = Daemon::start(&[]);
    let baseline = d.tables();
    assert_eq!(baseline.1, 0);
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    let items: Vec<Value> = (0..1000).map(Value::from).collect();
    let input = Value::Map(vec![("items".into(), Value::Array(items))]);
    assert_eq!(
        raw.call(2, "set_input", vec![sid.clone(), input]),
        Answer::Ok(Value::Nil)
    );
    let opts = Value::Map(vec![("timeout_ms".into(), 60_000.into())]);
    raw.request(
        3,
        "compute",
        vec![sid, "print('running') while true do end".into(), opts],
    );
    let first = raw.next().expect("a log notification");
    assert_eq!(first[0], Value::from(2), "{first}");
    assert_eq!(first[2][2].as_str(), Some("running"));
    assert!(d.tables().0 > baseline.0);
    drop(raw);

    eventually("the session's tables are freed", || d.tables() == baseline);
    let c = d.client();
    assert_eq!(
        c.session()
            .unwrap()
            .compute("return 7")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        7
    );
}

#[test]
fn a_closed_session_is_freed_and_unknown_afterwards() {
    let d = Daemon::start(&[]);
    let baseline = d.tables();
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    assert_eq!(
        raw.call(
            2,
            "set_input",
            vec![
                sid.clone(),
                Value::Array(vec![Value::Array(vec![1.into()])])
            ]
        ),
        Answer::Ok(Value::Nil)
    );
    assert_eq!(
        raw.call(3, "session.close", vec![sid.clone()]),
        Answer::Ok(Value::Nil)
    );
    assert_eq!(
        raw.call(4, "get_output", vec![sid]),
        Answer::Err("UnknownSession".into())
    );
    eventually("the closed session's tables are freed", || {
        d.tables() == baseline
    });
}

#[test]
fn malformed_frames_get_an_error_or_a_closed_connection_and_others_are_unaffected() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let healthy = client.session().unwrap();
    healthy.set_input(&json!({ "x": 1 })).unwrap();

    let closes = |bytes: &[u8], what: &str| {
        let mut raw = d.raw();
        raw.send_bytes(bytes);
        match raw.answer(0) {
            Answer::Err(kind) => assert_eq!(kind, "BadRequest", "{what}"),
            Answer::Closed => {}
            Answer::Ok(v) => panic!("{what}: answered {v}"),
        }
        assert!(raw.closed(), "{what}");
    };
    closes(b"\xc1\xc1\xc1 garbage", "bytes that are not MessagePack");
    closes(b"hello, daemon\n", "text that is not a request");
    closes(
        &[0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        "a 4 GiB bin length prefix",
    );
    closes(
        &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x00],
        "an array declaring 4 billion items",
    );
    closes(
        &[
            0x94, 0x00, 0x01, 0xa5, b's', b't', b'a', b't', b's', 0xdb, 0x20, 0, 0, 0,
        ],
        "a 512 MiB string param",
    );
    closes(&vec![0x91; 100_000], "arrays nested 100 000 deep");

    let mut raw = d.raw();
    // Wrong types with a readable msgid: an error reply, and the connection goes on.
    raw.send(Value::Array(vec![
        0.into(),
        1.into(),
        "compute".into(),
        "not an array".into(),
    ]));
    assert_eq!(raw.answer(1), Answer::Err("BadRequest".into()));
    raw.send(Value::Array(vec![
        0.into(),
        2.into(),
        42.into(),
        Value::Array(vec![]),
    ]));
    assert_eq!(raw.answer(2), Answer::Err("BadRequest".into()));
    assert_eq!(
        raw.call(3, "set_input", vec!["abc".into(), 1.into()]),
        Answer::Err("BadRequest".into())
    );
    assert_eq!(
        raw.call(4, "launch_missiles", vec![]),
        Answer::Err("UnknownMethod".into())
    );
    assert_eq!(
        raw.call(5, "get_output", vec![999_999.into()]),
        Answer::Err("UnknownSession".into())
    );
    // Another connection's session is unknown here.
    assert_eq!(
        raw.call(6, "get_output", vec![healthy.id().into()]),
        Answer::Err("UnknownSession".into())
    );
    assert_eq!(
        raw.call(7, "compute", vec![healthy.id().into()]),
        Answer::Err("BadRequest".into())
    );
    let Answer::Ok(stats) = raw.call(8, "stats", vec![]) else {
        panic!("stats failed")
    };
    assert!(stats["workers"].as_u64() == Some(2), "{stats}");

    // The daemon lives on, and the healthy client never noticed.
    assert!(d.child_running());
    assert_eq!(
        healthy
            .compute("return _io.input.x + 1")
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        2
    );
}

#[test]
fn a_cancel_pipelined_right_behind_a_compute_stops_it() {
    let d = Daemon::start(&[]);
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    let opts = Value::Map(vec![("timeout_ms".into(), 60_000.into())]);
    raw.request(
        2,
        "compute",
        vec![sid.clone(), "while true do end".into(), opts],
    );
    raw.request(3, "cancel", vec![sid.clone()]);
    assert_eq!(raw.answer(3), Answer::Ok(Value::Nil));
    assert_eq!(raw.answer(2), Answer::Err("Cancelled".into()));
    // Calls after the cancel run normally.
    let Answer::Ok(out) = raw.call(4, "compute", vec![sid, "return 3".into()]) else {
        panic!("compute after cancel failed")
    };
    assert_eq!(out["values"][0].as_i64(), Some(3));
}
