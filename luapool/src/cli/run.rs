//! `luapool run SCRIPT.lua`: an embedded supervisor for one script.

use std::process::ExitCode;

use clap::Args;

use super::limits::LimitArgs;
use super::script::{self, ScriptArgs};
use luapool_supervisor::{ComputeOptions, Pool};

/// Arguments of `luapool run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// Worker processes to start.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Runs the script; exit 0 on success, 1 if the compute failed, 2 on bad usage or input.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let job = args.script.load()?;
    let limits = args.limits.limits()?;

    let pool = Pool::builder()
        .workers(args.workers)
        .limits(limits)
        .build()?;
    let session = pool.session();
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
        Ok(out) => args.script.print(out.values, || Ok(session.get_output()?)),
        Err(e) => Ok(script::failed(&e)),
    }
}
