//! `cargo bench -p luapool-tests --bench perf`: luapool against native Lua,
//! side by side, in one run. Prints medians and ratios (see README,
//! "Performance").
//!
//! - (a) Pattern 2 (sum/min/max/average over 100 000 records) end to end:
//!   set input, compute, get output; and the loop alone (input already set).
//! - (b) the same script in-process with mlua on a native table built from
//!   the same data: the floor; and its loop alone.
//! - (c) the data as one JSON string decoded inside Lua.
//! - (d) Pattern 3 (filter, then transform; 50 000 records out) and
//!   Pattern 4 (group-by) end to end against the floor.
//! - (e) trivial computes: latency p50/p99 and computes per second.
//! - (f) 1 000 000 items: the worker's peak RSS against the supervisor's
//!   memory for that input.
//! - (g) `table.insert` and `table.remove` at position 1 of a 100 000-element
//!   external array, `table.sort` of 100 000 numbers and of 100 000 records
//!   by a field, each against the same operation on a native table (the
//!   external array is in the store, from an earlier compute; one compute
//!   per operation, timed from the host).
//!
//! `LUAPOOL_BENCH_RUNS` sets the repetitions (default 7);
//! `LUAPOOL_BENCH_ONLY=loop` runs only the Pattern 2 loops and also prints
//! the fastest run, which is steadier than the median on a busy machine,
//! and the CPU time per run of the native loop, the workers and the slot
//! threads (from `schedstat`); there `LUAPOOL_BENCH_CODE=<file>` times
//! another script over the same input in place of Pattern 2 (one access
//! pattern alone), and `LUAPOOL_BENCH_NO_BUDGET=1` skips the budget row;
//! `LUAPOOL_BENCH_ONLY=tablelib` only (g).

use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_supervisor::{ComputeOptions, HostValue, Pool, Session};
use mlua::{Lua, LuaSerdeExt};
use serde_json::{json, Value};

// The reference's patterns, exactly as the examples run them.
const PATTERN2: &str = include_str!("../../examples/pattern2_batch_processing.lua");
const PATTERN3_FILTER: &str = include_str!("../../examples/pattern3_filter.lua");
const PATTERN3_TRANSFORM: &str = include_str!("../../examples/pattern3_transform.lua");
const PATTERN4: &str = include_str!("../../examples/pattern4_aggregation.lua");

/// A deterministic pseudo-random float in [0, 100).
fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64 * 100.0
}

fn records(n: usize) -> Value {
    let mut s = 42;
    json!({ "items": (0..n).map(|i| json!({ "id": i, "value": lcg(&mut s) })).collect::<Vec<_>>() })
}

fn people(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({ "id": i, "firstName": format!("First{i}"), "lastName": format!("Last{i}"), "age": 18 + i % 60, "active": i % 2 == 0 }))
        .collect();
    json!({ "items": items })
}

fn transactions(n: usize) -> Value {
    json!({ "transactions": (0..n).map(|i| json!({ "userId": i % 100, "amount": (i % 500) as i64 })).collect::<Vec<_>>() })
}

fn runs() -> usize {
    std::env::var("LUAPOOL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    if std::env::var("LUAPOOL_BENCH_ONLY").is_ok() {
        println!("    (fastest {:.2} ms)", xs[0].as_secs_f64() * 1e3);
    }
    xs[xs.len() / 2]
}

fn time<T>(f: impl FnMut() -> T) -> (Duration, T) {
    let mut f = f;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs() {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    (median(times), last.expect("at least one run"))
}

/// A compute with the instruction budget of earlier defaults (2·10⁹): the
/// counting hook runs on every VM instruction (see `worker/src/stop.rs`).
/// The default limits (CPU time by a timer) run no hook at all.
fn budgeted() -> ComputeOptions {
    ComputeOptions {
        instructions: Some(2_000_000_000),
        ..ComputeOptions::default()
    }
}

/// luapool: set input, run the steps, get output.
fn luapool_e2e(session: &Session, input: &Value, steps: &[&str]) -> Value {
    session.set_input(input).unwrap();
    let mut out = Value::Null;
    for (i, code) in steps.iter().enumerate() {
        if i > 0 {
            session.set_input(&out).unwrap();
        }
        session.compute(code).unwrap();
        out = session.get_output().unwrap();
    }
    out
}

/// Native Lua in-process: a fresh state, the input built as a native table
/// from the same data, the same steps, the output converted back. The data
/// is a `HostValue` tree: mlua's serde cannot read a `serde_json::Value`'s
/// numbers, which serde_json (built with `arbitrary_precision`) hands to
/// other serializers as structs holding their text.
fn native_e2e(input: &HostValue, steps: &[&str]) -> Value {
    let lua = Lua::new();
    let mut data = input.clone();
    for code in steps {
        let io = lua.create_table().unwrap();
        io.set("input", lua.to_value(&data).unwrap()).unwrap();
        let ext = lua.create_table().unwrap();
        ext.set(
            "table",
            lua.create_function(|lua, ()| lua.create_table()).unwrap(),
        )
        .unwrap();
        lua.globals().set("_io", io.clone()).unwrap();
        lua.globals().set("ext", ext).unwrap();
        lua.load(*code).exec().unwrap();
        data = lua
            .from_value(io.get::<mlua::Value>("output").unwrap())
            .unwrap();
    }
    data.to_json()
}

/// The loop alone on a native table (input already built).
fn native_loop(input: &HostValue, code: &str) -> Duration {
    let lua = Lua::new();
    let io = lua.create_table().unwrap();
    io.set("input", lua.to_value(input).unwrap()).unwrap();
    lua.globals().set("_io", io).unwrap();
    let f = lua.load(code).into_function().unwrap();
    // Building the input left the collector a cycle of work over its 100 000
    // tables: finished here, it is not timed as part of the loop (it was,
    // in the first few runs, which made the floor vary from one run count
    // to another).
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    let before = thread_cpu_ns();
    let d = time(|| f.call::<()>(()).unwrap()).0;
    NATIVE_CPU_NS.store(
        thread_cpu_ns() - before,
        std::sync::atomic::Ordering::Relaxed,
    );
    d
}

/// The CPU time of the last `native_loop`'s runs, all together.
static NATIVE_CPU_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// This thread's CPU time.
fn thread_cpu_ns() -> u64 {
    // SAFETY: gettid has no preconditions.
    cpu_ns(&format!("/proc/self/task/{}/schedstat", unsafe {
        libc::gettid()
    }))
}

/// The data as one JSON string, decoded inside Lua, then the script.
fn json_in_lua(input: &Value, code: &str) -> Value {
    let lua = Lua::new();
    let decode: mlua::Function = lua.load(include_str!("json.lua")).eval().unwrap();
    let text = serde_json::to_string(input).unwrap();
    let io = lua.create_table().unwrap();
    io.set("input", decode.call::<mlua::Value>(text).unwrap())
        .unwrap();
    lua.globals().set("_io", io.clone()).unwrap();
    lua.load(code).exec().unwrap();
    lua.from_value(io.get::<mlua::Value>("output").unwrap())
        .unwrap()
}

fn row(name: &str, d: Duration, floor: Option<Duration>) {
    let ratio = floor.map_or(String::new(), |f| {
        format!("{:>8.2}x", d.as_secs_f64() / f.as_secs_f64())
    });
    println!("{name:<58} {:>10.2} ms {ratio}", d.as_secs_f64() * 1e3);
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// (f): a fresh one-worker pool, so the worker's peak is this job's.
fn million_items() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let session = pool.session();
    #[derive(serde::Serialize)]
    struct Item {
        id: u64,
        value: f64,
    }
    #[derive(serde::Serialize)]
    struct Input {
        items: Vec<Item>,
    }
    // A compact typed input (16 MB), so the RSS growth below is the store's.
    let mut s = 7;
    let items = Input {
        items: (0..1_000_000)
            .map(|i| Item {
                id: i,
                value: lcg(&mut s) / 100.0,
            })
            .collect(),
    };
    let json_bytes = serde_json::to_vec(&items).unwrap().len();
    let before = status_kib("self", "VmRSS:");
    session.set_input(&items).unwrap();
    let after = status_kib("self", "VmRSS:");
    drop(items);
    session
        .compute("local n = 0 for i, item in ipairs(_io.input.items) do n = n + item.value end _io.output = { processed = #_io.input.items, sum = n }")
        .unwrap();
    let out: Value = session.get_output().unwrap();
    assert_eq!(out["processed"], 1_000_000);
    let worker = pool.worker_pids()[0].to_string();
    let (peak, store) = (
        status_kib(&worker, "VmHWM:"),
        pool.stats().store.bytes / 1024,
    );
    println!(
        "(f) 1 000 000 items ({:.0} MB as JSON): supervisor RSS +{} MiB for the input (store accounts {} MiB); worker peak RSS {} MiB ({:.3}x the supervisor's)",
        json_bytes as f64 / 1e6,
        after.saturating_sub(before) / 1024,
        store / 1024,
        peak / 1024,
        peak as f64 / after.saturating_sub(before).max(1) as f64
    );
}

/// Nanoseconds on a CPU of a task, from its `schedstat`.
fn cpu_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the pool's workers (`luapool-worker`) or of this process's
/// threads whose name starts with `prefix` (the slot threads).
fn pool_cpu(pool: &Pool, prefix: &str) -> u64 {
    if prefix == "luapool-worker" {
        return pool
            .worker_pids()
            .iter()
            .map(|p| cpu_ns(&format!("/proc/{p}/schedstat")))
            .sum();
    }
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| cpu_ns(&t.path().join("schedstat").to_string_lossy()))
        .sum()
}

fn trivial(pool: &Arc<Pool>) {
    let session = pool.session();
    let mut lat = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = Instant::now();
        session.compute("return 1").unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    println!(
        "(e) trivial compute, one thread: p50 {:.1} µs, p99 {:.1} µs",
        p(0.5),
        p(0.99)
    );
    for threads in [2, 4] {
        let dur = Duration::from_secs(2);
        let end = Instant::now() + dur;
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let s = pool.session();
                    let mut n = 0u64;
                    while Instant::now() < end {
                        s.compute("return 1").unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        println!(
            "(e) trivial computes per second, {threads} threads, 2 workers: {:.0}",
            total as f64 / dur.as_secs_f64()
        );
    }
}

/// (g): one table-library operation on a 100 000-element array, luapool
/// (the array in the store: `_io.output.a`, written by `setup`, untimed)
/// against native (the array built by `native_setup`, untimed).
fn tablelib_op(session: &Session, name: &str, setup: &str, op: &str) {
    const N: usize = 100_000;
    let lua = Lua::new();
    let prepare = lua
        .load(format!(
            "local N = {N}
             local function shuffled(i) return (i * 7919) % 100003 end
             return function()
               local a = {{}}
               {setup}
               return a
             end"
        ))
        .eval::<mlua::Function>()
        .unwrap();
    let run_op = lua
        .load(format!("return function(a) {op} end"))
        .eval::<mlua::Function>()
        .unwrap();
    let mut native = Vec::new();
    for _ in 0..runs() {
        let a: mlua::Table = prepare.call(()).unwrap();
        let t = Instant::now();
        run_op.call::<()>(a).unwrap();
        native.push(t.elapsed());
    }
    let native = median(native);
    let mut ours = Vec::new();
    for _ in 0..runs() {
        session
            .compute(&format!(
                "local N = {N}
                 local function shuffled(i) return (i * 7919) % 100003 end
                 local a = ext.table()
                 {setup}
                 _io.output = {{ a = a }}"
            ))
            .unwrap();
        let t = Instant::now();
        session
            .compute(&format!("local a = _io.output.a {op}"))
            .unwrap();
        ours.push(t.elapsed());
    }
    row(&format!("(g) {name}, native"), native, Some(native));
    row(&format!("(g) {name}, luapool"), median(ours), Some(native));
}

fn tablelib(session: &Session) {
    let numbers = "for i = 1, N do a[i] = i end";
    tablelib_op(
        session,
        "insert at 1 of 100 000",
        numbers,
        "table.insert(a, 1, 0)",
    );
    tablelib_op(
        session,
        "remove at 1 of 100 000",
        numbers,
        "table.remove(a, 1)",
    );
    tablelib_op(
        session,
        "sort 100 000 numbers",
        "for i = 1, N do a[i] = shuffled(i) end",
        "table.sort(a)",
    );
    tablelib_op(
        session,
        "sort 100 000 records by a field",
        "for i = 1, N do a[i] = { id = i, v = shuffled(i) } end",
        "table.sort(a, function(x, y) return x.v < y.v end)",
    );
}

fn main() {
    let pool = Pool::builder()
        .workers(2)
        .build()
        .expect("start the pool (run `cargo build --release --workspace` first)");
    let session = pool.session();
    println!(
        "{} runs each, medians; ratios against the native floor\n",
        runs()
    );

    let p2 = records(100_000);
    if std::env::var("LUAPOOL_BENCH_ONLY").as_deref() == Ok("trivial") {
        trivial(&pool);
        return;
    }
    if std::env::var("LUAPOOL_BENCH_ONLY").as_deref() == Ok("memory") {
        million_items();
        return;
    }
    if std::env::var("LUAPOOL_BENCH_ONLY").as_deref() == Ok("tablelib") {
        tablelib(&session);
        return;
    }
    if std::env::var("LUAPOOL_BENCH_ONLY").as_deref() == Ok("loop") {
        session.set_input(&p2).unwrap();
        let code = std::env::var("LUAPOOL_BENCH_CODE")
            .map(|path| std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|_| PATTERN2.to_string());
        let code = code.as_str();
        row(
            "    Pattern 2 loop alone, native table",
            native_loop(&HostValue::from_json(p2.clone()), code),
            None,
        );
        let native_cpu =
            NATIVE_CPU_NS.load(std::sync::atomic::Ordering::Relaxed) as f64 / runs() as f64 / 1e6;
        let before = (
            pool_cpu(&pool, "luapool-worker"),
            pool_cpu(&pool, "luapool-slot"),
        );
        let (lp_loop, _) = time(|| session.compute(code).unwrap());
        let after = (
            pool_cpu(&pool, "luapool-worker"),
            pool_cpu(&pool, "luapool-slot"),
        );
        row(
            "    Pattern 2 loop alone, luapool, default limits (CPU time)",
            lp_loop,
            None,
        );
        let per_run = |a: u64, b: u64| (a - b) as f64 / runs() as f64 / 1e6;
        println!(
            "    CPU per run: native {native_cpu:.2} ms; luapool worker {:.2} ms + supervisor {:.2} ms",
            per_run(after.0, before.0),
            per_run(after.1, before.1)
        );
        if std::env::var_os("LUAPOOL_BENCH_NO_BUDGET").is_some() {
            return;
        }
        let (lp_count, _) = time(|| session.compute_with(code, budgeted()).unwrap());
        row(
            "    Pattern 2 loop alone, luapool, instruction budget",
            lp_count,
            None,
        );
        return;
    }
    let p2_host = HostValue::from_json(p2.clone());
    let (floor, native_out) = time(|| native_e2e(&p2_host, &[PATTERN2]));
    let (e2e, out) = time(|| luapool_e2e(&session, &p2, &[PATTERN2]));
    assert_eq!(out["count"], native_out["count"]);
    assert_eq!(out["sum"], native_out["sum"]);
    let (json, _) = time(|| json_in_lua(&p2, PATTERN2));
    session.set_input(&p2).unwrap();
    let (lp_loop, _) = time(|| session.compute(PATTERN2).unwrap());
    let (lp_count, _) = time(|| session.compute_with(PATTERN2, budgeted()).unwrap());
    let nat_loop = native_loop(&p2_host, PATTERN2);
    row(
        "(b) Pattern 2, native Lua table built from the data (floor)",
        floor,
        Some(floor),
    );
    row(
        "(a) Pattern 2, luapool end to end (set input, compute, output)",
        e2e,
        Some(floor),
    );
    row(
        "(c) Pattern 2, data as a JSON string decoded in Lua",
        json,
        Some(floor),
    );
    let (lp_set, _) = time(|| session.set_input(&p2).unwrap());
    let (lp_get, _) = time(|| session.get_output::<Value>().unwrap());
    row(
        "    Pattern 2 set_input alone (100 000 records)",
        lp_set,
        Some(floor),
    );
    row("    Pattern 2 get_output alone", lp_get, Some(floor));
    row(
        "    Pattern 2 loop alone, native table",
        nat_loop,
        Some(nat_loop),
    );
    row(
        "    Pattern 2 loop alone, luapool, default limits (CPU time)",
        lp_loop,
        Some(nat_loop),
    );
    row(
        "    Pattern 2 loop alone, luapool, instruction budget",
        lp_count,
        Some(nat_loop),
    );

    let p3 = people(100_000);
    let steps = [PATTERN3_FILTER, PATTERN3_TRANSFORM];
    let p3_host = HostValue::from_json(p3.clone());
    let (floor3, n3) = time(|| native_e2e(&p3_host, &steps));
    let (e2e3, o3) = time(|| luapool_e2e(&session, &p3, &steps));
    assert_eq!(
        o3["items"].as_array().map(Vec::len),
        n3["items"].as_array().map(Vec::len)
    );
    assert_eq!(o3["items"].as_array().map(Vec::len), Some(50_000));
    row(
        "(b) Pattern 3 filter+transform, native (floor)",
        floor3,
        Some(floor3),
    );
    row(
        "(d) Pattern 3 filter+transform, luapool end to end",
        e2e3,
        Some(floor3),
    );

    let p4 = transactions(100_000);
    let p4_host = HostValue::from_json(p4.clone());
    let (floor4, _) = time(|| native_e2e(&p4_host, &[PATTERN4]));
    let (e2e4, o4) = time(|| luapool_e2e(&session, &p4, &[PATTERN4]));
    assert_eq!(o4["groups"].as_array().map(Vec::len), Some(100));
    row(
        "(b) Pattern 4 group-by, native (floor)",
        floor4,
        Some(floor4),
    );
    row(
        "(d) Pattern 4 group-by, luapool end to end",
        e2e4,
        Some(floor4),
    );
    println!();
    tablelib(&session);
    println!();
    trivial(&pool);
    million_items();
}
