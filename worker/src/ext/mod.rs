//! External tables in the worker: everything between a script's `t[k]`
//! and the supervisor's store.
//!
//! - `prelude.lua`: the Lua half: a writable table's proxy and metamethods,
//!   walks, and the sandbox's `next`, `pairs`, `rawget`, … that know
//!   external tables.
//! - [`writable`]: writable tables (`_io`, `_home`, `ext.table()`), Lua
//!   proxies over a per-table cache: fetching into the cache
//!   (`materialize.rs` builds Lua values from a reply in bulk), buffered
//!   writes, tables reserved for plain tables a script stores, and
//!   `table.insert/remove/move/sort` done as whole operations.
//! - [`readonly`]: read-only tables (the input), light userdata over a
//!   Rust cache (`cache.rs`), read by C metamethods (`meta.rs`), with
//!   windows of a big array fetched ahead.
//! - `long.rs`: strings over `LONG_STRING`, in pieces both ways.
//! - `link.rs` / `conn.rs`: the conversation with the supervisor (one
//!   request, one reply; writes buffered; windows sent ahead), which
//!   remembers whether it broke.
//! - `error.rs`: [`ExtError`], every way an operation can fail.
//!
//! The replies are read in place with `luapool_protocol::hot`.

use std::rc::Rc;

use luapool_protocol::{Key, KeyError};
use mlua::{Lua, Table};

mod conn;
mod error;
mod link;
mod long;
pub mod readonly;
pub mod writable;

pub use conn::{Conn, ConnError};
pub use error::{BadKey, ExtError};
pub use link::Link;
pub use long::push_long_or_raise;
pub use writable::{id_key, Fns};

use long::Parked;
use readonly::ReadOnly;
use writable::Writable;

/// What a read found: the value, or a string too long for one message
/// (its key and length), to read in pieces.
#[derive(Debug)]
pub enum Got<T> {
    /// The value.
    Value(T),
    /// A string longer than `LONG_STRING`: its key and length.
    Long(Key, u64),
}

/// The external-table layer of a worker, by responsibility.
pub struct Ext {
    /// The conversation with the supervisor.
    pub link: Link,
    /// Writable tables: proxies, reserved tables, the prelude's functions.
    writable: Writable,
    /// Read-only tables: their cache, the windows fetched ahead.
    readonly: ReadOnly,
    /// The long string a C function is reading.
    long: Parked,
    /// Big integers and functions: this compute's conversions.
    pub values: crate::values::Values,
}

impl Ext {
    /// Builds the layer; [`set_fns`](Self::set_fns) completes it.
    pub fn new(conn: Conn) -> Rc<Ext> {
        Rc::new(Ext {
            link: Link::new(conn),
            writable: Writable::default(),
            readonly: ReadOnly::default(),
            long: Parked::default(),
            values: Default::default(),
        })
    }

    /// Hands over the prelude's functions (the prelude itself needs the
    /// read-only functions, which need this `Ext`, so they come second).
    pub fn set_fns(&self, fns: Fns) {
        self.writable.set_fns(fns);
    }

    /// Starts a compute: forgets every proxy and cached table of the
    /// previous one (between computes the store may reuse ids), and any
    /// reply to a window fetched ahead still in the ring.
    pub fn begin(&self, lua: &Lua) -> mlua::Result<()> {
        self.readonly.clear();
        loop {
            let r = self.link.conn().take_ahead().map(|x| x.is_some());
            match r {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(mlua::Error::runtime(self.link.lost(e))),
            }
        }
        self.writable.begin(lua)
    }

    /// Ends a compute's writes: sends what is still buffered.
    /// `Ok(Some(reply))`: the supervisor refused one of them.
    pub fn finish(&self) -> Result<Option<luapool_protocol::Reply>, ConnError> {
        self.link.conn().flush()
    }

    /// A proxy for a writable table known only by id (`_io`, `_home`).
    pub fn bare(&self, lua: &Lua, id: luapool_protocol::TableId, io: bool) -> mlua::Result<Table> {
        self.writable.make(lua, id, false, io)
    }
}

/// The key of an external table for a Lua value, with Lua's rules (an
/// integral float is the integer key).
pub fn key(v: &mlua::Value) -> Result<Key, BadKey> {
    Ok(match v {
        mlua::Value::Integer(i) => Key::Int(*i),
        mlua::Value::Number(f) => Key::from_f64(*f)?,
        mlua::Value::String(s) => Key::Str(s.as_bytes().to_vec()),
        mlua::Value::Boolean(b) => Key::Bool(*b),
        mlua::Value::Nil => return Err(KeyError::Nil.into()),
        // A read-only external table (`readonly/meta.rs`).
        mlua::Value::LightUserData(_) | mlua::Value::Table(_) => return Err(KeyError::Table.into()),
        mlua::Value::UserData(ud) if ud.is::<crate::bigint::Big>() => {
            return Err(KeyError::BigInt.into())
        }
        other => return Err(BadKey::Type(other.type_name())),
    })
}
