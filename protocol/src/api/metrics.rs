//! What monitoring reads, the same in the embedded supervisor's `PoolStats`
//! and in the daemon's `stats` ([`crate::rpc::Stats`]): [`Latency`] (the
//! percentiles of a duration) and [`WorkerState`] (what one worker does).

use serde::{Deserialize, Serialize};

/// Percentiles of one duration over the computes that ran on a worker, read
/// from a fixed-size histogram of logarithmic buckets (eight per power of
/// two, from 1 µs to about 71 minutes). Each percentile is the upper edge
/// of its bucket: at most 12.5% above the true value, exact below 8 µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Computes measured.
    pub count: u64,
    /// The sum of all of them, in microseconds.
    pub sum_us: u64,
    /// Median, in microseconds.
    pub p50_us: u64,
    /// 90th percentile, in microseconds.
    pub p90_us: u64,
    /// 99th percentile, in microseconds.
    pub p99_us: u64,
}

/// What one worker of the pool is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WorkerState {
    /// Its process is being started (at start-up, or to replace one that
    /// ended).
    Starting,
    /// Waiting for a compute.
    Idle,
    /// Running a compute.
    Running {
        /// For how long so far, in milliseconds.
        for_ms: u64,
    },
    /// No process: the crash-loop guard stopped respawning workers.
    CrashLooped,
}

impl WorkerState {
    /// The state's name (`starting`, `idle`, `running`, `crash_looped`).
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Running { .. } => "running",
            WorkerState::CrashLooped => "crash_looped",
        }
    }

    /// Every state's name, in the order of [`name`](Self::name).
    pub const NAMES: [&'static str; 4] = ["starting", "idle", "running", "crash_looped"];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{from_host, to_host};

    #[test]
    fn worker_states_cross_the_wire_tagged_by_name() {
        for s in [
            WorkerState::Starting,
            WorkerState::Idle,
            WorkerState::Running { for_ms: 1234 },
            WorkerState::CrashLooped,
        ] {
            let v = to_host(&s).unwrap();
            assert_eq!(v.to_json()["state"], s.name(), "{v:?}");
            assert!(WorkerState::NAMES.contains(&s.name()));
            assert_eq!(from_host::<WorkerState>(v).unwrap(), s);
        }
    }
}
