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
//! across a Lua call: the key to read waits parked meanwhile.

use std::cell::RefCell;
use std::ffi::c_int;

use luapool_protocol::hot::{self, HotReply};
use luapool_protocol::{Key, Literal, Reply, Request, TableId, Value, Write, LONG_STRING};
use mlua::{ffi, Lua};

use super::error::ExtError;
use super::Ext;

/// The key of the long string a C function is about to read (no Rust
/// value may live across its Lua calls, which may `longjmp`).
#[derive(Default)]
pub(super) struct Parked(RefCell<Option<(TableId, Key)>>);

impl Ext {
    /// The long string `table[key]` of `len` bytes as a Lua string.
    pub(super) fn long_string(
        &self,
        lua: &Lua,
        table: TableId,
        key: Key,
        len: u64,
    ) -> Result<mlua::String, ExtError> {
        self.park_long(table, key);
        let mut failed: Option<ExtError> = None;
        // SAFETY: the closure pushes one value (checked room for it); the
        // only calls that may raise (`luaL_buffinitsize`,
        // `luaL_pushresultsize`: memory) happen while it holds nothing that
        // needs dropping (`failed` lives in the caller's frame).
        let s = unsafe {
            lua.exec_raw::<mlua::Value>((), |l| {
                if let Err(e) = push_long(l, self, len) {
                    failed = Some(e);
                    ffi::lua_pushnil(l);
                }
            })?
        };
        match (failed, s) {
            (Some(e), _) => Err(e),
            (None, mlua::Value::String(s)) => Ok(s),
            (None, _) => Err(self.link.unexpected("a long string did not arrive")),
        }
    }

    /// Reads the long string whose key waits parked into `dst` (`len`
    /// bytes). Runs no Lua code.
    fn read_long(&self, dst: *mut u8, len: usize) -> Result<(), ExtError> {
        let Some((table, key)) = self.long.0.borrow_mut().take() else {
            return Err(self.link.unexpected("no long string to read"));
        };
        let mut conn = self.link.conn();
        let mut off = 0;
        while off < len {
            let req = Request::GetStr {
                table,
                key: key.clone(),
                offset: off as u64,
            };
            let bytes = self.link.request_raw(&mut conn, req)?;
            let piece = match hot::read(bytes) {
                Ok(Some(HotReply::Bytes(piece))) => piece,
                Ok(_) => {
                    self.link.other(bytes)?;
                    return Err(self.link.unexpected("expected a piece of a string"));
                }
                Err(_) => return Err(self.link.unexpected("malformed piece of a string")),
            };
            if piece.is_empty() || piece.len() > len - off {
                return Err(ExtError::StringChanged(key));
            }
            // SAFETY: `dst` has room for `len` bytes and `off + piece.len() <= len`.
            unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), dst.add(off), piece.len()) };
            off += piece.len();
        }
        Ok(())
    }

    /// Parks the key of a long string for [`push_long`].
    pub fn park_long(&self, table: TableId, key: Key) {
        *self.long.0.borrow_mut() = Some((table, key));
    }

    /// `table[key] = s` for a string longer than [`LONG_STRING`]: the
    /// buffered writes, then the first piece, then the rest appended, each a
    /// message of at most a piece.
    pub(super) fn write_long(&self, table: TableId, key: Key, s: &[u8]) -> Result<(), ExtError> {
        let mut pieces = s.chunks(LONG_STRING);
        let first = pieces.next().unwrap_or_default().to_vec();
        let rest = pieces.map(|p| Request::Append {
            table,
            key: key.clone(),
            bytes: p.to_vec(),
        });
        let first = Request::Write(vec![Write {
            table,
            key: key.clone(),
            value: Literal::Value(Value::Str(first)),
        }]);
        for req in std::iter::once(first).chain(rest) {
            match self.link.request(req)? {
                Reply::Ok => {}
                _ => return Err(self.link.unexpected("expected Ok after a write")),
            }
        }
        Ok(())
    }
}

/// Pushes the long string whose key waits in `ext` (see
/// [`Ext::park_long`]), `len` bytes, read from the supervisor. `Err`: the
/// message of the Lua error to raise (nothing was pushed).
///
/// # Safety
/// `l` is a Lua state with a free stack slot. A Lua error (out of memory)
/// may `longjmp` out of here: the caller holds nothing that needs dropping.
pub unsafe fn push_long(l: *mut ffi::lua_State, ext: &Ext, len: u64) -> Result<(), ExtError> {
    let Ok(len) = usize::try_from(len) else {
        return Err(ExtError::StringTooLong);
    };
    let mut b: ffi::luaL_Buffer = std::mem::zeroed();
    let dst = ffi::luaL_buffinitsize(l, &mut b, len);
    match ext.read_long(dst.cast(), len) {
        Ok(()) => {
            ffi::luaL_pushresultsize(&mut b, len);
            Ok(())
        }
        Err(e) => {
            // Drop the buffer's box: leave the stack as it was.
            ffi::lua_pop(l, 1);
            Err(e)
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
        Err(e) => super::readonly::raise(l, e),
    }
}
