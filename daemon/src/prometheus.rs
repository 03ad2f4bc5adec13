//! [`render`]: a [`Stats`] in Prometheus' text exposition format (0.0.4),
//! the body of `GET /metrics` (`metrics.rs`). Every figure of the
//! operator's `stats` is here under a `luapool_` name; docs/protocol.md
//! lists them.

use std::fmt::Write;

use luapool_protocol::api::{Latency, WorkerState};
use luapool_protocol::rpc::Stats;

/// The `Content-Type` of the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes one metric family: its help, its type and its samples
/// (`labels`, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn one(value: impl ToString) -> [(String, String); 1] {
    [(String::new(), value.to_string())]
}

fn seconds(us: u64) -> String {
    (us as f64 / 1e6).to_string()
}

/// A summary: its quantiles, `_sum` and `_count`.
fn summary(out: &mut String, name: &str, help: &str, l: &Latency) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} summary");
    for (q, us) in [("0.5", l.p50_us), ("0.9", l.p90_us), ("0.99", l.p99_us)] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", seconds(us));
    }
    let _ = writeln!(out, "{name}_sum {}", seconds(l.sum_us));
    let _ = writeln!(out, "{name}_count {}", l.count);
}

/// The text of `stats` (the daemon-wide figures; absent ones are left out).
pub(crate) fn render(s: &Stats) -> String {
    let mut out = String::new();
    let o = &mut out;
    family(
        o,
        "luapool_workers",
        "gauge",
        "Workers configured.",
        &one(s.workers),
    );
    family(
        o,
        "luapool_workers_alive",
        "gauge",
        "Workers running now.",
        &one(s.alive),
    );
    family(
        o,
        "luapool_crash_loop",
        "gauge",
        "1 once the crash-loop guard stopped respawning workers.",
        &one(u8::from(s.crash_loop)),
    );
    family(
        o,
        "luapool_sessions",
        "gauge",
        "Sessions open.",
        &one(s.sessions),
    );
    family(
        o,
        "luapool_queued_calls",
        "gauge",
        "Calls waiting in sessions' queues.",
        &one(s.queued_calls),
    );
    let store = [
        (
            "arenas",
            "Store arenas alive (one per session and per home).",
            s.store.arenas as u64,
        ),
        ("tables", "Store tables alive.", s.store.tables as u64),
        ("bytes", "Bytes the store accounts.", s.store.bytes),
    ];
    for (what, help, n) in store {
        family(o, &format!("luapool_store_{what}"), "gauge", help, &one(n));
    }
    if let Some(n) = s.connections {
        family(
            o,
            "luapool_connections",
            "gauge",
            "Client connections open.",
            &one(n),
        );
    }
    if let Some(n) = s.queued {
        let help = "Computes waiting for a worker.";
        family(o, "luapool_computes_queued", "gauge", help, &one(n));
    }
    if let Some(n) = s.computes {
        let help = "Computes finished, any result.";
        family(o, "luapool_computes_total", "counter", help, &one(n));
    }
    if let Some(n) = s.restarts {
        let help = "Workers replaced since start.";
        family(o, "luapool_worker_restarts_total", "counter", help, &one(n));
    }
    let errors: Vec<_> = s
        .errors
        .iter()
        .map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), n.to_string()))
        .collect();
    family(
        o,
        "luapool_errors_total",
        "counter",
        "Error responses sent, by kind.",
        &errors,
    );
    summary(
        o,
        "luapool_compute_wait_seconds",
        "From a compute's request being read until a worker started it.",
        &s.wait,
    );
    summary(
        o,
        "luapool_compute_run_seconds",
        "Computes' time on a worker.",
        &s.run,
    );
    if let Some(states) = &s.worker_states {
        let mut samples = Vec::new();
        let mut running = Vec::new();
        for (i, st) in states.iter().enumerate() {
            for name in WorkerState::NAMES {
                let on = u8::from(st.name() == name);
                samples.push((
                    format!("{{worker=\"{i}\",state=\"{name}\"}}"),
                    on.to_string(),
                ));
            }
            let ms = match st {
                WorkerState::Running { for_ms } => *for_ms,
                _ => 0,
            };
            running.push((format!("{{worker=\"{i}\"}}"), (ms as f64 / 1e3).to_string()));
        }
        let help = "1 for each worker's current state (starting, idle, running, crash_looped).";
        family(o, "luapool_worker_state", "gauge", help, &samples);
        let help = "How long each worker's running compute has run (0 when not running).";
        family(o, "luapool_worker_running_seconds", "gauge", help, &running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use luapool_protocol::rpc::StatsScope;

    fn stats() -> Stats {
        Stats {
            scope: StatsScope::Daemon,
            workers: 2,
            alive: 2,
            crash_loop: false,
            sessions: 3,
            queued_calls: 1,
            store: Default::default(),
            wait: Latency {
                count: 4,
                sum_us: 2_000,
                p50_us: 250,
                p90_us: 900,
                p99_us: 1_500_000,
            },
            run: Latency::default(),
            errors: [("Busy".to_string(), 0), ("LuaError".to_string(), 7)].into(),
            worker_states: Some(vec![
                WorkerState::Idle,
                WorkerState::Running { for_ms: 1250 },
            ]),
            restarts: Some(1),
            computes: Some(11),
            queued: Some(0),
            connections: Some(5),
        }
    }

    #[test]
    fn every_sample_line_belongs_to_a_typed_family() {
        let text = render(&stats());
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["gauge", "counter", "summary"].contains(&kind), "{line}");
                typed.push(name.to_string());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = name.trim_end_matches("_sum").trim_end_matches("_count");
                assert!(
                    typed.last().is_some_and(|t| t == name || t == base),
                    "{line} is not under its TYPE line"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn figures_appear_in_their_units() {
        let text = render(&stats());
        for want in [
            "luapool_computes_total 11",
            "luapool_errors_total{kind=\"LuaError\"} 7",
            "luapool_errors_total{kind=\"Busy\"} 0",
            "luapool_compute_wait_seconds{quantile=\"0.5\"} 0.00025",
            "luapool_compute_wait_seconds{quantile=\"0.99\"} 1.5",
            "luapool_compute_wait_seconds_sum 0.002",
            "luapool_compute_wait_seconds_count 4",
            "luapool_worker_state{worker=\"1\",state=\"running\"} 1",
            "luapool_worker_state{worker=\"1\",state=\"idle\"} 0",
            "luapool_worker_running_seconds{worker=\"1\"} 1.25",
            "luapool_connections 5",
        ] {
            assert!(text.lines().any(|l| l == want), "no {want:?} in\n{text}");
        }
    }
}
