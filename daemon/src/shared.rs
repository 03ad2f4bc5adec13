//! [`Shared`]: the state the daemon and all its connections share.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;

use luapool_supervisor::Pool;

/// State shared by the daemon and all its connections.
pub(crate) struct Shared {
    pub pool: Arc<Pool>,
    /// The token TCP clients must present with `auth`.
    pub token: Option<String>,
    pub max_frame: usize,
    pub next_session: AtomicU64,
    pub sessions: AtomicUsize,
    pub connections: AtomicUsize,
    /// Set when the daemon stops accepting: end-of-file is then ours, not the client's.
    pub draining: AtomicBool,
    /// Set when the grace period is over: queued computes are not started.
    pub force_stop: AtomicBool,
}
