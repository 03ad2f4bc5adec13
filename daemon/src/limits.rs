//! [`DaemonLimits`]: every bound of the daemon as a whole, with its default.
//! Each has a `luapool serve` flag and a row in docs/faults.md ("Limits of
//! the daemon"); reaching one is a `LimitReached` (or `Busy`) error that
//! names it and its value.

use luapool_supervisor::Limits;

/// The daemon's bounds. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonLimits {
    /// Client connections open at once (`connections`); one more is
    /// answered `LimitReached` and closed. The operator's socket is not
    /// counted, so no client can lock the operator out.
    pub connections: usize,
    /// Sessions open on one connection (`sessions_per_connection`).
    pub sessions_per_connection: usize,
    /// Sessions open in the whole daemon (`sessions`).
    pub sessions: usize,
    /// Scripts one connection has loaded (`scripts_per_connection`): one
    /// more new one is `LimitReached`. (The pool bounds all connections'
    /// scripts together: `max_scripts`, `script_bytes`.)
    pub scripts_per_connection: usize,
    /// Calls waiting in one session's queue, and home calls waiting on one
    /// connection (`queued_calls`); one more is `Busy` (`session.close` is
    /// always taken).
    pub queued_calls: usize,
    /// Bytes of requests waiting in one session's queue (`queued_bytes`);
    /// one more is `Busy` (a call into an empty queue is always taken).
    pub queued_bytes: usize,
    /// Bytes of responses waiting to be sent to one client (`unsent_bytes`):
    /// past it, none of that connection's requests start and its log lines
    /// are dropped until it reads.
    pub unsent_bytes: usize,
    /// Bytes of requests the daemon holds for all clients together, read
    /// but not yet run (`buffered_bytes`): past it, reading pauses for
    /// clients whose request needs more than the first 64 KiB.
    pub buffered_bytes: usize,
    /// Bytes of responses waiting for all clients together
    /// (`unsent_total_bytes`): past it, no call starts on a connection
    /// that has anything unsent, until it reads it.
    pub unsent_total_bytes: usize,
    /// The largest request frame (`max_frame`); a larger one closes the connection.
    pub max_frame: usize,
    /// Bytes a TCP client may send before `auth` (`unauthenticated_bytes`).
    pub unauthenticated_bytes: usize,
    /// Threads that run session calls other than computes, the home
    /// methods and `script.load` (`call_threads`).
    pub call_threads: usize,
    /// The most a compute may ask for, per limit: a compute may ask for
    /// less, never more. A zero instruction budget or memory limit means
    /// "none": a compute may ask for none only where the maximum is zero.
    pub compute_maxima: Limits,
}

impl Default for DaemonLimits {
    fn default() -> DaemonLimits {
        DaemonLimits {
            connections: 4096,
            sessions_per_connection: 256,
            sessions: 16384,
            scripts_per_connection: 1000,
            queued_calls: 4096,
            queued_bytes: 64 << 20,
            unsent_bytes: 64 << 20,
            buffered_bytes: 1 << 30,
            unsent_total_bytes: 1 << 30,
            max_frame: 256 << 20,
            unauthenticated_bytes: 4 << 10,
            call_threads: 2,
            compute_maxima: Limits::default(),
        }
    }
}
