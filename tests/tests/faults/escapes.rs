//! Stops that hold on every path: each shape below tries another way to
//! catch a stop, hide from it or outlive it (pcall, error handlers, `load`
//! readers, `__close` during unwinding and after the stop, callbacks from
//! `string.gsub` and `table.sort`, metamethods, coroutines created before
//! or after the stop, `coroutine.wrap` and `close`). Each runs once against
//! the instruction budget, once against a cancel and once against the
//! CPU-time limit, must end with that limit's error, and the next compute
//! on the same worker must start clean.

use std::sync::Arc;
use std::time::Duration;

use luapool_supervisor::{CancelToken, ComputeError, ComputeOptions, HostValue, Limits, Pool};

use super::builder;

/// Every shape first leaves traces the next compute must not see
/// (globals, a library change, the random seed), then prints `go` (the
/// cancel runs see it and cancel), then escapes.
const PREFIX: &str = "leaked = true string.leaked = true math.randomseed(42) print('go'); ";

const ESCAPES: &[&str] = &[
    "while true do end",
    "pcall(function() while true do end end) return 'swallowed'",
    "while true do pcall(function() while true do end end) end",
    "while true do pcall(error, 'x') end",
    "xpcall(function() while true do end end, function() while true do end end) return 'swallowed'",
    "xpcall(error, function() while true do end end) return 'swallowed'",
    "while true do load(function() while true do end end) end",
    "pcall(load('while true do end')) return 'swallowed'",
    "return load(coroutine.wrap(function() while true do coroutine.yield(' ') end end))",
    "local f = coroutine.wrap(function() while true do end end) pcall(f) return 'swallowed'",
    "local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 'swallowed'",
    "local co = coroutine.wrap(function() while true do end end) pcall(function() while true do end end) co() return 'swallowed'",
    "local function nest(n) if n == 0 then while true do end end return coroutine.wrap(function() return nest(n - 1) end)() end return pcall(nest, 40)",
    "while true do coroutine.wrap(function() for i = 1, 100 do end end)() end",
    "local co = coroutine.create(function() local x <close> = setmetatable({}, { __close = function() while true do end end }) coroutine.yield() end) coroutine.resume(co) return coroutine.close(co)",
    "local co = coroutine.create(function() local x <close> = setmetatable({}, { __close = function() while true do end end }) while true do end end) pcall(coroutine.resume, co) return coroutine.close(co)",
    "do local t <close> = setmetatable({}, { __close = function() while true do end end }) end return 'swallowed'",
    "local t <close> = setmetatable({}, { __close = function(_, e) if e == nil then error('nil error') end while true do end end }) while true do end",
    "local t <close> = setmetatable({}, { __close = function(_, e) pcall(function() while true do end end) for i = 1, 1e12 do end end }) while true do end",
    "local f = coroutine.wrap(function() local x <close> = setmetatable({}, { __close = function() pcall(function() while true do end end) while true do end end }) while true do end end) pcall(f) return 'swallowed'",
    "(('x'):rep(100)):gsub('.', function() while true do end end) return 'swallowed'",
    "table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end) return 'swallowed'",
    "local t = setmetatable({}, { __index = function() while true do end end }) pcall(function() return t.x end) return 'swallowed'",
    "local t = setmetatable({}, { __len = function() while true do end end }) return pcall(function() return #t end)",
    "print(setmetatable({}, { __tostring = function() while true do end end }))",
    "local function f() pcall(f) while true do end end f()",
    "for i = 1, math.huge do pcall(string.rep, 'x', 10) end",
];

/// Which limit a run is against.
#[derive(Clone, Copy, Debug)]
enum Against {
    Instructions,
    Cancel,
    CpuTime,
}

fn pool_for(against: Against) -> Arc<Pool> {
    let limits = match against {
        Against::Instructions => Limits {
            timeout: Duration::from_secs(120),
            cpu_time: Duration::ZERO,
            instructions: 2_000_000,
            memory: 64 << 20,
        },
        Against::Cancel => Limits {
            timeout: Duration::from_secs(120),
            cpu_time: Duration::ZERO,
            instructions: 0,
            memory: 64 << 20,
        },
        Against::CpuTime => Limits {
            timeout: Duration::from_secs(120),
            cpu_time: Duration::from_millis(200),
            instructions: 0,
            memory: 64 << 20,
        },
    };
    // A cancel is never left to the supervisor's kill: the worker must stop
    // the compute itself.
    builder(1)
        .limits(limits)
        .cancel_grace(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// Runs `code`, cancelling it once it printed `go` when `against` is Cancel.
fn run(pool: &Arc<Pool>, against: Against, code: &str) -> Result<Vec<HostValue>, ComputeError> {
    let session = pool.session();
    let mut opts = ComputeOptions::default();
    if let Against::Cancel = against {
        let token = CancelToken::new();
        opts.cancel = Some(token.clone());
        opts.on_log = Some(Box::new(move |line: &str| {
            if line == "go" {
                token.cancel();
            }
        }));
    }
    session.compute_with(code, opts).map(|o| o.values)
}

/// What the next compute on the worker sees: none of the escape's traces.
fn assert_clean(pool: &Arc<Pool>, after: &str) {
    let out = run(
        pool,
        Against::Instructions,
        "return leaked, string.leaked, math.random(1, 1e9) ~= 637695718, os.clock() < 0.1, collectgarbage('count') < 1024",
    )
    .unwrap_or_else(|e| panic!("after {after}: {e:?}"));
    assert_eq!(
        out,
        vec![
            HostValue::Nil,
            HostValue::Nil,
            HostValue::Bool(true),
            HostValue::Bool(true),
            HostValue::Bool(true),
        ],
        "after {after}"
    );
}

fn run_all(against: Against) {
    let pool = pool_for(against);
    let pid = pool.worker_pids();
    assert!(ESCAPES.len() >= 20);
    for shape in ESCAPES {
        let code = format!("{PREFIX}{shape}");
        let e = match run(&pool, against, &code) {
            Ok(values) => panic!("{against:?}: {shape}: returned {values:?}"),
            Err(e) => e,
        };
        match (against, &e) {
            (Against::Instructions, ComputeError::Timeout { message })
                if message.contains("instruction limit") => {}
            (Against::CpuTime, ComputeError::Timeout { message })
                if message.contains("CPU-time limit") && !message.contains("replaced") => {}
            (Against::Cancel, ComputeError::Cancelled) => {}
            _ => panic!("{against:?}: {shape}: {e:?}"),
        }
        assert_clean(&pool, shape);
    }
    // Stopped by the worker every time: it was never replaced.
    let s = pool.stats();
    assert_eq!((s.restarts, s.crashes), (0, 0), "{against:?}: {s:?}");
    assert_eq!(pool.worker_pids(), pid);
}

#[test]
fn every_escape_shape_stops_at_the_instruction_budget() {
    run_all(Against::Instructions);
}

#[test]
fn every_escape_shape_stops_when_cancelled() {
    run_all(Against::Cancel);
}

#[test]
fn every_escape_shape_stops_at_the_cpu_time_limit() {
    run_all(Against::CpuTime);
}
