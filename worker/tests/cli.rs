//! The worker binary as the supervisor starts it. (Also makes `cargo test`
//! build the real `luapool-worker` binary that the end-to-end tests spawn.)

use std::process::Command;

#[test]
fn worker_without_a_ring_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_luapool-worker"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ring"));
}

#[test]
fn worker_with_a_missing_ring_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_luapool-worker"))
        .args(["--ring", "/luapool-no-such-ring"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("luapool-no-such-ring"));
}
