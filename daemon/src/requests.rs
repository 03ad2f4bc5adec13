//! Answering one request frame, on the event loop: requests that are
//! answered at once (`auth`, `session.open`, `stats`, `cancel`,
//! `get_io_table_id`, `get_table_info`) are answered here; the home
//! methods go to the call threads (`homes.rs`), and so does `script.load`
//! (`scripts.rs`, undecoded: [`Flow::Load`]); the others are queued on
//! their session ([`DaemonSession::submit`]). A compute whose code is a
//! digest gets the script this connection loaded with it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use luapool_protocol::api::to_host;
use luapool_protocol::rpc::{
    decode_request, Answer, ErrorKind, Incoming, Method, Request, RpcError,
};
use luapool_supervisor::{is_digest, ComputeError, HostValue, Script};

use crate::calls::{self, Call, Code};
use crate::conn::Conn;
use crate::homes::{self, HomeCall};
use crate::session::DaemonSession;
use crate::shared::Shared;

/// What becomes of the connection after a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
    /// The frame is a `script.load` with this msgid, for a call thread:
    /// the connection's next frames wait until it is answered.
    Load(u32),
}

/// A connection's request handling state (the event loop's).
pub(crate) struct Requests {
    pub conn: Arc<Conn>,
    pub authed: bool,
}

impl Requests {
    fn reply(&self, shared: &Shared, msgid: Option<u32>, r: Result<HostValue, RpcError>) {
        self.conn.reply(shared, msgid, r.map(Answer::Value));
    }

    /// Handles one complete frame.
    pub fn frame(&mut self, shared: &Arc<Shared>, frame: &[u8]) -> Flow {
        let raw = match decode_request(frame) {
            Incoming::Request(r) => r,
            Incoming::Notification => return Flow::Continue,
            Incoming::Bad {
                msgid: Some(id),
                message,
            } => {
                self.reply(shared, Some(id), Err(RpcError::bad_request(message)));
                return Flow::Continue;
            }
            Incoming::Bad {
                msgid: None,
                message,
            } => {
                let e = RpcError::bad_request(format!("{message}; closing the connection"));
                self.reply(shared, None, Err(e));
                return Flow::Close;
            }
        };
        let msgid = raw.msgid;
        if !self.authed && raw.method != "auth" {
            let e = RpcError::new(
                ErrorKind::Unauthorized,
                "the first request on a TCP connection must be auth",
            );
            self.reply(shared, Some(msgid), Err(e));
            return Flow::Close;
        }
        if Method::from_name(&raw.method) == Some(Method::ScriptLoad) {
            // Its params are decoded on the call thread: the code's check
            // and copy take time in proportion to it.
            return Flow::Load(msgid);
        }
        let req = match Request::decode(&raw.method, &raw.params) {
            Ok(r) => r,
            Err(e) => {
                self.reply(shared, Some(msgid), Err(e));
                // A TCP client's auth must succeed before anything else.
                return if self.authed {
                    Flow::Continue
                } else {
                    Flow::Close
                };
            }
        };
        let result = match req {
            Request::Auth { token } => return self.auth(shared, msgid, &token),
            Request::SessionOpen { home } => self.open(shared, home.as_deref()),
            Request::Stats => Ok(self.stats(shared)),
            Request::Cancel { sid } => self.session(sid, true).map(|s| {
                s.cancel();
                HostValue::Nil
            }),
            Request::GetIoTableId { sid } => self
                .session(sid, false)
                // Table ids are below 2^53 (arena ids below 2^21): an Int.
                .map(|s| HostValue::Int(s.session().io_table_id().raw() as i64)),
            Request::GetTableInfo { sid } => self.session(sid, false).and_then(|s| {
                to_host(&s.session().table_info())
                    .map_err(|e| RpcError::new(ErrorKind::Internal, e.to_string()))
            }),
            req @ (Request::HomeList
            | Request::HomeDrop { .. }
            | Request::HomeExport { .. }
            | Request::HomeImport { .. }) => {
                let bytes = req.payload_bytes();
                let call = HomeCall::of(req).expect("a home method");
                match homes::submit(shared, &self.conn, msgid, call, bytes) {
                    Ok(()) => return Flow::Continue,
                    Err(e) => Err(e),
                }
            }
            Request::ScriptLoad { .. } => unreachable!("handed to a call thread above"),
            req => match self.enqueue(msgid, req) {
                Ok(()) => return Flow::Continue,
                Err(e) => Err(e),
            },
        };
        self.reply(shared, Some(msgid), result);
        Flow::Continue
    }

    fn auth(&mut self, shared: &Shared, msgid: u32, given: &str) -> Flow {
        match &shared.token {
            Some(token) if !self.authed && !same_secret(token.as_bytes(), given.as_bytes()) => {
                let e = RpcError::new(ErrorKind::Unauthorized, "wrong token");
                self.reply(shared, Some(msgid), Err(e));
                Flow::Close
            }
            _ => {
                self.authed = true;
                self.reply(shared, Some(msgid), Ok(HostValue::Bool(true)));
                Flow::Continue
            }
        }
    }

    fn open(&mut self, shared: &Arc<Shared>, home: Option<&str>) -> Result<HostValue, RpcError> {
        if shared.draining.load(Ordering::Relaxed) {
            return Err(RpcError::new(
                ErrorKind::ShuttingDown,
                "the daemon is shutting down",
            ));
        }
        let limits = &shared.limits;
        let mine = self.conn.sessions.lock().len();
        if mine >= limits.sessions_per_connection {
            return Err(RpcError::limit(
                ErrorKind::LimitReached,
                "sessions_per_connection",
                limits.sessions_per_connection as u64,
                format!("this connection has {mine} sessions open"),
            ));
        }
        if shared.sessions.load(Ordering::Relaxed) >= limits.sessions {
            return Err(RpcError::limit(
                ErrorKind::LimitReached,
                "sessions",
                limits.sessions as u64,
                "the daemon has as many sessions open as it allows",
            ));
        }
        let pool = &shared.pool;
        let session = match home {
            Some(name) => pool.session_with_home(name).map_err(calls::session_error)?,
            None => pool.session(),
        };
        let sid = self.conn.next_sid();
        let s = DaemonSession::new(sid, session, self.conn.clone(), shared.clone());
        self.conn.sessions.lock().insert(sid, Arc::new(s));
        Ok(HostValue::Int(sid as i64))
    }

    /// The open session `sid`; a closing one only if `closing_too`.
    fn session(&self, sid: u64, closing_too: bool) -> Result<Arc<DaemonSession>, RpcError> {
        match self.conn.session(sid) {
            Some(s) if closing_too || !s.is_closing() => Ok(s),
            _ => Err(RpcError::unknown_session(sid)),
        }
    }

    fn enqueue(&mut self, msgid: u32, req: Request<'_>) -> Result<(), RpcError> {
        let sid = req.session().expect("session methods name a session");
        let bytes = req.payload_bytes();
        let session = self.session(sid, false)?;
        let mut call = Call::of(req).expect("queued methods make calls");
        if let Call::Compute { options, code, .. } = &mut call {
            calls::check_options(options, &session.shared_limits().compute_maxima)?;
            if let Code::Text(text) = code {
                if is_digest(text) {
                    *code = Code::Script(self.script(text)?);
                }
            }
        }
        session.submit(msgid, call, bytes)
    }

    /// The script this connection loaded with `digest`.
    fn script(&self, digest: &str) -> Result<Script, RpcError> {
        let digest = digest.to_ascii_lowercase();
        match self.conn.scripts.lock().get(&digest) {
            Some(s) => Ok(s.clone()),
            None => Err(RpcError::Compute(ComputeError::NoScript { digest })),
        }
    }

    fn stats(&self, shared: &Shared) -> HostValue {
        let s = if self.conn.operator {
            crate::stats::daemon(shared)
        } else {
            crate::stats::connection(shared, &self.conn)
        };
        to_host(&s).unwrap_or(HostValue::Nil)
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
