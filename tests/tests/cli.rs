//! `luapool run` on the examples: JSON on stdout, print lines on stderr,
//! one-line errors with a non-zero exit. Runs the real `luapool` binary
//! (built by `cargo test --workspace`; `luapool/tests/cli.rs` makes cargo
//! build it).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::{example_path as example, luapool_bin, TempDir};

/// Runs `luapool ARGS`, with `stdin` on standard input.
pub(crate) fn luapool_run(args: &[&str], stdin: Option<&[u8]>) -> Output {
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

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "luapool failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
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
/// One return value prints as itself (the examples table checks those),
/// several as an array, none as null.
fn return_prints_several_values_as_an_array_and_none_as_null() {
    let tmp = TempDir::new("cli");
    let many = tmp.file("many.lua", "return 1, 'two', { 3 }\n");
    let out = luapool_run(&["run", &many, "--return"], None);
    assert_eq!(stdout_json(&out), json!([1, "two", [3]]));
    let none = tmp.file("none.lua", "local x = 1\n");
    let out = luapool_run(&["run", &none, "--return"], None);
    assert_eq!(stdout_json(&out), Value::Null);
}

#[test]
fn integers_beyond_64_bits_round_trip_exactly_through_json() {
    let tmp = TempDir::new("cli");
    let script = tmp.file(
        "big.lua",
        "local i = _io.input
         _io.output = { sum = i.a + i.b, a = i.a, neg = -i.a, small = i.small,
                        isbig = bigint.isbigint(i.a), f = i.f, fn = function(x) return x end }\n",
    );
    let input = br#"{"a": 123456789012345678901234567890, "b": 18446744073709551615, "small": 3, "f": 0.1}"#;
    let out = luapool_run(&["run", &script, "--input", "-", "--compact"], Some(input));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        concat!(
            r#"{"a":123456789012345678901234567890,"f":0.1,"fn":"function(x) return x end","#,
            r#""isbig":true,"neg":-123456789012345678901234567890,"small":3,"#,
            r#""sum":123456789030792422974944119505}"#
        )
    );
}

#[test]
fn binary_return_values_are_lossy_in_json() {
    let tmp = TempDir::new("cli");
    let bin = tmp.file("bin.lua", "return 'ok\\xff'\n");
    let out = luapool_run(&["run", &bin, "--return"], None);
    assert_eq!(stdout_json(&out), json!("ok\u{FFFD}"));
}

#[test]
fn print_lines_go_to_stderr_and_only_json_to_stdout() {
    let out = luapool_run(
        &[
            "run",
            &example("pattern5_incremental_fields.lua"),
            "--input",
            &example("pattern5_incremental_fields.json"),
        ],
        None,
    );
    assert_eq!(stdout_json(&out), Value::Null);
    assert_eq!(stderr(&out), "Max items: 100\nCurrent user: Alice\n");
    let out = luapool_run(
        &[
            "run",
            &example("lua_input.lua"),
            "--input",
            &example("lua_input.json"),
            "--compact",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"city\":\"NYC\",\"count\":42,\"message\":\"Hello\",\"userName\":\"Alice\"}\n"
    );
    assert_eq!(stderr(&out), "1\tItem 1\n2\tItem 2\nField exists\n");
}

#[test]
fn meta_file_sets_io_meta() {
    let out = luapool_run(
        &[
            "run",
            &example("set_metadata.lua"),
            "--meta",
            &example("set_metadata.meta.json"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "Request ID: req-12345\n");
    let out = luapool_run(
        &[
            "run",
            &example("bp7_request_metadata.lua"),
            "--input",
            &example("bp7_request_metadata.json"),
            "--meta",
            &example("bp7_request_metadata.meta.json"),
        ],
        None,
    );
    assert_eq!(
        stdout_json(&out),
        json!({ "userId": 123, "itemCount": 3, "total": 60 })
    );
}

#[test]
fn input_from_stdin_chains_the_pattern3_pipeline() {
    let step1 = luapool_run(
        &[
            "run",
            &example("pattern3_filter.lua"),
            "--input",
            &example("pattern3_pipeline.json"),
        ],
        None,
    );
    assert!(step1.status.success(), "{}", stderr(&step1));
    let step2 = luapool_run(
        &["run", &example("pattern3_transform.lua"), "--input", "-"],
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

#[test]
fn workers_option_runs_the_script() {
    let out = luapool_run(
        &[
            "run",
            &example("processing_arrays.lua"),
            "--input",
            &example("processing_arrays.json"),
            "--workers",
            "2",
        ],
        None,
    );
    assert_eq!(stdout_json(&out), json!({ "sum": 15, "count": 5 }));
}

/// Asserts a failed run: non-zero exit, nothing on stdout, one line on stderr; returns it.
fn one_line_failure(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr is not one line: {err:?}"
    );
    assert!(err.starts_with("luapool: "), "{err}");
    err
}

#[test]
fn a_lua_error_exits_non_zero_with_file_and_line() {
    let tmp = TempDir::new("cli");
    let script = tmp.file("boom.lua", "local x = 1\nprint('before')\nerror('boom')\n");
    let out = luapool_run(&["run", &script], None);
    assert!(!out.status.success());
    let err = stderr(&out);
    // The print before the error still reaches stderr, then one error line.
    let mut lines = err.lines();
    assert_eq!(lines.next(), Some("before"));
    let line = lines.next().unwrap_or("");
    assert!(
        line.contains("boom.lua:3:") && line.contains("boom"),
        "{err}"
    );
    assert_eq!(lines.next(), None, "{err}");
    assert!(out.stdout.is_empty());

    let tmp = TempDir::new("cli");
    let runtime = tmp.file("nilcall.lua", "\n\nlocal t = nil\nreturn t.field\n");
    let err = one_line_failure(&luapool_run(&["run", &runtime], None));
    assert!(err.contains("nilcall.lua:4:"), "{err}");
}

#[test]
fn a_syntax_error_exits_non_zero_with_file_and_line() {
    let tmp = TempDir::new("cli");
    let script = tmp.file("syntax.lua", "local x = 1\nlocal y = = 2\n");
    let err = one_line_failure(&luapool_run(&["run", &script], None));
    assert!(err.contains("syntax.lua:2:"), "{err}");
}

#[test]
fn writing_input_exits_non_zero_naming_the_key() {
    let tmp = TempDir::new("cli");
    let script = tmp.file("ro.lua", "_io.input.user = 'x'\n");
    let err = one_line_failure(&luapool_run(
        &["run", &script, "--input", &example("quick_start.json")],
        None,
    ));
    assert!(
        err.contains("ro.lua:1:") && err.contains("read-only") && err.contains("'user'"),
        "{err}"
    );
}

#[test]
fn bad_json_is_a_clear_one_line_error() {
    let tmp = TempDir::new("cli");
    let bad = tmp.file("bad.json", "{ \"a\": 1,\n  oops }\n");
    let err = one_line_failure(&luapool_run(
        &["run", &example("processing_arrays.lua"), "--input", &bad],
        None,
    ));
    assert!(
        err.contains("bad.json") && err.contains("JSON") && err.contains("line 2"),
        "{err}"
    );
    let err = one_line_failure(&luapool_run(
        &["run", &example("processing_arrays.lua"), "--input", "-"],
        Some(b"[1, 2"),
    ));
    assert!(err.contains("JSON"), "{err}");
    let err = one_line_failure(&luapool_run(
        &["run", &example("set_metadata.lua"), "--meta", &bad],
        None,
    ));
    assert!(err.contains("bad.json") && err.contains("JSON"), "{err}");
}

#[test]
fn missing_files_are_a_clear_one_line_error() {
    let err = one_line_failure(&luapool_run(&["run", "/nonexistent/script.lua"], None));
    assert!(err.contains("/nonexistent/script.lua"), "{err}");
    let err = one_line_failure(&luapool_run(
        &[
            "run",
            &example("quick_start.lua"),
            "--input",
            "/nonexistent/in.json",
        ],
        None,
    ));
    assert!(err.contains("/nonexistent/in.json"), "{err}");
    let err = one_line_failure(&luapool_run(
        &[
            "run",
            &example("quick_start.lua"),
            "--meta",
            "/nonexistent/meta.json",
        ],
        None,
    ));
    assert!(err.contains("/nonexistent/meta.json"), "{err}");
}

#[test]
fn help_explains_the_commands_and_options() {
    let out = luapool_run(&["--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Usage: luapool") && text.contains("run") && text.contains("_io"),
        "{text}"
    );
    let out = luapool_run(&["run", "--help"], None);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["SCRIPT", "--input", "--meta", "--workers", "--return"] {
        assert!(
            text.contains(word),
            "`luapool run --help` does not mention {word}:\n{text}"
        );
    }
    assert!(
        text.contains("standard input") || text.contains("stdin"),
        "{text}"
    );
    assert!(
        text.contains("standard error") || text.contains("stderr"),
        "where print goes:\n{text}"
    );
    let out = luapool_run(&["run"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SCRIPT"), "{}", stderr(&out));
}

#[test]
fn an_output_sharing_one_table_3000_times_fails_with_output_too_large() {
    // 3 000 references to 1 MiB: 3 GB of JSON if printed.
    let tmp = TempDir::new("cli");
    let script = tmp.file(
        "shared.lua",
        "local s = ext.table(); s[1] = string.rep('x', 2^20)\n\
         local out = ext.table(); for i = 1, 3000 do out[i] = s end\n\
         _io.output = out\n",
    );
    let err = one_line_failure(&luapool_run(&["run", &script, "--max-output", "64"], None));
    assert!(
        err.contains("output too large") && err.contains("67108864"),
        "{err}"
    );
    // Return values are bounded the same way.
    let ret = tmp.file(
        "shared_return.lua",
        "local s = ext.table(); s[1] = string.rep('x', 2^20)\n\
         local out = ext.table(); for i = 1, 3000 do out[i] = s end\n\
         return out\n",
    );
    let err = one_line_failure(&luapool_run(
        &["run", &ret, "--return", "--max-output", "64"],
        None,
    ));
    assert!(err.contains("output too large"), "{err}");
}

#[test]
fn json_text_longer_than_max_output_fails_even_when_the_data_is_small() {
    // 300 KiB of control characters: 300 KiB stored, 1.8 MiB of JSON escapes.
    let tmp = TempDir::new("cli");
    let script = tmp.file(
        "escapes.lua",
        "_io.output = { s = string.rep('\\1', 300 * 1024) }\n",
    );
    let err = one_line_failure(&luapool_run(
        &["run", &script, "--max-output", "1", "--compact"],
        None,
    ));
    assert!(
        err.contains("output too large") && err.contains("--max-output"),
        "{err}"
    );
    let ok = luapool_run(&["run", &script, "--max-output", "4", "--compact"], None);
    assert_eq!(
        stdout_json(&ok)["s"].as_str().map(str::len),
        Some(300 * 1024)
    );
}
