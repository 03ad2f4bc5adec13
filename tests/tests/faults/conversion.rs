//! Copies out of Lua are bounded by bytes, a shared part counted each time
//! it appears, and by the compute's memory limit: a plain table copied into
//! the store, a return value, a `print` line. Past a bound the compute
//! ends with a typed error naming it; the worker never crashes.

use std::time::Duration;

use luapool_supervisor::{ComputeError, ComputeOptions, Limits, Pool};

use super::{builder, still_works};

/// 2^25 leaves through 25 levels of shared halves.
const DAG: &str = "local e = {} for d = 1, 25 do e = { e, e } end ";
/// 3 000 references to one 1 MiB string.
const REFS: &str = "local s = string.rep('x', 2^20) local t = {} for i = 1, 3000 do t[i] = s end ";

const AMPLIFIERS: &[&str] = &[
    "ext.table().dag = e",
    "_io.output = { dag = e }",
    "return e",
];
const REF_AMPLIFIERS: &[&str] = &[
    "ext.table().x = t",
    "_io.output = t",
    "return t",
    "print(table.unpack(t))",
];

fn pool(memory: u64) -> std::sync::Arc<Pool> {
    builder(1)
        .limits(Limits {
            timeout: Duration::from_secs(120),
            cpu_time: Duration::from_secs(60),
            instructions: 0,
            memory,
        })
        .build()
        .unwrap()
}

/// The worker's peak resident set, in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn attacks() -> Vec<String> {
    let mut all: Vec<String> = AMPLIFIERS.iter().map(|a| format!("{DAG}{a}")).collect();
    all.extend(REF_AMPLIFIERS.iter().map(|a| format!("{REFS}{a}")));
    all
}

#[test]
fn shared_parts_copied_out_of_lua_end_at_the_memory_limit_not_in_a_crash() {
    let pool = pool(16 << 20);
    let session = pool.session();
    for code in attacks() {
        match session.compute(&code) {
            Err(ComputeError::MemoryLimit { message }) => {
                assert!(message.contains("16777216"), "{code}: {message}")
            }
            Err(ComputeError::TooLarge { message }) => {
                assert!(message.contains("conversion limit"), "{code}: {message}")
            }
            other => panic!("{code}: {other:?}"),
        }
        still_works(&session);
    }
    let s = pool.stats();
    assert_eq!((s.restarts, s.crashes), (0, 0), "{s:?}");
    let peak = peak_mib(pool.worker_pids()[0]);
    eprintln!("worker peak RSS under the amplifiers, --memory 16: {peak} MiB");
    assert!(peak < 512, "worker peak RSS {peak} MiB");
}

#[test]
fn shared_parts_past_the_conversion_limit_are_too_large() {
    let pool = pool(0);
    let session = pool.session();
    for code in attacks() {
        match session.compute(&code) {
            Err(ComputeError::TooLarge { message }) => assert!(
                message.contains("conversion limit of 134217728 bytes"),
                "{code}: {message}"
            ),
            other => panic!("{code}: {other:?}"),
        }
        still_works(&session);
    }
    let s = pool.stats();
    assert_eq!((s.restarts, s.crashes), (0, 0), "{s:?}");
    eprintln!(
        "worker peak RSS under the amplifiers, no memory limit: {} MiB",
        peak_mib(pool.worker_pids()[0])
    );
}

#[test]
fn memory_a_copy_takes_outside_the_lua_heap_counts_toward_the_limit() {
    // 100 MiB of copies of one 1 MiB string: within the conversion limit,
    // past a 32 MiB memory limit although the Lua heap holds 1 MiB.
    let pool = pool(32 << 20);
    let session = pool.session();
    let code = "local s = string.rep('x', 2^20) local t = {} for i = 1, 100 do t[i] = s end ext.table().x = t";
    let e = session.compute(code).unwrap_err();
    assert!(matches!(e, ComputeError::MemoryLimit { .. }), "{e:?}");
    // pcall cannot swallow it either.
    let e = session
        .compute_with(
            &format!("pcall(function() {code} end) return 'swallowed'"),
            ComputeOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, ComputeError::MemoryLimit { .. }), "{e:?}");
    still_works(&session);
}
