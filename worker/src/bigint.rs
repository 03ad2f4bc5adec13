//! `bigint`: arbitrary-precision integers for scripts, the surface of the
//! original Compute Unit's module, on `num-bigint`.
//!
//! ```lua
//! local a = bigint.new("123456789012345678901234567890")
//! local b = bigint.new("ff", 16) + 1           -- mixes with Lua integers
//! print(a * b, (a // 7):tostring(16), a:pow(3) > b, bigint.new(-7) % 3)
//! ```
//!
//! - `bigint.new(v [, base])`: from an integer, an integral float, another
//!   bigint, or a string of digits in `base` (2 to 36, default 10; an
//!   optional sign, `_` between digits allowed, nothing else).
//! - Methods (also as `bigint.add(a, b)` …): `add`, `sub`, `mul`, `div`,
//!   `mod`, `pow`, `tostring([base])`, `tointeger()` (nil if it does not
//!   fit), `sign()`, `abs()`, `bits()`.
//! - Metamethods: `+ - * // % ^`, unary `-`, `== < <=`, `tostring`, `..`.
//!   `/` is `//`: a bigint divided is a bigint. Division and modulo floor,
//!   as Lua's integers do (`-7 // 2 == -4`, `-7 % 3 == 2`). Either operand
//!   may be a Lua integer (or an integral float); `==` is Lua's, so a
//!   bigint equals only a bigint (`bigint.new(1) == 1` is false; compare
//!   with `<=`/`>=` or `tointeger()`).
//!
//! Every result is at most [`MAX_BITS`] bits, checked before the work is
//! done (a product, a power), so one operation is bounded in time and
//! memory and the compute's CPU and time limits hold between operations.
//! The digits live on the worker's Rust heap, counted with the compute's
//! other memory outside the Lua heap.

use std::cmp::Ordering;

use mlua::{FromLua, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};
use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_traits::{FromPrimitive, Num, One, Signed, ToPrimitive, Zero};

/// The most bits a bigint may have (about 79 000 decimal digits).
pub const MAX_BITS: u64 = 1 << 18;

/// A script's big integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Big(pub BigInt);

/// An error raised in the script, prefixed with the module's name.
fn err(msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("bigint: {msg}"))
}

/// Fails unless a result of `bits` bits is allowed.
fn fits(bits: u64) -> mlua::Result<()> {
    if bits > MAX_BITS {
        return Err(err(format!(
            "the result would have {bits} bits, over the limit of {MAX_BITS} bits"
        )));
    }
    Ok(())
}

/// A bigint checked against [`MAX_BITS`].
fn checked(v: BigInt) -> mlua::Result<Big> {
    fits(v.bits())?;
    Ok(Big(v))
}

/// An operand: a bigint, or a Lua integer or integral float.
struct Operand(BigInt);

impl FromLua for Operand {
    fn from_lua(v: Value, _: &Lua) -> mlua::Result<Operand> {
        match v {
            Value::Integer(i) => Ok(Operand(BigInt::from(i))),
            Value::Number(f) => float(f).map(Operand),
            Value::UserData(ud) => match ud.borrow::<Big>() {
                Ok(b) => Ok(Operand(b.0.clone())),
                Err(_) => Err(err("expected a bigint or an integer, got a userdata")),
            },
            other => Err(err(format!(
                "expected a bigint or an integer, got {}",
                match &other {
                    Value::String(_) => "a string (use bigint.new(s))",
                    _ => other.type_name(),
                }
            ))),
        }
    }
}

/// An integral, finite float as a bigint (exact: such a float is an integer).
fn float(f: f64) -> mlua::Result<BigInt> {
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(err(format!("{f} is not an integer")));
    }
    BigInt::from_f64(f).ok_or_else(|| err(format!("{f} is not an integer")))
}

/// Parses `s` in `base`: an optional sign, then digits, `_` allowed between them.
fn parse(s: &[u8], base: u32) -> mlua::Result<BigInt> {
    if !(2..=36).contains(&base) {
        return Err(err(format!("base {base} is out of range (2 to 36)")));
    }
    let text = std::str::from_utf8(s).map_err(|_| err("the string is not text"))?;
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && digits.chars().all(|c| c == '_' || c.is_digit(base));
    if !ok {
        let shown: String = text.chars().take(40).collect();
        return Err(err(format!("{shown:?} is not an integer in base {base}")));
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    // Bound the work before parsing: each digit adds at most log2(base) bits.
    let bits = (clean.len() as f64 * f64::from(base).log2()).ceil() as u64;
    fits(bits.saturating_sub(1))?;
    let v = BigInt::from_str_radix(&clean, base).map_err(err)?;
    Ok(if neg { -v } else { v })
}

impl Big {
    /// A bigint from its decimal text (as the store keeps it), checked
    /// against [`MAX_BITS`].
    pub fn from_decimal(text: &[u8]) -> mlua::Result<Big> {
        parse(text, 10).map(Big)
    }

    /// Its decimal text (as the store keeps it).
    pub fn to_decimal(&self) -> String {
        self.0.to_string()
    }
}

/// Floor division and modulo, as Lua's integers do them.
fn divide(a: &BigInt, b: &BigInt) -> mlua::Result<(BigInt, BigInt)> {
    if b.is_zero() {
        return Err(err("division by zero"));
    }
    Ok(a.div_mod_floor(b))
}

fn pow(a: &BigInt, e: &BigInt) -> mlua::Result<Big> {
    if e.is_negative() {
        return Err(err("a negative exponent gives no integer"));
    }
    // |a| <= 1 stays small whatever the exponent.
    if a.abs() <= BigInt::one() {
        let odd = e.is_odd();
        return Ok(Big(if a.is_negative() && !odd {
            BigInt::one()
        } else {
            a.clone()
        }));
    }
    let e = e.to_u32().ok_or_else(|| {
        err(format!(
            "the exponent is too large (the limit is {MAX_BITS} bits)"
        ))
    })?;
    // (bits(a) - 1) * e < bits(a^e) <= bits(a) * e.
    fits((a.bits() - 1).saturating_mul(u64::from(e)))?;
    checked(num_traits::Pow::pow(a, e))
}

fn to_string(v: &BigInt, base: Option<u32>) -> mlua::Result<String> {
    let base = base.unwrap_or(10);
    if !(2..=36).contains(&base) {
        return Err(err(format!("base {base} is out of range (2 to 36)")));
    }
    Ok(v.to_str_radix(base))
}

/// `bigint.new(v [, base])`.
fn new(v: Value, base: Option<u32>) -> mlua::Result<Big> {
    match (v, base) {
        (Value::String(s), base) => Ok(Big(parse(&s.as_bytes(), base.unwrap_or(10))?)),
        (_, Some(_)) => Err(err("a base goes with a string of digits")),
        (v, None) => match v {
            Value::Integer(i) => Ok(Big(BigInt::from(i))),
            Value::Number(f) => float(f).map(Big),
            Value::UserData(ud) => ud
                .borrow::<Big>()
                .map(|b| b.clone())
                .map_err(|_| err("expected a bigint, an integer or a string")),
            other => Err(err(format!(
                "cannot make a bigint from {}",
                other.type_name()
            ))),
        },
    }
}

/// The binary operations, by name: method, module function and metamethod.
fn binary(name: &str, a: &BigInt, b: &BigInt) -> mlua::Result<Big> {
    match name {
        "add" => {
            fits(a.bits().max(b.bits()) + 1)?;
            Ok(Big(a + b))
        }
        "sub" => {
            fits(a.bits().max(b.bits()) + 1)?;
            Ok(Big(a - b))
        }
        "mul" => {
            fits((a.bits() + b.bits()).saturating_sub(1))?;
            checked(a * b)
        }
        "div" => Ok(Big(divide(a, b)?.0)),
        "mod" => Ok(Big(divide(a, b)?.1)),
        "pow" => pow(a, b),
        _ => unreachable!("every name is listed in BINARY"),
    }
}

const BINARY: [(&str, MetaMethod); 6] = [
    ("add", MetaMethod::Add),
    ("sub", MetaMethod::Sub),
    ("mul", MetaMethod::Mul),
    ("div", MetaMethod::IDiv),
    ("mod", MetaMethod::Mod),
    ("pow", MetaMethod::Pow),
];

fn compare(a: &Operand, b: &Operand) -> Ordering {
    a.0.cmp(&b.0)
}

impl UserData for Big {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        for (name, meta) in BINARY {
            m.add_method(name, move |_, this, other: Operand| {
                binary(name, &this.0, &other.0)
            });
            m.add_meta_function(meta, move |_, (a, b): (Operand, Operand)| {
                binary(name, &a.0, &b.0)
            });
        }
        // `/` on bigints is floor division too (there is no bigint float).
        m.add_meta_function(MetaMethod::Div, |_, (a, b): (Operand, Operand)| {
            binary("div", &a.0, &b.0)
        });
        m.add_meta_method(MetaMethod::Unm, |_, this, ()| Ok(Big(-this.0.clone())));
        m.add_meta_function(MetaMethod::Eq, |_, (a, b): (Operand, Operand)| {
            Ok(compare(&a, &b) == Ordering::Equal)
        });
        m.add_meta_function(MetaMethod::Lt, |_, (a, b): (Operand, Operand)| {
            Ok(compare(&a, &b) == Ordering::Less)
        });
        m.add_meta_function(MetaMethod::Le, |_, (a, b): (Operand, Operand)| {
            Ok(compare(&a, &b) != Ordering::Greater)
        });
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| to_string(&this.0, None));
        m.add_meta_function(MetaMethod::Concat, |lua, (a, b): (Value, Value)| {
            let text = |v: &Value| -> mlua::Result<Vec<u8>> {
                match v {
                    Value::UserData(ud) if ud.is::<Big>() => {
                        Ok(ud.borrow::<Big>()?.0.to_string().into_bytes())
                    }
                    Value::String(s) => Ok(s.as_bytes().to_vec()),
                    Value::Integer(i) => Ok(i.to_string().into_bytes()),
                    Value::Number(f) => Ok(lua
                        .coerce_string(Value::Number(*f))?
                        .map(|s| s.as_bytes().to_vec())
                        .unwrap_or_default()),
                    other => Err(err(format!(
                        "attempt to concatenate a {} value",
                        other.type_name()
                    ))),
                }
            };
            let mut out = text(&a)?;
            out.extend(text(&b)?);
            lua.create_string(out)
        });
        m.add_method("tostring", |_, this, base: Option<u32>| {
            to_string(&this.0, base)
        });
        m.add_method("tointeger", |_, this, ()| Ok(this.0.to_i64()));
        m.add_method("sign", |_, this, ()| {
            Ok(match this.0.sign() {
                Sign::Minus => -1,
                Sign::NoSign => 0,
                Sign::Plus => 1,
            })
        });
        m.add_method("abs", |_, this, ()| Ok(Big(this.0.abs())));
        m.add_method("bits", |_, this, ()| Ok(this.0.bits() as i64));
    }
}

/// The `bigint` library table: `new`, the binary operations as functions,
/// `tostring`, and `isbigint(v)`.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "new",
        lua.create_function(|_, (v, base): (Value, Option<u32>)| new(v, base))?,
    )?;
    for (name, _) in BINARY {
        t.raw_set(
            name,
            lua.create_function(move |_, (a, b): (Operand, Operand)| binary(name, &a.0, &b.0))?,
        )?;
    }
    t.raw_set(
        "tostring",
        lua.create_function(|_, (a, base): (Operand, Option<u32>)| to_string(&a.0, base))?,
    )?;
    t.raw_set(
        "isbigint",
        lua.create_function(|_, v: Value| Ok(matches!(v, Value::UserData(ud) if ud.is::<Big>())))?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests;
