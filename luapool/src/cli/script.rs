//! What `luapool run` and `luapool call` share: the script and its input
//! ([`ScriptArgs`]), reading them, and printing the result with the same
//! output and exit codes: `_io.output` (or `--return`: the return values)
//! as JSON on stdout and 0; a failed compute as one line on stderr and 1;
//! bad usage, a missing file or bad JSON as one line and 2 (`main`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use luapool_supervisor::{ComputeError, HostValue};

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
    /// The most MiB the output may take, as JSON text and while it is
    /// converted (0 = no limit). A table stored many times counts each time
    /// it is printed; past the limit the run fails with "output too large".
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub max_output: u64,
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
    /// `--return`, else `_io.output` (read by `output`), as JSON within
    /// `--max-output`. Exit 0; 1 if the output cannot be read or is too
    /// large.
    pub fn print<E: std::fmt::Display>(
        &self,
        mut values: Vec<HostValue>,
        output: impl FnOnce() -> Result<HostValue, E>,
    ) -> anyhow::Result<ExitCode> {
        let value = if self.print_return {
            match values.len() {
                0 => HostValue::Nil,
                1 => values.pop().expect("one value"),
                _ => HostValue::Array(values),
            }
        } else {
            match output() {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("luapool: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        };
        let mut text = Bounded::new(self.max_output.saturating_mul(1 << 20));
        let written = if self.compact {
            serde_json::to_writer(&mut text, &value.json())
        } else {
            serde_json::to_writer_pretty(&mut text, &value.json())
        };
        if written.is_err() && text.over {
            eprintln!(
                "luapool: output too large: the JSON text would exceed --max-output ({} MiB)",
                self.max_output
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

/// The bytes of a file, or of standard input for `-`.
pub(super) fn read_bytes(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("cannot read standard input")?;
        return Ok(b);
    }
    std::fs::read(path).with_context(|| format!("cannot read {path}"))
}

/// JSON from a file, or standard input for `-`. Numbers keep their digits
/// (an integer beyond 64 bits loads as a big integer).
pub(super) fn read_json(path: &str) -> anyhow::Result<Value> {
    let bytes = read_bytes(path)?;
    serde_json::from_slice(&bytes).with_context(|| format!("{path} is not valid JSON"))
}
