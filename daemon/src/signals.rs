//! Waking the daemon's event loop: a self-pipe that a [`DaemonStopper`] and,
//! when asked for, the SIGTERM/SIGINT handlers write one byte to.
//!
//! Plain `libc` rather than a signal crate: the handler only has to write a
//! byte to a pipe (async-signal-safe), and the event loop polls the pipe
//! with the sockets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// The write end of the pipe the signal handlers write to (-1: none).
static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    // SYNC POINT: pairs with the store in install_signal_handlers(); the
    // fd is set before the handler is installed.
    let fd = SIGNAL_FD.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local.
        // A full pipe means a wake-up is already pending, so errors are moot.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// A non-blocking pipe; reading it tells that a stop was asked for.
pub(crate) struct WakePipe {
    read: OwnedFd,
    write: Arc<OwnedFd>,
}

impl WakePipe {
    pub fn new() -> io::Result<WakePipe> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and owned by no one else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(WakePipe {
            read,
            write: Arc::new(write),
        })
    }

    pub fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// A handle that wakes this pipe.
    pub fn stopper(&self) -> DaemonStopper {
        DaemonStopper {
            write: self.write.clone(),
        }
    }

    /// Makes SIGTERM and SIGINT write to this pipe. Later calls (another
    /// daemon in the same process) take the signals over.
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        // SYNC POINT: pairs with the Acquire load in on_signal().
        SIGNAL_FD.store(self.write.as_raw_fd(), Ordering::Release);
        for sig in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: the sigaction struct is zeroed then filled with a valid
            // handler whose only action is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// Empties the pipe; true if anything was in it.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        loop {
            // SAFETY: buf is a live, writable buffer of buf.len() bytes.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return any;
            }
            any = true;
        }
    }
}

impl Drop for WakePipe {
    fn drop(&mut self) {
        // Signals after this daemon is gone must not write to a closed (and
        // maybe reused) descriptor.
        let _ = SIGNAL_FD.compare_exchange(
            self.write.as_raw_fd(),
            -1,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Asks a running [`Daemon`](super::Daemon) to shut down gracefully, as
/// SIGTERM does. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct DaemonStopper {
    write: Arc<OwnedFd>,
}

impl DaemonStopper {
    /// Starts the graceful shutdown; a second call skips the grace period.
    pub fn stop(&self) {
        let byte = 1u8;
        // SAFETY: the fd is open while this Arc lives; the buffer is a live local.
        unsafe { libc::write(self.write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    }
}
