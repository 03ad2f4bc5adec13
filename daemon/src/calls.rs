//! Session methods that run in their session's order: [`Call`] (a
//! request's params, owned, while it waits its turn) and [`execute`], which
//! runs one on a session. Data params (input, an input field, metadata)
//! stay MessagePack bytes all the way to the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_protocol::rpc::{self, Answer, ErrorKind, Request, RpcError};
use luapool_supervisor::{
    CancelToken, ComputeError, ComputeOptions, ComputeTimes, HomeError, HostValue, Limits, LogSink,
    Script, Session, SessionError, StoreError,
};

/// A call in its session's queue.
#[derive(Debug)]
pub(crate) struct Queued {
    pub msgid: u32,
    pub call: Call,
    /// The session's cancel epoch when it arrived: a compute queued before a
    /// `cancel` does not start.
    pub epoch: u64,
    /// Its payload's bytes, counted against the queue's bound.
    pub bytes: usize,
}

/// A call waiting for its session's turn (the session id taken off).
#[derive(Debug)]
pub(crate) enum Call {
    SetInput(Vec<u8>),
    GetOutput,
    SetInputField(String, Vec<u8>),
    GetOutputField(String),
    SetMetadata(Vec<u8>),
    ClearIo,
    Compute {
        code: Code,
        options: rpc::ComputeOptions,
        /// When its request was read: its wait counts from here.
        arrived: Instant,
    },
    Close,
}

impl Call {
    /// The call of a request that runs in session order (`None` for the others).
    pub fn of(req: Request<'_>) -> Option<Call> {
        Some(match req {
            Request::SetInput { data, .. } => Call::SetInput(data.to_vec()),
            Request::GetOutput { .. } => Call::GetOutput,
            Request::SetInputField { key, value, .. } => Call::SetInputField(key, value.to_vec()),
            Request::GetOutputField { key, .. } => Call::GetOutputField(key),
            Request::SetMetadata { meta, .. } => Call::SetMetadata(meta.to_vec()),
            Request::ClearIo { .. } => Call::ClearIo,
            Request::Compute { code, options, .. } => Call::Compute {
                code: Code::Text(code),
                options,
                arrived: Instant::now(),
            },
            Request::SessionClose { .. } => Call::Close,
            Request::Auth { .. }
            | Request::SessionOpen { .. }
            | Request::GetIoTableId { .. }
            | Request::GetTableInfo { .. }
            | Request::Cancel { .. }
            | Request::Stats
            | Request::HomeList
            | Request::HomeDrop { .. }
            | Request::HomeExport { .. }
            | Request::HomeImport { .. }
            | Request::ScriptLoad { .. } => return None,
        })
    }
}

/// A compute's code: as sent, or a loaded script named by its digest.
#[derive(Debug)]
pub(crate) enum Code {
    Text(String),
    Script(Script),
}

impl Code {
    pub fn as_str(&self) -> &str {
        match self {
            Code::Text(t) => t,
            Code::Script(s) => s.code(),
        }
    }
}

/// A failed session operation as the client sees it.
pub(crate) fn session_error(e: SessionError) -> RpcError {
    match e {
        SessionError::Compute(c) => RpcError::Compute(c),
        SessionError::Store(s) => store_error(s),
        SessionError::Convert(m) => RpcError::bad_request(format!("conversion: {m}")),
        SessionError::Home(h) => home_error(h),
    }
}

/// A store's refusal as the client sees it.
fn store_error(e: StoreError) -> RpcError {
    match e {
        StoreError::Quota { .. } | StoreError::GroupQuota { .. } | StoreError::ArenaFull(_) => {
            RpcError::new(ErrorKind::QuotaExceeded, e.to_string())
        }
        StoreError::OutputTooLarge { limit } => {
            RpcError::Compute(ComputeError::OutputTooLarge { limit })
        }
        StoreError::BadValue(_) => RpcError::bad_request(e.to_string()),
        e => RpcError::new(ErrorKind::StoreError, e.to_string()),
    }
}

/// A home that cannot be opened or managed, as the client sees it.
pub(crate) fn home_error(e: HomeError) -> RpcError {
    let message = e.to_string();
    match e {
        HomeError::TooManyHomes { limit } => {
            RpcError::limit(ErrorKind::TooManyHomes, "max_homes", limit as u64, message)
        }
        HomeError::InUse { .. } | HomeError::Dropping { .. } => {
            RpcError::new(ErrorKind::HomeInUse, message)
        }
        HomeError::NotFound { .. } => RpcError::new(ErrorKind::HomeNotFound, message),
        HomeError::HomesFull { .. } => RpcError::new(ErrorKind::QuotaExceeded, message),
        HomeError::Store(s) => store_error(s),
        HomeError::Import(_) => RpcError::bad_request(message),
        HomeError::Export(_) => RpcError::new(ErrorKind::StoreError, message),
        HomeError::Corrupt { .. } | HomeError::Backend(_) => {
            RpcError::new(ErrorKind::Unavailable, message)
        }
        HomeError::Conflict { .. } => RpcError::new(ErrorKind::Conflict, message),
    }
}

/// Runs a call that is not a compute on `session`; `Close` is answered
/// here and acted on by the caller.
pub(crate) fn execute(session: &Session, call: Call) -> Result<Answer, RpcError> {
    let nil = |()| Answer::Value(HostValue::Nil);
    match call {
        Call::SetInput(v) => session.set_input_msgpack(&v).map(nil),
        Call::GetOutput => session.get_output_msgpack().map(Answer::Encoded),
        Call::SetInputField(k, v) => session.set_input_field_msgpack(&k, &v).map(nil),
        Call::GetOutputField(k) => session.get_output_field_msgpack(&k).map(Answer::Encoded),
        Call::SetMetadata(v) => session.set_metadata_msgpack(&v).map(nil),
        Call::ClearIo => session.clear_io().map(nil),
        Call::Close => Ok(Answer::Value(HostValue::Nil)),
        Call::Compute { .. } => unreachable!("computes run through the compute path"),
    }
    .map_err(session_error)
}

/// Checks a compute's options against the operator's maxima: a compute may
/// ask for less, never more, and for no limit only where the maximum is
/// none (0).
pub(crate) fn check_options(o: &rpc::ComputeOptions, max: &Limits) -> Result<(), RpcError> {
    // Destructured, so a limit added to `Limits` must be handled here.
    let Limits {
        timeout,
        cpu_time,
        instructions,
        memory,
    } = *max;
    let over = |name: &str, value: u64, what: String| {
        Err(RpcError::limit(
            ErrorKind::LimitReached,
            name,
            value,
            format!("{name}: {what}"),
        ))
    };
    let ms = |d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64;
    let max_ms = ms(timeout);
    if let Some(asked) = o.timeout_ms {
        if asked > max_ms {
            return over(
                "timeout_ms",
                max_ms,
                format!("{asked} is above the daemon's maximum of {max_ms}"),
            );
        }
    }
    // For these, 0 is "none": allowed only where the maximum is none.
    for (name, asked, max) in [
        ("cpu_time_ms", o.cpu_time_ms, ms(cpu_time)),
        ("instructions", o.instructions, instructions),
        ("memory", o.memory, memory),
    ] {
        match asked {
            Some(0) if max != 0 => {
                return over(
                    name,
                    max,
                    format!("no limit is not allowed (the maximum is {max})"),
                )
            }
            Some(n) if max != 0 && n > max => {
                return over(
                    name,
                    max,
                    format!("{n} is above the daemon's maximum of {max}"),
                )
            }
            _ => {}
        }
    }
    Ok(())
}

/// The supervisor's options for a compute (checked already), whose
/// request arrived at `arrived` and whose times also count in `times`.
pub(crate) fn options(
    o: rpc::ComputeOptions,
    cancel: CancelToken,
    on_log: Option<LogSink>,
    (arrived, times): (Instant, Arc<ComputeTimes>),
) -> ComputeOptions {
    ComputeOptions {
        timeout: o.timeout_ms.map(Duration::from_millis),
        cpu_time: o.cpu_time_ms.map(Duration::from_millis),
        instructions: o.instructions,
        memory: o.memory,
        cancel: Some(cancel),
        on_log: if o.stream_logs == Some(false) {
            None
        } else {
            on_log
        },
        chunk_name: o.chunk_name,
        arrived: Some(arrived),
        times: Some(times),
    }
}
