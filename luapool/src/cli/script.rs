//! What `luapool run` and `luapool call` share: the script and its input
//! ([`ScriptArgs`]), reading them, and printing the result with the same
//! output and exit codes: `_io.output` (or `--return`: the return values)
//! as JSON on stdout and 0; a failed compute as one line on stderr and 1;
//! bad usage, a missing file or bad JSON as one line and 2 (`main`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use luapool_supervisor::{from_host, ComputeError, HostValue};

/// The script to run and what it reads.
#[derive(Args, Debug)]
pub struct ScriptArgs {
    /// The Lua script to run.
    script: PathBuf,
    /// JSON file to set as `_io.input` (`-` reads standard input).
    #[arg(long, value_name = "FILE.json|-")]
    input: Option<String>,
    /// JSON file to set as `_io.meta`.
    #[arg(long, value_name = "FILE.json")]
    meta: Option<PathBuf>,
    /// Print the script's return value(s) as JSON instead of `_io.output`:
    /// one value as itself, several as an array, none as null.
    #[arg(long = "return")]
    print_return: bool,
    /// Print the output as compact JSON on one line.
    #[arg(long)]
    compact: bool,
}

/// A script read from disk with its input, ready to run.
pub struct Job {
    /// The script's text.
    pub code: String,
    /// `_io.input`, if given.
    pub input: Option<Value>,
    /// `_io.meta`, if given.
    pub meta: Option<Value>,
    /// `@FILE.lua`: errors read `FILE.lua:LINE: message`.
    pub chunk_name: String,
}

impl ScriptArgs {
    /// Reads the script and its JSON files (any failure: exit 2).
    pub fn load(&self) -> anyhow::Result<Job> {
        let code = std::fs::read_to_string(&self.script)
            .with_context(|| format!("cannot read {}", self.script.display()))?;
        let input = self.input.as_deref().map(read_json).transpose()?;
        let meta = self
            .meta
            .as_ref()
            .map(|p| read_json(&p.to_string_lossy()))
            .transpose()?;
        let name = self
            .script
            .file_name()
            .map_or_else(|| "script".into(), |n| n.to_string_lossy().into_owned());
        Ok(Job {
            code,
            input,
            meta,
            chunk_name: format!("@{name}"),
        })
    }

    /// Prints what a successful compute produced: its return `values` with
    /// `--return`, else `_io.output` (read by `output`). Exit 0.
    pub fn print(
        &self,
        mut values: Vec<HostValue>,
        output: impl FnOnce() -> anyhow::Result<Value>,
    ) -> anyhow::Result<ExitCode> {
        let json: Value = if self.print_return {
            match values.len() {
                0 => Value::Null,
                1 => from_host(values.pop().expect("one value"))?,
                _ => from_host(HostValue::Array(values))?,
            }
        } else {
            output()?
        };
        let text = if self.compact {
            serde_json::to_string(&json)?
        } else {
            serde_json::to_string_pretty(&json)?
        };
        println!("{text}");
        Ok(ExitCode::SUCCESS)
    }
}

/// A `print` line of the script, as it comes: on stderr.
pub fn print_line(line: &str) {
    eprintln!("{line}");
}

/// A failed compute: one line on stderr (Lua errors keep their
/// `FILE.lua:LINE:` prefix), exit 1.
pub fn failed(e: &ComputeError) -> ExitCode {
    let line = match e {
        ComputeError::LuaError { message, .. } => message.lines().next().unwrap_or("").to_string(),
        other => other.to_string(),
    };
    eprintln!("luapool: {line}");
    ExitCode::from(1)
}

fn read_json(path: &str) -> anyhow::Result<Value> {
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
