//! `luapool home list|export|import|drop --data DIR`: managing the homes of
//! a data directory that no daemon holds (a running daemon has the same
//! methods on its socket).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use luapool_protocol::api::to_msgpack;
use luapool_supervisor::{HomeLimits, Homes, HostValue};

/// Arguments of `luapool home`.
#[derive(Args, Debug)]
pub struct HomeArgs {
    /// The data directory (as given to `luapool serve --data`).
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: HomeCommand,
}

#[derive(Subcommand, Debug)]
enum HomeCommand {
    /// List the homes: name and bytes, one per line.
    List,
    /// Print a home as JSON (its root table as an object). JSON has no
    /// functions and no big-integer type: a function stored in the home is
    /// printed as its source text (a string), a big integer as a plain
    /// integer; use --msgpack for a copy that imports back exactly.
    Export {
        /// The home.
        name: String,
        /// Print compact JSON on one line.
        #[arg(long)]
        compact: bool,
        /// Write MessagePack instead of JSON (exact: big integers and
        /// functions are ext types 1 and 2, strings keep their bytes).
        #[arg(long, conflicts_with = "compact")]
        msgpack: bool,
    },
    /// Replace a home (created if new) with a JSON object or array.
    Import {
        /// The home.
        name: String,
        /// The JSON file (`-` reads standard input).
        file: String,
        /// Read MessagePack (as `export --msgpack` writes it) instead of JSON.
        #[arg(long)]
        msgpack: bool,
    },
    /// Delete a home.
    Drop {
        /// The home.
        name: String,
    },
}

/// Runs the command; exit 1 if the home does not exist, 2 on bad usage.
pub fn home(args: HomeArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data.context("--data DIR is required")?;
    let limits = HomeLimits {
        quota: 0,
        max_homes: 0,
        homes_bytes: 0,
        idle_homes_bytes: 0,
        max_output_bytes: 0,
    };
    let homes = Homes::open(&dir, limits)?;
    match args.command {
        HomeCommand::List => {
            let mut out = std::io::stdout().lock();
            for h in homes.list()? {
                writeln!(out, "{}\t{}", h.name, h.bytes)?;
            }
        }
        HomeCommand::Export {
            name,
            compact,
            msgpack,
        } => {
            let v = match homes.export(&name) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("luapool: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let mut out = std::io::stdout().lock();
            if msgpack {
                out.write_all(&to_msgpack(&v)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            if compact {
                serde_json::to_writer(&mut out, &v.json())?;
            } else {
                serde_json::to_writer_pretty(&mut out, &v.json())?;
            }
            writeln!(out)?;
        }
        HomeCommand::Import {
            name,
            file,
            msgpack: true,
        } => {
            let bytes = super::script::read_bytes(&file)?;
            let v: HostValue = luapool_protocol::decode(&bytes)
                .with_context(|| format!("{file} is not a MessagePack value"))?;
            homes.import(&name, &v)?;
        }
        HomeCommand::Import { name, file, .. } => {
            let json = super::script::read_json(&file)?;
            homes.import(&name, &HostValue::from_json(json))?;
        }
        HomeCommand::Drop { name } => {
            if !homes.drop_home(&name)? {
                eprintln!("luapool: no home named {name:?}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
