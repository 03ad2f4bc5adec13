//! The session contract: homes, fresh globals per compute, `print`.

use serde_json::json;

use crate::common::{eval, pool, run};

// ----------------------------------------- _home, globals, print

#[test]
fn home_persists_across_computes_and_sessions_of_the_same_home_only() {
    let p = pool();
    let name = format!("contract-home-{}", std::process::id());
    let a = p.session_with_home(&name).unwrap();
    run(&a, "_home.n = (_home.n or 0) + 1; _home.list = { 'x' }");
    run(&a, "_home.n = _home.n + 1; table.insert(_home.list, 'y')");
    let b = p.session_with_home(&name).unwrap();
    assert_eq!(
        eval(&b, "return { _home.n, table.concat(_home.list) }"),
        json!([2, "xy"])
    );
    let other = p.session_with_home(&format!("{name}-other")).unwrap();
    assert_eq!(eval(&other, "return _home.n == nil"), json!(true));
    let private = p.session();
    assert_eq!(eval(&private, "return _home.n == nil"), json!(true));
    // A session's private home persists across its own computes.
    run(&private, "_home.mine = 1");
    assert_eq!(eval(&private, "return _home.mine"), json!(1));
    assert_eq!(eval(&p.session(), "return _home.mine == nil"), json!(true));
    // Tables in a home outlive the session that made them.
    run(&b, "_home.made = ext.table(); _home.made.v = 'kept'");
    drop(b);
    assert_eq!(eval(&a, "return _home.made.v"), json!("kept"));
}

#[test]
fn every_compute_gets_fresh_globals() {
    let s = pool().session();
    run(
        &s,
        "x = 1; string.upper = nil; _G.y = 2; table.insert = nil; math.pi = 3",
    );
    let v = eval(
        &s,
        "return { x == nil, y == nil, type(string.upper), type(table.insert), math.pi > 3.14, ('a'):upper() }",
    );
    assert_eq!(v, json!([true, true, "function", "function", true, "A"]));
    // Also between different sessions (which may share a worker).
    let t = pool().session();
    run(&t, "leaked = 'oops'");
    for _ in 0..4 {
        assert_eq!(eval(&pool().session(), "return leaked == nil"), json!(true));
    }
}

#[test]
fn print_formats_like_lua() {
    let s = pool().session();
    let out = run(
        &s,
        "print(1, nil, true, false, 's', 1.5, 3.0, -0.0, 2^63, math.mininteger)
         print()
         print('a\\tb')
         print(setmetatable({}, { __tostring = function() return 'custom' end }))
         print({}, ext.table(), _io)
         print(('x'):rep(3), #'abc')",
    );
    assert_eq!(
        out.logs[0],
        "1\tnil\ttrue\tfalse\ts\t1.5\t3.0\t-0.0\t9.2233720368548e+18\t-9223372036854775808"
    );
    assert_eq!(out.logs[1], "");
    assert_eq!(out.logs[2], "a\tb");
    assert_eq!(out.logs[3], "custom");
    let parts: Vec<&str> = out.logs[4].split('\t').collect();
    assert!(parts[0].starts_with("table: 0x"), "{parts:?}");
    assert!(parts[1].starts_with("external table: 0x"), "{parts:?}");
    assert!(parts[2].starts_with("external table: 0x"), "{parts:?}");
    assert_eq!(out.logs[5], "xxx\t3");
    assert_eq!(out.logs.len(), 6);
}
