//! The home methods (`home.list`, `home.drop`, `home.export`,
//! `home.import`): [`HomeCall`], queued by the event loop
//! ([`submit`]) and run on a call thread ([`run`]), since each may block
//! on the disk (reading a home, a durable write) or on a home's turn.
//!
//! They belong to no session, so they run in no session's order: a
//! connection's home calls run as call threads take them. Each holds a
//! place in its connection's bound (`queued_calls`) and its bytes in the
//! daemon's (`buffered_bytes`) from its arrival until it starts, and
//! counts as a running call until its reply, so shutdown waits for it.
//! `home.list` names every home, so only the operator's socket serves it;
//! the others name one home, as `session.open` does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use luapool_protocol::api::to_host;
use luapool_protocol::rpc::{Answer, ErrorKind, Request, RpcError};
use luapool_supervisor::HostValue;

use crate::calls::home_error;
use crate::conn::Conn;
use crate::shared::{CallJob, Shared};

/// A home method's params, owned, while it waits for a call thread.
#[derive(Debug)]
pub(crate) enum HomeCall {
    List,
    Drop(String),
    Export(String),
    /// The name and the new root, one MessagePack value.
    Import(String, Vec<u8>),
}

impl HomeCall {
    /// The home call of a request (`None` for the other methods).
    pub fn of(req: Request<'_>) -> Option<HomeCall> {
        Some(match req {
            Request::HomeList => HomeCall::List,
            Request::HomeDrop { name } => HomeCall::Drop(name),
            Request::HomeExport { name } => HomeCall::Export(name),
            Request::HomeImport { name, value } => HomeCall::Import(name, value.to_vec()),
            _ => return None,
        })
    }
}

/// A home call waiting for a call thread.
pub(crate) struct HomeJob {
    conn: Arc<Conn>,
    msgid: u32,
    call: HomeCall,
    bytes: usize,
}

/// Queues a home call for a call thread; an error is the reply.
pub(crate) fn submit(
    shared: &Shared,
    conn: &Arc<Conn>,
    msgid: u32,
    call: HomeCall,
    bytes: usize,
) -> Result<(), RpcError> {
    if matches!(call, HomeCall::List) && !conn.operator {
        return Err(RpcError::new(
            ErrorKind::OperatorOnly,
            "home.list is served on the operator's socket only (luapool serve --operator-socket)",
        ));
    }
    let limit = shared.limits.queued_calls;
    let taken = conn
        .home_calls
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limit).then_some(n + 1)
        });
    if taken.is_err() {
        return Err(RpcError::limit(
            ErrorKind::Busy,
            "queued_calls",
            limit as u64,
            format!("this connection has {limit} home calls waiting"),
        ));
    }
    shared.active_calls.fetch_add(1, Ordering::SeqCst);
    shared.buffered.take(bytes);
    let job = HomeJob {
        conn: conn.clone(),
        msgid,
        call,
        bytes,
    };
    if let Err(unsent) = shared.calls.send(CallJob::Home(job)) {
        // The call threads are gone: the daemon is stopping.
        if let CallJob::Home(job) = unsent.0 {
            started(shared, &job);
            shared.active_calls.fetch_sub(1, Ordering::SeqCst);
        }
        return Err(RpcError::new(
            ErrorKind::ShuttingDown,
            "the daemon is shutting down",
        ));
    }
    Ok(())
}

/// The job left the queue: its bounds are given back.
fn started(shared: &Shared, job: &HomeJob) {
    job.conn.home_calls.fetch_sub(1, Ordering::AcqRel);
    shared.buffered.give_back(job.bytes);
}

/// Runs a home call (on a call thread) and answers it. A client gone by
/// then gets nothing run: its queued calls are dropped, as a session's are.
pub(crate) fn run(shared: &Shared, job: HomeJob) {
    started(shared, &job);
    let HomeJob {
        conn, msgid, call, ..
    } = job;
    if !conn.is_gone() {
        let result = if shared.stopping() {
            Err(RpcError::new(
                ErrorKind::ShuttingDown,
                "the daemon is shutting down",
            ))
        } else {
            execute(shared, call)
        };
        conn.reply(shared, Some(msgid), result);
    }
    shared.active_calls.fetch_sub(1, Ordering::SeqCst);
}

fn execute(shared: &Shared, call: HomeCall) -> Result<Answer, RpcError> {
    let pool = &shared.pool;
    match call {
        HomeCall::List => {
            let homes = pool.list_homes().map_err(home_error)?;
            to_host(&homes)
                .map(Answer::Value)
                .map_err(|e| RpcError::new(ErrorKind::Internal, e.to_string()))
        }
        HomeCall::Drop(name) => pool
            .drop_home(&name)
            .map(|existed| Answer::Value(HostValue::Bool(existed)))
            .map_err(home_error),
        HomeCall::Export(name) => pool
            .export_home_msgpack(&name)
            .map(Answer::Encoded)
            .map_err(home_error),
        HomeCall::Import(name, value) => {
            let value: HostValue = rmp_serde::from_slice(&value)
                .map_err(|e| RpcError::bad_request(format!("the home's value: {e}")))?;
            pool.import_home(&name, &value)
                .map(|()| Answer::Value(HostValue::Nil))
                .map_err(home_error)
        }
    }
}
