//! `luapool`: run untrusted Lua 5.4 against large data, in isolated worker
//! processes. Thin: parses arguments and calls the library.

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
