//! The sending side of a connection: frames queue in order and are written
//! with non-blocking writes by whichever thread sends (the event loop, a
//! thread running a session call, or a pool thread finishing a compute), so
//! a reply needs no hand-off to another thread. What does not fit in the
//! socket waits here; the event loop writes it when the socket is writable
//! again.
//!
//! The unsent bytes are counted against the connection's bound
//! (`unsent_bytes`): past it, log lines are dropped and the connection's
//! sessions park instead of starting calls ([`Outbox::park_if_full`]),
//! until the client reads it down to half the bound.

use std::collections::VecDeque;
use std::io::{ErrorKind, IoSlice};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::listen::Stream;
use crate::session::DaemonSession;
use crate::shared::Budget;

/// Frames written per system call, at most.
const IOV_MAX: usize = 64;

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything is written.
    Done,
    /// Some waits for the socket to be writable.
    Pending,
    /// The client is gone.
    Broken,
}

#[derive(Default)]
struct Out {
    frames: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already written.
    head: usize,
    /// Bytes queued and not yet written.
    unsent: usize,
    broken: bool,
    /// Sessions waiting for room before they start their next call.
    parked: Vec<Arc<DaemonSession>>,
    /// The event loop stopped reading the client's requests for room.
    read_paused: bool,
    /// The socket is polled for writability.
    want_writable: bool,
}

/// One connection's queue of outgoing frames.
pub(crate) struct Outbox {
    out: Mutex<Out>,
    /// The bound on unsent bytes.
    limit: usize,
    /// Where the event loop polls the socket: it asks to hear of
    /// writability only while something waits (else every reply the client
    /// reads would wake the loop for nothing).
    poll: Interest,
    /// The daemon-wide bound the unsent bytes count against: past it, a
    /// connection with anything unsent starts no call either.
    budget: Arc<Budget>,
}

/// The socket's registration with the event loop.
pub(crate) struct Interest {
    pub registry: Arc<mio::Registry>,
    pub fd: std::os::fd::RawFd,
    pub token: usize,
}

impl Outbox {
    pub fn new(limit: usize, poll: Interest, budget: Arc<Budget>) -> Outbox {
        Outbox {
            out: Mutex::new(Out::default()),
            limit,
            poll,
            budget,
        }
    }

    /// Whether `out` is past its bound, or holds anything while the
    /// daemon-wide bound is passed.
    fn full(&self, out: &Out) -> bool {
        !out.broken && (out.unsent > self.limit || (out.unsent > 0 && self.budget.over()))
    }

    /// Whether the client has read enough for parked work to go on.
    fn roomy(&self, out: &Out) -> bool {
        out.broken || (out.unsent <= self.limit / 2 && (out.unsent == 0 || !self.budget.over()))
    }

    /// Watches the socket for writability while frames wait, and only
    /// then. Under the queue's lock, so the last writer's view wins.
    fn settle(&self, out: &mut Out, flush: Flush) -> Flush {
        let want = flush == Flush::Pending;
        if want != out.want_writable {
            out.want_writable = want;
            let interest = if want {
                mio::Interest::READABLE | mio::Interest::WRITABLE
            } else {
                mio::Interest::READABLE
            };
            // A connection already deregistered (gone) answers ENOENT: moot.
            let _ = self.poll.registry.reregister(
                &mut mio::unix::SourceFd(&self.poll.fd),
                mio::Token(self.poll.token),
                interest,
            );
        }
        flush
    }

    /// Queues a response (always, whatever the bound) and writes what the
    /// socket takes now.
    pub fn send(&self, stream: &Stream, frame: Vec<u8>) -> Flush {
        let mut out = self.out.lock();
        if out.broken {
            return Flush::Broken;
        }
        self.budget.take(frame.len());
        out.unsent += frame.len();
        out.frames.push_back(frame);
        self.write(&mut out, stream)
    }

    /// Queues a log notification unless the client is past the bound.
    pub fn send_log(&self, stream: &Stream, frame: Vec<u8>) -> Flush {
        let mut out = self.out.lock();
        if out.broken {
            return Flush::Broken;
        }
        if self.full(&out) {
            return Flush::Pending;
        }
        self.budget.take(frame.len());
        out.unsent += frame.len();
        out.frames.push_back(frame);
        self.write(&mut out, stream)
    }

    /// Writes what waits (the socket became writable).
    pub fn flush(&self, stream: &Stream) -> Flush {
        let mut out = self.out.lock();
        if out.broken {
            return Flush::Broken;
        }
        self.write(&mut out, stream)
    }

    /// Writes what the socket takes, gives the written bytes back to the
    /// daemon-wide bound, and settles the poll interest.
    fn write(&self, out: &mut Out, stream: &Stream) -> Flush {
        let before = out.unsent;
        let flush = write_out(out, stream);
        self.budget.give_back(before - out.unsent);
        self.settle(out, flush)
    }

    /// Parks `session` if the client is past the bound (true), so it starts
    /// no call until [`unpark`](Self::unpark) hands it back.
    pub fn park_if_full(&self, session: &Arc<DaemonSession>) -> bool {
        let mut out = self.out.lock();
        if !self.full(&out) {
            return false;
        }
        if !out.parked.iter().any(|s| Arc::ptr_eq(s, session)) {
            out.parked.push(session.clone());
        }
        true
    }

    /// The parked sessions, once the client has read down to half the
    /// bound (or is gone).
    pub fn unpark(&self) -> Vec<Arc<DaemonSession>> {
        let mut out = self.out.lock();
        if self.roomy(&out) {
            std::mem::take(&mut out.parked)
        } else {
            Vec::new()
        }
    }

    /// If the client is past the bound, notes that reading its requests
    /// pauses (true) until [`resume_reading`](Self::resume_reading).
    pub fn pause_reading_if_full(&self) -> bool {
        let mut out = self.out.lock();
        if self.full(&out) {
            out.read_paused = true;
        }
        out.read_paused
    }

    /// Whether a paused read may go on now (the client has read down to
    /// half the bound, or is gone); clears the pause.
    pub fn resume_reading(&self) -> bool {
        let mut out = self.out.lock();
        let resume = out.read_paused && self.roomy(&out);
        if resume {
            out.read_paused = false;
        }
        resume
    }

    /// Whether a parked session or a paused read waits for room that is
    /// there now (the event loop should look).
    pub fn room_awaited(&self) -> bool {
        let out = self.out.lock();
        (out.read_paused || !out.parked.is_empty()) && self.roomy(&out)
    }

    /// Bytes not yet written.
    pub fn unsent(&self) -> usize {
        self.out.lock().unsent
    }

    /// Forgets what waits, parked sessions included: the client is gone.
    pub fn break_off(&self) {
        let parked = {
            let mut out = self.out.lock();
            self.budget.give_back(out.unsent);
            broken(&mut out);
            std::mem::take(&mut out.parked)
        };
        drop(parked); // outside the lock: dropping a session may free much
    }
}

/// Writes frames until the socket is full or the queue empty.
fn write_out(out: &mut Out, stream: &Stream) -> Flush {
    while !out.frames.is_empty() {
        let written = {
            let mut iov = Vec::with_capacity(out.frames.len().min(IOV_MAX));
            for (i, f) in out.frames.iter().take(IOV_MAX).enumerate() {
                iov.push(IoSlice::new(if i == 0 { &f[out.head..] } else { f }));
            }
            stream.write_vectored(&iov)
        };
        match written {
            Ok(0) => return broken(out),
            Ok(mut n) => {
                out.unsent -= n;
                while n > 0 {
                    let left = out.frames[0].len() - out.head;
                    if n >= left {
                        n -= left;
                        out.head = 0;
                        out.frames.pop_front();
                    } else {
                        out.head += n;
                        n = 0;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Flush::Pending,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return broken(out),
        }
    }
    if out.frames.capacity() > 1024 {
        out.frames.shrink_to(16);
    }
    Flush::Done
}

fn broken(out: &mut Out) -> Flush {
    // Parked sessions stay until the event loop breaks the connection off
    // (they hold the connection: the loop must drop them).
    out.broken = true;
    out.frames.clear();
    out.unsent = 0;
    out.head = 0;
    Flush::Broken
}
