//! The CPU-time limit: a POSIX timer on the worker thread's own CPU clock.
//!
//! When the compute has used its CPU time, the timer's signal (`SIGXCPU`)
//! arms the stop hook (`stop.rs`); until then it costs nothing per
//! instruction. A compute that does not stop within [`GRACE`] more CPU time
//! (one long C call, such as a pattern match that backtracks for minutes,
//! runs no instruction the hook could stop) makes the worker exit with
//! [`EXIT_CPU_LIMIT`]; the supervisor reports the CPU-time limit and
//! replaces the worker.
//!
//! The clock counts what the worker thread runs: Lua, the worker's Rust
//! code, and its short spins while it waits for the supervisor; not the
//! time it sleeps waiting, nor the supervisor's work.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mlua::ffi::{self, lua_State};

use crate::statics::{CPU_AT_START, CPU_EXPIRED, CPU_EXPIRIES, IN_COMPUTE};

/// More CPU time a stopped compute may use before the worker exits.
pub const GRACE: Duration = Duration::from_secs(1);
/// The exit status of a worker whose compute ran [`GRACE`] past its
/// CPU-time limit (see `luapool_protocol::EXIT_CPU_LIMIT`).
pub const EXIT_CPU_LIMIT: i32 = luapool_protocol::EXIT_CPU_LIMIT;

/// The worker thread's CPU-time timer.
pub struct CpuTimer {
    id: libc::timer_t,
}

/// Why the timer could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the CPU-time timer: {0}")]
pub struct CpuTimerError(std::io::Error);

impl CpuTimer {
    /// Creates the timer (disarmed) and installs its signal handler. Call
    /// on the thread that runs Lua.
    pub fn new() -> Result<CpuTimer, CpuTimerError> {
        // SAFETY: the handler only touches atomics, calls lua_sethook
        // (through stop::arm) and _exit, all async-signal-safe.
        unsafe { crate::stop::on_signal(libc::SIGXCPU, on_expiry) };
        // SAFETY: a zeroed sigevent is valid; timer_create writes `id`.
        unsafe {
            let mut sev: libc::sigevent = std::mem::zeroed();
            sev.sigev_notify = libc::SIGEV_SIGNAL;
            sev.sigev_signo = libc::SIGXCPU;
            let mut id: libc::timer_t = std::mem::zeroed();
            if libc::timer_create(libc::CLOCK_THREAD_CPUTIME_ID, &mut sev, &mut id) != 0 {
                return Err(CpuTimerError(std::io::Error::last_os_error()));
            }
            Ok(CpuTimer { id })
        }
    }

    /// Fires after `limit` of CPU time from now, then every [`GRACE`]
    /// (zero disarms). Resets the count of expiries.
    pub fn arm(&self, limit: Duration) {
        CPU_EXPIRIES.store(0, Ordering::Relaxed);
        let spec = |d: Duration| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        let its = libc::itimerspec {
            it_interval: spec(if limit.is_zero() { limit } else { GRACE }),
            it_value: spec(limit),
        };
        // SAFETY: `id` is our timer; `its` outlives the call.
        unsafe { libc::timer_settime(self.id, 0, &its, std::ptr::null_mut()) };
    }
}

/// CPU time the worker thread has used.
pub fn thread_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Starts `os.clock` at zero for the compute about to run.
pub fn start_clock() {
    CPU_AT_START.store(thread_time().as_nanos() as u64, Ordering::Relaxed);
}

/// The sandbox's `os.clock`: CPU seconds since the compute started (Lua's
/// counts the whole process, every compute the worker ran before).
pub unsafe extern "C-unwind" fn lp_clock(l: *mut lua_State) -> std::ffi::c_int {
    let now = thread_time().as_nanos() as u64;
    let since = now.saturating_sub(CPU_AT_START.load(Ordering::Relaxed));
    ffi::lua_pushnumber(l, since as f64 / 1e9);
    1
}

extern "C" fn on_expiry(_: libc::c_int) {
    if !IN_COMPUTE.load(Ordering::Relaxed) {
        return;
    }
    let n = CPU_EXPIRIES.load(Ordering::Relaxed).saturating_add(1);
    CPU_EXPIRIES.store(n, Ordering::Relaxed);
    if n >= 2 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(EXIT_CPU_LIMIT) };
    }
    CPU_EXPIRED.store(true, Ordering::Relaxed);
    crate::stop::arm();
}
