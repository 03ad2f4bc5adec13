//! Conversions between Lua values and protocol values, with Lua's key rules.

use std::collections::HashSet;
use std::ffi::c_void;

use luapool_protocol::{Key, Literal, TableId, Value};
use mlua::Table;

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

/// Converts a Lua value for storing: scalars and external tables as they are,
/// plain tables copied deeply (a cycle is an error). Also returns a rough
/// size in bytes, for the write buffer.
pub fn literal_of(v: &mlua::Value) -> Result<(Literal, usize), String> {
    let mut path = HashSet::new();
    let mut bytes = 0;
    let lit = literal(v, &mut path, 0, &mut bytes).map_err(CopyError::into_message)?;
    Ok((lit, bytes))
}

/// Why a plain table cannot be copied: a message, and the keys from the
/// table assigned down to the offending value (innermost first).
struct CopyError {
    keys: Vec<Key>,
    message: String,
}

impl From<String> for CopyError {
    fn from(message: String) -> CopyError {
        CopyError {
            keys: Vec::new(),
            message,
        }
    }
}

impl CopyError {
    fn at(mut self, key: Key) -> CopyError {
        self.keys.push(key);
        self
    }

    /// `at key 'a' > 'b' > 3: message`; a long path keeps its ends only.
    fn into_message(self) -> String {
        if self.keys.is_empty() {
            return self.message;
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
        format!("at key {path}: {}", self.message)
    }
}

fn literal(
    v: &mlua::Value,
    path: &mut HashSet<*const c_void>,
    depth: usize,
    bytes: &mut usize,
) -> Result<Literal, CopyError> {
    *bytes += 16;
    let value = match v {
        mlua::Value::Nil => Value::Nil,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::Int(*i),
        mlua::Value::Number(f) => Value::Float(*f),
        mlua::Value::String(s) => {
            let b = s.as_bytes().to_vec();
            *bytes += b.len();
            Value::Str(b)
        }
        // Every light userdata a script holds is a read-only external
        // table: its pointer is the id (ro_meta.rs).
        mlua::Value::LightUserData(p) => Value::Table(TableId::from_raw(p.0 as u64)),
        mlua::Value::Table(t) => {
            if let Some(id) = external_id(t) {
                Value::Table(TableId::from_raw(id as u64))
            } else {
                return copy_table(t, path, depth, bytes);
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

fn copy_table(
    t: &Table,
    path: &mut HashSet<*const c_void>,
    depth: usize,
    bytes: &mut usize,
) -> Result<Literal, CopyError> {
    if depth >= MAX_COPY_DEPTH {
        return Err(format!("table nested deeper than {MAX_COPY_DEPTH} levels").into());
    }
    let ptr = t.to_pointer();
    if !path.insert(ptr) {
        return Err(String::from("a table that contains itself (a cycle) cannot be copied").into());
    }
    let mut array = Vec::new();
    loop {
        let v: mlua::Value = t.raw_get(array.len() + 1).map_err(|e| e.to_string())?;
        if v.is_nil() {
            break;
        }
        let key = Key::Int(array.len() as i64 + 1);
        array.push(literal(&v, path, depth + 1, bytes).map_err(|e| e.at(key))?);
    }
    let n = array.len() as i64;
    let mut hash = Vec::new();
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let key = key_of(&k)?;
        if matches!(key, Key::Int(i) if i >= 1 && i <= n) {
            continue;
        }
        let lit = literal(&v, path, depth + 1, bytes).map_err(|e| e.at(key.clone()))?;
        hash.push((key, lit));
    }
    path.remove(&ptr);
    Ok(Literal::Table { array, hash })
}
