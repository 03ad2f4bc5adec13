//! [`Journal`]: an arena's undo log while a compute runs, which makes the
//! compute atomic.
//!
//! A compute's scope begins a transaction on its arenas
//! ([`Store::begin`](super::Store::begin)). From then on every write to a
//! table that existed at the beginning keeps the value the key held first
//! (once per key, however often the compute writes it), and every table the
//! compute creates is marked fresh (its writes need no undo). Then:
//! - a rollback puts every kept value back, drops the tombstones this left,
//!   frees the fresh tables and recounts the bytes of the tables it
//!   touched, so contents, quota accounting and slots are what they were;
//! - a commit forgets the log; before it, [`changes`](super::Store::changes)
//!   reads from it what a durable home must write: the keys written and the
//!   tables created, with their values now.
//!
//! The log holds values the arena accounted before the compute, at most one
//! per key of a table that existed then, so it is bounded by what the arena
//! held plus the keys the compute added (which the quota counts).

use indexmap::IndexMap;

use super::cell::{SKey, SValue};

/// The undo log of one arena's open transaction.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// (slot, key) → the value it held when the transaction began, in the
    /// order first written.
    pub old: IndexMap<(u32, SKey), SValue>,
    /// Slots of the tables created in the transaction, in creation order.
    pub created: Vec<u32>,
}

impl Journal {
    /// Keeps `old` as the value `key` of table `slot` held at the beginning,
    /// unless the key was written before in this transaction.
    pub fn record(&mut self, slot: u32, key: SKey, old: SValue) {
        self.old.entry((slot, key)).or_insert(old);
    }
}
