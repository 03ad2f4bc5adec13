//! Serving one compute: send `Start`, answer the worker's requests from the
//! store within the compute's scope, collect its log lines, and turn how it
//! ended into a result. A worker that times out, breaks the protocol or dies
//! is reported so the caller replaces it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use luapool_protocol::{
    decode, encode_into, FailureKind, Literal, Outcome, RequestErrorKind, RingError, Start,
    TableId, ToSupervisor, ToWorker, Value, EXIT_CPU_LIMIT,
};

use luapool_protocol::api::HostValue;
use luapool_store::{OutputBudget, Scope, Store, StoreError, MAX_NESTING};

use crate::error::ComputeError;
use crate::metrics::ComputeTimes;
use crate::worker_proc::WorkerProc;

/// How often the serving thread looks at the cancel token while it waits.
const POLL: Duration = Duration::from_millis(20);
/// How long a worker that closed its ring gets to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// Log bytes kept per compute in the result (streaming sees all of them).
const MAX_KEPT_LOG_BYTES: usize = 1 << 20;

/// Cancels a queued, waiting or running compute; clones share one flag.
/// Whoever waits on the compute's behalf (for a worker, for its session or
/// its home) hooks itself to the token and stops waiting at once.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    flag: AtomicBool,
    hooks: Mutex<Hooks>,
}

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Hooks {
    next: u64,
    list: Vec<(u64, Hook)>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelToken")
            .field(&self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A new token, not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    /// Asks the compute to stop; it ends with [`ComputeError::Cancelled`].
    pub fn cancel(&self) {
        // SYNC POINT: pairs with the Acquire load in is_cancelled(); the
        // hooks are taken under their lock after the store, so a hook added
        // concurrently either sees the flag or is taken here.
        self.0.flag.store(true, Ordering::Release);
        let hooks = std::mem::take(&mut self.0.hooks.lock().list);
        for (_, hook) in hooks {
            hook();
        }
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        // SYNC POINT: pairs with the Release store in cancel().
        self.0.flag.load(Ordering::Acquire)
    }
    /// Whether both are clones of one token.
    pub fn same(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    /// Runs `hook` once when the token is cancelled: at once (on this
    /// thread) if it is already, else on the cancelling thread. The id
    /// removes it ([`remove_hook`](Self::remove_hook)).
    pub(crate) fn on_cancel(&self, hook: Hook) -> Option<u64> {
        let mut hooks = self.0.hooks.lock();
        if self.is_cancelled() {
            drop(hooks);
            hook();
            return None;
        }
        let id = hooks.next;
        hooks.next += 1;
        hooks.list.push((id, hook));
        Some(id)
    }
    /// Forgets a hook that is no longer needed.
    pub(crate) fn remove_hook(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.0.hooks.lock().list.retain(|(i, _)| *i != id);
        }
    }
}

/// Receives each line a compute prints, as it prints it.
pub type LogSink = Box<dyn FnMut(&str) + Send>;

pub use luapool_protocol::api::ComputeOutput;

/// Receives a compute's result.
pub type Reply = Box<dyn FnOnce(Result<ComputeOutput, ComputeError>) + Send>;

/// What a compute does around its run, on the pool thread that takes it,
/// so that no blocking work (reading a home from disk, waiting for a
/// commit to be durable) runs on the thread that submitted or granted it.
/// Dropping it without [`begin`](Self::begin) leaves nothing to undo.
pub trait Transaction: Send {
    /// Before the worker starts: load what the compute needs and begin its
    /// undo log. An error is the compute's result; the worker is not used.
    fn begin(&mut self) -> Result<(), ComputeError>;
    /// After a successful [`begin`](Self::begin), however the compute
    /// ended: commit (and make durable) or roll back. Returns the result to
    /// reply with (a failed commit turns success into an error), or
    /// [`Settled::Again`].
    fn end(&mut self, result: Result<ComputeOutput, ComputeError>) -> Settled;
}

/// How a compute's transaction ended.
pub enum Settled {
    /// Reply with this result.
    Reply(Result<ComputeOutput, ComputeError>),
    /// Run the compute again: it was rolled back, and what it read is no
    /// longer current (another daemon committed to its shared home). The
    /// pool thread calls [`begin`](Transaction::begin) again, then runs it.
    Again,
}

/// A compute waiting for a worker.
pub struct Job {
    /// What the worker runs (the pool fills in the compute number).
    pub start: Start,
    /// The arenas the compute may touch.
    pub scope: Scope,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Cancellation.
    pub cancel: CancelToken,
    /// How long the worker gets to stop by itself after a cancel before it
    /// is killed.
    pub cancel_grace: Duration,
    /// Streaming of print lines.
    pub on_log: Option<LogSink>,
    /// The most bytes the return values may convert to.
    pub max_output_bytes: u64,
    /// What the pool thread that takes the job does before the worker
    /// starts and after it ends (see [`Transaction`]).
    pub txn: Box<dyn Transaction>,
    /// Where the result goes: called exactly once, on the thread that
    /// settles the compute.
    pub reply: Reply,
    /// When the compute arrived: its wait counts from here.
    pub arrived: Instant,
    /// Where else its wait and run times are counted (besides the pool).
    pub times: Option<Arc<ComputeTimes>>,
}

/// What became of the worker after a compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It is healthy and ready for the next compute.
    Kept,
    /// The supervisor killed it on purpose (wall-clock limit, cancel): it is
    /// replaced, but this is not a crash.
    Killed,
    /// It died by itself or broke the protocol: it is replaced and counted
    /// as a crash (one the compute caused, so not for the crash-loop guard).
    Crashed,
}

/// How serving a compute ended.
pub struct Served {
    /// The compute's result.
    pub result: Result<ComputeOutput, ComputeError>,
    /// Whether the worker can be reused.
    pub fate: Fate,
}

fn killed(w: &mut WorkerProc, e: ComputeError) -> Served {
    w.kill();
    Served {
        result: Err(e),
        fate: Fate::Killed,
    }
}

fn lost(w: &mut WorkerProc, what: &str) -> Served {
    Served {
        result: Err(crashed(w, what)),
        fate: Fate::Crashed,
    }
}

fn wall_clock(timeout: Duration) -> ComputeError {
    ComputeError::Timeout {
        message: format!("wall-clock limit of {timeout:?} reached; worker killed"),
    }
}

/// Runs `job` on `w`, answering its requests from `store`. Every byte from the
/// worker is hostile: a message that does not fit the conversation, a table
/// id outside the compute's scope in its result, or a ring error ends the
/// compute with `WorkerCrashed` and the worker is killed; nothing here waits
/// past the compute's deadline (plus the cancel grace).
pub fn serve(w: &mut WorkerProc, store: &Store, job: &mut Job) -> Served {
    let deadline = Instant::now() + job.timeout;
    let mut out = Vec::with_capacity(4096);
    let mut inb = Vec::with_capacity(4096);
    let mut logs = Vec::new();
    let mut kept_log_bytes = 0;
    let mut quota_hit = false;
    let mut cancel_sent: Option<Instant> = None;

    w.ring.set_cancel(false);
    encode_into(&ToWorker::Start(job.start.clone()), &mut out);
    match w.ring.send_deadline(&out, Some(deadline)) {
        Ok(()) => {}
        Err(RingError::Timeout) => return killed(w, wall_clock(job.timeout)),
        Err(e) => return lost(w, &format!("could not start the compute: {e}")),
    }
    loop {
        let now = Instant::now();
        if now >= deadline {
            return killed(w, wall_clock(job.timeout));
        }
        if cancel_sent.is_none() && job.cancel.is_cancelled() {
            w.ring.set_cancel(true);
            if job.start.limits.instructions == 0 {
                // No instruction budget: the worker runs Lua without a
                // hook, and this signal makes it look at the flag.
                // SAFETY: kill(2) has no memory preconditions; the pid is
                // our child's (a dead one's at worst: ESRCH, ignored).
                unsafe { libc::kill(w.pid() as libc::pid_t, libc::SIGUSR1) };
            }
            cancel_sent = Some(now);
        }
        if let Some(at) = cancel_sent {
            if now >= at + job.cancel_grace {
                return killed(w, ComputeError::Cancelled);
            }
        }
        match w.ring.recv(&mut inb, Some(deadline.min(now + POLL))) {
            Ok(()) => {}
            Err(RingError::Timeout) => continue,
            Err(e @ (RingError::PeerGone | RingError::Closed)) => {
                // It is exiting or gone: let it finish, to report how it ended.
                let status = w.reap_within(EXIT_GRACE);
                if w.exit_code() == Some(EXIT_CPU_LIMIT) {
                    // Stuck in one C call past its CPU time (worker/src/cpu.rs).
                    return Served {
                        result: Err(ComputeError::Timeout {
                            message: format!(
                                "CPU-time limit of {:?} exceeded inside a C function; worker replaced",
                                Duration::from_millis(job.start.limits.cpu_time_ms)
                            ),
                        }),
                        fate: Fate::Killed,
                    };
                }
                return Served {
                    result: Err(ComputeError::WorkerCrashed {
                        message: format!("{e} (worker {status})"),
                    }),
                    fate: Fate::Crashed,
                };
            }
            Err(e) => return lost(w, &format!("protocol violation: {e}")),
        }
        let msg = match decode::<ToSupervisor>(&inb) {
            Ok(m) => m,
            Err(e) => return lost(w, &format!("protocol violation: {e}")),
        };
        match msg {
            ToSupervisor::Request(req) => {
                let error = store.handle_into(&job.scope, req, &mut out);
                quota_hit |= error == Some(RequestErrorKind::Quota);
                match w.ring.send_deadline(&out, Some(deadline)) {
                    Ok(()) => {}
                    Err(RingError::Timeout) => return killed(w, wall_clock(job.timeout)),
                    Err(e) => return lost(w, &e.to_string()),
                }
            }
            ToSupervisor::Log(line) => {
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Some(sink) = job.on_log.as_mut() {
                    sink(&line);
                }
                if kept_log_bytes + line.len() <= MAX_KEPT_LOG_BYTES {
                    kept_log_bytes += line.len();
                    logs.push(line);
                }
            }
            ToSupervisor::Done(outcome) => {
                if let Some(id) = foreign_table(&outcome, &job.scope) {
                    return lost(w, &format!("protocol violation: the result names table {id}, outside the compute's scope"));
                }
                let budget = OutputBudget::new(job.max_output_bytes);
                let result = finish(store, &job.scope, outcome, quota_hit, logs, budget);
                return Served {
                    result,
                    fate: Fate::Kept,
                };
            }
            ToSupervisor::Ready { .. } => {
                return lost(w, "protocol violation: Ready during a compute")
            }
        }
    }
}

/// The first table id in a worker's result that lies outside `scope`. A
/// worker only ever learns ids of its compute's session and home, so any
/// other id is forged. Iterative: the depth of a decoded message is bounded,
/// but this must not rely on it.
fn foreign_table(outcome: &Outcome, scope: &Scope) -> Option<TableId> {
    let Outcome::Returned(lits) = outcome else {
        return None;
    };
    let mut stack: Vec<&Literal> = lits.iter().collect();
    while let Some(lit) = stack.pop() {
        match lit {
            Literal::Value(Value::Table(id)) => {
                let arena = id.arena();
                if arena != scope.session && arena != scope.home {
                    return Some(*id);
                }
            }
            Literal::Value(_) => {}
            Literal::Table { array, hash } => {
                stack.extend(array.iter());
                stack.extend(hash.iter().map(|(_, l)| l));
            }
        }
    }
    None
}

/// Kills the worker (if it still runs) and describes the crash.
fn crashed(w: &mut WorkerProc, what: &str) -> ComputeError {
    let status = w.kill();
    ComputeError::WorkerCrashed {
        message: format!("{what} (worker {status})"),
    }
}

fn finish(
    store: &Store,
    scope: &Scope,
    outcome: Outcome,
    quota_hit: bool,
    logs: Vec<String>,
    mut budget: OutputBudget,
) -> Result<ComputeOutput, ComputeError> {
    match outcome {
        Outcome::Returned(lits) => {
            let values = lits
                .into_iter()
                .map(|l| literal_to_host(store, scope, l, 0, &mut budget))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| match e {
                    StoreError::OutputTooLarge { limit } => ComputeError::OutputTooLarge { limit },
                    e => ComputeError::BadResult {
                        message: e.to_string(),
                    },
                })?;
            Ok(ComputeOutput { values, logs })
        }
        // Kinds, never the message's text. A Lua error after the store
        // refused a write for quota (the script may have caught that one)
        // is the quota's.
        Outcome::Failed(f) => Err(match f.kind {
            FailureKind::Quota => ComputeError::QuotaExceeded { message: f.message },
            FailureKind::LuaError if quota_hit => {
                ComputeError::QuotaExceeded { message: f.message }
            }
            FailureKind::LuaError => ComputeError::LuaError {
                message: f.message,
                traceback: f.traceback,
            },
            FailureKind::InstructionLimit | FailureKind::CpuLimit => {
                ComputeError::Timeout { message: f.message }
            }
            FailureKind::MemoryLimit => ComputeError::MemoryLimit { message: f.message },
            FailureKind::Cancelled => ComputeError::Cancelled,
            FailureKind::ConversionLimit => ComputeError::TooLarge { message: f.message },
            FailureKind::BadResult => ComputeError::BadResult { message: f.message },
        }),
    }
}

/// Converts a returned value within `budget`; table references must be in
/// the compute's scope. Each node of a literal counts as a value of the tree.
fn literal_to_host(
    store: &Store,
    scope: &Scope,
    lit: Literal,
    depth: usize,
    budget: &mut OutputBudget,
) -> Result<HostValue, StoreError> {
    if depth > MAX_NESTING {
        return Err(StoreError::TooDeep);
    }
    match lit {
        Literal::Value(Value::Table(id)) => {
            let arena = id.arena();
            if arena != scope.session && arena != scope.home {
                return Err(StoreError::UnknownTable(id));
            }
            store.extract_within(&Value::Table(id), budget)
        }
        Literal::Value(v) => store.extract_within(&v, budget),
        Literal::Table { array, hash } => {
            budget.charge(std::mem::size_of::<HostValue>() as u64)?;
            if hash.is_empty() && !array.is_empty() {
                let items = array
                    .into_iter()
                    .map(|l| literal_to_host(store, scope, l, depth + 1, budget));
                return Ok(HostValue::Array(items.collect::<Result<_, _>>()?));
            }
            let mut map = Vec::with_capacity(array.len() + hash.len());
            for (i, l) in array.into_iter().enumerate() {
                map.push((
                    luapool_protocol::Key::Int(i as i64 + 1),
                    literal_to_host(store, scope, l, depth + 1, budget)?,
                ));
            }
            for (k, l) in hash {
                let v = literal_to_host(store, scope, l, depth + 1, budget)?;
                if v != HostValue::Nil {
                    map.push((k, v));
                }
            }
            Ok(HostValue::Map(map))
        }
    }
}
