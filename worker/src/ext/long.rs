//! Strings longer than [`LONG_STRING`] both ways through the ring, in
//! pieces, so that no message is ever much larger than a piece.
//!
//! Read: the supervisor answers a read of one with `Reply::Long`; the worker
//! makes a Lua buffer of its length (`luaL_buffinitsize`: Lua heap, counted
//! by the compute's memory limit, so a string too big for it ends as
//! `MemoryLimit`) and fills it piece by piece (`Request::GetStr`) straight
//! from the ring's receive buffer; no Rust buffer of the string's size is
//! made. Written: the first piece is an ordinary write, the rest are
//! `Request::Append`s, each at most a piece, read from the Lua string.
//!
//! The C functions of read-only tables call [`push_long`] directly; a Lua
//! error may `longjmp` out of them, so nothing that needs dropping is alive
//! across a Lua call: the key to read waits in [`Ext`] meanwhile.

use std::ffi::c_int;

use luapool_protocol::{Key, Reply, Request, TableId, Write, LONG_STRING};
use mlua::{ffi, Lua};

use super::Ext;
use crate::conn::ConnError;
use luapool_protocol::hot::{self, HotReply};

impl Ext {
    /// The long string `table[key]` of `len` bytes as a Lua string, or the
    /// message of the Lua error to raise.
    pub(super) fn long_string(
        &self,
        lua: &Lua,
        table: TableId,
        key: Key,
        len: u64,
    ) -> mlua::Result<Result<mlua::String, String>> {
        *self.long_key.borrow_mut() = Some((table, key));
        let mut failed: Option<String> = None;
        // SAFETY: the closure pushes one value (checked room for it); the
        // only calls that may raise (`luaL_buffinitsize`,
        // `luaL_pushresultsize`: memory) happen while it holds nothing that
        // needs dropping (`failed` lives in the caller's frame).
        let s = unsafe {
            lua.exec_raw::<mlua::Value>((), |l| {
                if let Err(msg) = push_long(l, self, len) {
                    failed = Some(msg);
                    ffi::lua_pushnil(l);
                }
            })?
        };
        Ok(match (failed, s) {
            (Some(msg), _) => Err(msg),
            (None, mlua::Value::String(s)) => Ok(s),
            (None, _) => Err("luapool: a long string did not arrive".into()),
        })
    }

    /// Reads the long string whose key waits in `long_key` into `dst`
    /// (`len` bytes). Runs no Lua code.
    fn read_long(&self, dst: *mut u8, len: usize) -> Result<(), String> {
        let Some((table, key)) = self.long_key.borrow_mut().take() else {
            return Err("luapool: no long string to read".into());
        };
        let mut conn = self.conn.borrow_mut();
        let mut off = 0;
        while off < len {
            let req = Request::GetStr {
                table,
                key: key.clone(),
                offset: off as u64,
            };
            let bytes = match conn.request_raw(req) {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(Reply::Error(e))) => return Err(e.message),
                Ok(Err(_)) => {
                    return Err(self
                        .die(ConnError::Unexpected("expected Ok after writes"))
                        .to_string())
                }
                Err(e) => return Err(self.die(e).to_string()),
            };
            let piece = match hot::read(bytes) {
                Ok(Some(HotReply::Bytes(piece))) => piece,
                Ok(_) => match luapool_protocol::decode(bytes) {
                    Ok(luapool_protocol::ToWorker::Reply(Reply::Error(e))) => return Err(e.message),
                    _ => {
                        return Err(self
                            .die(ConnError::Unexpected("expected a piece of a string"))
                            .to_string())
                    }
                },
                Err(_) => {
                    return Err(self
                        .die(ConnError::Unexpected("malformed piece of a string"))
                        .to_string())
                }
            };
            if piece.is_empty() || piece.len() > len - off {
                return Err(format!("the string at key {key} changed while it was read"));
            }
            // SAFETY: `dst` has room for `len` bytes and `off + piece.len() <= len`.
            unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), dst.add(off), piece.len()) };
            off += piece.len();
        }
        Ok(())
    }

    /// Parks the key of a long string for [`push_long`].
    pub fn park_long(&self, table: TableId, key: Key) {
        *self.long_key.borrow_mut() = Some((table, key));
    }

    /// `table[key] = s` for a string longer than [`LONG_STRING`]: the
    /// buffered writes, then the first piece, then the rest appended, each a
    /// message of at most a piece. `Some(message)`: refused.
    pub(super) fn write_long(
        &self,
        table: TableId,
        key: Key,
        s: &[u8],
    ) -> mlua::Result<Option<String>> {
        let mut pieces = s.chunks(LONG_STRING);
        let first = pieces.next().unwrap_or_default().to_vec();
        let mut conn = self.conn.borrow_mut();
        let rest = pieces.map(|p| Request::Append {
            table,
            key: key.clone(),
            bytes: p.to_vec(),
        });
        let first = Request::Write(vec![Write {
            table,
            key: key.clone(),
            value: luapool_protocol::Literal::Value(luapool_protocol::Value::Str(first)),
        }]);
        for req in std::iter::once(first).chain(rest) {
            match conn.request(req) {
                Ok(Reply::Ok) => {}
                Ok(Reply::Error(e)) => return Ok(Some(e.message)),
                Ok(_) => return Err(self.die(ConnError::Unexpected("expected Ok after a write"))),
                Err(e) => return Err(self.die(e)),
            }
        }
        Ok(None)
    }
}

/// Pushes the long string whose key waits in `ext` (see
/// [`Ext::park_long`]), `len` bytes, read from the supervisor. `Err`: the
/// message of the Lua error to raise (nothing was pushed).
///
/// # Safety
/// `l` is a Lua state with a free stack slot. A Lua error (out of memory)
/// may `longjmp` out of here: the caller holds nothing that needs dropping.
pub unsafe fn push_long(l: *mut ffi::lua_State, ext: &Ext, len: u64) -> Result<(), String> {
    let Ok(len) = usize::try_from(len) else {
        return Err("a string too long for this worker".into());
    };
    let mut b: ffi::luaL_Buffer = std::mem::zeroed();
    let dst = ffi::luaL_buffinitsize(l, &mut b, len);
    match ext.read_long(dst.cast(), len) {
        Ok(()) => {
            ffi::luaL_pushresultsize(&mut b, len);
            Ok(())
        }
        Err(msg) => {
            // Drop the buffer's box: leave the stack as it was.
            ffi::lua_pop(l, 1);
            Err(msg)
        }
    }
}

/// Pushes a long string for a C function, raising its error.
///
/// # Safety
/// As for [`push_long`]; never returns on error.
pub unsafe fn push_long_or_raise(l: *mut ffi::lua_State, ext: &Ext, len: u64) -> c_int {
    match push_long(l, ext, len) {
        Ok(()) => 1,
        Err(msg) => crate::ro_meta::raise(l, msg),
    }
}
