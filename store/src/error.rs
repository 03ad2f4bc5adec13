//! [`StoreError`]: why a store operation failed, and how a worker hears of it.

use luapool_protocol::ext_value::ExtValueError;
use luapool_protocol::{Key, KeyError, RequestError, RequestErrorKind, TableId};

use super::ArenaId;

/// Why a [`Store`](super::Store) operation failed. Nothing is changed by a
/// failed operation, except that a [`Write`](luapool_protocol::Write) batch
/// keeps the writes before the failing one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The table does not exist, or is outside the request's scope.
    #[error("unknown table {0}")]
    UnknownTable(TableId),
    /// The arena does not exist (never created, or dropped).
    #[error("unknown arena {0}")]
    UnknownArena(ArenaId),
    /// The operation would take the arena past its byte quota; nothing was applied.
    #[error("store quota exceeded: {used} of {quota} bytes used, {needed} more needed")]
    Quota {
        /// The arena whose quota would be exceeded.
        arena: ArenaId,
        /// Bytes the arena accounts now.
        used: u64,
        /// Bytes the operation would add.
        needed: u64,
        /// The arena's quota.
        quota: u64,
    },
    /// The operation would take a group of arenas (all the homes) past its
    /// byte limit; nothing was applied.
    #[error("store quota exceeded: {what} would pass its limit of {limit} bytes ({used} used, {needed} more needed)")]
    GroupQuota {
        /// The limit's name (e.g. `homes_bytes`).
        what: &'static str,
        /// Bytes the group accounts now.
        used: u64,
        /// Bytes the operation would add.
        needed: u64,
        /// The group's limit.
        limit: u64,
    },
    /// A worker wrote to a read-only table (the input tree).
    #[error("attempt to write key {key} of a read-only table (_io.input)")]
    ReadOnly {
        /// The key written.
        key: Key,
    },
    /// A value cannot be a key.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] KeyError),
    /// `next` was given a key the table does not hold.
    #[error("invalid key to 'next': {0}")]
    InvalidNextKey(Key),
    /// Extracting found a table that contains itself.
    #[error("a table refers to itself (a cycle) and cannot be converted")]
    Cycle,
    /// Nesting deeper than [`MAX_NESTING`](super::MAX_NESTING).
    #[error("tables nested more than {} deep", super::MAX_NESTING)]
    TooDeep,
    /// A conversion out of the store would pass its byte limit (a table
    /// shared many times counts each time it is emitted). Nothing is changed.
    #[error("output too large: the result would exceed the output limit of {limit} bytes (max_output_bytes; a table shared many times counts each time it is emitted)")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Host data given as MessagePack bytes is not well-formed.
    #[error("malformed MessagePack data")]
    Malformed,
    /// A big integer or a function in host data is not a valid one (or an
    /// extension type luapool does not use); nothing was stored.
    #[error("invalid value: {0}")]
    BadValue(#[from] ExtValueError),
    /// Persisted data read back is not what the store wrote.
    #[error("corrupt persisted data: {0}")]
    Corrupt(String),
    /// An arena holds the most tables a [`TableId`] can name.
    #[error("arena {0} has no free table slot")]
    ArenaFull(ArenaId),
    /// A piece of a long string was read or appended at a key whose value
    /// is not a string (or past its end).
    #[error("no string at key {0} to read or extend")]
    NotAString(Key),
    /// A `table.move` whose keys do not fit an integer.
    #[error("table.move: keys {first}..{last} to {to} pass the integer range")]
    MoveRange {
        /// The first key moved.
        first: i64,
        /// The last key moved.
        last: i64,
        /// Where the first goes.
        to: i64,
    },
}

impl StoreError {
    /// The kind a worker sees.
    pub fn kind(&self) -> RequestErrorKind {
        match self {
            StoreError::UnknownTable(_) | StoreError::UnknownArena(_) => {
                RequestErrorKind::UnknownTable
            }
            StoreError::ReadOnly { .. } => RequestErrorKind::ReadOnly,
            StoreError::Quota { .. } | StoreError::GroupQuota { .. } | StoreError::ArenaFull(_) => {
                RequestErrorKind::Quota
            }
            _ => RequestErrorKind::Invalid,
        }
    }
}

impl From<StoreError> for RequestError {
    fn from(e: StoreError) -> RequestError {
        RequestError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
