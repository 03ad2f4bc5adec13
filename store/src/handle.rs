//! Serving one worker [`Request`] within a [`Scope`].
//!
//! Every table id a request names must belong to the scope's session or home
//! arena and be alive; anything else is "unknown table N". Reads inline small
//! tables (see [`inline`](super::inline)); writes refuse read-only tables and
//! check the quota before applying. Nothing here panics on any input.

use luapool_protocol::{
    encode_into, Entries, Fetched, Key, Records, Reply, Request, RequestErrorKind, TableId,
    ToWorker, Value, Write, LONG_STRING, MAX_RESERVE, REPLY_BYTES,
};

use super::arena::{arena_of, Arena};
use super::cell::{KeyView, SValue};
use super::inline::{inline_bytes, views, INLINE_MAX_ENTRIES};
use super::table::{Table, TABLE_BYTES};
use super::{convert, encode, Locked, Scope, StoreError};

mod moves;
mod records;

/// The most values a `GetRange` returns.
pub const MAX_RANGE: u32 = 4096;
/// The most entries a `Next` returns.
pub const MAX_ENTRIES: u32 = 4096;

/// Serves `req` with the scope's arenas locked (`None`: neither exists).
pub(crate) fn handle(locked: Option<Locked<'_>>, scope: &Scope, req: Request) -> Reply {
    match serve(locked, scope, req) {
        Ok(reply) => reply,
        Err(e) => Reply::Error(e.into()),
    }
}

/// What a read request found, before it becomes a reply.
enum Read<'a> {
    /// `Get` / `GetRange`: values (`None`: nil), in the arena they were read from.
    Values(&'a Arena, Vec<Option<&'a SValue>>),
    /// `Next`: entries, and whether the iteration is done.
    Entries(&'a Arena, Vec<(Key, Value)>, bool),
    /// The value asked for is a string too long for one message.
    Long(Key, u64),
    /// `GetStr`: a piece of a string.
    Piece(&'a [u8]),
}

/// The length of a string too long for one message, if `v` is one.
fn long_len(v: &SValue) -> Option<u64> {
    v.bytes()
        .filter(|b| b.len() > LONG_STRING)
        .map(|b| b.len() as u64)
}

/// About the bytes a value adds to a reply: a string's, and a small
/// table's entries (a record travels with its window).
fn reply_bytes(arena: &Arena, v: &SValue) -> usize {
    match v {
        SValue::Table(id) => arena
            .table(*id)
            .ok()
            .filter(|t| t.entry_count() <= INLINE_MAX_ENTRIES)
            .map_or(9, |t| 9 + inline_bytes(t)),
        v => 9 + v.payload().len(),
    }
}

/// Takes values while they fit the reply's byte budget (at least one).
struct Budget(usize);

impl Budget {
    fn take(&mut self, taken: usize, bytes: usize) -> bool {
        if taken > 0 && bytes > self.0 {
            return false;
        }
        self.0 = self.0.saturating_sub(bytes);
        true
    }
}

/// Serves a read request (`Get`, `GetRange`, `Next`); `None` for any other.
fn read<'a>(
    locked: &'a Option<Locked<'_>>,
    scope: &Scope,
    req: &Request,
) -> Option<Result<Read<'a>, StoreError>> {
    let found = match req {
        Request::Get { table, key } => scoped(locked, scope, *table).and_then(|arena| {
            let v = arena.table(*table)?.get_view(KeyView::of(key));
            Ok(match v.and_then(long_len) {
                Some(len) => Read::Long(key.clone(), len),
                None => Read::Values(arena, vec![v]),
            })
        }),
        Request::GetRange {
            table,
            start,
            count,
        } => scoped(locked, scope, *table).and_then(|arena| {
            let t = arena.table(*table)?;
            let mut budget = Budget(REPLY_BYTES);
            let mut values = Vec::new();
            for i in 0..i64::from((*count).min(MAX_RANGE)) {
                let Some(k) = start.checked_add(i) else {
                    values.push(None);
                    continue;
                };
                let v = t.get_view(KeyView::Int(k));
                if let Some(len) = v.and_then(long_len) {
                    if values.is_empty() {
                        return Ok(Read::Long(Key::Int(k), len));
                    }
                    break;
                }
                if !budget.take(values.len(), v.map_or(1, |v| reply_bytes(arena, v))) {
                    break;
                }
                values.push(v);
            }
            Ok(Read::Values(arena, values))
        }),
        Request::Next {
            table,
            after,
            limit,
        } => scoped(locked, scope, *table).and_then(|arena| {
            let limit = (*limit).clamp(1, MAX_ENTRIES) as usize;
            let mut budget = Budget(REPLY_BYTES);
            let mut entries = Vec::new();
            let mut long = None;
            let done = arena
                .table(*table)?
                .next_with(after.as_ref(), |k, v| {
                    if entries.len() == limit {
                        return false;
                    }
                    if let Some(len) = long_len(v) {
                        if entries.is_empty() {
                            long = Some((k.to_key(), len));
                        }
                        return false;
                    }
                    let bytes = reply_bytes(arena, v) + k.str_len();
                    if !budget.take(entries.len(), bytes) {
                        return false;
                    }
                    entries.push((k.to_key(), v.to_value()));
                    true
                })
                .map_err(|_| StoreError::InvalidNextKey(after.clone().unwrap_or(Key::Int(0))))?;
            Ok(match long {
                Some((k, len)) => Read::Long(k, len),
                None => Read::Entries(arena, entries, done),
            })
        }),
        Request::GetStr { table, key, offset } => scoped(locked, scope, *table).and_then(|arena| {
            let s = arena
                .table(*table)?
                .get_view(KeyView::of(key))
                .and_then(SValue::bytes)
                .ok_or_else(|| StoreError::NotAString(key.clone()))?;
            let from = usize::try_from(*offset).unwrap_or(usize::MAX).min(s.len());
            let to = from + (s.len() - from).min(LONG_STRING);
            Ok(Read::Piece(&s[from..to]))
        }),
        _ => return None,
    };
    Some(found)
}

/// The values read, owned.
fn owned(values: &[Option<&SValue>]) -> Vec<Value> {
    values
        .iter()
        .map(|v| v.map_or(Value::Nil, SValue::to_value))
        .collect()
}

/// Serves `req` and writes the whole `ToWorker::Reply` message into `out`;
/// reads are encoded straight from the store (see [`encode`]). Returns the
/// kind of the error reply, if it is one.
pub(crate) fn handle_into(
    locked: Option<Locked<'_>>,
    scope: &Scope,
    req: Request,
    out: &mut Vec<u8>,
) -> Option<RequestErrorKind> {
    // A window of records, in one pass; else what `read` finds is a `Fetched`.
    if let Request::GetRange {
        table,
        start,
        count,
    } = req
    {
        let found = scoped(&locked, scope, table).and_then(|a| Ok((a, a.table(table)?)));
        if let Ok((arena, t)) = found {
            if records::window(out, arena, t, start, count) {
                return None;
            }
        }
    }
    let reply = match read(&locked, scope, &req) {
        Some(Ok(Read::Values(arena, values))) => {
            encode::fetched(out, arena, &values);
            return None;
        }
        Some(Ok(Read::Entries(arena, entries, done))) => {
            encode::entries(out, arena, &entries, done);
            return None;
        }
        Some(Ok(Read::Piece(piece))) => {
            encode::bytes(out, piece);
            return None;
        }
        Some(Ok(Read::Long(key, len))) => Reply::Long { key, len },
        Some(Err(e)) => Reply::Error(e.into()),
        None => handle(locked, scope, req),
    };
    let kind = if let Reply::Error(e) = &reply {
        Some(e.kind)
    } else {
        None
    };
    encode_into(&ToWorker::Reply(reply), out);
    kind
}

/// The arena of `table` if the scope allows it.
fn scoped<'a>(
    locked: &'a Option<Locked<'_>>,
    scope: &Scope,
    table: TableId,
) -> Result<&'a Arena, StoreError> {
    let a = arena_of(table);
    if a != scope.session && a != scope.home {
        return Err(StoreError::UnknownTable(table));
    }
    locked
        .as_ref()
        .and_then(|l| l.get(a))
        .ok_or(StoreError::UnknownTable(table))
}

/// The records a `GetRange` reply carries flat ([`Reply::Records`]), if it
/// can: only for a read-only table, which the worker reads into its
/// read-only cache (a writable array holding input records is answered
/// with views, as any writable table).
fn records_of<'a>(
    req: &Request,
    arena: &'a Arena,
    values: &[Option<&SValue>],
) -> Option<Vec<&'a Table>> {
    match req {
        Request::GetRange { table, .. } if arena.table(*table).is_ok_and(|t| t.readonly) => {
            encode::record_shape(arena, values)
        }
        _ => None,
    }
}

fn serve(mut locked: Option<Locked<'_>>, scope: &Scope, req: Request) -> Result<Reply, StoreError> {
    match read(&locked, scope, &req) {
        Some(Ok(Read::Values(arena, values))) => {
            if let Some(tables) = records_of(&req, arena, &values) {
                let first = tables[0];
                return Ok(Reply::Records(Records {
                    keys: encode::shape_keys(first).map(KeyView::to_key).collect(),
                    len: first.border(),
                    ids: values
                        .iter()
                        .filter_map(|v| v.and_then(SValue::table))
                        .collect(),
                    values: tables
                        .iter()
                        .flat_map(|t| encode::shape_values(t).map(SValue::to_value))
                        .collect(),
                }));
            }
            let values = owned(&values);
            let tables = views(arena, &values);
            return Ok(Reply::Fetched(Fetched { values, tables }));
        }
        Some(Ok(Read::Entries(arena, entries, done))) => {
            let tables = views(arena, entries.iter().map(|(_, v)| v));
            return Ok(Reply::Entries(Entries {
                entries,
                tables,
                done,
            }));
        }
        Some(Ok(Read::Long(key, len))) => return Ok(Reply::Long { key, len }),
        Some(Ok(Read::Piece(piece))) => return Ok(Reply::Bytes(piece.to_vec())),
        Some(Err(e)) => return Err(e),
        None => {}
    }
    match req {
        Request::Len { table } => Ok(Reply::Len(
            scoped(&locked, scope, table)?.table(table)?.border(),
        )),
        Request::Write(writes) => {
            for w in writes {
                write(&mut locked, scope, w)?;
            }
            Ok(Reply::Ok)
        }
        Request::NewTable => {
            let arena = locked
                .as_mut()
                .and_then(|l| l.split(scope.session))
                .ok_or(StoreError::UnknownArena(scope.session))?;
            Ok(Reply::NewTable(arena.0.new_table(false)?))
        }
        Request::Reserve { like, count } => {
            scoped(&locked, scope, like)?;
            let (arena, _) = locked
                .as_mut()
                .and_then(|l| l.split(arena_of(like)))
                .ok_or(StoreError::UnknownTable(like))?;
            let count = count.clamp(1, MAX_RESERVE);
            arena.reserve(u64::from(count) * TABLE_BYTES)?;
            let ids = (0..count)
                .map(|_| arena.new_table(false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Reply::Reserved(ids))
        }
        Request::Move {
            table,
            first,
            last,
            to,
        } => {
            let (arena, _) = writable(&mut locked, scope, table, &Key::Int(to))?;
            moves::move_keys(arena, table, first, last, to)?;
            Ok(Reply::Ok)
        }
        Request::Append { table, key, bytes } => {
            let (arena, _) = writable(&mut locked, scope, table, &key)?;
            arena.append_str(table, &key, &bytes)?;
            Ok(Reply::Ok)
        }
        Request::Get { .. }
        | Request::GetRange { .. }
        | Request::Next { .. }
        | Request::GetStr { .. } => {
            unreachable!("reads are served by read() above")
        }
    }
}

/// Whether `table[key]` is the session's `_io.input`, which only the host sets.
fn is_io_input(scope: &Scope, table: TableId, key: &Key) -> bool {
    scope.io == Some(table) && matches!(key, Key::Str(s) if s == b"input")
}

/// The arena of `table` (and the scope's other arena), if the scope
/// allows a worker to write `table[key]`.
fn writable<'l>(
    locked: &'l mut Option<Locked<'_>>,
    scope: &Scope,
    table: TableId,
    key: &Key,
) -> Result<(&'l mut Arena, Option<&'l Arena>), StoreError> {
    scoped(locked, scope, table)?;
    let (arena, other) = locked
        .as_mut()
        .and_then(|l| l.split(arena_of(table)))
        .ok_or(StoreError::UnknownTable(table))?;
    if arena.table(table)?.readonly || is_io_input(scope, table, key) {
        return Err(StoreError::ReadOnly { key: key.clone() });
    }
    Ok((arena, other))
}

fn write(locked: &mut Option<Locked<'_>>, scope: &Scope, w: Write) -> Result<(), StoreError> {
    let (arena, other) = writable(locked, scope, w.table, &w.key)?;
    // `other` is the scope's other arena, if it exists and differs.
    convert::store(arena, other, w.table, w.key, w.value)
}
