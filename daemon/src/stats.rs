//! The `stats` result ([`Stats`]) in its two scopes, and the error counters
//! behind its `errors`. What a connection may see (issue 11: a client
//! learns nothing of others):
//!
//! - the operator's socket (and `--metrics`): the whole daemon, every
//!   compute's wait and run times, every error sent, each worker's state;
//! - any other connection: the pool's health (workers configured and
//!   alive, the crash-loop flag), and of its own sessions, computes and
//!   errors only. Its wait times show how busy the pool is, as timing its
//!   own calls would; nothing else about others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use luapool_protocol::api::StoreStats;
use luapool_protocol::rpc::{ErrorKind, Stats, StatsScope};

use crate::conn::Conn;
use crate::shared::Shared;

/// Error responses sent, by kind.
pub(crate) struct ErrorCounts([AtomicU64; ErrorKind::ALL.len()]);

impl Default for ErrorCounts {
    fn default() -> ErrorCounts {
        ErrorCounts(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl ErrorCounts {
    /// Counts one error of `kind`.
    pub fn count(&self, kind: ErrorKind) {
        if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
            // Relaxed: a monitoring counter, nothing depends on it.
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every kind's name and count, zeros included.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .zip(&self.0)
            .map(|(k, n)| (k.name().to_string(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The whole daemon's figures (the operator's `stats`, `--metrics`).
pub(crate) fn daemon(shared: &Shared) -> Stats {
    let p = shared.pool.stats();
    Stats {
        scope: StatsScope::Daemon,
        workers: p.workers,
        alive: p.alive,
        crash_loop: p.crash_loop,
        sessions: shared.sessions.load(Ordering::Relaxed),
        queued_calls: shared.queued_calls.load(Ordering::Relaxed),
        store: p.store,
        wait: p.wait,
        run: p.run,
        errors: shared.errors.snapshot(),
        worker_states: Some(p.worker_states),
        restarts: Some(p.restarts),
        computes: Some(p.computes),
        queued: Some(p.queued),
        connections: Some(shared.connections.load(Ordering::Relaxed)),
    }
}

/// The figures `conn` may see: the pool's health and its own.
pub(crate) fn connection(shared: &Shared, conn: &Conn) -> Stats {
    let p = shared.pool.stats();
    let sessions: Vec<_> = conn.sessions.lock().values().cloned().collect();
    let mut store = StoreStats::default();
    for s in &sessions {
        let info = s.session().table_info();
        store.arenas += 1;
        store.tables += info.session_tables;
        store.bytes += info.session_bytes;
    }
    let (wait, run) = match conn.times.get() {
        Some(t) => (t.wait.latency(), t.run.latency()),
        None => Default::default(),
    };
    Stats {
        scope: StatsScope::Connection,
        workers: p.workers,
        alive: p.alive,
        crash_loop: p.crash_loop,
        sessions: sessions.len(),
        queued_calls: sessions.iter().map(|s| s.queued()).sum(),
        store,
        wait,
        run,
        errors: conn.errors.snapshot(),
        worker_states: None,
        restarts: None,
        computes: None,
        queued: None,
        connections: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_is_counted_under_its_name() {
        let c = ErrorCounts::default();
        for k in ErrorKind::ALL {
            c.count(k);
        }
        c.count(ErrorKind::Busy);
        let s = c.snapshot();
        assert_eq!(s.len(), ErrorKind::ALL.len());
        assert!(s.values().all(|&n| n >= 1));
        assert_eq!((s["Busy"], s["LuaError"]), (2, 1));
    }
}
