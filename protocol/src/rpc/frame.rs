//! The three MessagePack-RPC messages: request `[0, msgid, method, params]`,
//! response `[1, msgid, error, result]`, notification `[2, method, params]`.
//! The daemon decodes requests with [`decode_request`] and writes responses
//! with [`encode_response`]; a client reads what the daemon sends with
//! [`FromDaemon::decode`].

use serde::de::IgnoredAny;

use super::error::RpcError;
use crate::api::HostValue;
use crate::ext_value::ext_text;
use crate::mp::{Cursor, Token};

/// The notification a compute's printed line travels in.
pub const LOG_NOTIFICATION: &str = "log";

/// A request frame split into its parts. Its params stay MessagePack: each
/// is the bytes of one value inside the frame (already checked to be plain
/// data); [`Request::decode`](super::Request::decode) types them.
#[derive(Debug)]
pub struct RawRequest<'a> {
    /// The client's id for the request.
    pub msgid: u32,
    /// The method's name.
    pub method: String,
    /// The bytes of each param.
    pub params: Vec<&'a [u8]>,
}

/// What one frame from a client turned out to be.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A well-formed request.
    Request(RawRequest<'a>),
    /// A notification from the client; the daemon defines none and ignores them.
    Notification,
    /// Not a usable request. With a msgid the client gets an error reply and
    /// the connection goes on; without one the stream cannot be trusted, so
    /// the client gets a reply with a nil msgid and the connection is closed.
    Bad {
        /// The request's msgid, if it could be read.
        msgid: Option<u32>,
        /// Why.
        message: String,
    },
}

impl Incoming<'_> {
    fn bad(msgid: Option<u32>, message: impl Into<String>) -> Self {
        Incoming::Bad {
            msgid,
            message: message.into(),
        }
    }
}

/// Decodes one complete frame (as found by the frame scanner).
pub fn decode_request(frame: &[u8]) -> Incoming<'_> {
    if let Err(why) = check_plain(frame) {
        // Not plain data (an invalid key, an ext value): say so to the
        // request if its header is readable.
        let msgid = rmp_serde::from_slice::<(u8, u32, IgnoredAny, IgnoredAny)>(frame)
            .ok()
            .map(|h| h.1);
        return Incoming::bad(msgid, format!("cannot decode the request: {why}"));
    }
    let Some(items) = array_items(frame) else {
        return Incoming::bad(None, "a message must be an array");
    };
    match (items.len(), items.first().and_then(|b| token(b))) {
        (3, Some(Token::Int(2))) => return Incoming::Notification,
        (4, Some(Token::Int(0))) => {}
        _ => return Incoming::bad(None, "expected a request [0, msgid, method, params]"),
    }
    let msgid = match token(items[1]) {
        Some(Token::Int(i)) if (0..=i64::from(u32::MAX)).contains(&i) => i as u32,
        _ => return Incoming::bad(None, "msgid must be an unsigned 32-bit integer"),
    };
    let method = match token(items[2]) {
        Some(Token::Str(b) | Token::Bin(b)) => match String::from_utf8(b.to_vec()) {
            Ok(m) => m,
            Err(_) => return Incoming::bad(Some(msgid), "method name is not UTF-8"),
        },
        _ => return Incoming::bad(Some(msgid), "method must be a string"),
    };
    let Some(params) = array_items(items[3]) else {
        return Incoming::bad(Some(msgid), "params must be an array");
    };
    Incoming::Request(RawRequest {
        msgid,
        method,
        params,
    })
}

/// The single token `bytes` holds, unless it is an array or a map.
fn token(bytes: &[u8]) -> Option<Token<'_>> {
    match Cursor::new(bytes).token() {
        Ok(Token::Array(_) | Token::Map(_)) | Err(_) => None,
        Ok(t) => Some(t),
    }
}

/// The bytes of each item of the array that is all of `bytes` (None if it
/// is not an array). The last item is the rest of the bytes, not walked: a
/// request's data param (last in its params, which are last in the frame)
/// is read once more only when it is loaded.
fn array_items(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut c = Cursor::new(bytes);
    let n = c.array().ok()?;
    // Each item takes at least a byte: the count is bounded by the frame.
    let mut items = Vec::with_capacity(n.min(c.rest().len()));
    for i in 0..n {
        let start = c.rest();
        if i + 1 == n {
            items.push(start);
            break;
        }
        c.skip(usize::MAX).ok()?;
        items.push(&start[..start.len() - c.rest().len()]);
    }
    Some(items)
}

/// Checks that `frame` is plain data, which is what a [`HostValue`] can
/// hold: no ext values but a valid big integer (1) or function (2), and
/// every map key a boolean, a number (not NaN) or a
/// string. The frame scanner has bounded its size and nesting already.
fn check_plain(frame: &[u8]) -> Result<(), String> {
    let mut c = Cursor::new(frame);
    // For each open array or map: values still to read, and whether it is a map.
    let mut open: Vec<(usize, bool)> = vec![(1, false)];
    while let Some((left, map)) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        // A map's values alternate key, value: a key when an even count is left.
        let is_key = *map && *left % 2 == 0;
        *left -= 1;
        let t = c.token().map_err(|e| e.to_string())?;
        if is_key {
            let bad = match t {
                Token::Nil => Some("table index is nil"),
                Token::Float(f) if f.is_nan() => Some("table index is NaN"),
                Token::Array(_) | Token::Map(_) | Token::Ext(..) => {
                    Some("a map key must be a boolean, a number or a string")
                }
                _ => None,
            };
            if let Some(why) = bad {
                return Err(why.into());
            }
        }
        match t {
            Token::Array(n) => open.push((n, false)),
            Token::Map(n) => open.push((n.checked_mul(2).ok_or("a map too large")?, true)),
            // A big integer or a function, checked (see `ext_value`).
            Token::Ext(ty, b) => drop(ext_text(ty, b).map_err(|e| e.to_string())?),
            _ => {}
        }
    }
    Ok(())
}

/// A successful call's result.
#[derive(Debug)]
pub enum Answer {
    /// A value, encoded into the response.
    Value(HostValue),
    /// One MessagePack value encoded already (output read from the store as
    /// bytes), copied into the response as it is.
    Encoded(Vec<u8>),
}

impl From<HostValue> for Answer {
    fn from(v: HostValue) -> Answer {
        Answer::Value(v)
    }
}

/// Encodes `[1, msgid, error, result]` (a nil msgid when the request had none).
pub fn encode_response(msgid: Option<u32>, result: &Result<Answer, RpcError>) -> Vec<u8> {
    let encoded = match result {
        Ok(Answer::Value(v)) => rmp_serde::to_vec(&(1u8, msgid, (), v)),
        Ok(Answer::Encoded(bytes)) => Ok(encoded_response(msgid, bytes)),
        Err(e) => rmp_serde::to_vec(&(1u8, msgid, &e.to_host(), ())),
    };
    encoded.unwrap_or_else(|e| {
        let err = RpcError::new(
            super::ErrorKind::Internal,
            format!("cannot encode the result: {e}"),
        );
        rmp_serde::to_vec(&(1u8, msgid, &err.to_host(), ())).expect("a plain error map encodes")
    })
}

/// `[1, msgid, nil, value]` around a value encoded already; the header's
/// bytes are the ones rmp-serde writes.
fn encoded_response(msgid: Option<u32>, value: &[u8]) -> Vec<u8> {
    use rmp::encode as mp;
    let mut out = Vec::with_capacity(value.len() + 8);
    // Writing to a Vec cannot fail.
    let _ = mp::write_array_len(&mut out, 4);
    let _ = mp::write_pfix(&mut out, 1);
    match msgid {
        Some(id) => drop(mp::write_uint(&mut out, u64::from(id))),
        None => drop(mp::write_nil(&mut out)),
    }
    let _ = mp::write_nil(&mut out);
    out.extend_from_slice(value);
    out
}

/// Encodes the notification `[2, "log", [session, msgid, line]]`.
pub fn encode_log(session: u64, msgid: u32, line: &str) -> Vec<u8> {
    rmp_serde::to_vec(&(2u8, LOG_NOTIFICATION, (session, msgid, line))).expect("a log line encodes")
}

/// A message from the daemon, as a client reads it.
#[derive(Debug)]
pub enum FromDaemon {
    /// The response to request `msgid`; a nil msgid means the daemon
    /// rejected the stream and closes the connection.
    Response {
        /// The request's msgid.
        msgid: Option<u32>,
        /// Its result or error.
        result: Result<HostValue, RpcError>,
    },
    /// A line printed by compute `msgid` of session `session`.
    Log {
        /// The session.
        session: u64,
        /// The compute request's msgid.
        msgid: u32,
        /// The line (bytes, lossily UTF-8).
        line: String,
    },
    /// A notification this client does not know (ignore it).
    Other,
}

fn u32_of(v: &HostValue) -> Option<u32> {
    match v {
        HostValue::Int(i) => u32::try_from(*i).ok(),
        _ => None,
    }
}

impl FromDaemon {
    /// Reads one message; an error says why it is not the protocol.
    pub fn decode(msg: HostValue) -> Result<FromDaemon, String> {
        let HostValue::Array(mut items) = msg else {
            return Err("a message that is not an array".into());
        };
        match items.first() {
            Some(HostValue::Int(1)) if items.len() == 4 => {
                let result = items.pop().expect("four items");
                let error = items.pop().expect("four items");
                let msgid = match &items[1] {
                    HostValue::Nil => None,
                    v => Some(u32_of(v).ok_or("a response msgid that is not a u32")?),
                };
                let result = match error {
                    HostValue::Nil => Ok(result),
                    e => Err(RpcError::from_host(e)?),
                };
                Ok(FromDaemon::Response { msgid, result })
            }
            Some(HostValue::Int(2)) if items.len() == 3 => {
                if items[1] != HostValue::str(LOG_NOTIFICATION) {
                    return Ok(FromDaemon::Other);
                }
                let HostValue::Array(p) = &items[2] else {
                    return Err("log params that are not an array".into());
                };
                match (p.first(), p.get(1).and_then(u32_of), p.get(2)) {
                    (Some(&HostValue::Int(s)), Some(msgid), Some(HostValue::Str(line)))
                        if s >= 0 =>
                    {
                        Ok(FromDaemon::Log {
                            session: s as u64,
                            msgid,
                            line: String::from_utf8_lossy(line).into_owned(),
                        })
                    }
                    _ => Err("malformed log params".into()),
                }
            }
            _ => Err("an unexpected message".into()),
        }
    }
}
