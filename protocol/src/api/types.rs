//! The results the host API returns, the same in the embedded supervisor,
//! the store and a daemon client: [`ComputeOutput`], [`TableInfo`],
//! [`StoreStats`], [`HomeInfo`]. Their serde form is what the daemon sends.

use serde::{Deserialize, Serialize};

use super::{from_host, HostValue, HostValueError};
use crate::TableId;

/// What a successful compute produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ComputeOutput {
    /// The chunk's return values, converted like output.
    pub values: Vec<HostValue>,
    /// The lines it printed (up to 1 MiB of them; a log sink sees all).
    pub logs: Vec<String>,
}

impl ComputeOutput {
    /// Return value `i` (from 0) as `T`; nil if the chunk returned fewer.
    pub fn value<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, HostValueError> {
        from_host(self.values.get(i).cloned().unwrap_or(HostValue::Nil))
    }
}

/// Ids and sizes of a session's tables (`getTableInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// The `_io` table's id.
    pub io: TableId,
    /// The `_home` table's id.
    pub home: TableId,
    /// Tables alive in the session's arena.
    pub session_tables: usize,
    /// Bytes the session's arena accounts.
    pub session_bytes: u64,
    /// The session's quota (0 = none).
    pub session_quota: u64,
    /// Tables alive in the home's arena.
    pub home_tables: usize,
    /// Bytes the home's arena accounts.
    pub home_bytes: u64,
}

/// Totals of a table store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Arenas alive (one per session and per home).
    pub arenas: usize,
    /// Tables alive.
    pub tables: usize,
    /// Bytes accounted.
    pub bytes: u64,
}

/// A named home as a listing reports it (`Pool::list_homes`, `home.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeInfo {
    /// Its name.
    pub name: String,
    /// Bytes it accounts (in memory if loaded, else at its last commit).
    pub bytes: u64,
    /// True if it is in memory now.
    pub loaded: bool,
    /// Sessions holding it now.
    pub sessions: usize,
}
