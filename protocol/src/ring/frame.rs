//! Framing: the 16-byte frame header and the rules that chain frames into a
//! message. Pure functions (no shared memory), so they can be property-tested.
//!
//! A frame is a [`FrameHeader`] followed by `len` payload bytes; a frame may
//! wrap around the end of the data area. A message is one frame, or a chain of
//! chunk frames: the first without `CONT`, the rest with it, all but the last
//! with `MORE`, every one carrying the message's total length, so the receiver
//! rejects an oversized message from its first header, before allocating.
//!
//! | bytes  | field   | meaning                                        |
//! |--------|---------|------------------------------------------------|
//! | 0..4   | `len`   | payload bytes in this frame (u32 LE)           |
//! | 4..8   | `flags` | bit 0 `MORE`, bit 1 `CONT`; other bits zero    |
//! | 8..16  | `total` | length of the whole message (u64 LE)           |

use super::RingCorruption;

/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 16;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload bytes in this frame.
    pub len: u32,
    /// [`FrameHeader::MORE`] and/or [`FrameHeader::CONT`].
    pub flags: u32,
    /// Length of the whole message this frame belongs to.
    pub total: u64,
}

impl FrameHeader {
    /// More frames of this message follow.
    pub const MORE: u32 = 1;
    /// This frame continues a message begun by an earlier frame.
    pub const CONT: u32 = 2;
    /// Every defined flag bit.
    pub const KNOWN_FLAGS: u32 = Self::MORE | Self::CONT;

    /// The header as it is written into the ring.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0..4].copy_from_slice(&self.len.to_le_bytes());
        out[4..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.total.to_le_bytes());
        out
    }

    /// Decodes and checks a header read from a ring whose frames carry at most
    /// `max_len` payload bytes: known flags only, `len <= max_len`,
    /// `len <= total`, no empty chunk, and an unchunked frame carries its whole
    /// message. Never panics.
    pub fn decode(
        bytes: &[u8; FRAME_HEADER_LEN],
        max_len: usize,
    ) -> Result<FrameHeader, RingCorruption> {
        let word = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[r]);
            u32::from_le_bytes(b)
        };
        let mut total = [0u8; 8];
        total.copy_from_slice(&bytes[8..16]);
        let h = FrameHeader {
            len: word(0..4),
            flags: word(4..8),
            total: u64::from_le_bytes(total),
        };
        if h.flags & !Self::KNOWN_FLAGS != 0 {
            return Err(RingCorruption::UnknownFlags(h.flags));
        }
        if h.len as u64 > max_len as u64 {
            return Err(RingCorruption::FrameTooLong {
                len: h.len,
                max: max_len as u64,
            });
        }
        if h.len as u64 > h.total {
            return Err(RingCorruption::FrameLongerThanMessage {
                len: h.len,
                total: h.total,
            });
        }
        if h.more() && h.len == 0 {
            return Err(RingCorruption::EmptyChunk);
        }
        if h.flags == 0 && h.len as u64 != h.total {
            return Err(RingCorruption::MoreFlagMismatch {
                received: 0,
                len: h.len,
                total: h.total,
            });
        }
        Ok(h)
    }

    /// True if more frames of this message follow.
    pub fn more(&self) -> bool {
        self.flags & Self::MORE != 0
    }

    /// True if this frame continues a message.
    pub fn cont(&self) -> bool {
        self.flags & Self::CONT != 0
    }
}

/// Where the receiver is in the stream of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Assembly {
    /// Between messages.
    #[default]
    Idle,
    /// Inside a message of `total` bytes, `received` so far; `skip` when the
    /// message is being discarded (it was too large).
    InProgress {
        total: u64,
        received: u64,
        skip: bool,
    },
}

/// What to do with a frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Append it; the message is complete if `done`.
    Keep { done: bool },
    /// Drop it (the message is being skipped); the skip ends if `done`.
    Skip { done: bool },
    /// The frame starts a message longer than the limit: skip it, then report.
    TooLarge { total: u64, done: bool },
}

impl Assembly {
    /// Advances the state by one decoded frame, checking it against the
    /// message in progress and the `max_message` limit.
    pub(crate) fn step(
        &mut self,
        h: &FrameHeader,
        max_message: u64,
    ) -> Result<Step, RingCorruption> {
        let len = h.len as u64;
        match *self {
            Assembly::Idle => {
                if h.cont() {
                    return Err(RingCorruption::UnexpectedContinuation);
                }
                let done = !h.more();
                if done && len != h.total {
                    return Err(RingCorruption::MoreFlagMismatch {
                        received: 0,
                        len: h.len,
                        total: h.total,
                    });
                }
                if !done && len >= h.total {
                    return Err(RingCorruption::MoreFlagMismatch {
                        received: 0,
                        len: h.len,
                        total: h.total,
                    });
                }
                let skip = h.total > max_message;
                if !done {
                    *self = Assembly::InProgress {
                        total: h.total,
                        received: len,
                        skip,
                    };
                }
                Ok(if skip {
                    Step::TooLarge {
                        total: h.total,
                        done,
                    }
                } else {
                    Step::Keep { done }
                })
            }
            Assembly::InProgress {
                total,
                received,
                skip,
            } => {
                if !h.cont() {
                    return Err(RingCorruption::TruncatedMessage { received, total });
                }
                if h.total != total {
                    return Err(RingCorruption::TotalChanged {
                        was: total,
                        now: h.total,
                    });
                }
                let now = received.checked_add(len);
                let done = !h.more();
                let fits = match now {
                    Some(now) => (done && now == total) || (!done && now < total),
                    None => false,
                };
                if !fits {
                    return Err(RingCorruption::MoreFlagMismatch {
                        received,
                        len: h.len,
                        total,
                    });
                }
                *self = match now {
                    Some(now) if !done => Assembly::InProgress {
                        total,
                        received: now,
                        skip,
                    },
                    _ => Assembly::Idle,
                };
                Ok(if skip {
                    Step::Skip { done }
                } else {
                    Step::Keep { done }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(len: u32, flags: u32, total: u64) -> FrameHeader {
        FrameHeader { len, flags, total }
    }

    const MORE: u32 = FrameHeader::MORE;
    const CONT: u32 = FrameHeader::CONT;

    #[test]
    fn chunks_chain_into_one_message() {
        let mut a = Assembly::Idle;
        assert_eq!(a.step(&h(4, MORE, 10), 100), Ok(Step::Keep { done: false }));
        assert_eq!(
            a.step(&h(4, MORE | CONT, 10), 100),
            Ok(Step::Keep { done: false })
        );
        assert_eq!(a.step(&h(2, CONT, 10), 100), Ok(Step::Keep { done: true }));
        assert_eq!(a, Assembly::Idle);
    }

    #[test]
    fn broken_chains_are_named() {
        let mut a = Assembly::Idle;
        assert_eq!(
            a.step(&h(2, CONT, 10), 100),
            Err(RingCorruption::UnexpectedContinuation)
        );
        a.step(&h(4, MORE, 10), 100).unwrap();
        assert_eq!(
            a.step(&h(3, 0, 3), 100),
            Err(RingCorruption::TruncatedMessage {
                received: 4,
                total: 10
            })
        );
        assert_eq!(
            a.step(&h(6, CONT, 11), 100),
            Err(RingCorruption::TotalChanged { was: 10, now: 11 })
        );
        assert!(matches!(
            a.step(&h(7, CONT, 10), 100),
            Err(RingCorruption::MoreFlagMismatch { .. })
        ));
        assert!(matches!(
            a.step(&h(6, CONT | MORE, 10), 100),
            Err(RingCorruption::MoreFlagMismatch { .. })
        ));
    }

    #[test]
    fn counters_near_the_top_do_not_overflow() {
        let mut a = Assembly::InProgress {
            total: u64::MAX,
            received: u64::MAX - 1,
            skip: true,
        };
        assert!(matches!(
            a.step(&h(5, CONT, u64::MAX), 100),
            Err(RingCorruption::MoreFlagMismatch { .. })
        ));
    }

    #[test]
    fn too_large_messages_are_skipped_whole() {
        let mut a = Assembly::Idle;
        assert_eq!(
            a.step(&h(4, MORE, 1000), 100),
            Ok(Step::TooLarge {
                total: 1000,
                done: false
            })
        );
        assert_eq!(
            a.step(&h(996, CONT, 1000), 100),
            Ok(Step::Skip { done: true })
        );
        assert_eq!(a.step(&h(1, 0, 1), 100), Ok(Step::Keep { done: true }));
    }
}
