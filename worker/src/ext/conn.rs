//! The worker's side of the conversation with the supervisor: one request,
//! one reply, over the ring; writes are buffered and flushed in order before
//! any read, so a compute observes its own writes.
//!
//! Up to [`MAX_AHEAD`] requests may be sent *ahead* (prefetches of the next
//! windows of a read-only array): the supervisor answers them while Lua
//! works on the current window. A request may also be sent *unanswered*
//! (a `Move`): its reply, `Ok` or an error, is read before the next message
//! is sent, and an error is reported as a failed flush of writes is. Every
//! reply is read in order, and all of them before anything else is sent,
//! so the conversation stays in order and neither side can block the other
//! with a message larger than the ring (a request sent ahead is a few
//! bytes).

use std::collections::VecDeque;

use luapool_protocol::{
    decode, encode_into, Endpoint, Outcome, Reply, Request, RingError, TableId, ToSupervisor,
    ToWorker, Write,
};

/// Writes buffered before a flush is forced.
const MAX_BUFFERED_WRITES: usize = 4096;
/// Estimated bytes buffered before a flush is forced.
const MAX_BUFFERED_BYTES: usize = 256 * 1024;

/// Why talking to the supervisor failed. Fatal for the worker.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The ring failed (peer gone, closed, corrupt).
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// The supervisor sent bytes that are not a message.
    #[error("bad message from the supervisor: {0}")]
    Decode(#[from] luapool_protocol::DecodeError),
    /// The supervisor sent a message that does not fit the conversation.
    #[error("unexpected message from the supervisor: {0}")]
    Unexpected(&'static str),
}

/// What a request sent ahead was for: a window of `table` from key `start`.
pub type AheadTag = (TableId, i64);

/// The most requests sent ahead at once.
pub const MAX_AHEAD: usize = 2;

/// The worker's connection: the ring plus reusable buffers and the write buffer.
pub struct Conn {
    ring: Endpoint,
    out: Vec<u8>,
    inb: Vec<u8>,
    writes: Vec<Write>,
    write_bytes: usize,
    /// Requests whose replies are not read yet, oldest first: sent ahead
    /// (their tag), or unanswered (`None`).
    unread: VecDeque<Option<AheadTag>>,
    /// The first error reply to a request sent unanswered, not reported yet.
    deferred: Option<Reply>,
    /// Replies read but not taken, oldest first (buffers reused).
    ready: VecDeque<(AheadTag, Vec<u8>)>,
    /// The buffer of the reply taken last, and spare buffers.
    taken: Vec<u8>,
    spare: Vec<Vec<u8>>,
}

impl Conn {
    /// Wraps an open ring.
    pub fn new(ring: Endpoint) -> Conn {
        Conn {
            ring,
            out: Vec::with_capacity(4096),
            inb: Vec::with_capacity(64 * 1024),
            writes: Vec::new(),
            write_bytes: 0,
            unread: VecDeque::new(),
            deferred: None,
            ready: VecDeque::new(),
            taken: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The ring, for the cancel flag.
    pub fn ring(&self) -> &Endpoint {
        &self.ring
    }

    /// Sends one message (after reading the replies to the requests sent
    /// ahead).
    pub fn send(&mut self, msg: &ToSupervisor) -> Result<(), ConnError> {
        self.settle()?;
        self.out.clear();
        encode_into(msg, &mut self.out);
        self.ring.send(&self.out)?;
        Ok(())
    }

    /// Waits for the next message from the supervisor.
    pub fn recv(&mut self) -> Result<ToWorker, ConnError> {
        self.ring.recv(&mut self.inb, None)?;
        Ok(decode(&self.inb)?)
    }

    /// Sends a request (after flushing buffered writes) and waits for its reply.
    /// A failed flush returns the flush's error reply instead.
    pub fn request(&mut self, req: Request) -> Result<Reply, ConnError> {
        if let Some(err) = self.flush()? {
            return Ok(err);
        }
        self.round_trip(req)
    }

    /// Like [`request`](Self::request), but leaves the reply undecoded, for
    /// the replies that carry table contents (see `wire.rs`). `Err(reply)`
    /// is a failed flush of buffered writes.
    pub fn request_raw(&mut self, req: Request) -> Result<Result<&[u8], Reply>, ConnError> {
        if let Some(err) = self.flush()? {
            return Ok(Err(err));
        }
        self.send(&ToSupervisor::Request(req))?;
        self.ring.recv(&mut self.inb, None)?;
        Ok(Ok(&self.inb))
    }

    fn round_trip(&mut self, req: Request) -> Result<Reply, ConnError> {
        self.send(&ToSupervisor::Request(req))?;
        match self.recv()? {
            ToWorker::Reply(r) => Ok(r),
            _ => Err(ConnError::Unexpected("expected a reply")),
        }
    }

    /// Sends `req` without waiting for its reply, which
    /// [`take_ahead`](Self::take_ahead) returns later, in order. At most
    /// [`MAX_AHEAD`] at once (see [`ahead`](Self::ahead)).
    pub fn send_ahead(&mut self, req: Request, tag: AheadTag) -> Result<(), ConnError> {
        debug_assert!(self.ahead() < MAX_AHEAD);
        self.out.clear();
        encode_into(&ToSupervisor::Request(req), &mut self.out);
        self.ring.send(&self.out)?;
        self.unread.push_back(Some(tag));
        Ok(())
    }

    /// Sends `req` (after buffered writes, and after reading every reply
    /// still due) without waiting for its reply, which must be `Ok` or an
    /// error: an error is returned by the next [`flush`](Self::flush) (or
    /// request). A failed flush of the buffered writes returns its reply
    /// instead, and `req` is not sent.
    pub fn send_unanswered(&mut self, req: Request) -> Result<Option<Reply>, ConnError> {
        if let Some(err) = self.flush()? {
            return Ok(Some(err));
        }
        self.send(&ToSupervisor::Request(req))?;
        self.unread.push_back(None);
        Ok(None)
    }

    /// Requests sent ahead and not taken yet.
    pub fn ahead(&self) -> usize {
        self.unread.iter().filter(|t| t.is_some()).count() + self.ready.len()
    }

    /// Reads the replies to every request sent ahead or unanswered.
    fn settle(&mut self) -> Result<(), ConnError> {
        while !self.unread.is_empty() {
            self.read_one()?;
        }
        Ok(())
    }

    /// Reads the oldest reply due: one to a request sent ahead is kept for
    /// [`take_ahead`](Self::take_ahead); one to a request sent unanswered is
    /// checked.
    fn read_one(&mut self) -> Result<(), ConnError> {
        match self.unread.pop_front() {
            Some(Some(tag)) => {
                let mut buf = self.spare.pop().unwrap_or_default();
                self.ring.recv(&mut buf, None)?;
                self.ready.push_back((tag, buf));
            }
            Some(None) => match self.recv()? {
                ToWorker::Reply(Reply::Ok) => {}
                ToWorker::Reply(err @ Reply::Error(_)) => {
                    self.deferred.get_or_insert(err);
                }
                _ => return Err(ConnError::Unexpected("expected Ok or an error")),
            },
            None => {}
        }
        Ok(())
    }

    /// The reply to the oldest request sent ahead (waiting for it, but not
    /// for later ones), once.
    pub fn take_ahead(&mut self) -> Result<Option<(AheadTag, &[u8])>, ConnError> {
        while self.ready.is_empty() && !self.unread.is_empty() {
            self.read_one()?;
        }
        let Some((tag, buf)) = self.ready.pop_front() else {
            return Ok(None);
        };
        let old = std::mem::replace(&mut self.taken, buf);
        self.spare.push(old);
        Ok(Some((tag, &self.taken)))
    }

    /// Buffers a write; flushes when the buffer is full. Returns the error
    /// reply of a failed flush, if any.
    pub fn write(&mut self, w: Write, estimated_bytes: usize) -> Result<Option<Reply>, ConnError> {
        self.writes.push(w);
        self.write_bytes += estimated_bytes;
        if self.writes.len() >= MAX_BUFFERED_WRITES || self.write_bytes >= MAX_BUFFERED_BYTES {
            return self.flush();
        }
        Ok(None)
    }

    /// Sends buffered writes. Returns the error reply if the supervisor
    /// refused one, or refused a request sent unanswered (then the writes
    /// buffered after it are dropped, as the writes of a batch after a
    /// refused one are).
    pub fn flush(&mut self) -> Result<Option<Reply>, ConnError> {
        self.settle()?;
        if let Some(err) = self.deferred.take() {
            self.discard_writes();
            return Ok(Some(err));
        }
        if self.writes.is_empty() {
            return Ok(None);
        }
        let writes = std::mem::take(&mut self.writes);
        self.write_bytes = 0;
        match self.round_trip(Request::Write(writes))? {
            Reply::Ok => Ok(None),
            err @ Reply::Error(_) => Ok(Some(err)),
            _ => Err(ConnError::Unexpected("expected Ok after writes")),
        }
    }

    /// Drops buffered writes, and a refusal not reported yet (a compute
    /// that failed before flushing).
    pub fn discard_writes(&mut self) {
        self.writes.clear();
        self.write_bytes = 0;
        self.deferred = None;
    }

    /// Sends a log line.
    pub fn log(&mut self, line: Vec<u8>) -> Result<(), ConnError> {
        self.send(&ToSupervisor::Log(line))
    }

    /// Reports the end of a compute.
    pub fn done(&mut self, outcome: Outcome) -> Result<(), ConnError> {
        self.send(&ToSupervisor::Done(outcome))
    }
}
