//! The two values that travel as MessagePack extension types, defined once
//! for every place they cross (worker ↔ supervisor, the socket, persisted
//! homes): a big integer (ext [`EXT_BIGINT`], its ASCII decimal digits with
//! an optional `-`) and a Lua function (ext [`EXT_FUNCTION`], its source
//! text as a function expression, `function(x) return x end`).
//!
//! Every payload from outside is checked here before anything is stored:
//! - a big integer is `-?[0-9]+`, at most [`MAX_BIGINT_DIGITS`] digits,
//!   written canonically (no leading zeros, no `-0`);
//! - a function's source is UTF-8 without NUL bytes, at most
//!   [`MAX_FUNCTION_BYTES`] bytes,
//!   and reads as one function expression: it starts with the keyword
//!   `function` and ends with `end` (the worker checks the whole shape again
//!   when it compiles the text, in the reading compute's sandbox).

use std::borrow::Cow;

/// The MessagePack extension type of a big integer.
pub const EXT_BIGINT: i8 = 1;
/// The MessagePack extension type of a Lua function.
pub const EXT_FUNCTION: i8 = 2;

/// The most decimal digits a big integer may have: every number of this
/// many digits fits the worker's `bigint` (2^18 bits): 10^78 913 < 2^262 144.
/// (Some of 78 914 digits fit too, but not all: a limit by digits must be
/// one every such number meets.)
pub const MAX_BIGINT_DIGITS: usize = 78_913;

/// The most bytes of a function's source: a function never travels in
/// pieces, so it stays within one string piece
/// ([`LONG_STRING`](crate::LONG_STRING)).
pub const MAX_FUNCTION_BYTES: usize = crate::LONG_STRING;

/// Why an extension value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtValueError {
    /// A big integer's payload is not `-?[0-9]+`.
    #[error("ext type 1 (big integer) holds {shown}, not a decimal integer")]
    NotDecimal {
        /// The start of the payload, quoted.
        shown: String,
    },
    /// A big integer with more digits than a bigint can hold.
    #[error("a big integer of {digits} digits is over the limit of {limit} digits")]
    TooManyDigits {
        /// Its digits.
        digits: usize,
        /// [`MAX_BIGINT_DIGITS`].
        limit: usize,
    },
    /// A function's source is not UTF-8.
    #[error("ext type 2 (Lua function) holds source that is not UTF-8")]
    SourceNotUtf8,
    /// A function's source holds a NUL byte: the worker names the chunk
    /// that makes it by its text (to find the source again), and a chunk
    /// name cannot hold one.
    #[error(
        "ext type 2 (Lua function) holds source with a NUL byte (write it as \\0 inside a string)"
    )]
    SourceHasNul,
    /// A function's source is too long.
    #[error("a function's source of {bytes} bytes is over the limit of {limit} bytes")]
    SourceTooLarge {
        /// Its length.
        bytes: usize,
        /// [`MAX_FUNCTION_BYTES`].
        limit: usize,
    },
    /// A function's source is not a function expression.
    #[error("ext type 2 (Lua function) holds {shown}, not a function expression `function(...) ... end`")]
    NotAFunction {
        /// The start of the source, quoted.
        shown: String,
    },
    /// An extension type luapool does not use.
    #[error(
        "MessagePack ext type {0} is not a luapool value (1 is a big integer, 2 a Lua function)"
    )]
    UnknownType(i8),
}

/// The first bytes of `b`, quoted, for an error message.
fn shown(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
    let more = if b.len() > 40 { "…" } else { "" };
    format!("{text:?}{more}")
}

/// Checks a big integer's payload; returns its canonical text (borrowed
/// when it is canonical already).
pub fn bigint_text(payload: &[u8]) -> Result<Cow<'_, str>, ExtValueError> {
    let (neg, digits) = match payload.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, payload),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ExtValueError::NotDecimal {
            shown: shown(payload),
        });
    }
    if digits.len() > MAX_BIGINT_DIGITS {
        return Err(ExtValueError::TooManyDigits {
            digits: digits.len(),
            limit: MAX_BIGINT_DIGITS,
        });
    }
    // Canonical: no leading zero (but "0" itself), no "-0".
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    let kept = &digits[zeros.min(digits.len() - 1)..];
    let canonical = kept.len() == digits.len() && !(neg && kept == b"0");
    // ASCII digits and '-' are UTF-8.
    let text = |b| std::str::from_utf8(b).unwrap_or_default();
    Ok(match (canonical, neg && kept != b"0") {
        (true, _) => Cow::Borrowed(text(payload)),
        (false, true) => Cow::Owned(format!("-{}", text(kept))),
        (false, false) => Cow::Owned(text(kept).to_string()),
    })
}

/// Checks a function's source.
pub fn function_text(payload: &[u8]) -> Result<&str, ExtValueError> {
    if payload.len() > MAX_FUNCTION_BYTES {
        return Err(ExtValueError::SourceTooLarge {
            bytes: payload.len(),
            limit: MAX_FUNCTION_BYTES,
        });
    }
    let text = std::str::from_utf8(payload).map_err(|_| ExtValueError::SourceNotUtf8)?;
    if payload.contains(&0) {
        return Err(ExtValueError::SourceHasNul);
    }
    let t = text.trim();
    let word_end = |rest: &str| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    let starts = t
        .strip_prefix("function")
        .is_some_and(|rest| word_end(rest) && rest.trim_start().starts_with('('));
    let ends = t
        .strip_suffix("end")
        .is_some_and(|before| !before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'));
    if !starts || !ends {
        return Err(ExtValueError::NotAFunction {
            shown: shown(payload),
        });
    }
    Ok(text)
}

/// Checks an extension value from outside: `Ok((type, canonical text))`.
pub fn ext_text(ty: i8, payload: &[u8]) -> Result<(i8, Cow<'_, str>), ExtValueError> {
    match ty {
        EXT_BIGINT => Ok((ty, bigint_text(payload)?)),
        EXT_FUNCTION => Ok((ty, Cow::Borrowed(function_text(payload)?))),
        other => Err(ExtValueError::UnknownType(other)),
    }
}

/// An extension value as serde writes it: rmp-serde's extension newtype
/// (`_ExtStruct((type, bytes))`), so the bytes are ext `type`.
pub(crate) struct Ext<'a>(pub i8, pub &'a [u8]);

impl serde::Serialize for Ext<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(
            rmp_serde::MSGPACK_EXT_STRUCT_NAME,
            &(self.0, serde_bytes::Bytes::new(self.1)),
        )
    }
}

/// Reads the `(type, bytes)` of an extension value that rmp-serde hands a
/// visitor as a newtype, and checks it.
pub(crate) fn read_ext<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(i8, String), D::Error> {
    let (ty, bytes): (i8, serde_bytes::ByteBuf) = serde::Deserialize::deserialize(d)?;
    let (ty, text) = ext_text(ty, &bytes).map_err(serde::de::Error::custom)?;
    Ok((ty, text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_are_checked_and_made_canonical() {
        assert_eq!(bigint_text(b"123").unwrap(), "123");
        assert!(matches!(bigint_text(b"123").unwrap(), Cow::Borrowed(_)));
        assert_eq!(bigint_text(b"-123").unwrap(), "-123");
        assert!(matches!(bigint_text(b"-123").unwrap(), Cow::Borrowed(_)));
        assert_eq!(bigint_text(b"007").unwrap(), "7");
        assert_eq!(bigint_text(b"-007").unwrap(), "-7");
        assert_eq!(bigint_text(b"-0").unwrap(), "0");
        assert_eq!(bigint_text(b"000").unwrap(), "0");
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"1.5",
            b"12x",
            b" 1",
            b"1e9",
            b"--1",
            b"\xff",
        ] {
            assert!(
                matches!(bigint_text(bad), Err(ExtValueError::NotDecimal { .. })),
                "{bad:?}"
            );
        }
        let long = vec![b'9'; MAX_BIGINT_DIGITS + 1];
        assert_eq!(
            bigint_text(&long),
            Err(ExtValueError::TooManyDigits {
                digits: MAX_BIGINT_DIGITS + 1,
                limit: MAX_BIGINT_DIGITS
            })
        );
        assert!(bigint_text(&long[1..]).is_ok());
        let e = bigint_text(b"12x").unwrap_err().to_string();
        assert!(e.contains("\"12x\"") && e.contains("decimal"), "{e}");
    }

    #[test]
    fn a_function_is_a_function_expression_in_utf8() {
        assert!(function_text(b"function(x) return x end").is_ok());
        assert!(function_text(b"  function (a, ...)\n  return a\nend\n").is_ok());
        for bad in [
            &b"return 1"[..],
            b"functions(x) end",
            b"function(x) return x ender",
            b"function x() end",
            b"",
            b"end",
        ] {
            assert!(
                matches!(function_text(bad), Err(ExtValueError::NotAFunction { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            function_text(b"function() return '\xff' end"),
            Err(ExtValueError::SourceNotUtf8)
        );
        let mut huge = b"function() return '".to_vec();
        huge.resize(MAX_FUNCTION_BYTES, b'x');
        huge.extend_from_slice(b"' end");
        assert!(matches!(
            function_text(&huge),
            Err(ExtValueError::SourceTooLarge { .. })
        ));
        assert_eq!(ext_text(3, b"x"), Err(ExtValueError::UnknownType(3)));
    }
}
