//! `--metrics ADDR`: the operator's `stats` in Prometheus' text format at
//! `GET /metrics`, over HTTP/1.1 on a loopback TCP address.
//!
//! A tiny responder on a thread of its own, with its own poll: it shares
//! nothing with the event loop but the counters it reads, so a scraper (or
//! someone poking at the port) never delays a client's request, and the
//! event loop holds no HTTP code. One fixed thread, not one per connection;
//! no web framework (one route, no keep-alive, no body: the crates that do
//! more would be most of the daemon's dependencies). Bounds: a request's
//! head may be 8 KiB (past it: `431`), 16 connections at once (one more
//! closes the oldest, so idle connections cannot lock a scraper out), 5 s
//! per connection from accept to the last byte of the response.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::prometheus;
use crate::shared::Shared;

/// The most bytes of a request's head (request line and headers).
pub(crate) const MAX_REQUEST: usize = 8 << 10;
/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take, from accept to the end of the response.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

/// The most bytes read and dropped after a response.
const DRAIN: usize = 64 << 10;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST: usize = 2;

/// The running responder; [`stop`](MetricsServer::stop) ends it.
pub(crate) struct MetricsServer {
    thread: JoinHandle<()>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl MetricsServer {
    /// Serves `listener` (bound, non-blocking) on a new thread.
    pub fn start(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<MetricsServer> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let fd = listener.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), LISTENER, Interest::READABLE)?;
        let stop = Arc::new(AtomicBool::new(false));
        let responder = Responder {
            poll,
            listener,
            shared,
            stop: stop.clone(),
            conns: HashMap::new(),
            next: FIRST,
        };
        let thread = std::thread::Builder::new()
            .name("luapool-metrics".into())
            .spawn(move || responder.run())?;
        Ok(MetricsServer {
            thread,
            waker,
            stop,
        })
    }

    /// Stops serving and closes the port.
    pub fn stop(self) {
        // SYNC POINT: Release; pairs with the Acquire load after the
        // responder's poll wakes.
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

/// One HTTP connection.
struct Conn {
    stream: TcpStream,
    /// The request's head so far.
    request: Vec<u8>,
    /// The response, once known, and how much of it is sent.
    response: Option<(Vec<u8>, usize)>,
    /// Bytes read and dropped after the response.
    drained: usize,
    deadline: Instant,
}

struct Responder {
    poll: Poll,
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    conns: HashMap<usize, Conn>,
    next: usize,
}

impl Responder {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            let timeout = self
                .conns
                .values()
                .map(|c| c.deadline.saturating_duration_since(now))
                .min();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!("metrics: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            // SYNC POINT: Acquire; pairs with the Release store in stop().
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKE => {}
                    Token(n) => self.progress(n),
                }
            }
            let now = Instant::now();
            self.conns.retain(|_, c| c.deadline > now);
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("metrics: cannot accept a connection: {e}");
                    return;
                }
            };
            if self.conns.len() >= MAX_CONNECTIONS {
                // Close the oldest: an idle connection cannot hold a place
                // a scraper needs.
                let oldest = self
                    .conns
                    .iter()
                    .min_by_key(|(_, c)| c.deadline)
                    .map(|(&n, _)| n);
                if let Some(n) = oldest {
                    self.conns.remove(&n);
                }
            }
            let token = self.next;
            self.next += 1;
            let fd = stream.as_raw_fd();
            let ready = stream.set_nonblocking(true).and_then(|()| {
                self.poll.registry().register(
                    &mut SourceFd(&fd),
                    Token(token),
                    Interest::READABLE | Interest::WRITABLE,
                )
            });
            if ready.is_ok() {
                let conn = Conn {
                    stream,
                    request: Vec::new(),
                    response: None,
                    drained: 0,
                    deadline: Instant::now() + DEADLINE,
                };
                self.conns.insert(token, conn);
                self.progress(token);
            }
        }
    }

    /// Reads the request, then writes the response; closes when done or broken.
    fn progress(&mut self, n: usize) {
        let Some(c) = self.conns.get_mut(&n) else {
            return;
        };
        let done = match &c.response {
            None => c.read(&self.shared),
            Some((bytes, sent)) if sent < &bytes.len() => c.write(),
            Some(_) => c.drain(),
        };
        if done {
            // Dropping the stream closes it (and leaves the poll).
            self.conns.remove(&n);
        }
    }
}

impl Conn {
    /// Reads what arrived; true if the connection is finished.
    fn read(&mut self, shared: &Shared) -> bool {
        let mut chunk = [0u8; 2048];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(k) => {
                    self.request.extend_from_slice(&chunk[..k]);
                    let head_end = find(&self.request, b"\r\n\r\n");
                    if head_end.is_some() || self.request.len() > MAX_REQUEST {
                        let response = match head_end {
                            Some(end) if end + 4 <= MAX_REQUEST => {
                                respond(&self.request[..end], shared)
                            }
                            _ => response(431, "Request Header Fields Too Large", "", &[]),
                        };
                        self.response = Some((response, 0));
                        return self.write();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Writes what the socket takes; true once all is sent (or it broke).
    fn write(&mut self) -> bool {
        let Some((bytes, sent)) = &mut self.response else {
            return false;
        };
        while *sent < bytes.len() {
            match self.stream.write(&bytes[*sent..]) {
                Ok(k) => *sent += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.drain()
    }

    /// After the response: reads what the client still sends until it
    /// closes (closing with unread bytes would reset the connection, and
    /// the client could lose the response), up to 64 KiB; true when done.
    fn drain(&mut self) -> bool {
        let mut chunk = [0u8; 2048];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(k) => {
                    self.drained += k;
                    if self.drained > DRAIN {
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The response to a request whose head (without its blank line) is `head`.
fn respond(head: &[u8], shared: &Shared) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let well_formed = matches!(version, Some(v) if v.starts_with("HTTP/1."));
    match (method, target) {
        _ if !well_formed || parts.next().is_some() => {
            response(400, "Bad Request", "not an HTTP/1.x request\n", &[])
        }
        (Some(m @ ("GET" | "HEAD")), Some(t)) if t.split('?').next() == Some("/metrics") => {
            let body = prometheus::render(&crate::stats::daemon(shared));
            let mut r = response(
                200,
                "OK",
                &body,
                &[("Content-Type", prometheus::CONTENT_TYPE)],
            );
            if m == "HEAD" {
                r.truncate(r.len() - body.len());
            }
            r
        }
        (Some("GET" | "HEAD"), _) => response(404, "Not Found", "only /metrics is here\n", &[]),
        _ => response(
            405,
            "Method Not Allowed",
            "GET /metrics\n",
            &[("Allow", "GET, HEAD")],
        ),
    }
}

/// A whole response that closes the connection.
fn response(status: u16, reason: &str, body: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| *k == "Content-Type") {
        r.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    r.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    r.into_bytes()
}
