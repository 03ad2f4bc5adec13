//! The worker's OS confinement, applied once after start-up (the ring is
//! mapped, the Lua state built, the timer made), before the first compute:
//! defense in depth under the Lua sandbox, for a script that found a way
//! out of it.
//!
//! - Every file descriptor is closed, stdin, stdout and stderr included:
//!   the ring is a memory mapping and needs none. What the worker would
//!   have printed after start-up is lost; the supervisor learns why a
//!   worker ended from its exit status (and the ring).
//! - rlimits: no new files (`RLIMIT_NOFILE` 0), no processes
//!   (`RLIMIT_NPROC` 0), no file writes (`RLIMIT_FSIZE` 0), no core dumps.
//! - Not dumpable (no core, no ptrace by an unprivileged peer, `/proc`
//!   files owned by root), `no_new_privs` set.
//! - A seccomp allowlist of the system calls the worker needs from then
//!   on, built with `seccompiler` (rust-vmm's, used by Firecracker: pure
//!   Rust, no libseccomp to link). Any other call kills the process
//!   (`SIGSYS`); memory may never be mapped executable. Open, socket,
//!   exec, fork, ptrace, kill of another process: all refused.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Why the confinement could not be applied (the worker then exits).
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A system call of the set-up failed.
    #[error("{what}: {err}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        err: std::io::Error,
    },
    /// The seccomp filter could not be built or applied.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

fn os(what: &'static str, rc: libc::c_long) -> Result<(), ConfineError> {
    if rc < 0 {
        return Err(ConfineError::Os {
            what,
            err: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Warms up what libc would otherwise open a file for later (and turns
/// off Rust's backtraces, which would): the time zone. With `TZ` unset, glibc looks at `/etc/localtime` again at every
/// `os.date`; with `TZ` set (to that file, the same zone) it reads it once,
/// here, and never again while `TZ` stays the same.
pub fn prepare() {
    // A Rust abort (an allocation the OS refused) must not go looking for
    // files to print a backtrace with.
    std::env::set_var("RUST_BACKTRACE", "0");
    if std::env::var_os("TZ").is_none() {
        // The worker has one thread here: nothing reads the environment
        // concurrently.
        std::env::set_var("TZ", ":/etc/localtime");
    }
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset has no preconditions; localtime_r and mktime write
    // only the structs we pass.
    unsafe {
        tzset();
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        libc::mktime(&mut tm);
    }
}

/// Applies the confinement to the calling process (all of it: call while
/// it has one thread). Irreversible.
pub fn confine() -> Result<(), ConfineError> {
    prepare();
    // SAFETY: close_range closes descriptors only; nothing of ours holds
    // one it still uses (the ring is mapped, stdio is not used again).
    os("close_range", unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32)
    })?;
    for (what, res) in [
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ] {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `zero` outlives the call.
        os(what, unsafe { libc::setrlimit(res, &zero) } as libc::c_long)?;
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        os(
            "PR_SET_DUMPABLE",
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) as _,
        )?;
        os(
            "PR_SET_NO_NEW_PRIVS",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as _,
        )?;
    }
    let filter = filter()?;
    seccompiler::apply_filter(&filter).map_err(|e| ConfineError::Seccomp(e.to_string()))
}

/// The system calls a worker makes after start-up, and no more.
const ALLOWED: &[libc::c_long] = &[
    // The ring: futex waits and wakes, a spin that yields, the peer check.
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_getppid,
    // Memory (glibc's malloc); mmap and mprotect below, never executable.
    libc::SYS_brk,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    // Clocks (the thread's CPU clock is not in the vDSO), the CPU-time
    // timer, a random seed per compute.
    libc::SYS_clock_gettime,
    libc::SYS_timer_settime,
    libc::SYS_getrandom,
    // Signals: the cancel and CPU-time handlers return; abort() raises.
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_restart_syscall,
    libc::SYS_getpid,
    libc::SYS_gettid,
    // Exit: the ring's mapping and descriptors are released.
    libc::SYS_close,
    libc::SYS_sigaltstack,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// A system call number as seccompiler takes it (`c_long` is `i64` on the
/// 64-bit targets, narrower elsewhere).
#[allow(clippy::useless_conversion)]
fn nr(n: libc::c_long) -> i64 {
    i64::from(n)
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, ConfineError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| ConfineError::Seccomp(e.to_string()))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, ConfineError> {
    SeccompRule::new(conds).map_err(|e| ConfineError::Seccomp(e.to_string()))
}

/// The filter: [`ALLOWED`]; `mmap` and `mprotect` without `PROT_EXEC`;
/// `write` to stderr only (closed: a late message is dropped, not fatal);
/// `tgkill` of this process only (abort).
fn filter() -> Result<BpfProgram, ConfineError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&n| (nr(n), Vec::new())).collect();
    let no_exec = || cond(2, SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64), 0);
    rules.insert(nr(libc::SYS_mmap), vec![rule(vec![no_exec()?])?]);
    rules.insert(nr(libc::SYS_mprotect), vec![rule(vec![no_exec()?])?]);
    rules.insert(
        nr(libc::SYS_write),
        vec![rule(vec![cond(0, SeccompCmpOp::Eq, 2)?])?],
    );
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    rules.insert(
        nr(libc::SYS_tgkill),
        vec![rule(vec![cond(0, SeccompCmpOp::Eq, pid)?])?],
    );
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| ConfineError::Seccomp(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| ConfineError::Seccomp(e.to_string()))
}
