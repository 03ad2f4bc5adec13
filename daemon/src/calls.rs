//! Session methods: checking a request's params ([`parse`]) and running the
//! call on a session ([`execute`]). Parsing happens on the connection's
//! reader so a malformed request is answered at once; execution happens on
//! the session's own thread, in the order the requests arrived. Data params
//! (input, an input field, metadata) stay MessagePack bytes all the way to
//! the store.

use std::time::Duration;

use luapool_protocol::Key;

use super::outbox::Outbox;
use super::rpc::{self, log_notification, Answer, RpcError};
use luapool_supervisor::CancelToken;
use luapool_supervisor::HostValue;
use luapool_supervisor::{ComputeOptions, Session};

/// A session method with its arguments (the session id already taken off);
/// data arguments are the bytes of one MessagePack value each.
#[derive(Debug)]
pub(crate) enum Call {
    SetInput(Vec<u8>),
    GetOutput,
    SetInputField(String, Vec<u8>),
    GetOutputField(String),
    SetMetadata(Vec<u8>),
    ClearIo,
    Compute { code: String, options: CallOptions },
    Close,
}

/// Per-compute options from the request's optional map.
#[derive(Debug, Default)]
pub(crate) struct CallOptions {
    timeout: Option<Duration>,
    cpu_time: Option<Duration>,
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

/// MessagePack nil: a param the request left out.
const NIL: &[u8] = &[0xc0];

/// Builds the call for `method` from `args` (the params after the session id).
pub(crate) fn parse(method: &str, args: &[&[u8]]) -> Result<Call, RpcError> {
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
    let mut params = args.iter();
    let mut raw = move || params.next().copied().unwrap_or(NIL);
    Ok(match method {
        "set_input" => {
            arity(1, 1)?;
            Call::SetInput(raw().to_vec())
        }
        "get_output" => {
            arity(0, 0)?;
            Call::GetOutput
        }
        "set_input_field" => {
            arity(2, 2)?;
            Call::SetInputField(string(rpc::value(raw())?, "key")?, raw().to_vec())
        }
        "get_output_field" => {
            arity(1, 1)?;
            Call::GetOutputField(string(rpc::value(raw())?, "key")?)
        }
        "set_metadata" => {
            arity(1, 1)?;
            Call::SetMetadata(raw().to_vec())
        }
        "clear_io" => {
            arity(0, 0)?;
            Call::ClearIo
        }
        "compute" => {
            arity(1, 2)?;
            let code = string(rpc::value(raw())?, "code")?;
            Call::Compute {
                code,
                options: options(rpc::value(raw())?)?,
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
            ("cpu_time_ms", v) => o.cpu_time = Some(Duration::from_millis(uint(v)?)),
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
) -> Result<Answer, RpcError> {
    let err = |e| RpcError::session(&e);
    let nil = |()| Answer::Value(HostValue::Nil);
    match call {
        Call::SetInput(v) => session.set_input_msgpack(&v).map(nil).map_err(err),
        Call::GetOutput => session
            .get_output_msgpack()
            .map(Answer::Encoded)
            .map_err(err),
        Call::SetInputField(k, v) => session
            .set_input_field_msgpack(&k, &v)
            .map(nil)
            .map_err(err),
        Call::GetOutputField(k) => session
            .get_output_field_msgpack(&k)
            .map(Answer::Encoded)
            .map_err(err),
        Call::SetMetadata(v) => session.set_metadata_msgpack(&v).map(nil).map_err(err),
        Call::ClearIo => session.clear_io().map(nil).map_err(err),
        Call::Compute { code, options } => {
            compute(session, code, options, logs, cancel).map(Answer::Value)
        }
        Call::Close => Ok(Answer::Value(HostValue::Nil)),
    }
}

fn compute(
    session: &Session,
    code: String,
    o: CallOptions,
    logs: LogRoute<'_>,
    cancel: Option<CancelToken>,
) -> Result<HostValue, RpcError> {
    let on_log: Option<luapool_supervisor::LogSink> = if o.no_stream {
        None
    } else {
        let (outbox, sid, msgid) = (logs.outbox.clone(), logs.session, logs.msgid);
        Some(Box::new(move |line: &str| {
            outbox.send_log(log_notification(sid, msgid, line))
        }))
    };
    let opts = ComputeOptions {
        timeout: o.timeout,
        cpu_time: o.cpu_time,
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
