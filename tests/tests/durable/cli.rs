//! The command line on a data directory: `luapool run --data DIR --home
//! NAME` and `luapool home list|export|import|drop`.

use std::process::Output;

use serde_json::{json, Value};

use super::TempDir;

pub(super) fn luapool(args: &[&str], stdin: &[u8]) -> Output {
    crate::cli::luapool_run(args, Some(stdin))
}

pub(super) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "luapool failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `code` (a script file in `dir`) on home `home` and returns stdout's JSON.
pub(super) fn run(dir: &TempDir, home: &str, code: &str) -> Output {
    let script = dir.0.with_extension(format!("{home}.lua"));
    std::fs::write(&script, code).unwrap();
    let out = luapool(
        &[
            "run",
            script.to_str().unwrap(),
            "--return",
            "--compact",
            "--data",
            dir.path(),
            "--home",
            home,
        ],
        b"",
    );
    let _ = std::fs::remove_file(&script);
    out
}

#[test]
fn run_with_a_home_keeps_it_between_runs_and_a_failed_run_writes_nothing() {
    let dir = TempDir::new("cli-run");
    let bump = "_home.n = (_home.n or 0) + 1 return _home.n";
    assert_eq!(ok(&run(&dir, "c", bump)).trim(), "1");
    assert_eq!(ok(&run(&dir, "c", bump)).trim(), "2");
    let failed = run(
        &dir,
        "c",
        "_home.n = 100 for _ in pairs(_home) do end error('stop')",
    );
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(ok(&run(&dir, "c", bump)).trim(), "3");
    assert_eq!(ok(&run(&dir, "other", bump)).trim(), "1");
    // --home needs --data, and the other way round.
    let out = luapool(&["run", "x.lua", "--home", "c"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn home_commands_list_export_import_and_drop() {
    let dir = TempDir::new("cli-home");
    ok(&run(
        &dir,
        "a",
        "_home.users = {{name = 'ann'}} _home.n = 1",
    ));
    ok(&run(&dir, "b", "_home.x = true"));
    let list = ok(&luapool(&["home", "list", "--data", dir.path()], b""));
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"], "{list}");

    let exported: Value = serde_json::from_str(&ok(&luapool(
        &["home", "export", "a", "--data", dir.path()],
        b"",
    )))
    .unwrap();
    assert_eq!(exported, json!({"users": [{"name": "ann"}], "n": 1}));

    let backup = serde_json::to_vec(&json!({"n": 41, "restored": [1, 2]})).unwrap();
    ok(&luapool(
        &["home", "import", "a", "-", "--data", dir.path()],
        &backup,
    ));
    assert_eq!(
        ok(&run(
            &dir,
            "a",
            "_home.n = _home.n + 1 return {_home.n, _home.users == nil}"
        ))
        .trim(),
        "[42,true]"
    );

    ok(&luapool(&["home", "drop", "b", "--data", dir.path()], b""));
    let gone = luapool(&["home", "drop", "b", "--data", dir.path()], b"");
    assert_eq!(gone.status.code(), Some(1));
    let missing = luapool(&["home", "export", "b", "--data", dir.path()], b"");
    assert_eq!(missing.status.code(), Some(1));
    let list = ok(&luapool(&["home", "list", "--data", dir.path()], b""));
    assert_eq!(list.lines().count(), 1, "{list}");
}
