//! The synchronisation facade: the only file that names `std::sync::atomic` or
//! `loom::sync::atomic`.
//!
//! The ring algorithm (`ring/`) imports atomics, fences, the spin hint, the
//! futex word and the data-area byte cell from here and contains no `cfg`.
//! Normally these are the real things: std atomics, `libc` `SYS_futex`
//! (`FUTEX_WAIT` / `FUTEX_WAKE`, *not* the `_PRIVATE` variants, because the
//! word lives in memory shared between processes) and `UnsafeCell<u8>` bytes.
//! Under `--cfg luapool_loom` they are loom's model objects, and the futex is a
//! model of futex semantics built from a loom `Mutex` + `Condvar`: `wait`
//! locks, compares the word and sleeps on the condvar; `wake_all` locks and
//! notifies. A lost wake-up therefore shows up as a loom deadlock. The model
//! ignores wait timeouts (a timed wait is an untimed one), so a bug cannot hide
//! behind a timeout slice.

pub(crate) use imp::*;

#[cfg(not(luapool_loom))]
mod imp {
    use std::cell::UnsafeCell;
    use std::time::Duration;

    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    pub(crate) use std::thread::yield_now;

    /// False: the real atomics, usable in shared memory. (True under loom.)
    pub(crate) const IS_MODEL: bool = false;

    /// The CPU this thread runs on (`u32::MAX` if unknown); a vDSO call.
    pub(crate) fn current_cpu() -> u32 {
        // SAFETY: sched_getcpu takes no arguments and only returns a value.
        unsafe { libc::sched_getcpu() as u32 }
    }

    /// A 32-bit word that a thread (of any process mapping it) can sleep on.
    ///
    /// `#[repr(transparent)]` over `AtomicU32`, so it has the size and
    /// alignment of a `u32` and can live in the shared region.
    #[repr(transparent)]
    pub(crate) struct FutexWord(AtomicU32);

    impl FutexWord {
        pub(crate) fn new(value: u32) -> Self {
            FutexWord(AtomicU32::new(value))
        }

        /// Loads the word. Callers name the ordering and its partner.
        pub(crate) fn load(&self, order: Ordering) -> u32 {
            self.0.load(order)
        }

        /// Adds to the word (wrapping). Callers name the ordering and partner.
        pub(crate) fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            self.0.fetch_add(value, order)
        }

        /// Sleeps while the word equals `expected`, for at most `timeout`
        /// (`None`: until woken). Returns on wake-up, on a changed word
        /// (`EAGAIN`), on timeout, on a signal, or spuriously: callers always
        /// re-check their condition.
        pub(crate) fn wait(&self, expected: u32, timeout: Option<Duration>) {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: the address is that of a live, 4-byte aligned u32 (the
            // AtomicU32) for the whole call; FUTEX_WAIT only reads it. `ts_ptr`
            // is null or points to `ts`, alive until the call returns. The
            // result is deliberately ignored: every outcome means "re-check".
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAIT,
                    expected,
                    ts_ptr,
                    std::ptr::null::<u32>(),
                    0u32,
                );
            }
        }

        /// Wakes every thread (in any process) sleeping on this word.
        pub(crate) fn wake_all(&self) {
            // SAFETY: the address is that of a live, aligned u32; FUTEX_WAKE
            // does not access memory through the other (unused) arguments.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr(),
                    libc::FUTEX_WAKE,
                    i32::MAX,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<u32>(),
                    0u32,
                );
            }
        }
    }

    /// One byte of a ring's data area. `#[repr(transparent)]` over
    /// `UnsafeCell<u8>`, so a data area in shared memory can be viewed as a
    /// `&[ByteCell]`.
    #[repr(transparent)]
    pub(crate) struct ByteCell(UnsafeCell<u8>);

    impl ByteCell {
        pub(crate) fn new() -> Self {
            ByteCell(UnsafeCell::new(0))
        }
    }

    // SAFETY: a ByteCell is only read or written through `read_bytes` and
    // `write_bytes`, whose callers guarantee by the ring protocol that no one
    // else accesses those bytes at the same time.
    unsafe impl Sync for ByteCell {}

    /// Copies `src` into `dst` (same length).
    ///
    /// # Safety
    /// - No other thread or process reads or writes `dst` during the call: by
    ///   the ring protocol these bytes belong to the caller (producer: between
    ///   `tail` and `head + capacity`).
    pub(crate) unsafe fn write_bytes(dst: &[ByteCell], src: &[u8]) {
        assert_eq!(dst.len(), src.len());
        // SAFETY: ByteCell is a transparent UnsafeCell<u8>, so the slice is
        // `dst.len()` contiguous writable bytes; `src` is a distinct Rust
        // slice, so they do not overlap; exclusivity is the caller's duty.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                UnsafeCell::raw_get(dst.as_ptr().cast::<UnsafeCell<u8>>()),
                src.len(),
            )
        }
    }

    /// Copies `src` into `dst` (same length).
    ///
    /// # Safety
    /// - Nobody writes `src` during the call: by the ring protocol these bytes
    ///   belong to the caller (consumer: between `head` and `tail`).
    pub(crate) unsafe fn read_bytes(src: &[ByteCell], dst: &mut [u8]) {
        assert_eq!(dst.len(), src.len());
        // SAFETY: `src` is `src.len()` contiguous readable bytes (transparent
        // UnsafeCell<u8>); `dst` is a distinct &mut slice; no concurrent
        // writer is the caller's duty.
        unsafe {
            std::ptr::copy_nonoverlapping(
                UnsafeCell::raw_get(src.as_ptr().cast::<UnsafeCell<u8>>()),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }
}

#[cfg(luapool_loom)]
mod imp {
    use std::time::Duration;

    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    pub(crate) use loom::thread::yield_now;

    /// True: loom model objects, which cannot live in shared memory.
    pub(crate) const IS_MODEL: bool = true;

    /// Unknown in the model: spinning (and so the CPU hint) is off there.
    pub(crate) fn current_cpu() -> u32 {
        u32::MAX
    }

    /// Model of a futex word: the word plus a mutex and condvar that give
    /// `wait`/`wake_all` the kernel's semantics (the compare in `wait` and the
    /// wake in `wake_all` are atomic with respect to each other).
    pub(crate) struct FutexWord {
        word: AtomicU32,
        lock: loom::sync::Mutex<()>,
        cv: loom::sync::Condvar,
    }

    impl FutexWord {
        pub(crate) fn new(value: u32) -> Self {
            FutexWord {
                word: AtomicU32::new(value),
                lock: loom::sync::Mutex::new(()),
                cv: loom::sync::Condvar::new(),
            }
        }

        pub(crate) fn load(&self, order: Ordering) -> u32 {
            self.word.load(order)
        }

        pub(crate) fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            self.word.fetch_add(value, order)
        }

        /// Untimed in the model: `timeout` is ignored so that a lost wake-up
        /// is a deadlock loom reports, not a delay a timeout hides.
        pub(crate) fn wait(&self, expected: u32, _timeout: Option<Duration>) {
            let guard = self.lock.lock().unwrap();
            // SYNC POINT: the kernel compares the word under its hash-bucket
            // lock; here the mutex plays that role and pairs with the lock
            // taken in wake_all(), so a bump made before that wake is seen.
            if self.word.load(Ordering::SeqCst) != expected {
                return;
            }
            drop(self.cv.wait(guard).unwrap());
        }

        pub(crate) fn wake_all(&self) {
            let _guard = self.lock.lock().unwrap();
            self.cv.notify_all();
        }
    }

    /// One byte of a ring's data area; loom checks every access for causality.
    pub(crate) struct ByteCell(loom::cell::UnsafeCell<u8>);

    impl ByteCell {
        pub(crate) fn new() -> Self {
            ByteCell(loom::cell::UnsafeCell::new(0))
        }
    }

    // SAFETY: as the std version; loom additionally checks every access.
    unsafe impl Sync for ByteCell {}

    /// # Safety
    /// - As the std version: the caller owns `dst` by the ring protocol (loom
    ///   verifies this and panics on a racy access).
    pub(crate) unsafe fn write_bytes(dst: &[ByteCell], src: &[u8]) {
        assert_eq!(dst.len(), src.len());
        for (cell, byte) in dst.iter().zip(src) {
            // SAFETY: exclusivity is the caller's duty; loom checks it.
            cell.0.with_mut(|p| unsafe { *p = *byte });
        }
    }

    /// # Safety
    /// - As the std version: nobody writes `src` during the call.
    pub(crate) unsafe fn read_bytes(src: &[ByteCell], dst: &mut [u8]) {
        assert_eq!(dst.len(), src.len());
        for (cell, byte) in src.iter().zip(dst) {
            // SAFETY: no concurrent writer is the caller's duty; loom checks it.
            *byte = cell.0.with(|p| unsafe { *p });
        }
    }
}
