//! The params and results of the socket methods that are not plain data:
//! [`ComputeOptions`] (the `compute` method's options map) and [`Stats`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{Latency, StoreStats, WorkerState};

/// The `compute` method's options map. Every key is optional (nil counts as
/// absent); an unknown key or a value of the wrong type is `BadRequest`.
/// The daemon refuses values above its operator maxima (`LimitReached`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeOptions {
    /// Wall-clock limit in milliseconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// CPU-time limit in milliseconds on the worker's own CPU clock; 0 =
    /// none (if the operator allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    /// Lua instruction budget; 0 = none (if the operator allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
    /// Lua heap limit in bytes; 0 = none (if the operator allows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The chunk name in error messages (default `=compute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_name: Option<String>,
    /// Whether printed lines are sent as `log` notifications (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_logs: Option<bool>,
}

/// Whose figures a [`Stats`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsScope {
    /// The whole daemon: an operator's connection.
    Daemon,
    /// The asking connection's own sessions: any other client.
    Connection,
}

/// The `stats` method's result. An operator's connection sees the whole
/// daemon; any other connection sees the pool's health and its own
/// sessions and computes, and the daemon-wide fields are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Whose figures these are.
    pub scope: StatsScope,
    /// Workers configured.
    pub workers: usize,
    /// Workers running now.
    pub alive: usize,
    /// True once the crash-loop guard stopped respawning workers.
    pub crash_loop: bool,
    /// Sessions open (daemon: all; connection: its own).
    pub sessions: usize,
    /// Calls waiting in sessions' queues (daemon: all; connection: its own).
    pub queued_calls: usize,
    /// Table store totals (daemon: the whole store; connection: its
    /// sessions' arenas, homes not included).
    pub store: StoreStats,
    /// How long computes waited, from their request being read until a
    /// worker started them (daemon: all computes; connection: its own).
    #[serde(default)]
    pub wait: Latency,
    /// How long computes ran on a worker (daemon: all; connection: its own).
    #[serde(default)]
    pub run: Latency,
    /// Error responses sent, by kind name; every kind, zeros included
    /// (daemon: to every client, and connections refused at the bound;
    /// connection: to this one).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// Daemon only: what each worker is doing, one entry per worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_states: Option<Vec<WorkerState>>,
    /// Daemon only: workers replaced since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// Daemon only: computes finished (any result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computes: Option<u64>,
    /// Daemon only: computes waiting for a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    /// Daemon only: client connections open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
}
