//! Durable homes (issue 14) with real workers and a real data directory:
//! the Rust API here, the CLI in `cli.rs`, the daemon killed with -9 in
//! `crash.rs`, bad directories in `bad_dirs.rs`, where the disk work runs
//! (a backend that holds it) in `slow_disk.rs`.

mod api;
mod bad_dirs;
mod cli;
mod crash;
mod functions;
mod slow_disk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use luapool_supervisor::{HostValue, Pool, PoolBuilder, Session};

/// A data directory path that does not exist yet (`.0`), inside a fresh
/// temporary directory removed on drop.
pub struct TempDir(
    pub PathBuf,
    #[allow(dead_code)] // held for its Drop, which removes the directory
    crate::common::TempDir,
);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let parent = crate::common::TempDir::new(&format!("data-{name}"));
        TempDir(parent.path().join("data"), parent)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

/// A pool of one worker keeping its homes in `dir`.
pub fn builder(dir: &TempDir) -> PoolBuilder {
    Pool::builder()
        .workers(1)
        .data_dir(&dir.0)
        .restart_intensity(1000, Duration::from_secs(60))
}

pub fn pool(dir: &TempDir) -> Arc<Pool> {
    builder(dir).build().expect("a pool on the data directory")
}

/// The one integer a compute returns.
pub fn int(s: &Session, code: &str) -> i64 {
    match s
        .compute(code)
        .unwrap_or_else(|e| panic!("{code}: {e}"))
        .values
        .first()
    {
        Some(HostValue::Int(n)) => *n,
        other => panic!("{code}: expected an integer, got {other:?}"),
    }
}
