//! `luapool run SCRIPT.lua`: an embedded supervisor for one script.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::limits::LimitArgs;
use luapool_supervisor::{from_host, ComputeError, ComputeOptions, HostValue, Pool};

/// Arguments of `luapool run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The Lua script to run.
    script: PathBuf,
    /// JSON file to set as `_io.input` (`-` reads standard input).
    #[arg(long, value_name = "FILE.json|-")]
    input: Option<String>,
    /// JSON file to set as `_io.meta`.
    #[arg(long, value_name = "FILE.json")]
    meta: Option<PathBuf>,
    /// Worker processes to start.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    /// Print the script's return value(s) as JSON instead of `_io.output`.
    #[arg(long = "return")]
    print_return: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the output as compact JSON on one line.
    #[arg(long)]
    compact: bool,
}

/// Runs the script; exit 0 on success, 1 if the compute failed, 2 on bad usage or input.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let code = std::fs::read_to_string(&args.script)
        .with_context(|| format!("cannot read {}", args.script.display()))?;
    let input = args.input.as_deref().map(read_json).transpose()?;
    let meta = args
        .meta
        .as_ref()
        .map(|p| read_json(&p.to_string_lossy()))
        .transpose()?;
    let limits = args.limits.limits()?;

    let pool = Pool::builder()
        .workers(args.workers)
        .limits(limits)
        .build()?;
    let session = pool.session();
    if let Some(input) = &input {
        session.set_input(input)?;
    }
    if let Some(meta) = &meta {
        session.set_metadata(meta)?;
    }
    let name = args
        .script
        .file_name()
        .map_or_else(|| "script".into(), |n| n.to_string_lossy().into_owned());
    let opts = ComputeOptions {
        on_log: Some(Box::new(|line: &str| eprintln!("{line}"))),
        chunk_name: Some(format!("@{name}")),
        ..ComputeOptions::default()
    };
    let out = match session.compute_with(&code, opts) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("luapool: {}", one_line(&e));
            return Ok(ExitCode::from(1));
        }
    };
    let json: serde_json::Value = if args.print_return {
        let mut values = out.values;
        match values.len() {
            0 => serde_json::Value::Null,
            1 => from_host(values.pop().expect("one value"))?,
            _ => from_host(HostValue::Array(values))?,
        }
    } else {
        session.get_output()?
    };
    let text = if args.compact {
        serde_json::to_string(&json)?
    } else {
        serde_json::to_string_pretty(&json)?
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn read_json(path: &str) -> anyhow::Result<serde_json::Value> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("{path} is not valid JSON"))
}

/// The error as one line: Lua errors keep their `file:line:` prefix.
fn one_line(e: &ComputeError) -> String {
    match e {
        ComputeError::LuaError { message, .. } => message.lines().next().unwrap_or("").to_string(),
        other => other.to_string(),
    }
}
