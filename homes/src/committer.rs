//! Group commit: one thread owns the database's write connection and
//! applies the writes queued by every caller. It takes what has queued up
//! while it was busy (up to [`MAX_BATCH`]) into one transaction, each write
//! in a savepoint of its own (a failing one fails alone), and commits once:
//! one sync for the batch. Every caller waits for the commit of its batch,
//! so nothing is acknowledged before it is on disk; throughput comes from
//! the callers that queue up during a sync sharing the next one.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
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

/// A queued write and where its result goes (`true`: done or dropped,
/// `false`: dropped nothing).
pub struct Job {
    pub write: Write,
    pub done: Sender<Result<bool, HomeStoreError>>,
}

/// The committer thread; stops when every sender of its queue is dropped.
pub fn start(mut conn: Connection) -> std::io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::unbounded::<Job>();
    let thread = std::thread::Builder::new()
        .name("luapool-homes-commit".into())
        .spawn(move || run(&mut conn, &rx))?;
    Ok((tx, thread))
}

fn run(conn: &mut Connection, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results = commit_batch(conn, &batch);
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// Applies `batch` in one transaction; one result per job.
fn commit_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Result<bool, HomeStoreError>> {
    let failed_all = |e: &dyn std::fmt::Display| {
        (0..batch.len())
            .map(|_| Err(HomeStoreError::Engine(e.to_string())))
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_all(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let one = (|| {
            let sp = tx.savepoint()?;
            let r = match &job.write {
                Write::Commit(name, cs, bytes) => {
                    schema::apply(&sp, name, cs, *bytes).map(|()| true)
                }
                Write::Drop(name) => schema::drop_home(&sp, name),
            }?;
            sp.commit()?;
            Ok(r)
        })();
        results.push(one);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => failed_all(&e),
    }
}
