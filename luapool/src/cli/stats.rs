//! `luapool stats --socket PATH`: a running daemon's `stats`, for people
//! (or `--json`, the value as the daemon sends it).

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::call::connect;
use luapool_client::{Stats, StatsScope};
use luapool_supervisor::{Latency, WorkerState};

/// Arguments of `luapool stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The daemon's operator socket (`luapool serve --operator-socket
    /// PATH`) for the whole daemon; on its client socket a connection sees
    /// only its own figures, which for this new connection are empty.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Print the raw value as JSON (the fields of docs/protocol.md, `stats`).
    #[arg(long)]
    json: bool,
}

/// Prints the stats; exit 0, or 2 if the daemon cannot be reached.
pub fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let stats = connect(&args.socket)?.stats()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", human(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

/// Microseconds the way people read them.
fn duration(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn latency(l: &Latency) -> String {
    if l.count == 0 {
        return "no computes yet".into();
    }
    format!(
        "p50 {}, p90 {}, p99 {} ({} computes)",
        duration(l.p50_us),
        duration(l.p90_us),
        duration(l.p99_us),
        l.count
    )
}

/// The stats as lines of `label: value`.
fn human(s: &Stats) -> String {
    let mut o = String::new();
    let scope = match s.scope {
        StatsScope::Daemon => "the whole daemon",
        StatsScope::Connection => {
            "this connection only (the operator socket shows the whole daemon)"
        }
    };
    let _ = writeln!(o, "scope:        {scope}");
    let guard = if s.crash_loop {
        ", crash-looped: no longer respawning"
    } else {
        ""
    };
    let _ = writeln!(o, "workers:      {} alive of {}{guard}", s.alive, s.workers);
    for (i, w) in s.worker_states.iter().flatten().enumerate() {
        let what = match w {
            WorkerState::Running { for_ms } => format!("running for {}", duration(for_ms * 1000)),
            other => other.name().replace('_', "-"),
        };
        let _ = writeln!(o, "  worker {i}:   {what}");
    }
    if let Some(n) = s.connections {
        let _ = writeln!(o, "connections:  {n}");
    }
    let _ = writeln!(o, "sessions:     {}", s.sessions);
    let _ = writeln!(o, "calls queued: {}", s.queued_calls);
    if let (Some(done), Some(queued), Some(restarts)) = (s.computes, s.queued, s.restarts) {
        let _ = writeln!(
            o,
            "computes:     {done} finished, {queued} waiting for a worker; {restarts} workers replaced"
        );
    }
    let _ = writeln!(o, "wait:         {}", latency(&s.wait));
    let _ = writeln!(o, "run:          {}", latency(&s.run));
    let errors: Vec<String> = s
        .errors
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let errors = if errors.is_empty() {
        "none".to_string()
    } else {
        errors.join(", ")
    };
    let _ = writeln!(o, "errors:       {errors}");
    let _ = writeln!(
        o,
        "store:        {} bytes in {} tables, {} arenas",
        s.store.bytes, s.store.tables, s.store.arenas
    );
    o
}
