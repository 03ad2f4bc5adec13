//! [`RpcError`] and [`ErrorKind`]: every error the daemon sends, as the map
//! `{kind, message, ...}` clients read.

use serde::{Deserialize, Serialize};

use crate::api::{from_host, to_host, ComputeError, HostValue};
use crate::Key;

/// The `kind` of an error map. Compute errors keep [`ComputeError`]'s kinds
/// (its serde tag); the others are the daemon's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request is malformed: not `[0, msgid, method, params]`, wrong
    /// number or types of params, data that is not plain values.
    BadRequest,
    /// No such method.
    UnknownMethod,
    /// No such session open on this connection.
    UnknownSession,
    /// TCP without (or with a wrong) `auth`; the connection is closed.
    Unauthorized,
    /// The daemon is shutting down.
    ShuttingDown,
    /// A limit of the daemon was reached; the error names it (`limit`) and
    /// its value (`value`).
    LimitReached,
    /// The session's store quota (from `set_*` or a compute).
    QuotaExceeded,
    /// Another store failure (nesting too deep, a cycle in the output).
    StoreError,
    /// The daemon could not do something it should.
    Internal,
    /// Compute: the script raised an error (has `traceback`).
    LuaError,
    /// Compute: instruction budget or wall clock.
    Timeout,
    /// Compute: the memory limit.
    MemoryLimit,
    /// Compute: a value copied out of Lua passed the conversion limit.
    TooLarge,
    /// Compute: the worker died.
    WorkerCrashed,
    /// Compute: cancelled (by `cancel`, a disconnect or shutdown).
    Cancelled,
    /// Compute or call: a queue is full; retry later (names the limit when
    /// it is the daemon's).
    Busy,
    /// Compute: the pool is stopping or gave up respawning workers; compute
    /// or home method: the home's data directory failed (a disk error, a
    /// home that cannot be read).
    Unavailable,
    /// Compute: a return value could not be converted.
    BadResult,
    /// Compute: another daemon committed to the shared home first, each
    /// of the times the compute ran (`conflict_retries`); nothing was kept.
    Conflict,
    /// Compute, `get_output`, `get_output_field` or `home.export`: the value
    /// would pass the output limit; names it (`limit` =
    /// `max_output_bytes`) and its value (`value`). Nothing stored changed.
    OutputTooLarge,
    /// `session.open` with a new home name, `home.import` of a new home:
    /// the daemon keeps as many named homes as it allows (`limit` =
    /// `max_homes`, `value`).
    TooManyHomes,
    /// `home.drop` or `home.import` of a home that a session holds.
    HomeInUse,
    /// `home.export` of a home that does not exist.
    HomeNotFound,
    /// A method served on the operator's socket only (`home.list`), asked
    /// on another connection; the connection goes on.
    OperatorOnly,
    /// Compute: a digest in place of the code, and no script with that
    /// digest is loaded on this connection (`script.load` it first).
    NoScript,
}

impl ErrorKind {
    /// Every kind, for documentation checks.
    pub const ALL: [ErrorKind; 25] = [
        ErrorKind::BadRequest,
        ErrorKind::UnknownMethod,
        ErrorKind::UnknownSession,
        ErrorKind::Unauthorized,
        ErrorKind::ShuttingDown,
        ErrorKind::LimitReached,
        ErrorKind::QuotaExceeded,
        ErrorKind::StoreError,
        ErrorKind::Internal,
        ErrorKind::LuaError,
        ErrorKind::Timeout,
        ErrorKind::MemoryLimit,
        ErrorKind::TooLarge,
        ErrorKind::WorkerCrashed,
        ErrorKind::Cancelled,
        ErrorKind::Busy,
        ErrorKind::Unavailable,
        ErrorKind::BadResult,
        ErrorKind::Conflict,
        ErrorKind::OutputTooLarge,
        ErrorKind::TooManyHomes,
        ErrorKind::HomeInUse,
        ErrorKind::HomeNotFound,
        ErrorKind::OperatorOnly,
        ErrorKind::NoScript,
    ];

    /// The kind's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "BadRequest",
            ErrorKind::UnknownMethod => "UnknownMethod",
            ErrorKind::UnknownSession => "UnknownSession",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::ShuttingDown => "ShuttingDown",
            ErrorKind::LimitReached => "LimitReached",
            ErrorKind::QuotaExceeded => "QuotaExceeded",
            ErrorKind::StoreError => "StoreError",
            ErrorKind::Internal => "Internal",
            ErrorKind::LuaError => "LuaError",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::MemoryLimit => "MemoryLimit",
            ErrorKind::TooLarge => "TooLarge",
            ErrorKind::WorkerCrashed => "WorkerCrashed",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::Busy => "Busy",
            ErrorKind::Unavailable => "Unavailable",
            ErrorKind::BadResult => "BadResult",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::OutputTooLarge => "OutputTooLarge",
            ErrorKind::TooManyHomes => "TooManyHomes",
            ErrorKind::HomeInUse => "HomeInUse",
            ErrorKind::HomeNotFound => "HomeNotFound",
            ErrorKind::OperatorOnly => "OperatorOnly",
            ErrorKind::NoScript => "NoScript",
        }
    }

    /// The kind a compute error is sent as.
    pub fn of_compute(e: &ComputeError) -> ErrorKind {
        match e {
            ComputeError::LuaError { .. } => ErrorKind::LuaError,
            ComputeError::Timeout { .. } => ErrorKind::Timeout,
            ComputeError::MemoryLimit { .. } => ErrorKind::MemoryLimit,
            ComputeError::TooLarge { .. } => ErrorKind::TooLarge,
            ComputeError::QuotaExceeded { .. } => ErrorKind::QuotaExceeded,
            ComputeError::WorkerCrashed { .. } => ErrorKind::WorkerCrashed,
            ComputeError::Cancelled => ErrorKind::Cancelled,
            ComputeError::Busy => ErrorKind::Busy,
            ComputeError::Unavailable { .. } => ErrorKind::Unavailable,
            ComputeError::BadResult { .. } => ErrorKind::BadResult,
            ComputeError::Conflict { .. } => ErrorKind::Conflict,
            ComputeError::OutputTooLarge { .. } => ErrorKind::OutputTooLarge,
            ComputeError::NoScript { .. } => ErrorKind::NoScript,
        }
    }
}

/// The limit a compute error names, if it names one: on the wire it is
/// `limit` (the name) and `value`, like the daemon's own limits.
fn compute_limit(e: &ComputeError) -> Option<LimitInfo> {
    match e {
        ComputeError::OutputTooLarge { limit } => Some(LimitInfo {
            limit: MAX_OUTPUT_BYTES.into(),
            value: *limit,
        }),
        _ => None,
    }
}

/// The name of the output limit.
const MAX_OUTPUT_BYTES: &str = "max_output_bytes";

/// A limit of the daemon that was reached: its name (as in the operator's
/// flag, e.g. `sessions_per_connection`) and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitInfo {
    /// The limit's name.
    pub limit: String,
    /// Its value.
    pub value: u64,
}

/// An error as the client sees it: a map with `kind` and `message`, plus
/// `limit` and `value` when a limit was reached, plus a compute error's own
/// fields (`traceback`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    /// A compute failed.
    #[error(transparent)]
    Compute(ComputeError),
    /// The daemon refused or could not serve the request.
    #[error("{kind:?}: {message}")]
    Call {
        /// What kind of failure.
        kind: ErrorKind,
        /// For people.
        message: String,
        /// The limit reached, if a limit was.
        limit: Option<LimitInfo>,
    },
}

impl RpcError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> RpcError {
        RpcError::Call {
            kind,
            message: message.into(),
            limit: None,
        }
    }

    /// The request was malformed: wrong parameters, wrong types.
    pub fn bad_request(message: impl Into<String>) -> RpcError {
        RpcError::new(ErrorKind::BadRequest, message)
    }

    /// A limit of the daemon named `limit`, of `value`, was reached.
    pub fn limit(kind: ErrorKind, limit: &str, value: u64, message: impl Into<String>) -> RpcError {
        RpcError::Call {
            kind,
            message: message.into(),
            limit: Some(LimitInfo {
                limit: limit.into(),
                value,
            }),
        }
    }

    /// The session `sid` is not open on this connection.
    pub fn unknown_session(sid: u64) -> RpcError {
        RpcError::new(
            ErrorKind::UnknownSession,
            format!("no session {sid} is open on this connection"),
        )
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RpcError::Compute(e) => ErrorKind::of_compute(e),
            RpcError::Call { kind, .. } => *kind,
        }
    }

    /// The limit reached, if any.
    pub fn limit_info(&self) -> Option<LimitInfo> {
        match self {
            RpcError::Call { limit, .. } => limit.clone(),
            RpcError::Compute(e) => compute_limit(e),
        }
    }

    /// The error map sent on the wire.
    pub fn to_host(&self) -> HostValue {
        let mut entries = match self {
            RpcError::Compute(e) if compute_limit(e).is_some() => {
                vec![(Key::str("kind"), HostValue::str(self.kind().name()))]
            }
            RpcError::Compute(e) => match to_host(e) {
                Ok(HostValue::Map(m)) => m,
                _ => vec![(Key::str("kind"), HostValue::str(self.kind().name()))],
            },
            RpcError::Call { kind, .. } => vec![(Key::str("kind"), HostValue::str(kind.name()))],
        };
        if !entries.iter().any(|(k, _)| *k == Key::str("message")) {
            let message = match self {
                RpcError::Compute(e) => e.to_string(),
                RpcError::Call { message, .. } => message.clone(),
            };
            entries.push((Key::str("message"), HostValue::str(message)));
        }
        if let Some(l) = self.limit_info() {
            entries.push((Key::str("limit"), HostValue::str(&l.limit)));
            entries.push((Key::str("value"), HostValue::Int(l.value as i64)));
        }
        HostValue::Map(entries)
    }

    /// Reads an error map (the client side). Compute kinds become
    /// [`RpcError::Compute`]; an unknown kind is an error.
    pub fn from_host(v: HostValue) -> Result<RpcError, String> {
        #[derive(Deserialize)]
        struct Raw {
            kind: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            limit: Option<String>,
            #[serde(default)]
            value: Option<u64>,
        }
        let names_a_limit =
            matches!(&v, HostValue::Map(m) if m.iter().any(|(k, _)| *k == Key::str("limit")));
        if !names_a_limit {
            if let Ok(e) = from_host::<ComputeError>(v.clone()) {
                return Ok(RpcError::Compute(e));
            }
        }
        let raw: Raw = from_host(v).map_err(|e| format!("malformed error: {e}"))?;
        let kind = ErrorKind::ALL
            .into_iter()
            .find(|k| k.name() == raw.kind)
            .ok_or_else(|| format!("unknown error kind {:?}", raw.kind))?;
        if let (ErrorKind::OutputTooLarge, Some(limit)) = (kind, raw.value) {
            return Ok(RpcError::Compute(ComputeError::OutputTooLarge { limit }));
        }
        Ok(RpcError::Call {
            kind,
            message: raw.message,
            limit: raw.limit.map(|limit| LimitInfo {
                limit,
                value: raw.value.unwrap_or(0),
            }),
        })
    }
}

impl From<ComputeError> for RpcError {
    fn from(e: ComputeError) -> RpcError {
        RpcError::Compute(e)
    }
}
