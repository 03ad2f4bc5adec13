//! [`Arena`]: the tables of one session or one home, with a byte quota, GC
//! roots, and a mark-and-sweep collector.
//!
//! A table's id is `(arena << 32) | slot`; slot 0 is never used, freed slots
//! are reused. Values in an arena only ever reference tables of the same
//! arena (the store deep-copies across arenas), so dropping an arena can
//! never leave a dangling reference elsewhere.

use luapool_protocol::{Key, TableId, Value};

use super::table::{Table, TABLE_BYTES};
use super::{ArenaId, ArenaStats, StoreError};

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
        }
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

    /// Fails with [`StoreError::Quota`] unless `needed` more bytes fit.
    pub fn reserve(&self, needed: u64) -> Result<(), StoreError> {
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
        self.bytes = self.bytes.saturating_add_signed(delta);
    }

    /// Places a table whose accounted size is `bytes`, without a quota check
    /// (the caller reserved). Returns its id.
    pub fn insert(&mut self, table: Table, bytes: u64) -> Result<TableId, StoreError> {
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
        self.bytes += bytes;
        Ok(TableId::new(self.id, slot))
    }

    /// Fills a placeholder (an empty table inserted with 0 bytes) with
    /// `table`, whose accounted size is `bytes`, without a quota check.
    pub fn fill(&mut self, id: TableId, table: Table, bytes: u64) -> Result<(), StoreError> {
        *self.table_mut(id)? = table;
        self.bytes += bytes;
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
    pub fn set_unchecked(&mut self, id: TableId, key: Key, value: Value) -> Result<(), StoreError> {
        let delta = self.table_mut(id)?.set(key, value);
        self.adjust(delta);
        Ok(())
    }

    /// `table[key] = table[key] .. bytes` for a string value, in place,
    /// quota checked before applying; no read-only check.
    pub fn append_str(&mut self, id: TableId, key: &Key, bytes: &[u8]) -> Result<(), StoreError> {
        self.reserve(bytes.len() as u64)?;
        let delta = self
            .table_mut(id)?
            .append_str(super::cell::KeyView::of(key), bytes)
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
    /// Returns the number of tables freed.
    pub fn collect(&mut self) -> usize {
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
        let mut freed = 0;
        let mut bytes = 0u64;
        for (s, slot) in self.slots.iter_mut().enumerate().skip(1) {
            match slot {
                Some(t) if !marked[s] => {
                    bytes += t.bytes();
                    *slot = None;
                    self.free.push(s as u32);
                    freed += 1;
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
        self.live -= freed;
        self.bytes = self.bytes.saturating_sub(bytes);
        freed
    }
}
