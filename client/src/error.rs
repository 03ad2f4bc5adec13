//! The client's errors: [`ClientError`] for every call. A failed compute is
//! [`ClientError::Compute`] holding the shared [`ComputeError`]; any other
//! refusal is [`ClientError::Daemon`] with the protocol's [`ErrorKind`].

use luapool_protocol::api::{ComputeError, HostValueError};
use luapool_protocol::rpc::{ErrorKind, LimitInfo, RpcError};

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
    /// The daemon refused the request (`BadRequest`, `UnknownSession`,
    /// `LimitReached`, `QuotaExceeded`, ...).
    #[error("{}: {message}", kind.name())]
    Daemon {
        /// The error's kind.
        kind: ErrorKind,
        /// What the daemon said.
        message: String,
        /// The limit reached, if one was.
        limit: Option<LimitInfo>,
    },
    /// The reply did not fit the requested type.
    #[error("cannot read the reply: {0}")]
    Decode(#[from] HostValueError),
    /// The request's data could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// No daemon of a [`Cluster`](crate::Cluster) could open the session:
    /// each refused the connection, lost it, or is shutting down.
    #[error("no daemon could open the session ({tried})")]
    NoDaemon {
        /// Each daemon tried, and why it failed.
        tried: String,
    },
    /// The daemon sent something that is not the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The error of a call: for a compute, compute kinds become
    /// [`ClientError::Compute`]; otherwise every kind is a daemon error.
    pub(crate) fn of(e: RpcError, compute: bool) -> ClientError {
        match e {
            RpcError::Compute(c) if compute => ClientError::Compute(c),
            e => ClientError::Daemon {
                kind: e.kind(),
                message: match &e {
                    RpcError::Compute(c) => c.to_string(),
                    RpcError::Call { message, .. } => message.clone(),
                },
                limit: e.limit_info(),
            },
        }
    }

    /// The compute error, if this is one.
    pub fn as_compute(&self) -> Option<&ComputeError> {
        match self {
            ClientError::Compute(e) => Some(e),
            _ => None,
        }
    }

    /// The daemon's error kind, if the daemon refused the request.
    pub fn daemon_kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Daemon { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_kinds_are_compute_errors_only_for_computes() {
        let quota = RpcError::Compute(ComputeError::QuotaExceeded {
            message: "over".into(),
        });
        assert!(ClientError::of(quota.clone(), true).as_compute().is_some());
        assert_eq!(
            ClientError::of(quota, false).daemon_kind(),
            Some(ErrorKind::QuotaExceeded)
        );
        let busy = RpcError::limit(ErrorKind::Busy, "queued_calls", 4, "full");
        match ClientError::of(busy, true) {
            ClientError::Daemon { kind, limit, .. } => {
                assert_eq!(kind, ErrorKind::Busy);
                assert_eq!(limit.unwrap().value, 4);
            }
            other => panic!("{other:?}"),
        }
    }
}
