//! Finding frame boundaries in a MessagePack byte stream without trusting it
//! (the daemon's socket framing; the fuzz target `socket_frames` runs it).
//!
//! MessagePack-RPC has no length prefix: a frame is one complete MessagePack
//! value. [`FrameScanner`] walks the headers of the bytes received so far and
//! says where the first complete value ends, resuming where it stopped when
//! more bytes arrive (so a large frame is scanned once, not once per read).
//! It never allocates for a declared length: a `str`/`bin`/`ext` longer than
//! the frame limit, or an array or map declaring more items than the limit
//! has bytes left, is [`Scan::TooLarge`] at once; nesting deeper than
//! [`MAX_DEPTH`] and the never-used byte `0xc1` are [`Scan::Invalid`].

/// The deepest nesting of arrays and maps a frame may have.
pub const MAX_DEPTH: usize = 512;

/// What the scanner found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The first `n` bytes are one complete value.
    Complete(usize),
    /// More bytes are needed.
    Incomplete,
    /// The frame is, or declares to be, larger than the limit.
    TooLarge,
    /// The bytes are not MessagePack.
    Invalid(&'static str),
}

/// Scans one frame at a time; call [`reset`](FrameScanner::reset) after a
/// complete frame has been taken off the front of the buffer.
#[derive(Debug)]
pub struct FrameScanner {
    max: usize,
    pos: usize,
    /// Items still expected by each open array or map, innermost last.
    open: Vec<u64>,
}

impl FrameScanner {
    /// A scanner for frames of at most `max` bytes.
    pub fn new(max: usize) -> FrameScanner {
        FrameScanner {
            max,
            pos: 0,
            open: Vec::new(),
        }
    }

    /// Forgets the frame scanned so far.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
    }

    /// Scans `buf`, which starts with the current frame and only ever grows
    /// between calls until the frame is complete.
    pub fn scan(&mut self, buf: &[u8]) -> Scan {
        loop {
            let Some(&b) = buf.get(self.pos) else {
                return Scan::Incomplete;
            };
            let (header, payload, items) = match header(b, &buf[self.pos..]) {
                Header::Need => return Scan::Incomplete,
                Header::Invalid => return Scan::Invalid("byte 0xc1 is never used in MessagePack"),
                Header::Ok {
                    header,
                    payload,
                    items,
                } => (header, payload, items),
            };
            let end = (self.pos as u64)
                .saturating_add(header as u64)
                .saturating_add(payload);
            if end > self.max as u64 {
                return Scan::TooLarge;
            }
            // Every item takes at least one byte.
            if items > self.max as u64 - end {
                return Scan::TooLarge;
            }
            if end > buf.len() as u64 {
                return Scan::Incomplete;
            }
            self.pos = end as usize;
            if items > 0 {
                if self.open.len() >= MAX_DEPTH {
                    return Scan::Invalid("arrays and maps nested too deep");
                }
                self.open.push(items);
                continue;
            }
            // One value is complete: close every container it completes.
            loop {
                match self.open.last_mut() {
                    None => return Scan::Complete(self.pos),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

enum Header {
    Need,
    Invalid,
    Ok {
        header: usize,
        payload: u64,
        items: u64,
    },
}

/// Decodes the header starting with `b` (`rest` starts at it).
fn header(b: u8, rest: &[u8]) -> Header {
    let fixed = |header: usize| Header::Ok {
        header,
        payload: 0,
        items: 0,
    };
    // A length of `n` big-endian bytes after the marker (and `skip` more
    // header bytes, for ext's type), then a payload of that length.
    let sized = |n: usize, skip: usize, per_item: Option<u64>| {
        if rest.len() < 1 + n {
            return Header::Need;
        }
        let len = rest[1..1 + n]
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        match per_item {
            Some(k) => Header::Ok {
                header: 1 + n,
                payload: 0,
                items: len * k,
            },
            None => Header::Ok {
                header: 1 + n + skip,
                payload: len,
                items: 0,
            },
        }
    };
    match b {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => fixed(1),
        0x80..=0x8f => Header::Ok {
            header: 1,
            payload: 0,
            items: 2 * u64::from(b & 0x0f),
        },
        0x90..=0x9f => Header::Ok {
            header: 1,
            payload: 0,
            items: u64::from(b & 0x0f),
        },
        0xa0..=0xbf => Header::Ok {
            header: 1,
            payload: u64::from(b & 0x1f),
            items: 0,
        },
        0xc1 => Header::Invalid,
        0xc4 | 0xd9 => sized(1, 0, None),
        0xc5 | 0xda => sized(2, 0, None),
        0xc6 | 0xdb => sized(4, 0, None),
        0xc7 => sized(1, 1, None),
        0xc8 => sized(2, 1, None),
        0xc9 => sized(4, 1, None),
        0xca => fixed(5),
        0xcb => fixed(9),
        0xcc | 0xd0 => fixed(2),
        0xcd | 0xd1 => fixed(3),
        0xce | 0xd2 => fixed(5),
        0xcf | 0xd3 => fixed(9),
        0xd4 => fixed(3),
        0xd5 => fixed(4),
        0xd6 => fixed(6),
        0xd7 => fixed(10),
        0xd8 => fixed(18),
        0xdc => sized(2, 0, Some(1)),
        0xdd => sized(4, 0, Some(1)),
        0xde => sized(2, 0, Some(2)),
        0xdf => sized(4, 0, Some(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8], max: usize) -> Scan {
        FrameScanner::new(max).scan(bytes)
    }

    #[test]
    fn complete_request_is_found_byte_by_byte() {
        let frame =
            rmp_serde::to_vec(&(0u8, 7u32, "compute", (1u64, "return 1", [1u8, 2, 3]))).unwrap();
        let mut s = FrameScanner::new(1 << 20);
        for n in 0..frame.len() {
            assert_eq!(s.scan(&frame[..n]), Scan::Incomplete, "at {n}");
        }
        let mut both = frame.clone();
        both.extend_from_slice(&frame);
        assert_eq!(s.scan(&both), Scan::Complete(frame.len()));
    }

    #[test]
    fn every_scalar_kind_is_one_frame() {
        for v in [
            rmp_serde::to_vec(&-1i8).unwrap(),
            rmp_serde::to_vec(&u64::MAX).unwrap(),
            rmp_serde::to_vec(&1.5f32).unwrap(),
            rmp_serde::to_vec(&"x".repeat(300)).unwrap(),
            bin32(70_000),
            vec![0xd4, 1, 2],
            vec![0xc7, 2, 9, 1, 2],
            vec![0x80],
            vec![0x90],
        ] {
            assert_eq!(scan_all(&v, 1 << 20), Scan::Complete(v.len()), "{v:x?}");
        }
    }

    fn bin32(n: u32) -> Vec<u8> {
        let mut v = vec![0xc6];
        v.extend_from_slice(&n.to_be_bytes());
        v.resize(v.len() + n as usize, 7);
        v
    }

    #[test]
    fn huge_declared_lengths_are_too_large_without_the_bytes() {
        assert_eq!(
            scan_all(&[0xc6, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Scan::TooLarge
        );
        assert_eq!(
            scan_all(&[0xdd, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Scan::TooLarge
        );
        assert_eq!(
            scan_all(&[0xdf, 0x00, 0x10, 0x00, 0x00], 1 << 20),
            Scan::TooLarge
        );
        assert_eq!(
            scan_all(&[0x94, 0xdb, 0x10, 0x00, 0x00, 0x00], 1 << 20),
            Scan::TooLarge
        );
    }

    #[test]
    fn never_used_byte_and_deep_nesting_are_invalid() {
        assert!(matches!(scan_all(&[0xc1], 100), Scan::Invalid(_)));
        let deep = vec![0x91; MAX_DEPTH + 1];
        assert!(matches!(scan_all(&deep, 1 << 20), Scan::Invalid(_)));
    }
}
