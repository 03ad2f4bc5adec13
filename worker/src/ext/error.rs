//! [`ExtError`]: why an operation on an external table failed, as a type.
//!
//! Every failure a script can meet on an external table is one of these;
//! the Rust callbacks hand it to the prelude as `(nil, message, memory)`
//! (see [`ExtError::to_lua`]), which raises it at the script's line, or as
//! Lua's own memory error when `memory` is true: so no one tells a kind
//! apart by its text. A broken conversation with the supervisor is also
//! remembered by the [`Link`](super::link::Link), whatever the script does
//! with the error: the worker exits after that compute.

use luapool_protocol::{Key, KeyError, RequestErrorKind};
use mlua::{Lua, MultiValue};

/// Why an operation on an external table failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtError {
    /// The supervisor refused the request: the store's quota, a read-only
    /// table, an unknown table, …
    #[error("{message}")]
    Refused {
        /// The store's kind of refusal.
        kind: RequestErrorKind,
        /// The store's message, for the script.
        message: String,
    },
    /// The conversation with the supervisor broke (the link keeps why).
    #[error("luapool: lost the supervisor: {0}")]
    Lost(String),
    /// Lua could not allocate.
    #[error("not enough memory")]
    Memory,
    /// A key no external table can have.
    #[error("invalid key for an external table: {0}")]
    Key(#[from] BadKey),
    /// A value that cannot be stored at `key`.
    #[error("cannot assign to key {key}: {message}")]
    Value {
        /// The key assigned.
        key: Key,
        /// Why the value cannot be stored (the path to it in a plain table).
        message: String,
    },
    /// `next(t, k)` with a key `t` does not hold.
    #[error("invalid key to 'next'")]
    NextKey,
    /// A long string changed length while it was read in pieces.
    #[error("the string at key {0} changed while it was read")]
    StringChanged(Key),
    /// A string longer than this worker can address.
    #[error("a string too long for this worker")]
    StringTooLong,
    /// Another error of Lua's.
    #[error(transparent)]
    Lua(mlua::Error),
}

/// Why a Lua value cannot be a key of an external table.
#[derive(Debug, thiserror::Error)]
pub enum BadKey {
    /// Lua's rules: nil, NaN (and a table, as the store has it).
    #[error(transparent)]
    Lua(#[from] KeyError),
    /// A function, a coroutine, a userdata, …
    #[error("a {0} cannot be a key of an external table")]
    Type(&'static str),
}

impl From<mlua::Error> for ExtError {
    fn from(e: mlua::Error) -> ExtError {
        match e {
            mlua::Error::MemoryError(_) => ExtError::Memory,
            e => ExtError::Lua(e),
        }
    }
}

impl ExtError {
    /// The values a Rust callback returns to the prelude for this error:
    /// `nil, message, memory`.
    pub fn to_lua(&self, lua: &Lua) -> mlua::Result<MultiValue> {
        let memory = matches!(self, ExtError::Memory);
        let message = match self {
            // The callback's own traceback is noise to the script.
            ExtError::Lua(mlua::Error::CallbackError { cause, .. }) => cause.to_string(),
            e => e.to_string(),
        };
        Ok(MultiValue::from_vec(vec![
            mlua::Value::Nil,
            mlua::Value::String(lua.create_string(message)?),
            mlua::Value::Boolean(memory),
        ]))
    }
}

/// What a Rust callback returns to the prelude: its values, or the error
/// as [`ExtError::to_lua`] says. Only running out of memory while saying
/// so is an `Err` (which Lua raises as its memory error).
pub fn to_lua(lua: &Lua, r: Result<MultiValue, ExtError>) -> mlua::Result<MultiValue> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => e.to_lua(lua),
    }
}
