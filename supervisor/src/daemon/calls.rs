//! Session methods: checking a request's params ([`parse`]) and running the
//! call on a session ([`execute`]). Parsing happens on the connection's
//! reader so a malformed request is answered at once; execution happens on
//! the session's own thread, in the order the requests arrived.

use std::time::Duration;

use luapool_protocol::Key;

use super::outbox::Outbox;
use super::wire::{log_notification, RpcError};
use crate::host_value::HostValue;
use crate::serve::CancelToken;
use crate::session::{ComputeOptions, Session};

/// A session method with its arguments (the session id already taken off).
#[derive(Debug)]
pub(crate) enum Call {
    SetInput(HostValue),
    GetOutput,
    SetInputField(String, HostValue),
    GetOutputField(String),
    SetMetadata(HostValue),
    ClearIo,
    Compute { code: String, options: CallOptions },
    Close,
}

/// Per-compute options from the request's optional map.
#[derive(Debug, Default)]
pub(crate) struct CallOptions {
    timeout: Option<Duration>,
    instructions: Option<u64>,
    memory: Option<u64>,
    chunk_name: Option<String>,
    no_stream: bool,
}

/// The methods [`parse`] knows.
pub(crate) const SESSION_METHODS: &[&str] = &[
    "set_input",
    "get_output",
    "set_input_field",
    "get_output_field",
    "set_metadata",
    "clear_io",
    "compute",
    "session.close",
];

/// Builds the call for `method` from `args` (the params after the session id).
pub(crate) fn parse(method: &str, mut args: Vec<HostValue>) -> Result<Call, RpcError> {
    let n = args.len();
    let arity = |lo: usize, hi: usize| {
        if (lo..=hi).contains(&n) {
            Ok(())
        } else if lo == hi {
            Err(RpcError::bad_request(format!(
                "{method} takes {} params, got {}",
                lo + 1,
                n + 1
            )))
        } else {
            Err(RpcError::bad_request(format!(
                "{method} takes {} to {} params, got {}",
                lo + 1,
                hi + 1,
                n + 1
            )))
        }
    };
    let mut drain = args.drain(..);
    let mut next = move || drain.next().unwrap_or(HostValue::Nil);
    Ok(match method {
        "set_input" => {
            arity(1, 1)?;
            Call::SetInput(next())
        }
        "get_output" => {
            arity(0, 0)?;
            Call::GetOutput
        }
        "set_input_field" => {
            arity(2, 2)?;
            Call::SetInputField(string(next(), "key")?, next())
        }
        "get_output_field" => {
            arity(1, 1)?;
            Call::GetOutputField(string(next(), "key")?)
        }
        "set_metadata" => {
            arity(1, 1)?;
            Call::SetMetadata(next())
        }
        "clear_io" => {
            arity(0, 0)?;
            Call::ClearIo
        }
        "compute" => {
            arity(1, 2)?;
            let code = string(next(), "code")?;
            Call::Compute {
                code,
                options: options(next())?,
            }
        }
        "session.close" => {
            arity(0, 0)?;
            Call::Close
        }
        _ => {
            return Err(RpcError::new(
                "UnknownMethod",
                format!("unknown method {method:?}"),
            ))
        }
    })
}

/// A string param.
pub(crate) fn string(v: HostValue, what: &str) -> Result<String, RpcError> {
    match v {
        HostValue::Str(b) => {
            String::from_utf8(b).map_err(|_| RpcError::bad_request(format!("{what} is not UTF-8")))
        }
        other => Err(RpcError::bad_request(format!(
            "{what} must be a string, got {}",
            type_name(&other)
        ))),
    }
}

fn type_name(v: &HostValue) -> &'static str {
    match v {
        HostValue::Nil => "nil",
        HostValue::Bool(_) => "a boolean",
        HostValue::Int(_) => "an integer",
        HostValue::Float(_) => "a float",
        HostValue::Str(_) => "a string",
        HostValue::Array(_) => "an array",
        HostValue::Map(_) => "a map",
    }
}

fn options(v: HostValue) -> Result<CallOptions, RpcError> {
    let entries = match v {
        HostValue::Nil => return Ok(CallOptions::default()),
        HostValue::Map(m) => m,
        other => {
            return Err(RpcError::bad_request(format!(
                "compute options must be a map, got {}",
                type_name(&other)
            )))
        }
    };
    let mut o = CallOptions::default();
    for (k, v) in entries {
        let name = match &k {
            Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
            _ => {
                return Err(RpcError::bad_request(
                    "compute option names must be strings",
                ))
            }
        };
        let uint = |v: &HostValue| match v {
            HostValue::Int(i) if *i >= 0 => Ok(*i as u64),
            _ => Err(RpcError::bad_request(format!(
                "compute option {name} must be a non-negative integer"
            ))),
        };
        match (name.as_str(), &v) {
            (_, HostValue::Nil) => {}
            ("timeout_ms", v) => match uint(v)? {
                0 => return Err(RpcError::bad_request("timeout_ms must be at least 1")),
                ms => o.timeout = Some(Duration::from_millis(ms)),
            },
            ("instructions", v) => o.instructions = Some(uint(v)?),
            ("memory", v) => o.memory = Some(uint(v)?),
            ("chunk_name", v) => o.chunk_name = Some(string(v.clone(), "chunk_name")?),
            ("stream_logs", HostValue::Bool(b)) => o.no_stream = !b,
            _ => {
                return Err(RpcError::bad_request(format!(
                    "unknown or mistyped compute option {name:?}"
                )))
            }
        }
    }
    Ok(o)
}

/// Where a call's log lines go.
pub(crate) struct LogRoute<'a> {
    pub outbox: &'a std::sync::Arc<Outbox>,
    pub session: u64,
    pub msgid: u32,
}

/// Runs `call` on `session`; `Close` is answered here and acted on by the caller.
pub(crate) fn execute(
    session: &Session,
    call: Call,
    logs: LogRoute<'_>,
    cancel: Option<CancelToken>,
) -> Result<HostValue, RpcError> {
    let err = |e| RpcError::session(&e);
    match call {
        Call::SetInput(v) => session.set_input(&v).map(|()| HostValue::Nil).map_err(err),
        Call::GetOutput => session.get_output::<HostValue>().map_err(err),
        Call::SetInputField(k, v) => session
            .set_input_field(&k, &v)
            .map(|()| HostValue::Nil)
            .map_err(err),
        Call::GetOutputField(k) => session.get_output_field::<HostValue>(&k).map_err(err),
        Call::SetMetadata(v) => session
            .set_metadata(&v)
            .map(|()| HostValue::Nil)
            .map_err(err),
        Call::ClearIo => session.clear_io().map(|()| HostValue::Nil).map_err(err),
        Call::Compute { code, options } => compute(session, code, options, logs, cancel),
        Call::Close => Ok(HostValue::Nil),
    }
}

fn compute(
    session: &Session,
    code: String,
    o: CallOptions,
    logs: LogRoute<'_>,
    cancel: Option<CancelToken>,
) -> Result<HostValue, RpcError> {
    let on_log: Option<crate::LogSink> = if o.no_stream {
        None
    } else {
        let (outbox, sid, msgid) = (logs.outbox.clone(), logs.session, logs.msgid);
        Some(Box::new(move |line: &str| {
            outbox.send_log(log_notification(sid, msgid, line))
        }))
    };
    let opts = ComputeOptions {
        timeout: o.timeout,
        instructions: o.instructions,
        memory: o.memory,
        cancel,
        on_log,
        chunk_name: o.chunk_name,
    };
    let out = session
        .compute_with(&code, opts)
        .map_err(|e| RpcError::compute(&e))?;
    Ok(HostValue::Map(vec![
        (Key::str("values"), HostValue::Array(out.values)),
        (
            Key::str("logs"),
            HostValue::Array(
                out.logs
                    .into_iter()
                    .map(|l| HostValue::Str(l.into_bytes()))
                    .collect(),
            ),
        ),
    ]))
}
