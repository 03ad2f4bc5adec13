//! The sandbox, against a real worker: every escape is tried and refused
//! with a clear error, nothing a compute does is visible to the next, and a
//! worker holds none of the supervisor's memory.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use luapool_supervisor::{ComputeError, HostValue, Pool};

use crate::common::pool;

/// The Lua error message of a compute that must fail.
fn lua_error(code: &str) -> String {
    match pool().session().compute(code) {
        Err(ComputeError::LuaError { message, .. }) => message,
        other => panic!("{code}: expected a Lua error, got {other:?}"),
    }
}

/// The values of a compute that must succeed.
fn values(code: &str) -> Vec<HostValue> {
    pool()
        .session()
        .compute(code)
        .unwrap_or_else(|e| panic!("{code}: {e:?}"))
        .values
}

fn s(text: &str) -> HostValue {
    HostValue::Str(text.into())
}

#[test]
fn escapes_are_refused_with_a_clear_error() {
    let cases: &[(&str, &str)] = &[
        (
            "io.open('/etc/passwd')",
            "attempt to index a nil value (global 'io')",
        ),
        ("io.popen('id')", "(global 'io')"),
        (
            "os.execute('id')",
            "attempt to call a nil value (field 'execute')",
        ),
        (
            "os.getenv('HOME')",
            "attempt to call a nil value (field 'getenv')",
        ),
        ("os.exit(1)", "(field 'exit')"),
        ("os.remove('/tmp/x')", "(field 'remove')"),
        ("os.rename('/tmp/x', '/tmp/y')", "(field 'rename')"),
        ("os.tmpname()", "(field 'tmpname')"),
        ("os.setlocale('C')", "(field 'setlocale')"),
        (
            "require('os')",
            "attempt to call a nil value (global 'require')",
        ),
        (
            "dofile('/etc/passwd')",
            "attempt to call a nil value (global 'dofile')",
        ),
        (
            "loadfile('/etc/passwd')",
            "attempt to call a nil value (global 'loadfile')",
        ),
        (
            "package.loadlib('libc.so.6', 'system')",
            "(global 'package')",
        ),
        (
            "string.dump(print)",
            "attempt to call a nil value (field 'dump')",
        ),
        ("(''):dump()", "attempt to call a nil value (method 'dump')"),
        (
            "debug.getinfo(1)",
            "attempt to index a nil value (global 'debug')",
        ),
        ("debug.sethook()", "(global 'debug')"),
        (
            "collectgarbage('stop')",
            "collectgarbage('stop') is not allowed here: only collectgarbage('count')",
        ),
        ("collectgarbage()", "collectgarbage() is not allowed here"),
        ("collectgarbage('collect')", "is not allowed here"),
        ("collectgarbage('step')", "is not allowed here"),
        ("collectgarbage('generational')", "is not allowed here"),
        ("collectgarbage('incremental', 0, 0)", "is not allowed here"),
        (
            "getmetatable('').__index = { upper = function() return 'pwned' end }",
            "attempt to index a boolean value",
        ),
        (
            "setmetatable('', {})",
            "bad argument #1 to 'setmetatable' (table expected, got string)",
        ),
        (
            "setmetatable({}, { __gc = function() end })",
            "__gc metamethods are not allowed here",
        ),
        (
            "setmetatable(_io, {})",
            "cannot change the metatable of an external table",
        ),
        ("newproxy(true)", "(global 'newproxy')"),
        ("loadstring('return 1')", "(global 'loadstring')"),
        ("module('x')", "(global 'module')"),
    ];
    for (code, expected) in cases {
        let message = lua_error(code);
        assert!(
            message.contains(expected),
            "{code}: {message:?} does not contain {expected:?}"
        );
    }
}

#[test]
fn binary_chunks_cannot_be_loaded_in_any_way() {
    let refused = "attempt to load a binary chunk (mode is 't')";
    // A precompiled chunk header, as string.dump would have produced.
    let chunks = [
        r#"return load("\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86")"#,
        r#"return load("\27Lua", "x", "b")"#,
        r#"return load("\27Lua", "x", "bt", {})"#,
        r#"local parts = { "\27", "Lua" } local i = 0 return load(function() i = i + 1 return parts[i] end)"#,
    ];
    for code in chunks {
        let v = values(code);
        assert_eq!(v.len(), 2, "{code}: {v:?}");
        assert_eq!(v[0], HostValue::Nil, "{code}");
        assert!(
            matches!(&v[1], HostValue::Str(m) if String::from_utf8_lossy(m).contains(refused)),
            "{code}: {v:?}"
        );
    }
    // Text still loads, with the compute's globals or an explicit env.
    assert_eq!(
        values("x = 41 return load('return x + 1')()"),
        vec![HostValue::Int(42)]
    );
    assert_eq!(
        values("return load('return y', 'c', 't', { y = 5 })()"),
        vec![HostValue::Int(5)]
    );
}

#[test]
fn what_the_sandbox_keeps_still_works() {
    assert_eq!(
        values("return type(collectgarbage('count'))"),
        vec![s("number")]
    );
    assert_eq!(
        values("return type(os.clock()), type(os.time()), os.date('!%Y', 0), os.difftime(2, 1)"),
        vec![s("number"), s("number"), s("1970"), HostValue::Float(1.0)]
    );
    assert_eq!(
        values("return getmetatable('')"),
        vec![HostValue::Bool(false)]
    );
    assert_eq!(
        values("return ('abc'):upper(), string.format('%05d', 42), utf8.char(233)"),
        vec![s("ABC"), s("00042"), s("é")]
    );
    assert_eq!(
        values("return getmetatable(_io)"),
        vec![s("external table")]
    );
    assert_eq!(
        values("return select('#', pcall(error))"),
        vec![HostValue::Int(2)]
    );
}

#[test]
fn nothing_a_compute_changes_is_visible_to_the_next() {
    // One worker, so every compute runs in the same Lua state.
    let pool = Pool::builder().workers(1).build().unwrap();
    let a = pool.session();
    let b = pool.session();
    a.compute(
        r#"
        leaked = "global"
        _G.also = "via _G"
        string.upper = function() return "patched" end
        string.custom = true
        math.pi = 3
        table.insert = nil
        os.time = function() return 0 end
        coroutine.resume = nil
        rawset(_G, "raw", 1)
        print = nil
        pcall = function() return true end
        setmetatable(_G, { __index = function() return "from the metatable" end })
        "#,
    )
    .unwrap();
    for session in [&a, &b] {
        let out = session
            .compute(
                r##"
                local t = {}
                table.insert(t, "ok")
                return leaked, also, raw, string.custom, ("x"):upper(), string.upper("y"),
                       math.pi > 3.14, t[1], os.time() > 0, type(coroutine.resume),
                       type(print), select("#", pcall(error, "e")), getmetatable(_G), undefined_name
                "##,
            )
            .unwrap();
        assert_eq!(
            out.values,
            vec![
                HostValue::Nil,
                HostValue::Nil,
                HostValue::Nil,
                HostValue::Nil,
                s("X"),
                s("Y"),
                HostValue::Bool(true),
                s("ok"),
                HostValue::Bool(true),
                s("function"),
                s("function"),
                HostValue::Int(2),
                HostValue::Nil,
                HostValue::Nil,
            ]
        );
    }
}

#[test]
fn budget_stop_cannot_be_caught_by_a_script_handler() {
    // The xpcall message handler runs before unwinding, with hooks off when
    // the error came from the instruction hook: it must not run at all.
    let pool = Pool::builder().workers(1).build().unwrap();
    let s = pool.session();
    let opts = luapool_supervisor::ComputeOptions {
        timeout: Some(Duration::from_secs(60)),
        instructions: Some(1_000_000),
        ..Default::default()
    };
    let code =
        "xpcall(function() while true do end end, function() while true do end end) return 1";
    match s.compute_with(code, opts) {
        Err(ComputeError::Timeout { message }) => {
            assert!(message.contains("instruction limit"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// The worker's address space: shared mappings and whether `needle` appears
/// in any readable mapping.
fn scan_worker(pid: u32, needle: &[u8]) -> (Vec<String>, bool) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut shared = Vec::new();
    let mut found = false;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (range, perms) = (parts.next().unwrap(), parts.next().unwrap());
        let path = line.split_whitespace().nth(5).unwrap_or("").to_string();
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (
            u64::from_str_radix(lo, 16).unwrap(),
            u64::from_str_radix(hi, 16).unwrap(),
        );
        if perms.as_bytes()[3] == b's' {
            shared.push(format!("{} bytes {path}", hi - lo));
        }
        if perms.starts_with('r') && !path.starts_with("[v") {
            let mut buf = vec![0u8; (hi - lo) as usize];
            if mem.seek(SeekFrom::Start(lo)).is_ok() && mem.read_exact(&mut buf).is_ok() {
                found |= buf.windows(needle.len()).any(|w| w == needle);
            }
        }
    }
    (shared, found)
}

#[test]
fn a_worker_holds_no_supervisor_memory_and_never_sees_other_sessions_data() {
    let pool = Pool::builder().workers(1).build().unwrap();
    // Another session's data, in the supervisor's store; built at run time so
    // the literal is not in any binary.
    let secret = format!(
        "{}-{}-never-in-a-worker",
        "sandbox",
        std::process::id() * 7919
    );
    let other = pool.session();
    other
        .set_input(&serde_json::json!({ "secret": secret }))
        .unwrap();
    let me = pool.session();
    me.set_input(&serde_json::json!({ "mine": [1, 2, 3] }))
        .unwrap();
    let out = me
        .compute("local n = 0 for _, v in ipairs(_io.input.mine) do n = n + v end return n")
        .unwrap();
    assert_eq!(out.values, vec![HostValue::Int(6)]);
    let pid = pool.worker_pids()[0];
    let (shared, found) = scan_worker(pid, secret.as_bytes());
    // The only memory the worker shares with anyone is its 64 KiB ring.
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert!(
        shared[0].starts_with("65536 bytes /dev/shm/shmem_"),
        "{shared:?}"
    );
    assert!(!found, "another session's data is in the worker's memory");
}

#[test]
fn deep_recursion_and_nesting_are_errors_not_crashes() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let s = pool.session();
    let cases = [
        "local function f() return 1 + f() end return f()",
        "local t = setmetatable({}, { __index = function(t, k) return t[k] end }) return t.x",
        "local t = setmetatable({}, { __tostring = function(t) return tostring(t) end }) return tostring(t)",
        "return load('return ' .. string.rep('(', 1e5) .. '1' .. string.rep(')', 1e5))()",
        // ~200 results after a C-stack overflow (crashed the worker once).
        "local function f(n) return pcall(f, n + 1) end return f(0)",
        "local function f(n) return pcall(f, n + 1) end print(f(0)) return select('#', f(0))",
        "local function f(n) return pcall(f, n + 1) end return coroutine.wrap(function() return f(0) end)()",
        "local co co = coroutine.wrap(function() co() end) co()",
        "local t = {} local c = t for i = 1, 1e5 do c[1] = {} c = c[1] end return t",
        "local t = {} local c = t for i = 1, 1e5 do c[1] = {} c = c[1] end _io.output = t",
        "local t = {} t[1] = t _io.output = t",
        "return string.rep('x', 100):gsub('x', function() return string.rep('(', 300) end):find(string.rep('(', 300))",
    ];
    for code in cases {
        match s.compute(code) {
            Ok(_) | Err(ComputeError::LuaError { .. }) | Err(ComputeError::BadResult { .. }) => {}
            Err(e) => panic!("{code}: {e:?}"),
        }
    }
    let st = pool.stats();
    assert_eq!((st.restarts, st.crashes), (0, 0), "{st:?}");
    assert_eq!(
        s.compute("return 1 + 1").unwrap().values,
        vec![HostValue::Int(2)]
    );
}

#[test]
fn every_compute_starts_from_the_same_observable_state() {
    // One worker, so both sessions run in the same Lua state.
    let pool = Pool::builder().workers(1).build().unwrap();
    let (a, b) = (pool.session(), pool.session());
    let out = a
        .compute(
            r#"
            math.randomseed(42)
            for i = 1, 1000 do math.random() end
            while os.clock() < 0.2 do end
            local keep = {} for i = 1, 200000 do keep[i] = { i } end
            return os.clock(), collectgarbage("count")
            "#,
        )
        .unwrap();
    let HostValue::Float(a_kib) = out.values[1] else {
        panic!("{out:?}")
    };
    assert!(a_kib > 10_000.0, "A's own heap: {a_kib} KiB");
    let seen = |s: &luapool_supervisor::Session| {
        s.compute(
            "return math.random(1, 1e9), math.random(1, 1e9), os.clock(), collectgarbage('count')",
        )
        .unwrap()
        .values
    };
    let first = seen(&b);
    // Not seed 42's sequence, not A's CPU time, not A's heap.
    assert_ne!(
        first[..2],
        [HostValue::Int(637695718), HostValue::Int(460870706)]
    );
    assert!(
        matches!(first[2], HostValue::Float(c) if c < 0.2),
        "{first:?}"
    );
    assert!(
        matches!(first[3], HostValue::Float(k) if k < 1024.0),
        "{first:?}"
    );
    // Seeded afresh each compute: the next one draws other numbers.
    let second = seen(&b);
    assert_ne!(first[..2], second[..2]);
}

#[test]
fn chunks_cached_for_one_session_are_never_charged_to_another() {
    let pool = Pool::builder().workers(1).build().unwrap();
    // Eight large scripts (300 kB of source, about a megabyte compiled,
    // each), compiled with no memory limit and cached.
    for i in 0..8 {
        let code = format!("local t = {{ {} }} return #t + {i}", "1,".repeat(150_000));
        let unlimited = luapool_supervisor::ComputeOptions {
            memory: Some(0),
            ..Default::default()
        };
        pool.session().compute_with(&code, unlimited).unwrap();
    }
    // Another session with a tight limit still has all of it to itself
    // (string.rep holds its buffer and the string: twice 6 MiB).
    let tight = luapool_supervisor::ComputeOptions {
        memory: Some(16 << 20),
        ..Default::default()
    };
    let out = pool
        .session()
        .compute_with("local s = string.rep('x', 6 << 20) return #s", tight)
        .unwrap();
    assert_eq!(out.values, vec![HostValue::Int(6 << 20)]);
}

#[test]
fn error_values_raised_inside_callbacks_come_back_as_the_script_raised_them() {
    let out = values(
        r#"
        local t = setmetatable({}, { __tostring = function() error({ code = 7 }) end })
        local ok, e = pcall(print, t)
        local s = setmetatable({}, { __tostring = function() error("boom") end })
        local ok2, e2 = pcall(print, "x", s)
        local ok3, e3 = pcall(tostring, setmetatable({}, { __tostring = function() return {} end }))
        return ok, type(e), e.code, ok2, e2, ok3, type(e3)
        "#,
    );
    assert_eq!(
        out,
        vec![
            HostValue::Bool(false),
            s("table"),
            HostValue::Int(7),
            HostValue::Bool(false),
            s("compute:4: boom"),
            HostValue::Bool(false),
            s("string"),
        ]
    );
}

#[test]
fn errors_of_rust_callbacks_are_plain_strings_at_the_script_line() {
    // The store refuses ext.table() past the quota: the script sees a
    // string that names its own line, no Rust traceback, no address, no
    // internal chunk name.
    let pool = Pool::builder()
        .workers(1)
        .session_quota(1 << 20)
        .build()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let opts = luapool_supervisor::ComputeOptions {
        on_log: Some(Box::new(move |l: &str| {
            sink.lock().unwrap().push(l.to_string())
        })),
        ..Default::default()
    };
    let out = pool.session().compute_with(
        "local ok, e = pcall(function() for i = 1, 1e9 do ext.table() end end)\nprint(type(e), e)",
        opts,
    );
    // The script caught the error and ended well.
    assert!(out.is_ok(), "{out:?}");
    let lines = lines.lock().unwrap();
    let line = &lines[0];
    assert!(line.starts_with("string\tcompute:1: "), "{line}");
    assert!(line.contains("quota"), "{line}");
    for leak in ["0x", "luapool-", "traceback", "callback"] {
        assert!(!line.contains(leak), "{leak} in {line}");
    }
}

#[test]
fn errors_raised_by_any_rust_callback_are_caught_as_their_message() {
    // bigint's operators are Rust callbacks: what pcall, an xpcall handler,
    // coroutine.resume and coroutine.wrap hand the script is the message.
    let out = values(
        r#"
        local div = function() return bigint.new(1) // bigint.new(0) end
        local _, a = pcall(div)
        local _, b = xpcall(div, function(e) return e end)
        local _, c = coroutine.resume(coroutine.create(div))
        local _, d = pcall(coroutine.wrap(div))
        return a, b, c, d
        "#,
    );
    let msg = s("bigint: division by zero");
    assert_eq!(out, vec![msg.clone(), msg.clone(), msg.clone(), msg]);
}
