//! The session API through the client: the reference's Quick Start, every
//! method, typed errors, concurrency across sessions and connections, and
//! homes.

use std::sync::mpsc;

use luapool_client::{Client, ClientError, ComputeError, ComputeOptions};
use serde_json::json;

use super::harness::{Daemon, HANG};

#[test]
fn quick_start_through_the_client_greets_alice() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let lua = client.session().unwrap();
    lua.set_input(&json!({ "user": { "id": 123, "name": "Alice", "age": 30 } }))
        .unwrap();
    let out = lua
        .compute(
            r#"
            local user = _io.input.user
            local greeting = "Hello, " .. user.name
            _io.output = { message = greeting, isAdult = user.age >= 18, userId = user.id }
            return "success"
        "#,
        )
        .unwrap();
    assert_eq!(out.value::<String>(0).unwrap(), "success");
    let output: serde_json::Value = lua.get_output().unwrap();
    assert_eq!(
        output,
        json!({ "message": "Hello, Alice", "isAdult": true, "userId": 123 })
    );

    lua.set_input(&json!({ "numbers": [1, 2, 3, 4, 5] }))
        .unwrap();
    lua.compute(
        r#"
        local sum = 0
        for i, n in ipairs(_io.input.numbers) do sum = sum + n end
        _io.output = { sum = sum, count = #_io.input.numbers }
    "#,
    )
    .unwrap();
    assert_eq!(
        lua.get_output::<serde_json::Value>().unwrap(),
        json!({ "sum": 15, "count": 5 })
    );
    assert_eq!(lua.get_output_field::<i64>("sum").unwrap(), 15);
}

#[test]
fn every_session_api_function_works_over_the_socket() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let s = client.session().unwrap();
    s.set_input_field("userId", &123).unwrap();
    s.set_input_field("params", &json!({ "limit": 10 }))
        .unwrap();
    s.set_metadata(&json!({ "requestId": "req-1" })).unwrap();
    let out = s.compute("print('Request ID: ' .. _io.meta.requestId) _io.output = { id = _io.input.userId, limit = _io.input.params.limit } return 1, 'two'").unwrap();
    assert_eq!(out.logs, vec!["Request ID: req-1".to_string()]);
    assert_eq!(
        (
            out.value::<i64>(0).unwrap(),
            out.value::<String>(1).unwrap()
        ),
        (1, "two".to_string())
    );
    assert_eq!(
        s.get_output::<serde_json::Value>().unwrap(),
        json!({ "id": 123, "limit": 10 })
    );
    let info = s.table_info().unwrap();
    assert_eq!(info.io, s.io_table_id().unwrap());
    s.clear_io().unwrap();
    assert_eq!(
        s.get_output::<serde_json::Value>().unwrap(),
        serde_json::Value::Null
    );
    s.close().unwrap();
}

#[test]
fn compute_errors_arrive_with_their_kind() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let s = client.session().unwrap();
    match s.compute("local x = 1\nerror('boom')") {
        Err(ClientError::Compute(ComputeError::LuaError { message, traceback })) => {
            assert!(message.contains("boom"), "{message}");
            assert!(!traceback.is_empty());
        }
        other => panic!("expected a LuaError, got {other:?}"),
    }
    let opts = ComputeOptions {
        instructions: Some(100_000),
        ..Default::default()
    };
    match s.compute_with("while true do end", opts) {
        Err(ClientError::Compute(ComputeError::Timeout { .. })) => {}
        other => panic!("expected a Timeout, got {other:?}"),
    }
    let opts = ComputeOptions {
        cpu_time: Some(std::time::Duration::from_millis(200)),
        ..Default::default()
    };
    match s.compute_with("while true do end", opts) {
        Err(ClientError::Compute(ComputeError::Timeout { message })) => {
            assert!(message.contains("CPU-time limit of 200ms"), "{message}")
        }
        other => panic!("expected a Timeout, got {other:?}"),
    }
    // Values that are not data (a function, a cycle) are BadResult, never
    // a LuaError with an empty traceback (docs/protocol.md).
    for code in ["return print", "local t = {} t.t = t return t"] {
        match s.compute(code) {
            Err(ClientError::Compute(ComputeError::BadResult { .. })) => {}
            other => panic!("{code}: expected a BadResult, got {other:?}"),
        }
    }
    // The session still works after all of them.
    assert_eq!(
        s.compute("return 40 + 2").unwrap().value::<i64>(0).unwrap(),
        42
    );
}

#[test]
fn fifty_concurrent_sessions_each_get_their_own_output() {
    let d = Daemon::start(&[]);
    let clients: Vec<Client> = (0..10).map(|_| d.client()).collect();
    std::thread::scope(|scope| {
        for i in 0..50i64 {
            let client = &clients[i as usize % clients.len()];
            scope.spawn(move || {
                let s = client.session().unwrap();
                s.set_input(&json!({ "id": i, "items": vec![i; 100] })).unwrap();
                s.compute("local sum = 0 for _, v in ipairs(_io.input.items) do sum = sum + v end _io.output = { id = _io.input.id, sum = sum }")
                    .unwrap();
                let out: serde_json::Value = s.get_output().unwrap();
                assert_eq!(out, json!({ "id": i, "sum": i * 100 }), "session {i}");
            });
        }
    });
}

#[test]
fn a_hundred_connections_are_served_at_once() {
    let d = Daemon::start(&[]);
    let clients: Vec<Client> = (0..100).map(|_| d.client()).collect();
    let sessions: Vec<_> = clients.iter().map(|c| c.session().unwrap()).collect();
    std::thread::scope(|scope| {
        for (i, s) in sessions.iter().enumerate() {
            scope.spawn(move || {
                assert_eq!(
                    s.compute(&format!("return {i}"))
                        .unwrap()
                        .value::<usize>(0)
                        .unwrap(),
                    i
                )
            });
        }
    });
    let stats = d.operator().stats().unwrap();
    assert_eq!((stats.connections, stats.sessions), (Some(101), 100));
}

#[test]
fn a_long_compute_streams_its_prints_and_does_not_hold_up_another_session() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let (slow, fast) = (client.session().unwrap(), client.session().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            let on_log: luapool_client::LogSink =
                Box::new(move |line: &str| tx.send(line.to_owned()).unwrap());
            let opts = ComputeOptions {
                on_log: Some(on_log),
                timeout: Some(HANG),
                ..Default::default()
            };
            slow.compute_with("print('spinning') while true do end", opts)
        });
        // The print arrives while the compute still runs...
        assert_eq!(rx.recv_timeout(HANG).unwrap(), "spinning");
        // ...and another session on the same connection is served meanwhile.
        assert_eq!(
            fast.compute("return 'fast'")
                .unwrap()
                .value::<String>(0)
                .unwrap(),
            "fast"
        );
        slow.cancel().unwrap();
        assert!(matches!(
            running.join().unwrap(),
            Err(ClientError::Compute(ComputeError::Cancelled))
        ));
    });
}

#[test]
fn sessions_naming_the_same_home_share_it_across_connections() {
    let d = Daemon::start(&[]);
    let code = "_home.count = (_home.count or 0) + 1 return _home.count";
    let (a, b) = (d.client(), d.client());
    assert_eq!(
        a.session_with_home("shared")
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
    assert_eq!(
        b.session_with_home("shared")
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        2
    );
    assert_eq!(
        b.session()
            .unwrap()
            .compute(code)
            .unwrap()
            .value::<i64>(0)
            .unwrap(),
        1
    );
}

#[test]
fn a_large_input_and_output_cross_the_socket_intact() {
    let d = Daemon::start(&[]);
    let client = d.client();
    let s = client.session().unwrap();
    let items: Vec<i64> = (1..=200_000).collect();
    s.set_input(&json!({ "items": items, "blob": "x".repeat(3 << 20) }))
        .unwrap();
    s.compute(
        "local sum = 0 for _, v in ipairs(_io.input.items) do sum = sum + v end \
         _io.output = { sum = sum, n = #_io.input.items, blob = _io.input.blob .. '!', items = _io.input.items }",
    )
    .unwrap();
    #[derive(serde::Deserialize)]
    struct Out {
        sum: i64,
        n: usize,
        blob: String,
        items: Vec<i64>,
    }
    let out: Out = s.get_output().unwrap();
    assert_eq!((out.sum, out.n), (200_000 * 200_001 / 2, 200_000));
    assert_eq!(out.blob.len(), (3 << 20) + 1);
    assert_eq!(out.items, items);
}
