//! Group commit, leader style: the writes of every caller go through one
//! connection, and a caller that finds no commit running becomes the
//! leader: it takes every write queued so far (up to [`MAX_BATCH`]) into
//! one transaction, each write in a savepoint of its own (a failing one
//! fails alone), commits once (one sync for the batch), hands the others
//! their results and wakes them. Callers that arrive while a leader commits
//! queue up and share the next sync. Nothing is acknowledged before the
//! sync that makes it durable; a lone caller commits on its own thread,
//! with no hand-off to another thread and back.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::{schema, ChangeSet, HomeStoreError};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 256;

/// A write to make durable.
pub enum Write {
    /// Apply a change set to a home (created if new), recording its bytes.
    Commit(String, ChangeSet, u64),
    /// Delete a home.
    Drop(String),
}

/// `true`: done (or dropped); `false`: there was nothing to drop.
type Outcome = Result<bool, HomeStoreError>;

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Write)>,
    done: HashMap<u64, Outcome>,
    leading: bool,
    closed: bool,
}

/// The write connection and the queue of writes waiting for it.
pub struct Committer {
    conn: Mutex<Connection>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Committer {
    /// A committer writing through `conn`.
    pub fn new(conn: Connection) -> Committer {
        Committer {
            conn: Mutex::new(conn),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `write` durable, alone or with others; returns its outcome.
    pub fn write(&self, write: Write) -> Outcome {
        let mut q = self.queue();
        if q.closed {
            return Err(HomeStoreError::Closed);
        }
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push((ticket, write));
        loop {
            if let Some(outcome) = q.done.remove(&ticket) {
                return outcome;
            }
            if q.leading {
                q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            q.leading = true;
            let take = q.waiting.len().min(MAX_BATCH);
            let batch: Vec<(u64, Write)> = q.waiting.drain(..take).collect();
            drop(q);
            let outcomes = {
                let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
                commit_batch(&mut conn, &batch)
            };
            q = self.queue();
            for ((t, _), o) in batch.into_iter().zip(outcomes) {
                q.done.insert(t, o);
            }
            q.leading = false;
            self.wake.notify_all();
        }
    }

    /// Refuses writes from now on (those queued are finished by their callers).
    pub fn close(&self) {
        self.queue().closed = true;
    }
}

/// Applies `batch` in one transaction; one outcome per write.
fn commit_batch(conn: &mut Connection, batch: &[(u64, Write)]) -> Vec<Outcome> {
    let failed_all = |e: &dyn std::fmt::Display| {
        (0..batch.len())
            .map(|_| Err(HomeStoreError::Engine(e.to_string())))
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_all(&e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for (_, write) in batch {
        let one = (|| {
            let sp = tx.savepoint()?;
            let r = match write {
                Write::Commit(name, cs, bytes) => {
                    schema::apply(&sp, name, cs, *bytes).map(|()| true)
                }
                Write::Drop(name) => schema::drop_home(&sp, name),
            }?;
            sp.commit()?;
            Ok(r)
        })();
        outcomes.push(one);
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => failed_all(&e),
    }
}
