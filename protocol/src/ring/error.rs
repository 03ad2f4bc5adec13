//! The ring's error types: one enum for opening a region, one for moving
//! messages, and the list of ways the bytes from a peer can be corrupt.

/// Why a ring region could not be created or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingOpenError {
    /// The OS refused to create or map a fresh region.
    #[error("cannot create a shared-memory ring region: {0}")]
    Create(String),
    /// The OS refused to open or map the region named `os_id`.
    #[error("cannot open shared-memory ring region {os_id:?}: {reason}")]
    Open {
        /// The identifier that was given.
        os_id: String,
        /// The OS error text.
        reason: String,
    },
    /// The region (or its `region_size` field) is not [`REGION_SIZE`](crate::REGION_SIZE) bytes.
    #[error("ring region is {found} bytes, expected {expected}")]
    WrongSize {
        /// Size found.
        found: usize,
        /// Size this build requires.
        expected: usize,
    },
    /// Offset 0 does not hold the ring magic number: not a luapool ring, or
    /// not initialised yet.
    #[error("ring region has magic {found:#018x}, expected {expected:#018x}: not an initialised luapool ring")]
    BadMagic {
        /// Value found.
        found: u64,
        /// The magic number.
        expected: u64,
    },
    /// The region was laid out by a build with another layout version.
    #[error("ring layout version is {found}, this build speaks {expected}")]
    VersionMismatch {
        /// Version found in the header.
        found: u32,
        /// [`LAYOUT_VERSION`](crate::LAYOUT_VERSION).
        expected: u32,
    },
    /// A layout field of the header (offset or capacity) differs from this
    /// build's layout.
    #[error("ring header field {field} is {found}, expected {expected}")]
    BadLayout {
        /// Name of the header field.
        field: &'static str,
        /// Value found.
        found: usize,
        /// Value this build's layout requires.
        expected: usize,
    },
    /// Shared-memory regions do not exist under the loom model
    /// (`--cfg luapool_loom`); use the in-process pair.
    #[error("shared-memory ring regions are unavailable under the loom model")]
    Unsupported,
}

/// Why a send or receive on a ring failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Our side, or the peer, closed the ring (the peer's already-sent
    /// messages are still delivered first).
    #[error("ring closed")]
    Closed,
    /// The peer-alive check (`Endpoint::set_peer_alive`) reported the peer gone
    /// while we waited.
    #[error("ring peer is gone")]
    PeerGone,
    /// The deadline passed before a whole message arrived.
    #[error("timed out waiting on the ring")]
    Timeout,
    /// The peer announced a message longer than our limit. The message's
    /// frames are skipped; the next receive returns the message after it.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Length announced by the frame header.
        len: u64,
        /// The limit (`Endpoint::set_max_message`).
        max: u64,
    },
    /// The peer broke the ring protocol; the endpoint closes itself.
    #[error("ring corrupt: {0}")]
    Corrupt(#[from] RingCorruption),
}

/// What was wrong with the bytes or counters a peer put in shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingCorruption {
    /// The producer's `tail` is more than a capacity ahead of our `head` (or behind it).
    #[error("tail is {distance} bytes past head, capacity is {capacity}")]
    TailOutOfRange {
        /// `tail - head` (wrapping).
        distance: u64,
        /// Data area capacity.
        capacity: u64,
    },
    /// The consumer's `head` is behind our `tail` by more than a capacity, ahead of it, or moved back.
    #[error("head is {distance} bytes behind tail, capacity is {capacity}")]
    HeadOutOfRange {
        /// `tail - head` (wrapping).
        distance: u64,
        /// Data area capacity.
        capacity: u64,
    },
    /// A frame header has flag bits this version does not define.
    #[error("frame flags {0:#x} contain unknown bits")]
    UnknownFlags(u32),
    /// A frame claims more payload than fits in the ring.
    #[error("frame length {len} exceeds the largest frame, {max}")]
    FrameTooLong {
        /// Claimed payload length.
        len: u32,
        /// Largest payload a frame can carry in this ring.
        max: u64,
    },
    /// A frame claims more payload than its whole message.
    #[error("frame length {len} exceeds its message length {total}")]
    FrameLongerThanMessage {
        /// Frame payload length.
        len: u32,
        /// Message length.
        total: u64,
    },
    /// A frame's MORE flag disagrees with the bytes still missing from its message.
    #[error("frame MORE flag is wrong: {received} + {len} of {total} bytes")]
    MoreFlagMismatch {
        /// Message bytes before this frame.
        received: u64,
        /// This frame's payload length.
        len: u32,
        /// Message length.
        total: u64,
    },
    /// A chunk frame (MORE set) with no payload.
    #[error("empty chunk frame")]
    EmptyChunk,
    /// The published bytes end inside a frame (producers publish whole frames).
    #[error("published bytes end inside a frame: {available} of {needed} bytes")]
    IncompleteFrame {
        /// Bytes published.
        available: u64,
        /// Bytes the frame needs.
        needed: u64,
    },
    /// A continuation frame arrived when no message was in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A new message started before the previous one was complete.
    #[error("message truncated at {received} of {total} bytes")]
    TruncatedMessage {
        /// Bytes received.
        received: u64,
        /// Announced length.
        total: u64,
    },
    /// A chunk announced a different message length than the first frame.
    #[error("chunk announces message length {now}, first frame said {was}")]
    TotalChanged {
        /// Length from the first frame.
        was: u64,
        /// Length in this chunk.
        now: u64,
    },
}
