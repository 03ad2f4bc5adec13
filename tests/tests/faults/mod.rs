//! Faults, limits and hostile input, against real worker processes: runaway
//! scripts, memory and store floods, killed and crash-looping workers, a
//! hostile worker speaking the protocol, back-pressure and cancellation.
//!
//! Every test builds its own pool (so it can break it) and asserts what a
//! user would see: the error kind, that the next compute works, that the
//! pool is back to N workers. Waits poll with a generous bound (10-30 s)
//! and never assert a duration.

mod backpressure;
mod confined;
mod conversion;
mod crashes;
mod escapes;
mod hostile;
mod memory;
mod output;
mod runaway;

use crate::common::HANG;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use luapool_supervisor::{ComputeError, ComputeOptions, Pool, PoolBuilder, Session};

/// Tests that measure the supervisor's RSS, or allocate a lot in it, hold
/// this so they do not disturb each other's figures.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A builder for a small test pool: real workers, generous defaults.
pub fn builder(workers: usize) -> PoolBuilder {
    Pool::builder()
        .workers(workers)
        .restart_intensity(1000, Duration::from_secs(60))
}

/// Polls `cond` every 10 ms until it holds; panics after `within`, or after
/// [`HANG`] if that is longer: a busy machine must not fail a test that only
/// waits for something to happen.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let within = within.max(HANG);
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the pool runs all its workers again.
pub fn wait_for_full_pool(pool: &Pool) {
    let n = pool.stats().workers;
    wait_until(
        "the pool is back to N workers",
        Duration::from_secs(20),
        || {
            let s = pool.stats();
            s.alive == n && pool.worker_pids().len() == n
        },
    );
}

/// A compute that must succeed and return one integer.
pub fn int(session: &Session, code: &str) -> i64 {
    let out = session
        .compute(code)
        .unwrap_or_else(|e| panic!("{code}: {e:?}"));
    match out.values.first() {
        Some(luapool_supervisor::HostValue::Int(n)) => *n,
        other => panic!("{code}: expected an integer, got {other:?}"),
    }
}

/// The session still works: a fresh compute returns the right value.
pub fn still_works(session: &Session) {
    assert_eq!(
        int(
            session,
            "local n = 0 for i = 1, 100 do n = n + i end return n"
        ),
        5050
    );
}

/// Options with only the limits set.
pub fn limits(
    timeout: Option<Duration>,
    instructions: Option<u64>,
    memory: Option<u64>,
) -> ComputeOptions {
    ComputeOptions {
        timeout,
        instructions,
        memory,
        ..ComputeOptions::default()
    }
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// This process's RSS once the allocator has handed back what it keeps
/// free (glibc keeps freed blocks per thread arena): what it really holds,
/// not how its allocator happened to fragment.
pub fn own_rss_kib() -> u64 {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe { libc::malloc_trim(0) };
    rss_kib(std::process::id())
}

/// Sends SIGKILL to a worker.
pub fn kill(pid: u32) {
    // SAFETY: kill(2) with a pid of one of our pool's children and SIGKILL.
    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(r, 0, "kill {pid}");
}

/// Asserts the kind of a failed compute and returns its message.
pub fn expect_err(
    r: Result<luapool_supervisor::ComputeOutput, ComputeError>,
    what: &str,
) -> ComputeError {
    match r {
        Ok(out) => panic!("{what}: expected an error, got {:?}", out.values),
        Err(e) => e,
    }
}

/// A hostile worker set up for one attack: a private directory holding a
/// symlink `hostile-ATTACK` to the `hostile_worker` binary (the pool's
/// worker path) and the `victim` file it reads a table id from.
pub struct Hostile {
    dir: PathBuf,
}

impl Hostile {
    pub fn new(attack: &str) -> Hostile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("luapool-hostile-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_hostile_worker"),
            dir.join(format!("hostile-{attack}")),
        )
        .expect("symlink the hostile worker");
        std::fs::write(dir.join("victim"), "0").expect("victim file");
        Hostile {
            dir: dir.join(format!("hostile-{attack}")),
        }
    }

    /// The path to give `PoolBuilder::worker_path`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Tells the attacker which table to go after.
    pub fn set_victim(&self, id: luapool_protocol::TableId) {
        let dir = self.dir.parent().expect("a directory");
        std::fs::write(dir.join("victim"), id.to_string()).expect("victim file");
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A pool whose every worker runs `attack`.
pub fn hostile_pool(attack: &str, workers: usize) -> (Hostile, Arc<Pool>) {
    let h = Hostile::new(attack);
    let pool = builder(workers)
        .worker_path(h.path())
        .limits(luapool_supervisor::Limits {
            timeout: Duration::from_secs(5),
            cpu_time: Duration::ZERO,
            instructions: 0,
            memory: 0,
        })
        .build()
        .unwrap_or_else(|e| panic!("pool of hostile-{attack}: {e}"));
    (h, pool)
}
