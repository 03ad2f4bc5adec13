//! MessagePack encoding of messages, with decoding that is safe on hostile bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The deepest plain Lua table a worker copies into a message (a
/// [`Literal`](crate::Literal) nested this many levels): deeper is the
/// script's error, never a message the supervisor would refuse.
pub const MAX_LITERAL_DEPTH: usize = 200;

/// Nesting a decoded message may have; deeper input is refused, not
/// recursed into. Each level of a [`Literal`](crate::Literal) is three
/// levels of MessagePack (variant map, fields, array), plus the envelope:
/// so every literal a worker may send fits.
pub const MAX_DEPTH: usize = 3 * MAX_LITERAL_DEPTH + 16;

/// A message could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

/// Encodes a message as MessagePack (structs as arrays, the compact form).
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(msg, &mut out);
    out
}

/// Encodes a message into `out` (appending).
pub fn encode_into<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, and every message type serializes.
    msg.serialize(&mut rmp_serde::Serializer::new(out))
        .expect("messages always serialize to a Vec");
}

/// Decodes a message. Never panics; nesting is bounded by [`MAX_DEPTH`];
/// lengths are checked against the input before anything is allocated
/// (strings are borrowed from `bytes`). Bytes after the message are ignored:
/// the ring's framing, not the codec, delimits messages.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    Ok(T::deserialize(&mut de)?)
}
