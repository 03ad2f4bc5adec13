//! [`Arena`]: the tables of one session or one home, with a byte quota, GC
//! roots, and a mark-and-sweep collector.
//!
//! A table's id is `(arena << 32) | slot`; slot 0 is never used, freed slots
//! are reused. Values in an arena only ever reference tables of the same
//! arena (the store deep-copies across arenas), so dropping an arena can
//! never leave a dangling reference elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use luapool_protocol::{Key, TableId, Value};

use super::cell::{KeyView, SKey};
use super::journal::Journal;
use super::table::{Table, TABLE_BYTES};
use super::{ArenaId, ArenaStats, StoreError};

/// Arenas whose bytes are bounded together (all the homes of a pool): a
/// write that would take their total past `limit` is refused like one past
/// an arena's own quota.
#[derive(Debug)]
pub struct ArenaGroup {
    used: AtomicU64,
    limit: u64,
    what: &'static str,
}

impl ArenaGroup {
    /// A group of at most `limit` bytes (0: unlimited); `what` names the
    /// limit in errors.
    pub fn new(limit: u64, what: &'static str) -> ArenaGroup {
        ArenaGroup {
            used: AtomicU64::new(0),
            limit,
            what,
        }
    }

    /// Bytes its arenas account now.
    pub fn used(&self) -> u64 {
        // SYNC POINT: Relaxed; a counter, read for limits and stats only.
        self.used.load(Ordering::Relaxed)
    }

    /// The limit (0: unlimited).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Fails unless `needed` more bytes fit (checked, not taken: two arenas
    /// may pass at once and overshoot by one write each).
    pub fn reserve(&self, needed: u64) -> Result<(), StoreError> {
        let used = self.used();
        if self.limit != 0 && used.saturating_add(needed) > self.limit {
            return Err(StoreError::GroupQuota {
                what: self.what,
                used,
                needed,
                limit: self.limit,
            });
        }
        Ok(())
    }

    fn adjust(&self, from: u64, to: u64) {
        // SYNC POINT: Relaxed; see used().
        if to >= from {
            self.used.fetch_add(to - from, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(from - to, Ordering::Relaxed);
        }
    }
}

/// The arena part of a table id.
pub(crate) fn arena_of(id: TableId) -> ArenaId {
    id.arena()
}

/// The tables of one arena.
#[derive(Debug)]
pub(crate) struct Arena {
    id: ArenaId,
    /// Index = slot; index 0 is always `None`.
    slots: Vec<Option<Table>>,
    free: Vec<u32>,
    roots: Vec<u32>,
    live: usize,
    bytes: u64,
    quota: u64,
    /// The undo log of the open transaction, if any.
    journal: Option<Journal>,
    /// The arenas whose bytes are bounded together with this one's.
    group: Option<Arc<ArenaGroup>>,
}

impl Arena {
    /// An empty arena; `quota` 0 means unlimited.
    pub fn new(id: ArenaId, quota: u64) -> Arena {
        Arena {
            id,
            slots: vec![None],
            free: Vec::new(),
            roots: Vec::new(),
            live: 0,
            bytes: 0,
            quota,
            journal: None,
            group: None,
        }
    }

    /// This arena, counted in `group`.
    pub fn in_group(mut self, group: Option<Arc<ArenaGroup>>) -> Arena {
        self.group = group;
        self
    }

    /// The group this arena is counted in.
    pub fn group(&self) -> Option<&Arc<ArenaGroup>> {
        self.group.as_ref()
    }

    /// This arena's id.
    pub fn id(&self) -> ArenaId {
        self.id
    }

    /// Counts for stats.
    pub fn stats(&self) -> ArenaStats {
        ArenaStats {
            tables: self.live,
            bytes: self.bytes,
            quota: self.quota,
        }
    }

    fn slot(&self, id: TableId) -> Option<usize> {
        let slot = id.slot() as usize;
        (arena_of(id) == self.id && slot != 0 && matches!(self.slots.get(slot), Some(Some(_))))
            .then_some(slot)
    }

    /// Asks the CPU to bring the table `id` into its cache (touching
    /// nothing): a loop over many tables reads one while the next arrive.
    #[inline]
    pub fn prefetch(&self, id: TableId) {
        if arena_of(id) == self.id {
            if let Some(t) = self.slots.get(id.slot() as usize) {
                prefetch(t);
            }
        }
    }

    /// The table `id`.
    pub fn table(&self, id: TableId) -> Result<&Table, StoreError> {
        match self.slot(id) {
            Some(s) => Ok(self.slots[s].as_ref().expect("checked by slot()")),
            None => Err(StoreError::UnknownTable(id)),
        }
    }

    fn table_mut(&mut self, id: TableId) -> Result<&mut Table, StoreError> {
        match self.slot(id) {
            Some(s) => Ok(self.slots[s].as_mut().expect("checked by slot()")),
            None => Err(StoreError::UnknownTable(id)),
        }
    }

    /// The table in `slot`, if any.
    pub fn slot_table(&self, slot: u32) -> Option<&Table> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// Every table with its slot.
    pub fn tables(&self) -> impl Iterator<Item = (u32, &Table)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(s, t)| t.as_ref().map(|t| (s as u32, t)))
    }

    /// Places `table` (accounted `bytes`) in `slot`, which must be free: for
    /// loading a persisted home, whose references name slots.
    pub fn place(&mut self, slot: u32, table: Table, bytes: u64) -> Result<(), StoreError> {
        let s = slot as usize;
        if s == 0 || matches!(self.slots.get(s), Some(Some(_))) {
            return Err(StoreError::Corrupt(format!("slot {slot} is taken")));
        }
        if self.slots.len() <= s {
            let old = self.slots.len();
            self.slots.resize_with(s + 1, || None);
            self.free.extend((old as u32)..slot);
        }
        self.free.retain(|&f| f != slot);
        self.slots[s] = Some(table);
        self.live += 1;
        self.set_bytes(self.bytes + bytes);
        Ok(())
    }

    /// Counts the arena's bytes as `bytes`, in its group too.
    fn set_bytes(&mut self, bytes: u64) {
        if let Some(g) = &self.group {
            g.adjust(self.bytes, bytes);
        }
        self.bytes = bytes;
    }

    /// Fails with [`StoreError::Quota`] unless `needed` more bytes fit, in
    /// the arena's quota and in its group's.
    pub fn reserve(&self, needed: u64) -> Result<(), StoreError> {
        if let Some(g) = &self.group {
            g.reserve(needed)?;
        }
        if self.quota != 0 && self.bytes.saturating_add(needed) > self.quota {
            return Err(StoreError::Quota {
                arena: self.id,
                used: self.bytes,
                needed,
                quota: self.quota,
            });
        }
        Ok(())
    }

    fn adjust(&mut self, delta: i64) {
        self.set_bytes(self.bytes.saturating_add_signed(delta));
    }

    /// Places a table whose accounted size is `bytes`, without a quota check
    /// (the caller reserved). Returns its id.
    pub fn insert(&mut self, mut table: Table, bytes: u64) -> Result<TableId, StoreError> {
        table.fresh = self.journal.is_some();
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(table);
                s
            }
            None => {
                let s =
                    u32::try_from(self.slots.len()).map_err(|_| StoreError::ArenaFull(self.id))?;
                self.slots.push(Some(table));
                s
            }
        };
        self.live += 1;
        self.set_bytes(self.bytes + bytes);
        if let Some(j) = &mut self.journal {
            j.created.push(slot);
        }
        Ok(TableId::new(self.id, slot))
    }

    /// Fills a placeholder (an empty table inserted with 0 bytes) with
    /// `table`, whose accounted size is `bytes`, without a quota check.
    pub fn fill(&mut self, id: TableId, mut table: Table, bytes: u64) -> Result<(), StoreError> {
        let t = self.table_mut(id)?;
        table.fresh = t.fresh;
        *t = table;
        self.set_bytes(self.bytes + bytes);
        Ok(())
    }

    /// A new empty table, quota checked.
    pub fn new_table(&mut self, readonly: bool) -> Result<TableId, StoreError> {
        self.reserve(TABLE_BYTES)?;
        self.insert(Table::new(readonly, false), TABLE_BYTES)
    }

    /// `table[key] = value`, quota checked before applying; no read-only check.
    /// The value must not reference another arena (callers copy first).
    pub fn set(&mut self, id: TableId, key: Key, value: Value) -> Result<(), StoreError> {
        let delta = self.table(id)?.set_delta(&key, &value);
        if delta > 0 {
            self.reserve(delta as u64)?;
        }
        self.set_unchecked(id, key, value)
    }

    /// `table[key] = value` without a quota check (the caller reserved).
    /// Inside a transaction, the value the key held is logged for undo.
    pub fn set_unchecked(&mut self, id: TableId, key: Key, value: Value) -> Result<(), StoreError> {
        let t = self.table_mut(id)?;
        let (delta, old) = t.replace(KeyView::of(&key), value.into());
        let fresh = t.fresh;
        self.adjust(delta);
        if let (Some(j), false) = (&mut self.journal, fresh) {
            j.record(id.slot(), SKey::from(key), old);
        }
        Ok(())
    }

    /// Begins a transaction: from now on writes are logged so that
    /// [`rollback`](Self::rollback) can undo them. Nothing happens if one
    /// is open already.
    pub fn begin(&mut self) {
        if self.journal.is_none() {
            self.journal = Some(Journal::default());
        }
    }

    /// The open transaction's log, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Ends the open transaction keeping its writes.
    pub fn commit(&mut self) {
        if let Some(j) = self.journal.take() {
            for slot in j.created {
                if let Some(Some(t)) = self.slots.get_mut(slot as usize) {
                    t.fresh = false;
                }
            }
        }
    }

    /// Ends the open transaction undoing its writes: every key written holds
    /// its first value again, the tables it created are freed, and the
    /// bytes of the tables it touched are counted anew.
    pub fn rollback(&mut self) {
        let Some(j) = self.journal.take() else {
            return;
        };
        let mut touched: Vec<u32> = j.old.keys().map(|(slot, _)| *slot).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut bytes = self.bytes as i64;
        for &slot in &touched {
            if let Some(Some(t)) = self.slots.get(slot as usize) {
                bytes -= t.bytes() as i64;
            }
        }
        for ((slot, key), old) in j.old.into_iter().rev() {
            if let Some(Some(t)) = self.slots.get_mut(slot as usize) {
                t.replace(key.view(), old);
            }
        }
        for &slot in &touched {
            if let Some(Some(t)) = self.slots.get_mut(slot as usize) {
                t.compact();
                bytes += t.bytes() as i64;
            }
        }
        for slot in j.created {
            if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::take) {
                bytes -= t.bytes() as i64;
                self.free.push(slot);
                self.live -= 1;
            }
        }
        self.set_bytes(bytes.max(0) as u64);
    }

    /// `table[key] = table[key] .. bytes` for a string value, in place,
    /// quota checked before applying; no read-only check. Inside a
    /// transaction, the string the key held first is logged for undo (one
    /// copy per key, whatever the number of appends).
    pub fn append_str(&mut self, id: TableId, key: &Key, bytes: &[u8]) -> Result<(), StoreError> {
        self.reserve(bytes.len() as u64)?;
        let view = KeyView::of(key);
        let t = self.slots[self.slot(id).ok_or(StoreError::UnknownTable(id))?]
            .as_ref()
            .expect("checked by slot()");
        if let (Some(j), false) = (&mut self.journal, t.fresh) {
            let skey = SKey::from_view(view);
            if !j.old.contains_key(&(id.slot(), skey.clone())) {
                let old = t
                    .get_view(view)
                    .cloned()
                    .unwrap_or(super::cell::SValue::Nil);
                j.record(id.slot(), skey, old);
            }
        }
        let delta = self
            .table_mut(id)?
            .append_str(view, bytes)
            .ok_or_else(|| StoreError::NotAString(key.clone()))?;
        self.adjust(delta);
        Ok(())
    }

    /// Drops the tombstones of a freshly built table.
    pub fn compact(&mut self, id: TableId) -> Result<(), StoreError> {
        let freed = self.table_mut(id)?.compact();
        self.adjust(-(freed as i64));
        Ok(())
    }

    /// Makes `id` a GC root. Unknown ids are ignored.
    pub fn add_root(&mut self, id: TableId) {
        if let Some(s) = self.slot(id) {
            if !self.roots.contains(&(s as u32)) {
                self.roots.push(s as u32);
            }
        }
    }

    /// Mark-and-sweep from the roots: frees unreachable tables and drops every
    /// tombstone. Call only while no compute uses the arena (a worker may hold
    /// ids of tables it has not linked yet, and traversals lose their place).
    /// Returns the slots of the tables freed.
    pub fn collect(&mut self) -> Vec<u32> {
        if self.journal.is_some() {
            return Vec::new(); // a compute runs: its tables may not be linked yet
        }
        let mut marked = vec![false; self.slots.len()];
        let mut stack: Vec<usize> = self.roots.iter().map(|&s| s as usize).collect();
        while let Some(s) = stack.pop() {
            if marked[s] {
                continue;
            }
            let Some(table) = &self.slots[s] else {
                continue;
            };
            marked[s] = true;
            for child in table.children() {
                if let Some(c) = self.slot(child) {
                    if !marked[c] {
                        stack.push(c);
                    }
                }
            }
        }
        let mut freed = Vec::new();
        let mut bytes = 0u64;
        for (s, slot) in self.slots.iter_mut().enumerate().skip(1) {
            match slot {
                Some(t) if !marked[s] => {
                    bytes += t.bytes();
                    *slot = None;
                    self.free.push(s as u32);
                    freed.push(s as u32);
                }
                Some(t) => bytes += t.compact(),
                None => {}
            }
        }
        while matches!(self.slots.last(), Some(None)) && self.slots.len() > 1 {
            self.slots.pop();
        }
        let len = self.slots.len() as u32;
        self.free.retain(|&s| s < len);
        self.live -= freed.len();
        self.set_bytes(self.bytes.saturating_sub(bytes));
        freed
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        self.set_bytes(0);
    }
}

/// Asks the CPU to bring the memory at `p` into its cache; does nothing
/// where there is no such instruction.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(p: *const T) {
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the
    // address; SSE is part of every x86_64 CPU.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
