//! The client's errors: [`ClientError`] for every call. A failed compute is
//! [`ClientError::Compute`] holding the shared [`ComputeError`] (the daemon
//! sends it in its serde form, a map `{kind, message, ...}`).

use luapool_protocol::api::{from_host, ComputeError, HostValue, HostValueError};
use serde::Deserialize;

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
    Decode(#[from] HostValueError),
    /// The daemon sent something that is not the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// An error map as the daemon sends it, for the kinds that are not compute errors.
#[derive(Deserialize)]
struct RawError {
    kind: String,
    #[serde(default)]
    message: String,
}

/// Turns an error map from the daemon into a [`ClientError`]; when `compute`
/// is true, a map that is a [`ComputeError`] becomes [`ClientError::Compute`].
pub(crate) fn remote_error(v: HostValue, compute: bool) -> ClientError {
    if compute {
        if let Ok(e) = from_host::<ComputeError>(v.clone()) {
            return ClientError::Compute(e);
        }
    }
    match from_host::<RawError>(v) {
        Ok(RawError { kind, message }) => ClientError::Daemon { kind, message },
        Err(e) => ClientError::Protocol(format!("malformed error: {e}")),
    }
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

#[cfg(test)]
mod tests {
    use luapool_protocol::api::to_host;
    use luapool_protocol::Key;

    use super::*;

    fn error_map(entries: &[(&str, &str)]) -> HostValue {
        HostValue::Map(
            entries
                .iter()
                .map(|(k, v)| (Key::str(k), HostValue::str(v)))
                .collect(),
        )
    }

    #[test]
    fn compute_errors_decode_from_the_daemons_serde_form() {
        for e in [
            ComputeError::LuaError {
                message: "x.lua:1: boom".into(),
                traceback: "stack".into(),
            },
            ComputeError::Timeout {
                message: "1 s".into(),
            },
            ComputeError::BadResult {
                message: "cycle".into(),
            },
        ] {
            let sent = to_host(&e).unwrap();
            assert_eq!(remote_error(sent, true).as_compute(), Some(&e));
        }
        // Unit variants arrive with a message too (the daemon always adds one).
        let cancelled = error_map(&[("kind", "Cancelled"), ("message", "cancelled")]);
        assert_eq!(
            remote_error(cancelled, true).as_compute(),
            Some(&ComputeError::Cancelled)
        );
    }

    #[test]
    fn other_kinds_and_non_compute_calls_are_daemon_errors() {
        let quota = error_map(&[("kind", "QuotaExceeded"), ("message", "over")]);
        assert_eq!(
            remote_error(quota.clone(), false).daemon_kind(),
            Some("QuotaExceeded")
        );
        assert!(remote_error(quota, true).as_compute().is_some());
        let bad = error_map(&[("kind", "BadRequest"), ("message", "no")]);
        assert_eq!(remote_error(bad, true).daemon_kind(), Some("BadRequest"));
        assert!(matches!(
            remote_error(HostValue::Int(3), false),
            ClientError::Protocol(_)
        ));
    }
}
