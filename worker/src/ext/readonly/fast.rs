//! The reads a loop makes, answered with no lookup by id: `items[i]` from
//! the window of a big array that answered last, `record.field` from the
//! run of records that answered last (by arithmetic on the record's id)
//! and the field read last. `None` sends the read through
//! [`RoCache::get`]. Both are asked at every read of a read-only table
//! (`meta.rs`), so they stay small.

use luapool_protocol::TableId;

use super::cache::{Cell, LKey, RoCache};

/// A partial table's window: the table, its first key, its first cell and
/// how many keys (0: none).
#[derive(Clone, Copy, Default)]
pub(super) struct LastWindow {
    pub(super) table: TableId,
    pub(super) start: i64,
    pub(super) first: u32,
    pub(super) count: u32,
}

/// A run of records whose ids go up one by one (`run.rs`), flattened: the
/// record `first_id + k` has its values past its array part at cells
/// `values + k * stride ..`, in the order of the shape's keys.
#[derive(Clone, Copy, Default)]
pub(super) struct HotRun {
    pub(super) first_id: u64,
    /// Records in the run (0: no run).
    pub(super) n: u64,
    pub(super) values: u32,
    pub(super) stride: u32,
    pub(super) shape: u32,
    /// The position among the shape's keys of the field read last.
    pub(super) field: u32,
}

impl RoCache {
    /// `table[i]` from the window that answered last.
    #[inline]
    pub fn fast_int(&self, table: TableId, i: i64) -> Option<Cell> {
        let w = self.last.get();
        let k = i.wrapping_sub(w.start) as u64;
        if w.table != table || k >= u64::from(w.count) {
            return None;
        }
        self.cells.get(w.first as usize + k as usize).copied()
    }

    /// `table[s]` from the run that answered last, the field read last
    /// first (a loop reads the same field of every record).
    #[inline]
    pub fn fast_str(&self, table: TableId, s: &[u8]) -> Option<Cell> {
        let h = self.hot.get();
        let k = table.raw().wrapping_sub(h.first_id);
        if k >= h.n {
            return None;
        }
        let keys = self.shapes.get(h.shape as usize)?;
        let key = LKey::Str(s);
        let j = match keys.get(h.field as usize) {
            Some(c) if self.key_is(*c, key) => h.field as usize,
            _ => {
                let j = keys.iter().position(|c| self.key_is(*c, key));
                // Not a key of the shape: nil, as the general path says.
                let Some(j) = j else {
                    return Some(Cell::Nil);
                };
                self.hot.set(HotRun {
                    field: j as u32,
                    ..h
                });
                j
            }
        };
        let at = h.values as usize + k as usize * h.stride as usize + j;
        self.cells.get(at).copied()
    }
}
