//! The single-producer single-consumer byte ring: writing frames on the
//! producer side, reading and reassembling them on the consumer side.
//!
//! Each side keeps its own counter (`tail` for the producer, `head` for the
//! consumer) in local memory and only *stores* it to the shared line, so a
//! hostile peer cannot move it. Everything read from the peer (its counter, the
//! frame headers) is validated before use; a violation is a
//! [`RingCorruption`], never a panic, an unbounded allocation or a loop.

use std::cell::Cell;

use super::frame::{Assembly, FrameHeader, Step, FRAME_HEADER_LEN};
use super::layout::RingControl;
use super::wait::{wake_if_waiting, WaitPoint};
use super::{RingCorruption, RingError};
use crate::sync::{read_bytes, write_bytes, ByteCell, Ordering};

const HDR: u64 = FRAME_HEADER_LEN as u64;
/// Reserve at most this much for a message before its bytes arrive.
const MAX_RESERVE: u64 = 1 << 20;

/// One ring as seen by one side: its control block and its data area.
#[derive(Clone, Copy)]
pub(crate) struct RingRef<'a> {
    pub(crate) ctl: &'a RingControl,
    pub(crate) data: &'a [ByteCell],
}

impl<'a> RingRef<'a> {
    pub(crate) fn capacity(&self) -> u64 {
        self.data.len() as u64
    }

    /// Largest payload of one frame.
    pub(crate) fn max_frame(&self) -> u64 {
        self.capacity() - HDR
    }

    /// Where the consumer sleeps waiting for data.
    pub(crate) fn data_point(&self) -> WaitPoint<'a> {
        WaitPoint {
            seq: &self.ctl.producer.data_seq,
            waiting: &self.ctl.sleepers.data_waiting,
        }
    }

    /// Where the producer sleeps waiting for space.
    pub(crate) fn space_point(&self) -> WaitPoint<'a> {
        WaitPoint {
            seq: &self.ctl.consumer.space_seq,
            waiting: &self.ctl.sleepers.space_waiting,
        }
    }

    /// Splits `len` bytes at counter `at` into (data-area start, first part).
    fn split(&self, at: u64, len: usize) -> (usize, usize) {
        let pos = (at % self.capacity()) as usize;
        (pos, len.min(self.data.len() - pos))
    }

    /// # Safety
    /// - The producer owns bytes `at .. at + src.len()` (they lie between
    ///   `tail` and `head + capacity`), and `src.len() <= capacity`.
    unsafe fn write_at(&self, at: u64, src: &[u8]) {
        let (pos, first) = self.split(at, src.len());
        // SAFETY: ownership of these bytes is the caller's duty; the ranges
        // are in bounds because `src.len() <= capacity`.
        unsafe {
            write_bytes(&self.data[pos..pos + first], &src[..first]);
            write_bytes(&self.data[..src.len() - first], &src[first..]);
        }
    }

    /// # Safety
    /// - The consumer owns bytes `at .. at + dst.len()` (they lie between
    ///   `head` and `tail`), and `dst.len() <= capacity`.
    unsafe fn read_at(&self, at: u64, dst: &mut [u8]) {
        let (pos, first) = self.split(at, dst.len());
        let len = dst.len();
        // SAFETY: ownership is the caller's duty; in bounds as `len <= capacity`.
        unsafe {
            read_bytes(&self.data[pos..pos + first], &mut dst[..first]);
            read_bytes(&self.data[..len - first], &mut dst[first..]);
        }
    }
}

/// The producer's private state.
pub(crate) struct Producer {
    /// Our tail (the shared copy is only ever stored to).
    tail: Cell<u64>,
    /// The consumer's head as last read.
    head_seen: Cell<u64>,
}

impl Producer {
    pub(crate) fn new(ring: RingRef<'_>) -> Producer {
        Producer {
            // SYNC POINT: Relaxed; at open nothing is in flight on our side.
            tail: Cell::new(ring.ctl.producer.tail.load(Ordering::Relaxed)),
            // SYNC POINT: Acquire; pairs with the Release store of head in
            // Consumer::pump() (a re-opened ring).
            head_seen: Cell::new(ring.ctl.consumer.head.load(Ordering::Acquire)),
        }
    }

    /// Free bytes; re-reads the consumer's head unless the cached value
    /// already shows `want` bytes free.
    pub(crate) fn free(&self, ring: RingRef<'_>, want: u64) -> Result<u64, RingCorruption> {
        let tail = self.tail.get();
        let cap = ring.capacity();
        // (checked: at open, both counters came from shared memory unvalidated)
        if let Some(cached) = cap.checked_sub(tail.wrapping_sub(self.head_seen.get())) {
            if cached >= want {
                return Ok(cached);
            }
        }
        // SYNC POINT: Acquire; pairs with the Release store of head in
        // Consumer::pump(): the consumer finished reading the bytes it frees.
        let head = ring.ctl.consumer.head.load(Ordering::Acquire);
        let used = tail.wrapping_sub(head);
        // head must lie in [head_seen, tail]: not past our tail, not moved back.
        if used > cap
            || head.wrapping_sub(self.head_seen.get()) > tail.wrapping_sub(self.head_seen.get())
        {
            return Err(RingCorruption::HeadOutOfRange {
                distance: used,
                capacity: cap,
            });
        }
        self.head_seen.set(head);
        Ok(cap - used)
    }

    /// Writes raw bytes at the tail and publishes them.
    ///
    /// # Safety
    /// - `free()` returned at least `bytes.len()` since the last publish.
    pub(crate) unsafe fn push(&self, ring: RingRef<'_>, bytes: &[u8]) {
        let tail = self.tail.get();
        // SAFETY: the caller checked the space, so we own these bytes.
        unsafe { ring.write_at(tail, bytes) };
        self.publish(ring, tail.wrapping_add(bytes.len() as u64));
    }

    /// Writes one frame (header then payload) at the tail and publishes it.
    ///
    /// # Safety
    /// - `free()` returned at least `FRAME_HEADER_LEN + payload.len()` since
    ///   the last publish.
    pub(crate) unsafe fn push_frame(&self, ring: RingRef<'_>, h: &FrameHeader, payload: &[u8]) {
        let tail = self.tail.get();
        // SAFETY: the caller checked the space for header and payload.
        unsafe {
            ring.write_at(tail, &h.encode());
            ring.write_at(tail.wrapping_add(HDR), payload);
        }
        self.publish(ring, tail.wrapping_add(HDR + payload.len() as u64));
    }

    fn publish(&self, ring: RingRef<'_>, tail: u64) {
        self.tail.set(tail);
        // SYNC POINT: Release; pairs with the Acquire load of tail in
        // Consumer::pump(): the bytes written above are visible before tail.
        ring.ctl.producer.tail.store(tail, Ordering::Release);
        wake_if_waiting(ring.data_point());
    }
}

/// The consumer's private state.
pub(crate) struct Consumer {
    /// Our head (the shared copy is only ever stored to).
    head: Cell<u64>,
    assembly: Cell<Assembly>,
}

impl Consumer {
    pub(crate) fn new(ring: RingRef<'_>) -> Consumer {
        Consumer {
            // SYNC POINT: Relaxed; at open nothing is in flight on our side.
            head: Cell::new(ring.ctl.consumer.head.load(Ordering::Relaxed)),
            assembly: Cell::new(Assembly::Idle),
        }
    }

    /// Consumes every published frame up to the end of a message, appending
    /// payloads to `msg` (cleared when a message starts). `Some(())` when a
    /// whole message is in `msg`; `None` when the published bytes run out.
    pub(crate) fn pump(
        &self,
        ring: RingRef<'_>,
        max_message: u64,
        msg: &mut Vec<u8>,
    ) -> Result<Option<()>, RingError> {
        let cap = ring.capacity();
        loop {
            let head = self.head.get();
            // SYNC POINT: Acquire; pairs with the Release store of tail in
            // Producer::publish(): the frame bytes are visible.
            let tail = ring.ctl.producer.tail.load(Ordering::Acquire);
            let available = tail.wrapping_sub(head);
            if available > cap {
                return Err(RingCorruption::TailOutOfRange {
                    distance: available,
                    capacity: cap,
                }
                .into());
            }
            if available == 0 {
                return Ok(None);
            }
            if available < HDR {
                return Err(RingCorruption::IncompleteFrame {
                    available,
                    needed: HDR,
                }
                .into());
            }
            let mut raw = [0u8; FRAME_HEADER_LEN];
            // SAFETY: HDR <= available bytes from head are published to us.
            unsafe { ring.read_at(head, &mut raw) };
            let h = FrameHeader::decode(&raw, ring.max_frame() as usize)?;
            let needed = HDR + h.len as u64;
            if available < needed {
                return Err(RingCorruption::IncompleteFrame { available, needed }.into());
            }
            let mut state = self.assembly.get();
            let step = state.step(&h, max_message)?;
            self.assembly.set(state);
            if !h.cont() {
                msg.clear();
            }
            if let Step::Keep { .. } = step {
                if !h.cont() {
                    msg.reserve(h.total.min(MAX_RESERVE) as usize);
                }
                let old = msg.len();
                msg.resize(old + h.len as usize, 0);
                // SAFETY: the payload lies within the `available` published bytes.
                unsafe { ring.read_at(head.wrapping_add(HDR), &mut msg[old..]) };
            }
            let head = head.wrapping_add(needed);
            self.head.set(head);
            // SYNC POINT: Release; pairs with the Acquire load of head in
            // Producer::free(): we are done reading the bytes we free.
            ring.ctl.consumer.head.store(head, Ordering::Release);
            wake_if_waiting(ring.space_point());
            match step {
                Step::Keep { done: true } => return Ok(Some(())),
                Step::TooLarge { total, .. } => {
                    return Err(RingError::MessageTooLarge {
                        len: total,
                        max: max_message,
                    })
                }
                Step::Keep { done: false } | Step::Skip { .. } => {}
            }
        }
    }
}
