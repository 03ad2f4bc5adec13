//! Runaway scripts: the instruction budget (which no `pcall` can swallow)
//! and, behind it, the wall-clock kill.

use std::time::Duration;

use luapool_supervisor::{ComputeError, Limits};

use super::{builder, expect_err, int, limits, still_works, wait_for_full_pool};
use crate::common::luapool_bin;

/// Loops that only the instruction budget stops, each trying another way to
/// catch or hide the stop.
const RUNAWAYS: &[&str] = &[
    "while true do end",
    "pcall(function() while true do end end) return 'swallowed'",
    "while true do pcall(function() while true do end end) end",
    "for i = 1, 1e9 do pcall(function() while true do end end) end",
    "while true do pcall(error, 'x') end",
    "xpcall(function() while true do end end, function() while true do end end) return 'swallowed'",
    "local f = coroutine.wrap(function() while true do end end) pcall(f) return 'swallowed'",
    "local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'swallowed'",
    // A stop inside __close, run by coroutine.close, which reports errors
    // instead of raising them; then return at once, before the next tick.
    "local co = coroutine.create(function() local x <close> = setmetatable({}, { __close = function() while true do end end }) coroutine.yield() end) coroutine.resume(co) return coroutine.close(co)",
    "(('x'):rep(100)):gsub('.', function() while true do end end) return 'swallowed'",
    "local t = setmetatable({}, { __index = function() while true do end end }) pcall(function() return t.x end) return 'swallowed'",
    "pcall(load('while true do end')) return 'swallowed'",
    "do local t <close> = setmetatable({}, { __close = function() while true do end end }) end return 'swallowed'",
    "local ok = pcall(string.rep, 'x', 10) while ok do ok = pcall(function() for i = 1, 1e6 do end end) end",
    "table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end) return 'swallowed'",
];

#[test]
fn runaway_loops_stop_at_the_instruction_budget_even_inside_pcall() {
    let pool = builder(1)
        .limits(Limits {
            timeout: Duration::from_secs(60),
            cpu_time: Duration::ZERO,
            instructions: 2_000_000,
            memory: 64 << 20,
        })
        .build()
        .unwrap();
    let session = pool.session();
    for code in RUNAWAYS {
        let e = expect_err(session.compute(code), code);
        assert!(
            matches!(&e, ComputeError::Timeout { message } if message.contains("instruction limit")),
            "{code}: {e:?}"
        );
        still_works(&session);
    }
    // A budget stop leaves the worker in place: nothing was killed.
    let s = pool.stats();
    assert_eq!((s.restarts, s.crashes, s.alive), (0, 0, 1), "{s:?}");
}

#[test]
fn wall_clock_kills_a_loop_without_budget_and_the_worker_is_replaced() {
    let pool = builder(1).build().unwrap();
    let session = pool.session();
    let before = pool.worker_pids();
    let opts = limits(Some(Duration::from_millis(300)), Some(0), None);
    let e = expect_err(session.compute_with("while true do end", opts), "loop");
    assert!(
        matches!(&e, ComputeError::Timeout { message } if message.contains("wall-clock")),
        "{e:?}"
    );
    wait_for_full_pool(&pool);
    assert_ne!(pool.worker_pids(), before, "the worker was replaced");
    still_works(&session);
    let s = pool.stats();
    assert_eq!(
        (s.restarts, s.crashes),
        (1, 0),
        "a timeout kill is not a crash: {s:?}"
    );
}

#[test]
fn wall_clock_stops_a_long_c_call_the_budget_cannot_see() {
    // One string.find call with O(n^4) backtracking: no VM instruction runs
    // inside it, so the instruction hook never fires. Only the kill helps.
    let pool = builder(1).build().unwrap();
    let session = pool.session();
    let code = "return string.find(string.rep('a', 20000), '.-.-.-.-b')";
    let opts = limits(Some(Duration::from_millis(500)), Some(1_000_000), None);
    let e = expect_err(session.compute_with(code, opts), "pattern");
    assert!(
        matches!(&e, ComputeError::Timeout { message } if message.contains("wall-clock")),
        "{e:?}"
    );
    still_works(&session);
}

#[test]
fn pool_limits_are_the_defaults_and_a_compute_can_override_them() {
    let pool = builder(1)
        .limits(Limits {
            timeout: Duration::from_millis(400),
            cpu_time: Duration::ZERO,
            instructions: 1_000_000,
            memory: 64 << 20,
        })
        .build()
        .unwrap();
    let session = pool.session();
    let counting = "local n = 0 for i = 1, 3e6 do n = n + 1 end return n";
    // Default budget: 3 million loop iterations are well over 1 million instructions.
    let e = expect_err(session.compute(counting), "default budget");
    assert!(
        matches!(&e, ComputeError::Timeout { message } if message.contains("instruction")),
        "{e:?}"
    );
    // A larger budget for this compute only.
    let out = session
        .compute_with(
            counting,
            limits(Some(Duration::from_secs(60)), Some(100_000_000), None),
        )
        .unwrap();
    assert_eq!(
        out.values,
        vec![luapool_supervisor::HostValue::Int(3_000_000)]
    );
    // Default wall clock (400 ms) when the budget is off for this compute.
    let e = expect_err(
        session.compute_with("while true do end", limits(None, Some(0), None)),
        "default timeout",
    );
    assert!(
        matches!(&e, ComputeError::Timeout { message } if message.contains("400ms")),
        "{e:?}"
    );
    // The default is back for the next compute.
    let e = expect_err(session.compute(counting), "default budget again");
    assert!(
        matches!(&e, ComputeError::Timeout { message } if message.contains("instruction")),
        "{e:?}"
    );
    assert_eq!(int(&session, "return 7"), 7);
}

#[test]
fn cli_timeout_cpu_time_and_instructions_flags_stop_a_runaway_script() {
    let dir = std::env::temp_dir().join(format!("luapool-cli-runaway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("spin.lua");
    std::fs::write(&script, "while true do end\n").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(luapool_bin())
            .arg("run")
            .args(args)
            .arg(&script)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--timeout", "0.5", "--instructions", "0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("timeout") && err.contains("wall-clock limit of 500ms"),
        "{err}"
    );
    let (code, err) = run(&["--instructions", "100000"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("instruction limit exceeded"), "{err}");
    let (code, err) = run(&["--cpu-time", "0.2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("CPU-time limit of 200ms exceeded"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cpu_time_stops_a_long_c_call_by_replacing_the_worker() {
    // No VM instruction runs inside this one string.find, so the hook the
    // CPU-time timer arms never fires; a second of CPU time later the
    // worker exits by itself, well before the wall clock.
    let pool = builder(1).build().unwrap();
    let session = pool.session();
    let code = "return string.find(string.rep('a', 20000), '.-.-.-.-b')";
    let opts = luapool_supervisor::ComputeOptions {
        timeout: Some(Duration::from_secs(600)),
        cpu_time: Some(Duration::from_millis(200)),
        instructions: Some(0),
        ..Default::default()
    };
    let e = expect_err(session.compute_with(code, opts), "pattern");
    assert!(
        matches!(&e, ComputeError::Timeout { message }
            if message.contains("CPU-time limit of 200ms") && message.contains("replaced")),
        "{e:?}"
    );
    wait_for_full_pool(&pool);
    still_works(&session);
    assert_eq!(pool.stats().crashes, 0, "a limit, not a crash");
}
