//! The command line: `luapool run` (embedded), `luapool serve` (the
//! daemon), and for a running daemon `luapool call` and `luapool stats`.

mod call;
mod home;
mod limits;
pub mod log;
mod run;
mod script;
mod serve;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run untrusted Lua 5.4 against large structured data in a pool of isolated
/// worker processes. Data stays in the supervisor; Lua reads it through
/// `_io.input`, writes `_io.output`, keeps state in `_home`.
#[derive(Parser, Debug)]
#[command(name = "luapool", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one Lua script against JSON input and print `_io.output` as JSON.
    ///
    /// Starts an embedded supervisor with N worker processes, sets
    /// `_io.input` (and `_io.meta`) from the JSON files, runs SCRIPT once and
    /// prints `_io.output` as JSON on standard output (with --return: the
    /// script's return values). The script's print() lines go to standard
    /// error as they are printed.
    ///
    /// Exit status: 0 on success; 1 if the compute failed (a Lua error, shown
    /// as one line `luapool: SCRIPT.lua:LINE: message`, or a limit, or a
    /// crash); 2 on bad usage, a missing file or bad JSON.
    Run(run::RunArgs),
    /// Serve a pool to clients over a Unix socket (MessagePack-RPC; see docs/protocol.md).
    ///
    /// Log lines go to standard error; `RUST_LOG` sets their levels
    /// (default `info`; e.g. `RUST_LOG=debug`, `RUST_LOG=warn`).
    Serve(Box<serve::ServeArgs>),
    /// Run one Lua script through a running daemon, as `luapool run` does.
    ///
    /// Connects to the daemon's socket, opens a session (on the home NAME
    /// with --home), sets `_io.input` (and `_io.meta`) from the JSON files,
    /// runs SCRIPT and prints `_io.output` as JSON on standard output (with
    /// --return: the script's return values). The script's print() lines go
    /// to standard error as they are printed. The daemon's limits apply.
    ///
    /// Exit status: 0 on success; 1 if the compute failed (a Lua error, shown
    /// as one line `luapool: SCRIPT.lua:LINE: message`, or a limit, or a
    /// crash); 2 on bad usage, a missing file, bad JSON, or when no daemon
    /// answers on the socket (one line says so) or it refuses the request.
    Call(call::CallArgs),
    /// Print a running daemon's figures: workers and what each does,
    /// sessions, queues, wait and run times (p50, p90, p99), errors by kind.
    ///
    /// On the operator socket (`luapool serve --operator-socket PATH`) they
    /// cover the whole daemon; on the client socket, only this connection's
    /// own. --json prints the value as the daemon sends it
    /// (docs/protocol.md, `stats`). Exit status 2 if no daemon answers.
    Stats(stats::StatsArgs),
    /// Manage named homes: list, export (JSON), import (JSON), drop.
    ///
    /// With --data DIR, in a data directory no daemon holds; with --socket
    /// PATH, through a running daemon (`list` needs its operator socket).
    /// Exit status 1 if the home does not exist, 2 on any other failure.
    Home(home::HomeArgs),
}

/// Runs the chosen command; the exit code says how it went.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(*args),
        Command::Call(args) => call::call(args),
        Command::Stats(args) => stats::stats(args),
        Command::Home(args) => home::home(args),
    }
}
