//! The daemon's MessagePack-RPC messages: decoding a request frame,
//! encoding responses and notifications, and the error maps clients see.
//!
//! Request `[0, msgid, method, params]`, response `[1, msgid, error, result]`,
//! notification `[2, method, params]`. An error is a map with at least
//! `kind` and `message` (a [`ComputeError`] keeps its own fields, such as
//! `traceback`). See `docs/protocol.md`.

use luapool_protocol::mp::{Cursor, Token};
use luapool_protocol::Key;
use serde::de::IgnoredAny;

use luapool_supervisor::StoreError;
use luapool_supervisor::{to_host, HostValue};
use luapool_supervisor::{ComputeError, SessionError};

/// A decoded request. Its params stay MessagePack: each is the bytes of one
/// value inside the frame (already checked to be plain data), so data params
/// go to the store without being built as Rust values first.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub msgid: u32,
    pub method: String,
    pub params: Vec<&'a [u8]>,
}

/// What one frame turned out to be.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// A well-formed request.
    Request(Request<'a>),
    /// A notification from the client; the daemon defines none and ignores them.
    Notification,
    /// Not a usable request. With a msgid the client gets an error reply and
    /// the connection goes on; without one the stream cannot be trusted, so
    /// the client gets a reply with a nil msgid and the connection is closed.
    Bad { msgid: Option<u32>, message: String },
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
pub(crate) fn decode(frame: &[u8]) -> Incoming<'_> {
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
    Incoming::Request(Request {
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
/// hold: no ext values, and every map key a boolean, a number (not NaN) or a
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
                Token::Array(_) | Token::Map(_) => {
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
            Token::Ext(..) => return Err("MessagePack ext values are not plain data".into()),
            _ => {}
        }
    }
    Ok(())
}

/// A param as a [`HostValue`] (for the params that are not bulk data).
pub(crate) fn value(param: &[u8]) -> Result<HostValue, RpcError> {
    rmp_serde::from_slice(param)
        .map_err(|e| RpcError::bad_request(format!("cannot decode the request: {e}")))
}

/// An error as the client sees it: a map with `kind` and `message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError(pub HostValue);

impl RpcError {
    /// A protocol-level error of `kind`.
    pub fn new(kind: &str, message: impl Into<String>) -> RpcError {
        RpcError(HostValue::Map(vec![
            (Key::str("kind"), HostValue::str(kind)),
            (Key::str("message"), HostValue::str(message.into())),
        ]))
    }

    /// The request was malformed: wrong parameters, wrong types.
    pub fn bad_request(message: impl Into<String>) -> RpcError {
        RpcError::new("BadRequest", message)
    }

    /// A [`ComputeError`] in its serde form, with a `message` always present.
    pub fn compute(e: &ComputeError) -> RpcError {
        let mut entries = match to_host(e) {
            Ok(HostValue::Map(m)) => m,
            _ => return RpcError::new("Internal", e.to_string()),
        };
        if !entries.iter().any(|(k, _)| *k == Key::str("message")) {
            entries.push((Key::str("message"), HostValue::str(e.to_string())));
        }
        RpcError(HostValue::Map(entries))
    }

    /// A failed session operation.
    pub fn session(e: &SessionError) -> RpcError {
        match e {
            SessionError::Compute(c) => RpcError::compute(c),
            SessionError::Store(s @ (StoreError::Quota { .. } | StoreError::ArenaFull(_))) => {
                RpcError::new("QuotaExceeded", s.to_string())
            }
            SessionError::Store(s @ StoreError::OutputTooLarge { .. }) => {
                RpcError::new("OutputTooLarge", s.to_string())
            }
            SessionError::Store(s) => RpcError::new("StoreError", s.to_string()),
            SessionError::Convert(m) => RpcError::bad_request(format!("conversion: {m}")),
            SessionError::Home(h @ luapool_supervisor::HomeError::TooManyHomes { .. }) => {
                RpcError::new("TooManyHomes", h.to_string())
            }
            SessionError::Home(h) => RpcError::new("HomeError", h.to_string()),
        }
    }
}

/// A successful call's result.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A value, encoded into the response.
    Value(HostValue),
    /// One MessagePack value encoded already (output read from the session
    /// as bytes), copied into the response as it is.
    Encoded(Vec<u8>),
}

impl From<HostValue> for Answer {
    fn from(v: HostValue) -> Answer {
        Answer::Value(v)
    }
}

/// Encodes `[1, msgid, error, result]` (a nil msgid when the request had none).
pub(crate) fn response(msgid: Option<u32>, result: Result<Answer, RpcError>) -> Vec<u8> {
    let encoded = match &result {
        Ok(Answer::Value(v)) => rmp_serde::to_vec(&(1u8, msgid, (), v)),
        Ok(Answer::Encoded(bytes)) => Ok(encoded_response(msgid, bytes)),
        Err(e) => rmp_serde::to_vec(&(1u8, msgid, &e.0, ())),
    };
    encoded.unwrap_or_else(|e| {
        let err = RpcError::new("Internal", format!("cannot encode the result: {e}"));
        rmp_serde::to_vec(&(1u8, msgid, &err.0, ())).expect("a plain error map encodes")
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
pub(crate) fn log_notification(session: u64, msgid: u32, line: &str) -> Vec<u8> {
    rmp_serde::to_vec(&(2u8, "log", (session, msgid, line))).expect("a log line encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_decodes_with_its_params() {
        let frame = rmp_serde::to_vec(&(0u8, 9u32, "compute", (3u64, "return 1"))).unwrap();
        let Incoming::Request(r) = decode(&frame) else {
            panic!("not a request")
        };
        assert_eq!((r.msgid, r.method.as_str()), (9, "compute"));
        let params: Vec<HostValue> = r.params.iter().map(|p| value(p).unwrap()).collect();
        assert_eq!(params, vec![HostValue::Int(3), HostValue::str("return 1")]);
    }

    #[test]
    fn data_params_are_the_exact_bytes_of_their_value() {
        let input = serde_json::json!({"rows": [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}], "n": null});
        let frame = rmp_serde::to_vec(&(0u8, 3u32, "set_input", (7u64, &input))).unwrap();
        let Incoming::Request(r) = decode(&frame) else {
            panic!("not a request")
        };
        assert_eq!(r.params.len(), 2);
        assert_eq!(r.params[1], rmp_serde::to_vec(&input).unwrap());
        assert_eq!(value(r.params[1]).unwrap(), HostValue::from_json(input));
    }

    #[test]
    fn data_that_is_not_plain_is_bad_with_its_msgid() {
        // [0, 5, "set_input", [1, x]] with x each of: ext, NaN key, array key, nested nil key.
        for x in [
            &[0xd4, 0x01, 0x02][..],
            &[0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01],
            &[0x81, 0x90, 0x01],
            &[0x91, 0x81, 0x01, 0x81, 0xc0, 0x02],
        ] {
            let mut frame = rmp_serde::to_vec(&(0u8, 5u32, "set_input")).unwrap();
            frame[0] = 0x94;
            frame.extend_from_slice(&[0x92, 0x01]);
            frame.extend_from_slice(x);
            match decode(&frame) {
                Incoming::Bad {
                    msgid: Some(5),
                    message,
                } => {
                    assert!(
                        message.starts_with("cannot decode the request"),
                        "{message}"
                    )
                }
                other => panic!("{x:x?}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_shapes_are_bad_with_msgid_when_readable() {
        let no_array = rmp_serde::to_vec(&(0u8, 4u32, "stats", 5)).unwrap();
        assert!(matches!(
            decode(&no_array),
            Incoming::Bad { msgid: Some(4), .. }
        ));
        let not_request = rmp_serde::to_vec(&"hello").unwrap();
        assert!(matches!(
            decode(&not_request),
            Incoming::Bad { msgid: None, .. }
        ));
        let bad_msgid = rmp_serde::to_vec(&(0u8, -1i32, "stats", ())).unwrap();
        assert!(matches!(
            decode(&bad_msgid),
            Incoming::Bad { msgid: None, .. }
        ));
        // A nil map key is not plain data, but the header is readable.
        let mut nil_key = rmp_serde::to_vec(&(0u8, 8u32, "set_input")).unwrap();
        nil_key[0] = 0x94;
        nil_key.extend_from_slice(&[0x92, 0x01, 0x81, 0xc0, 0x01]);
        assert!(matches!(
            decode(&nil_key),
            Incoming::Bad { msgid: Some(8), .. }
        ));
    }

    #[test]
    fn cancelled_error_gets_a_message() {
        let RpcError(HostValue::Map(m)) = RpcError::compute(&ComputeError::Cancelled) else {
            panic!()
        };
        assert!(m.contains(&(Key::str("kind"), HostValue::str("Cancelled"))));
        assert!(m.iter().any(|(k, _)| *k == Key::str("message")));
    }

    #[test]
    fn response_is_a_four_item_array() {
        let bytes = response(Some(7), Ok(HostValue::Int(42).into()));
        assert_eq!(bytes, vec![0x94, 0x01, 0x07, 0xc0, 0x2a]);
    }

    #[test]
    fn an_encoded_answer_gives_the_same_bytes_as_its_value() {
        let v = HostValue::Map(vec![(Key::Int(1), HostValue::Str(vec![b'a', 0xff]))]);
        let encoded = rmp_serde::to_vec(&v).unwrap();
        for msgid in [None, Some(0), Some(200), Some(70_000), Some(u32::MAX)] {
            assert_eq!(
                response(msgid, Ok(Answer::Encoded(encoded.clone()))),
                response(msgid, Ok(Answer::Value(v.clone()))),
                "{msgid:?}"
            );
        }
    }
}
