//! [`ComputeError`]: why a compute did not return values, the same for the
//! embedded supervisor and for a daemon client.

use serde::{Deserialize, Serialize};

/// Why a compute did not return values. Serializable: the daemon sends it to
/// clients as `{"kind": "...", "message": "...", "traceback": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind")]
pub enum ComputeError {
    /// The script raised an error (or did not compile). The message carries
    /// the chunk name and line, e.g. `script.lua:3: boom`.
    #[error("Lua error: {message}")]
    LuaError {
        /// The error message.
        message: String,
        /// The Lua traceback at the point of the error.
        traceback: String,
    },
    /// The compute ran past its CPU-time limit, its instruction budget or
    /// its wall-clock limit.
    #[error("timeout: {message}")]
    Timeout {
        /// Which limit, and its value.
        message: String,
    },
    /// The compute's memory limit was reached (Lua heap and the worker's
    /// buffers for it).
    #[error("memory limit: {message}")]
    MemoryLimit {
        /// What Lua reported.
        message: String,
    },
    /// The session's store quota would have been exceeded.
    #[error("quota exceeded: {message}")]
    QuotaExceeded {
        /// The store's message.
        message: String,
    },
    /// A value the compute copied out of Lua (into the store, as a result,
    /// as a `print` line) passed the conversion limit.
    #[error("too large: {message}")]
    TooLarge {
        /// Which limit, and its value.
        message: String,
    },
    /// The worker process died during the compute (it has been replaced).
    #[error("worker crashed: {message}")]
    WorkerCrashed {
        /// What the supervisor saw: exit status, signal, or protocol violation.
        message: String,
    },
    /// The compute was cancelled before or while it ran.
    #[error("cancelled")]
    Cancelled,
    /// Every worker is busy and the queue is full; try again later.
    #[error("busy: every worker is busy and the queue is full")]
    Busy,
    /// The pool cannot run computes: it is shutting down, or stopped
    /// respawning workers after a crash loop.
    #[error("pool unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// The compute's return values would pass the output limit
    /// (`max_output_bytes`): a table shared many times counts each time it
    /// is emitted. Like any failed compute, its writes are undone; what was
    /// stored before it stays.
    #[error("output too large: the return values would exceed the output limit of {limit} bytes (max_output_bytes)")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The compute's home is shared by several daemons (a PostgreSQL home
    /// store), and each time it ran, another daemon committed to the home
    /// first: its writes were undone and it ran again, as many times as
    /// the pool allows (`conflict_retries`, named in the message with its
    /// value). Nothing of it was kept; try again.
    #[error("conflict: {message}")]
    Conflict {
        /// The home, the attempts and the limit.
        message: String,
    },
    /// The compute's result could not be converted (e.g. a cycle).
    #[error("bad result: {message}")]
    BadResult {
        /// Why.
        message: String,
    },
    /// The compute named a script by its digest, and no script with that
    /// digest is loaded (on this connection, for a daemon client): load it
    /// (`script.load`) and send the digest again, or send the code.
    #[error("no script with digest {digest} is loaded; load it first")]
    NoScript {
        /// The digest sent.
        digest: String,
    },
}
