//! The command line: `luapool run` and `luapool serve`.

mod home;
mod limits;
mod run;
mod serve;

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
    Serve(serve::ServeArgs),
    /// Manage the homes of a data directory: list, export (JSON), import
    /// (JSON), drop. Not while a daemon holds the directory: use its
    /// socket then.
    Home(home::HomeArgs),
}

/// Runs the chosen command; the exit code says how it went.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Home(args) => home::home(args),
    }
}
