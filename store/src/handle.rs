//! Serving one worker [`Request`] within a [`Scope`].
//!
//! Every table id a request names must belong to the scope's session or home
//! arena and be alive; anything else is "unknown table N". Reads inline small
//! tables (see [`inline`](super::inline)); writes refuse read-only tables and
//! check the quota before applying. Nothing here panics on any input.

use luapool_protocol::{
    encode_into, Fetched, Key, Records, Reply, Request, RequestErrorKind, TableId, ToWorker, Value,
    Write,
};

use super::arena::{arena_of, Arena};
use super::cell::{KeyView, SValue};
use super::inline::views;
use super::table::Table;
use super::{convert, encode, Locked, Scope, StoreError};

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
    /// `Get` / `GetRange`: values, in the arena they were read from.
    Values(&'a Arena, Vec<Value>),
    /// `Next`: entries, and whether the iteration is done.
    Entries(&'a Arena, Vec<(Key, Value)>, bool),
}

/// Serves a read request (`Get`, `GetRange`, `Next`); `None` for any other.
fn read<'a>(
    locked: &'a Option<Locked<'_>>,
    scope: &Scope,
    req: &Request,
) -> Option<Result<Read<'a>, StoreError>> {
    let found = match req {
        Request::Get { table, key } => scoped(locked, scope, *table)
            .and_then(|arena| Ok(Read::Values(arena, vec![arena.table(*table)?.get(key)]))),
        Request::GetRange {
            table,
            start,
            count,
        } => scoped(locked, scope, *table).and_then(|arena| {
            let t = arena.table(*table)?;
            let values = (0..i64::from((*count).min(MAX_RANGE)))
                .map(|i| start.checked_add(i).map_or(Value::Nil, |k| t.get_int(k)))
                .collect();
            Ok(Read::Values(arena, values))
        }),
        Request::Next {
            table,
            after,
            limit,
        } => scoped(locked, scope, *table).and_then(|arena| {
            let mut entries = Vec::new();
            let done = arena
                .table(*table)?
                .next(
                    after.as_ref(),
                    (*limit).clamp(1, MAX_ENTRIES) as usize,
                    &mut entries,
                )
                .map_err(|_| StoreError::InvalidNextKey(after.clone().unwrap_or(Key::Int(0))))?;
            Ok(Read::Entries(arena, entries, done))
        }),
        _ => return None,
    };
    Some(found)
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
    let reply = match read(&locked, scope, &req) {
        Some(Ok(Read::Values(arena, values))) => {
            match records_of(&req, arena, &values) {
                Some(tables) => encode::records(out, &tables, &values),
                None => encode::fetched(out, arena, &values),
            }
            return None;
        }
        Some(Ok(Read::Entries(arena, entries, done))) => {
            encode::entries(out, arena, &entries, done);
            return None;
        }
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
fn records_of<'a>(req: &Request, arena: &'a Arena, values: &[Value]) -> Option<Vec<&'a Table>> {
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
                        .filter_map(|v| match v {
                            Value::Table(id) => Some(*id),
                            _ => None,
                        })
                        .collect(),
                    values: tables
                        .iter()
                        .flat_map(|t| encode::shape_values(t).map(SValue::to_value))
                        .collect(),
                }));
            }
            let tables = views(arena, &values);
            return Ok(Reply::Fetched(Fetched { values, tables }));
        }
        Some(Ok(Read::Entries(arena, entries, done))) => {
            let tables = views(arena, entries.iter().map(|(_, v)| v));
            return Ok(Reply::Entries {
                entries,
                tables,
                done,
            });
        }
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
        Request::Get { .. } | Request::GetRange { .. } | Request::Next { .. } => {
            unreachable!("reads are served by read() above")
        }
    }
}

fn write(locked: &mut Option<Locked<'_>>, scope: &Scope, w: Write) -> Result<(), StoreError> {
    scoped(locked, scope, w.table)?;
    let (arena, other) = locked
        .as_mut()
        .and_then(|l| l.split(arena_of(w.table)))
        .ok_or(StoreError::UnknownTable(w.table))?;
    if arena.table(w.table)?.readonly {
        return Err(StoreError::ReadOnly { key: w.key });
    }
    // `other` is the scope's other arena, if it exists and differs.
    convert::store(arena, other, w.table, w.key, w.value)
}
