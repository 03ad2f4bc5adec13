//! Waiting without lost wake-ups: a bounded spin, then sleep on a futex word.
//!
//! The handshake (one sleeper and one waker per word, both directions alike):
//!
//! ```text
//! sleeper                                   waker
//! waiting = 1                               publish (Release store of tail/head)
//! fence(SeqCst)  ◀─── Dekker pair ───▶      fence(SeqCst)
//! s = seq (Acquire)                         if waiting != 0 {
//! re-check condition; if met: return            seq += 1 (Release)
//! futex_wait(seq, s)                            futex_wake(seq) }
//! ```
//!
//! The two fences guarantee that the waker sees `waiting = 1` or the sleeper's
//! re-check sees the publication (or both). If the waker bumps `seq` before the
//! sleeper reads it, the Acquire read makes the publication visible to the
//! re-check; if after, the kernel's compare in `futex_wait` fails or the wake
//! reaches the sleeper. `close()` bumps and wakes unconditionally.
//!
//! Sleeps are sliced: a sleep lasts at most until the deadline or the next
//! peer-alive check ([`PEER_CHECK_INTERVAL`]); with neither, it is untimed.
//!
//! Spinning only pays when the peer runs on another core. Each side publishes
//! the CPU it waits on (a store only when it changed); a waiter whose peer
//! last waited on the same CPU goes straight to sleep. (Yielding in a loop
//! instead measured faster, 2.7 µs against 4 µs per round trip, but kept both
//! processes runnable on one CPU for good: the scheduler never moved one to
//! the idle core. A futex wake lets it place the wakee on an idle CPU.) A
//! waiter spinning for more than `PURE_SPIN` also yields now and then, in case
//! a third task shares its core.

use std::cell::Cell;

use std::time::{Duration, Instant};

use crate::sync::{current_cpu, fence, spin_loop, yield_now, AtomicU32, FutexWord, Ordering};

use super::RingError;

/// How often a sleeping wait calls the peer-alive check.
pub const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// Spin iterations between clock reads (a power of two).
const CLOCK_EVERY: u32 = 32;
/// After this much pure spinning, spin with a `sched_yield` between clock
/// reads, so a peer sharing our core gets to run.
const PURE_SPIN: Duration = Duration::from_micros(2);

/// How one call waits.
pub(crate) struct Waiter<'a> {
    /// Spin this long before sleeping.
    pub(crate) spin: Duration,
    /// Give up with `Timeout` after this instant.
    pub(crate) deadline: Option<Instant>,
    /// Fail with `PeerGone` when this returns false.
    pub(crate) peer_alive: Option<&'a (dyn Fn() -> bool + Send)>,
    /// Where we and the peer last waited.
    pub(crate) cpus: CpuHint<'a>,
}

/// The CPU words of the two sides (header `cpu[side]`), and what we last
/// stored in ours.
pub(crate) struct CpuHint<'a> {
    pub(crate) mine: &'a AtomicU32,
    pub(crate) peer: &'a AtomicU32,
    pub(crate) published: &'a Cell<u32>,
}

impl CpuHint<'_> {
    /// Publishes our CPU if it changed; true if the peer last waited on it.
    fn same_core(&self) -> bool {
        let cpu = current_cpu();
        if cpu != self.published.get() {
            self.published.set(cpu);
            // SYNC POINT: Relaxed; a scheduling hint that orders nothing;
            // pairs with the Relaxed load of `peer` on the other side.
            self.mine.store(cpu, Ordering::Relaxed);
        }
        // SYNC POINT: Relaxed; a hint (see the store above).
        cpu != u32::MAX && self.peer.load(Ordering::Relaxed) == cpu
    }
}

/// The futex word a sleeper sleeps on and the flag it announces itself with.
#[derive(Clone, Copy)]
pub(crate) struct WaitPoint<'a> {
    pub(crate) seq: &'a FutexWord,
    pub(crate) waiting: &'a AtomicU32,
}

impl Waiter<'_> {
    /// Calls `poll` until it returns `Some` or an error: spinning first, then
    /// sleeping on `point`. `poll` must read shared state afresh each call.
    pub(crate) fn wait<T>(
        &self,
        point: WaitPoint<'_>,
        mut poll: impl FnMut() -> Result<Option<T>, RingError>,
    ) -> Result<T, RingError> {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        if !self.spin.is_zero() {
            if let Some(v) = self.spin(&mut poll)? {
                return Ok(v);
            }
        }
        let result = self.sleep(point, &mut poll);
        // SYNC POINT: Relaxed; withdrawing the announcement needs no order: a
        // waker that still sees 1 only makes a harmless extra wake.
        point.waiting.store(0, Ordering::Relaxed);
        result
    }

    /// The bounded spin: `Some` if `poll` succeeded, `None` when the spin
    /// budget or the deadline ran out.
    fn spin<T>(
        &self,
        poll: &mut impl FnMut() -> Result<Option<T>, RingError>,
    ) -> Result<Option<T>, RingError> {
        if self.cpus.same_core() {
            return Ok(None);
        }
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            spin_loop();
            if let Some(v) = poll()? {
                return Ok(Some(v));
            }
            i = i.wrapping_add(1);
            if i & (CLOCK_EVERY - 1) == 0 {
                let now = Instant::now();
                let spun = now - start;
                if spun >= self.spin || self.deadline.is_some_and(|d| now >= d) {
                    return Ok(None);
                }
                if spun >= PURE_SPIN {
                    yield_now();
                }
                if self.cpus.same_core() {
                    return Ok(None);
                }
            }
        }
    }

    fn sleep<T>(
        &self,
        point: WaitPoint<'_>,
        poll: &mut impl FnMut() -> Result<Option<T>, RingError>,
    ) -> Result<T, RingError> {
        let timed = self.deadline.is_some() || self.peer_alive.is_some();
        let mut last_check = if timed { Some(Instant::now()) } else { None };
        loop {
            // SYNC POINT: Relaxed; ordered before the re-check by the fence
            // below. Pairs with the Relaxed load of `waiting` in wake_if_waiting().
            point.waiting.store(1, Ordering::Relaxed);
            // SYNC POINT: SeqCst fence; pairs with the SeqCst fence in
            // wake_if_waiting() (Dekker: the waker sees our flag, or our
            // re-check below sees its publication).
            fence(Ordering::SeqCst);
            // SYNC POINT: Acquire; pairs with the Release bump of `seq` in
            // wake_if_waiting()/wake_always(): reading the bumped value makes
            // the publication before it visible to the re-check.
            let seq = point.seq.load(Ordering::Acquire);
            if let Some(v) = poll()? {
                return Ok(v);
            }
            let mut timeout = None;
            if let Some(last) = last_check.as_mut() {
                let now = Instant::now();
                if self.deadline.is_some_and(|d| now >= d) {
                    return Err(RingError::Timeout);
                }
                if let Some(alive) = self.peer_alive {
                    if now - *last >= PEER_CHECK_INTERVAL {
                        if !alive() {
                            return Err(RingError::PeerGone);
                        }
                        *last = now;
                    }
                    timeout = Some(PEER_CHECK_INTERVAL.saturating_sub(now - *last));
                }
                if let Some(d) = self.deadline {
                    let left = d - now;
                    timeout = Some(timeout.map_or(left, |t: Duration| t.min(left)));
                }
            }
            point.seq.wait(seq, timeout);
            if !self.spin.is_zero() {
                // We may wake on another CPU; tell the peer's next spin.
                self.cpus.same_core();
            }
        }
    }
}

/// The waker's half: call right after publishing (Release store of `tail` or
/// `head`). Wakes the peer only if it announced itself as sleeping.
pub(crate) fn wake_if_waiting(point: WaitPoint<'_>) {
    // SYNC POINT: SeqCst fence; pairs with the SeqCst fence in
    // Waiter::sleep() after the sleeper sets `waiting`.
    fence(Ordering::SeqCst);
    // SYNC POINT: Relaxed; ordered after our publication by the fence above;
    // pairs with the Relaxed store of 1 in Waiter::sleep().
    if point.waiting.load(Ordering::Relaxed) != 0 {
        wake_always(point.seq);
    }
}

/// Bumps `seq` and wakes whoever sleeps on it (used directly by `close()`).
pub(crate) fn wake_always(seq: &FutexWord) {
    // SYNC POINT: Release; pairs with the Acquire load of `seq` in
    // Waiter::sleep(), publishing everything written before this bump.
    seq.fetch_add(1, Ordering::Release);
    seq.wake_all();
}
