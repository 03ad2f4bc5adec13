//! The event loop: one thread that accepts connections, reads every
//! client's requests, writes what the socket did not take at once, and
//! runs shutdown. Nothing here blocks, and nothing here takes time in
//! proportion to a request's size but reading it: computes go to the pool,
//! other session calls, the home methods and `script.load` to the call
//! threads, and replies are written by whoever finishes a call. A
//! connection's frames after a `script.load` wait in its buffer, unread
//! further, until the load is answered (`scripts.rs`).
//!
//! Bounds kept here: connections (`connections`), bytes before `auth` on
//! TCP (`unauthenticated_bytes`), the frame size (`max_frame`), the request
//! bytes held for all clients (`buffered_bytes`: reading pauses past it),
//! and clients that do not read (`unsent_bytes` each, `unsent_total_bytes`
//! together: their requests stop being read and their sessions park until
//! they read).

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::conn::Conn;
use crate::listen::{accept_tcp, accept_unix, Stream, UnixSocket};
use crate::reader::{frames, release, reserve, Reader, READ_CHUNK};
use crate::requests::{Flow, Requests};
use crate::shared::Shared;
use crate::signals::WakePipe;
use luapool_protocol::rpc::{encode_response, ErrorKind, RpcError};
use luapool_protocol::stream::FrameScanner;

const SIGNALS: Token = Token(0);
pub(crate) const WAKE: Token = Token(1);
const UNIX: Token = Token(2);
const OPERATOR: Token = Token(3);
const TCP: Token = Token(4);
const FIRST_CONN: usize = 8;

/// Bytes read from one client per turn of the loop, so one fast sender
/// does not hold up the others.
const READ_TURN: usize = 1 << 20;
/// How often the loop looks again at paused reads and at shutdown.
const TICK: Duration = Duration::from_millis(20);
/// How long cancelled computes get to end, after the grace period.
const CANCEL_WAIT: Duration = Duration::from_millis(1500);
/// How long a connection being closed for a protocol error gets to read
/// its last reply.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The listening sockets; dropped (and the socket files removed) when
/// shutdown begins.
pub(crate) struct Listeners {
    pub unix: UnixSocket,
    pub operator: Option<UnixSocket>,
    pub tcp: Option<TcpListener>,
}

enum Phase {
    Serving,
    Grace(Instant),
    Force(Instant),
}

pub(crate) struct EventLoop {
    pub poll: Poll,
    /// A handle on the poll's registry for the outboxes.
    registry: Arc<mio::Registry>,
    pub shared: Arc<Shared>,
    pub listeners: Option<Listeners>,
    pub wake: WakePipe,
    pub grace: Duration,
    readers: HashMap<usize, Reader>,
    /// Connections other than the operator's (the `connections` bound
    /// counts these: an attacker cannot lock the operator out).
    tenants: usize,
    next_token: usize,
    /// Readers with more to read than one turn took.
    backlog: Vec<usize>,
    /// Readers paused for the daemon-wide buffer bound or a full outbox.
    paused: Vec<usize>,
    /// Readers closing after a protocol error.
    closing: Vec<usize>,
    accept_retry: Option<Instant>,
    /// Where a client's bytes are read into.
    chunk: Box<[u8]>,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        shared: Arc<Shared>,
        listeners: Listeners,
        wake: WakePipe,
        grace: Duration,
    ) -> std::io::Result<EventLoop> {
        let reg = poll.registry();
        reg.register(&mut SourceFd(&wake.read_fd()), SIGNALS, Interest::READABLE)?;
        let fd = listeners.unix.listener.as_raw_fd();
        reg.register(&mut SourceFd(&fd), UNIX, Interest::READABLE)?;
        if let Some(op) = &listeners.operator {
            let fd = op.listener.as_raw_fd();
            reg.register(&mut SourceFd(&fd), OPERATOR, Interest::READABLE)?;
        }
        if let Some(tcp) = &listeners.tcp {
            reg.register(&mut SourceFd(&tcp.as_raw_fd()), TCP, Interest::READABLE)?;
        }
        let registry = Arc::new(reg.try_clone()?);
        Ok(EventLoop {
            poll,
            registry,
            shared,
            listeners: Some(listeners),
            wake,
            grace,
            readers: HashMap::new(),
            tenants: 0,
            next_token: FIRST_CONN,
            backlog: Vec::new(),
            paused: Vec::new(),
            closing: Vec::new(),
            accept_retry: None,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// Serves until a stop, then shuts down: stop reading, let what was
    /// read finish within the grace period (a second stop cuts it short),
    /// then answer what is queued, cancel what runs, close every connection.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut stops = 0;
        let mut phase = Phase::Serving;
        loop {
            let timeout = if !self.backlog.is_empty() {
                Some(Duration::ZERO)
            } else if !matches!(phase, Phase::Serving)
                || !self.paused.is_empty()
                || self.accept_retry.is_some()
                || !self.closing.is_empty()
            {
                Some(TICK)
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!("poll failed: {e}");
                    std::thread::sleep(TICK);
                }
                continue;
            }
            for ev in events.iter() {
                match ev.token() {
                    SIGNALS => {
                        if self.wake.drain() {
                            stops += 1;
                        }
                    }
                    WAKE => {}
                    UNIX | OPERATOR | TCP => self.accept(ev.token()),
                    Token(n) => {
                        if ev.is_writable() {
                            self.flushed(n);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(n, ev.is_read_closed() || ev.is_error());
                        }
                    }
                }
            }
            for conn in self.shared.take_attention() {
                self.flushed(conn.token);
            }
            for n in std::mem::take(&mut self.backlog) {
                self.read(n, false);
            }
            for n in std::mem::take(&mut self.paused) {
                self.read(n, false);
            }
            if self.accept_retry.is_some_and(|t| Instant::now() >= t) {
                self.accept_retry = None;
                for t in [UNIX, OPERATOR, TCP] {
                    self.accept(t);
                }
            }
            self.close_lingering();
            phase = match phase {
                Phase::Serving if stops > 0 => {
                    tracing::info!(
                        "stopping: no new connections or requests; finishing what was read"
                    );
                    self.begin_drain();
                    Phase::Grace(Instant::now() + self.grace)
                }
                Phase::Grace(end) if stops > 1 || Instant::now() >= end || self.all_done() => {
                    self.shared.force_stop.store(true, Ordering::SeqCst);
                    for r in self.readers.values() {
                        let sessions: Vec<_> =
                            r.req.conn.sessions.lock().values().cloned().collect();
                        for s in sessions {
                            s.stop();
                        }
                    }
                    Phase::Force(Instant::now() + CANCEL_WAIT)
                }
                Phase::Force(end) if Instant::now() >= end || self.all_done() => break,
                p => p,
            };
        }
        for (_, r) in self.readers.drain() {
            r.req.conn.abandon(false);
            r.req.conn.stream.shutdown_both();
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            release(&self.shared, r.reserved);
        }
    }

    /// Every call answered and every reply written (or its client gone).
    fn all_done(&self) -> bool {
        self.shared.idle()
            && self
                .readers
                .values()
                .all(|r| r.req.conn.is_gone() || r.req.conn.outbox.unsent() == 0)
    }

    fn begin_drain(&mut self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        if let Some(l) = self.listeners.take() {
            let reg = self.poll.registry();
            let _ = reg.deregister(&mut SourceFd(&l.unix.listener.as_raw_fd()));
            if let Some(op) = &l.operator {
                let _ = reg.deregister(&mut SourceFd(&op.listener.as_raw_fd()));
            }
            if let Some(tcp) = &l.tcp {
                let _ = reg.deregister(&mut SourceFd(&tcp.as_raw_fd()));
            }
            // Dropping them closes them and removes the socket files.
        }
        for r in self.readers.values_mut() {
            r.stopped = true;
        }
    }

    fn accept(&mut self, which: Token) {
        loop {
            let Some(l) = &self.listeners else { return };
            let accepted = match which {
                UNIX => accept_unix(&l.unix.listener).map(|s| (s, false, false)),
                OPERATOR => match &l.operator {
                    Some(op) => accept_unix(&op.listener).map(|s| (s, true, false)),
                    None => return,
                },
                _ => match &l.tcp {
                    Some(tcp) => accept_tcp(tcp).map(|s| (s, false, true)),
                    None => return,
                },
            };
            match accepted {
                Ok((stream, operator, tcp)) => self.add(stream, operator, tcp),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors, say: try again in a moment
                    // (the listener's readiness edge has passed).
                    tracing::warn!("cannot accept a connection: {e}");
                    self.accept_retry = Some(Instant::now() + TICK);
                    return;
                }
            }
        }
    }

    fn add(&mut self, stream: Stream, operator: bool, tcp: bool) {
        let limits = &self.shared.limits;
        if !operator && self.tenants >= limits.connections {
            let e = RpcError::limit(
                ErrorKind::LimitReached,
                "connections",
                limits.connections as u64,
                "the daemon has as many connections as it allows",
            );
            self.shared.errors.count(e.kind());
            tracing::debug!("refused a connection: {} connections open", self.tenants);
            // A fresh socket takes a small frame whole; then it is closed.
            let frame = encode_response(None, &Err(e));
            let _ = stream.write_vectored(&[std::io::IoSlice::new(&frame)]);
            stream.shutdown_both();
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        let fd = stream.as_raw_fd();
        let conn = Arc::new(Conn::new(
            token,
            stream,
            limits.unsent_bytes,
            operator,
            self.registry.clone(),
            self.shared.unsent.clone(),
        ));
        // Writability is asked for only while replies wait (the outbox does).
        let registered =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(token), Interest::READABLE);
        if let Err(e) = registered {
            tracing::warn!("cannot serve a connection: {e}");
            return;
        }
        let max = if tcp {
            limits.unauthenticated_bytes
        } else {
            limits.max_frame
        };
        self.shared.connections.fetch_add(1, Ordering::Relaxed);
        self.tenants += usize::from(!operator);
        tracing::debug!("connection {token} opened (operator: {operator}, tcp: {tcp})");
        self.readers.insert(
            token,
            Reader {
                req: Requests { conn, authed: !tcp },
                buf: Vec::new(),
                scanner: FrameScanner::new(max),
                small_frames: tcp,
                reserved: 0,
                stopped: self.shared.draining.load(Ordering::Relaxed),
                closing: None,
                held: false,
            },
        );
        self.read(token, false);
    }

    /// The socket took what waited (or a thread asks the loop to look):
    /// restart parked sessions and paused reads if the client read enough.
    fn flushed(&mut self, n: usize) {
        let Some(r) = self.readers.get(&n) else {
            return;
        };
        let conn = r.req.conn.clone();
        if conn.outbox.flush(&conn.stream) == crate::outbox::Flush::Broken && r.closing.is_none() {
            return self.disconnect(n);
        }
        for s in conn.outbox.unpark() {
            s.run(false);
        }
        if conn.outbox.resume_reading() {
            self.paused.retain(|&p| p != n);
            self.paused.push(n);
        }
        if self
            .readers
            .get(&n)
            .is_some_and(|r| r.held && !r.req.conn.is_loading())
        {
            // Its load is answered: the frames behind it are next.
            self.backlog.push(n);
        }
    }

    /// Reads what the client sent and handles each complete request.
    fn read(&mut self, n: usize, hung_up: bool) {
        let shared = self.shared.clone();
        let Some(r) = self.readers.get_mut(&n) else {
            return;
        };
        if hung_up && r.closing.is_none() {
            // The client is gone (or half-closed, which counts as gone):
            // what it sent last would be cancelled at once; and a reader
            // paused for room must not wait for room to notice.
            return self.disconnect(n);
        }
        if r.closing.is_some() {
            return;
        }
        if r.held {
            if r.req.conn.is_loading() {
                return; // the call thread's reply brings it back here
            }
            // The frames read behind the load, also once shutdown began:
            // they were read before it.
            r.held = false;
            match frames(&shared, r) {
                Flow::Continue => {}
                Flow::Close => return self.close_after_reply(n),
                Flow::Load(_) => return,
            }
        }
        if r.stopped {
            return;
        }
        let mut taken = 0;
        // Reused: zeroing 64 KiB for every read cost more than the read.
        let chunk = &mut self.chunk[..];
        loop {
            if r.req.conn.outbox.pause_reading_if_full() {
                return; // the loop resumes it when the client reads
            }
            let want = if r.req.authed {
                READ_CHUNK
            } else {
                // Before auth: no more than the bound, plus one byte to see past it.
                (shared.limits.unauthenticated_bytes + 1)
                    .saturating_sub(r.buf.len())
                    .clamp(1, READ_CHUNK)
            };
            // The first chunk of a request is free: a client is never kept
            // from sending a small request (say, its operator's `stats`).
            if r.buf.len() + want > READ_CHUNK && !reserve(&shared, r, want) {
                self.paused.push(n);
                return;
            }
            match r.req.conn.stream.read(&mut chunk[..want]) {
                Ok(0) => {
                    // End of input: what arrived before it is served, then
                    // the client counts as gone (half-closing included).
                    let _ = frames(&shared, r);
                    return self.disconnect(n);
                }
                Ok(k) => {
                    r.buf.extend_from_slice(&chunk[..k]);
                    taken += k;
                    match frames(&shared, r) {
                        Flow::Continue => {}
                        Flow::Close => return self.close_after_reply(n),
                        Flow::Load(_) => return,
                    }
                    if taken >= READ_TURN {
                        self.backlog.push(n);
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.disconnect(n),
            }
        }
    }

    /// The client is gone: cancel its computes, drop its queued calls.
    fn disconnect(&mut self, n: usize) {
        let Some(r) = self.readers.remove(&n) else {
            return;
        };
        let conn = &r.req.conn;
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        conn.abandon(false);
        conn.stream.shutdown_both();
        release(&self.shared, r.reserved);
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        self.tenants -= usize::from(!conn.operator);
        tracing::debug!("connection {n} closed");
    }

    /// A protocol error: the client gets its error reply, then the connection closes.
    fn close_after_reply(&mut self, n: usize) {
        if let Some(r) = self.readers.get_mut(&n) {
            r.closing = Some(Instant::now() + CLOSE_WAIT);
            r.req.conn.abandon(true);
            self.closing.push(n);
        }
        self.close_lingering();
    }

    fn close_lingering(&mut self) {
        if self.closing.is_empty() {
            return;
        }
        let now = Instant::now();
        let readers = &self.readers;
        let (done, waiting): (Vec<usize>, Vec<usize>) =
            self.closing.iter().partition(|n| match readers.get(n) {
                Some(r) => r
                    .closing
                    .is_some_and(|end| now >= end || r.req.conn.outbox.unsent() == 0),
                None => true,
            });
        self.closing = waiting;
        for n in done {
            self.disconnect(n);
        }
    }
}
