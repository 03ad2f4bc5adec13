//! One table of example cases, run down every way in: the embedded session
//! API, the `luapool run` command line, the daemon through `luapool-client`,
//! and the daemon through `luapool call` (as ripgrep's `SearcherTester`
//! runs one case down every code path). Each case is a script of `examples/` with its input and
//! metadata files and what the reference says it produces; a way in that
//! disagrees with the table fails with every mismatch listed.
//!
//! Examples whose host side needs more than "set input, set metadata,
//! compute" (several computes, `set_input_field`, `clear_io`) are in
//! `reference.rs`, through the embedded API.

use std::process::{Command, Stdio};

use luapool_supervisor::{from_host, ComputeError, ComputeOptions, HostValue};
use serde_json::{json, Value};

use crate::common::{example_path, example_text, json_text, luapool_bin, pool};
use crate::daemon::harness::Daemon;

/// One example and what it must produce.
struct Case {
    /// The script, in `examples/`.
    script: &'static str,
    /// Its input file (`--input`), if any.
    input: Option<&'static str>,
    /// Its metadata file (`--meta`), if any.
    meta: Option<&'static str>,
    /// `_io.output` afterwards, as JSON (`null` when unset), normalised.
    output: Value,
    /// The return values, as a JSON array.
    returns: Value,
    /// The lines it prints.
    logs: &'static [&'static str],
}

/// Sorts `output.groups` by `userId`: Pattern 4 builds its groups from a
/// Lua table's `pairs`, whose order is not defined.
fn normalise(script: &str, mut output: Value) -> Value {
    if script == "pattern4_aggregation.lua" {
        if let Some(groups) = output.get_mut("groups").and_then(Value::as_array_mut) {
            groups.sort_by_key(|g| g["userId"].as_i64());
        }
    }
    output
}

fn cases() -> Vec<Case> {
    let case = |script, input, meta, output, returns, logs| Case {
        script,
        input,
        meta,
        output,
        returns,
        logs,
    };
    vec![
        case(
            "quick_start.lua",
            Some("quick_start.json"),
            None,
            json!({ "message": "Hello, Alice", "isAdult": true, "userId": 123 }),
            json!(["success"]),
            &[],
        ),
        case(
            "processing_arrays.lua",
            Some("processing_arrays.json"),
            None,
            json!({ "sum": 15, "count": 5 }),
            json!([]),
            &[],
        ),
        case(
            "get_output.lua",
            None,
            None,
            json!({ "result": "processed", "count": 10, "items": [1, 2, 3] }),
            json!([]),
            &[],
        ),
        case(
            "set_metadata.lua",
            None,
            Some("set_metadata.meta.json"),
            Value::Null,
            json!([]),
            &["Request ID: req-12345"],
        ),
        case(
            "lua_input.lua",
            Some("lua_input.json"),
            None,
            json!({ "message": "Hello", "count": 42, "userName": "Alice", "city": "NYC" }),
            json!([]),
            &["1\tItem 1", "2\tItem 2", "Field exists"],
        ),
        case(
            "lua_output.lua",
            Some("lua_input.json"),
            None,
            json!({ "count": 2 }),
            json!([]),
            &[],
        ),
        case(
            "lua_meta.lua",
            None,
            Some("set_metadata.meta.json"),
            json!({ "itemsProcessed": 100 }),
            json!([]),
            &["Request ID: req-12345", "Version: 1.0.0"],
        ),
        case(
            "pattern1_request_response.lua",
            Some("pattern1_request_response.json"),
            None,
            // The reference's JavaScript prints `average: 3`; Lua's 15 / 5 is the float 3.0.
            json!({ "sum": 15, "average": 3.0, "count": 5 }),
            json!([]),
            &[],
        ),
        case(
            "pattern4_aggregation.lua",
            Some("pattern4_aggregation.json"),
            None,
            json!({ "groups": [
                { "userId": 1, "total": 175, "count": 2 },
                { "userId": 2, "total": 175, "count": 2 }
            ] }),
            json!([]),
            &[],
        ),
        case(
            "pattern6_error_handling.lua",
            Some("pattern6_error_handling.json"),
            None,
            json!({ "status": "error", "error": "pattern6_error_handling.lua:6: Division by zero", "code": "MATH_ERROR" }),
            json!([]),
            &[],
        ),
        case(
            "bp2_validate_input.lua",
            Some("bp2_valid_user.json"),
            None,
            json!({ "userId": 7 }),
            json!([]),
            &[],
        ),
        case(
            "bp2_validate_input.lua",
            Some("bp2_bad_user_id.json"),
            None,
            json!({ "error": "Invalid user ID" }),
            json!([]),
            &[],
        ),
        case(
            "bp3_meaningful_structure.lua",
            Some("bp3_meaningful_structure.json"),
            None,
            json!({ "method": "processOrders", "userId": 123, "orderCount": 2, "total": 35.5, "version": "1.0" }),
            json!([]),
            &[],
        ),
        case(
            "bp4_null_handling.lua",
            Some("bp4_null_handling.json"),
            None,
            Value::Null,
            json!([]),
            &["value is nil", "missing is nil"],
        ),
        case(
            "bp7_request_metadata.lua",
            Some("bp7_request_metadata.json"),
            Some("bp7_request_metadata.meta.json"),
            json!({ "userId": 123, "itemCount": 3, "total": 60 }),
            json!([]),
            &["Request ID: 6f1c2a9e-5b7d-4c1e-9f3a-2d8b7e6c5a41"],
        ),
        case(
            "comparison_old_approach.lua",
            None,
            None,
            Value::Null,
            json!([15]),
            &[],
        ),
        case(
            "comparison_new_approach.lua",
            Some("comparison_new_approach.json"),
            None,
            json!({ "sum": 15, "count": 5, "average": 3.0 }),
            json!([]),
            &[],
        ),
        case(
            "migration_before.lua",
            None,
            None,
            Value::Null,
            json!(["6"]),
            &[],
        ),
        case(
            "deep_nesting.lua",
            Some("deep_nesting.json"),
            None,
            Value::Null,
            json!(["deep value"]),
            &["deep value"],
        ),
        case(
            "type_conversions.lua",
            Some("type_conversions.json"),
            None,
            json!({ "bool": false, "int": 123, "str": "hello", "object": { "a": 1, "b": 2 }, "array": [1, 2, 3] }),
            json!([]),
            &[
                "array\ttable",
                "false\tboolean",
                "float\tnumber",
                "number\tnumber",
                "object\ttable",
                "string\tstring",
                "true\tboolean",
                "null\tnil\tundefined\tnil",
            ],
        ),
    ]
}

/// What one way in saw of a case.
#[derive(Debug, PartialEq)]
struct Seen {
    output: Value,
    returns: Value,
    logs: Vec<String>,
}

/// Runs every case through `way` and fails with all the mismatches.
fn check_every_case(name: &str, mut way: impl FnMut(&Case) -> Result<Seen, String>) {
    let mut wrong = Vec::new();
    for c in cases() {
        let want = Seen {
            output: normalise(c.script, c.output.clone()),
            returns: c.returns.clone(),
            logs: c.logs.iter().map(|l| l.to_string()).collect(),
        };
        match way(&c) {
            Ok(mut got) => {
                got.output = normalise(c.script, got.output);
                if got != want {
                    wrong.push(format!(
                        "{} ({:?}):\n  want {want:?}\n  got  {got:?}",
                        c.script, c.input
                    ));
                }
            }
            Err(e) => wrong.push(format!("{} ({:?}) failed: {e}", c.script, c.input)),
        }
    }
    assert!(wrong.is_empty(), "{name}:\n{}", wrong.join("\n"));
}

fn json_of(values: Vec<HostValue>) -> Value {
    Value::Array(
        values
            .into_iter()
            .map(|v| from_host(v).expect("a returned value converts to JSON"))
            .collect(),
    )
}

#[test]
fn every_example_case_through_the_embedded_api() {
    check_every_case("embedded", |c| {
        let s = pool().session();
        if let Some(f) = c.input {
            s.set_input(&json_text(&example_text(f)))
                .map_err(|e| e.to_string())?;
        }
        if let Some(f) = c.meta {
            s.set_metadata(&json_text(&example_text(f)))
                .map_err(|e| e.to_string())?;
        }
        let opts = ComputeOptions {
            chunk_name: Some(format!("@{}", c.script)),
            ..ComputeOptions::default()
        };
        let out = s
            .compute_with(&example_text(c.script), opts)
            .map_err(|e: ComputeError| e.to_string())?;
        Ok(Seen {
            output: s.get_output().map_err(|e| e.to_string())?,
            returns: json_of(out.values),
            logs: out.logs,
        })
    });
}

#[test]
fn every_example_case_through_luapool_run() {
    through_the_command_line("luapool run", &["run"]);
}

#[test]
fn every_example_case_through_luapool_call() {
    let daemon = Daemon::start(&[]);
    let socket = daemon.socket.to_string_lossy();
    through_the_command_line("luapool call", &["call", "--socket", &socket]);
}

/// Runs every case through `luapool COMMAND...`, once for `_io.output` and
/// once with `--return`; the print lines are what it writes to stderr.
fn through_the_command_line(name: &str, command: &[&str]) {
    check_every_case(name, |c| {
        let mut args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        args.push(example_path(c.script));
        if let Some(f) = c.input {
            args.extend(["--input".into(), example_path(f)]);
        }
        if let Some(f) = c.meta {
            args.extend(["--meta".into(), example_path(f)]);
        }
        let run = |extra: &[&str]| {
            let out = Command::new(luapool_bin())
                .args(&args)
                .args(extra)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            let logs = String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>();
            Ok((json, logs))
        };
        let (output, logs) = run(&[])?;
        // `--return` prints one value as itself, several as an array, none as null.
        let (returned, _) = run(&["--return"])?;
        let returns = match (returned, c.returns.as_array().map(Vec::len)) {
            (Value::Null, Some(0)) => json!([]),
            (v, Some(1)) => json!([v]),
            (v, _) => v,
        };
        Ok(Seen {
            output,
            returns,
            logs,
        })
    });
}

#[test]
fn every_example_case_through_the_daemon() {
    let daemon = Daemon::start(&[]);
    let client = daemon.client();
    check_every_case("daemon", |c| {
        let s = client.session().map_err(|e| e.to_string())?;
        if let Some(f) = c.input {
            s.set_input(&json_text(&example_text(f)))
                .map_err(|e| e.to_string())?;
        }
        if let Some(f) = c.meta {
            s.set_metadata(&json_text(&example_text(f)))
                .map_err(|e| e.to_string())?;
        }
        let opts = luapool_client::ComputeOptions {
            chunk_name: Some(format!("@{}", c.script)),
            ..Default::default()
        };
        let out = s
            .compute_with(&example_text(c.script), opts)
            .map_err(|e| e.to_string())?;
        Ok(Seen {
            output: s.get_output().map_err(|e| e.to_string())?,
            returns: json_of(out.values),
            logs: out.logs,
        })
    });
}
