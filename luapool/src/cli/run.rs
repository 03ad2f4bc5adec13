//! `luapool run SCRIPT.lua`: an embedded supervisor for one script.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::limits::LimitArgs;
use luapool_supervisor::{ComputeError, ComputeOptions, HostValue, Pool};

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
    /// The most MiB the output may take, as JSON text and while it is
    /// converted (0 = no limit). A table stored many times counts each time
    /// it is printed; past the limit the run fails with "output too large".
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    max_output: u64,
    /// Keep named homes in this data directory (the one `luapool serve
    /// --data` uses; not while a daemon holds it). With --home, `_home` is
    /// that durable home: what the script writes there is on disk when the
    /// run ends, and a failed run writes nothing.
    #[arg(long, value_name = "DIR", requires = "home")]
    data: Option<PathBuf>,
    /// The home the script's `_home` is (needs --data); without it `_home`
    /// is private to this run and is gone when it ends.
    #[arg(long, value_name = "NAME", requires = "data")]
    home: Option<String>,
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

    let max_output = args.max_output.saturating_mul(1 << 20);
    let mut pool = Pool::builder()
        .workers(args.workers)
        .limits(limits)
        .max_output_bytes(max_output);
    if let Some(dir) = &args.data {
        pool = pool.data_dir(dir);
    }
    let pool = pool.build()?;
    let session = match &args.home {
        Some(name) => pool.session_with_home(name)?,
        None => pool.session(),
    };
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
    let value: HostValue = if args.print_return {
        let mut values = out.values;
        match values.len() {
            0 => HostValue::Nil,
            1 => values.pop().expect("one value"),
            _ => HostValue::Array(values),
        }
    } else {
        match session.get_output() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("luapool: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    };
    let mut text = Bounded::new(max_output);
    let written = if args.compact {
        serde_json::to_writer(&mut text, &value.json())
    } else {
        serde_json::to_writer_pretty(&mut text, &value.json())
    };
    if written.is_err() && text.over {
        eprintln!(
            "luapool: output too large: the JSON text would exceed --max-output ({} MiB)",
            args.max_output
        );
        return Ok(ExitCode::from(1));
    }
    written?;
    text.buf.push(b'\n');
    std::io::stdout()
        .write_all(&text.buf)
        .context("cannot write the output")?;
    Ok(ExitCode::SUCCESS)
}

/// A buffer that refuses to grow past `limit` bytes (0: no limit).
struct Bounded {
    buf: Vec<u8>,
    limit: u64,
    over: bool,
}

impl Bounded {
    fn new(limit: u64) -> Bounded {
        Bounded {
            buf: Vec::new(),
            limit,
            over: false,
        }
    }
}

impl Write for Bounded {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.limit != 0 && self.buf.len() as u64 + b.len() as u64 > self.limit {
            self.over = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// JSON from a file, or standard input for `-`.
pub(super) fn read_json(path: &str) -> anyhow::Result<serde_json::Value> {
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
