//! Session methods that run in their session's order: [`Call`] (a
//! request's params, owned, while it waits its turn) and [`execute`], which
//! runs one on a session. Data params (input, an input field, metadata)
//! stay MessagePack bytes all the way to the store.

use luapool_protocol::rpc::{self, Answer, ErrorKind, Request, RpcError};
use luapool_supervisor::{HostValue, Session, SessionError, StoreError};

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
        code: String,
        options: rpc::ComputeOptions,
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
            Request::Compute { code, options, .. } => Call::Compute { code, options },
            Request::SessionClose { .. } => Call::Close,
            Request::Auth { .. }
            | Request::SessionOpen { .. }
            | Request::GetIoTableId { .. }
            | Request::GetTableInfo { .. }
            | Request::Cancel { .. }
            | Request::Stats => return None,
        })
    }
}

/// A failed session operation as the client sees it.
pub(crate) fn session_error(e: SessionError) -> RpcError {
    match e {
        SessionError::Compute(c) => RpcError::Compute(c),
        SessionError::Store(s @ (StoreError::Quota { .. } | StoreError::ArenaFull(_))) => {
            RpcError::new(ErrorKind::QuotaExceeded, s.to_string())
        }
        SessionError::Store(s) => RpcError::new(ErrorKind::StoreError, s.to_string()),
        SessionError::Convert(m) => RpcError::bad_request(format!("conversion: {m}")),
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
