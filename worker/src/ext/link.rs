//! [`Link`]: the worker's conversation with the supervisor as external
//! tables use it. It owns the [`Conn`] and remembers whether the
//! conversation broke: a script may catch the error it raised, but the
//! worker still exits after that compute (`take_broken`). Every request
//! of the external-table layer goes through here, and every failure comes
//! back typed: the supervisor's refusal as [`ExtError::Refused`], a broken
//! ring or an unexpected message as [`ExtError::Lost`].

use std::cell::{RefCell, RefMut};

use luapool_protocol::{decode, Reply, Request, ToWorker};

use super::conn::{Conn, ConnError};
use super::error::ExtError;

/// The connection, and why it broke if it did.
pub struct Link {
    conn: RefCell<Conn>,
    broken: RefCell<Option<ConnError>>,
}

impl Link {
    /// Wraps an open connection.
    pub fn new(conn: Conn) -> Link {
        Link {
            conn: RefCell::new(conn),
            broken: RefCell::new(None),
        }
    }

    /// The connection (for the compute's own messages: logs, its end).
    pub fn conn(&self) -> RefMut<'_, Conn> {
        self.conn.borrow_mut()
    }

    /// Whether the supervisor asked the running compute to stop (false
    /// while the connection is in use: a request in flight is answered).
    pub fn cancel_requested(&self) -> bool {
        self.conn
            .try_borrow()
            .map(|c| c.ring().cancel_requested())
            .unwrap_or(false)
    }

    /// Why the conversation broke during this compute, once.
    pub fn take_broken(&self) -> Option<ConnError> {
        self.broken.borrow_mut().take()
    }

    /// Records that the conversation broke (the first cause is kept).
    pub fn lost(&self, e: ConnError) -> ExtError {
        let message = e.to_string();
        self.broken.borrow_mut().get_or_insert(e);
        ExtError::Lost(message)
    }

    /// The supervisor sent something that does not fit the conversation.
    pub fn unexpected(&self, what: &'static str) -> ExtError {
        self.lost(ConnError::Unexpected(what))
    }

    /// A reply as the result it stands for: an error reply is the
    /// supervisor's refusal.
    fn refusal(reply: Reply) -> Result<Reply, ExtError> {
        match reply {
            Reply::Error(e) => Err(ExtError::Refused {
                kind: e.kind,
                message: e.message,
            }),
            other => Ok(other),
        }
    }

    /// Sends `req` (after the buffered writes) and returns its reply.
    pub fn request(&self, req: Request) -> Result<Reply, ExtError> {
        let r = self.conn.borrow_mut().request(req);
        Link::refusal(r.map_err(|e| self.lost(e))?)
    }

    /// Buffers a write (flushing when the buffer is full).
    pub fn write(&self, w: luapool_protocol::Write, bytes: usize) -> Result<(), ExtError> {
        let r = self.conn.borrow_mut().write(w, bytes);
        match r.map_err(|e| self.lost(e))? {
            Some(reply) => Link::refusal(reply).map(drop),
            None => Ok(()),
        }
    }

    /// Sends `req` (after the buffered writes) without waiting for its
    /// reply, `Ok` or a refusal, which the next request reports.
    pub fn send_unanswered(&self, req: Request) -> Result<(), ExtError> {
        let r = self.conn.borrow_mut().send_unanswered(req);
        match r.map_err(|e| self.lost(e))? {
            Some(reply) => Link::refusal(reply).map(drop),
            None => Ok(()),
        }
    }

    /// Sends `req` (after the buffered writes) through `conn` (this link's,
    /// borrowed by the caller) and returns its reply's bytes, undecoded:
    /// for the replies read in place (`luapool_protocol::hot`).
    pub fn request_raw<'c>(&self, conn: &'c mut Conn, req: Request) -> Result<&'c [u8], ExtError> {
        match conn.request_raw(req) {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(reply)) => Err(Link::refusal(reply)
                .map_or_else(|e| e, |_| self.unexpected("expected Ok after writes"))),
            Err(e) => Err(self.lost(e)),
        }
    }

    /// A reply read in place that is no hot reply: the supervisor's
    /// refusal, or (`Ok`) another reply for the caller to judge.
    pub fn other(&self, bytes: &[u8]) -> Result<Reply, ExtError> {
        match decode::<ToWorker>(bytes) {
            Ok(ToWorker::Reply(r)) => Link::refusal(r),
            Ok(_) => Err(self.unexpected("expected a reply")),
            Err(e) => Err(self.lost(ConnError::Decode(e))),
        }
    }
}
