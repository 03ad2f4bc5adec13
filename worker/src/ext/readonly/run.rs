//! [`Run`]: the records of one `Records` window found by arithmetic on
//! their ids, with no map entry per record.

use luapool_protocol::TableId;

use super::cache::{Complete, PAIRS};
use super::fast::HotRun;

/// The records of one `Records` reply whose ids step evenly, up or down
/// (a loaded array's records do: up in a fresh arena, down where the store
/// reuses freed slots): found by arithmetic on the id, with no map entry
/// per record.
pub(super) struct Run {
    first_id: u64,
    /// The distance between neighbours' ids (at least 1).
    step: u64,
    /// Whether the ids go down.
    down: bool,
    n: u64,
    /// Every record's `Complete`, but `first` is the first record's.
    record: Complete,
}

impl Run {
    /// The run of `ids`, if they step evenly (without wrapping around).
    pub(super) fn of(ids: impl Iterator<Item = TableId> + Clone, record: Complete) -> Option<Run> {
        let mut it = ids.clone();
        let first_id = it.next()?.raw();
        let second = it.next().map_or(first_id.wrapping_add(1), TableId::raw);
        let step = first_id.abs_diff(second);
        if step == 0 {
            return None;
        }
        let mut run = Run {
            first_id,
            step,
            down: second < first_id,
            n: u64::MAX,
            record,
        };
        let mut n = 0;
        for (k, id) in ids.enumerate() {
            if run.index(id) != Some(k as u64) {
                return None;
            }
            n += 1;
        }
        run.n = n;
        Some(run)
    }

    /// The position of `id` in the run, if it is there.
    fn index(&self, id: TableId) -> Option<u64> {
        let id = id.raw();
        let d = if self.down {
            self.first_id.checked_sub(id)?
        } else {
            id.checked_sub(self.first_id)?
        };
        // Consecutive ids, the common case, need no division.
        let k = if self.step == 1 {
            d
        } else if d.is_multiple_of(self.step) {
            d / self.step
        } else {
            return None;
        };
        (k < self.n).then_some(k)
    }

    /// The run as `fast.rs` reads it, if its ids go up one by one (a
    /// loaded array's records do) and its records have a shape.
    pub(super) fn hot(&self) -> HotRun {
        let r = &self.record;
        if self.step != 1 || self.down || r.shape == PAIRS {
            return HotRun::default();
        }
        HotRun {
            first_id: self.first_id,
            n: self.n,
            values: r.first + r.narr,
            stride: r.narr + r.nhash,
            shape: r.shape,
            field: 0,
        }
    }

    pub(super) fn find(&self, id: TableId) -> Option<Complete> {
        let k = self.index(id)?;
        Some(Complete {
            first: self.record.first + (k * u64::from(self.record.narr + self.record.nhash)) as u32,
            ..self.record
        })
    }
}
