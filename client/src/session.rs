//! [`Client`] and [`Session`]: the embedded supervisor's session API, over
//! the daemon's socket. Method names and types match the embedded ones;
//! every call can also fail with a connection error.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use luapool_protocol::api::{from_host, HostValue};
use luapool_protocol::Key;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::conn::{Conn, LogSink, Socket};
use crate::error::ClientError;

/// Params of a method that takes none: an empty array (`()` would be nil).
const NO_PARAMS: [u8; 0] = [];

/// A connection to a `luapool serve` daemon. Cheap to share between threads
/// (`&Client` is enough to open sessions); the connection closes when the
/// client and all its sessions are dropped, and the daemon then frees every
/// session that was still open.
pub struct Client {
    conn: Arc<Conn>,
}

impl Client {
    /// Connects to the daemon's Unix socket.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let connect_err = |source| ClientError::Connect {
            addr: path.display().to_string(),
            source,
        };
        let socket = UnixStream::connect(path).map_err(connect_err)?;
        Ok(Client {
            conn: Conn::start(Socket::Unix(socket)).map_err(connect_err)?,
        })
    }

    /// Connects to the daemon's loopback TCP port and authenticates with `token`.
    pub fn connect_tcp(addr: impl ToSocketAddrs, token: &str) -> Result<Client, ClientError> {
        let socket = TcpStream::connect(addr).map_err(|source| ClientError::Connect {
            addr: "tcp".into(),
            source,
        })?;
        let _ = socket.set_nodelay(true);
        let client = Client {
            conn: Conn::start(Socket::Tcp(socket)).map_err(ClientError::Io)?,
        };
        client.conn.call("auth", (token,), None, false)?;
        Ok(client)
    }

    /// Opens a session with its own, private `_home`.
    pub fn session(&self) -> Result<Session, ClientError> {
        self.open(None)
    }

    /// Opens a session bound to the named home: sessions naming the same home
    /// share one `_home` (for as long as the daemon runs).
    pub fn session_with_home(&self, name: &str) -> Result<Session, ClientError> {
        self.open(Some(name))
    }

    fn open(&self, home: Option<&str>) -> Result<Session, ClientError> {
        let v = match home {
            Some(name) => self.conn.call("session.open", (name,), None, false)?,
            None => self.conn.call("session.open", NO_PARAMS, None, false)?,
        };
        let id = unsigned(v, "session.open")?;
        Ok(Session {
            conn: self.conn.clone(),
            id,
            open: true,
        })
    }

    /// The daemon's counters.
    pub fn stats(&self) -> Result<Stats, ClientError> {
        Ok(from_host(self.conn.call("stats", NO_PARAMS, None, false)?)?)
    }
}

/// An id the daemon returned from `method`.
fn unsigned(v: HostValue, method: &str) -> Result<u64, ClientError> {
    match v {
        HostValue::Int(i) if i >= 0 => Ok(i as u64),
        other => Err(ClientError::Protocol(format!(
            "{method} returned {}",
            other.to_json()
        ))),
    }
}

/// A session: `_io` plus a `_home` in the daemon, and computes against them.
/// Calls on one session run in the order they are made; calls on different
/// sessions run concurrently. `Send + Sync`: [`cancel`](Session::cancel) may
/// come from another thread while [`compute`](Session::compute) blocks.
pub struct Session {
    conn: Arc<Conn>,
    id: u64,
    open: bool,
}

/// Per-compute options; `None` means the daemon's default.
#[derive(Default)]
pub struct ComputeOptions {
    /// Wall-clock limit (sent in whole milliseconds, at least 1).
    pub timeout: Option<Duration>,
    /// CPU-time limit (sent in whole milliseconds; zero = none).
    pub cpu_time: Option<Duration>,
    /// Instruction budget (0 = none).
    pub instructions: Option<u64>,
    /// Lua heap limit in bytes (0 = none).
    pub memory: Option<u64>,
    /// Receives each printed line while the compute runs.
    pub on_log: Option<LogSink>,
    /// The chunk name in error messages (default `=compute`).
    pub chunk_name: Option<String>,
}

#[derive(Serialize)]
struct WireOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_time_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chunk_name: Option<String>,
    stream_logs: bool,
}

/// What a successful compute produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeOutput {
    /// The chunk's return values, converted like output.
    pub values: Vec<HostValue>,
    /// The lines it printed (up to 1 MiB of them).
    pub logs: Vec<String>,
}

impl ComputeOutput {
    /// Return value `i` (from 0) as `T`; nil if the chunk returned fewer.
    pub fn value<T: DeserializeOwned>(&self, i: usize) -> Result<T, ClientError> {
        Ok(from_host(
            self.values.get(i).cloned().unwrap_or(HostValue::Nil),
        )?)
    }
}

/// Takes `values` and `logs` out of a compute's result, keeping the values
/// exactly as sent.
fn compute_output(v: HostValue) -> Result<ComputeOutput, ClientError> {
    let HostValue::Map(entries) = v else {
        return Err(ClientError::Protocol(format!(
            "compute returned {}",
            v.to_json()
        )));
    };
    let mut out = ComputeOutput {
        values: Vec::new(),
        logs: Vec::new(),
    };
    for (k, v) in entries {
        match (k, v) {
            (Key::Str(k), HostValue::Array(values)) if k == b"values" => out.values = values,
            (Key::Str(k), logs) if k == b"logs" => out.logs = from_host(logs)?,
            _ => {}
        }
    }
    Ok(out)
}

/// What [`Session::table_info`] reports (as the embedded `TableInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableInfo {
    /// The `_io` table's id.
    pub io: u64,
    /// The `_home` table's id.
    pub home: u64,
    /// Tables alive in the session's arena.
    pub session_tables: usize,
    /// Bytes the session's arena accounts.
    pub session_bytes: u64,
    /// The session's quota (0 = none).
    pub session_quota: u64,
    /// Tables alive in the home's arena.
    pub home_tables: usize,
    /// Bytes the home's arena accounts.
    pub home_bytes: u64,
}

/// The daemon's counters ([`Client::stats`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stats {
    /// Workers configured.
    pub workers: usize,
    /// Workers running now.
    pub alive: usize,
    /// Workers replaced since start.
    pub restarts: u64,
    /// Computes finished (any result).
    pub computes: u64,
    /// Computes waiting for a worker.
    pub queued: usize,
    /// True once the crash-loop guard stopped respawning workers.
    pub crash_loop: bool,
    /// The table store.
    pub store: StoreStats,
    /// Client connections open.
    pub connections: usize,
    /// Sessions open (over all connections).
    pub sessions: usize,
}

/// Totals of the daemon's table store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StoreStats {
    /// Arenas alive (one per session and per home).
    pub arenas: usize,
    /// Tables alive.
    pub tables: usize,
    /// Bytes accounted.
    pub bytes: u64,
}

impl Session {
    /// The session's id on the daemon.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn call<P: Serialize>(&self, method: &str, params: P) -> Result<HostValue, ClientError> {
        self.conn.call(method, params, None, false)
    }

    /// Sets `_io.input` (read-only in Lua), replacing any previous input.
    pub fn set_input<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), ClientError> {
        self.call("set_input", (self.id, data)).map(drop)
    }

    /// `_io.output` converted to `T` (`serde_json::Value` works; null if unset).
    pub fn get_output<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        Ok(from_host(self.call("get_output", (self.id,))?)?)
    }

    /// Sets one field of `_io.input`, creating the input table if there is none.
    pub fn set_input_field<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), ClientError> {
        self.call("set_input_field", (self.id, key, value))
            .map(drop)
    }

    /// One field of `_io.output` converted to `T` (null / `None` if absent).
    pub fn get_output_field<T: DeserializeOwned>(&self, key: &str) -> Result<T, ClientError> {
        Ok(from_host(self.call("get_output_field", (self.id, key))?)?)
    }

    /// Sets `_io.meta` (writable from Lua).
    pub fn set_metadata<T: Serialize + ?Sized>(&self, meta: &T) -> Result<(), ClientError> {
        self.call("set_metadata", (self.id, meta)).map(drop)
    }

    /// Clears `_io.input`, `_io.output` and `_io.meta`; `_home` is untouched.
    pub fn clear_io(&self) -> Result<(), ClientError> {
        self.call("clear_io", (self.id,)).map(drop)
    }

    /// The id of the session's `_io` table.
    pub fn io_table_id(&self) -> Result<u64, ClientError> {
        unsigned(self.call("get_io_table_id", (self.id,))?, "get_io_table_id")
    }

    /// Ids and sizes of the session's tables.
    pub fn table_info(&self) -> Result<TableInfo, ClientError> {
        Ok(from_host(self.call("get_table_info", (self.id,))?)?)
    }

    /// Runs `code` with the daemon's default limits.
    pub fn compute(&self, code: &str) -> Result<ComputeOutput, ClientError> {
        self.compute_with(code, ComputeOptions::default())
    }

    /// Runs `code` with per-compute options.
    pub fn compute_with(
        &self,
        code: &str,
        opts: ComputeOptions,
    ) -> Result<ComputeOutput, ClientError> {
        let wire = WireOptions {
            timeout_ms: opts.timeout.map(|t| (t.as_millis() as u64).max(1)),
            cpu_time_ms: opts.cpu_time.map(|t| {
                if t.is_zero() {
                    0
                } else {
                    (t.as_millis() as u64).max(1)
                }
            }),
            instructions: opts.instructions,
            memory: opts.memory,
            chunk_name: opts.chunk_name,
            stream_logs: opts.on_log.is_some(),
        };
        let log = opts.on_log.map(|sink| (self.id, sink));
        let v = self
            .conn
            .call("compute", (self.id, code, wire), log, true)?;
        compute_output(v)
    }

    /// Cancels the compute this session is running and the computes it has
    /// queued so far (they end with [`ComputeError::Cancelled`](crate::ComputeError)).
    pub fn cancel(&self) -> Result<(), ClientError> {
        self.call("cancel", (self.id,)).map(drop)
    }

    /// Closes the session after its earlier calls; its tables are freed.
    /// (Dropping the session closes it too, without waiting.)
    pub fn close(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.call("session.close", (self.id,)).map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.open {
            self.conn.send("session.close", (self.id,));
        }
    }
}
