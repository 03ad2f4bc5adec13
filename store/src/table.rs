//! One external table: an array part and a hash part, kept the way Lua keeps them.
//!
//! Invariants (every mutation goes through [`Table::set`], [`Table::compact`]
//! or a fresh build that calls `compact`):
//! - the array part never ends with nil, so it is always a border;
//! - integer keys `1..=array.len()` live only in the array part (the hash part
//!   may hold *tombstones* for them, never live values);
//! - the key `array.len() + 1` is never live in the hash part (appending
//!   migrates following integer keys into the array part).
//!
//! Deleting a hash key leaves a tombstone (the key with a nil value) in place,
//! so a traversal positioned on it keeps working; tombstones go away in
//! [`Table::compact`], which only the arena's collector calls.
//!
//! Bytes are accounted approximately: [`TABLE_BYTES`] per table,
//! [`SLOT_BYTES`] per array slot, two slots per hash entry, plus the length
//! of every string key and value. (Measured: a stored key or value takes 24
//! bytes, a table 64 plus its parts.)

use luapool_protocol::{Key, TableId, Value};

use super::cell::{KeyView, SKey, SValue};
use super::hash_part::Hash;

/// Accounted bytes of a table object itself.
pub const TABLE_BYTES: u64 = 64;
/// Accounted bytes of one value slot (an array entry; a hash entry is two).
pub const SLOT_BYTES: u64 = 32;

/// Bytes a value holds beyond its slot.
pub(crate) fn value_extra(v: &Value) -> u64 {
    match v {
        Value::Str(s) => s.len() as u64,
        Value::BigInt(t) | Value::Function(t) => t.len() as u64,
        _ => 0,
    }
}

/// Bytes a key holds beyond its slot.
pub(crate) fn key_extra(k: &Key) -> u64 {
    match k {
        Key::Str(s) => s.len() as u64,
        _ => 0,
    }
}

fn svalue_extra(v: &SValue) -> u64 {
    v.payload().len() as u64
}

fn view_extra(k: KeyView<'_>) -> u64 {
    match k {
        KeyView::Str(s) => s.len() as u64,
        _ => 0,
    }
}

/// Accounted bytes of an array slot holding `v`.
pub(crate) fn array_entry_bytes(v: &SValue) -> u64 {
    SLOT_BYTES + svalue_extra(v)
}

/// Accounted bytes of a hash entry (live or tombstone).
pub(crate) fn hash_entry_bytes(k: &SKey, v: &SValue) -> u64 {
    2 * SLOT_BYTES + view_extra(k.view()) + svalue_extra(v)
}

/// Why [`Table::next`] cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidNextKey;

/// One external table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    array: Vec<SValue>,
    hash: Hash,
    /// Tombstones in `hash`.
    tombstones: usize,
    /// The longest the array part has been since the last `compact`, so a
    /// traversal positioned on a key the array part lost can continue
    /// (saturates; an array part of 2^32 entries is far beyond any quota).
    high_water: u32,
    /// Writes from workers are refused.
    pub readonly: bool,
    /// Made from an array: empty, it converts back to an array, not a map.
    pub from_array: bool,
    /// Created inside the arena's open transaction: its writes need no
    /// undo (a rollback frees it whole).
    pub fresh: bool,
}

impl Table {
    /// An empty table.
    pub fn new(readonly: bool, from_array: bool) -> Table {
        Table {
            array: Vec::new(),
            hash: Hash::Small(Vec::new()),
            tombstones: 0,
            high_water: 0,
            readonly,
            from_array,
            fresh: false,
        }
    }

    /// A table whose array part is `values` (trailing nils dropped). Returns it
    /// with its accounted bytes.
    pub fn from_array_values(values: Vec<Value>, readonly: bool) -> (Table, u64) {
        Table::from_array_cells(values.into_iter().map(SValue::from).collect(), readonly)
    }

    /// [`from_array_values`](Self::from_array_values) for stored values.
    pub fn from_array_cells(mut values: Vec<SValue>, readonly: bool) -> (Table, u64) {
        while values.last().is_some_and(SValue::is_nil) {
            values.pop();
        }
        let mut t = Table::new(readonly, true);
        t.array = values;
        t.high_water = saturate(t.array.len());
        let bytes = TABLE_BYTES + t.array.iter().map(array_entry_bytes).sum::<u64>();
        (t, bytes)
    }

    /// A copy of this table's live contents with every value mapped; the copy is
    /// writable and has no tombstones. Returns it with its accounted bytes.
    pub fn map_copy(&self, mut f: impl FnMut(&SValue) -> SValue) -> (Table, u64) {
        let mut t = Table::new(false, self.from_array);
        t.array = self.array.iter().map(&mut f).collect();
        t.high_water = saturate(t.array.len());
        let live: Vec<(SKey, SValue)> = self.hash_live().map(|(k, v)| (k.clone(), f(v))).collect();
        for (k, v) in live {
            t.hash.push(k, v);
        }
        let bytes = t.bytes();
        (t, bytes)
    }

    /// The accounted bytes of this table, tombstones included.
    pub fn bytes(&self) -> u64 {
        TABLE_BYTES
            + self.array.iter().map(array_entry_bytes).sum::<u64>()
            + self
                .hash
                .iter()
                .map(|(k, v)| hash_entry_bytes(k, v))
                .sum::<u64>()
    }

    /// The stored value at `key`, borrowed (maybe a tombstone's nil).
    pub fn get_view(&self, key: KeyView<'_>) -> Option<&SValue> {
        if let Some(i) = self.array_index(key) {
            return Some(&self.array[i]);
        }
        self.hash
            .index_of(key)
            .and_then(|i| self.hash.entry(i))
            .map(|(_, v)| v)
    }

    /// `table[key]` (nil when absent).
    pub fn get(&self, key: &Key) -> Value {
        self.get_view(KeyView::of(key))
            .map_or(Value::Nil, SValue::to_value)
    }

    /// A border: what Lua's `#` may return.
    pub fn border(&self) -> i64 {
        self.array.len() as i64
    }

    /// Entries (array slots, holes included, plus live hash entries).
    pub fn entry_count(&self) -> usize {
        self.array.len() + self.hash.len() - self.tombstones
    }

    /// The array part (may hold nil holes, never a trailing nil).
    pub fn array(&self) -> &[SValue] {
        &self.array
    }

    /// Live hash entries in insertion order.
    pub fn hash_live(&self) -> impl Iterator<Item = (&SKey, &SValue)> {
        self.hash.iter().filter(|(_, v)| !v.is_nil())
    }

    /// The hash part's entries as a slice, when it is a short vector with
    /// no tombstone (every small record): the same entries, in the same
    /// order, as [`hash_live`](Self::hash_live).
    pub fn hash_slice(&self) -> Option<&[(SKey, SValue)]> {
        self.hash.small().filter(|_| self.tombstones == 0)
    }

    /// True if the hash part holds no live entry.
    pub fn hash_is_empty(&self) -> bool {
        self.hash.len() == self.tombstones
    }

    /// The tables this table references.
    pub fn children(&self) -> impl Iterator<Item = TableId> + '_ {
        self.array
            .iter()
            .chain(self.hash.iter().map(|(_, v)| v))
            .filter_map(SValue::table)
    }

    fn array_index(&self, key: KeyView<'_>) -> Option<usize> {
        match key {
            KeyView::Int(k) if k >= 1 && (k as u64) <= self.array.len() as u64 => {
                Some((k - 1) as usize)
            }
            _ => None,
        }
    }

    /// True if `key` is `array.len() + 1` (a non-nil value there appends).
    fn is_append(&self, key: KeyView<'_>) -> bool {
        matches!(key, KeyView::Int(k) if k >= 1 && (k as u64) == self.array.len() as u64 + 1)
    }

    /// Index in the hash part of a live integer key `k`, if any.
    fn live_int(&self, k: u64) -> Option<usize> {
        let i = self.hash.index_of(KeyView::Int(i64::try_from(k).ok()?))?;
        self.hash.entry(i).filter(|(_, v)| !v.is_nil()).map(|_| i)
    }

    /// The change in accounted bytes that `set(key, value)` would make.
    pub fn set_delta(&self, key: &Key, value: &Value) -> i64 {
        let (view, nil) = (KeyView::of(key), matches!(value, Value::Nil));
        if let Some(i) = self.array_index(view) {
            let old = &self.array[i];
            if nil && i + 1 == self.array.len() {
                let holes = self.array[..i]
                    .iter()
                    .rev()
                    .take_while(|v| v.is_nil())
                    .count();
                return -((array_entry_bytes(old) + holes as u64 * SLOT_BYTES) as i64);
            }
            return value_extra(value) as i64 - svalue_extra(old) as i64;
        }
        if !nil && self.is_append(view) {
            let mut n = self.array.len() as u64 + 1;
            let mut delta = SLOT_BYTES + value_extra(value);
            while self.live_int(n + 1).is_some() {
                delta += SLOT_BYTES; // the value moves; a tombstone stays behind
                n += 1;
            }
            return delta as i64;
        }
        match self.hash.index_of(view).and_then(|i| self.hash.entry(i)) {
            Some((_, old)) => value_extra(value) as i64 - svalue_extra(old) as i64,
            None if nil => 0,
            None => (2 * SLOT_BYTES + key_extra(key) + value_extra(value)) as i64,
        }
    }

    /// [`set`](Self::set) with a borrowed key and a stored value.
    pub fn set_view(&mut self, view: KeyView<'_>, value: SValue) -> i64 {
        self.replace(view, value).0
    }

    /// [`set_view`](Self::set_view), also returning the value the key held
    /// (nil if none): what an undo log keeps.
    pub fn replace(&mut self, view: KeyView<'_>, value: SValue) -> (i64, SValue) {
        if let Some(i) = self.array_index(view) {
            if value.is_nil() && i + 1 == self.array.len() {
                let old = self.array.pop().unwrap_or(SValue::Nil);
                let mut delta = array_entry_bytes(&old) as i64;
                while self.array.last().is_some_and(SValue::is_nil) {
                    self.array.pop();
                    delta += SLOT_BYTES as i64;
                }
                return (-delta, old);
            }
            let delta = svalue_extra(&value) as i64 - svalue_extra(&self.array[i]) as i64;
            return (delta, std::mem::replace(&mut self.array[i], value));
        }
        if !value.is_nil() && self.is_append(view) {
            let mut delta = array_entry_bytes(&value);
            self.array.push(value);
            while let Some(i) = self.live_int(self.array.len() as u64 + 1) {
                let moved = std::mem::replace(self.hash.value_mut(i), SValue::Nil);
                self.tombstones += 1;
                self.array.push(moved);
                delta += SLOT_BYTES;
            }
            self.high_water = self.high_water.max(saturate(self.array.len()));
            return (delta as i64, SValue::Nil);
        }
        match self.hash.index_of(view) {
            Some(i) => {
                let slot = self.hash.value_mut(i);
                let (was_nil, is_nil) = (slot.is_nil(), value.is_nil());
                let delta = svalue_extra(&value) as i64 - svalue_extra(slot) as i64;
                let old = std::mem::replace(slot, value);
                match (was_nil, is_nil) {
                    (true, false) => self.tombstones -= 1,
                    (false, true) => self.tombstones += 1,
                    _ => {}
                }
                (delta, old)
            }
            None if value.is_nil() => (0, SValue::Nil),
            None => {
                let key = SKey::from_view(view);
                let delta = hash_entry_bytes(&key, &value) as i64;
                self.hash.push(key, value);
                (delta, SValue::Nil)
            }
        }
    }

    /// Appends `bytes` to the string at `key` in place (no copy of what is
    /// there). Returns the change in accounted bytes, or `None` if the
    /// value at `key` is not a string.
    pub fn append_str(&mut self, key: KeyView<'_>, bytes: &[u8]) -> Option<i64> {
        let slot = match self.array_index(key) {
            Some(i) => &mut self.array[i],
            None => {
                let i = self.hash.index_of(key)?;
                self.hash.value_mut(i)
            }
        };
        let old = std::mem::replace(slot, SValue::Nil);
        let mut s = match old {
            SValue::Long(b) => b.into_vec(),
            SValue::Short(..) => old.bytes().unwrap_or_default().to_vec(),
            other => {
                *slot = other;
                return None;
            }
        };
        let before = s.len() as i64;
        s.extend_from_slice(bytes);
        let after = s.len() as i64;
        *slot = SValue::from(Value::Str(s));
        // What a string holds beyond its slot is its length (see value_extra).
        Some(after - before)
    }

    /// Drops tombstones (ending any traversal in progress). Returns bytes freed.
    pub fn compact(&mut self) -> u64 {
        self.high_water = saturate(self.array.len());
        if self.tombstones == 0 {
            return 0;
        }
        let freed: u64 = self
            .hash
            .iter()
            .filter(|(_, v)| v.is_nil())
            .map(|(k, v)| hash_entry_bytes(k, v))
            .sum();
        self.hash.retain_live();
        self.tombstones = 0;
        freed
    }

    /// Calls `take` with the live entries that follow `after` in iteration
    /// order, borrowed, until it returns false (that entry is not taken).
    /// Returns true if no live entry follows the last one taken.
    pub fn next_with(
        &self,
        after: Option<&Key>,
        mut take: impl FnMut(KeyView<'_>, &SValue) -> bool,
    ) -> Result<bool, InvalidNextKey> {
        let n = self.array.len();
        let (mut ai, mut hi) = match after.map(KeyView::of) {
            None => (0, 0),
            Some(key) => match self.array_index(key) {
                Some(i) => (i + 1, 0),
                None => match self.hash.index_of(key) {
                    Some(i) => (n, i + 1),
                    None => match key {
                        // A key the array part held and lost (set to nil) during the traversal.
                        KeyView::Int(k) if k >= 1 && (k as u64) <= u64::from(self.high_water) => {
                            (n, 0)
                        }
                        _ => return Err(InvalidNextKey),
                    },
                },
            },
        };
        while ai < n {
            if !self.array[ai].is_nil() && !take(KeyView::Int(ai as i64 + 1), &self.array[ai]) {
                return Ok(false);
            }
            ai += 1;
        }
        while let Some((k, v)) = self.hash.entry(hi) {
            if !v.is_nil() && !take(k.view(), v) {
                return Ok(false);
            }
            hi += 1;
        }
        Ok(true)
    }
}

/// `n` as a `u32`, saturating.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_slot_takes_64_bytes() {
        assert_eq!(std::mem::size_of::<Option<Table>>(), 64);
    }
}
