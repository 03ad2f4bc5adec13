//! The [`Endpoint`] operations: send, receive, close, cancel flag.
//!
//! Sending splits a message into frames sized to the free space (so a large
//! message streams through the ring while the peer drains it); receiving
//! reassembles frames into the endpoint's buffer and swaps it into the
//! caller's. A corrupt peer closes our side: later calls return `Closed`.

use std::time::Instant;

use super::frame::{FrameHeader, FRAME_HEADER_LEN};
use super::wait::wake_always;
use super::{Endpoint, RingError};
use crate::sync::Ordering;

const HDR: u64 = FRAME_HEADER_LEN as u64;

impl Endpoint {
    /// Sends one whole message (any length). A message that does not fit one
    /// frame goes as chunk frames, each written as soon as there is room.
    /// Blocks (spin, then futex sleep) while the ring is full. Fails with
    /// `Closed` if either side closed, `PeerGone` if the peer-alive check
    /// fails while blocked, `Corrupt` if the peer's counter is invalid.
    pub fn send(&self, msg: &[u8]) -> Result<(), RingError> {
        self.send_deadline(msg, None)
    }

    /// [`Endpoint::send`] that gives up with `Timeout` once `deadline` passes
    /// while the ring is full: a peer that stops draining cannot block us for
    /// ever. After a `Timeout` part of the message may have been sent; the
    /// conversation cannot continue (the supervisor kills such a worker).
    pub fn send_deadline(&self, msg: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        let r = self.send_frames(msg, deadline);
        self.close_on_corrupt(r)
    }

    fn send_frames(&self, msg: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        self.check_open()?;
        let ring = self.outbound();
        let max_frame = ring.max_frame();
        let chunk_min = (max_frame / 4).max(1);
        let total = msg.len() as u64;
        let mut sent = 0u64;
        loop {
            let remaining = total - sent;
            let want = HDR + remaining.min(chunk_min);
            let free = self.wait_for_space(want, deadline)?;
            let len = remaining.min(free - HDR).min(max_frame);
            let mut flags = 0;
            if sent > 0 {
                flags |= FrameHeader::CONT;
            }
            if sent + len < total {
                flags |= FrameHeader::MORE;
            }
            let h = FrameHeader {
                len: len as u32,
                flags,
                total,
            };
            let payload = &msg[sent as usize..(sent + len) as usize];
            // SAFETY: wait_for_space() saw `free >= HDR + len` bytes free.
            unsafe { self.tx.push_frame(ring, &h, payload) };
            sent += len;
            if sent == total {
                return Ok(());
            }
        }
    }

    /// Waits until at least `want` bytes are free in the outbound ring.
    fn wait_for_space(&self, want: u64, deadline: Option<Instant>) -> Result<u64, RingError> {
        let ring = self.outbound();
        if let Ok(free) = self.tx.free(ring, want) {
            if free >= want {
                return Ok(free);
            }
        }
        self.waiter(deadline).wait(ring.space_point(), || {
            self.check_open()?;
            let free = self.tx.free(ring, want)?;
            Ok((free >= want).then_some(free))
        })
    }

    /// Receives one whole message into `buf` (replacing its contents),
    /// reassembling chunks. Blocks (spin, then futex sleep) until a message
    /// arrives, `deadline` passes (`Timeout`), the peer closes and its sent
    /// messages are drained (`Closed`), or the peer-alive check fails
    /// (`PeerGone`). A message longer than the limit is `MessageTooLarge`,
    /// detected from its first frame header before allocating.
    pub fn recv(&self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<(), RingError> {
        let r = self
            .waiter(deadline)
            .wait(self.inbound().data_point(), || self.poll_message(buf));
        self.close_on_corrupt(r)
    }

    /// Non-blocking receive: `Ok(true)` if a whole message was received into
    /// `buf`, `Ok(false)` if none is complete yet (a partly received chunked
    /// message is kept and continued by the next call).
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> Result<bool, RingError> {
        let r = self.poll_message(buf).map(|got| got.is_some());
        self.close_on_corrupt(r)
    }

    /// One non-blocking step: consume what is published; `Some` once a whole
    /// message is in `buf`; `Closed` once the peer closed and nothing is left.
    fn poll_message(&self, buf: &mut Vec<u8>) -> Result<Option<()>, RingError> {
        self.check_self_open()?;
        let ring = self.inbound();
        let mut partial = self.partial.borrow_mut();
        // Read before pumping: once the peer's close is seen, everything it
        // published before closing is visible (see peer_closed), so one
        // pump drains it.
        let closed = self.peer_closed();
        if self
            .rx
            .pump(ring, self.max_message, &mut partial)?
            .is_some()
        {
            std::mem::swap(buf, &mut partial);
            return Ok(Some(()));
        }
        if closed {
            return Err(RingError::Closed);
        }
        Ok(None)
    }

    /// Marks our side closed and wakes the peer whether it waits for data
    /// from us or for space in our inbound ring. Idempotent.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let header = &self.region.control().header;
        // SYNC POINT: Release; pairs with the Acquire load in peer_closed() on
        // the other side: our earlier frames are visible before the flag.
        header.closed[self.side].store(1, Ordering::Release);
        wake_always(self.outbound().data_point().seq);
        wake_always(self.inbound().space_point().seq);
    }

    /// Sets or clears the cancel flag in the shared header (supervisor side;
    /// cleared at the start of each compute).
    pub fn set_cancel(&self, on: bool) {
        // SYNC POINT: Relaxed; a stand-alone flag that publishes no other
        // data; pairs with the Relaxed load in cancel_requested().
        self.region
            .control()
            .header
            .cancel
            .store(on as u32, Ordering::Relaxed);
    }

    /// True if the cancel flag is set: one atomic load, cheap enough for a
    /// Lua instruction hook.
    pub fn cancel_requested(&self) -> bool {
        // SYNC POINT: Relaxed; pairs with the Relaxed store in set_cancel().
        self.region.control().header.cancel.load(Ordering::Relaxed) != 0
    }

    /// Test hook for hostile-peer tests: writes `bytes` into our outbound ring
    /// exactly as given (no framing), publishes them and wakes the peer.
    /// Blocks until there is room; fails with `MessageTooLarge` if `bytes` is
    /// longer than the ring.
    #[doc(hidden)]
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), RingError> {
        self.check_open()?;
        let ring = self.outbound();
        let len = bytes.len() as u64;
        if len > ring.capacity() {
            return Err(RingError::MessageTooLarge {
                len,
                max: ring.capacity(),
            });
        }
        self.wait_for_space(len, None)?;
        // SAFETY: wait_for_space() saw at least `len` bytes free.
        unsafe { self.tx.push(ring, bytes) };
        Ok(())
    }

    fn peer_closed(&self) -> bool {
        // SYNC POINT: Acquire; pairs with the Release store of the flag in the
        // peer's close(): everything it published before is visible.
        self.region.control().header.closed[1 - self.side].load(Ordering::Acquire) != 0
    }

    fn check_self_open(&self) -> Result<(), RingError> {
        if self.closed.get() {
            return Err(RingError::Closed);
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), RingError> {
        self.check_self_open()?;
        if self.peer_closed() {
            return Err(RingError::Closed);
        }
        Ok(())
    }

    fn close_on_corrupt<T>(&self, r: Result<T, RingError>) -> Result<T, RingError> {
        if let Err(RingError::Corrupt(_)) = r {
            self.close();
        }
        r
    }
}
