//! Compiled chunks kept per worker, so that a script run again is not
//! parsed again.
//!
//! A hit is found by a hash of the code and chunk name (with a random key)
//! and confirmed by comparing both in full, so two scripts whose hashes
//! collide never run one for the other. The cache is bounded by count and
//! by bytes (what compiling took, measured by the counting allocator, plus
//! the copy of the code kept for the comparison); the least recently used
//! entries go first, and a chunk too large for a quarter of the cache is
//! not kept. A chunk is compiled within the compute that first runs it, so
//! its memory counts toward that compute's limit; later computes start
//! with it already in their base, never charged for it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use mlua::Function;

/// Chunks kept at most.
const MAX_ENTRIES: usize = 256;
/// Bytes kept at most (compiled code and the source kept to compare).
pub const MAX_BYTES: usize = 16 << 20;

struct Entry {
    code: Box<[u8]>,
    name: Box<str>,
    f: Function,
    bytes: usize,
    used: u64,
}

/// The cache.
pub struct Chunks {
    map: HashMap<u64, Entry>,
    keys: RandomState,
    bytes: usize,
    clock: u64,
}

impl Chunks {
    /// An empty cache.
    pub fn new() -> Chunks {
        Chunks {
            map: HashMap::new(),
            keys: RandomState::new(),
            bytes: 0,
            clock: 0,
        }
    }

    fn key(&self, code: &[u8], name: &str) -> u64 {
        self.keys.hash_one((code, name))
    }

    /// The chunk compiled from exactly this code and name, if kept.
    pub fn get(&mut self, code: &[u8], name: &str) -> Option<Function> {
        let key = self.key(code, name);
        self.clock += 1;
        let e = self.map.get_mut(&key)?;
        if &*e.code != code || &*e.name != name {
            return None;
        }
        e.used = self.clock;
        Some(e.f.clone())
    }

    /// Keeps `f`, compiled from `code` and `name`, which took `compiled`
    /// bytes; evicts what it must.
    pub fn insert(&mut self, code: &[u8], name: &str, f: Function, compiled: usize) {
        let bytes = compiled + code.len() + name.len();
        if bytes > MAX_BYTES / 4 {
            return;
        }
        let key = self.key(code, name);
        self.clock += 1;
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= old.bytes;
        }
        while !self.map.is_empty()
            && (self.map.len() >= MAX_ENTRIES || self.bytes + bytes > MAX_BYTES)
        {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k)
                .expect("not empty");
            if let Some(e) = self.map.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        self.bytes += bytes;
        self.map.insert(
            key,
            Entry {
                code: code.into(),
                name: name.into(),
                f,
                bytes,
                used: self.clock,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(lua: &mlua::Lua, code: &str) -> Function {
        lua.load(code).into_function().unwrap()
    }

    #[test]
    fn a_hash_collision_is_a_miss_never_the_other_script() {
        let lua = mlua::Lua::new();
        let mut c = Chunks::new();
        c.insert(b"return 1", "=a", f(&lua, "return 1"), 100);
        // Another script filed under the key of "return 2" (a collision).
        let key = c.key(b"return 2", "=a");
        let e = c.map.remove(&c.key(b"return 1", "=a")).unwrap();
        c.map.insert(key, e);
        assert!(c.get(b"return 2", "=a").is_none());
        // The same code under another chunk name is another chunk.
        c.insert(b"return 3", "=a", f(&lua, "return 3"), 100);
        assert!(c.get(b"return 3", "=b").is_none());
        assert!(c.get(b"return 3", "=a").is_some());
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_count_dropping_the_least_recent() {
        let lua = mlua::Lua::new();
        let mut c = Chunks::new();
        let g = f(&lua, "return 0");
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(format!("return {i}").as_bytes(), "=x", g.clone(), 10);
        }
        assert_eq!(c.map.len(), MAX_ENTRIES);
        assert!(c.get(b"return 0", "=x").is_none(), "oldest dropped");
        assert!(c.get(b"return 10", "=x").is_some(), "newer kept");
        let big = MAX_BYTES / 4 - 100;
        for i in 0..5 {
            c.insert(format!("big {i}").as_bytes(), "=x", g.clone(), big);
        }
        assert!(c.bytes <= MAX_BYTES, "{} bytes kept", c.bytes);
        assert!(c.get(b"big 4", "=x").is_some());
        assert!(c.get(b"big 0", "=x").is_none(), "evicted for bytes");
        // Too large for a quarter of the cache: not kept at all.
        c.insert(b"huge", "=x", g.clone(), MAX_BYTES);
        assert!(c.get(b"huge", "=x").is_none());
    }
}
