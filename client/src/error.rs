//! The client's errors: [`ClientError`] for every call, and
//! [`ComputeError`], which mirrors the supervisor's compute errors kind for
//! kind (the daemon sends them as maps `{kind, message, ...}`).

use serde::Deserialize;

use crate::de::DecodeError;

/// Why a compute did not return values; the same kinds as the embedded
/// supervisor's `ComputeError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// The script raised an error (or did not compile).
    #[error("Lua error: {message}")]
    LuaError {
        /// The error message, with chunk name and line.
        message: String,
        /// The Lua traceback at the point of the error.
        traceback: String,
    },
    /// The compute ran past its instruction budget or wall-clock limit.
    #[error("timeout: {message}")]
    Timeout {
        /// Which limit, and its value.
        message: String,
    },
    /// The worker's Lua heap limit was reached.
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
    /// The worker process died during the compute (the daemon replaced it).
    #[error("worker crashed: {message}")]
    WorkerCrashed {
        /// What the daemon saw.
        message: String,
    },
    /// The compute was cancelled before or while it ran.
    #[error("cancelled")]
    Cancelled,
    /// Every worker is busy and the queue is full; try again later.
    #[error("busy: every worker is busy and the queue is full")]
    Busy,
    /// The pool cannot run computes (shutting down, or in a crash loop).
    #[error("pool unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// The compute's result could not be converted (e.g. a cycle).
    #[error("bad result: {message}")]
    BadResult {
        /// Why.
        message: String,
    },
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The socket path or address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing to the connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed before the reply came.
    #[error("the daemon closed the connection ({0})")]
    Disconnected(String),
    /// A compute failed.
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The daemon refused the request: `kind` is one of the protocol's error
    /// kinds (`BadRequest`, `UnknownSession`, `UnknownMethod`,
    /// `Unauthorized`, `ShuttingDown`, `QuotaExceeded`, `StoreError`, ...).
    #[error("{kind}: {message}")]
    Daemon {
        /// The error's kind.
        kind: String,
        /// What the daemon said.
        message: String,
    },
    /// The request's data could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The reply did not fit the requested type.
    #[error("cannot read the reply: {0}")]
    Decode(#[from] DecodeError),
    /// The daemon sent something that is not the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

#[derive(Deserialize)]
struct RawError {
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    traceback: String,
}

/// Turns an error map from the daemon into a [`ClientError`]; compute kinds
/// become [`ClientError::Compute`] when `compute` is true.
pub(crate) fn remote_error(v: rmpv::Value, compute: bool) -> ClientError {
    let raw: RawError = match crate::de::from_value(v) {
        Ok(r) => r,
        Err(e) => return ClientError::Protocol(format!("malformed error: {e}")),
    };
    let RawError {
        kind,
        message,
        traceback,
    } = raw;
    if compute {
        let e = match kind.as_str() {
            "LuaError" => Some(ComputeError::LuaError {
                message: message.clone(),
                traceback,
            }),
            "Timeout" => Some(ComputeError::Timeout {
                message: message.clone(),
            }),
            "MemoryLimit" => Some(ComputeError::MemoryLimit {
                message: message.clone(),
            }),
            "QuotaExceeded" => Some(ComputeError::QuotaExceeded {
                message: message.clone(),
            }),
            "WorkerCrashed" => Some(ComputeError::WorkerCrashed {
                message: message.clone(),
            }),
            "Cancelled" => Some(ComputeError::Cancelled),
            "Busy" => Some(ComputeError::Busy),
            "Unavailable" => Some(ComputeError::Unavailable {
                message: message.clone(),
            }),
            "BadResult" => Some(ComputeError::BadResult {
                message: message.clone(),
            }),
            _ => None,
        };
        if let Some(e) = e {
            return ClientError::Compute(e);
        }
    }
    ClientError::Daemon { kind, message }
}

impl ClientError {
    /// The compute error, if this is one.
    pub fn as_compute(&self) -> Option<&ComputeError> {
        match self {
            ClientError::Compute(e) => Some(e),
            _ => None,
        }
    }

    /// The daemon's error kind, if the daemon refused the request.
    pub fn daemon_kind(&self) -> Option<&str> {
        match self {
            ClientError::Daemon { kind, .. } => Some(kind),
            _ => None,
        }
    }
}
