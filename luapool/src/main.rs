//! `luapool`: run untrusted Lua 5.4 against large data, in isolated worker
//! processes. Thin: parses arguments and calls the libraries.
//!
//! Where things are: `cli/` has one file per command (`run.rs`, `serve.rs`,
//! `call.rs`, `stats.rs`, `home.rs`), what `run` and `call` share
//! (`script.rs`: the script, its input, printing the result), the compute
//! limits both take (`limits.rs`) and log set-up (`log.rs`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::log::init();
    match cli::main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("luapool: {e:#}");
            ExitCode::from(2)
        }
    }
}
