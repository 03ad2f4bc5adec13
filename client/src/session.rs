//! [`Client`] and [`Session`]: the embedded supervisor's session API, over
//! the daemon's socket. Method names and types match the embedded ones;
//! every call can also fail with a connection error. Requests and results
//! are `luapool_protocol::rpc`'s types, shared with the daemon.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use luapool_protocol::api::{from_host, ComputeOutput, HomeInfo, HostValue, TableInfo};
use luapool_protocol::rpc::{self, Request, Stats};
use luapool_protocol::TableId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::conn::{Conn, LogSink, Socket};
use crate::error::ClientError;

/// A connection to a `luapool serve` daemon. Cheap to share between threads
/// (`&Client` is enough to open sessions); the connection closes when the
/// client and all its sessions are dropped, and the daemon then frees every
/// session that was still open.
pub struct Client {
    conn: Arc<Conn>,
}

impl Client {
    /// Connects to the daemon's Unix socket (or its operator socket).
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
        client.conn.call(
            &Request::Auth {
                token: token.into(),
            },
            None,
        )?;
        Ok(client)
    }

    /// False once the connection is gone: the daemon closed it or died
    /// (every call then fails with [`ClientError::Disconnected`]).
    pub fn is_connected(&self) -> bool {
        self.conn.is_open()
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
        let req = Request::SessionOpen {
            home: home.map(str::to_owned),
        };
        let id = from_host(self.conn.call(&req, None)?)?;
        Ok(Session {
            conn: self.conn.clone(),
            id,
            open: true,
        })
    }

    /// The daemon's counters: the whole daemon's on the operator's socket,
    /// this connection's own elsewhere ([`Stats::scope`]).
    pub fn stats(&self) -> Result<Stats, ClientError> {
        Ok(from_host(self.conn.call(&Request::Stats, None)?)?)
    }

    /// Loads a script on this connection and returns its digest (the SHA-1
    /// of `code` in hex, as Redis's `SCRIPT LOAD` gives): until the
    /// connection closes, [`Session::compute`] takes the digest in place of
    /// the code. On another connection (a new one after a reconnect, say)
    /// the digest is [`ComputeError::NoScript`](crate::ComputeError) until
    /// it is loaded there. Past the daemon's bounds, `LimitReached`
    /// (`scripts_per_connection`, `max_scripts`, `script_bytes`).
    pub fn load_script(&self, code: &str) -> Result<String, ClientError> {
        let req = Request::ScriptLoad { code: code.into() };
        Ok(from_host(self.conn.call(&req, None)?)?)
    }

    /// Every named home, on disk and in memory, by name. Served on the
    /// operator's socket only (elsewhere [`ErrorKind::OperatorOnly`](crate::ErrorKind)).
    pub fn list_homes(&self) -> Result<Vec<HomeInfo>, ClientError> {
        Ok(from_host(self.conn.call(&Request::HomeList, None)?)?)
    }

    /// Deletes the named home, from disk too; `false` if there was none.
    /// One that a session holds is `HomeInUse`.
    pub fn drop_home(&self, name: &str) -> Result<bool, ClientError> {
        let req = Request::HomeDrop { name: name.into() };
        Ok(from_host(self.conn.call(&req, None)?)?)
    }

    /// The named home as one value (its root table as a map), converted to
    /// `T` (`serde_json::Value` or [`Value`](crate::Value) work): a backup.
    /// One that does not exist is `HomeNotFound`.
    pub fn export_home<T: DeserializeOwned>(&self, name: &str) -> Result<T, ClientError> {
        let req = Request::HomeExport { name: name.into() };
        Ok(from_host(self.conn.call(&req, None)?)?)
    }

    /// Replaces the named home (created if new) with `value`, a map (or an
    /// array) that becomes its root table; durable on return when the
    /// daemon has a data directory. One that a session holds is `HomeInUse`.
    pub fn import_home<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), ClientError> {
        let value = &data(value)?;
        let req = Request::HomeImport {
            name: name.into(),
            value,
        };
        self.conn.call(&req, None).map(drop)
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

/// Per-compute options; `None` means the daemon's default. The daemon
/// refuses more than its operator allows (`LimitReached`).
#[derive(Default)]
pub struct ComputeOptions {
    /// Wall-clock limit (sent in whole milliseconds, at least 1).
    pub timeout: Option<Duration>,
    /// CPU-time limit on the worker's own CPU clock (zero = none; sent in
    /// whole milliseconds, at least 1 otherwise).
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

/// Serializes host data for a data param (structs as maps keyed by field
/// name, numbers exact: see `api::to_msgpack`).
fn data<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, ClientError> {
    luapool_protocol::api::to_msgpack(v).map_err(|e| ClientError::Encode(e.to_string()))
}

impl Session {
    /// The session's id on the daemon (unique on its connection).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn call(&self, req: Request<'_>) -> Result<HostValue, ClientError> {
        self.conn.call(&req, None)
    }

    /// Sets `_io.input` (read-only in Lua), replacing any previous input.
    pub fn set_input<T: Serialize + ?Sized>(&self, input: &T) -> Result<(), ClientError> {
        let data = &data(input)?;
        self.call(Request::SetInput { sid: self.id, data })
            .map(drop)
    }

    /// `_io.output` converted to `T` (`serde_json::Value` works; null if unset).
    pub fn get_output<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        Ok(from_host(self.call(Request::GetOutput { sid: self.id })?)?)
    }

    /// Sets one field of `_io.input`, creating the input table if there is none.
    pub fn set_input_field<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), ClientError> {
        let value = &data(value)?;
        let key = key.into();
        self.call(Request::SetInputField {
            sid: self.id,
            key,
            value,
        })
        .map(drop)
    }

    /// One field of `_io.output` converted to `T` (null / `None` if absent).
    pub fn get_output_field<T: DeserializeOwned>(&self, key: &str) -> Result<T, ClientError> {
        let key = key.into();
        Ok(from_host(
            self.call(Request::GetOutputField { sid: self.id, key })?,
        )?)
    }

    /// Sets `_io.meta` (writable from Lua).
    pub fn set_metadata<T: Serialize + ?Sized>(&self, meta: &T) -> Result<(), ClientError> {
        let meta = &data(meta)?;
        self.call(Request::SetMetadata { sid: self.id, meta })
            .map(drop)
    }

    /// Clears `_io.input`, `_io.output` and `_io.meta`; `_home` is untouched.
    pub fn clear_io(&self) -> Result<(), ClientError> {
        self.call(Request::ClearIo { sid: self.id }).map(drop)
    }

    /// The id of the session's `_io` table.
    pub fn io_table_id(&self) -> Result<TableId, ClientError> {
        Ok(from_host(
            self.call(Request::GetIoTableId { sid: self.id })?,
        )?)
    }

    /// Ids and sizes of the session's tables.
    pub fn table_info(&self) -> Result<TableInfo, ClientError> {
        Ok(from_host(
            self.call(Request::GetTableInfo { sid: self.id })?,
        )?)
    }

    /// Runs `code` (or the digest of a script this connection loaded:
    /// [`Client::load_script`]) with the daemon's default limits.
    pub fn compute(&self, code: &str) -> Result<ComputeOutput, ClientError> {
        self.compute_with(code, ComputeOptions::default())
    }

    /// Runs `code` with per-compute options.
    pub fn compute_with(
        &self,
        code: &str,
        opts: ComputeOptions,
    ) -> Result<ComputeOutput, ClientError> {
        let options = rpc::ComputeOptions {
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
            stream_logs: Some(opts.on_log.is_some()),
        };
        let req = Request::Compute {
            sid: self.id,
            code: code.into(),
            options,
        };
        Ok(from_host(self.conn.call(&req, opts.on_log)?)?)
    }

    /// Cancels the compute this session is running and the computes it has
    /// queued so far (they end with [`ComputeError::Cancelled`](crate::ComputeError)).
    pub fn cancel(&self) -> Result<(), ClientError> {
        self.call(Request::Cancel { sid: self.id }).map(drop)
    }

    /// Closes the session after its earlier calls; its tables are freed.
    /// (Dropping the session closes it too, without waiting.)
    pub fn close(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.call(Request::SessionClose { sid: self.id }).map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.open {
            self.conn.send(&Request::SessionClose { sid: self.id });
        }
    }
}
