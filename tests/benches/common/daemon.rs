//! The benches' daemon: the release `luapool serve` as a child process,
//! killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release build's directory.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.ancestors().nth(3).expect("target dir").join("release")
}

/// A `luapool serve` child with 2 workers; killed on drop. The release
/// `luapool`, or the one `LUAPOOL_BENCH_BIN` names (to compare builds; the
/// worker next to it is used).
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
}

impl Daemon {
    /// Starts one (socket named after `name`) with `args` (its home store),
    /// and says how long it took to listen.
    pub fn start(name: &str, args: &[&str]) -> (Daemon, Duration) {
        let bin = std::env::var_os("LUAPOOL_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("luapool"));
        assert!(
            bin.exists(),
            "{} is missing: cargo build --release --workspace",
            bin.display()
        );
        let socket =
            std::env::temp_dir().join(format!("luapool-bench-{}-{name}.sock", std::process::id()));
        let t = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--workers", "2", "--socket"])
            .arg(&socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn luapool serve");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("workers)") {
            line.clear();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("luapool serve exited: {line}");
            }
        }
        let up = t.elapsed();
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        (Daemon { child, socket }, up)
    }
}

impl Daemon {
    /// The daemon's process id.
    #[allow(dead_code)] // not every bench reads it
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
