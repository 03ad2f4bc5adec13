//! Conversions between Lua values and protocol values, with Lua's key rules.

use std::collections::HashSet;
use std::ffi::c_void;

use luapool_protocol::{Key, Literal, Value};
use mlua::Table;

/// Deepest plain table a compute may copy into the store.
pub const MAX_COPY_DEPTH: usize = 200;

/// The table id of an external table's proxy, if `t` is one.
pub fn external_id(t: &Table) -> Option<i64> {
    t.metatable()?
        .raw_get::<Option<i64>>("lp_id")
        .ok()
        .flatten()
}

/// The store key for a Lua value, or a message saying why it cannot be one.
pub fn key_of(v: &mlua::Value) -> Result<Key, String> {
    match v {
        mlua::Value::Integer(i) => Ok(Key::Int(*i)),
        mlua::Value::Number(f) => Key::from_f64(*f).map_err(|e| e.to_string()),
        mlua::Value::String(s) => Ok(Key::Str(s.as_bytes().to_vec())),
        mlua::Value::Boolean(b) => Ok(Key::Bool(*b)),
        mlua::Value::Nil => Err("table index is nil".into()),
        other => Err(format!(
            "a {} cannot be a key of an external table",
            other.type_name()
        )),
    }
}

/// Converts a Lua value for storing: scalars and external tables as they are,
/// plain tables copied deeply (a cycle is an error). Also returns a rough
/// size in bytes, for the write buffer.
pub fn literal_of(v: &mlua::Value) -> Result<(Literal, usize), String> {
    let mut path = HashSet::new();
    let mut bytes = 0;
    let lit = literal(v, &mut path, 0, &mut bytes)?;
    Ok((lit, bytes))
}

fn literal(
    v: &mlua::Value,
    path: &mut HashSet<*const c_void>,
    depth: usize,
    bytes: &mut usize,
) -> Result<Literal, String> {
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
        mlua::Value::Table(t) => {
            if let Some(id) = external_id(t) {
                Value::Table(id as u64)
            } else {
                return copy_table(t, path, depth, bytes);
            }
        }
        other => {
            return Err(format!(
                "a {} cannot be stored in an external table",
                other.type_name()
            ))
        }
    };
    Ok(Literal::Value(value))
}

fn copy_table(
    t: &Table,
    path: &mut HashSet<*const c_void>,
    depth: usize,
    bytes: &mut usize,
) -> Result<Literal, String> {
    if depth >= MAX_COPY_DEPTH {
        return Err(format!("table nested deeper than {MAX_COPY_DEPTH} levels"));
    }
    let ptr = t.to_pointer();
    if !path.insert(ptr) {
        return Err("a table that contains itself (a cycle) cannot be copied".into());
    }
    let mut array = Vec::new();
    loop {
        let v: mlua::Value = t.raw_get(array.len() + 1).map_err(|e| e.to_string())?;
        if v.is_nil() {
            break;
        }
        array.push(literal(&v, path, depth + 1, bytes)?);
    }
    let n = array.len() as i64;
    let mut hash = Vec::new();
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let key = key_of(&k)?;
        if matches!(key, Key::Int(i) if i >= 1 && i <= n) {
            continue;
        }
        let lit = literal(&v, path, depth + 1, bytes).map_err(|e| format!("at key {key}: {e}"))?;
        hash.push((key, lit));
    }
    path.remove(&ptr);
    Ok(Literal::Table { array, hash })
}
