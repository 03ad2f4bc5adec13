//! One connection to the daemon, shared by a [`Client`](crate::Client) and
//! its sessions: requests are written under a lock, and a reader thread
//! hands each response to the caller waiting for its msgid and each log
//! notification to the sink of the compute that printed it. So several
//! threads can run computes on different sessions over one connection.
//! Every message is built and read with `luapool_protocol::rpc`.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use luapool_protocol::api::HostValue;
use luapool_protocol::rpc::{FromDaemon, Request, RpcError};

use crate::error::ClientError;

/// Receives the lines a compute prints, as it prints them.
pub type LogSink = Box<dyn FnMut(&str) + Send>;

type Reply = Result<HostValue, RpcError>;

/// The socket, either kind.
pub(crate) enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Socket {
    fn try_clone(&self) -> std::io::Result<Socket> {
        Ok(match self {
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
        })
    }
    fn shutdown(&self) {
        let _ = match self {
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl std::io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Socket::Unix(s) => s.flush(),
            Socket::Tcp(s) => s.flush(),
        }
    }
}

/// What the reader thread and the callers share.
#[derive(Default)]
struct Routes {
    pending: HashMap<u32, mpsc::Sender<Reply>>,
    logs: HashMap<(u64, u32), Arc<Mutex<LogSink>>>,
    /// Set when the connection is gone: why.
    closed: Option<String>,
}

/// A connection; closing happens when the last handle is dropped.
pub(crate) struct Conn {
    writer: Mutex<Socket>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    pub fn start(socket: Socket) -> std::io::Result<Arc<Conn>> {
        let reader = socket.try_clone()?;
        let routes = Arc::new(Mutex::new(Routes::default()));
        let reader_routes = routes.clone();
        std::thread::Builder::new()
            .name("luapool-client-reader".into())
            .spawn(move || read_loop(BufReader::with_capacity(64 << 10, reader), &reader_routes))?;
        Ok(Arc::new(Conn {
            writer: Mutex::new(socket),
            routes,
            next_id: AtomicU32::new(1),
        }))
    }

    /// Sends a request and waits for its reply. `log` receives the log
    /// notifications of this request (a compute).
    pub fn call(&self, req: &Request<'_>, log: Option<LogSink>) -> Result<HostValue, ClientError> {
        let compute = matches!(req, Request::Compute { .. });
        let msgid = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        req.encode(msgid, &mut frame);
        let (tx, rx) = mpsc::channel();
        {
            let mut routes = lock(&self.routes);
            if let Some(why) = &routes.closed {
                return Err(ClientError::Disconnected(why.clone()));
            }
            routes.pending.insert(msgid, tx);
            if let (Some(sink), Some(session)) = (log, req.session()) {
                routes
                    .logs
                    .insert((session, msgid), Arc::new(Mutex::new(sink)));
            }
        }
        let written = lock(&self.writer).write_all(&frame);
        let reply = match written {
            Ok(()) => rx.recv().map_err(|_| {
                let why = lock(&self.routes).closed.clone();
                ClientError::Disconnected(why.unwrap_or_else(|| "no reply".into()))
            }),
            Err(e) => Err(ClientError::Io(e)),
        };
        {
            let mut routes = lock(&self.routes);
            routes.pending.remove(&msgid);
            routes.logs.retain(|(_, id), _| *id != msgid);
        }
        reply?.map_err(|e| ClientError::of(e, compute))
    }

    /// False once the connection is gone (the daemon closed it or died).
    pub fn is_open(&self) -> bool {
        lock(&self.routes).closed.is_none()
    }

    /// Sends a request without waiting for its reply.
    pub fn send(&self, req: &Request<'_>) {
        let msgid = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        req.encode(msgid, &mut frame);
        let _ = lock(&self.writer).write_all(&frame);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the reader thread; the daemon frees this connection's sessions.
        lock(&self.writer).shutdown();
    }
}

fn read_loop(mut reader: BufReader<Socket>, routes: &Mutex<Routes>) {
    let why = loop {
        // One message: decoded straight into host values, as the supervisor does.
        let msg = match rmp_serde::from_read::<_, HostValue>(&mut reader) {
            Ok(m) => m,
            // The end, between messages: the daemon closed it (or is gone).
            Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break "end of stream".into()
            }
            Err(e) => break format!("{e}"),
        };
        match FromDaemon::decode(msg) {
            Ok(FromDaemon::Response {
                msgid: Some(msgid),
                result,
            }) => {
                if let Some(tx) = lock(routes).pending.remove(&msgid) {
                    let _ = tx.send(result);
                }
            }
            Ok(FromDaemon::Response {
                msgid: None,
                result,
            }) => {
                // A reply without a msgid: the daemon rejected the stream.
                let why = match result {
                    Err(e) => e.to_string(),
                    Ok(v) => v.to_json().to_string(),
                };
                break format!("the daemon rejected the connection: {why}");
            }
            Ok(FromDaemon::Log {
                session,
                msgid,
                line,
            }) => {
                // Call the sink outside the routes lock: it may call into the client.
                let sink = lock(routes).logs.get(&(session, msgid)).cloned();
                if let Some(sink) = sink {
                    (lock(&sink))(&line);
                }
            }
            Ok(FromDaemon::Other) => {}
            Err(e) => break e,
        }
    };
    let mut routes = lock(routes);
    routes.closed = Some(why);
    // Dropping the senders wakes every waiting caller.
    routes.pending.clear();
    routes.logs.clear();
}
