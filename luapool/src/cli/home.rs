//! `luapool home list|export|import|drop (--data DIR | --socket PATH |
//! --home-store URL)`: managing named homes, in a data directory that no
//! daemon holds (`--data`), through a running daemon's socket (`--socket`:
//! the `home.*` methods), or in a PostgreSQL home store, which daemons may
//! be using at the same time (`--home-store`). A directory a daemon holds
//! is refused with a line that says to use its socket.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use luapool_client::{Client, ClientError, ErrorKind};
use luapool_protocol::api::to_msgpack;
use luapool_supervisor::{HomeError, HomeInfo, HomeLimits, HomeStoreError, Homes, HostValue};

/// Arguments of `luapool home`.
#[derive(Args, Debug)]
pub struct HomeArgs {
    /// The data directory (as given to `luapool serve --data`), when no
    /// daemon runs on it.
    #[arg(long, value_name = "DIR", global = true, conflicts_with = "socket")]
    data: Option<PathBuf>,
    /// A running daemon's socket: its `--operator-socket` (needed for
    /// `list`), or its `--socket` (export, import, drop).
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "home_store"
    )]
    socket: Option<PathBuf>,
    /// The PostgreSQL home store (as given to `luapool serve
    /// --home-store`); running daemons may share it meanwhile.
    #[arg(long, value_name = "URL", global = true, conflicts_with = "data")]
    home_store: Option<String>,
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

/// Where the homes are: a data directory opened here, or a daemon.
enum Target {
    Dir(Box<Homes>),
    Daemon(Client),
}

/// Why an operation failed: no such home (exit 1), or anything else (2).
enum Failure {
    NotFound(String),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Other(e.into())
    }
}

impl Target {
    fn open(args: &HomeArgs) -> anyhow::Result<Target> {
        if let Some(socket) = &args.socket {
            return Ok(Target::Daemon(super::call::connect(socket)?));
        }
        let limits = HomeLimits {
            quota: 0,
            max_homes: 0,
            homes_bytes: 0,
            idle_homes_bytes: 0,
            max_output_bytes: 0,
        };
        if let Some(url) = &args.home_store {
            return Ok(Target::Dir(Box::new(Homes::open_store(url, limits)?)));
        }
        let Some(dir) = &args.data else {
            bail!(
                "--data DIR (a data directory), --socket PATH (a running daemon) \
                 or --home-store URL (a PostgreSQL home store) is required"
            );
        };
        match Homes::open(dir, limits) {
            Ok(h) => Ok(Target::Dir(Box::new(h))),
            Err(HomeError::Backend(HomeStoreError::InUse { pid, .. })) => {
                let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                bail!(
                    "{} is held by a running daemon{pid}; manage its homes through its socket: \
                     `luapool home list --socket PATH` with the daemon's --operator-socket \
                     (export, import and drop also take its --socket)",
                    dir.display()
                )
            }
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> Result<Vec<HomeInfo>, Failure> {
        Ok(match self {
            Target::Dir(h) => h.list()?,
            Target::Daemon(c) => c.list_homes()?,
        })
    }

    fn export(&self, name: &str) -> Result<HostValue, Failure> {
        match self {
            Target::Dir(h) => h.export(name).map_err(|e| match e {
                HomeError::NotFound { .. } => Failure::NotFound(e.to_string()),
                e => e.into(),
            }),
            Target::Daemon(c) => c.export_home(name).map_err(daemon_failure),
        }
    }

    fn import(&self, name: &str, value: &HostValue) -> Result<(), Failure> {
        match self {
            Target::Dir(h) => h.import(name, value)?,
            Target::Daemon(c) => c.import_home(name, value)?,
        }
        Ok(())
    }

    fn drop_home(&self, name: &str) -> Result<bool, Failure> {
        Ok(match self {
            Target::Dir(h) => h.drop_home(name)?,
            Target::Daemon(c) => c.drop_home(name)?,
        })
    }
}

fn daemon_failure(e: ClientError) -> Failure {
    match e.daemon_kind() {
        Some(ErrorKind::HomeNotFound) => Failure::NotFound(e.to_string()),
        _ => e.into(),
    }
}

/// Runs the command; exit 1 if the home does not exist, 2 on bad usage or
/// any other failure.
pub fn home(args: HomeArgs) -> anyhow::Result<ExitCode> {
    let target = Target::open(&args)?;
    match command(&target, args.command) {
        Ok(code) => Ok(code),
        Err(Failure::NotFound(why)) => {
            eprintln!("luapool: {why}");
            Ok(ExitCode::from(1))
        }
        Err(Failure::Other(e)) => Err(e),
    }
}

fn command(target: &Target, command: HomeCommand) -> Result<ExitCode, Failure> {
    match command {
        HomeCommand::List => {
            let mut out = std::io::stdout().lock();
            for h in target.list()? {
                writeln!(out, "{}\t{}", h.name, h.bytes)?;
            }
        }
        HomeCommand::Export {
            name,
            compact,
            msgpack,
        } => {
            let v = target.export(&name)?;
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
            target.import(&name, &v)?;
        }
        HomeCommand::Import { name, file, .. } => {
            let json = super::script::read_json(&file)?;
            target.import(&name, &HostValue::from_json(json))?;
        }
        HomeCommand::Drop { name } => {
            if !target.drop_home(&name)? {
                return Err(Failure::NotFound(format!("no home named {name:?}")));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
