//! The messages a worker and the supervisor exchange over the ring.
//!
//! A compute is a conversation: the supervisor sends [`ToWorker::Start`]; the
//! worker sends requests ([`ToSupervisor::Request`]), each answered by exactly
//! one [`ToWorker::Reply`], plus any number of [`ToSupervisor::Log`] lines
//! (never answered), and ends with [`ToSupervisor::Done`].
//!
//! The replies that carry table contents ([`Fetched`], [`Entries`],
//! [`Records`]) and pieces of long strings are defined in [`hot`](crate::hot),
//! each with its fast encoder and decoder.

use serde::{Deserialize, Serialize};

use crate::hot::{Entries, Fetched, Records};
use crate::value::{Key, TableId, Value};

/// What a worker enforces for one compute. Zero means "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLimits {
    /// Lua VM instructions the compute may execute (counted in steps of the
    /// hook interval). Counting runs a hook on every instruction.
    pub instructions: u64,
    /// CPU time of the worker thread the compute may use, in milliseconds.
    /// Enforced by a timer: no cost per instruction.
    pub cpu_time_ms: u64,
    /// Bytes the compute may allocate above what the worker held when it
    /// started (Lua heap and the worker's buffers for it).
    pub memory: u64,
}

/// The exit status of a worker whose compute kept running past its CPU-time
/// limit inside one C call, where no hook could stop it: the worker exits,
/// and the supervisor reports the CPU-time limit.
pub const EXIT_CPU_LIMIT: i32 = 124;

/// The start of a compute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// Identifies the compute in logs and replies.
    pub compute: u64,
    /// The Lua source text (bytes; binary chunks are refused by the worker).
    #[serde(with = "serde_bytes")]
    pub code: Vec<u8>,
    /// The chunk name Lua uses in error messages, e.g. `=script.lua`.
    pub chunk_name: String,
    /// The session's `_io` table.
    pub io: TableId,
    /// The table bound to `_home`.
    pub home: TableId,
    /// Limits for this compute.
    pub limits: WorkerLimits,
}

/// A request from a worker to the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// `table[key]`. Answered by [`Reply::Fetched`] with one value.
    Get {
        /// The table read.
        table: TableId,
        /// The key read.
        key: Key,
    },
    /// `table[start .. start+count-1]`, a window of the array part. Answered by
    /// [`Reply::Fetched`] with `count` values (nil past the end), or by
    /// [`Reply::Records`] when those are read-only records of one shape.
    GetRange {
        /// The table read.
        table: TableId,
        /// First integer key.
        start: i64,
        /// How many keys.
        count: u32,
    },
    /// `#table`. Answered by [`Reply::Len`].
    Len {
        /// The table measured.
        table: TableId,
    },
    /// Up to `limit` entries following `after` in the table's iteration order
    /// (`None`: from the start). Answered by [`Reply::Entries`].
    Next {
        /// The table iterated.
        table: TableId,
        /// The last key seen, or `None` to start.
        after: Option<Key>,
        /// The most entries to return.
        limit: u32,
    },
    /// Writes, applied in order. Answered by [`Reply::Ok`] or the first error
    /// (writes before it stay applied, as in Lua).
    Write(Vec<Write>),
    /// Make a new empty table. Answered by [`Reply::NewTable`].
    NewTable,
    /// Make `count` new empty writable tables (at most
    /// [`MAX_RESERVE`]) in the arena of table `like`, for the worker to fill
    /// with later writes: a worker that stores a plain Lua table writes its
    /// entries into one of these, so it knows the new table's id at once.
    /// Answered by [`Reply::Reserved`].
    Reserve {
        /// A table of the arena the new tables go to.
        like: TableId,
        /// How many.
        count: u32,
    },
    /// Up to [`LONG_STRING`] bytes of the string `table[key]`, from byte
    /// `offset` on. Answered by [`Reply::Bytes`] (empty past the end).
    GetStr {
        /// The table read.
        table: TableId,
        /// The key whose value is a string.
        key: Key,
        /// The first byte wanted.
        offset: u64,
    },
    /// `table.move(table, first, last, to)` within one table: the values
    /// at keys `first..=last` are copied to the keys from `to` on, as Lua's
    /// `table.move` does (overlapping ranges included; nothing when `last <
    /// first`). What it costs the store is bounded by the table's size, not
    /// by `last - first`. The worker does not wait for its reply
    /// ([`Reply::Ok`] or the error), which it reads before its next
    /// request: a refusal surfaces there, as a buffered write's does.
    Move {
        /// The table (writable).
        table: TableId,
        /// The first key moved.
        first: i64,
        /// The last key moved.
        last: i64,
        /// Where the first key's value goes.
        to: i64,
    },
    /// `table[key] = table[key] .. bytes`, where `table[key]` is a string
    /// (the rest of a long string whose first piece was written). Answered
    /// by [`Reply::Ok`].
    Append {
        /// The table written.
        table: TableId,
        /// The key whose value is a string.
        key: Key,
        /// At most [`LONG_STRING`] bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// The most tables one [`Request::Reserve`] makes.
pub const MAX_RESERVE: u32 = 1024;

/// A string longer than this never travels in one message. Read, it is
/// answered by [`Reply::Long`] and read in pieces of at most this many
/// bytes ([`Request::GetStr`]); written, its first piece is an ordinary
/// write and the rest follow as [`Request::Append`]s.
pub const LONG_STRING: usize = 1 << 20;

/// About the most bytes of values a window ([`Request::GetRange`]) or a
/// batch of entries ([`Request::Next`]) carries: past it the reply holds
/// fewer values than asked (always at least one). Views of the tables they
/// mention have their own budget of the same size (see the store's
/// `INLINE_BUDGET_BYTES`), so no read reply is much over 2 MiB.
pub const REPLY_BYTES: usize = 1 << 20;

/// One assignment `table[key] = value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// The table written.
    pub table: TableId,
    /// The key written.
    pub key: Key,
    /// The value; [`Value::Nil`] deletes the key.
    pub value: Literal,
}

/// A value a worker sends: either a value, or a plain Lua table to copy into
/// the store as a new external table (deeply).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// A value (a table reference stores the reference).
    Value(Value),
    /// A plain Lua table, copied.
    Table {
        /// Values at keys `1..=array.len()`.
        array: Vec<Literal>,
        /// Every other entry.
        hash: Vec<(Key, Literal)>,
    },
}

/// Why a request failed. The worker raises it as a Lua error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestError {
    /// The kind of failure.
    pub kind: RequestErrorKind,
    /// A message for the Lua programmer.
    pub message: String,
}

/// The kinds of [`RequestError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestErrorKind {
    /// The table id is not one this compute may use.
    UnknownTable,
    /// A write to a read-only table.
    ReadOnly,
    /// The session's store quota would be exceeded.
    Quota,
    /// Anything else malformed.
    Invalid,
}

/// The supervisor's answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The writes were applied.
    Ok,
    /// The values read.
    Fetched(Fetched),
    /// The values read, when they are read-only records of one shape
    /// (answers a `GetRange` of a read-only table only).
    Records(Records),
    /// A border of the table.
    Len(i64),
    /// A batch of entries for `pairs`.
    Entries(Entries),
    /// The new table.
    NewTable(TableId),
    /// The tables a [`Request::Reserve`] made.
    Reserved(Vec<TableId>),
    /// The value asked for (by `Get`; the first of a `GetRange`'s window;
    /// the first entry of a `Next`) is a string longer than
    /// [`LONG_STRING`], to read with [`Request::GetStr`].
    Long {
        /// Its key.
        key: Key,
        /// Its length in bytes.
        len: u64,
    },
    /// A piece of a string ([`Request::GetStr`]).
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The request failed.
    Error(RequestError),
}

/// How a compute ended, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The chunk returned these values.
    Returned(Vec<Literal>),
    /// The chunk failed.
    Failed(Failure),
}

/// A failed compute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The error message (for a Lua error: with chunk name and line).
    pub message: String,
    /// A Lua traceback, when there is one.
    pub traceback: String,
}

/// The kinds of [`Failure`] a worker reports. The supervisor maps kinds,
/// never the message's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// A Lua error (including a syntax error).
    LuaError,
    /// The instruction budget ran out.
    InstructionLimit,
    /// The CPU-time limit passed.
    CpuLimit,
    /// The memory limit was reached.
    MemoryLimit,
    /// The supervisor asked the compute to stop.
    Cancelled,
    /// The store refused a write for the session's or home's quota.
    Quota,
    /// A value copied out of Lua (into the store, as a result, as a `print`
    /// line) passed the worker's conversion limit.
    ConversionLimit,
    /// A return value could not be converted (a function, a cycle, a thread).
    BadResult,
}

/// A message from the supervisor to a worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run a compute.
    Start(Start),
    /// The answer to the worker's last request.
    Reply(Reply),
    /// Exit cleanly.
    Shutdown,
}

/// A message from a worker to the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToSupervisor {
    /// The worker is up and waiting for computes.
    Ready {
        /// The worker's process id.
        pid: u32,
    },
    /// A request that expects one [`ToWorker::Reply`].
    Request(Request),
    /// One line printed by the compute (`print` joins its arguments with tabs).
    Log(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The compute ended.
    Done(Outcome),
}
