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

use std::sync::Arc;

use luapool_store::Scope;

use crate::compute::{CancelToken, ComputeOutput, Transaction};
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
}

impl ComputeTxn {
    pub(crate) fn new(
        state: Arc<State>,
        scope: Scope,
        home: HomeTurn,
        session_turn: TurnGuard,
        cancel: CancelToken,
    ) -> ComputeTxn {
        ComputeTxn {
            state,
            scope,
            home,
            _session_turn: session_turn,
            cancel,
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
        self.load_home().map_err(home_error)?;
        self.state.store().begin(&self.scope);
        Ok(())
    }

    fn end(
        &mut self,
        result: Result<ComputeOutput, ComputeError>,
    ) -> Result<ComputeOutput, ComputeError> {
        let store = self.state.store();
        let mut out = match result {
            // Cancelled after it ran but before anything was kept: undone,
            // like any cancel.
            Ok(_) if self.cancel.is_cancelled() => Err(ComputeError::Cancelled),
            r => r,
        };
        if out.is_ok() {
            if let Err(e) = self.home.persist() {
                out = Err(home_error(e));
            }
        }
        match &out {
            Ok(_) => store.commit(&self.scope),
            Err(_) => store.rollback(&self.scope),
        }
        let quota_hit = matches!(out, Err(ComputeError::QuotaExceeded { .. }));
        if quota_hit {
            // The arenas may be full of earlier computes' garbage: collect
            // now, or the next compute would hit the quota before anything.
            self.state.collect();
        } else {
            self.state.maybe_collect();
        }
        if let Err(e) = self.home.collect(quota_hit) {
            eprintln!("luapool: collecting a home: {e}");
        }
        out
    }
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
