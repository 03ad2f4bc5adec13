//! [`Turn`]: a first-come, first-served lock whose waiters are callbacks,
//! so waiting for it holds no thread, and a waiter whose compute is
//! cancelled leaves the line at once. A session's calls take its turn (they
//! run one at a time, in order); a compute also takes its home's turn
//! (computes sharing a home run one at a time).
//!
//! A blocking caller waits on a channel for its grant ([`Turn::lock`]); an asynchronous one ([`Turn::acquire`]) is
//! called back with a [`TurnGuard`] on the thread that releases the turn.
//! Grants made while this thread is already granting are run after it, in
//! a loop, so a long line of waiters never deepens the stack.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::compute::CancelToken;
use crate::error::ComputeError;

/// Called with the turn, or with `Cancelled` if the wait was cancelled.
pub(crate) type Grant = Box<dyn FnOnce(Result<TurnGuard, ComputeError>) + Send>;

/// A FIFO lock with callback waiters.
#[derive(Default)]
pub(crate) struct Turn {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    held: bool,
    next: u64,
    waiters: VecDeque<(u64, Grant)>,
}

/// Holding the turn; dropping it hands the turn to the next waiter.
pub(crate) struct TurnGuard {
    turn: Arc<Turn>,
}

thread_local! {
    /// Grants this thread is to run, and whether it is running them now.
    static PENDING: RefCell<(bool, Vec<(Grant, TurnGuard)>)> = const { RefCell::new((false, Vec::new())) };
}

/// Runs `grant(guard)`, or queues it if this thread is already granting.
fn run_grant(grant: Grant, guard: TurnGuard) {
    let nested = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.0 {
            p.1.push((grant, guard));
            return None;
        }
        p.0 = true;
        Some((grant, guard))
    });
    let Some(mut next) = nested else { return };
    loop {
        let (grant, guard) = next;
        grant(Ok(guard));
        let more = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let n = p.1.pop();
            if n.is_none() {
                p.0 = false;
            }
            n
        });
        match more {
            Some(n) => next = n,
            None => return,
        }
    }
}

impl Turn {
    /// A free turn.
    pub fn new() -> Arc<Turn> {
        Arc::new(Turn::default())
    }

    /// Takes the turn: `grant` runs now if it is free, else when it comes
    /// (on the releasing thread), or with `Cancelled` as soon as `cancel`
    /// is cancelled (on the cancelling thread).
    pub fn acquire(self: &Arc<Self>, cancel: Option<&CancelToken>, grant: Grant) {
        let id = {
            let mut s = self.state.lock();
            if !s.held && s.waiters.is_empty() {
                s.held = true;
                drop(s);
                return run_grant(grant, TurnGuard { turn: self.clone() });
            }
            let id = s.next;
            s.next += 1;
            s.waiters.push_back((id, grant));
            id
        };
        if let Some(cancel) = cancel {
            let turn: Weak<Turn> = Arc::downgrade(self);
            cancel.on_cancel(Box::new(move || {
                let Some(turn) = turn.upgrade() else { return };
                let mine = {
                    let mut s = turn.state.lock();
                    let at = s.waiters.iter().position(|(i, _)| *i == id);
                    at.and_then(|at| s.waiters.remove(at))
                };
                if let Some((_, grant)) = mine {
                    grant(Err(ComputeError::Cancelled));
                }
            }));
        }
    }

    /// Waits for the turn on this thread.
    pub fn lock(self: &Arc<Self>) -> TurnGuard {
        loop {
            if let Ok(g) = self.wait(None) {
                return g;
            }
        }
    }

    fn wait(self: &Arc<Self>, cancel: Option<&CancelToken>) -> Result<TurnGuard, ComputeError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.acquire(
            cancel,
            Box::new(move |g| {
                // The receiver waits below; if it were gone, the guard
                // would be dropped here and the turn passed on.
                let _ = tx.send(g);
            }),
        );
        rx.recv().unwrap_or(Err(ComputeError::Cancelled))
    }

    fn release(self: &Arc<Self>) {
        let next = {
            let mut s = self.state.lock();
            match s.waiters.pop_front() {
                Some((_, grant)) => Some(grant),
                None => {
                    s.held = false;
                    None
                }
            }
        };
        if let Some(grant) = next {
            run_grant(grant, TurnGuard { turn: self.clone() });
        }
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        self.turn.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn waiters_get_the_turn_in_order_and_a_cancelled_one_leaves_at_once() {
        let turn = Turn::new();
        let first = turn.lock();
        let (tx, rx) = mpsc::channel();
        let tokens: Vec<CancelToken> = (0..3).map(|_| CancelToken::new()).collect();
        for (i, t) in tokens.iter().enumerate() {
            let tx = tx.clone();
            turn.acquire(
                Some(t),
                Box::new(move |g| tx.send((i, g.map(drop).is_ok())).unwrap()),
            );
        }
        tokens[1].cancel();
        assert_eq!(rx.try_recv().unwrap(), (1, false), "cancelled at once");
        drop(first);
        assert_eq!(rx.try_recv().unwrap(), (0, true));
        assert_eq!(rx.try_recv().unwrap(), (2, true));
        // Free again: a blocking lock gets it at once.
        drop(turn.lock());
    }

    #[test]
    fn a_long_line_of_waiters_does_not_deepen_the_stack() {
        let turn = Turn::new();
        let first = turn.lock();
        let (tx, rx) = mpsc::channel();
        for i in 0..200_000 {
            let tx = tx.clone();
            // Each grant drops its guard at once: the next grant runs.
            turn.acquire(None, Box::new(move |g| tx.send((i, g.is_ok())).unwrap()));
        }
        drop(first);
        assert_eq!(
            rx.iter().take(200_000).filter(|(_, ok)| *ok).count(),
            200_000
        );
    }
}
