//! The compute limits `run` and `serve` both take.

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use luapool_supervisor::Limits;

/// Limits of each compute (a daemon's clients may lower them per call, and
/// raise them up to the `--max-*` maxima).
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Wall-clock limit per compute, in seconds; the worker is killed past it.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,
    /// CPU-time limit per compute, in seconds, on the worker's own CPU
    /// clock; `pcall` cannot catch it and it costs nothing per instruction
    /// (a timer). 0 = none (the wall-clock limit still holds).
    #[arg(long, default_value_t = Limits::default().cpu_time.as_secs_f64(), value_name = "SECONDS")]
    cpu_time: f64,
    /// Lua instruction budget per compute, for limits that do not depend on
    /// the machine's speed; `pcall` cannot catch it. Counting costs about a
    /// third of a tight loop's time. 0 = no budget and no counting.
    #[arg(long, default_value_t = Limits::default().instructions, value_name = "N")]
    instructions: u64,
    /// Memory limit per compute, in MiB: what it allocates above what its
    /// worker held when it started, Lua heap and the worker's buffers for
    /// it (0 = none).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    memory: u64,
}

impl LimitArgs {
    /// The limits, checked.
    pub fn limits(&self) -> anyhow::Result<Limits> {
        let cpu_time = if self.cpu_time == 0.0 {
            Duration::ZERO
        } else {
            seconds("cpu-time", self.cpu_time)?
        };
        Ok(Limits {
            timeout: seconds("timeout", self.timeout)?,
            cpu_time,
            instructions: self.instructions,
            memory: self.memory << 20,
        })
    }
}

/// A positive number of seconds given as option `--name`.
fn seconds(name: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow!("--{name} must be a positive number of seconds"))
}
