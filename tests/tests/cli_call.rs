//! `luapool call` and `luapool stats` against a real daemon: the output and
//! exit codes of `luapool run`, print lines streamed to stderr, homes kept
//! between calls, and the daemon's figures for people and as JSON. (Every
//! example case also goes through `luapool call` in `examples.rs`.)

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{example_path as example, luapool_bin, TempDir};
use crate::daemon::harness::{fresh_socket_path, Daemon, HANG};

/// Runs `luapool ARGS` with `stdin` on standard input.
fn luapool(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(luapool_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn luapool");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().expect("wait for luapool")
}

/// `luapool call --socket SOCKET ARGS`.
fn call(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let socket = d.socket.to_string_lossy();
    let mut all = vec!["call", "--socket", &socket];
    all.extend_from_slice(args);
    luapool(&all, stdin)
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "luapool failed: {}\n{}",
        out.status,
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn call_against_a_missing_socket_says_so_in_one_line_and_exits_2() {
    let missing = fresh_socket_path();
    let out = luapool(
        &[
            "call",
            "--socket",
            &missing.to_string_lossy(),
            &example("quick_start.lua"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("luapool: cannot connect to ")
            && err.contains(&*missing.to_string_lossy())
            && err.contains("luapool serve"),
        "{err}"
    );
    // So does `luapool stats`.
    let out = luapool(&["stats", "--socket", &missing.to_string_lossy()], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn a_lua_error_through_call_exits_1_with_file_and_line_after_its_prints() {
    let d = Daemon::start(&[]);
    let tmp = TempDir::new("call");
    let script = tmp.file("boom.lua", "local x = 1\nprint('before')\nerror('boom')\n");
    let out = call(&d, &[&script], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(lines[0], "before");
    assert!(
        lines[1].starts_with("luapool: ") && lines[1].contains("boom.lua:3: boom"),
        "{err}"
    );
    // Bad JSON is bad input (2), as for `run`.
    let bad = tmp.file("bad.json", "{ oops");
    let out = call(&d, &[&script, "--input", &bad], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.json") && stderr(&out).contains("JSON"));
}

#[test]
fn call_return_prints_several_values_as_an_array_and_none_as_null() {
    let d = Daemon::start(&[]);
    let tmp = TempDir::new("call");
    let many = tmp.file("many.lua", "return 1, 'two', { 3 }\n");
    assert_eq!(
        stdout_json(&call(&d, &[&many, "--return"], None)),
        json!([1, "two", [3]])
    );
    let one = tmp.file(
        "one.lua",
        "_io.output = { ignored = true } return { a = 1 }\n",
    );
    assert_eq!(
        stdout_json(&call(&d, &[&one, "--return", "--compact"], None)),
        json!({ "a": 1 })
    );
    let none = tmp.file("none.lua", "local x = 1\n");
    assert_eq!(
        stdout_json(&call(&d, &[&none, "--return"], None)),
        Value::Null
    );
}

#[test]
fn call_with_home_keeps_home_between_calls_and_without_it_does_not() {
    let d = Daemon::start(&[]);
    let tmp = TempDir::new("call");
    let count = tmp.file(
        "count.lua",
        "_home.n = (_home.n or 0) + 1\n_io.output = { n = _home.n }\n",
    );
    for n in 1..=2 {
        let out = call(&d, &[&count, "--home", "counter"], None);
        assert_eq!(stdout_json(&out), json!({ "n": n }));
    }
    // A private home each time, and another name is another home.
    assert_eq!(stdout_json(&call(&d, &[&count], None)), json!({ "n": 1 }));
    assert_eq!(stdout_json(&call(&d, &[&count], None)), json!({ "n": 1 }));
    let other = call(&d, &[&count, "--home", "other"], None);
    assert_eq!(stdout_json(&other), json!({ "n": 1 }));
}

#[test]
fn call_reads_input_from_stdin_and_chains_the_pattern3_pipeline() {
    let d = Daemon::start(&[]);
    let step1 = call(
        &d,
        &[
            &example("pattern3_filter.lua"),
            "--input",
            &example("pattern3_pipeline.json"),
        ],
        None,
    );
    assert!(step1.status.success(), "{}", stderr(&step1));
    let step2 = call(
        &d,
        &[&example("pattern3_transform.lua"), "--input", "-"],
        Some(&step1.stdout),
    );
    assert_eq!(
        stdout_json(&step2),
        json!({ "items": [
            { "id": 1, "fullName": "Ada Lovelace", "age": 30 },
            { "id": 3, "fullName": "Grace Hopper", "age": 41 }
        ] })
    );
}

/// A daemon without a CPU-time limit, and `luapool call` of a script that
/// prints `first` and then loops until the test stops it: the call and its
/// stderr, once `first` has come (while the compute runs).
fn endless_call() -> (Daemon, Child, BufReader<ChildStderr>) {
    let d = Daemon::start(&["--cpu-time", "0", "--max-cpu-time", "0", "--timeout", "100"]);
    let tmp = TempDir::new("call");
    let script = tmp.file("slow.lua", "print('first')\nwhile true do end\n");
    let mut child = Command::new(luapool_bin())
        .args(["call", "--socket", &d.socket.to_string_lossy(), &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn luapool call");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    (d, child, stderr)
}

#[test]
fn call_streams_print_lines_while_the_compute_runs() {
    let (d, mut child, _stderr) = endless_call();
    // The compute never ends by itself: the line came while it ran.
    assert!(child.try_wait().unwrap().is_none(), "call ended early");
    child.kill().unwrap();
    child.wait().unwrap();
    // Its disconnect cancelled the compute: the workers are free.
    d.workers_are_free();
}

#[test]
fn call_whose_daemon_is_killed_mid_compute_says_so_in_one_line_and_exits_2() {
    let (mut d, mut child, mut stderr) = endless_call();
    d.signal(libc::SIGKILL);
    d.wait_exit();
    // Never a hang: the call ends once the daemon is gone.
    let end = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            child.kill().unwrap();
            panic!("luapool call still waits for a daemon that is gone");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(
        rest,
        "luapool: the daemon closed the connection (end of stream)\n"
    );
}

#[test]
fn stats_prints_the_daemons_figures_for_people_and_as_json() {
    let d = Daemon::start(&[]);
    let tmp = TempDir::new("call");
    let ok = tmp.file("ok.lua", "return 1\n");
    let boom = tmp.file("boom.lua", "error('boom')\n");
    for _ in 0..3 {
        assert!(call(&d, &[&ok], None).status.success());
    }
    assert_eq!(call(&d, &[&boom], None).status.code(), Some(1));
    let op = d.operator.to_string_lossy().into_owned();

    let out = luapool(&["stats", "--socket", &op, "--json"], None);
    let s = stdout_json(&out);
    assert_eq!(s["scope"], "daemon");
    assert_eq!(s["computes"], 4);
    assert_eq!(s["errors"]["LuaError"], 1);
    assert_eq!(s["errors"]["Timeout"], 0);
    assert_eq!(
        (s["wait"]["count"].clone(), s["run"]["count"].clone()),
        (json!(4), json!(4))
    );
    assert_eq!(s["worker_states"].as_array().map(Vec::len), Some(2));

    let out = luapool(&["stats", "--socket", &op], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "the whole daemon",
        "2 alive of 2",
        "worker 0:",
        "worker 1:",
        "4 finished",
        "(4 computes)",
        "errors:       LuaError 1",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }

    // On the client socket: this connection's own figures, which are none.
    let mine = d.socket.to_string_lossy().into_owned();
    let s = stdout_json(&luapool(&["stats", "--socket", &mine, "--json"], None));
    assert_eq!(s["scope"], "connection");
    assert_eq!(
        (s["wait"]["count"].clone(), s["errors"]["LuaError"].clone()),
        (json!(0), json!(0))
    );
    assert!(s.get("worker_states").is_none() && s.get("computes").is_none());
}

#[test]
fn help_of_call_and_stats_explains_them() {
    let out = luapool(&["call", "--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "SCRIPT",
        "--socket",
        "--input",
        "--meta",
        "--home",
        "--return",
        "standard error",
        "Exit status",
    ] {
        assert!(
            text.contains(word),
            "`luapool call --help` lacks {word}:\n{text}"
        );
    }
    let out = luapool(&["stats", "--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["--socket", "--json", "operator", "p99"] {
        assert!(
            text.contains(word),
            "`luapool stats --help` lacks {word}:\n{text}"
        );
    }
    let out = luapool(&["--help"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("call") && text.contains("stats"), "{text}");
    let out = luapool(&["call", &example("quick_start.lua")], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--socket"), "{}", stderr(&out));
}
