use super::*;
use crate::api::{ComputeError, HostValue};
use crate::Key;

fn request(frame: &[u8]) -> RawRequest<'_> {
    match decode_request(frame) {
        Incoming::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn request_decodes_with_its_params() {
    let frame = rmp_serde::to_vec(&(0u8, 9u32, "compute", (3u64, "return 1"))).unwrap();
    let r = request(&frame);
    assert_eq!((r.msgid, r.method.as_str()), (9, "compute"));
    assert_eq!(
        Request::decode(&r.method, &r.params).unwrap(),
        Request::Compute {
            sid: 3,
            code: "return 1".into(),
            options: ComputeOptions::default()
        }
    );
}

#[test]
fn every_request_encodes_and_decodes_back_to_itself() {
    let data = crate::api::to_msgpack(&serde_json::json!({"rows": [1, 2, {"a": null}]})).unwrap();
    let options = ComputeOptions {
        timeout_ms: Some(5),
        cpu_time_ms: Some(0),
        instructions: Some(0),
        memory: None,
        chunk_name: Some("=x".into()),
        stream_logs: Some(false),
    };
    let all = [
        Request::Auth { token: "t".into() },
        Request::SessionOpen { home: None },
        Request::SessionOpen {
            home: Some("h".into()),
        },
        Request::SessionClose { sid: 1 },
        Request::SetInput {
            sid: 2,
            data: &data,
        },
        Request::GetOutput { sid: 3 },
        Request::SetInputField {
            sid: 4,
            key: "k".into(),
            value: &data,
        },
        Request::GetOutputField {
            sid: 5,
            key: "k".into(),
        },
        Request::SetMetadata {
            sid: 6,
            meta: &data,
        },
        Request::ClearIo { sid: 7 },
        Request::GetIoTableId { sid: 8 },
        Request::GetTableInfo { sid: 9 },
        Request::Compute {
            sid: 10,
            code: "return 1".into(),
            options,
        },
        Request::Cancel { sid: 11 },
        Request::Stats,
        Request::HomeList,
        Request::HomeDrop { name: "h".into() },
        Request::HomeExport { name: "h".into() },
        Request::HomeImport {
            name: "h".into(),
            value: &data,
        },
        Request::ScriptLoad {
            code: "return 1".into(),
        },
    ];
    let mut methods: Vec<Method> = all.iter().map(Request::method).collect();
    methods.dedup();
    assert_eq!(methods, Method::ALL, "every method is covered");
    for (i, req) in all.iter().enumerate() {
        let mut frame = Vec::new();
        req.encode(i as u32, &mut frame);
        let raw = request(&frame);
        assert_eq!(raw.msgid, i as u32);
        assert_eq!(&Request::decode(&raw.method, &raw.params).unwrap(), req);
    }
}

#[test]
fn wrong_params_are_bad_requests_and_unknown_methods_unknown() {
    let cases: &[(&str, Vec<HostValue>)] = &[
        ("stats", vec![HostValue::Int(1)]),
        ("get_output", vec![]),
        ("get_output", vec![HostValue::Int(-1)]),
        ("set_input", vec![HostValue::str("abc"), HostValue::Int(1)]),
        ("compute", vec![HostValue::Int(1)]),
        (
            "compute",
            vec![HostValue::Int(1), HostValue::str("x"), HostValue::Int(3)],
        ),
        (
            "compute",
            vec![
                HostValue::Int(1),
                HostValue::str("x"),
                HostValue::Map(vec![(Key::str("bogus"), HostValue::Int(1))]),
            ],
        ),
        (
            "compute",
            vec![
                HostValue::Int(1),
                HostValue::str("x"),
                HostValue::Map(vec![(Key::str("timeout_ms"), HostValue::Int(0))]),
            ],
        ),
        (
            "compute",
            vec![
                HostValue::Int(1),
                HostValue::str("x"),
                HostValue::Map(vec![(Key::str("memory"), HostValue::Int(-5))]),
            ],
        ),
        ("session.open", vec![HostValue::Int(1)]),
        // A wrong number of params is BadRequest (once `stats [1]` answered).
        ("stats", vec![HostValue::Int(1)]),
    ];
    for (method, params) in cases {
        let frame = rmp_serde::to_vec(&(0u8, 1u32, method, params)).unwrap();
        let raw = request(&frame);
        let e = Request::decode(&raw.method, &raw.params).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest, "{method} {params:?}: {e}");
    }
    let e = Request::decode("launch_missiles", &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownMethod);
}

#[test]
fn nil_options_and_nil_values_count_as_absent() {
    let opts = HostValue::Map(vec![
        (Key::str("memory"), HostValue::Nil),
        (Key::str("stream_logs"), HostValue::Bool(false)),
    ]);
    for params in [
        vec![HostValue::Int(1), HostValue::str("x"), HostValue::Nil],
        vec![HostValue::Int(1), HostValue::str("x"), opts],
    ] {
        let frame = rmp_serde::to_vec(&(0u8, 1u32, "compute", params)).unwrap();
        let raw = request(&frame);
        let Request::Compute { options, .. } = Request::decode(&raw.method, &raw.params).unwrap()
        else {
            panic!()
        };
        assert_eq!(options.memory, None);
    }
}

#[test]
fn data_params_are_the_exact_bytes_of_their_value() {
    let input =
        serde_json::json!({"rows": [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}], "n": null});
    let frame = rmp_serde::to_vec(&(0u8, 3u32, "set_input", (7u64, &input))).unwrap();
    let r = request(&frame);
    let Request::SetInput { sid, data } = Request::decode(&r.method, &r.params).unwrap() else {
        panic!()
    };
    assert_eq!(sid, 7);
    assert_eq!(data, rmp_serde::to_vec(&input).unwrap());
}

#[test]
fn data_that_is_not_plain_is_bad_with_its_msgid() {
    // [0, 5, "set_input", [1, x]] with x each of: a big integer that is not
    // decimal, one with a sign only, an unknown ext, a function that is not
    // one, NaN key, array key, nested nil key.
    for x in [
        &[0xd4, 0x01, 0x02][..],
        &[0xd4, 0x01, b'-'],
        &[0xd4, 0x07, b'1'],
        &[0xd5, 0x02, b'o', b's'],
        &[0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01],
        &[0x81, 0x90, 0x01],
        &[0x91, 0x81, 0x01, 0x81, 0xc0, 0x02],
    ] {
        let mut frame = rmp_serde::to_vec(&(0u8, 5u32, "set_input")).unwrap();
        frame[0] = 0x94;
        frame.extend_from_slice(&[0x92, 0x01]);
        frame.extend_from_slice(x);
        match decode_request(&frame) {
            Incoming::Bad {
                msgid: Some(5),
                message,
            } => assert!(
                message.starts_with("cannot decode the request"),
                "{message}"
            ),
            other => panic!("{x:x?}: {other:?}"),
        }
    }
}

#[test]
fn big_integers_and_functions_are_plain_data() {
    let f = b"function(x) return x end";
    let mut x = vec![0x92, 0xd5, 0x01, b'-', b'7', 0xc7, f.len() as u8, 0x02];
    x.extend_from_slice(f);
    let mut frame = rmp_serde::to_vec(&(0u8, 5u32, "set_input")).unwrap();
    frame[0] = 0x94;
    frame.extend_from_slice(&[0x92, 0x01]);
    frame.extend_from_slice(&x);
    let Incoming::Request(r) = decode_request(&frame) else {
        panic!("refused")
    };
    let Request::SetInput { data, .. } = Request::decode(&r.method, &r.params).unwrap() else {
        panic!()
    };
    assert_eq!(data, x);
}

#[test]
fn wrong_shapes_are_bad_with_msgid_when_readable() {
    let no_array = rmp_serde::to_vec(&(0u8, 4u32, "stats", 5)).unwrap();
    assert!(matches!(
        decode_request(&no_array),
        Incoming::Bad { msgid: Some(4), .. }
    ));
    let not_request = rmp_serde::to_vec(&"hello").unwrap();
    assert!(matches!(
        decode_request(&not_request),
        Incoming::Bad { msgid: None, .. }
    ));
    let bad_msgid = rmp_serde::to_vec(&(0u8, -1i32, "stats", ())).unwrap();
    assert!(matches!(
        decode_request(&bad_msgid),
        Incoming::Bad { msgid: None, .. }
    ));
}

#[test]
fn errors_cross_the_wire_and_come_back_equal() {
    let errors = [
        RpcError::Compute(ComputeError::Cancelled),
        RpcError::Compute(ComputeError::LuaError {
            message: "x:1: boom".into(),
            traceback: "stack".into(),
        }),
        RpcError::Compute(ComputeError::BadResult {
            message: "cycle".into(),
        }),
        RpcError::bad_request("no"),
        RpcError::limit(ErrorKind::Busy, "queued_calls", 64, "too many"),
    ];
    for e in errors {
        let bytes = encode_response(Some(3), &Err(e.clone()));
        let msg: HostValue = rmp_serde::from_slice(&bytes).unwrap();
        let FromDaemon::Response { msgid, result } = FromDaemon::decode(msg).unwrap() else {
            panic!()
        };
        assert_eq!(msgid, Some(3));
        assert_eq!(result.unwrap_err(), e);
    }
    // A unit compute error still carries a message.
    let HostValue::Map(m) = RpcError::Compute(ComputeError::Cancelled).to_host() else {
        panic!()
    };
    assert!(m.iter().any(|(k, _)| *k == Key::str("message")));
}

#[test]
fn an_encoded_answer_gives_the_same_bytes_as_its_value() {
    let v = HostValue::Map(vec![(Key::Int(1), HostValue::Str(vec![b'a', 0xff]))]);
    let encoded = rmp_serde::to_vec(&v).unwrap();
    assert_eq!(
        encode_response(Some(7), &Ok(HostValue::Int(42).into())),
        vec![0x94, 0x01, 0x07, 0xc0, 0x2a]
    );
    for msgid in [None, Some(0), Some(200), Some(70_000), Some(u32::MAX)] {
        assert_eq!(
            encode_response(msgid, &Ok(Answer::Encoded(encoded.clone()))),
            encode_response(msgid, &Ok(Answer::Value(v.clone()))),
            "{msgid:?}"
        );
    }
}

#[test]
fn log_notifications_decode_back() {
    let bytes = encode_log(4, 9, "hello");
    let msg: HostValue = rmp_serde::from_slice(&bytes).unwrap();
    match FromDaemon::decode(msg).unwrap() {
        FromDaemon::Log {
            session,
            msgid,
            line,
        } => assert_eq!((session, msgid, line.as_str()), (4, 9, "hello")),
        other => panic!("{other:?}"),
    }
}

/// docs/protocol.md is the contract for clients in other languages: it
/// must document every method (a `### \`name ...\`` heading) and every
/// error kind (a row of the errors table), and nothing else.
#[test]
fn the_protocol_doc_names_every_method_and_error_kind() {
    let doc = include_str!("../../../docs/protocol.md");
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split([' ', '`']).next())
        .collect();
    let mut names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    let mut documented_sorted = documented.clone();
    names.sort();
    documented_sorted.sort();
    assert_eq!(documented_sorted, names, "methods in docs/protocol.md");
    for kind in ErrorKind::ALL {
        assert!(
            doc.lines()
                .any(|l| l.starts_with('|') && l.contains(&format!("`{}`", kind.name()))),
            "error kind {} is not in the errors table of docs/protocol.md",
            kind.name()
        );
    }
}
