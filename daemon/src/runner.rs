//! One session's thread: it runs the session's calls in the order they
//! arrived and sends each reply to the connection's outbox. A `cancel`
//! request does not queue behind them: it cancels the compute running now
//! and every compute queued before the cancel arrived.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::calls::{self, Call, LogRoute};
use super::outbox::Outbox;
use super::rpc::{self, RpcError};
use super::shared::Shared;
use luapool_supervisor::CancelToken;
use luapool_supervisor::ComputeError;
use luapool_supervisor::Session;

/// Stack of a session thread: loading nested data recurses (bounded by the
/// frame scanner and the store).
const THREAD_STACK: usize = 8 << 20;

/// A call waiting for its session's thread.
struct Queued {
    msgid: u32,
    call: Call,
    /// The cancel epoch when it was queued: a compute queued before a cancel
    /// does not start.
    epoch: u64,
}

/// Cancellation state, under one lock so a cancel cannot slip between a
/// compute's check and its start.
#[derive(Default)]
struct Cancels {
    epoch: u64,
    running: Option<CancelToken>,
}

/// A session, its thread and its queue.
pub(crate) struct Runner {
    session: Arc<Session>,
    tx: Sender<Queued>,
    thread: JoinHandle<()>,
    cancels: Arc<Mutex<Cancels>>,
}

impl Runner {
    /// Starts the thread for session `sid`.
    pub fn spawn(
        sid: u64,
        session: Arc<Session>,
        shared: Arc<Shared>,
        outbox: Arc<Outbox>,
        abandoned: Arc<AtomicBool>,
    ) -> std::io::Result<Runner> {
        let (tx, rx) = crossbeam_channel::unbounded::<Queued>();
        let cancels = Arc::new(Mutex::new(Cancels::default()));
        let (mine, my_cancels) = (session.clone(), cancels.clone());
        shared.sessions.fetch_add(1, Ordering::Relaxed);
        let counter = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("luapool-session-{sid}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                for q in rx.iter() {
                    let close = matches!(q.call, Call::Close);
                    if abandoned.load(Ordering::Relaxed) {
                        if close {
                            break;
                        }
                        continue;
                    }
                    let route = LogRoute {
                        outbox: &outbox,
                        session: sid,
                        msgid: q.msgid,
                    };
                    let result = match q.call {
                        call @ Call::Compute { .. } => {
                            let token = CancelToken::new();
                            let go = {
                                let mut c = my_cancels.lock();
                                c.running = Some(token.clone());
                                c.epoch == q.epoch && !shared.force_stop.load(Ordering::Relaxed)
                            };
                            let result = if go {
                                calls::execute(&mine, call, route, Some(token))
                            } else {
                                Err(RpcError::compute(&ComputeError::Cancelled))
                            };
                            my_cancels.lock().running = None;
                            result
                        }
                        call => calls::execute(&mine, call, route, None),
                    };
                    outbox.send(rpc::response(Some(q.msgid), result));
                    if close {
                        break;
                    }
                }
                drop(mine);
                shared.sessions.fetch_sub(1, Ordering::Relaxed);
            });
        match spawned {
            Ok(thread) => Ok(Runner {
                session,
                tx,
                thread,
                cancels,
            }),
            Err(e) => {
                counter.sessions.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The session, for calls answered at once.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Queues a call (not `Close`: see [`close`](Runner::close)).
    pub fn submit(&self, msgid: u32, call: Call) {
        let epoch = self.cancels.lock().epoch;
        let _ = self.tx.send(Queued { msgid, call, epoch });
    }

    /// Cancels the running compute and the computes queued so far.
    pub fn cancel(&self) {
        let mut c = self.cancels.lock();
        c.epoch += 1;
        if let Some(token) = &c.running {
            token.cancel();
        }
    }

    /// Queues the session's close after its other calls; the thread then
    /// ends. Returns the thread to join.
    pub fn close(self, msgid: u32) -> JoinHandle<()> {
        let epoch = self.cancels.lock().epoch;
        let _ = self.tx.send(Queued {
            msgid,
            call: Call::Close,
            epoch,
        });
        self.thread
    }

    /// Lets the thread run what is queued (or skip it, if the connection is
    /// abandoned) and end; returns the thread to join.
    pub fn finish(self) -> JoinHandle<()> {
        self.thread
    }
}
