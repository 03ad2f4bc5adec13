//! `luapool run SCRIPT.lua`: an embedded supervisor for one script.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::limits::LimitArgs;
use super::script::{self, ScriptArgs};
use luapool_supervisor::{ComputeOptions, Pool};

/// Arguments of `luapool run`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("home_storage").args(["data", "home_store"])))]
pub struct RunArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// Worker processes to start.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    #[command(flatten)]
    limits: LimitArgs,
    /// Keep named homes in this data directory (the one `luapool serve
    /// --data` uses; not while a daemon holds it). With --home, `_home` is
    /// that durable home: what the script writes there is on disk when the
    /// run ends, and a failed run writes nothing.
    #[arg(
        long,
        value_name = "DIR",
        requires = "home",
        conflicts_with = "home_store"
    )]
    data: Option<PathBuf>,
    /// Keep named homes in this PostgreSQL database instead (the one
    /// `luapool serve --home-store` uses; daemons may use it meanwhile).
    #[arg(long, value_name = "URL", requires = "home")]
    home_store: Option<String>,
    /// The home the script's `_home` is (needs --data or --home-store);
    /// without it `_home` is private to this run and is gone when it ends.
    #[arg(long, value_name = "NAME", requires = "home_storage")]
    home: Option<String>,
}

/// Runs the script; exit 0 on success, 1 if the compute failed, 2 on bad usage or input.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let job = args.script.load()?;
    let limits = args.limits.limits()?;

    let mut pool = Pool::builder()
        .workers(args.workers)
        .limits(limits)
        .max_output_bytes(args.script.max_output.saturating_mul(1 << 20));
    if let Some(dir) = &args.data {
        pool = pool.data_dir(dir);
    }
    if let Some(url) = &args.home_store {
        pool = pool.home_store(url);
    }
    let pool = pool.build()?;
    let session = match &args.home {
        Some(name) => pool.session_with_home(name)?,
        None => pool.session(),
    };
    if let Some(input) = &job.input {
        session.set_input(input)?;
    }
    if let Some(meta) = &job.meta {
        session.set_metadata(meta)?;
    }
    let opts = ComputeOptions {
        on_log: Some(Box::new(script::print_line)),
        chunk_name: Some(job.chunk_name),
        ..ComputeOptions::default()
    };
    match session.compute_with(&job.code, opts) {
        Ok(out) => args.script.print(out.values, || session.get_output()),
        Err(e) => Ok(script::failed(&e)),
    }
}
