//! Serving one compute: send `Start`, answer the worker's requests from the
//! store within the compute's scope, collect its log lines, and turn how it
//! ended into a result. A worker that times out, breaks the protocol or dies
//! is reported so the caller replaces it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_protocol::{
    decode, encode_into, FailureKind, Literal, Outcome, Reply, RequestErrorKind, RingError, Start, ToSupervisor,
    ToWorker, Value,
};

use crate::error::ComputeError;
use crate::host_value::HostValue;
use crate::store::{Scope, Store};
use crate::worker_proc::WorkerProc;

/// How long a worker gets to stop by itself after a cancel before it is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(1);
/// How often the serving thread looks at the cancel token while it waits.
const POLL: Duration = Duration::from_millis(20);
/// Log bytes kept per compute in the result (streaming sees all of them).
const MAX_KEPT_LOG_BYTES: usize = 1 << 20;

/// Cancels a queued or running compute; clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A new token, not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    /// Asks the compute to stop; it ends with [`ComputeError::Cancelled`].
    pub fn cancel(&self) {
        // SYNC POINT: pairs with the Acquire load in is_cancelled(); nothing
        // else is published through this flag.
        self.0.store(true, Ordering::Release);
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        // SYNC POINT: pairs with the Release store in cancel().
        self.0.load(Ordering::Acquire)
    }
}

/// Receives each line a compute prints, as it prints it.
pub type LogSink = Box<dyn FnMut(&str) + Send>;

/// What a successful compute produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeOutput {
    /// The chunk's return values, converted like output.
    pub values: Vec<HostValue>,
    /// The lines it printed (up to 1 MiB; all of them reach a log sink).
    pub logs: Vec<String>,
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
    /// Streaming of print lines.
    pub on_log: Option<LogSink>,
    /// Where the result goes.
    pub reply: crossbeam_channel::Sender<Result<ComputeOutput, ComputeError>>,
}

/// How serving a compute ended.
pub struct Served {
    /// The compute's result.
    pub result: Result<ComputeOutput, ComputeError>,
    /// False if the worker must be replaced.
    pub worker_ok: bool,
}

fn lost(e: ComputeError) -> Served {
    Served { result: Err(e), worker_ok: false }
}

/// Runs `job` on `w`, answering its requests from `store`.
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
    if let Err(e) = w.ring.send(&out) {
        return lost(crashed(w, &format!("could not start the compute: {e}")));
    }
    loop {
        let now = Instant::now();
        if now >= deadline {
            w.kill();
            return lost(ComputeError::Timeout { message: format!("wall-clock limit of {:?} reached; worker killed", job.timeout) });
        }
        if cancel_sent.is_none() && job.cancel.is_cancelled() {
            w.ring.set_cancel(true);
            cancel_sent = Some(now);
        }
        if let Some(at) = cancel_sent {
            if now >= at + CANCEL_GRACE {
                w.kill();
                return lost(ComputeError::Cancelled);
            }
        }
        match w.ring.recv(&mut inb, Some(deadline.min(now + POLL))) {
            Ok(()) => {}
            Err(RingError::Timeout) => continue,
            Err(e @ (RingError::PeerGone | RingError::Closed)) => return lost(crashed(w, &e.to_string())),
            Err(e) => return lost(crashed(w, &format!("protocol violation: {e}"))),
        }
        let msg = match decode::<ToSupervisor>(&inb) {
            Ok(m) => m,
            Err(e) => return lost(crashed(w, &format!("protocol violation: {e}"))),
        };
        match msg {
            ToSupervisor::Request(req) => {
                let reply = store.handle(&job.scope, req);
                if let Reply::Error(e) = &reply {
                    quota_hit |= e.kind == RequestErrorKind::Quota;
                }
                out.clear();
                encode_into(&ToWorker::Reply(reply), &mut out);
                if let Err(e) = w.ring.send(&out) {
                    return lost(crashed(w, &e.to_string()));
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
                let result = finish(store, &job.scope, outcome, quota_hit, logs);
                return Served { result, worker_ok: true };
            }
            ToSupervisor::Ready { .. } => return lost(crashed(w, "protocol violation: Ready during a compute")),
        }
    }
}

/// Kills the worker (if it still runs) and describes the crash.
fn crashed(w: &mut WorkerProc, what: &str) -> ComputeError {
    let status = w.kill();
    ComputeError::WorkerCrashed { message: format!("{what} (worker {status})") }
}

fn finish(
    store: &Store,
    scope: &Scope,
    outcome: Outcome,
    quota_hit: bool,
    logs: Vec<String>,
) -> Result<ComputeOutput, ComputeError> {
    match outcome {
        Outcome::Returned(lits) => {
            let values = lits
                .into_iter()
                .map(|l| literal_to_host(store, scope, l, 0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| ComputeError::BadResult { message })?;
            Ok(ComputeOutput { values, logs })
        }
        Outcome::Failed(f) => Err(match f.kind {
            FailureKind::LuaError if quota_hit || f.message.contains("quota exceeded") => {
                ComputeError::QuotaExceeded { message: f.message }
            }
            FailureKind::LuaError => ComputeError::LuaError { message: f.message, traceback: f.traceback },
            FailureKind::InstructionLimit => ComputeError::Timeout { message: f.message },
            FailureKind::MemoryLimit => ComputeError::MemoryLimit { message: f.message },
            FailureKind::Cancelled => ComputeError::Cancelled,
        }),
    }
}

/// Converts a returned value; table references must be in the compute's scope.
fn literal_to_host(store: &Store, scope: &Scope, lit: Literal, depth: usize) -> Result<HostValue, String> {
    if depth > crate::store::MAX_NESTING {
        return Err("result nested too deep".into());
    }
    match lit {
        Literal::Value(Value::Table(id)) => {
            let arena = (id >> 32) as u32;
            if arena != scope.session && arena != scope.home {
                return Err(format!("unknown table {id}"));
            }
            store.extract(&Value::Table(id)).map_err(|e| e.to_string())
        }
        Literal::Value(v) => store.extract(&v).map_err(|e| e.to_string()),
        Literal::Table { array, hash } => {
            if hash.is_empty() && !array.is_empty() {
                let items = array.into_iter().map(|l| literal_to_host(store, scope, l, depth + 1));
                return Ok(HostValue::Array(items.collect::<Result<_, _>>()?));
            }
            let mut map = Vec::with_capacity(array.len() + hash.len());
            for (i, l) in array.into_iter().enumerate() {
                map.push((luapool_protocol::Key::Int(i as i64 + 1), literal_to_host(store, scope, l, depth + 1)?));
            }
            for (k, l) in hash {
                let v = literal_to_host(store, scope, l, depth + 1)?;
                if v != HostValue::Nil {
                    map.push((k, v));
                }
            }
            Ok(HostValue::Map(map))
        }
    }
}
