//! Loading host data given as MessagePack bytes straight into an arena: the
//! session API serializes with rmp-serde and the daemon receives MessagePack
//! already, so no tree of Rust values is built on the way (100 000 records
//! load in about a third of the time the `HostValue` route took).
//!
//! As in [`convert`](super::convert): the cost is computed first and the
//! quota checked, so a refused load changes nothing. Conversion follows the
//! host rules (`HostValue`'s): nil → nil, integers (above `i64::MAX`: big
//! integers), floats, str and bin → strings, ext 1 → big integers and ext 2
//! → functions (checked, see `luapool_protocol::ext_value`), arrays →
//! tables "created from an array", maps → tables with keys by Lua's rules
//! (an integral float is the integer key; nil and NaN keys, and big
//! integers and functions as keys, are errors).

use luapool_protocol::ext_value::{ext_text, ExtValueError, EXT_BIGINT, EXT_FUNCTION};
use luapool_protocol::mp::{Cursor, Token};
use luapool_protocol::{Key, KeyError, Value};

use super::arena::Arena;
use super::cell::{KeyView, SValue};
use super::table::{Table, SLOT_BYTES, TABLE_BYTES};
use super::{StoreError, MAX_NESTING};

/// Loads one MessagePack value; see [`Store::load_msgpack`](super::Store::load_msgpack).
pub(crate) fn load(arena: &mut Arena, bytes: &[u8], readonly: bool) -> Result<Value, StoreError> {
    let mut probe = Cursor::new(bytes);
    let cost = cost(&mut probe, 0)?;
    // `bytes` is exactly one value: anything after it is malformed input.
    if !probe.rest().is_empty() {
        return Err(StoreError::Malformed);
    }
    arena.reserve(cost)?;
    let mut c = Cursor::new(bytes);
    Ok(match build(arena, &mut c, readonly)? {
        SValue::Table(id) => Value::Table(id),
        other => other.to_value(),
    })
}

fn token<'a>(c: &mut Cursor<'a>) -> Result<Token<'a>, StoreError> {
    c.token().map_err(|_| StoreError::Malformed)
}

/// The key a token stands for, by Lua's rules.
fn key(t: Token<'_>) -> Result<KeyView<'_>, StoreError> {
    let float = |f: f64| match Key::from_f64(f)? {
        Key::Int(i) => Ok(KeyView::Int(i)),
        Key::Float(bits) => Ok(KeyView::Float(bits)),
        _ => unreachable!("from_f64 makes numbers"),
    };
    match t {
        Token::Int(i) => Ok(KeyView::Int(i)),
        Token::BigUint(u) => float(u as f64),
        Token::Float(f) => float(f),
        Token::Str(s) | Token::Bin(s) => Ok(KeyView::Str(s)),
        Token::Bool(b) => Ok(KeyView::Bool(b)),
        Token::Nil => Err(KeyError::Nil.into()),
        Token::Array(_) | Token::Map(_) => Err(KeyError::Table.into()),
        Token::Ext(EXT_BIGINT, _) => Err(KeyError::BigInt.into()),
        Token::Ext(EXT_FUNCTION, _) => Err(KeyError::Function.into()),
        Token::Ext(ty, _) => Err(ExtValueError::UnknownType(ty).into()),
    }
}

/// What a scalar holds beyond its slot: a string's bytes, a big integer's
/// digits, a function's source.
fn str_len(t: &Token<'_>) -> u64 {
    match t {
        Token::Str(s) | Token::Bin(s) | Token::Ext(_, s) => s.len() as u64,
        Token::BigUint(_) => 20,
        _ => 0,
    }
}

/// Accounted bytes of the value at `c` (an upper bound), reading past it:
/// a string's length, or a table's size with everything in it.
fn cost(c: &mut Cursor<'_>, depth: usize) -> Result<u64, StoreError> {
    if depth > MAX_NESTING {
        return Err(StoreError::TooDeep);
    }
    let t = token(c)?;
    let (n, map) = match t {
        Token::Array(n) => (n, false),
        Token::Map(n) => (n, true),
        Token::Ext(ty, b) => {
            ext_text(ty, b)?;
            return Ok(str_len(&t));
        }
        scalar => return Ok(str_len(&scalar)),
    };
    // A container cannot hold more values than bytes remain.
    if n > c.rest().len() {
        return Err(StoreError::Malformed);
    }
    let mut total = TABLE_BYTES;
    for _ in 0..n {
        if map {
            let k = token(c)?;
            key(k)?;
            total += SLOT_BYTES + str_len(&k);
        }
        total += SLOT_BYTES + cost(c, depth + 1)?;
    }
    Ok(total)
}

/// Builds the value at `c` (checked by [`cost`] already, nesting included).
fn build(arena: &mut Arena, c: &mut Cursor<'_>, readonly: bool) -> Result<SValue, StoreError> {
    Ok(match token(c)? {
        Token::Nil => SValue::Nil,
        Token::Bool(b) => SValue::Bool(b),
        Token::Int(i) => SValue::Int(i),
        Token::BigUint(u) => SValue::Big(u.to_string().into()),
        Token::Float(f) => SValue::Float(f),
        Token::Str(s) | Token::Bin(s) => SValue::str(s),
        Token::Ext(ty, b) => match ext_text(ty, b)? {
            (EXT_BIGINT, t) => SValue::Big(t.into()),
            (_, t) => SValue::Func(t.into()),
        },
        Token::Array(n) => {
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(build(arena, c, readonly)?);
            }
            let (t, bytes) = Table::from_array_cells(items, readonly);
            SValue::Table(arena.insert(t, bytes)?)
        }
        Token::Map(n) => {
            let mut t = Table::new(readonly, false);
            let mut bytes = TABLE_BYTES as i64;
            for _ in 0..n {
                let k = token(c)?;
                let v = build(arena, c, readonly)?;
                bytes += t.set_view(key(k)?, v);
            }
            bytes -= t.compact() as i64;
            SValue::Table(arena.insert(t, bytes.max(0) as u64)?)
        }
    })
}
