//! The worker's OS confinement (worker/src/confine.rs): once started, a
//! worker holds no descriptor, may create no file or process, runs under a
//! seccomp allowlist, and what it is denied costs only its own compute.

use luapool_supervisor::{ComputeError, HostValue, Pool};

use super::{hostile_pool, wait_for_full_pool};

/// The `Name:\tvalue` line of /proc/PID/status.
fn status(pid: u32, name: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The soft and hard values of a /proc/PID/limits row.
fn limit(pid: u32, row: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap()
        .to_string();
    line[row.len()..]
        .split_whitespace()
        .take(2)
        .map(String::from)
        .collect()
}

#[test]
fn a_started_worker_holds_no_descriptor_and_runs_under_seccomp() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let pid = pool.worker_pids()[0];
    assert_eq!(status(pid, "Seccomp"), "2", "seccomp filter mode");
    assert_eq!(status(pid, "NoNewPrivs"), "1");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(fds.is_empty(), "open descriptors: {fds:?}");
    for row in [
        "Max open files",
        "Max processes",
        "Max file size",
        "Max core file size",
    ] {
        assert_eq!(limit(pid, row), ["0", "0"], "{row}");
    }
    // Everything the sandbox offers still works under the filter.
    let session = pool.session();
    let out = session
        .compute(
            r#"
            local a = math.randomseed()
            local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
            local big = string.rep("x", 64 << 20)
            local t = {} for i = 1, 100000 do t[i] = tostring(i) end
            print("printed", #big)
            return type(os.date()), os.time({ year = 2020, month = 1, day = 1, hour = 12 }) > 0,
                   type(a), co() + co() + co(), #t, os.clock() >= 0
            "#,
        )
        .unwrap();
    assert_eq!(
        out.values,
        vec![
            HostValue::str("string"),
            HostValue::Bool(true),
            HostValue::str("number"),
            HostValue::Int(6),
            HostValue::Int(100000),
            HostValue::Bool(true),
        ]
    );
    assert_eq!(out.logs, vec![format!("printed\t{}", 64 << 20)]);
    assert_eq!(pool.worker_pids(), vec![pid], "the same worker");
}

#[test]
fn open_socket_and_execve_after_start_fail_or_kill_only_that_worker() {
    for call in ["open", "socket", "execve"] {
        let (_h, pool) = hostile_pool(&format!("confined-{call}"), 2);
        for session in [pool.session(), pool.session()] {
            match session.compute("return 1") {
                Err(ComputeError::WorkerCrashed { message }) => {
                    assert!(message.contains("signal 31"), "{call}: {message}")
                }
                Ok(out) => match out.values.first() {
                    Some(HostValue::Str(s)) if s.starts_with(b"blocked:") => {}
                    other => panic!("{call}: {other:?}"),
                },
                Err(e) => panic!("{call}: {e:?}"),
            }
            // The pool replaced what it lost and goes on.
            wait_for_full_pool(&pool);
        }
    }
}
