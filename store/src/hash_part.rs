//! The hash part of a table: a short vector of pairs for a few entries (no
//! map per small record), an insertion-ordered `IndexMap` beyond
//! [`SMALL_HASH_MAX`]. Both keep insertion order, which is the iteration
//! order `next` serves; entries are addressed by position.

use indexmap::IndexMap;

use super::cell::{KeyView, SKey, SValue};

/// Hash parts with at most this many entries are a plain vector of pairs.
const SMALL_HASH_MAX: usize = 8;

/// The hash part: a short vector for few entries, an insertion-ordered map beyond.
#[derive(Debug, Clone)]
pub(crate) enum Hash {
    Small(Vec<(SKey, SValue)>),
    Big(Box<IndexMap<SKey, SValue>>),
}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Small(v) => v.len(),
            Hash::Big(m) => m.len(),
        }
    }

    pub fn index_of(&self, key: KeyView<'_>) -> Option<usize> {
        match self {
            Hash::Small(v) => v.iter().position(|(k, _)| k.view() == key),
            Hash::Big(m) => m.get_index_of(&key),
        }
    }

    pub fn entry(&self, i: usize) -> Option<(&SKey, &SValue)> {
        match self {
            Hash::Small(v) => v.get(i).map(|(k, v)| (k, v)),
            Hash::Big(m) => m.get_index(i),
        }
    }

    pub fn value_mut(&mut self, i: usize) -> &mut SValue {
        match self {
            Hash::Small(v) => &mut v[i].1,
            Hash::Big(m) => m.get_index_mut(i).expect("index from index_of").1,
        }
    }

    /// Appends a key known to be absent.
    pub fn push(&mut self, key: SKey, value: SValue) {
        match self {
            Hash::Small(v) if v.len() < SMALL_HASH_MAX => {
                v.reserve_exact(1); // small records keep exactly the room they use
                v.push((key, value))
            }
            Hash::Small(v) => {
                let mut m: IndexMap<SKey, SValue> = IndexMap::with_capacity(v.len() * 2);
                m.extend(v.drain(..));
                m.insert(key, value);
                *self = Hash::Big(Box::new(m));
            }
            Hash::Big(m) => {
                m.insert(key, value);
            }
        }
    }

    /// Drops tombstones; a hash part that became small is a vector again.
    pub fn retain_live(&mut self) {
        match self {
            Hash::Small(v) => {
                v.retain(|(_, v)| !v.is_nil());
                v.shrink_to_fit();
            }
            Hash::Big(m) => m.retain(|_, v| !v.is_nil()),
        }
        if let Hash::Big(m) = self {
            if m.len() <= SMALL_HASH_MAX {
                *self = Hash::Small(m.drain(..).collect());
            }
        }
    }

    /// The entries, when the hash part is a short vector.
    pub fn small(&self) -> Option<&[(SKey, SValue)]> {
        match self {
            Hash::Small(v) => Some(v),
            Hash::Big(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SKey, &SValue)> {
        let (small, big) = match self {
            Hash::Small(v) => (Some(v.iter().map(|(k, v)| (k, v))), None),
            Hash::Big(m) => (None, Some(m.iter())),
        };
        small.into_iter().flatten().chain(big.into_iter().flatten())
    }
}
