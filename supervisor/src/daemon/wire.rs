//! The daemon's MessagePack-RPC messages: decoding a request frame,
//! encoding responses and notifications, and the error maps clients see.
//!
//! Request `[0, msgid, method, params]`, response `[1, msgid, error, result]`,
//! notification `[2, method, params]`. An error is a map with at least
//! `kind` and `message` (a [`ComputeError`] keeps its own fields, such as
//! `traceback`). See `docs/protocol.md`.

use luapool_protocol::Key;
use serde::de::IgnoredAny;

use crate::error::{ComputeError, SessionError};
use crate::host_value::{to_host, HostValue};
use crate::store::StoreError;

/// A decoded request.
#[derive(Debug)]
pub(crate) struct Request {
    pub msgid: u32,
    pub method: String,
    pub params: Vec<HostValue>,
}

/// What one frame turned out to be.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A well-formed request.
    Request(Request),
    /// A notification from the client; the daemon defines none and ignores them.
    Notification,
    /// Not a usable request. With a msgid the client gets an error reply and
    /// the connection goes on; without one the stream cannot be trusted, so
    /// the client gets a reply with a nil msgid and the connection is closed.
    Bad { msgid: Option<u32>, message: String },
}

/// Decodes one complete frame (as found by the frame scanner).
pub(crate) fn decode(frame: &[u8]) -> Incoming {
    let value = match rmp_serde::from_slice::<HostValue>(frame) {
        Ok(v) => v,
        Err(e) => {
            // Not plain data (an invalid key, an ext type, too deep): say so
            // to the request if its header is readable.
            let msgid = rmp_serde::from_slice::<(u8, u32, IgnoredAny, IgnoredAny)>(frame)
                .ok()
                .map(|h| h.1);
            return Incoming::Bad {
                msgid,
                message: format!("cannot decode the request: {e}"),
            };
        }
    };
    let HostValue::Array(mut items) = value else {
        return Incoming::Bad {
            msgid: None,
            message: "a message must be an array".into(),
        };
    };
    match (items.len(), items.first()) {
        (3, Some(HostValue::Int(2))) => return Incoming::Notification,
        (4, Some(HostValue::Int(0))) => {}
        _ => {
            return Incoming::Bad {
                msgid: None,
                message: "expected a request [0, msgid, method, params]".into(),
            }
        }
    }
    let params = items.pop().expect("four items");
    let method = items.pop().expect("four items");
    let msgid = match items.pop() {
        Some(HostValue::Int(i)) if (0..=i64::from(u32::MAX)).contains(&i) => i as u32,
        _ => {
            return Incoming::Bad {
                msgid: None,
                message: "msgid must be an unsigned 32-bit integer".into(),
            }
        }
    };
    let method = match method {
        HostValue::Str(b) => match String::from_utf8(b) {
            Ok(m) => m,
            Err(_) => {
                return Incoming::Bad {
                    msgid: Some(msgid),
                    message: "method name is not UTF-8".into(),
                }
            }
        },
        _ => {
            return Incoming::Bad {
                msgid: Some(msgid),
                message: "method must be a string".into(),
            }
        }
    };
    let params = match params {
        HostValue::Array(p) => p,
        _ => {
            return Incoming::Bad {
                msgid: Some(msgid),
                message: "params must be an array".into(),
            }
        }
    };
    Incoming::Request(Request {
        msgid,
        method,
        params,
    })
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
            SessionError::Store(s) => RpcError::new("StoreError", s.to_string()),
            SessionError::Convert(m) => RpcError::bad_request(format!("conversion: {m}")),
        }
    }
}

/// Encodes `[1, msgid, error, result]` (a nil msgid when the request had none).
pub(crate) fn response(msgid: Option<u32>, result: Result<HostValue, RpcError>) -> Vec<u8> {
    let encoded = match &result {
        Ok(v) => rmp_serde::to_vec(&(1u8, msgid, (), v)),
        Err(e) => rmp_serde::to_vec(&(1u8, msgid, &e.0, ())),
    };
    encoded.unwrap_or_else(|e| {
        let err = RpcError::new("Internal", format!("cannot encode the result: {e}"));
        rmp_serde::to_vec(&(1u8, msgid, &err.0, ())).expect("a plain error map encodes")
    })
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
        assert_eq!(
            r.params,
            vec![HostValue::Int(3), HostValue::str("return 1")]
        );
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
        let bytes = response(Some(7), Ok(HostValue::Int(42)));
        assert_eq!(bytes, vec![0x94, 0x01, 0x07, 0xc0, 0x2a]);
    }
}
