//! One worker process and its ring: spawning, the ready handshake, killing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use luapool_protocol::{decode, encode, Endpoint, ToSupervisor, ToWorker};

use crate::error::PoolError;

/// How long a new worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running worker process with the supervisor's end of its ring.
pub struct WorkerProc {
    /// The supervisor's end of the ring.
    pub ring: Endpoint,
    child: Child,
}

impl WorkerProc {
    /// Starts a worker and waits until it is ready.
    pub fn spawn(path: &Path, address_space: u64) -> Result<WorkerProc, PoolError> {
        let mut ring = Endpoint::create().map_err(|e| PoolError::Spawn(format!("ring: {e}")))?;
        let mut cmd = Command::new(path);
        cmd.arg("--ring")
            .arg(ring.os_id())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if address_space > 0 {
            cmd.arg("--max-memory").arg(address_space.to_string());
        }
        // A process group of its own: Ctrl-C in a terminal signals the
        // foreground group, which must reach the supervisor (it drains and
        // stops its workers) and not kill the workers under running
        // computes. The worker still dies with its parent (PR_SET_PDEATHSIG).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| PoolError::Spawn(format!("{}: {e}", path.display())))?;
        let pid = child.id() as libc::pid_t;
        ring.set_peer_alive(Box::new(move || is_running(pid)));
        let mut w = WorkerProc { ring, child };
        let mut buf = Vec::new();
        let ready = w.ring.recv(&mut buf, Some(Instant::now() + READY_TIMEOUT));
        match ready
            .map_err(|e| e.to_string())
            .and_then(|_| decode::<ToSupervisor>(&buf).map_err(|e| e.to_string()))
        {
            Ok(ToSupervisor::Ready { .. }) => Ok(w),
            Ok(_) => {
                w.kill();
                Err(PoolError::Spawn(
                    "the worker spoke before saying it was ready".into(),
                ))
            }
            Err(e) => {
                let status = w.kill();
                Err(PoolError::Spawn(format!(
                    "the worker did not get ready ({e}; {status})"
                )))
            }
        }
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has not exited.
    pub fn is_running(&self) -> bool {
        is_running(self.child.id() as libc::pid_t)
    }

    /// Kills the process (SIGKILL), reaps it and describes how it ended.
    pub fn kill(&mut self) -> String {
        let _ = self.child.kill();
        self.reap()
    }

    /// Waits up to `grace` for the process to exit by itself, kills it if it
    /// has not, and describes how it ended.
    pub fn reap_within(&mut self, grace: Duration) -> String {
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.reap();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.kill()
    }

    /// The exit code of a process that exited by itself (after a reap).
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }

    /// Waits for an exited process and describes its status.
    pub fn reap(&mut self) -> String {
        self.ring.close();
        match self.child.wait() {
            Ok(status) => describe(status),
            Err(e) => format!("wait failed: {e}"),
        }
    }

    /// Whether the worker sent something while no compute was running: a
    /// well-behaved worker is silent between its `Done` and the next `Start`,
    /// so a whole message or corrupt bytes here is a protocol violation,
    /// described in the result. (The first frames of an unfinished message
    /// are not seen; they end the next compute as a violation.) Never blocks.
    pub fn unsolicited(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.ring.try_recv(&mut buf) {
            Ok(false) => None,
            Ok(true) => Some(match decode::<ToSupervisor>(&buf) {
                Ok(msg) => format!("unsolicited {} while idle", kind(&msg)),
                Err(e) => format!("unsolicited bytes while idle ({e})"),
            }),
            Err(e) => Some(format!("ring error while idle: {e}")),
        }
    }

    /// Asks the worker to exit; kills it if it has not within `grace`.
    pub fn shutdown(mut self, grace: Duration) {
        let end = Instant::now() + grace;
        let _ = self
            .ring
            .send_deadline(&encode(&ToWorker::Shutdown), Some(end));
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `pid` has not exited yet, without reaping it.
fn is_running(pid: libc::pid_t) -> bool {
    // SAFETY: siginfo_t is plain data; waitid with WNOHANG|WNOWAIT only
    // inspects the child and writes into `info`, which outlives the call.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && info.si_pid() == 0
    }
}

/// The name of a message's kind, for error messages.
fn kind(msg: &ToSupervisor) -> &'static str {
    match msg {
        ToSupervisor::Ready { .. } => "Ready",
        ToSupervisor::Request(_) => "Request",
        ToSupervisor::Log(_) => "Log",
        ToSupervisor::Done(_) => "Done",
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// Finds the worker binary: explicit path, `$LUAPOOL_WORKER`, or next to the
/// running executable (or one directory up, for test binaries in `deps/`).
pub fn find_worker(explicit: Option<&Path>) -> Result<PathBuf, PoolError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(PoolError::WorkerNotFound {
                looked: p.display().to_string(),
            })
        };
    }
    let mut looked = Vec::new();
    if let Some(p) = std::env::var_os("LUAPOOL_WORKER") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join("luapool-worker");
            if p.is_file() {
                return Ok(p);
            }
            looked.push(p);
        }
    }
    let looked = looked
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(PoolError::WorkerNotFound { looked })
}
