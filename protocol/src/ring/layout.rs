//! The region layout: the one place it is defined and documented.
//!
//! A region is exactly [`REGION_SIZE`] = 65 536 bytes: an 896-byte control area
//! (`#[repr(C)]` [`Control`]) followed by two data areas. Ring 0 carries
//! supervisor → worker, ring 1 worker → supervisor. Every integer is native
//! endian (both sides run on the same machine); frame headers inside the data
//! areas are little endian (see `frame.rs`). The region holds offsets, never
//! pointers. It is created in two steps: the supervisor maps it, then
//! initialises the control area, storing `magic` last (Release).
//!
//! | offset | size  | field                                   | written by        |
//! |-------:|------:|-----------------------------------------|-------------------|
//! |      0 |     8 | `magic` = `b"LPRING\0\x01"` as u64 (LE) | supervisor, once  |
//! |      8 |     4 | `version` = [`LAYOUT_VERSION`]          | supervisor, once  |
//! |     12 |     4 | `region_size` = 65 536                  | supervisor, once  |
//! |     16 |     4 | `control_size` = 896                    | supervisor, once  |
//! |     20 |   2×4 | `data_offset[ring]` = 896, 33 216       | supervisor, once  |
//! |     28 |   2×4 | `data_capacity[ring]` = 32 320, 32 320  | supervisor, once  |
//! |     36 |     4 | `cancel` (0/1)                          | supervisor        |
//! |     40 |   2×4 | `closed[side]` (0 supervisor, 1 worker) | that side         |
//! |     48 |   2×4 | `cpu[side]`: CPU that side last waited on (u32::MAX unknown; a spin hint) | that side |
//! |     56 |    72 | padding to the cache-line pair          |                   |
//! |    128 |   128 | ring 0 producer line: `tail` u64 @0, `data_seq` u32 @8 (futex) | supervisor |
//! |    256 |   128 | ring 0 consumer line: `head` u64 @0, `space_seq` u32 @8 (futex) | worker |
//! |    384 |   128 | ring 0 sleeper line: `data_waiting` u32 @0 (consumer), `space_waiting` u32 @4 (producer) | the side going to sleep |
//! |    512 |   384 | ring 1 producer, consumer, sleeper lines (as ring 0; producer = worker) |   |
//! |    896 | 32320 | ring 0 data area                        | supervisor        |
//! |  33216 | 32320 | ring 1 data area                        | worker            |
//!
//! `head` and `tail` are free-running u64 byte counters (position in the data
//! area = counter mod capacity); `tail - head` is the number of unread bytes
//! and must never exceed the capacity. Each 128-byte line (two cache lines, so
//! the adjacent-line prefetcher does not couple them) is written by one side
//! only. The sleeper line is written only on the way into and out of a sleep,
//! so the waker's check of it after every publish is a cache hit while both
//! sides spin. The seq words are futex words: a sleeper waits on one, the
//! other side bumps it after publishing (see `wait.rs`).

use crate::sync::{AtomicU32, AtomicU64, FutexWord, Ordering, IS_MODEL};

use super::RingOpenError;

/// Size in bytes of the whole shared region (exactly 64 KiB).
pub const REGION_SIZE: usize = 65536;
/// Version of the region layout and framing; bumped on any incompatible change.
pub const LAYOUT_VERSION: u32 = 1;

/// The magic number at offset 0.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"LPRING\0\x01");
/// Bytes per line of the control area.
const LINE: usize = 128;
/// Size of the control area: header line plus three lines per ring.
pub(crate) const CONTROL_SIZE: usize = 7 * LINE;
/// Capacity of each data area in a shared region.
pub(crate) const DATA_CAPACITY: usize = (REGION_SIZE - CONTROL_SIZE) / 2;
/// Offset of each data area in a shared region.
pub(crate) const DATA_OFFSET: [usize; 2] = [CONTROL_SIZE, CONTROL_SIZE + DATA_CAPACITY];

/// The header line (offset 0).
#[repr(C, align(128))]
pub(crate) struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) version: AtomicU32,
    pub(crate) region_size: AtomicU32,
    pub(crate) control_size: AtomicU32,
    pub(crate) data_offset: [AtomicU32; 2],
    pub(crate) data_capacity: [AtomicU32; 2],
    pub(crate) cancel: AtomicU32,
    pub(crate) closed: [AtomicU32; 2],
    pub(crate) cpu: [AtomicU32; 2],
}

/// The line only the producer of a ring writes.
#[repr(C, align(128))]
pub(crate) struct ProducerLine {
    /// Bytes ever published (free-running).
    pub(crate) tail: AtomicU64,
    /// Bumped after publishing when the consumer announced it sleeps.
    pub(crate) data_seq: FutexWord,
}

/// The line only the consumer of a ring writes.
#[repr(C, align(128))]
pub(crate) struct ConsumerLine {
    /// Bytes ever consumed (free-running).
    pub(crate) head: AtomicU64,
    /// Bumped after consuming when the producer announced it sleeps.
    pub(crate) space_seq: FutexWord,
}

/// The flags a side sets on its way into a sleep (and clears after it).
#[repr(C, align(128))]
pub(crate) struct SleeperLine {
    /// Non-zero while the consumer waits for data (written by the consumer).
    pub(crate) data_waiting: AtomicU32,
    /// Non-zero while the producer waits for space (written by the producer).
    pub(crate) space_waiting: AtomicU32,
}

/// The control block of one single-producer single-consumer byte ring.
#[repr(C)]
pub(crate) struct RingControl {
    pub(crate) producer: ProducerLine,
    pub(crate) consumer: ConsumerLine,
    pub(crate) sleepers: SleeperLine,
}

/// The whole control area at offset 0 of a region.
#[repr(C)]
pub(crate) struct Control {
    pub(crate) header: Header,
    pub(crate) rings: [RingControl; 2],
}

// The layout table above, checked by the compiler (loom's model atomics have
// other sizes, and never live in a shared region).
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(IS_MODEL || size_of::<Control>() == CONTROL_SIZE);
    assert!(IS_MODEL || offset_of!(Header, version) == 8);
    assert!(IS_MODEL || offset_of!(Header, region_size) == 12);
    assert!(IS_MODEL || offset_of!(Header, control_size) == 16);
    assert!(IS_MODEL || offset_of!(Header, data_offset) == 20);
    assert!(IS_MODEL || offset_of!(Header, data_capacity) == 28);
    assert!(IS_MODEL || offset_of!(Header, cancel) == 36);
    assert!(IS_MODEL || offset_of!(Header, closed) == 40);
    assert!(IS_MODEL || offset_of!(Header, cpu) == 48);
    assert!(IS_MODEL || offset_of!(Control, rings) == 128);
    assert!(IS_MODEL || offset_of!(RingControl, consumer) == 128);
    assert!(IS_MODEL || offset_of!(RingControl, sleepers) == 256);
    assert!(IS_MODEL || offset_of!(ProducerLine, data_seq) == 8);
    assert!(IS_MODEL || offset_of!(ConsumerLine, space_seq) == 8);
    assert!(IS_MODEL || offset_of!(SleeperLine, space_waiting) == 4);
    assert!(CONTROL_SIZE + 2 * DATA_CAPACITY == REGION_SIZE);
    assert!(DATA_CAPACITY & 63 == 0);
};

fn zero32() -> AtomicU32 {
    AtomicU32::new(0)
}

impl RingControl {
    fn new() -> Self {
        RingControl {
            producer: ProducerLine {
                tail: AtomicU64::new(0),
                data_seq: FutexWord::new(0),
            },
            consumer: ConsumerLine {
                head: AtomicU64::new(0),
                space_seq: FutexWord::new(0),
            },
            sleepers: SleeperLine {
                data_waiting: zero32(),
                space_waiting: zero32(),
            },
        }
    }
}

impl Control {
    /// An all-zero control area (no magic yet): step one of two.
    pub(crate) fn new() -> Self {
        Control {
            header: Header {
                magic: AtomicU64::new(0),
                version: zero32(),
                region_size: zero32(),
                control_size: zero32(),
                data_offset: [zero32(), zero32()],
                data_capacity: [zero32(), zero32()],
                cancel: zero32(),
                closed: [zero32(), zero32()],
                cpu: [zero32(), zero32()],
            },
            rings: [RingControl::new(), RingControl::new()],
        }
    }

    /// Step two: fill in the header for data areas of `capacity` bytes each,
    /// storing the magic last.
    pub(crate) fn initialise(&self, capacity: usize) {
        let h = &self.header;
        let cap = capacity as u32;
        let fields = [
            (&h.version, LAYOUT_VERSION),
            (&h.region_size, (CONTROL_SIZE + 2 * capacity) as u32),
            (&h.control_size, CONTROL_SIZE as u32),
            (&h.data_offset[0], CONTROL_SIZE as u32),
            (&h.data_offset[1], (CONTROL_SIZE + capacity) as u32),
            (&h.data_capacity[0], cap),
            (&h.data_capacity[1], cap),
            (&h.cpu[0], u32::MAX),
            (&h.cpu[1], u32::MAX),
        ];
        for (field, value) in fields {
            // SYNC POINT: Relaxed; published by the Release store of `magic`
            // below, which pairs with the Acquire load of `magic` in validate().
            field.store(value, Ordering::Relaxed);
        }
        // SYNC POINT: Release; pairs with the Acquire load of `magic` in
        // validate(), so an opener that sees the magic sees the fields.
        h.magic.store(MAGIC, Ordering::Release);
    }

    /// Checks a region mapped by the worker: magic, version, then every
    /// layout field against this build's constants (nothing is trusted).
    pub(crate) fn validate(&self) -> Result<(), RingOpenError> {
        let h = &self.header;
        // SYNC POINT: Acquire; pairs with the Release store of `magic` in
        // initialise().
        let magic = h.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(RingOpenError::BadMagic {
                found: magic,
                expected: MAGIC,
            });
        }
        // SYNC POINT (all loads below): Relaxed; ordered after the Acquire
        // load of `magic` above.
        let version = h.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(RingOpenError::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        // SYNC POINT: Relaxed; after the Acquire load of `magic` (as above).
        let size = h.region_size.load(Ordering::Relaxed) as usize;
        if size != REGION_SIZE {
            return Err(RingOpenError::WrongSize {
                found: size,
                expected: REGION_SIZE,
            });
        }
        let expected = [
            ("control_size", &h.control_size, CONTROL_SIZE),
            ("data_offset[0]", &h.data_offset[0], DATA_OFFSET[0]),
            ("data_offset[1]", &h.data_offset[1], DATA_OFFSET[1]),
            ("data_capacity[0]", &h.data_capacity[0], DATA_CAPACITY),
            ("data_capacity[1]", &h.data_capacity[1], DATA_CAPACITY),
        ];
        for (field, word, want) in expected {
            // SYNC POINT: Relaxed; after the Acquire load of `magic` (as above).
            let found = word.load(Ordering::Relaxed) as usize;
            if found != want {
                return Err(RingOpenError::BadLayout {
                    field,
                    found,
                    expected: want,
                });
            }
        }
        Ok(())
    }
}
