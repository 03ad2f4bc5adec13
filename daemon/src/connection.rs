//! One client connection: its reader (this thread), its writer (an
//! [`Outbox`]), and one thread per open session that runs that session's
//! calls in the order they arrived. So a long compute on one session never
//! holds up another session, even on the same connection, while the calls of
//! one session keep their order.
//!
//! When the client goes away, its running computes are cancelled, queued
//! calls are dropped, and its sessions (and their tables) are freed. When the
//! daemon drains, reading stops but every call already read runs to its reply.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use luapool_protocol::Key;
use parking_lot::Mutex;
use serde::Serialize;

use super::calls::{self, Call};
use super::listen::Stream;
use super::outbox::Outbox;
use super::rpc::{self, Incoming, Request, RpcError};
use super::runner::Runner;
use super::shared::Shared;
use luapool_protocol::stream::{FrameScanner, Scan};
use luapool_supervisor::{to_host, HostValue};

/// Bytes read from a client at a time.
const READ_CHUNK: usize = 64 << 10;

/// A connection as the daemon sees it from outside.
pub(crate) struct Conn {
    stream: Stream,
    sessions: Mutex<HashMap<u64, Runner>>,
}

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            sessions: Mutex::new(HashMap::new()),
        }
    }
    /// Stops reading requests (daemon drain).
    pub fn stop_reading(&self) {
        self.stream.shutdown_read();
    }
    /// Closes the socket both ways (end of the grace period).
    pub fn close(&self) {
        self.stream.shutdown_both();
    }
    /// Cancels every compute running on this connection's sessions.
    pub fn cancel_all(&self) {
        for r in self.sessions.lock().values() {
            r.cancel();
        }
    }
}

enum Flow {
    Continue,
    Close,
}

/// The reader's state.
struct Reader {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    outbox: Arc<Outbox>,
    abandoned: Arc<AtomicBool>,
    authed: bool,
    closed: Vec<JoinHandle<()>>,
}

/// Serves one connection until the client leaves or the daemon drains.
pub(crate) fn serve_connection(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    mut stream: Stream,
    needs_auth: bool,
) {
    let Ok((outbox, writer)) = stream.try_clone().and_then(Outbox::start) else {
        return;
    };
    let mut r = Reader {
        shared: shared.clone(),
        conn: conn.clone(),
        outbox,
        abandoned: Arc::new(AtomicBool::new(false)),
        authed: !needs_auth,
        closed: Vec::new(),
    };
    let mut scanner = FrameScanner::new(shared.max_frame);
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    'read: loop {
        loop {
            match scanner.scan(&buf) {
                Scan::Complete(n) => {
                    let flow = r.frame(&buf[..n]);
                    buf.drain(..n);
                    scanner.reset();
                    if buf.capacity() > 16 * READ_CHUNK && buf.len() < READ_CHUNK {
                        // Do not keep a large frame's buffer for the connection's life.
                        buf.shrink_to(READ_CHUNK);
                    }
                    if let Flow::Close = flow {
                        break 'read;
                    }
                }
                Scan::Incomplete => break,
                Scan::TooLarge => {
                    let msg = format!(
                        "frame larger than {} bytes; closing the connection",
                        shared.max_frame
                    );
                    r.outbox
                        .send(rpc::response(None, Err(RpcError::bad_request(msg))));
                    break 'read;
                }
                Scan::Invalid(why) => {
                    let msg = format!("not MessagePack ({why}); closing the connection");
                    r.outbox
                        .send(rpc::response(None, Err(RpcError::bad_request(msg))));
                    break 'read;
                }
            }
        }
        if !r.outbox.wait_for_room() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    r.finish();
    let _ = writer.join();
    // Both directions: the client learns at once that nothing more will come.
    stream.shutdown_both();
}

impl Reader {
    fn reply(&self, msgid: u32, result: Result<HostValue, RpcError>) {
        self.outbox
            .send(rpc::response(Some(msgid), result.map(Into::into)));
    }

    fn frame(&mut self, frame: &[u8]) -> Flow {
        match rpc::decode(frame) {
            Incoming::Request(req) => self.request(req),
            Incoming::Notification => Flow::Continue,
            Incoming::Bad {
                msgid: Some(id),
                message,
            } => {
                self.reply(id, Err(RpcError::bad_request(message)));
                Flow::Continue
            }
            Incoming::Bad {
                msgid: None,
                message,
            } => {
                self.outbox.send(rpc::response(
                    None,
                    Err(RpcError::bad_request(format!(
                        "{message}; closing the connection"
                    ))),
                ));
                Flow::Close
            }
        }
    }

    fn request(&mut self, req: Request<'_>) -> Flow {
        let Request {
            msgid,
            method,
            params,
        } = req;
        if !self.authed && method != "auth" {
            self.reply(
                msgid,
                Err(RpcError::new(
                    "Unauthorized",
                    "the first request on a TCP connection must be auth",
                )),
            );
            return Flow::Close;
        }
        let result = match method.as_str() {
            "auth" => return self.auth(msgid, &params),
            "session.open" => self.open(&params),
            "stats" => Ok(self.stats()),
            "cancel" | "get_io_table_id" | "get_table_info" => self.immediate(&method, &params),
            m if calls::SESSION_METHODS.contains(&m) => match self.enqueue(msgid, m, &params) {
                Ok(()) => return Flow::Continue,
                Err(e) => Err(e),
            },
            _ => Err(RpcError::new(
                "UnknownMethod",
                format!("unknown method {method:?}"),
            )),
        };
        self.reply(msgid, result);
        Flow::Continue
    }

    fn auth(&mut self, msgid: u32, params: &[&[u8]]) -> Flow {
        let token = params
            .first()
            .map(|p| rpc::value(p).and_then(|v| calls::string(v, "token")));
        let given = match token {
            Some(Ok(t)) => t,
            _ => String::new(),
        };
        match &self.shared.token {
            Some(token) if !self.authed && !same_secret(token.as_bytes(), given.as_bytes()) => {
                self.reply(msgid, Err(RpcError::new("Unauthorized", "wrong token")));
                Flow::Close
            }
            _ => {
                self.authed = true;
                self.reply(msgid, Ok(HostValue::Bool(true)));
                Flow::Continue
            }
        }
    }

    fn open(&mut self, params: &[&[u8]]) -> Result<HostValue, RpcError> {
        if self.shared.draining.load(Ordering::Relaxed) {
            return Err(RpcError::new("ShuttingDown", "the daemon is shutting down"));
        }
        if params.len() > 1 {
            return Err(RpcError::bad_request(
                "session.open takes at most one param (the home name)",
            ));
        }
        let home = match params.first().map(|p| rpc::value(p)).transpose()? {
            None | Some(HostValue::Nil) => None,
            Some(v) => Some(calls::string(v, "home")?),
        };
        let pool = &self.shared.pool;
        let session = Arc::new(match &home {
            Some(name) => pool
                .session_with_home(name)
                .map_err(|e| RpcError::session(&e))?,
            None => pool.session(),
        });
        let sid = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        let runner = Runner::spawn(
            sid,
            session,
            self.shared.clone(),
            self.outbox.clone(),
            self.abandoned.clone(),
        )
        .map_err(|e| RpcError::new("Internal", format!("cannot start a session thread: {e}")))?;
        self.conn.sessions.lock().insert(sid, runner);
        Ok(HostValue::Int(sid as i64))
    }

    /// The session id (the first param) and the params after it.
    fn session_id<'p, 'a>(params: &'p [&'a [u8]]) -> Result<(u64, &'p [&'a [u8]]), RpcError> {
        let Some((first, rest)) = params.split_first() else {
            return Err(RpcError::bad_request(
                "the first param must be the session id",
            ));
        };
        match rpc::value(first)? {
            HostValue::Int(i) if i >= 0 => Ok((i as u64, rest)),
            _ => Err(RpcError::bad_request(
                "the session id must be a non-negative integer",
            )),
        }
    }

    fn unknown_session(sid: u64) -> RpcError {
        RpcError::new(
            "UnknownSession",
            format!("no session {sid} is open on this connection"),
        )
    }

    fn immediate(&self, method: &str, params: &[&[u8]]) -> Result<HostValue, RpcError> {
        let (sid, rest) = Self::session_id(params)?;
        if !rest.is_empty() {
            return Err(RpcError::bad_request(format!(
                "{method} takes only the session id"
            )));
        }
        let sessions = self.conn.sessions.lock();
        let runner = sessions
            .get(&sid)
            .ok_or_else(|| Self::unknown_session(sid))?;
        let session = runner.session();
        match method {
            "cancel" => {
                runner.cancel();
                Ok(HostValue::Nil)
            }
            "get_io_table_id" => Ok(HostValue::Int(session.io_table_id().raw() as i64)),
            _ => {
                to_host(&session.table_info()).map_err(|e| RpcError::new("Internal", e.to_string()))
            }
        }
    }

    fn enqueue(&mut self, msgid: u32, method: &str, params: &[&[u8]]) -> Result<(), RpcError> {
        let (sid, rest) = Self::session_id(params)?;
        let call = calls::parse(method, rest)?;
        let mut sessions = self.conn.sessions.lock();
        if !sessions.contains_key(&sid) {
            return Err(Self::unknown_session(sid));
        }
        if let Call::Close = call {
            let runner = sessions.remove(&sid).expect("checked above");
            self.closed.retain(|t| !t.is_finished());
            self.closed.push(runner.close(msgid));
        } else {
            sessions[&sid].submit(msgid, call);
        }
        Ok(())
    }

    fn stats(&self) -> HostValue {
        let p = self.shared.pool.stats();
        let s = Stats {
            workers: p.workers,
            alive: p.alive,
            restarts: p.restarts,
            computes: p.computes,
            queued: p.queued,
            crash_loop: p.crash_loop,
            store: StoreStats {
                arenas: p.store.arenas,
                tables: p.store.tables,
                bytes: p.store.bytes,
            },
            connections: self.shared.connections.load(Ordering::Relaxed),
            sessions: self.shared.sessions.load(Ordering::Relaxed),
        };
        to_host(&s).unwrap_or_else(|_| {
            HostValue::Map(vec![(
                Key::str("error"),
                HostValue::str("cannot encode stats"),
            )])
        })
    }

    /// The client left (or the daemon drains): settle every session.
    fn finish(mut self) {
        let gone = !self.shared.draining.load(Ordering::Relaxed) || self.outbox.is_broken();
        if gone {
            self.abandoned.store(true, Ordering::Relaxed);
            self.conn.cancel_all();
        }
        let runners: Vec<Runner> = self.conn.sessions.lock().drain().map(|(_, r)| r).collect();
        for r in runners {
            let _ = r.finish().join();
        }
        for t in self.closed.drain(..) {
            let _ = t.join();
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Serialize)]
struct Stats {
    workers: usize,
    alive: usize,
    restarts: u64,
    computes: u64,
    queued: usize,
    crash_loop: bool,
    store: StoreStats,
    connections: usize,
    sessions: usize,
}

#[derive(Serialize)]
struct StoreStats {
    arenas: usize,
    tables: usize,
    bytes: u64,
}
