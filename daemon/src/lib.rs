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
//! Threads (a fixed number, whatever the connections and sessions): the
//! event loop (the caller of [`Daemon::run`]) accepts, reads every
//! client's requests and writes what a socket did not take at once; a few
//! call threads ([`DaemonLimits::call_threads`]) run session calls other
//! than computes, the home methods (`homes.rs`) and `script.load`
//! (`scripts.rs`); computes run on the pool's threads, one per worker,
//! which also write their replies. So a compute crosses from the event loop
//! to a pool thread once, and back to no one. An event loop (mio) rather
//! than threads per connection: idle connections and sessions then cost
//! memory only, and waiting (for a home, a worker, a slow client) holds no
//! thread.
//!
//! With `--metrics` ([`DaemonBuilder::metrics`]), one more thread answers
//! `GET /metrics` (`metrics.rs`, `prometheus.rs`) with the figures of the
//! operator's `stats` (`stats.rs`).
//!
//! Log lines go through `tracing`; the binary installs the subscriber.
//!
//! Where things are: `listen.rs` binds the sockets, `event_loop.rs` is the
//! event loop, `reader.rs` a connection's reading side and the frames in
//! it, `requests.rs` answers one request frame (the socket API's
//! types are `luapool_protocol::rpc`), `session.rs` is a session's queue of
//! calls, `calls.rs` runs one, `scripts.rs` loads a script on a call
//! thread, `conn.rs` and `outbox.rs` a connection and its sending side,
//! `limits.rs` the daemon's bounds, `signals.rs` the wake-up pipe and
//! SIGTERM.
//!
//! Shutdown: stop accepting and remove the socket files, stop reading
//! requests, let every request already read finish within the grace
//! period, then answer what is queued (`Cancelled`, `ShuttingDown`), cancel
//! what runs, close the connections and stop the pool.

#![deny(missing_docs)]

mod calls;
mod conn;
mod event_loop;
mod homes;
mod limits;
mod listen;
mod metrics;
mod outbox;
mod prometheus;
mod reader;
mod requests;
mod scripts;
mod session;
mod shared;
mod signals;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use event_loop::{EventLoop, Listeners, WAKE};
pub use limits::DaemonLimits;
use listen::{bind_tcp, UnixSocket};
use metrics::MetricsServer;
use shared::{CallJob, Shared};
pub use signals::DaemonStopper;
use signals::WakePipe;

use luapool_supervisor::Pool;

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
    /// The event loop or a call thread could not be set up.
    #[error("cannot start the daemon: {0}")]
    Start(std::io::Error),
}

/// Options of a [`Daemon`]; see [`Daemon::builder`].
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    socket: PathBuf,
    operator_socket: Option<PathBuf>,
    tcp: Option<(SocketAddr, String)>,
    metrics: Option<SocketAddr>,
    grace: Duration,
    limits: DaemonLimits,
    signals: bool,
}

impl DaemonBuilder {
    /// Also listen on a loopback TCP address; clients must first call
    /// `auth` with `token`. Port 0 picks a free port ([`Daemon::tcp_addr`]).
    pub fn tcp(mut self, addr: SocketAddr, token: impl Into<String>) -> Self {
        self.tcp = Some((addr, token.into()));
        self
    }
    /// Also serve the operator's figures in Prometheus' text format at
    /// `http://ADDR/metrics`, on a loopback address only (port 0 picks a
    /// free port: [`Daemon::metrics_addr`]). No token: anyone on the
    /// machine who can reach the port reads the daemon-wide figures.
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }
    /// How long running computes may take to finish at shutdown before they
    /// are cancelled (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    /// Also listen on a second Unix socket (mode 0600) for the operator:
    /// `stats` there covers the whole daemon, where other connections see
    /// only their own sessions.
    pub fn operator_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.operator_socket = Some(path.into());
        self
    }
    /// The daemon's bounds (default [`DaemonLimits::default`]).
    pub fn limits(mut self, limits: DaemonLimits) -> Self {
        self.limits = limits;
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
        let metrics = self.metrics.map(bind_tcp).transpose()?;
        let wake = WakePipe::new().map_err(DaemonError::Signals)?;
        let unix = UnixSocket::bind(&self.socket)?;
        let operator = match &self.operator_socket {
            Some(p) => Some(UnixSocket::bind(p)?),
            None => None,
        };
        Ok(Daemon {
            unix,
            operator,
            tcp,
            metrics,
            wake,
            options: self,
        })
    }
}

/// A bound daemon; [`run`](Daemon::run) serves a pool until stopped.
pub struct Daemon {
    unix: UnixSocket,
    operator: Option<UnixSocket>,
    tcp: Option<(TcpListener, String)>,
    metrics: Option<TcpListener>,
    wake: WakePipe,
    options: DaemonBuilder,
}

impl Daemon {
    /// A builder for a daemon on the Unix socket `socket`.
    pub fn builder(socket: impl Into<PathBuf>) -> DaemonBuilder {
        DaemonBuilder {
            socket: socket.into(),
            operator_socket: None,
            tcp: None,
            metrics: None,
            grace: Duration::from_secs(10),
            limits: DaemonLimits::default(),
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

    /// The metrics address actually bound, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A handle that shuts the daemon down as SIGTERM does.
    pub fn stopper(&self) -> DaemonStopper {
        self.wake.stopper()
    }

    /// Serves `pool` until SIGTERM/SIGINT (if handled) or a [`DaemonStopper`],
    /// then shuts down gracefully, removes the socket files and stops the pool.
    pub fn run(self, pool: Arc<Pool>) -> Result<(), DaemonError> {
        if self.options.signals {
            self.wake
                .install_signal_handlers()
                .map_err(DaemonError::Signals)?;
        }
        raise_fd_limit();
        let poll = mio::Poll::new().map_err(DaemonError::Start)?;
        let waker = mio::Waker::new(poll.registry(), WAKE).map_err(DaemonError::Start)?;
        let (calls, jobs) = crossbeam_channel::unbounded::<CallJob>();
        let Daemon {
            unix,
            operator,
            tcp,
            metrics,
            wake,
            options,
        } = self;
        let (tcp, token) = match tcp {
            Some((l, t)) => (Some(l), Some(t)),
            None => (None, None),
        };
        let threads = options.limits.call_threads.max(1);
        let shared = Arc::new(Shared::new(
            pool.clone(),
            options.limits.clone(),
            token,
            calls,
            waker,
        ));
        let metrics = match metrics {
            Some(l) => Some(MetricsServer::start(l, shared.clone()).map_err(DaemonError::Start)?),
            None => None,
        };
        let mut call_threads = Vec::new();
        for i in 0..threads {
            let (jobs, thread_shared) = (jobs.clone(), shared.clone());
            let t = std::thread::Builder::new()
                .name(format!("luapool-calls-{i}"))
                .stack_size(8 << 20)
                .spawn(move || loop {
                    match jobs.recv() {
                        Ok(CallJob::Session(session, call)) => {
                            session.run_call(call);
                            session.run(true);
                        }
                        Ok(CallJob::Home(job)) => homes::run(&thread_shared, job),
                        Ok(CallJob::Load(job)) => scripts::run(&thread_shared, job),
                        Ok(CallJob::Stop) | Err(_) => break,
                    }
                })
                .map_err(DaemonError::Start)?;
            call_threads.push(t);
        }
        let listeners = Listeners {
            unix,
            operator,
            tcp,
        };
        let event_loop = EventLoop::new(poll, shared.clone(), listeners, wake, options.grace)
            .map_err(DaemonError::Start)?;
        event_loop.run();
        if let Some(m) = metrics {
            m.stop();
        }
        for _ in &call_threads {
            let _ = shared.calls.send(CallJob::Stop);
        }
        for t in call_threads {
            let _ = t.join();
        }
        pool.shutdown();
        Ok(())
    }
}

/// Raises the soft limit on open files to the hard one: each connection is
/// a descriptor, and the `connections` bound is the daemon's own.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the live struct above.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
