//! [`ComputeTxn`]: what makes a compute atomic and its home durable, run by
//! the pool thread that takes the compute (never by the thread that
//! submitted it or granted it a turn, which may be the daemon's event
//! loop).
//!
//! It holds the compute's two turns (its session's and its home's) from
//! the moment both are granted until the reply. On the pool thread:
//! - [`begin`](Transaction::begin), before the worker starts, reads a
//!   durable home from disk if it is not in memory (a large home takes
//!   seconds) and begins the undo log of the session's and the home's
//!   arenas (the store's `journal.rs`);
//! - [`end`](Transaction::end), however the compute ended, commits (after
//!   writing the home's changes to disk and seeing them durable) or rolls
//!   back: a Lua error, a limit, `OutputTooLarge`, `BadResult`, a crashed
//!   worker, a cancel at any point before the commit, a disk error. Then it
//!   collects what the compute made due.
//!
//! A compute cancelled or refused before `begin` (while it waited for a
//! worker, say) never began: its transaction is dropped, which only
//! releases the turns.
//!
//! A home shared by several daemons (a PostgreSQL home store) may have
//! changed since `begin` read it: its commit then finds another version
//! and writes nothing ([`HomeError::Conflict`]). `end` rolls back as for
//! any failure and asks the pool thread to run the compute again
//! ([`Settled::Again`]): `begin` reads the home as it is now, and the
//! compute runs on it, at most `conflict_retries` more times (after a
//! short random pause, so that two daemons do not keep colliding), then it
//! fails with [`ComputeError::Conflict`]. Each run starts from the state
//! the compute first saw in `_io` (the failed run's writes are undone), so
//! what a retried compute repeats is only what leaves no state: its
//! `print` lines (streamed as they are printed, so a client that streams
//! logs sees the failed runs' lines too) and the time it takes.

use std::sync::Arc;
use std::time::Duration;

use luapool_store::Scope;

use crate::compute::{CancelToken, ComputeOutput, Settled, Transaction};
use crate::error::{ComputeError, HomeError};
use crate::home::HomeTurn;
use crate::session::State;
use crate::turn::TurnGuard;

/// One compute's transaction (see the module documentation).
pub(crate) struct ComputeTxn {
    state: Arc<State>,
    scope: Scope,
    /// Held until the reply: the home's durable state is its holder's.
    home: HomeTurn,
    _session_turn: TurnGuard,
    cancel: CancelToken,
    /// Runs that ended in a conflict so far.
    conflicts: u32,
    /// How long a run may hold its shared home against other daemons.
    hold: Duration,
}

impl ComputeTxn {
    pub(crate) fn new(
        state: Arc<State>,
        scope: Scope,
        home: HomeTurn,
        session_turn: TurnGuard,
        cancel: CancelToken,
        hold: Duration,
    ) -> ComputeTxn {
        ComputeTxn {
            state,
            scope,
            home,
            _session_turn: session_turn,
            cancel,
            conflicts: 0,
            hold,
        }
    }

    /// Reads the home if it is not in memory; when the homes in memory are
    /// full, idle ones leave to make room, once.
    fn load_home(&self) -> Result<(), HomeError> {
        match self.home.load() {
            Err(HomeError::HomesFull { needed, .. }) => {
                self.state.pool().homes.evict(None, needed);
                self.home.load()
            }
            other => other,
        }
    }
}

impl Transaction for ComputeTxn {
    fn begin(&mut self) -> Result<(), ComputeError> {
        if self.conflicts > 0 {
            // It lost to another daemon: this run holds the home, so it
            // cannot lose again (the others' commits wait for it).
            self.home.hold(self.hold).map_err(home_error)?;
        }
        self.load_home().map_err(home_error)?;
        self.state.store().begin(&self.scope);
        Ok(())
    }

    fn end(&mut self, result: Result<ComputeOutput, ComputeError>) -> Settled {
        let store = self.state.store();
        let mut out = match result {
            // Cancelled after it ran but before anything was kept: undone,
            // like any cancel.
            Ok(_) if self.cancel.is_cancelled() => Err(ComputeError::Cancelled),
            r => r,
        };
        let mut conflict = false;
        if out.is_ok() {
            if let Err(e) = self.home.persist() {
                conflict = matches!(e, HomeError::Conflict { .. });
                out = Err(home_error(e));
            }
        }
        self.home.release();
        match &out {
            Ok(_) => store.commit(&self.scope),
            Err(_) => store.rollback(&self.scope),
        }
        let retries = self.state.pool().shared.config.conflict_retries;
        if conflict && self.cancel.is_cancelled() {
            out = Err(ComputeError::Cancelled);
        } else if conflict {
            if self.conflicts < retries {
                self.conflicts += 1;
                backoff(self.conflicts);
                return Settled::Again;
            }
            out = Err(ComputeError::Conflict {
                message: format!(
                    "{}: another daemon committed to the home first each of the {} times it ran (conflict_retries = {retries})",
                    self.state.home_name().unwrap_or("the home"),
                    retries + 1,
                ),
            });
        }
        let quota_hit = matches!(out, Err(ComputeError::QuotaExceeded { .. }));
        if quota_hit {
            // The arenas may be full of earlier computes' garbage: collect
            // now, or the next compute would hit the quota before anything.
            self.state.collect();
        } else {
            self.state.maybe_collect();
        }
        match self.home.collect(quota_hit) {
            // Another daemon committed since: the home is read again on its
            // next use, and collected then.
            Ok(()) | Err(HomeError::Conflict { .. }) => {}
            Err(e) => tracing::warn!("collecting a home: {e}"),
        }
        Settled::Reply(out)
    }
}

/// A pause before a compute runs again after a conflict: random, up to
/// 1 ms per conflict so far (at most 8 ms), so that computes of two daemons
/// that collided do not collide again in step.
fn backoff(conflicts: u32) {
    use std::hash::{BuildHasher, RandomState};
    let max_us = 1000 * u64::from(conflicts.min(8));
    let r = RandomState::new().hash_one(std::time::Instant::now());
    std::thread::sleep(std::time::Duration::from_micros(r % max_us.max(1)));
}

/// A home that cannot be used, as the compute's error.
pub(crate) fn home_error(e: HomeError) -> ComputeError {
    match e {
        HomeError::HomesFull { message, .. } => ComputeError::QuotaExceeded { message },
        e => ComputeError::Unavailable {
            message: e.to_string(),
        },
    }
}
