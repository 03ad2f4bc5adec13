//! The sending side of a connection. Frames go through one queue, in the
//! order they were sent, and one thread at a time writes them out:
//!
//! - a session thread sending a response writes the queue out itself when
//!   nobody else is writing (no thread hand-off on the common path);
//! - a log line comes from a pool's serving thread, which must never wait for
//!   a client: it only queues, and wakes the connection's writer thread if
//!   nobody is writing.
//!
//! The bytes queued are counted: above [`HIGH_WATER`] the connection's reader
//! stops reading requests until the client catches up, and log lines are
//! dropped rather than queued (responses are always queued).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::listen::Stream;

/// Bytes queued for a client beyond which it gets no new work and no log lines.
pub(crate) const HIGH_WATER: usize = 64 << 20;

#[derive(Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes queued or being written.
    bytes: usize,
    /// Some thread is writing the queue out.
    writing: bool,
    /// A write failed: the client is gone.
    broken: bool,
    /// Every outbox handle is gone: the writer thread ends.
    closed: bool,
}

/// Queues frames for one connection. When every handle is gone, what is
/// queued is still written, then the writer thread ends.
pub(crate) struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Queue>,
    /// Wakes the writer thread (work to do) and the reader (room again).
    changed: Condvar,
    out: Mutex<std::io::BufWriter<Stream>>,
    /// To wake the reader when a write fails.
    shutdown: Option<Stream>,
}

impl Outbox {
    /// An outbox and its writer thread, writing to `stream`.
    pub fn start(stream: Stream) -> std::io::Result<(Arc<Outbox>, JoinHandle<()>)> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            shutdown: stream.try_clone().ok(),
            out: Mutex::new(std::io::BufWriter::with_capacity(64 << 10, stream)),
        });
        let writer = inner.clone();
        let thread = std::thread::Builder::new()
            .name("luapool-conn-writer".into())
            .spawn(move || writer.writer_thread())?;
        Ok((Arc::new(Outbox { inner }), thread))
    }

    /// Queues a response and, unless another thread is writing, writes the
    /// queue out on this thread (which may block on a slow client).
    pub fn send(&self, frame: Vec<u8>) {
        let mut q = self.inner.queue.lock();
        if q.broken {
            return;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        if !q.writing {
            q.writing = true;
            self.inner.write_out(q);
        }
    }

    /// Queues a log notification without ever blocking; dropped if the
    /// client is too far behind.
    pub fn send_log(&self, frame: Vec<u8>) {
        let mut q = self.inner.queue.lock();
        if q.broken || q.bytes > HIGH_WATER {
            return;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        if !q.writing {
            self.inner.changed.notify_all();
        }
    }

    /// Waits while more than [`HIGH_WATER`] bytes are queued; false once the
    /// connection is broken.
    pub fn wait_for_room(&self) -> bool {
        let mut q = self.inner.queue.lock();
        while q.bytes > HIGH_WATER && !q.broken {
            self.inner.changed.wait(&mut q);
        }
        !q.broken
    }

    /// Whether a write failed (the client is gone).
    pub fn is_broken(&self) -> bool {
        self.inner.queue.lock().broken
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.inner.queue.lock().closed = true;
        self.inner.changed.notify_all();
    }
}

impl Inner {
    /// Writes frames until the queue is empty; the caller set `writing`.
    fn write_out<'a>(&'a self, mut q: parking_lot::MutexGuard<'a, Queue>) {
        loop {
            let batch: Vec<Vec<u8>> = q.frames.drain(..).collect();
            if batch.is_empty() {
                q.writing = false;
                self.changed.notify_all();
                return;
            }
            drop(q);
            let n: usize = batch.iter().map(Vec::len).sum();
            let ok = {
                let mut out = self.out.lock();
                batch.iter().all(|f| out.write_all(f).is_ok()) && out.flush().is_ok()
            };
            q = self.queue.lock();
            q.bytes -= n;
            if !ok {
                q.broken = true;
                q.bytes -= q.frames.iter().map(Vec::len).sum::<usize>();
                q.frames.clear();
                q.writing = false;
                self.changed.notify_all();
                drop(q);
                // Wake the reader: the client is gone.
                if let Some(s) = &self.shutdown {
                    s.shutdown_both();
                }
                return;
            }
            // The reader may be waiting for room.
            self.changed.notify_all();
        }
    }

    /// Writes out what others only queued (log lines), until the outbox closes.
    fn writer_thread(&self) {
        let mut q = self.queue.lock();
        loop {
            if !q.writing && !q.frames.is_empty() {
                q.writing = true;
                self.write_out(q);
                q = self.queue.lock();
                continue;
            }
            if q.closed && !q.writing {
                return;
            }
            self.changed.wait(&mut q);
        }
    }
}
