//! A small zero-copy MessagePack reader, for the hot paths that read
//! messages without building Rust values (the worker's window replies, the
//! store's loading of host data). Strings and binaries are borrowed; every
//! length is checked against the input before it is used.

/// The bytes are not the MessagePack expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed MessagePack")]
pub struct Malformed;

/// One MessagePack token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    /// nil
    Nil,
    /// a boolean
    Bool(bool),
    /// an integer that fits `i64`
    Int(i64),
    /// an integer above `i64::MAX`
    BigUint(u64),
    /// a float (f32 widened)
    Float(f64),
    /// a str (not checked for UTF-8)
    Str(&'a [u8]),
    /// a bin
    Bin(&'a [u8]),
    /// an array header with its length
    Array(usize),
    /// a map header with its number of pairs
    Map(usize),
    /// an ext value (type, data); luapool uses none
    Ext(i8, &'a [u8]),
}

/// A cursor over MessagePack bytes.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf }
    }

    /// The bytes not read yet.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Skips `n` bytes (all that are left, if fewer): for a reader that
    /// measured a value itself.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.buf = &self.buf[n.min(self.buf.len())..];
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    fn be(&mut self, n: usize) -> Result<u64, Malformed> {
        let b = self.take(n)?;
        Ok(match *b {
            [x] => x as u64,
            [a, b] => u16::from_be_bytes([a, b]) as u64,
            [a, b, c, d] => u32::from_be_bytes([a, b, c, d]) as u64,
            [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => unreachable!("be() reads 1, 2, 4 or 8 bytes"),
        })
    }

    fn len(&mut self, n: usize) -> Result<usize, Malformed> {
        Ok(self.be(n)? as usize)
    }

    /// Reads the next token (for arrays and maps, only the header).
    pub fn token(&mut self) -> Result<Token<'a>, Malformed> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Token::Int(m as i64),
            0xe0..=0xff => Token::Int(m as i8 as i64),
            0x80..=0x8f => Token::Map((m & 0x0f) as usize),
            0x90..=0x9f => Token::Array((m & 0x0f) as usize),
            0xa0..=0xbf => Token::Str(self.take((m & 0x1f) as usize)?),
            0xc0 => Token::Nil,
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (m - 0xc4))?;
                Token::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (m - 0xc7))?;
                let t = self.take(1)?[0] as i8;
                Token::Ext(t, self.take(n)?)
            }
            0xca => Token::Float(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => Token::Float(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => {
                let u = self.be(1 << (m - 0xcc))?;
                i64::try_from(u).map_or(Token::BigUint(u), Token::Int)
            }
            0xd0 => Token::Int(self.be(1)? as u8 as i8 as i64),
            0xd1 => Token::Int(self.be(2)? as u16 as i16 as i64),
            0xd2 => Token::Int(self.be(4)? as u32 as i32 as i64),
            0xd3 => Token::Int(self.be(8)? as i64),
            0xd4..=0xd8 => {
                let t = self.take(1)?[0] as i8;
                Token::Ext(t, self.take(1 << (m - 0xd4))?)
            }
            0xd9..=0xdb => {
                let n = self.len(1 << (m - 0xd9))?;
                Token::Str(self.take(n)?)
            }
            0xdc => Token::Array(self.len(2)?),
            0xdd => Token::Array(self.len(4)?),
            0xde => Token::Map(self.len(2)?),
            0xdf => Token::Map(self.len(4)?),
            0xc1 => return Err(Malformed),
        })
    }

    /// An array header's length.
    pub fn array(&mut self) -> Result<usize, Malformed> {
        match self.token()? {
            Token::Array(n) => Ok(n),
            _ => Err(Malformed),
        }
    }

    /// A map header's number of pairs.
    pub fn map(&mut self) -> Result<usize, Malformed> {
        match self.token()? {
            Token::Map(n) => Ok(n),
            _ => Err(Malformed),
        }
    }

    /// An integer that fits `i64`.
    pub fn int(&mut self) -> Result<i64, Malformed> {
        match self.token()? {
            Token::Int(i) => Ok(i),
            _ => Err(Malformed),
        }
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool, Malformed> {
        match self.token()? {
            Token::Bool(b) => Ok(b),
            _ => Err(Malformed),
        }
    }

    /// A str or bin's bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        match self.token()? {
            Token::Str(b) | Token::Bin(b) => Ok(b),
            _ => Err(Malformed),
        }
    }

    /// Skips one whole value, nested at most `depth` deep. Iterative: a
    /// deep or long input cannot overflow the stack.
    pub fn skip(&mut self, depth: usize) -> Result<(), Malformed> {
        // Values still to skip at each open level.
        let mut pending: Vec<usize> = vec![1];
        while let Some(top) = pending.last_mut() {
            if *top == 0 {
                pending.pop();
                continue;
            }
            *top -= 1;
            let more = match self.token()? {
                Token::Array(n) => n,
                Token::Map(n) => n.checked_mul(2).ok_or(Malformed)?,
                _ => 0,
            };
            if more > 0 {
                if pending.len() > depth {
                    return Err(Malformed);
                }
                // A container cannot hold more values than bytes remain.
                if more > self.buf.len() {
                    return Err(Malformed);
                }
                pending.push(more);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_rmp_writes() {
        let v = (
            -1i64,
            300u32,
            u64::MAX,
            i64::MIN,
            0.5f64,
            "héllo",
            serde_bytes::ByteBuf::from(vec![0u8, 255]),
            vec![1, 2],
            std::collections::BTreeMap::from([(1, true)]),
            (),
        );
        let bytes = rmp_serde::to_vec(&v).unwrap();
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.array(), Ok(10));
        assert_eq!(c.token(), Ok(Token::Int(-1)));
        assert_eq!(c.token(), Ok(Token::Int(300)));
        assert_eq!(c.token(), Ok(Token::BigUint(u64::MAX)));
        assert_eq!(c.token(), Ok(Token::Int(i64::MIN)));
        assert_eq!(c.token(), Ok(Token::Float(0.5)));
        assert_eq!(c.token(), Ok(Token::Str("héllo".as_bytes())));
        assert_eq!(c.token(), Ok(Token::Bin(&[0, 255][..])));
        let mut skipped = c;
        skipped.skip(4).unwrap();
        assert_eq!(c.token(), Ok(Token::Array(2)));
        c.skip(1).unwrap();
        c.skip(1).unwrap();
        assert_eq!(c.rest(), skipped.rest());
        assert_eq!(c.token(), Ok(Token::Map(1)));
        assert_eq!((c.int(), c.bool()), (Ok(1), Ok(true)));
        assert_eq!(c.token(), Ok(Token::Nil));
        assert!(c.rest().is_empty());
    }

    #[test]
    fn junk_is_malformed_never_a_panic() {
        let deep = vec![0x91u8; 10_000];
        assert_eq!(Cursor::new(&deep).skip(256), Err(Malformed));
        for junk in [
            &b"\xc1"[..],
            b"\xdd\xff\xff\xff\xff",
            b"\xc6\xff\xff\xff\xff",
            b"\xdf\x7f\xff\xff\xff\x00",
            b"\xd9",
        ] {
            assert!(Cursor::new(junk).skip(8).is_err());
        }
        let mut state = 1u32;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..16)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect();
            let _ = Cursor::new(&bytes).skip(8);
        }
    }
}
