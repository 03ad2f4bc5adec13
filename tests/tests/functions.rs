//! Functions and bigints stored in external tables (issue 18), in real
//! workers: stored by one compute, called by later ones and by other
//! sessions of the home, compiled again in the reader's sandbox under the
//! reader's limits; refused with the key and the upvalue named when they
//! cannot be stored; reaching the host as their source text.

use luapool_protocol::Key;
use luapool_supervisor::{ComputeError, ComputeOptions, HostValue};
use serde_json::json;

use crate::common::{eval, output, pool, run};

/// A fresh home name.
fn home(tag: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("fn-{tag}-{}-{n}", std::process::id())
}

/// The message of a failed compute.
fn lua_error(r: Result<luapool_supervisor::ComputeOutput, ComputeError>) -> String {
    match r {
        Err(ComputeError::LuaError { message, .. }) => message,
        other => panic!("expected a Lua error, got {other:?}"),
    }
}

#[test]
fn a_function_stored_in_home_is_called_by_a_later_compute_and_another_session() {
    let p = pool();
    let name = home("greet");
    let writer = p.session_with_home(&name).unwrap();
    run(
        &writer,
        r#"_home.greet = function(name) return "hi " .. name end"#,
    );
    assert_eq!(eval(&writer, r#"return _home.greet("x")"#), json!("hi x"));
    // Another session of the same home, on whichever worker.
    let reader = p.session_with_home(&name).unwrap();
    assert_eq!(
        eval(
            &reader,
            "local n = 0
             for i = 1, 2000 do n = n + #_home.greet(i) end
             return { _home.greet('y'), n, _home.greet == _home.greet }"
        ),
        // 2000 times "hi " plus the digits of 1..=2000.
        json!(["hi y", 2000 * 3 + 9 + 90 * 2 + 900 * 3 + 1001 * 4, true])
    );
    // A private home sees none of it.
    assert_eq!(eval(&p.session(), "return type(_home.greet)"), json!("nil"));
}

#[test]
fn a_function_defined_on_one_line_among_other_code_is_stored() {
    let s = pool().session();
    run(
        &s,
        "local a = 1; local f = function(x) return x end; _home.f = f; local g = function(x, y) return x + y end; _home.g = g; local b = 2",
    );
    assert_eq!(
        eval(&s, "return { _home.f(7), _home.g(2, 3) }"),
        json!([7, 5])
    );
}

#[test]
fn statements_and_methods_are_stored_as_the_functions_they_define() {
    let s = pool().session();
    run(
        &s,
        "local obj = {}
         function obj:describe(suffix)
           return self.name .. suffix
         end
         local M = {}
         function M.twice(x) return 2 * x end
         _home.obj = { name = 'box' }
         _home.obj.describe = obj.describe
         _home.twice = M.twice
         _home.sum = function(...) local t = 0 for _, v in ipairs({...}) do t = t + v end return t end",
    );
    assert_eq!(
        eval(
            &s,
            "return { _home.obj:describe('!'), _home.twice(21), _home.sum(1, 2, 3) }"
        ),
        json!(["box!", 42, 6])
    );
}

#[test]
fn a_function_with_an_upvalue_is_refused_naming_the_key_and_the_upvalue() {
    let s = pool().session();
    let message = lua_error(s.compute(
        "local secret = 42
         _home.leak = function() return secret end",
    ));
    assert!(
        message.contains("cannot assign to key 'leak'")
            && message.contains("upvalues")
            && message.contains("'secret'"),
        "{message}"
    );
    // Inside a plain table, the path is named too; nothing is stored.
    let s2 = pool().session();
    let message = lua_error(s2.compute(
        "local n = 1
         _home.t = { handlers = { on = function() return n end } }",
    ));
    assert!(
        message.contains("key 't': at key 'handlers' > 'on'") && message.contains("'n'"),
        "{message}"
    );
    assert_eq!(
        eval(&s2, "return { type(_home.t), type(_home.leak) }"),
        json!(["nil", "nil"])
    );
    // Globals are not upvalues: they are looked up where the function runs.
    run(&s2, "_home.g = function() return some_global end");
    assert_eq!(
        eval(&s2, "some_global = 'reader' return _home.g()"),
        json!("reader")
    );
}

#[test]
fn c_functions_threads_and_named_chunks_cannot_be_stored() {
    let s = pool().session();
    let v = eval(
        &s,
        "local r = {}
         r[1] = select(2, pcall(function() _home.p = print end))
         r[2] = select(2, pcall(function() _home.c = coroutine.create(function() end) end))
         local f = load('return function(x) return x end', '=named')()
         r[3] = select(2, pcall(function() _home.n = f end))
         r[4] = type(_home.p) .. type(_home.c) .. type(_home.n)
         return r",
    );
    assert!(
        v[0].as_str().unwrap().contains("a built-in or C function"),
        "{v}"
    );
    assert!(
        v[1].as_str().unwrap().contains("a thread cannot be stored"),
        "{v}"
    );
    assert!(
        v[2].as_str().unwrap().contains("chunk name \"named\""),
        "{v}"
    );
    assert_eq!(v[3], json!("nilnilnil"));
}

#[test]
fn functions_from_load_and_from_stored_functions_can_be_stored_again() {
    let p = pool();
    let name = home("again");
    let s = p.session_with_home(&name).unwrap();
    run(
        &s,
        "_home.add = load('return function(a, b) return a + b end')()
         _home.chunk = load('local a, b = ... return a * b')
         _home.mk = function(k) return function(y) return y * 2 end end",
    );
    run(
        &s,
        "_home.add2 = _home.add
         _home.double = _home.mk(0)",
    );
    let other = p.session_with_home(&name).unwrap();
    assert_eq!(
        eval(
            &other,
            "return { _home.add2(2, 3), _home.chunk(6, 7), _home.double(21) }"
        ),
        json!([5, 42, 42])
    );
}

#[test]
fn a_stored_function_runs_with_the_readers_globals_and_limits_only() {
    let p = pool();
    let name = home("sandbox");
    let writer = p.session_with_home(&name).unwrap();
    run(
        &writer,
        "secret = 'writer'
         _home.peek = function()
           return { secret = secret, io = type(io), debug = type(debug),
                    require = type(require), exec = type(os.execute), input = _io.input.x }
         end
         _home.spin = function() while true do end end
         _home.hog = function() local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(64) .. i end end",
    );
    let reader = p.session_with_home(&name).unwrap();
    reader.set_input(&json!({"x": "reader's input"})).unwrap();
    assert_eq!(
        eval(&reader, "return _home.peek()"),
        json!({"io": "nil", "debug": "nil", "require": "nil", "exec": "nil", "input": "reader's input"})
    );
    let limited = ComputeOptions {
        instructions: Some(100_000),
        ..ComputeOptions::default()
    };
    assert!(matches!(
        reader.compute_with("_home.spin()", limited),
        Err(ComputeError::Timeout { .. })
    ));
    let small = ComputeOptions {
        memory: Some(32 << 20),
        ..ComputeOptions::default()
    };
    assert!(matches!(
        reader.compute_with("_home.hog()", small),
        Err(ComputeError::MemoryLimit { .. })
    ));
    // The home is as it was, and a later compute works.
    assert_eq!(eval(&reader, "return type(_home.spin)"), json!("function"));
}

#[test]
fn functions_returned_or_in_the_output_reach_the_host_as_their_source() {
    let s = pool().session();
    let out = run(
        &s,
        "_io.output = { f = function(a) return a end, n = 1 }
         return function(x, y) return x .. y end",
    );
    assert_eq!(
        out.values,
        vec![HostValue::Function(
            "function(x, y) return x .. y end".into()
        )]
    );
    assert_eq!(output(&s), json!({"f": "function(a) return a end", "n": 1}));
    let exact: HostValue = s.get_output().unwrap();
    let HostValue::Map(m) = exact else {
        panic!("{exact:?}")
    };
    assert!(m.contains(&(
        Key::str("f"),
        HostValue::Function("function(a) return a end".into())
    )));
    // A function with an upvalue is not data: BadResult.
    assert!(matches!(
        s.compute("local u = 1 return function() return u end"),
        Err(ComputeError::BadResult { .. })
    ));
}

/// `[<ext 2 text>, <ext 2 text>]` as MessagePack.
fn functions_msgpack(texts: &[&str]) -> Vec<u8> {
    let mut b = vec![0x90 | texts.len() as u8];
    for t in texts {
        b.extend([0xc7, t.len() as u8, 2]);
        b.extend(t.as_bytes());
    }
    b
}

#[test]
fn functions_given_by_the_host_compile_once_per_compute_in_the_reader() {
    let s = pool().session();
    s.set_input_msgpack(&functions_msgpack(&["function(x) return x + 1 end"]))
        .unwrap();
    assert_eq!(
        eval(
            &s,
            "local f = _io.input[1]
             return { f(41), f == _io.input[1], rawequal(f, _io.input[1]) }"
        ),
        json!([42, true, true])
    );
    // Shaped like a function but more than one: refused when read, nothing run.
    s.set_input_msgpack(&functions_msgpack(&[
        "function() end or (function() GOT = 1 end)() or function() end",
    ]))
    .unwrap();
    let message = lua_error(s.compute("local f = _io.input[1]"));
    assert!(message.contains("not one function expression"), "{message}");
    // Not shaped like a function at all: refused when loaded.
    let e = s
        .set_input_msgpack(&functions_msgpack(&["os.exit()"]))
        .unwrap_err();
    assert!(e.to_string().contains("not a function expression"), "{e}");
}

#[test]
fn a_function_too_large_to_store_is_refused_naming_the_limit() {
    let s = pool().session();
    let message = lua_error(s.compute(
        "_home.big = load('return function() return \"' .. ('x'):rep(1100000) .. '\" end')()",
    ));
    assert!(
        message.contains("key 'big'") && message.contains("limit of 1048576 bytes"),
        "{message}"
    );
}

#[test]
fn a_bigint_stored_in_home_comes_back_a_bigint() {
    let p = pool();
    let name = home("big");
    let s = p.session_with_home(&name).unwrap();
    run(
        &s,
        "_home.n = bigint.new('123456789012345678901234567890')
         _home.small = bigint.new(5)
         _home.list = { -bigint.new(10):pow(30) }",
    );
    let other = p.session_with_home(&name).unwrap();
    assert_eq!(
        eval(
            &other,
            "return { tostring(_home.n + 1), bigint.isbigint(_home.small), tostring(_home.list[1]) }"
        ),
        json!([
            "123456789012345678901234567891",
            true,
            "-1000000000000000000000000000000"
        ])
    );
    // To the host: exact, and a BigInt even when it fits 64 bits.
    let out = run(&other, "return _home.n, _home.small");
    assert_eq!(
        out.values,
        vec![
            HostValue::BigInt("123456789012345678901234567890".into()),
            HostValue::BigInt("5".into())
        ]
    );
    let n: u128 = out.value(0).unwrap();
    assert_eq!(n, 123456789012345678901234567890);
}

#[test]
fn integers_beyond_64_bits_in_the_input_arrive_as_bigints() {
    let s = pool().session();
    let json: serde_json::Value = serde_json::from_str(
        r#"{"id": 340282366920938463463374607431768211457, "neg": -99999999999999999999, "f": 1.5, "i": 7}"#,
    )
    .unwrap();
    s.set_input(&json).unwrap();
    assert_eq!(
        eval(
            &s,
            "local i = _io.input
             _io.output = { id = i.id + 1, neg = i.neg, f = i.f, i = i.i }
             return { bigint.isbigint(i.id), bigint.isbigint(i.neg), math.type(i.f), math.type(i.i) }"
        ),
        json!([true, true, "float", "integer"])
    );
    let out = output(&s);
    assert_eq!(
        serde_json::to_string(&out["id"]).unwrap(),
        "340282366920938463463374607431768211458"
    );
    assert_eq!(
        serde_json::to_string(&out["neg"]).unwrap(),
        "-99999999999999999999"
    );
    assert_eq!(out["f"], json!(1.5));
    // An ext 1 that is not decimal: a clear error, nothing stored.
    let e = s.set_input_msgpack(&[0xd5, 1, b'1', b'x']).unwrap_err();
    assert!(e.to_string().contains("not a decimal integer"), "{e}");
    assert_eq!(
        eval(&s, "return tostring(_io.input.id)"),
        json!("340282366920938463463374607431768211457")
    );
}

#[test]
fn every_big_integer_the_host_accepts_a_script_can_read() {
    // The most digits accepted, all nines: the largest value the host takes.
    let digits = luapool_protocol::ext_value::MAX_BIGINT_DIGITS;
    let s = pool().session();
    s.set_input(&vec![HostValue::BigInt("9".repeat(digits))])
        .unwrap();
    assert_eq!(
        eval(
            &s,
            "local n = _io.input[1]
             return { bigint.isbigint(n), tostring(n) == string.rep('9', #tostring(n)),
                      #tostring(n // 3) }"
        ),
        json!([true, true, digits])
    );
    // One digit more: refused before anything is stored.
    let e = s
        .set_input(&vec![HostValue::BigInt(format!("1{}", "0".repeat(digits)))])
        .unwrap_err();
    assert!(e.to_string().contains("digits"), "{e}");
    assert_eq!(eval(&s, "return #tostring(_io.input[1])"), json!(digits));
}

#[test]
fn a_function_whose_source_holds_a_nul_byte_is_refused_and_nothing_stored() {
    let s = pool().session();
    s.set_input_msgpack(&functions_msgpack(&["function() return 1 end"]))
        .unwrap();
    let e = s
        .set_input_msgpack(&functions_msgpack(&["function() return 'a\0b' end"]))
        .unwrap_err();
    assert!(e.to_string().contains("NUL byte"), "{e}");
    // Written inside a string as \0, the same byte is fine.
    assert_eq!(eval(&s, "return _io.input[1]()"), json!(1));
    s.set_input_msgpack(&functions_msgpack(&[r"function() return 'a\0b' end"]))
        .unwrap();
    assert_eq!(eval(&s, "return #_io.input[1]()"), json!(3));
}
