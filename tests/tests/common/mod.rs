//! Helpers shared by the end-to-end tests: the shared pool, the binaries and
//! examples on disk, running code in a session, and waiting without timing
//! assumptions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use luapool_supervisor::{ComputeOptions, ComputeOutput, Pool, Session};
use serde_json::Value;

/// How long any wait in these tests may take before it counts as a hang.
/// Generous: CI machines are busy, and a test must hold however slow they are.
pub const HANG: Duration = Duration::from_secs(60);

/// One pool of two workers shared by the tests that do not break workers.
pub fn pool() -> Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::builder()
            .workers(2)
            .build()
            .expect("start a pool (is luapool-worker built? run `cargo test --workspace`)")
    })
    .clone()
}

/// The `luapool` binary that `cargo test --workspace` built next to this
/// test executable (`target/debug/deps/e2e-…` → `target/debug/luapool`).
pub fn luapool_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("luapool"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no luapool binary near {}: run `cargo test --workspace` (it builds it)",
                exe.display()
            )
        })
}

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The path of `examples/<name>`, as a string for command lines.
pub fn example_path(name: &str) -> String {
    examples_dir().join(name).to_string_lossy().into_owned()
}

/// The text of `examples/<name>`.
pub fn example_text(name: &str) -> String {
    std::fs::read_to_string(examples_dir().join(name))
        .unwrap_or_else(|e| panic!("examples/{name}: {e}"))
}

/// Parses JSON text (an example's input file).
pub fn json_text(text: &str) -> Value {
    serde_json::from_str(text).expect("valid JSON")
}

/// Runs `code` named `name` (errors read `name:LINE:`), panicking on failure.
pub fn run_named(s: &Session, name: &str, code: &str) -> ComputeOutput {
    let opts = ComputeOptions {
        chunk_name: Some(format!("@{name}")),
        ..ComputeOptions::default()
    };
    s.compute_with(code, opts)
        .unwrap_or_else(|e| panic!("{name} failed: {e:?}"))
}

/// Runs `code`, panicking on failure.
pub fn run(s: &Session, code: &str) -> ComputeOutput {
    s.compute(code)
        .unwrap_or_else(|e| panic!("compute failed: {e:?}\n--- code:\n{code}"))
}

/// The single value `code` returns, as JSON.
pub fn eval(s: &Session, code: &str) -> Value {
    let mut out = run(s, code);
    assert_eq!(
        out.values.len(),
        1,
        "expected one return value from:\n{code}"
    );
    luapool_supervisor::from_host(out.values.pop().unwrap()).unwrap()
}

/// `_io.output` as JSON.
pub fn output(s: &Session) -> Value {
    s.get_output().expect("get_output")
}

/// Polls `cond` until it holds; panics with `what` after [`HANG`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + HANG;
    while !cond() {
        assert!(Instant::now() < end, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A directory under the system's temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name starts with `tag`.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("luapool-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn file(&self, name: &str, text: impl AsRef<[u8]>) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write a temp file");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
