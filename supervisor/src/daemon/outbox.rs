//! The sending side of a connection: a writer thread fed by a queue, so
//! that nothing else ever blocks on a slow client's socket (log lines are
//! produced on a pool's serving thread, which must never wait for a client).
//!
//! The bytes queued are counted: above [`HIGH_WATER`] the connection's reader
//! stops reading requests until the client catches up, and log lines are
//! dropped rather than queued (responses are always queued).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use super::listen::Stream;

/// Bytes queued for a client beyond which it gets no new work and no log lines.
pub(crate) const HIGH_WATER: usize = 64 << 20;

/// Counters shared by the outbox and its writer thread.
#[derive(Default)]
struct Level {
    queued: AtomicUsize,
    broken: AtomicBool,
    lock: Mutex<()>,
    drained: Condvar,
}

impl Level {
    fn sent(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        let _guard = self.lock.lock();
        self.drained.notify_all();
    }
}

/// Queues frames for one connection's writer thread. When every clone of the
/// outbox is gone, the writer sends what is left and ends.
pub(crate) struct Outbox {
    tx: Sender<Vec<u8>>,
    level: Arc<Level>,
    dropped_logs: AtomicUsize,
}

impl Outbox {
    /// An outbox and the writer thread draining it into `stream`.
    pub fn start(stream: Stream) -> std::io::Result<(Arc<Outbox>, JoinHandle<()>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let level = Arc::new(Level::default());
        let writer_level = level.clone();
        let thread = std::thread::Builder::new()
            .name("luapool-conn-writer".into())
            .spawn(move || write_loop(rx, stream, &writer_level))?;
        Ok((
            Arc::new(Outbox {
                tx,
                level,
                dropped_logs: AtomicUsize::new(0),
            }),
            thread,
        ))
    }

    /// Queues a response.
    pub fn send(&self, frame: Vec<u8>) {
        if self.level.broken.load(Ordering::Relaxed) {
            return;
        }
        self.level.queued.fetch_add(frame.len(), Ordering::Relaxed);
        let _ = self.tx.send(frame);
    }

    /// Queues a log notification unless the client is too far behind.
    pub fn send_log(&self, frame: Vec<u8>) {
        if self.level.queued.load(Ordering::Relaxed) > HIGH_WATER {
            self.dropped_logs.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.send(frame);
    }

    /// Waits while more than [`HIGH_WATER`] bytes are queued; false once the
    /// connection is broken.
    pub fn wait_for_room(&self) -> bool {
        let mut guard = self.level.lock.lock();
        while self.level.queued.load(Ordering::Relaxed) > HIGH_WATER && !self.is_broken() {
            self.level.drained.wait(&mut guard);
        }
        !self.is_broken()
    }

    /// Whether a write failed (the client is gone).
    pub fn is_broken(&self) -> bool {
        self.level.broken.load(Ordering::Relaxed)
    }
}

fn write_loop(rx: Receiver<Vec<u8>>, stream: Stream, level: &Level) {
    let shutdown = stream.try_clone();
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stream);
    while let Ok(frame) = rx.recv() {
        let mut n = frame.len();
        let mut ok = out.write_all(&frame).is_ok();
        // Coalesce whatever else is ready into the same write.
        while ok {
            let Ok(more) = rx.try_recv() else { break };
            n += more.len();
            ok = out.write_all(&more).is_ok();
        }
        ok = ok && out.flush().is_ok();
        level.sent(n);
        if !ok {
            level.broken.store(true, Ordering::Relaxed);
            // Wake the reader: the client is gone.
            if let Ok(s) = &shutdown {
                s.shutdown_both();
            }
            for frame in rx.iter() {
                level.sent(frame.len());
            }
            let _guard = level.lock.lock();
            level.drained.notify_all();
            return;
        }
    }
}
