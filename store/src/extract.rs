//! Deep reads for the host, bounded by bytes: a table becomes a MessagePack
//! array or map, written straight from the cells ([`emit`]), or a
//! [`HostValue`] read back from those bytes ([`to_host`]).
//!
//! A table whose keys are exactly `1..n` (n ≥ 1) is an array; an empty table
//! is an array if it was made from an array, else a map; every other table is
//! a map (array-part entries first, then the hash part in insertion order).
//! Strings are `str` when they are UTF-8, else `bin`; keys keep their types.
//!
//! Every conversion runs against an [`OutputBudget`]: a table reachable along
//! two paths is emitted twice, and each time counts, so an output of a few
//! megabytes that shares one table 100 000 times stops at the budget with
//! [`StoreError::OutputTooLarge`] instead of building 100 GiB. Where the
//! result is a value tree ([`HostValue`]), each value and map key also
//! counts what it takes in memory. The output buffer grows no further than
//! the budget. A table that contains itself is [`StoreError::Cycle`].

use std::collections::HashSet;

use luapool_protocol::ext_value::{ext_text, EXT_BIGINT, EXT_FUNCTION};
use luapool_protocol::mp::{Cursor, Token};
use luapool_protocol::{Key, TableId, Value};
use rmp::encode as mp;

use super::arena::Arena;
use super::cell::{KeyView, SValue};
use super::table::Table;
use super::{StoreError, MAX_NESTING};
use luapool_protocol::api::HostValue;

/// The default of [`OutputBudget`]'s limit: 1 GiB, what a session may store.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 30;

/// What one value of a [`HostValue`] tree takes in memory, beyond its bytes.
const TREE_VALUE_BYTES: u64 = std::mem::size_of::<HostValue>() as u64;
/// What one map key of a [`HostValue`] tree takes in memory, beyond its bytes.
const TREE_KEY_BYTES: u64 = std::mem::size_of::<Key>() as u64;

/// The bytes a conversion out of the store may still produce. One budget
/// may be shared by several conversions (a compute's return values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBudget {
    limit: u64,
    used: u64,
}

impl OutputBudget {
    /// A budget of `limit` bytes (0: unlimited).
    pub fn new(limit: u64) -> OutputBudget {
        OutputBudget { limit, used: 0 }
    }

    /// Counts `n` more bytes; past the limit, [`StoreError::OutputTooLarge`].
    pub fn charge(&mut self, n: u64) -> Result<(), StoreError> {
        self.used = self.used.saturating_add(n);
        if self.limit != 0 && self.used > self.limit {
            return Err(StoreError::OutputTooLarge { limit: self.limit });
        }
        Ok(())
    }

    /// Bytes counted so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The limit (0: unlimited).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Makes room in `out` for `n` more bytes, growing it no further than
    /// the limit allows (plus a little slack for a header), so a refused
    /// output never holds twice its limit.
    fn room(&self, out: &mut Vec<u8>, n: usize) {
        if out.capacity() - out.len() >= n {
            return;
        }
        let mut want = out.capacity().saturating_mul(2).max(out.len() + n);
        if self.limit != 0 {
            let cap = usize::try_from(self.limit).unwrap_or(usize::MAX);
            want = want.min(cap.saturating_add(64)).max(out.len() + n);
        }
        out.reserve_exact(want - out.len());
    }
}

/// Writes `v` (of `arena`, or a scalar) as MessagePack into `out`, charging
/// `budget` for every byte; `tree` also charges what a [`HostValue`] tree of
/// it would take.
pub(crate) fn emit(
    arena: Option<&Arena>,
    v: &Value,
    budget: &mut OutputBudget,
    tree: bool,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let mut e = Emitter {
        arena,
        on_path: HashSet::new(),
        budget,
        tree,
        out,
    };
    match v {
        Value::Table(id) => e.table(*id, 0),
        Value::Nil => e.scalar(&SValue::Nil),
        Value::Bool(b) => e.scalar(&SValue::Bool(*b)),
        Value::Int(i) => e.scalar(&SValue::Int(*i)),
        Value::Float(f) => e.scalar(&SValue::Float(*f)),
        Value::Str(s) => e.string(s, false),
        Value::BigInt(t) => e.ext(EXT_BIGINT, t.as_bytes()),
        Value::Function(t) => e.ext(EXT_FUNCTION, t.as_bytes()),
    }
}

struct Emitter<'a, 'b> {
    arena: Option<&'a Arena>,
    /// Tables being converted (the path from the root), to detect cycles.
    on_path: HashSet<TableId>,
    budget: &'b mut OutputBudget,
    tree: bool,
    out: &'b mut Vec<u8>,
}

impl Emitter<'_, '_> {
    /// Charges a value (or key) of `bytes` encoded bytes and makes room for it.
    fn charge(&mut self, bytes: usize, key: bool) -> Result<(), StoreError> {
        let extra = match (self.tree, key) {
            (false, _) => 0,
            (true, false) => TREE_VALUE_BYTES,
            (true, true) => TREE_KEY_BYTES,
        };
        self.budget.charge(bytes as u64 + extra)?;
        self.budget.room(self.out, bytes);
        Ok(())
    }

    /// Writes a small item (at most 9 bytes) with `write`, charging exactly
    /// what it wrote.
    fn small(&mut self, key: bool, write: impl FnOnce(&mut &mut [u8])) -> Result<(), StoreError> {
        let mut buf = [0u8; 9];
        let mut rest = &mut buf[..];
        write(&mut rest);
        let n = 9 - rest.len();
        self.charge(n, key)?;
        self.out.extend_from_slice(&buf[..n]);
        Ok(())
    }

    fn string(&mut self, s: &[u8], key: bool) -> Result<(), StoreError> {
        self.charge(text_len(s.len()), key)?;
        write_text(self.out, s);
        Ok(())
    }

    /// A big integer or a function: MessagePack ext 1 or 2.
    fn ext(&mut self, ty: i8, payload: &[u8]) -> Result<(), StoreError> {
        self.charge(ext_len(payload.len()), false)?;
        let _ = mp::write_ext_meta(self.out, payload.len() as u32, ty);
        self.out.extend_from_slice(payload);
        Ok(())
    }

    fn scalar(&mut self, v: &SValue) -> Result<(), StoreError> {
        match v {
            SValue::Big(t) => self.ext(EXT_BIGINT, t.as_bytes()),
            SValue::Func(t) => self.ext(EXT_FUNCTION, t.as_bytes()),
            SValue::Short(..) | SValue::Long(_) => {
                self.string(v.bytes().unwrap_or_default(), false)
            }
            SValue::Table(id) => Err(StoreError::UnknownTable(*id)),
            SValue::Nil => self.small(false, |o| mp::write_nil(o).unwrap_or(())),
            SValue::Bool(b) => self.small(false, |o| mp::write_bool(o, *b).unwrap_or(())),
            SValue::Int(i) => self.small(false, |o| drop(mp::write_sint(o, *i))),
            SValue::Float(f) => self.small(false, |o| mp::write_f64(o, *f).unwrap_or(())),
        }
    }

    fn value(&mut self, v: &SValue, depth: usize) -> Result<(), StoreError> {
        match v {
            SValue::Table(id) => self.table(*id, depth + 1),
            _ => self.scalar(v),
        }
    }

    fn key(&mut self, k: KeyView<'_>) -> Result<(), StoreError> {
        match k {
            KeyView::Str(s) => self.string(s, true),
            KeyView::Int(i) => self.small(true, |o| drop(mp::write_sint(o, i))),
            KeyView::Bool(b) => self.small(true, |o| mp::write_bool(o, b).unwrap_or(())),
            KeyView::Float(bits) => self.small(true, |o| {
                mp::write_f64(o, f64::from_bits(bits)).unwrap_or(())
            }),
        }
    }

    fn table(&mut self, id: TableId, depth: usize) -> Result<(), StoreError> {
        let arena = self.arena.ok_or(StoreError::UnknownTable(id))?;
        if depth >= MAX_NESTING {
            return Err(StoreError::TooDeep);
        }
        if !self.on_path.insert(id) {
            return Err(StoreError::Cycle);
        }
        let t = arena.table(id)?;
        if is_array(t) {
            let n = len32(t.array().len())?;
            self.small(false, |o| drop(mp::write_array_len(o, n)))?;
            for v in t.array() {
                self.value(v, depth)?;
            }
        } else {
            let live = t.array().iter().filter(|v| !v.is_nil()).count();
            let n = len32(live + t.hash_live().count())?;
            self.small(false, |o| drop(mp::write_map_len(o, n)))?;
            for (i, v) in t.array().iter().enumerate() {
                if !v.is_nil() {
                    self.key(KeyView::Int(i as i64 + 1))?;
                    self.value(v, depth)?;
                }
            }
            for (k, v) in t.hash_live() {
                self.key(k.view())?;
                self.value(v, depth)?;
            }
        }
        self.on_path.remove(&id);
        Ok(())
    }
}

/// A container length as MessagePack allows it.
fn len32(n: usize) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::OutputTooLarge {
        limit: u32::MAX as u64,
    })
}

/// The encoded length of a string of `n` bytes (as `str` or `bin`, whose
/// headers differ only for `str` under 32 bytes, which is then shorter).
fn text_len(n: usize) -> usize {
    n + match n {
        0..=255 => 2,
        256..=65_535 => 3,
        _ => 5,
    }
}

/// The encoded length of an ext value of `n` bytes (at most: a fixext is
/// shorter).
fn ext_len(n: usize) -> usize {
    text_len(n) + 1
}

/// A string as `str` when it is UTF-8, else as `bin` (what `HostValue`'s
/// serde form writes).
fn write_text(out: &mut Vec<u8>, s: &[u8]) {
    match std::str::from_utf8(s) {
        Ok(t) => mp::write_str(out, t).unwrap_or(()),
        Err(_) => mp::write_bin(out, s).unwrap_or(()),
    }
}

/// True if the table's keys are exactly `1..n` (n ≥ 1), or it is empty and was
/// made from an array. (Integer keys `1..=n` live only in the array part, and
/// key `n + 1` never in the hash part, so a hole-free array part with an empty
/// hash part means exactly `1..n`.)
fn is_array(t: &Table) -> bool {
    t.hash_is_empty()
        && (t.from_array || !t.array().is_empty())
        && !t.array().iter().any(SValue::is_nil)
}

/// Reads back one value that [`emit`] wrote.
pub(crate) fn to_host(bytes: &[u8]) -> Result<HostValue, StoreError> {
    let mut c = Cursor::new(bytes);
    let v = host(&mut c, 0)?;
    if !c.rest().is_empty() {
        return Err(StoreError::Malformed);
    }
    Ok(v)
}

fn host(c: &mut Cursor<'_>, depth: usize) -> Result<HostValue, StoreError> {
    if depth > MAX_NESTING + 1 {
        return Err(StoreError::TooDeep);
    }
    let t = c.token().map_err(|_| StoreError::Malformed)?;
    Ok(match t {
        Token::Nil => HostValue::Nil,
        Token::Bool(b) => HostValue::Bool(b),
        Token::Int(i) => HostValue::Int(i),
        Token::BigUint(u) => HostValue::BigInt(u.to_string()),
        Token::Float(f) => HostValue::Float(f),
        Token::Str(s) | Token::Bin(s) => HostValue::Str(s.to_vec()),
        Token::Ext(ty, b) => match ext_text(ty, b)? {
            (EXT_BIGINT, t) => HostValue::BigInt(t.into_owned()),
            (_, t) => HostValue::Function(t.into_owned()),
        },
        Token::Array(n) => {
            let mut items = Vec::with_capacity(n.min(c.rest().len()));
            for _ in 0..n {
                items.push(host(c, depth + 1)?);
            }
            HostValue::Array(items)
        }
        Token::Map(n) => {
            let mut entries = Vec::with_capacity(n.min(c.rest().len()));
            for _ in 0..n {
                let k = match c.token().map_err(|_| StoreError::Malformed)? {
                    Token::Int(i) => Key::Int(i),
                    Token::Bool(b) => Key::Bool(b),
                    Token::Float(f) => Key::Float(f.to_bits()),
                    Token::Str(s) | Token::Bin(s) => Key::Str(s.to_vec()),
                    _ => return Err(StoreError::Malformed),
                };
                entries.push((k, host(c, depth + 1)?));
            }
            HostValue::Map(entries)
        }
    })
}
