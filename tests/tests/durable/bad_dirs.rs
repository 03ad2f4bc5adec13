//! Bad data directories (issue 14): a path that is a file, a directory the
//! daemon cannot read, a corrupt database file, a directory another running
//! daemon holds. Each is a clear error at start, and nothing is overwritten.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;
use crate::daemon::harness::{fresh_socket_path, luapool_bin, Daemon, HANG};

/// Starts `luapool serve --data DIR`, expecting it to fail at start; returns
/// its standard error. As root, it runs as `nobody` when `unprivileged`, so
/// that file permissions apply.
fn serve_fails(data: &str, unprivileged: bool) -> String {
    let socket = fresh_socket_path();
    let mut cmd = Command::new(luapool_bin());
    cmd.args(["serve", "--workers", "1", "--socket"])
        .arg(&socket)
        .args(["--data", data])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: geteuid(2) has no preconditions.
    if unprivileged && unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    let mut child = cmd.spawn().expect("spawn luapool serve");
    let end = Instant::now() + HANG;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "luapool serve --data {data} did not fail"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        !status.success(),
        "luapool serve --data {data} started: {err}"
    );
    let _ = std::fs::remove_file(&socket);
    err
}

#[test]
fn a_data_path_that_is_a_file_is_refused_and_kept() {
    let dir = TempDir::new("is-a-file");
    std::fs::write(&dir.0, b"my notes").unwrap();
    let err = serve_fails(dir.path(), false);
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(std::fs::read(&dir.0).unwrap(), b"my notes");
    let _ = std::fs::remove_file(&dir.0);
}

#[test]
fn an_unreadable_data_directory_is_refused() {
    let dir = TempDir::new("unreadable");
    std::fs::create_dir(&dir.0).unwrap();
    std::fs::write(dir.0.join("keep"), b"x").unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o000)).unwrap();
    let err = serve_fails(dir.path(), true);
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        err.contains("cannot use") && err.contains("Permission denied"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        1,
        "nothing was created"
    );
}

#[test]
fn a_corrupt_database_file_is_refused_and_left_untouched() {
    let dir = TempDir::new("corrupt");
    std::fs::create_dir(&dir.0).unwrap();
    let junk: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(dir.0.join("homes.db"), &junk).unwrap();
    let err = serve_fails(dir.path(), false);
    assert!(err.contains("corrupt") && err.contains("homes.db"), "{err}");
    assert_eq!(std::fs::read(dir.0.join("homes.db")).unwrap(), junk);

    // A database whose homes table is damaged: refused too, bytes kept.
    let dir2 = TempDir::new("damaged");
    {
        let d = Daemon::start(&["--data", dir2.path()]);
        d.client()
            .session_with_home("h")
            .unwrap()
            .compute("_home.x = string.rep('x', 100000)")
            .unwrap();
    }
    let db = dir2.0.join("homes.db");
    // Fold the WAL into the file (a clean open and close does), then damage
    // every page after the first.
    drop(luapool_homes::SqliteHomes::open(&dir2.0).unwrap());
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().skip(4096) {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let err = serve_fails(dir2.path(), false);
    assert!(
        err.contains("corrupt") || err.contains("malformed"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

#[test]
fn a_data_directory_held_by_a_running_daemon_is_refused() {
    let dir = TempDir::new("held");
    let first = Daemon::start(&["--data", dir.path()]);
    let s = first.client().session_with_home("h").unwrap();
    s.compute("_home.n = 7").unwrap();
    let err = serve_fails(dir.path(), false);
    assert!(
        err.contains("in use by another luapool process")
            && err.contains(&format!("pid {}", first.child.id())),
        "{err}"
    );
    // The first daemon and its home are untouched.
    let out = s.compute("_home.n = _home.n + 1 return _home.n").unwrap();
    assert_eq!(out.value::<i64>(0).unwrap(), 8);
    // And `luapool home --data` is refused too while it runs (it points
    // at the socket: `daemon/homes.rs`).
    let out = Command::new(luapool_bin())
        .args(["home", "list", "--data", dir.path()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("held by a running daemon"), "{err}");
}
