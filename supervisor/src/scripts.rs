//! Loaded scripts, known by their digest as Redis's `SCRIPT LOAD` knows
//! them: the SHA-1 of the code, 40 lowercase hex digits. [`Pool::load_script`]
//! returns a [`Script`]; while any handle of it lives, a compute may name
//! the digest in place of the code ([`Session::compute`](crate::Session::compute)).
//!
//! A digest is never Lua: 40 hex digits are a lone name or number, which
//! is no statement, so a chunk that is one is taken as a digest, and one
//! that no loaded script has is [`ComputeError::NoScript`].
//!
//! The store is bounded: `max_scripts` different scripts and
//! `script_bytes` bytes of code ([`PoolBuilder::max_scripts`](crate::PoolBuilder::max_scripts));
//! past either, loading a new one is [`ScriptError::Limit`]. The same code
//! loaded twice is one script. A script leaves the store when its last
//! handle is dropped: the daemon keeps one per connection that loaded it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use sha1::{Digest, Sha1};

use crate::error::ComputeError;
use crate::pool::Pool;

/// Why a script could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// Loading it would pass a limit of the store: `max_scripts` (scripts
    /// loaded) or `script_bytes` (bytes of their code).
    #[error("{limit}: the pool keeps at most {value} {what}; release a script first")]
    Limit {
        /// The limit's name.
        limit: &'static str,
        /// Its value.
        value: u64,
        /// What it counts.
        what: &'static str,
    },
}

/// The bounds of the script store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScriptLimits {
    /// Different scripts loaded at once (0 = none).
    pub max_scripts: usize,
    /// Bytes of their code together (0 = none).
    pub script_bytes: u64,
}

/// The digest of `code`: its SHA-1 in lowercase hex (Redis's digest of the
/// same script).
pub fn script_digest(code: &str) -> String {
    let sum = Sha1::digest(code.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in sum {
        hex.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        hex.push(char::from_digit(u32::from(b & 15), 16).expect("a nibble"));
    }
    hex
}

/// Whether `text` has the shape of a digest (40 hex digits, either case):
/// it is then a digest, never code.
pub fn is_digest(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A loaded script; clones share it. The store keeps it while a handle lives.
#[derive(Clone)]
pub struct Script(Arc<Loaded>);

struct Loaded {
    digest: String,
    code: Arc<str>,
    store: Arc<Store>,
}

impl Script {
    /// Its digest: what a compute may send in place of the code.
    pub fn digest(&self) -> &str {
        &self.0.digest
    }
    /// Its code.
    pub fn code(&self) -> &Arc<str> {
        &self.0.code
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Script").field(&self.0.digest).finish()
    }
}

/// The scripts of a pool.
pub(crate) struct Scripts(Arc<Store>);

struct Store {
    limits: ScriptLimits,
    map: Mutex<Map>,
}

#[derive(Default)]
struct Map {
    by_digest: HashMap<String, Weak<Loaded>>,
    /// Bytes of the code of every live [`Loaded`].
    bytes: u64,
}

impl Scripts {
    pub(crate) fn new(limits: ScriptLimits) -> Scripts {
        Scripts(Arc::new(Store {
            limits,
            map: Mutex::new(Map::default()),
        }))
    }

    /// Loads `code` (or finds it loaded already).
    pub(crate) fn load(&self, code: &str) -> Result<Script, ScriptError> {
        let digest = script_digest(code);
        let mut map = self.0.map.lock();
        if let Some(live) = map.by_digest.get(&digest).and_then(Weak::upgrade) {
            return Ok(Script(live));
        }
        let ScriptLimits {
            max_scripts,
            script_bytes,
        } = self.0.limits;
        // An entry whose last handle is being dropped is replaced, not counted.
        let counted = map.by_digest.len() - usize::from(map.by_digest.contains_key(&digest));
        if max_scripts != 0 && counted >= max_scripts {
            return Err(ScriptError::Limit {
                limit: "max_scripts",
                value: max_scripts as u64,
                what: "scripts",
            });
        }
        let len = code.len() as u64;
        if script_bytes != 0 && map.bytes + len > script_bytes {
            return Err(ScriptError::Limit {
                limit: "script_bytes",
                value: script_bytes,
                what: "bytes of scripts",
            });
        }
        let loaded = Arc::new(Loaded {
            digest: digest.clone(),
            code: code.into(),
            store: self.0.clone(),
        });
        map.bytes += len;
        map.by_digest.insert(digest, Arc::downgrade(&loaded));
        Ok(Script(loaded))
    }

    /// The loaded script with this digest (either case).
    pub(crate) fn get(&self, digest: &str) -> Result<Script, ComputeError> {
        let digest = digest.to_ascii_lowercase();
        let map = self.0.map.lock();
        match map.by_digest.get(&digest).and_then(Weak::upgrade) {
            Some(live) => Ok(Script(live)),
            None => Err(ComputeError::NoScript { digest }),
        }
    }

    /// Scripts loaded now, and the bytes of their code.
    pub(crate) fn usage(&self) -> (usize, u64) {
        let map = self.0.map.lock();
        (map.by_digest.len(), map.bytes)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let mut map = self.store.map.lock();
        map.bytes -= self.code.len() as u64;
        // Another handle may have replaced this one's entry since its last
        // strong reference went: that one stays.
        if map
            .by_digest
            .get(&self.digest)
            .is_some_and(|w| w.strong_count() == 0)
        {
            map.by_digest.remove(&self.digest);
        }
    }
}

impl Pool {
    /// Loads `code` as a script: while the returned handle (or a clone)
    /// lives, a compute may send its digest ([`Script::digest`], the SHA-1
    /// of the code in hex, as Redis's) in place of the code. Loading the
    /// same code again gives the same script. Past `max_scripts` or
    /// `script_bytes`, [`ScriptError::Limit`].
    pub fn load_script(&self, code: &str) -> Result<Script, ScriptError> {
        self.scripts.load(code)
    }

    /// Scripts loaded now, and the bytes of their code.
    pub fn scripts_loaded(&self) -> (usize, u64) {
        self.scripts.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_redis_sha1_and_never_code() {
        // `redis-cli SCRIPT LOAD "return 1"`.
        assert_eq!(
            script_digest("return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        assert!(is_digest("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"));
        assert!(is_digest("E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"));
        assert!(!is_digest("return 1"));
        assert!(!is_digest("e0e1f9fabfc9d4800c877a703b823ac0578ff8d"));
    }
}
