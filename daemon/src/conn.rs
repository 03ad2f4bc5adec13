//! [`Conn`]: one client connection as every thread sees it: its socket, its
//! [`Outbox`], the sessions it opened and the scripts it loaded. Session
//! ids count from 1 on each connection, so they say nothing about other
//! clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::listen::Stream;
use crate::outbox::{Flush, Interest, Outbox};
use crate::session::DaemonSession;
use crate::shared::{Budget, Shared};
use crate::stats::ErrorCounts;
use luapool_protocol::rpc::{encode_response, Answer, RpcError};
use luapool_supervisor::{ComputeTimes, Script};
use std::os::fd::AsRawFd;

/// A client connection.
pub(crate) struct Conn {
    /// The event loop's token for it.
    pub token: usize,
    pub stream: Stream,
    pub outbox: Outbox,
    pub sessions: Mutex<HashMap<u64, Arc<DaemonSession>>>,
    next_sid: AtomicU64,
    /// The client left (or broke the protocol): nothing more is sent.
    gone: AtomicBool,
    /// Arrived on the operator's socket: sees the whole daemon in `stats`.
    pub operator: bool,
    /// Error responses sent to this client, by kind (its `stats`).
    pub errors: ErrorCounts,
    /// Its computes' wait and run times (its `stats`); made at its first
    /// compute, so idle connections do not pay for the histograms.
    pub times: OnceLock<Arc<ComputeTimes>>,
    /// Its home calls waiting for a call thread (bound: `queued_calls`).
    pub home_calls: AtomicUsize,
    /// The scripts it loaded, by digest: its computes may name them by
    /// digest (and only them); released when it is abandoned.
    pub scripts: Mutex<HashMap<String, Script>>,
    /// A `script.load` of it runs on a call thread (`scripts.rs`): the
    /// event loop handles none of its later requests until it is answered.
    loading: AtomicBool,
}

impl Conn {
    pub fn new(
        token: usize,
        stream: Stream,
        unsent_bytes: usize,
        operator: bool,
        registry: Arc<mio::Registry>,
        budget: Arc<Budget>,
    ) -> Conn {
        let poll = Interest {
            registry,
            fd: stream.as_raw_fd(),
            token,
        };
        Conn {
            token,
            stream,
            outbox: Outbox::new(unsent_bytes, poll, budget),
            sessions: Mutex::new(HashMap::new()),
            next_sid: AtomicU64::new(1),
            gone: AtomicBool::new(false),
            operator,
            errors: ErrorCounts::default(),
            times: OnceLock::new(),
            home_calls: AtomicUsize::new(0),
            scripts: Mutex::new(HashMap::new()),
            loading: AtomicBool::new(false),
        }
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Whether a `script.load` of this connection is being answered.
    pub fn is_loading(&self) -> bool {
        // SYNC POINT: Acquire; pairs with the Release in `set_loading(false)`
        // after the load's reply and script are in place.
        self.loading.load(Ordering::Acquire)
    }

    /// Notes that a `script.load` went to a call thread (`true`, by the
    /// event loop) or was answered (`false`, by the call thread).
    pub fn set_loading(&self, loading: bool) {
        // SYNC POINT: Release; pairs with the Acquire in `is_loading`.
        self.loading.store(loading, Ordering::Release);
    }

    /// The next session id of this connection.
    pub fn next_sid(&self) -> u64 {
        self.next_sid.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a response to `msgid`.
    pub fn reply(
        self: &Arc<Self>,
        shared: &Shared,
        msgid: Option<u32>,
        result: Result<Answer, RpcError>,
    ) {
        if let Err(e) = &result {
            let kind = e.kind();
            self.errors.count(kind);
            shared.errors.count(kind);
        }
        if self.is_gone() {
            return;
        }
        let frame = encode_response(msgid, &result);
        let flush = self.outbox.send(&self.stream, frame);
        self.after_send(shared, flush);
    }

    /// Sends a log notification (dropped if the client is too far behind).
    pub fn log(self: &Arc<Self>, shared: &Shared, frame: Vec<u8>) {
        if self.is_gone() {
            return;
        }
        let flush = self.outbox.send_log(&self.stream, frame);
        self.after_send(shared, flush);
    }

    fn after_send(self: &Arc<Self>, shared: &Shared, flush: Flush) {
        // A broken socket, or room again for sessions parked on a full
        // outbox: the event loop takes it from here.
        if flush == Flush::Broken || self.outbox.room_awaited() {
            shared.notify(self);
        }
    }

    /// The client is gone (or is being sent away): stop its sessions.
    /// Running computes are cancelled, queued calls dropped; each session
    /// is freed when its running call ends. With `keep_outbox`, what is
    /// queued for the client (a last error) is still written.
    pub fn abandon(&self, keep_outbox: bool) {
        self.gone.store(true, Ordering::Relaxed);
        if !keep_outbox {
            self.outbox.break_off();
        }
        let sessions: Vec<_> = self.sessions.lock().drain().map(|(_, s)| s).collect();
        for s in sessions {
            s.abandon();
        }
        // Its scripts go now, not when the last handle on the connection
        // does (a call still running); dropped outside the lock.
        let scripts = std::mem::take(&mut *self.scripts.lock());
        drop(scripts);
    }

    /// The histograms of this connection's computes.
    pub fn compute_times(&self) -> Arc<ComputeTimes> {
        self.times.get_or_init(Default::default).clone()
    }

    /// The session `sid` if it is open here (or closing: `cancel` still
    /// reaches the calls queued before its close).
    pub fn session(&self, sid: u64) -> Option<Arc<DaemonSession>> {
        self.sessions.lock().get(&sid).cloned()
    }
}
