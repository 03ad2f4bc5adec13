//! Conversions between Lua values and protocol values, with Lua's key rules.
//! A `bigint` and a function become their text (`values.rs`).

use std::collections::HashSet;
use std::ffi::c_void;

use luapool_protocol::{Key, Literal, TableId, Value};
use mlua::{Lua, Table};

use crate::memory::{self, OutOfMemory};
use crate::stop::{self, Reason};
use crate::values::{big_text, Values};

/// Deepest plain table a compute may copy into the store.
pub const MAX_COPY_DEPTH: usize = luapool_protocol::MAX_LITERAL_DEPTH;

/// The table id of a writable external table's proxy, if `t` is one.
pub fn external_id(t: &Table) -> Option<i64> {
    // Every proxy, and nothing else, holds its id under a private key (see
    // prelude.lua): a plain table cannot pass for an external one.
    t.raw_get::<Option<i64>>(crate::ext::id_key())
        .ok()
        .flatten()
}

/// The store key for a Lua value, or a message saying why it cannot be one.
pub fn key_of(v: &mlua::Value) -> Result<Key, String> {
    crate::ext::key(v).map_err(|e| e.to_string())
}

/// The conversion limit: the most a compute may copy out of Lua in one
/// value (a plain table assigned to an external table, a return value, a
/// `print` line), counted as [`NODE_BYTES`] per value and key plus the
/// bytes of its strings, a part shared by reference counted each time it
/// appears. Half the ring's message limit, so that what passes always fits
/// one message. Past it the compute stops with a typed error naming it.
pub const MAX_COPY_BYTES: usize = luapool_protocol::DEFAULT_MAX_MESSAGE / 2;
/// What one value or key counts toward [`MAX_COPY_BYTES`], besides its bytes
/// (at least what it takes encoded, with its enum tags).
pub const NODE_BYTES: usize = 32;

/// Converts a Lua value for storing: scalars and external tables as they are,
/// plain tables copied deeply (a cycle is an error), a `bigint` and a Lua
/// function as their text (a function with upvalues is an error). Also
/// returns its size as counted for [`MAX_COPY_BYTES`]. The memory the copy
/// takes counts toward the compute's limit (`memory.rs`); running out of
/// it, or passing the conversion limit, also stops the compute.
pub fn literal_of(
    lua: &Lua,
    values: &Values,
    v: &mlua::Value,
) -> Result<(Literal, usize), CopyError> {
    let mut cx = Cx {
        lua,
        values,
        path: HashSet::new(),
        bytes: 0,
    };
    let lit = literal(&mut cx, v, 0)?;
    Ok((lit, cx.bytes))
}

/// One copy out of Lua: what it needs and what it has counted.
struct Cx<'a> {
    lua: &'a Lua,
    values: &'a Values,
    /// The plain tables from the value copied down to the one being copied.
    path: HashSet<*const c_void>,
    bytes: usize,
}

/// Why a value cannot be copied out of Lua.
#[derive(Debug)]
pub enum CopyErrorKind {
    /// Not a value an external table can hold (a function, a cycle, …).
    Invalid(String),
    /// Past [`MAX_COPY_BYTES`]; the compute is stopped.
    TooLarge,
    /// Past the compute's memory limit; the compute is stopped.
    Memory(OutOfMemory),
    /// The compute is being stopped (CPU time, cancel) mid-copy.
    Stopped,
}

/// Why a plain table cannot be copied: what, and the keys from the table
/// assigned down to the offending value (innermost first).
#[derive(Debug)]
pub struct CopyError {
    keys: Vec<Key>,
    /// What went wrong.
    pub kind: CopyErrorKind,
}

impl From<CopyErrorKind> for CopyError {
    fn from(kind: CopyErrorKind) -> CopyError {
        CopyError {
            keys: Vec::new(),
            kind,
        }
    }
}

impl From<String> for CopyError {
    fn from(message: String) -> CopyError {
        CopyErrorKind::Invalid(message).into()
    }
}

impl CopyError {
    fn at(mut self, key: Key) -> CopyError {
        if matches!(self.kind, CopyErrorKind::Invalid(_)) {
            self.keys.push(key);
        }
        self
    }
}

/// `at key 'a' > 'b' > 3: message`; a long path keeps its ends only.
impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = match &self.kind {
            CopyErrorKind::Invalid(m) => m.clone(),
            CopyErrorKind::TooLarge => {
                format!("the value is larger than the conversion limit of {MAX_COPY_BYTES} bytes")
            }
            CopyErrorKind::Memory(e) => e.to_string(),
            CopyErrorKind::Stopped => "the compute is being stopped".into(),
        };
        if self.keys.is_empty() {
            return f.write_str(&message);
        }
        let keys: Vec<String> = self.keys.iter().rev().map(ToString::to_string).collect();
        let path = if keys.len() <= 6 {
            keys.join(" > ")
        } else {
            let hidden = keys.len() - 5;
            format!(
                "{} > … {hidden} more … > {}",
                keys[..3].join(" > "),
                keys[keys.len() - 2..].join(" > ")
            )
        };
        write!(f, "at key {path}: {message}")
    }
}

impl std::error::Error for CopyError {}

/// Counts `more` bytes toward the conversion limit and the memory limit,
/// before they are allocated.
fn count(bytes: &mut usize, more: usize) -> Result<(), CopyError> {
    *bytes = bytes.saturating_add(more);
    if *bytes > MAX_COPY_BYTES {
        stop::halt(Reason::Conversion);
        return Err(CopyErrorKind::TooLarge.into());
    }
    memory::reserve(more).map_err(|e| CopyErrorKind::Memory(e).into())
}

/// Counts a line of `len` bytes (a `print` line) like a copy.
pub fn count_line(len: usize) -> Result<(), CopyError> {
    count(&mut 0, len)
}

fn literal(cx: &mut Cx<'_>, v: &mlua::Value, depth: usize) -> Result<Literal, CopyError> {
    let value = match v {
        mlua::Value::Nil => Value::Nil,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::Int(*i),
        mlua::Value::Number(f) => Value::Float(*f),
        mlua::Value::String(s) => {
            let s = s.as_bytes();
            count(&mut cx.bytes, s.len())?;
            Value::Str(s.to_vec())
        }
        mlua::Value::UserData(ud) if big_text(ud).is_some() => {
            let text = big_text(ud).unwrap_or_default();
            count(&mut cx.bytes, text.len())?;
            Value::BigInt(text)
        }
        mlua::Value::Function(f) => {
            let text = cx.values.function_text(cx.lua, f)?;
            count(&mut cx.bytes, text.len())?;
            Value::Function(text.to_string())
        }
        // Every light userdata a script holds is a read-only external
        // table: its pointer is the id (ext/readonly/meta.rs).
        mlua::Value::LightUserData(p) => Value::Table(TableId::from_raw(p.0 as u64)),
        mlua::Value::Table(t) => {
            if let Some(id) = external_id(t) {
                Value::Table(TableId::from_raw(id as u64))
            } else {
                return copy_table(cx, t, depth);
            }
        }
        other => {
            return Err(CopyError::from(format!(
                "a {} cannot be stored in an external table",
                other.type_name()
            )))
        }
    };
    Ok(Literal::Value(value))
}

fn copy_table(cx: &mut Cx<'_>, t: &Table, depth: usize) -> Result<Literal, CopyError> {
    if depth >= MAX_COPY_DEPTH {
        return Err(format!("table nested deeper than {MAX_COPY_DEPTH} levels").into());
    }
    if stop::pending() {
        return Err(CopyErrorKind::Stopped.into());
    }
    let ptr = t.to_pointer();
    if !cx.path.insert(ptr) {
        return Err(String::from("a table that contains itself (a cycle) cannot be copied").into());
    }
    let mut array = Vec::new();
    loop {
        let v: mlua::Value = t.raw_get(array.len() + 1).map_err(|e| e.to_string())?;
        if v.is_nil() {
            break;
        }
        count(&mut cx.bytes, NODE_BYTES)?;
        let key = Key::Int(array.len() as i64 + 1);
        array.push(literal(cx, &v, depth + 1).map_err(|e| e.at(key))?);
    }
    let n = array.len() as i64;
    let mut hash = Vec::new();
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let key = key_of(&k)?;
        if matches!(key, Key::Int(i) if i >= 1 && i <= n) {
            continue;
        }
        let key_bytes = match &key {
            Key::Str(s) => s.len(),
            _ => 0,
        };
        count(&mut cx.bytes, 2 * NODE_BYTES + key_bytes)?;
        let lit = literal(cx, &v, depth + 1).map_err(|e| e.at(key.clone()))?;
        hash.push((key, lit));
    }
    cx.path.remove(&ptr);
    Ok(Literal::Table { array, hash })
}
