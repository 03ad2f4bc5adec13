//! `script.load` on a call thread. Its cost grows with the script (its
//! UTF-8 check, its copy into the store and its SHA-1: about 100 ms for
//! the 64 MiB that `script_bytes` allows), so the event loop, which serves
//! every connection, does none of it: it hands the request's frame, as
//! read, to a call thread ([`submit`]) and handles none of that
//! connection's later requests until the call thread has answered it and
//! put the script in the connection's table ([`run`]). So a connection's
//! replies come in the same order as if the load had been answered at
//! once, and a compute pipelined behind a load finds its digest; only the
//! loading connection waits for its load.
//!
//! A load counts as a running call from its hand-off to its reply, so
//! shutdown waits for it; its frame's bytes count against the daemon's
//! `buffered_bytes` until it has run. A connection has one load out at a
//! time, since it is not read meanwhile.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use luapool_protocol::rpc::{decode_request, Answer, ErrorKind, Incoming, Request, RpcError};
use luapool_supervisor::{script_digest, HostValue, ScriptError};

use crate::conn::Conn;
use crate::shared::{CallJob, Shared};

/// A `script.load` waiting for a call thread: its frame, where the event
/// loop read it (taken from the reader's buffer, not copied).
pub(crate) struct LoadJob {
    conn: Arc<Conn>,
    msgid: u32,
    buf: Vec<u8>,
    frame: Range<usize>,
    /// Bytes of `buffered_bytes` it holds.
    bytes: usize,
}

/// Queues the `script.load` in `buf[frame]` for a call thread; false (the
/// request answered already) if the call threads are gone. While it is
/// out, [`Conn::is_loading`] holds the connection's later requests back.
pub(crate) fn submit(
    shared: &Shared,
    conn: &Arc<Conn>,
    msgid: u32,
    (buf, frame): (Vec<u8>, Range<usize>),
    bytes: usize,
) -> bool {
    shared.active_calls.fetch_add(1, Ordering::SeqCst);
    conn.set_loading(true);
    let job = LoadJob {
        conn: conn.clone(),
        msgid,
        buf,
        frame,
        bytes,
    };
    if let Err(unsent) = shared.calls.send(CallJob::Load(job)) {
        // The call threads are gone: the daemon is stopping.
        if let CallJob::Load(job) = unsent.0 {
            finish(shared, job, Err(shutting_down()));
        }
        return false;
    }
    true
}

/// Loads the script (on a call thread), answers, and hands the connection
/// back to the event loop. A client gone by then gets nothing loaded.
pub(crate) fn run(shared: &Shared, job: LoadJob) {
    let result = if job.conn.is_gone() {
        Ok(HostValue::Nil) // not sent: nobody reads it
    } else if shared.stopping() {
        Err(shutting_down())
    } else {
        load(shared, &job)
    };
    finish(shared, job, result);
}

/// Answers the load, gives its bounds back and resumes its connection.
fn finish(shared: &Shared, job: LoadJob, result: Result<HostValue, RpcError>) {
    let LoadJob {
        conn, msgid, bytes, ..
    } = job;
    shared.buffered.give_back(bytes);
    conn.reply(shared, Some(msgid), result.map(Answer::Value));
    // After the reply: the requests behind the load are answered after it.
    conn.set_loading(false);
    shared.notify(&conn);
    shared.active_calls.fetch_sub(1, Ordering::SeqCst);
}

/// The digest of the loaded script, now in the connection's table.
fn load(shared: &Shared, job: &LoadJob) -> Result<HostValue, RpcError> {
    let code = code_of(&job.buf[job.frame.clone()])?;
    let conn = &job.conn;
    let limit = shared.limits.scripts_per_connection;
    let full = conn.scripts.lock().len() >= limit;
    // Hashed outside the lock: the event loop takes it to abandon the connection.
    if full && !has(conn, &script_digest(&code)) {
        return Err(RpcError::limit(
            ErrorKind::LimitReached,
            "scripts_per_connection",
            limit as u64,
            format!("this connection has {limit} scripts loaded"),
        ));
    }
    let script = shared.pool.load_script(&code).map_err(|e| match e {
        ScriptError::Limit { limit, value, .. } => {
            RpcError::limit(ErrorKind::LimitReached, limit, value, e.to_string())
        }
    })?;
    let digest = script.digest().to_string();
    let mut scripts = conn.scripts.lock();
    // A connection abandoned meanwhile gave its scripts up (under this
    // lock, after marking itself gone): this one is not kept either.
    if !conn.is_gone() {
        scripts.insert(digest.clone(), script);
    }
    Ok(HostValue::str(digest))
}

fn has(conn: &Conn, digest: &str) -> bool {
    conn.scripts.lock().contains_key(digest)
}

/// The code of a `script.load` frame (which the event loop decoded as far
/// as its method): a bad param is the client's `BadRequest`.
fn code_of(frame: &[u8]) -> Result<String, RpcError> {
    let Incoming::Request(raw) = decode_request(frame) else {
        return Err(RpcError::new(ErrorKind::Internal, "the frame changed"));
    };
    match Request::decode(&raw.method, &raw.params)? {
        Request::ScriptLoad { code } => Ok(code),
        _ => Err(RpcError::new(ErrorKind::Internal, "not a script.load")),
    }
}

fn shutting_down() -> RpcError {
    RpcError::new(ErrorKind::ShuttingDown, "the daemon is shutting down")
}
