//! The `luapool` binary's command line. Also makes `cargo test --workspace`
//! build the binary, which the end-to-end daemon tests (tests/) spawn.

use std::process::Command;

#[test]
fn help_lists_the_run_and_serve_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .arg("--help")
        .output()
        .expect("run luapool --help");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("run") && text.contains("serve"), "{text}");
}

#[test]
fn serve_refuses_tcp_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_luapool"))
        .args([
            "serve",
            "--socket",
            "/nonexistent/luapool.sock",
            "--tcp",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run luapool serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}
