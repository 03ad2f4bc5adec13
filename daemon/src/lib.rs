//! `luapool-daemon`: the daemon behind `luapool serve`: a pool served over a Unix socket (and
//! optionally loopback TCP with a token) with MessagePack-RPC. The wire
//! protocol is documented in `docs/protocol.md`.
//!
//! ```no_run
//! use luapool_daemon::Daemon;
//! use luapool_supervisor::Pool;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let daemon = Daemon::builder("/tmp/luapool.sock").bind()?; // before the pool: fails fast
//! let pool = Pool::builder().workers(2).build()?;
//! daemon.run(pool)?; // until SIGTERM/SIGINT or a DaemonStopper
//! # Ok(()) }
//! ```
//!
//! Where things are: `listen.rs` binds the sockets, `connection.rs` reads
//! a connection's requests (`luapool_protocol::stream` finds frame
//! boundaries, `rpc.rs` decodes requests and encodes responses, `calls.rs` parses and
//! runs session methods), `runner.rs` is a session's thread, `outbox.rs`
//! a connection's writer, `signals.rs` the wake-up pipe and SIGTERM.
//!
//! Threads: one accept loop (the caller of [`Daemon::run`]), per connection a
//! reader and a writer, per open session one thread running its calls in
//! order. Shutdown: stop accepting and remove the socket file, stop reading
//! requests, let every request already read finish within the grace period,
//! then cancel what still runs, close the connections and stop the pool.

#![deny(missing_docs)]

mod calls;
mod connection;
mod listen;
mod outbox;
mod rpc;
mod runner;
mod shared;
mod signals;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use connection::{serve_connection, Conn};
use listen::{accept_tcp, accept_unix, bind_tcp, Stream, UnixSocket};
use shared::Shared;
pub use signals::DaemonStopper;
use signals::{poll, WakePipe};

use luapool_supervisor::Pool;

/// The largest request frame a client may send; a larger one closes its connection.
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;
/// How long a cancelled compute may take to end before connections are closed anyway.
const CANCEL_WAIT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon answers on the socket.
    #[error("a daemon is already listening on {path}")]
    AlreadyRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket path exists and is not a socket; it is left alone.
    #[error("{path} exists and is not a socket; not removing it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// TCP was asked for on an address other than loopback.
    #[error("TCP is only served on loopback addresses, not {addr}")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// TCP was asked for with an empty token.
    #[error("TCP needs a non-empty token")]
    EmptyToken,
    /// Binding or preparing a socket failed.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// The socket path or address.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The signal handlers or the wake-up pipe could not be set up.
    #[error("cannot set up signal handling: {0}")]
    Signals(std::io::Error),
}

/// Options of a [`Daemon`]; see [`Daemon::builder`].
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    socket: PathBuf,
    tcp: Option<(SocketAddr, String)>,
    grace: Duration,
    max_frame: usize,
    signals: bool,
}

impl DaemonBuilder {
    /// Also listen on a loopback TCP address; clients must first call
    /// `auth` with `token`. Port 0 picks a free port ([`Daemon::tcp_addr`]).
    pub fn tcp(mut self, addr: SocketAddr, token: impl Into<String>) -> Self {
        self.tcp = Some((addr, token.into()));
        self
    }
    /// How long running computes may take to finish at shutdown before they
    /// are cancelled (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    /// The largest request frame (default [`DEFAULT_MAX_FRAME`]).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }
    /// Whether [`Daemon::run`] handles SIGTERM and SIGINT (default true).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.signals = yes;
        self
    }
    /// Binds the sockets. Call it before starting threads that create files
    /// (it sets the process umask for a moment, to create the socket 0600).
    pub fn bind(self) -> Result<Daemon, DaemonError> {
        let tcp = match &self.tcp {
            Some((_, token)) if token.is_empty() => return Err(DaemonError::EmptyToken),
            Some((addr, token)) => Some((bind_tcp(*addr)?, token.clone())),
            None => None,
        };
        let wake = WakePipe::new().map_err(DaemonError::Signals)?;
        let unix = UnixSocket::bind(&self.socket)?;
        Ok(Daemon {
            unix,
            tcp,
            wake,
            options: self,
        })
    }
}

/// A bound daemon; [`run`](Daemon::run) serves a pool until stopped.
pub struct Daemon {
    unix: UnixSocket,
    tcp: Option<(TcpListener, String)>,
    wake: WakePipe,
    options: DaemonBuilder,
}

impl Daemon {
    /// A builder for a daemon on the Unix socket `socket`.
    pub fn builder(socket: impl Into<PathBuf>) -> DaemonBuilder {
        DaemonBuilder {
            socket: socket.into(),
            tcp: None,
            grace: Duration::from_secs(10),
            max_frame: DEFAULT_MAX_FRAME,
            signals: true,
        }
    }

    /// The Unix socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.unix.path
    }

    /// Whether a stale socket file (no daemon listening) was removed on bind.
    pub fn removed_stale_socket(&self) -> bool {
        self.unix.removed_stale
    }

    /// The TCP address actually bound, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// A handle that shuts the daemon down as SIGTERM does.
    pub fn stopper(&self) -> DaemonStopper {
        self.wake.stopper()
    }

    /// Serves `pool` until SIGTERM/SIGINT (if handled) or a [`DaemonStopper`],
    /// then shuts down gracefully, removes the socket file and stops the pool.
    pub fn run(self, pool: Arc<Pool>) -> Result<(), DaemonError> {
        if self.options.signals {
            self.wake
                .install_signal_handlers()
                .map_err(DaemonError::Signals)?;
        }
        let shared = Arc::new(Shared {
            pool,
            token: self.tcp.as_ref().map(|(_, t)| t.clone()),
            max_frame: self.options.max_frame,
            next_session: AtomicU64::new(1),
            sessions: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            force_stop: AtomicBool::new(false),
        });
        let mut conns: Vec<(Arc<Conn>, JoinHandle<()>)> = Vec::new();
        let mut fds = vec![self.wake.read_fd(), self.unix.listener.as_raw_fd()];
        if let Some((l, _)) = &self.tcp {
            fds.push(l.as_raw_fd());
        }
        loop {
            let ready = poll(&fds, None);
            if ready[0] && self.wake.drain() {
                break;
            }
            let mut accepted = Vec::new();
            if ready[1] {
                accepted.push((accept_unix(&self.unix.listener), false));
            }
            if let (Some(true), Some((l, _))) = (ready.get(2), &self.tcp) {
                accepted.push((accept_tcp(l), true));
            }
            for (stream, needs_auth) in accepted {
                match stream {
                    Ok(stream) => {
                        conns.retain(|(_, t)| !t.is_finished());
                        if let Some(c) = spawn_connection(&shared, stream, needs_auth) {
                            conns.push(c);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        // Out of file descriptors, say: do not spin on a
                        // listener that stays readable.
                        eprintln!("luapool: cannot accept a connection: {e}");
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
        }
        self.drain(&shared, conns);
        Ok(())
    }

    fn drain(self, shared: &Arc<Shared>, conns: Vec<(Arc<Conn>, JoinHandle<()>)>) {
        shared.draining.store(true, Ordering::Relaxed);
        let Daemon {
            unix,
            tcp,
            wake,
            options,
        } = self;
        // Dropping the listeners closes them and removes the socket file.
        drop((tcp, unix));
        for (c, _) in &conns {
            c.stop_reading();
        }
        let all_done =
            |conns: &[(Arc<Conn>, JoinHandle<()>)]| conns.iter().all(|(_, t)| t.is_finished());
        // Let accepted work finish; a second signal cuts the grace period short.
        let deadline = Instant::now() + options.grace;
        while !all_done(&conns) && Instant::now() < deadline {
            if wake.wait(Duration::from_millis(20)) {
                break;
            }
        }
        if !all_done(&conns) {
            shared.force_stop.store(true, Ordering::Relaxed);
            for (c, _) in &conns {
                c.cancel_all();
            }
            let deadline = Instant::now() + CANCEL_WAIT;
            while !all_done(&conns) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            for (c, _) in &conns {
                c.close();
            }
        }
        for (_, t) in conns {
            let _ = t.join();
        }
        shared.pool.shutdown();
    }
}

fn spawn_connection(
    shared: &Arc<Shared>,
    stream: Stream,
    needs_auth: bool,
) -> Option<(Arc<Conn>, JoinHandle<()>)> {
    let conn = Arc::new(Conn::new(stream.try_clone().ok()?));
    let (shared2, conn2) = (shared.clone(), conn.clone());
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("luapool-conn".into())
        .stack_size(8 << 20)
        .spawn(move || {
            serve_connection(shared2.clone(), conn2, stream, needs_auth);
            shared2.connections.fetch_sub(1, Ordering::Relaxed);
        });
    match spawned {
        Ok(t) => Some((conn, t)),
        Err(e) => {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            eprintln!("luapool: cannot serve a connection: {e}");
            None
        }
    }
}
