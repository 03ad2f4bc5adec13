//! The command line: `luapool run`, `luapool serve`, `luapool bench`.

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
    Run(run::RunArgs),
    /// Serve a pool to clients over a Unix socket (MessagePack-RPC; see docs/protocol.md).
    Serve(serve::ServeArgs),
}

/// Runs the chosen command; the exit code says how it went.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::serve(args),
    }
}
