//! The shared-memory ring: one 64 KiB region per worker holding two
//! single-producer single-consumer byte rings, one each way, and an
//! [`Endpoint`] per side that sends and receives whole messages on them.
//!
//! - `layout.rs`: the `#[repr(C)]` region layout (the one documented table).
//! - `frame.rs`: frame headers and chunk reassembly rules (pure).
//! - `spsc.rs`: the ring algorithm (write frames, read and validate them).
//! - `wait.rs`: bounded spin, then futex sleep, with no lost wake-ups.
//! - `region.rs`: backing memory (shared memory or in-process heap).
//! - `endpoint.rs`: the public [`Endpoint`] operations.

mod endpoint;
mod error;
mod frame;
mod layout;
mod region;
mod spsc;
mod wait;

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

pub use error::{RingCorruption, RingError, RingOpenError};
pub use frame::{FrameHeader, FRAME_HEADER_LEN};
pub use layout::{LAYOUT_VERSION, REGION_SIZE};
pub use wait::PEER_CHECK_INTERVAL;

use layout::DATA_CAPACITY;
use region::{HeapRegion, Region, ShmRegion};
use spsc::{Consumer, Producer, RingRef};
use wait::{CpuHint, Waiter};

/// Default largest message [`Endpoint::recv`] accepts: 256 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 256 << 20;
/// Default time a wait spins before sleeping on the futex. Measured on the
/// 2-core VM (see the crate README): a futex wake to the other core costs
/// 35-60 µs, so a spin of 20 µs keeps a peer that answers within 20 µs at
/// its answer time (10 µs let a 15 µs answer cost 31-51 µs); a waiter whose
/// peer shares its CPU does not spin at all.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// One side's handle on a ring region: sends on its outbound byte ring,
/// receives on its inbound one.
///
/// `Send` but not `Sync`: one thread at a time uses an endpoint. Dropping it
/// closes our side (waking the peer); dropping the supervisor's endpoint of a
/// shared-memory region also unlinks the region's name.
pub struct Endpoint {
    region: Arc<dyn Region>,
    os_id: String,
    /// 0 for the supervisor side, 1 for the worker side: our outbound ring.
    side: usize,
    tx: Producer,
    rx: Consumer,
    /// The message being reassembled (swapped into the caller's buffer).
    partial: RefCell<Vec<u8>>,
    /// Our own closed flag (the shared copy is only ever stored to).
    closed: Cell<bool>,
    /// The CPU we last published in the header's `cpu[side]`.
    cpu_published: Cell<u32>,
    peer_alive: Option<Box<dyn Fn() -> bool + Send>>,
    max_message: u64,
    spin: Duration,
}

impl Endpoint {
    /// Supervisor side: creates a fresh shared-memory region of exactly
    /// [`REGION_SIZE`] bytes, maps it, initialises the header, and returns the
    /// endpoint. The region is unlinked when this endpoint is dropped.
    pub fn create() -> Result<Endpoint, RingOpenError> {
        let region = ShmRegion::create()?;
        let os_id = region.os_id().to_owned();
        Ok(Endpoint::on(Arc::new(region), os_id, 0))
    }

    /// The OS identifier to hand to the worker (empty for an in-process pair).
    pub fn os_id(&self) -> &str {
        &self.os_id
    }

    /// Worker side: opens the region named `os_id` and validates its size,
    /// magic, layout version and layout fields.
    pub fn open(os_id: &str) -> Result<Endpoint, RingOpenError> {
        let region = ShmRegion::open(os_id)?;
        Ok(Endpoint::on(Arc::new(region), os_id.to_owned(), 1))
    }

    /// Two connected endpoints, (supervisor side, worker side), on in-process
    /// heap memory with the same layout and algorithm, for tests.
    pub fn pair() -> (Endpoint, Endpoint) {
        Endpoint::pair_with_capacity(DATA_CAPACITY)
    }

    /// [`Endpoint::pair`] with data areas of `capacity` bytes each (tests and
    /// loom use tiny rings so wrap-around and chunking need few bytes).
    ///
    /// # Panics
    /// If `capacity` cannot hold a frame header plus one byte, or exceeds u32.
    #[doc(hidden)]
    pub fn pair_with_capacity(capacity: usize) -> (Endpoint, Endpoint) {
        assert!(capacity > FRAME_HEADER_LEN && capacity <= u32::MAX as usize / 4);
        let region: Arc<dyn Region> = Arc::new(HeapRegion::new(capacity));
        (
            Endpoint::on(region.clone(), String::new(), 0),
            Endpoint::on(region, String::new(), 1),
        )
    }

    fn on(region: Arc<dyn Region>, os_id: String, side: usize) -> Endpoint {
        let (tx, rx) = {
            let ring = |i: usize| RingRef {
                ctl: &region.control().rings[i],
                data: region.data(i),
            };
            (Producer::new(ring(side)), Consumer::new(ring(1 - side)))
        };
        Endpoint {
            os_id,
            side,
            tx,
            rx,
            partial: RefCell::new(Vec::new()),
            closed: Cell::new(false),
            cpu_published: Cell::new(u32::MAX),
            peer_alive: None,
            max_message: DEFAULT_MAX_MESSAGE as u64,
            spin: if crate::sync::IS_MODEL {
                Duration::ZERO
            } else {
                DEFAULT_SPIN
            },
            region,
        }
    }

    /// While a wait sleeps, `check` is called every [`PEER_CHECK_INTERVAL`];
    /// when it returns false the wait fails with [`RingError::PeerGone`]. The
    /// supervisor passes "the child is still running", the worker "my parent
    /// pid is unchanged". Without it, waits end only by message, close or
    /// deadline.
    pub fn set_peer_alive(&mut self, check: Box<dyn Fn() -> bool + Send>) {
        self.peer_alive = Some(check);
    }

    /// Largest message [`Endpoint::recv`] accepts (default
    /// [`DEFAULT_MAX_MESSAGE`]).
    pub fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes as u64;
    }

    /// How long a wait spins before sleeping on the futex (default
    /// [`DEFAULT_SPIN`]; zero forces the futex path).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    fn ring(&self, index: usize) -> RingRef<'_> {
        RingRef {
            ctl: &self.region.control().rings[index],
            data: self.region.data(index),
        }
    }

    /// How a wait of ours spins and sleeps.
    fn waiter(&self, deadline: Option<std::time::Instant>) -> Waiter<'_> {
        let header = &self.region.control().header;
        Waiter {
            spin: self.spin,
            deadline,
            peer_alive: self.peer_alive.as_deref(),
            cpus: CpuHint {
                mine: &header.cpu[self.side],
                peer: &header.cpu[1 - self.side],
                published: &self.cpu_published,
            },
        }
    }

    fn outbound(&self) -> RingRef<'_> {
        self.ring(self.side)
    }

    fn inbound(&self) -> RingRef<'_> {
        self.ring(1 - self.side)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.close();
    }
}
