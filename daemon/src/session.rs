//! [`DaemonSession`]: one open session and its queue of calls. The calls
//! run one at a time, in the order they arrived, and no thread belongs to
//! a session:
//!
//! - a compute starts on the thread that finds it next in line (the event
//!   loop that read it, or the pool thread that finished the call before
//!   it), waits for its home and a worker without holding any thread, and
//!   its reply is written by the pool thread that served it, which then
//!   starts the session's next call: a pipelined batch of computes costs
//!   one wake-up of a pool thread, not one per call;
//! - any other call (data in and out of the store) runs on one of the
//!   daemon's few call threads, so a large `set_input` never holds up the
//!   event loop.
//!
//! A session is reachable by `cancel`, by its client's disconnect and by
//! shutdown from the moment a call is queued until its reply is sent, also
//! while its `session.close` waits behind its other calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use luapool_protocol::rpc::{encode_log, Answer, ErrorKind, RpcError};
use luapool_supervisor::{CancelToken, ComputeError, HostValue, Session};
use parking_lot::Mutex;

use crate::calls::{self, Call, Queued};
use crate::conn::Conn;
use crate::shared::{CallJob, Shared};

/// A session's queue and what it runs now.
#[derive(Default)]
struct Line {
    calls: VecDeque<Queued>,
    bytes: usize,
    /// A call runs (from its start to its reply).
    busy: bool,
    /// The running compute's token.
    running: Option<CancelToken>,
    /// Bumped by each `cancel`: computes queued before it do not start.
    epoch: u64,
    /// `session.close` is queued: no new calls.
    closing: bool,
}

/// An open session of a connection.
pub(crate) struct DaemonSession {
    pub sid: u64,
    session: Session,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    line: Mutex<Line>,
}

impl DaemonSession {
    pub fn new(sid: u64, session: Session, conn: Arc<Conn>, shared: Arc<Shared>) -> DaemonSession {
        shared.sessions.fetch_add(1, Ordering::Relaxed);
        DaemonSession {
            sid,
            session,
            conn,
            shared,
            line: Mutex::new(Line::default()),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn shared_limits(&self) -> &crate::limits::DaemonLimits {
        &self.shared.limits
    }

    /// Whether `session.close` is queued (only `cancel` still reaches it).
    pub fn is_closing(&self) -> bool {
        self.line.lock().closing
    }

    /// Calls waiting in the queue.
    pub fn queued(&self) -> usize {
        self.line.lock().calls.len()
    }

    /// Queues a call and starts it if the session is idle. `Busy` past the
    /// queue's bounds; `UnknownSession` once `session.close` is queued.
    pub fn submit(self: &Arc<Self>, msgid: u32, call: Call, bytes: usize) -> Result<(), RpcError> {
        {
            let limits = &self.shared.limits;
            let mut line = self.line.lock();
            if line.closing {
                return Err(RpcError::unknown_session(self.sid));
            }
            let close = matches!(call, Call::Close);
            if line.calls.len() >= limits.queued_calls && !close {
                return Err(RpcError::limit(
                    ErrorKind::Busy,
                    "queued_calls",
                    limits.queued_calls as u64,
                    format!("session {} has {} calls queued", self.sid, line.calls.len()),
                ));
            }
            if !line.calls.is_empty() && line.bytes + bytes > limits.queued_bytes && !close {
                return Err(RpcError::limit(
                    ErrorKind::Busy,
                    "queued_bytes",
                    limits.queued_bytes as u64,
                    format!(
                        "session {} has {} bytes of calls queued",
                        self.sid, line.bytes
                    ),
                ));
            }
            line.closing = close;
            let epoch = line.epoch;
            line.calls.push_back(Queued {
                msgid,
                call,
                epoch,
                bytes,
            });
            line.bytes += bytes;
            self.shared.queued_calls.fetch_add(1, Ordering::SeqCst);
            self.shared.buffered.take(bytes);
        }
        self.run(false);
        Ok(())
    }

    /// Cancels the running compute and the computes queued so far.
    pub fn cancel(&self) {
        let running = {
            let mut line = self.line.lock();
            line.epoch += 1;
            line.running.clone()
        };
        if let Some(t) = running {
            t.cancel();
        }
    }

    /// The client is gone: drop what is queued, cancel what runs.
    pub fn abandon(&self) {
        drop(self.empty_and_cancel());
    }

    /// Shutdown's grace is over: queued calls are answered (`Cancelled`
    /// for computes, `ShuttingDown` for the rest), the running compute is
    /// cancelled.
    pub fn stop(self: &Arc<Self>) {
        for q in self.empty_and_cancel() {
            let e = match q.call {
                Call::Compute { .. } => RpcError::Compute(ComputeError::Cancelled),
                _ => RpcError::new(ErrorKind::ShuttingDown, "the daemon is shutting down"),
            };
            self.conn.reply(&self.shared, Some(q.msgid), Err(e));
        }
    }

    /// Takes every queued call off the queue and cancels the running compute.
    fn empty_and_cancel(&self) -> VecDeque<Queued> {
        let (dropped, running) = {
            let mut line = self.line.lock();
            line.epoch += 1;
            line.bytes = 0;
            (std::mem::take(&mut line.calls), line.running.clone())
        };
        for q in &dropped {
            self.unqueued(q);
        }
        if let Some(t) = running {
            t.cancel();
        }
        dropped
    }

    fn unqueued(&self, q: &Queued) {
        self.shared.queued_calls.fetch_sub(1, Ordering::SeqCst);
        self.shared.buffered.give_back(q.bytes);
    }

    /// Starts the next calls while the session is idle. On a call thread
    /// (`on_call_thread`) calls other than computes run here; elsewhere they
    /// go to a call thread.
    pub fn run(self: &Arc<Self>, on_call_thread: bool) {
        loop {
            let (q, token) = {
                let mut line = self.line.lock();
                if line.busy || line.calls.is_empty() {
                    return;
                }
                if !self.conn.is_gone() && self.conn.outbox.park_if_full(self) {
                    return; // the event loop restarts it when the client reads
                }
                let q = line.calls.pop_front().expect("not empty");
                line.bytes -= q.bytes;
                self.unqueued(&q);
                line.busy = true;
                self.shared.active_calls.fetch_add(1, Ordering::SeqCst);
                let start = q.epoch == line.epoch && !self.shared.stopping();
                let token = match q.call {
                    Call::Compute { .. } if start => {
                        let t = CancelToken::new();
                        line.running = Some(t.clone());
                        Some(t)
                    }
                    _ => None,
                };
                (q, token)
            };
            match q.call {
                Call::Compute {
                    code,
                    options,
                    arrived,
                } => match token {
                    Some(token) => {
                        if self.start_compute(q.msgid, code, options, token, arrived) {
                            return;
                        }
                        // It ended at once (Busy, say): go on here, not
                        // one stack frame deeper per queued compute.
                    }
                    None => {
                        self.reply(q.msgid, Err(RpcError::Compute(ComputeError::Cancelled)));
                        self.ended();
                    }
                },
                Call::Close => {
                    self.reply(q.msgid, Ok(Answer::Value(HostValue::Nil)));
                    self.conn.sessions.lock().remove(&self.sid);
                    self.ended();
                    return;
                }
                call if !on_call_thread => {
                    let q = Queued { call, ..q };
                    if self
                        .shared
                        .calls
                        .send(CallJob::Session(self.clone(), q))
                        .is_err()
                    {
                        self.ended(); // the daemon is stopping
                    }
                    return;
                }
                call => self.run_call(Queued { call, ..q }),
            }
        }
    }

    /// Runs a call other than a compute (on a call thread) and answers it.
    pub fn run_call(&self, q: Queued) {
        let result = if self.shared.stopping() {
            Err(RpcError::new(
                ErrorKind::ShuttingDown,
                "the daemon is shutting down",
            ))
        } else {
            calls::execute(&self.session, q.call)
        };
        self.reply(q.msgid, result);
        self.ended();
    }

    /// Starts a compute; true if it goes on elsewhere (the thread that
    /// ends it starts the session's next call), false if it already ended
    /// here and the caller goes on.
    fn start_compute(
        self: &Arc<Self>,
        msgid: u32,
        code: calls::Code,
        options: luapool_protocol::rpc::ComputeOptions,
        token: CancelToken,
        arrived: std::time::Instant,
    ) -> bool {
        let (conn, shared, sid) = (self.conn.clone(), self.shared.clone(), self.sid);
        let on_log: luapool_supervisor::LogSink =
            Box::new(move |line: &str| conn.log(&shared, encode_log(sid, msgid, line)));
        let times = (arrived, self.conn.compute_times());
        let opts = calls::options(options, token, Some(on_log), times);
        // Whoever of this thread (after compute_async returns) and the
        // finishing thread swaps it second starts the next call.
        let starting = Arc::new(AtomicBool::new(true));
        let me = (self.clone(), starting.clone());
        self.session.compute_async(
            code.as_str(),
            opts,
            Box::new(move |result| {
                let (me, starting) = me;
                let result = result.map_err(RpcError::Compute).and_then(|out| {
                    rmp_serde::to_vec_named(&out)
                        .map(Answer::Encoded)
                        .map_err(|e| RpcError::new(ErrorKind::Internal, e.to_string()))
                });
                me.reply(msgid, result);
                me.ended();
                // SYNC POINT: AcqRel swap; pairs with the swap after
                // compute_async below.
                if !starting.swap(false, Ordering::AcqRel) {
                    me.run(false);
                }
            }),
        );
        // SYNC POINT: AcqRel swap; pairs with the swap in the reply above.
        starting.swap(false, Ordering::AcqRel)
    }

    fn reply(&self, msgid: u32, result: Result<Answer, RpcError>) {
        self.conn.reply(&self.shared, Some(msgid), result);
    }

    /// The running call answered: the session is idle.
    fn ended(&self) {
        let mut line = self.line.lock();
        line.busy = false;
        line.running = None;
        self.shared.active_calls.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for DaemonSession {
    fn drop(&mut self) {
        self.shared.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}
