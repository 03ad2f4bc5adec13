//! [`Shared`]: the state the event loop, the call threads and the pool's
//! threads (finishing computes) share, and the daemon-wide counters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::calls::Queued;
use crate::conn::Conn;
use crate::homes::HomeJob;
use crate::limits::DaemonLimits;
use crate::scripts::LoadJob;
use crate::session::DaemonSession;
use crate::stats::ErrorCounts;
use luapool_supervisor::Pool;

/// Work for a call thread.
pub(crate) enum CallJob {
    /// Run this call of this session, then the session's next ones.
    Session(Arc<DaemonSession>, Queued),
    /// Run a home method.
    Home(HomeJob),
    /// Load a script.
    Load(LoadJob),
    /// Stop the thread.
    Stop,
}

/// State shared by the whole daemon.
pub(crate) struct Shared {
    pub pool: Arc<Pool>,
    pub limits: DaemonLimits,
    /// The token TCP clients must present with `auth`.
    pub token: Option<String>,
    /// The call threads' queue.
    pub calls: Sender<CallJob>,
    /// Connections the event loop must look at (a broken one, or one
    /// whose client read enough for parked sessions to go on).
    attention: Mutex<Vec<Arc<Conn>>>,
    waker: mio::Waker,
    pub connections: AtomicUsize,
    pub sessions: AtomicUsize,
    /// Calls waiting in sessions' queues.
    pub queued_calls: AtomicUsize,
    /// Calls running (a compute from its start to its reply).
    pub active_calls: AtomicUsize,
    /// Request bytes held: read buffers past their first chunk, and the
    /// payloads of queued calls (`buffered_bytes`).
    pub buffered: Arc<Budget>,
    /// Response bytes not yet sent, all clients together (`unsent_total_bytes`).
    pub unsent: Arc<Budget>,
    /// Set when the daemon stops reading requests.
    pub draining: AtomicBool,
    /// Set when the grace period is over: nothing more starts.
    pub force_stop: AtomicBool,
    /// Error responses sent, all clients together (the operator's `stats`).
    pub errors: ErrorCounts,
}

/// A daemon-wide bound on bytes held for clients.
pub(crate) struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// Takes `bytes` if they fit under the bound.
    pub fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                (h + bytes <= self.limit).then_some(h + bytes)
            })
            .is_ok()
    }
    /// Takes `bytes` whatever the bound (what must be held: a response).
    pub fn take(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::AcqRel);
    }
    pub fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
    /// Whether the bound is passed.
    pub fn over(&self) -> bool {
        self.held.load(Ordering::Acquire) > self.limit
    }
}

impl Shared {
    pub fn new(
        pool: Arc<Pool>,
        limits: DaemonLimits,
        token: Option<String>,
        calls: Sender<CallJob>,
        waker: mio::Waker,
    ) -> Shared {
        let budget = |limit| {
            Arc::new(Budget {
                held: AtomicUsize::new(0),
                limit,
            })
        };
        let (buffered, unsent) = (
            budget(limits.buffered_bytes),
            budget(limits.unsent_total_bytes),
        );
        Shared {
            pool,
            limits,
            token,
            calls,
            attention: Mutex::new(Vec::new()),
            waker,
            connections: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            queued_calls: AtomicUsize::new(0),
            active_calls: AtomicUsize::new(0),
            buffered,
            unsent,
            draining: AtomicBool::new(false),
            force_stop: AtomicBool::new(false),
            errors: ErrorCounts::default(),
        }
    }

    /// Asks the event loop to look at `conn`.
    pub fn notify(&self, conn: &Arc<Conn>) {
        self.attention.lock().push(conn.clone());
        let _ = self.waker.wake();
    }

    /// The connections to look at, once each.
    pub fn take_attention(&self) -> Vec<Arc<Conn>> {
        std::mem::take(&mut *self.attention.lock())
    }

    pub fn stopping(&self) -> bool {
        self.force_stop.load(Ordering::Relaxed)
    }

    /// Whether no call waits or runs (shutdown may proceed).
    pub fn idle(&self) -> bool {
        self.queued_calls.load(Ordering::SeqCst) == 0
            && self.active_calls.load(Ordering::SeqCst) == 0
    }
}
