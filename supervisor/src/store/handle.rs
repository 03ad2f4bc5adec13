//! Serving one worker [`Request`] within a [`Scope`].
//!
//! Every table id a request names must belong to the scope's session or home
//! arena and be alive; anything else is "unknown table N". Reads inline small
//! tables (see [`inline`](super::inline)); writes refuse read-only tables and
//! check the quota before applying. Nothing here panics on any input.

use luapool_protocol::{
    encode_into, Fetched, Key, Reply, Request, RequestErrorKind, TableId, ToWorker, Value, Write,
};

use super::arena::{arena_of, Arena};
use super::inline::views;
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

/// Serves `req` and writes the whole `ToWorker::Reply` message into `out`;
/// reads are encoded straight from the store (see [`encode`]). Returns the
/// kind of the error reply, if it is one.
pub(crate) fn handle_into(
    locked: Option<Locked<'_>>,
    scope: &Scope,
    req: Request,
    out: &mut Vec<u8>,
) -> Option<RequestErrorKind> {
    let read: Result<(), StoreError> = match req {
        Request::Get { table, key } => (|| {
            let arena = scoped(&locked, scope, table)?;
            encode::fetched(out, arena, &[arena.table(table)?.get(&key)]);
            Ok(())
        })(),
        Request::GetRange {
            table,
            start,
            count,
        } => (|| {
            let arena = scoped(&locked, scope, table)?;
            let t = arena.table(table)?;
            let values: Vec<Value> = (0..i64::from(count.min(MAX_RANGE)))
                .map(|i| start.checked_add(i).map_or(Value::Nil, |k| t.get_int(k)))
                .collect();
            encode::fetched(out, arena, &values);
            Ok(())
        })(),
        Request::Next {
            table,
            ref after,
            limit,
        } => (|| {
            let arena = scoped(&locked, scope, table)?;
            let mut entries = Vec::new();
            let done = arena
                .table(table)?
                .next(
                    after.as_ref(),
                    limit.clamp(1, MAX_ENTRIES) as usize,
                    &mut entries,
                )
                .map_err(|_| StoreError::InvalidNextKey(after.clone().unwrap_or(Key::Int(0))))?;
            encode::entries(out, arena, &entries, done);
            Ok(())
        })(),
        other => {
            let reply = handle(locked, scope, other);
            let kind = if let Reply::Error(e) = &reply {
                Some(e.kind)
            } else {
                None
            };
            encode_into(&ToWorker::Reply(reply), out);
            return kind;
        }
    };
    match read {
        Ok(()) => None,
        Err(e) => {
            out.clear();
            let e: luapool_protocol::RequestError = e.into();
            let kind = e.kind;
            encode_into(&ToWorker::Reply(Reply::Error(e)), out);
            Some(kind)
        }
    }
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

fn serve(mut locked: Option<Locked<'_>>, scope: &Scope, req: Request) -> Result<Reply, StoreError> {
    match req {
        Request::Get { table, key } => {
            let arena = scoped(&locked, scope, table)?;
            let value = arena.table(table)?.get(&key);
            let tables = views(arena, [&value]);
            Ok(Reply::Fetched(Fetched {
                values: vec![value],
                tables,
            }))
        }
        Request::GetRange {
            table,
            start,
            count,
        } => {
            let arena = scoped(&locked, scope, table)?;
            let t = arena.table(table)?;
            let values: Vec<Value> = (0..i64::from(count.min(MAX_RANGE)))
                .map(|i| start.checked_add(i).map_or(Value::Nil, |k| t.get_int(k)))
                .collect();
            let tables = views(arena, &values);
            Ok(Reply::Fetched(Fetched { values, tables }))
        }
        Request::Len { table } => Ok(Reply::Len(
            scoped(&locked, scope, table)?.table(table)?.border(),
        )),
        Request::Next {
            table,
            after,
            limit,
        } => {
            let arena = scoped(&locked, scope, table)?;
            let mut entries = Vec::new();
            let done = arena
                .table(table)?
                .next(
                    after.as_ref(),
                    limit.clamp(1, MAX_ENTRIES) as usize,
                    &mut entries,
                )
                .map_err(|_| StoreError::InvalidNextKey(after.clone().unwrap_or(Key::Int(0))))?;
            let tables = views(arena, entries.iter().map(|(_, v)| v));
            Ok(Reply::Entries {
                entries,
                tables,
                done,
            })
        }
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
