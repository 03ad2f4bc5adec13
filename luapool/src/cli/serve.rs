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
use luapool_daemon::Daemon;
use luapool_supervisor::Pool;

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
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// With --data: MiB of homes that no session holds kept in memory as a
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
    /// Seconds running computes get to finish on SIGTERM before they are cancelled.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    grace: f64,
}

/// Serves until SIGTERM/SIGINT; exit 0 after a clean shutdown.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = args.limits.limits()?;
    let grace = Duration::try_from_secs_f64(args.grace)
        .map_err(|_| anyhow!("--grace must be a number of seconds"))?;
    let mut daemon = Daemon::builder(&args.socket).grace(grace);
    if let (Some(addr), Some(token)) = (args.tcp, args.token) {
        daemon = daemon.tcp(addr, token);
    }
    let daemon = daemon.bind()?;
    if daemon.removed_stale_socket() {
        eprintln!(
            "luapool: removed stale socket file {} (no daemon was listening)",
            args.socket.display()
        );
    }
    let mut pool = Pool::builder()
        .queue(args.queue)
        .limits(limits)
        .max_output_bytes(args.max_output.saturating_mul(1 << 20))
        .max_homes(args.max_homes)
        .homes_bytes(args.homes_memory.saturating_mul(1 << 20))
        .idle_homes_bytes(args.idle_homes.saturating_mul(1 << 20));
    if let Some(dir) = &args.data {
        pool = pool.data_dir(dir);
    }
    if let Some(n) = args.workers {
        pool = pool.workers(n);
    }
    let pool = pool.build().context("cannot start the pool")?;
    let workers = pool.stats().workers;
    eprintln!(
        "luapool: listening on {} ({workers} workers)",
        daemon.socket_path().display()
    );
    if let Some(dir) = &args.data {
        eprintln!("luapool: homes kept in {}", dir.display());
    }
    if let Some(addr) = daemon.tcp_addr() {
        eprintln!("luapool: listening on tcp {addr}");
    }
    daemon.run(pool)?;
    eprintln!("luapool: stopped");
    Ok(ExitCode::SUCCESS)
}
