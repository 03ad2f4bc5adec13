//! `luapool serve --socket PATH`: the daemon. Thin: checks arguments, binds
//! (before starting workers, so a second daemon fails fast), builds the pool
//! and runs [`Daemon`] until SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;

use super::limits::LimitArgs;
use luapool_daemon::{Daemon, DaemonLimits};
use luapool_supervisor::{Limits, Pool};

/// Arguments of `luapool serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The Unix socket to listen on (created mode 0600; a stale one is replaced).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Worker processes (default: one per CPU).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Computes that may wait for a worker before `Busy`.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    queue: usize,
    #[command(flatten)]
    limits: LimitArgs,
    /// Also listen on this loopback TCP address (e.g. 127.0.0.1:7070); needs --token.
    #[arg(long, value_name = "ADDR", requires = "token")]
    tcp: Option<SocketAddr>,
    /// The token TCP clients must send with `auth` before anything else.
    #[arg(long, value_name = "TOKEN", requires = "tcp")]
    token: Option<String>,
    /// The most MiB one reply's data may take (`get_output`,
    /// `get_output_field`, a compute's return values); a table stored many
    /// times counts each time it is sent. Past it the call fails with
    /// `OutputTooLarge` and nothing stored changes (0 = no limit).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    max_output: u64,
    /// Keep every named home in this directory (created if missing): homes
    /// survive a restart or a crash, and a compute's reply is sent once its
    /// home writes are on disk. Without it, homes live as long as the
    /// daemon. A directory another daemon holds is refused.
    #[arg(long, value_name = "DIR", conflicts_with = "home_store")]
    data: Option<PathBuf>,
    /// Keep every named home in this PostgreSQL database instead
    /// (postgres://USER[:PASSWORD]@HOST[:PORT]/DB, or a Unix socket's
    /// directory percent-encoded in place of HOST), shared with every
    /// daemon given the same URL: a compute's reply is sent once its home
    /// writes are committed there, computes that share a home are
    /// serializable across daemons, and a home cached here is checked
    /// against the database before each use (docs/deploy.md). The tables
    /// are created if the database has none.
    #[arg(long, value_name = "URL")]
    home_store: Option<String>,
    /// With --home-store: how many times a compute runs again when another
    /// daemon committed to its home while it ran, before it fails with
    /// `Conflict`.
    #[arg(long, default_value_t = 10, value_name = "N")]
    conflict_retries: u32,
    /// With --home-store: the most connections to the database (0: twice
    /// the workers plus 4).
    #[arg(long, default_value_t = 0, value_name = "N")]
    home_store_connections: usize,
    /// With --data or --home-store: MiB of homes that no session holds kept in memory as a
    /// cache (the least recently used leave first).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    idle_homes: u64,
    /// The most named homes (0 = no limit).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_homes: usize,
    /// The most MiB all homes in memory may take together (0 = no limit);
    /// a write past it is QuotaExceeded.
    #[arg(long, default_value_t = 4096, value_name = "MIB")]
    homes_memory: u64,
    /// The most scripts loaded at once (`script.load`), all connections
    /// together; the same code loaded twice is one (0 = no limit).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_scripts: usize,
    /// The most MiB of code of the scripts loaded at once (0 = no limit).
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    max_script_mib: u64,
    /// Seconds running computes get to finish on SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    grace: f64,
    /// A second Unix socket for the operator (mode 0600): `stats` there
    /// covers the whole daemon; other clients see only their own sessions.
    #[arg(long, value_name = "PATH")]
    operator_socket: Option<PathBuf>,
    /// Serve the operator's figures (the operator socket's `stats`) in
    /// Prometheus' text format at http://ADDR/metrics, on a loopback
    /// address only (e.g. 127.0.0.1:9090; port 0 picks one). No token:
    /// anyone on this machine who can reach the port may read them.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    bounds: BoundArgs,
}

/// The daemon's bounds (docs/faults.md, "Limits of the daemon").
#[derive(Args, Debug)]
struct BoundArgs {
    /// Client connections open at once; one more is refused (`LimitReached`).
    #[arg(long, default_value_t = DaemonLimits::default().connections, value_name = "N")]
    max_connections: usize,
    /// Sessions open in the whole daemon.
    #[arg(long, default_value_t = DaemonLimits::default().sessions, value_name = "N")]
    max_sessions: usize,
    /// Sessions open on one connection.
    #[arg(long, default_value_t = DaemonLimits::default().sessions_per_connection, value_name = "N")]
    max_sessions_per_connection: usize,
    /// Scripts one connection may have loaded (`script.load`).
    #[arg(long, default_value_t = DaemonLimits::default().scripts_per_connection, value_name = "N")]
    max_scripts_per_connection: usize,
    /// Calls waiting in one session's queue, and home calls waiting on one
    /// connection; one more is `Busy`.
    #[arg(long, default_value_t = DaemonLimits::default().queued_calls, value_name = "N")]
    max_queued_calls: usize,
    /// MiB of requests waiting in one session's queue; one more is `Busy`.
    #[arg(long, default_value_t = DaemonLimits::default().queued_bytes >> 20, value_name = "MIB")]
    max_queued_mib: usize,
    /// MiB of responses waiting for a client that does not read: past it,
    /// its requests wait and its log lines are dropped until it reads.
    #[arg(long, default_value_t = DaemonLimits::default().unsent_bytes >> 20, value_name = "MIB")]
    max_unsent_mib: usize,
    /// MiB of requests held for all clients together; past it, reading pauses.
    #[arg(long, default_value_t = DaemonLimits::default().buffered_bytes >> 20, value_name = "MIB")]
    max_buffered_mib: usize,
    /// MiB of responses waiting for all clients together; past it, a
    /// client with anything unsent starts no call until it reads.
    #[arg(long, default_value_t = DaemonLimits::default().unsent_total_bytes >> 20, value_name = "MIB")]
    max_unsent_total_mib: usize,
    /// MiB of the largest request; a larger one closes its connection.
    #[arg(long, default_value_t = DaemonLimits::default().max_frame >> 20, value_name = "MIB")]
    max_frame_mib: usize,
    /// Bytes a TCP client may send before `auth`.
    #[arg(long, default_value_t = DaemonLimits::default().unauthenticated_bytes, value_name = "BYTES")]
    max_auth_bytes: usize,
    /// Threads that run session calls other than computes, the home
    /// methods and `script.load`.
    #[arg(long, default_value_t = DaemonLimits::default().call_threads, value_name = "N")]
    call_threads: usize,
    /// The longest wall-clock limit a compute may ask for, in seconds
    /// (default: --timeout).
    #[arg(long, value_name = "SECONDS")]
    max_timeout: Option<f64>,
    /// The longest CPU-time limit a compute may ask for, in seconds; 0 lets
    /// a compute run without one (default: --cpu-time).
    #[arg(long, value_name = "SECONDS")]
    max_cpu_time: Option<f64>,
    /// The largest instruction budget a compute may ask for; 0 lets a
    /// compute run without one (default: --instructions).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// The largest Lua heap a compute may ask for, in MiB; 0 lets a compute
    /// run without one (default: --memory).
    #[arg(long, value_name = "MIB")]
    max_memory: Option<u64>,
}

impl BoundArgs {
    /// The bounds; the compute maxima default to the compute defaults.
    fn limits(&self, defaults: &Limits) -> anyhow::Result<DaemonLimits> {
        let max_timeout = match self.max_timeout {
            Some(s) => Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| anyhow!("--max-timeout must be a positive number of seconds"))?,
            None => defaults.timeout,
        };
        let max_cpu_time = match self.max_cpu_time {
            // 0 gives Duration::ZERO: none.
            Some(s) => Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow!("--max-cpu-time must be a number of seconds (0: none)"))?,
            None => defaults.cpu_time,
        };
        let maxima = Limits {
            timeout: max_timeout,
            cpu_time: max_cpu_time,
            instructions: self.max_instructions.unwrap_or(defaults.instructions),
            memory: self.max_memory.map_or(defaults.memory, |m| m << 20),
        };
        let within = |d: u64, m: u64| m == 0 || (d != 0 && d <= m);
        let ms = |d: Duration| d.as_millis() as u64;
        if defaults.timeout > maxima.timeout
            || !within(ms(defaults.cpu_time), ms(maxima.cpu_time))
            || !within(defaults.instructions, maxima.instructions)
            || !within(defaults.memory, maxima.memory)
        {
            return Err(anyhow!(
                "the default compute limits (--timeout, --cpu-time, --instructions, --memory) must be within the maxima (--max-*)"
            ));
        }
        Ok(DaemonLimits {
            connections: self.max_connections,
            sessions: self.max_sessions,
            sessions_per_connection: self.max_sessions_per_connection,
            scripts_per_connection: self.max_scripts_per_connection,
            queued_calls: self.max_queued_calls,
            queued_bytes: self.max_queued_mib << 20,
            unsent_bytes: self.max_unsent_mib << 20,
            buffered_bytes: self.max_buffered_mib << 20,
            unsent_total_bytes: self.max_unsent_total_mib << 20,
            max_frame: self.max_frame_mib << 20,
            unauthenticated_bytes: self.max_auth_bytes,
            call_threads: self.call_threads.max(1),
            compute_maxima: maxima,
        })
    }
}

/// Serves until SIGTERM/SIGINT; exit 0 after a clean shutdown.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = args.limits.limits()?;
    let grace = Duration::try_from_secs_f64(args.grace)
        .map_err(|_| anyhow!("--grace must be a number of seconds"))?;
    let bounds = args.bounds.limits(&limits)?;
    let mut daemon = Daemon::builder(&args.socket).grace(grace).limits(bounds);
    if let Some(p) = &args.operator_socket {
        daemon = daemon.operator_socket(p);
    }
    if let (Some(addr), Some(token)) = (args.tcp, args.token) {
        daemon = daemon.tcp(addr, token);
    }
    if let Some(addr) = args.metrics {
        daemon = daemon.metrics(addr);
    }
    let daemon = daemon.bind()?;
    if daemon.removed_stale_socket() {
        tracing::info!(
            "removed stale socket file {} (no daemon was listening)",
            args.socket.display()
        );
    }
    let mut pool = Pool::builder()
        .queue(args.queue)
        .limits(limits)
        .max_output_bytes(args.max_output.saturating_mul(1 << 20))
        .max_homes(args.max_homes)
        .homes_bytes(args.homes_memory.saturating_mul(1 << 20))
        .idle_homes_bytes(args.idle_homes.saturating_mul(1 << 20))
        .max_scripts(
            args.max_scripts,
            args.max_script_mib.saturating_mul(1 << 20),
        );
    if let Some(dir) = &args.data {
        pool = pool.data_dir(dir);
    }
    if let Some(url) = &args.home_store {
        pool = pool
            .home_store(url)
            .conflict_retries(args.conflict_retries)
            .home_store_connections(args.home_store_connections);
    }
    if let Some(n) = args.workers {
        pool = pool.workers(n);
    }
    let pool = pool.build().context("cannot start the pool")?;
    let workers = pool.stats().workers;
    if let Some(dir) = &args.data {
        tracing::info!("homes kept in {}", dir.display());
    }
    if args.home_store.is_some() {
        tracing::info!("homes kept in PostgreSQL, shared");
    }
    if let Some(addr) = daemon.tcp_addr() {
        tracing::info!("listening on tcp {addr}");
    }
    if let Some(addr) = daemon.metrics_addr() {
        tracing::info!("metrics at http://{addr}/metrics");
    }
    // Last: clients (and tests) wait for this line.
    tracing::info!(
        "listening on {} ({workers} workers)",
        daemon.socket_path().display()
    );
    daemon.run(pool)?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
