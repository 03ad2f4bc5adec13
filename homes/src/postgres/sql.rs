//! The PostgreSQL tables of homes, and the statements that read a home,
//! check its version and apply a change set on top of a version.
//!
//! ```sql
//! luapool_schema  (version)                          -- one row: 1
//! luapool_homes   (id, name UNIQUE, version, bytes, next_seq)
//! luapool_tables  (home, slot, from_array)           PRIMARY KEY (home, slot)
//! luapool_entries (home, slot, key, seq, value)      PRIMARY KEY (home, slot, key)
//! ```
//! As in the SQLite store (`schema.rs`), `seq` orders a home's entries by
//! first write. `version` comes from the sequence `luapool_versions`, so a
//! version is never given twice, even to a home dropped and made again: a
//! daemon that cached the old one sees a different version.
//!
//! A commit is one transaction (PostgreSQL's default `READ COMMITTED`):
//! its first statement moves the home's row from the version the compute
//! read to a new one (`UPDATE … WHERE version = $expected`). That row
//! lock serializes the commits of one home; a commit whose version is no
//! longer the home's matches no row, writes nothing and is a
//! [`Conflict`](HomeStoreError::Conflict). Entries go in batches of
//! `UNNEST`ed arrays, so a commit costs a few round trips however many rows
//! it writes. The tables live in the connection's `search_path` (the URL's
//! `options=-c search_path=…` chooses a schema).

use std::collections::HashSet;

use postgres::fallible_iterator::FallibleIterator;
use std::time::Duration;

use postgres::{Client, GenericClient, IsolationLevel, Statement};

use super::conns::Conn;
use crate::{ChangeSet, HomeInfo, HomeStoreError, PersistTable, StoredHome, Version, ABSENT};

/// The schema version this luapool reads and writes.
const SCHEMA_VERSION: i32 = 1;
/// The advisory lock taken while the schema is created ("LUAH").
const SCHEMA_LOCK: i64 = 0x4C55_4148;
/// Rows per statement when a change set is written.
const BATCH: usize = 8192;

const SCHEMA: &str = "
    CREATE TABLE luapool_schema (version integer NOT NULL);
    CREATE SEQUENCE luapool_versions;
    CREATE TABLE luapool_homes (
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        version bigint NOT NULL,
        bytes bigint NOT NULL DEFAULT 0,
        next_seq bigint NOT NULL DEFAULT 1
    );
    CREATE TABLE luapool_tables (
        home bigint NOT NULL,
        slot bigint NOT NULL,
        from_array boolean NOT NULL,
        PRIMARY KEY (home, slot)
    );
    CREATE TABLE luapool_entries (
        home bigint NOT NULL,
        slot bigint NOT NULL,
        key bytea NOT NULL,
        seq bigint NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (home, slot, key)
    );
";

/// Creates the tables if the database has none of them; checks they are
/// ours (of this version) if it has. Daemons starting together take turns
/// (an advisory lock), so the tables are made once.
pub fn ensure_schema(client: &mut Client, target: &str) -> Result<(), HomeStoreError> {
    let schema = |message: String| HomeStoreError::Schema {
        target: target.to_string(),
        message,
    };
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let exists = |tx: &mut postgres::Transaction<'_>, t: &str| -> Result<bool, HomeStoreError> {
        let row = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])?;
        Ok(row.get(0))
    };
    if exists(&mut tx, "luapool_schema")? {
        let versions: Vec<i32> = tx
            .query("SELECT version FROM luapool_schema", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if versions != [SCHEMA_VERSION] {
            return Err(schema(format!(
                "luapool_schema holds {versions:?}, this luapool reads [{SCHEMA_VERSION}]"
            )));
        }
    } else {
        for t in [
            "luapool_homes",
            "luapool_tables",
            "luapool_entries",
            "luapool_versions",
        ] {
            if exists(&mut tx, t)? {
                return Err(schema(format!(
                    "{t} exists without luapool_schema; it was left untouched"
                )));
            }
        }
        tx.batch_execute(SCHEMA)?;
        tx.execute(
            "INSERT INTO luapool_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The statements of one connection, prepared once.
pub struct Statements {
    list: Statement,
    version: Statement,
    lock: Statement,
    home: Statement,
    tables: Statement,
    entries: Statement,
    bump: Statement,
    create: Statement,
    put: Statement,
    clear_entries: Statement,
    clear_tables: Statement,
    free_entries: Statement,
    free_tables: Statement,
    add_tables: Statement,
    upsert: Statement,
    delete: Statement,
    drop: Statement,
}

impl Statements {
    pub fn prepare(c: &mut Client) -> Result<Statements, HomeStoreError> {
        // $2 bytes, $3 the upserts the commit makes (their seqs are
        // next_seq - $3 .. next_seq - 1 after it).
        let new_row = "RETURNING id, version, next_seq - $3::bigint";
        Ok(Statements {
            list: c.prepare("SELECT name, bytes FROM luapool_homes ORDER BY name")?,
            version: c.prepare("SELECT version FROM luapool_homes WHERE name = $1")?,
            lock: c.prepare("SELECT version FROM luapool_homes WHERE name = $1 FOR UPDATE")?,
            home: c.prepare("SELECT id, version, bytes FROM luapool_homes WHERE name = $1")?,
            tables: c.prepare("SELECT slot, from_array FROM luapool_tables WHERE home = $1")?,
            entries: c
                .prepare("SELECT slot, key, value, seq FROM luapool_entries WHERE home = $1")?,
            bump: c.prepare(&format!(
                "UPDATE luapool_homes SET version = nextval('luapool_versions'),
                     bytes = $2::bigint, next_seq = next_seq + $3::bigint
                 WHERE name = $1 AND version = $4::bigint {new_row}"
            ))?,
            create: c.prepare(&format!(
                "INSERT INTO luapool_homes (name, version, bytes, next_seq)
                 VALUES ($1, nextval('luapool_versions'), $2::bigint, 1 + $3::bigint)
                 ON CONFLICT (name) DO NOTHING {new_row}"
            ))?,
            put: c.prepare(&format!(
                "INSERT INTO luapool_homes AS h (name, version, bytes, next_seq)
                 VALUES ($1, nextval('luapool_versions'), $2::bigint, 1 + $3::bigint)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                     bytes = excluded.bytes, next_seq = h.next_seq + $3::bigint {new_row}"
            ))?,
            clear_entries: c.prepare("DELETE FROM luapool_entries WHERE home = $1")?,
            clear_tables: c.prepare("DELETE FROM luapool_tables WHERE home = $1")?,
            free_entries: c
                .prepare("DELETE FROM luapool_entries WHERE home = $1 AND slot = ANY($2)")?,
            free_tables: c
                .prepare("DELETE FROM luapool_tables WHERE home = $1 AND slot = ANY($2)")?,
            add_tables: c.prepare(
                "INSERT INTO luapool_tables (home, slot, from_array)
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::boolean[])",
            )?,
            upsert: c.prepare(
                "INSERT INTO luapool_entries (home, slot, key, seq, value)
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[])
                 ON CONFLICT (home, slot, key) DO UPDATE SET value = excluded.value",
            )?,
            delete: c.prepare(
                "DELETE FROM luapool_entries e USING UNNEST($2::bigint[], $3::bytea[]) AS d(slot, key)
                 WHERE e.home = $1 AND e.slot = d.slot AND e.key = d.key",
            )?,
            drop: c.prepare("DELETE FROM luapool_homes WHERE name = $1 RETURNING id")?,
        })
    }
}

fn int(v: i64) -> u64 {
    v.max(0) as u64
}

pub fn list(conn: &mut Conn) -> Result<Vec<HomeInfo>, HomeStoreError> {
    let rows = conn.client.query(&conn.st.list, &[])?;
    Ok(rows
        .iter()
        .map(|r| HomeInfo {
            name: r.get(0),
            bytes: int(r.get(1)),
        })
        .collect())
}

pub fn version(conn: &mut Conn, name: &str) -> Result<Version, HomeStoreError> {
    let row = conn.client.query_opt(&conn.st.version, &[&name])?;
    Ok(row.map_or(ABSENT, |r| int(r.get(0))))
}

/// The home `name` as one snapshot, its entries in first-written order.
pub fn load(conn: &mut Conn, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
    let Conn { client, st } = conn;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let Some(row) = tx.query_opt(&st.home, &[&name])? else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let mut home = StoredHome {
        version: int(row.get(1)),
        bytes: int(row.get(2)),
        ..StoredHome::default()
    };
    home.tables = tx
        .query(&st.tables, &[&id])?
        .iter()
        .map(|r| PersistTable {
            slot: r.get::<_, i64>(0) as u32,
            from_array: r.get(1),
        })
        .collect();
    let mut entries = Vec::new();
    let mut rows = tx.query_raw(&st.entries, [&id])?;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(3);
        entries.push((seq, (r.get::<_, i64>(0) as u32, r.get(1), r.get(2))));
    }
    drop(rows);
    tx.commit()?;
    entries.sort_unstable_by_key(|(seq, _)| *seq);
    home.entries = entries.into_iter().map(|(_, e)| e).collect();
    Ok(Some(home))
}

/// Applies `cs` to the home `name` in one transaction: on top of version
/// `expected` (`None`: whatever the home holds). Returns the new version.
pub fn commit(
    conn: &mut Conn,
    name: &str,
    cs: &ChangeSet,
    bytes: u64,
    expected: Option<Version>,
) -> Result<Version, HomeStoreError> {
    let Conn { client, st } = conn;
    let mut tx = client.transaction()?;
    // Dropping `tx` without a commit (on an error) rolls it back.
    let version = apply(&mut tx, st, name, cs, bytes, expected)?;
    tx.commit()?;
    Ok(version)
}

/// Begins a transaction that holds the row of the home `name` (`SELECT
/// … FOR UPDATE`): no other connection commits to the home until it ends.
/// The server ends it (and the connection) if it sits idle past `hold`.
/// Returns the home's version, or `None` (and no transaction) if there is
/// no such home.
pub fn lock(
    conn: &mut Conn,
    name: &str,
    hold: Duration,
) -> Result<Option<Version>, HomeStoreError> {
    let Conn { client, st } = conn;
    client.batch_execute(&format!(
        "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {}",
        hold.as_millis().max(1)
    ))?;
    match client.query_opt(&st.lock, &[&name]) {
        Ok(Some(row)) => Ok(Some(int(row.get(0)))),
        Ok(None) => {
            client.batch_execute("ROLLBACK")?;
            Ok(None)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(e.into())
        }
    }
}

/// Commits `cs` in the transaction [`lock`] began (on top of `version`, which
/// the lock kept current), or rolls it back on an error.
pub fn commit_locked(
    conn: &mut Conn,
    name: &str,
    cs: &ChangeSet,
    bytes: u64,
    version: Version,
) -> Result<Version, HomeStoreError> {
    let Conn { client, st } = conn;
    let applied = apply(client, st, name, cs, bytes, Some(version));
    match applied.and_then(|v| Ok(client.batch_execute("COMMIT").map(|()| v)?)) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// Writes `cs` within the open transaction of `c`.
fn apply(
    c: &mut impl GenericClient,
    st: &Statements,
    name: &str,
    cs: &ChangeSet,
    bytes: u64,
    expected: Option<Version>,
) -> Result<Version, HomeStoreError> {
    let upserts = cs.entries.iter().filter(|e| e.value.is_some()).count() as i64;
    let bytes = bytes.min(i64::MAX as u64) as i64;
    let row = match expected {
        None => c.query_opt(&st.put, &[&name, &bytes, &upserts])?,
        Some(ABSENT) => c.query_opt(&st.create, &[&name, &bytes, &upserts])?,
        Some(v) => c.query_opt(&st.bump, &[&name, &bytes, &upserts, &(v as i64)])?,
    };
    let Some(row) = row else {
        return Err(HomeStoreError::Conflict {
            name: name.to_string(),
        });
    };
    let (id, version, mut seq): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if cs.replace {
        c.execute(&st.clear_entries, &[&id])?;
        c.execute(&st.clear_tables, &[&id])?;
    }
    let slots: Vec<i64> = cs
        .freed
        .iter()
        .chain(cs.created.iter().map(|t| &t.slot))
        .map(|&s| i64::from(s))
        .collect();
    if !slots.is_empty() {
        c.execute(&st.free_entries, &[&id, &slots])?;
        c.execute(&st.free_tables, &[&id, &slots])?;
    }
    for chunk in cs.created.chunks(BATCH) {
        let slots: Vec<i64> = chunk.iter().map(|t| i64::from(t.slot)).collect();
        let arrays: Vec<bool> = chunk.iter().map(|t| t.from_array).collect();
        c.execute(&st.add_tables, &[&id, &slots, &arrays])?;
    }
    // Runs of upserts, or of deletes, with no key twice in a run: each run
    // is one statement, and the runs apply in order, as the entries do.
    let mut run = Run::default();
    for e in &cs.entries {
        let upsert = e.value.is_some();
        if !run.takes(upsert, e.slot, &e.key) {
            run.flush(c, st, id)?;
        }
        run.push(e.slot, &e.key, e.value.as_deref(), &mut seq);
    }
    run.flush(c, st, id)?;
    Ok(int(version))
}

/// A batch of entry writes of one kind.
#[derive(Default)]
struct Run<'a> {
    upsert: bool,
    keys: HashSet<(u32, &'a [u8])>,
    slots: Vec<i64>,
    key_bytes: Vec<&'a [u8]>,
    seqs: Vec<i64>,
    values: Vec<&'a [u8]>,
}

impl<'a> Run<'a> {
    /// Whether the entry may join this run.
    fn takes(&self, upsert: bool, slot: u32, key: &'a [u8]) -> bool {
        self.slots.is_empty()
            || (self.upsert == upsert
                && self.slots.len() < BATCH
                && !self.keys.contains(&(slot, key)))
    }

    fn push(&mut self, slot: u32, key: &'a [u8], value: Option<&'a [u8]>, seq: &mut i64) {
        self.upsert = value.is_some();
        self.keys.insert((slot, key));
        self.slots.push(i64::from(slot));
        self.key_bytes.push(key);
        if let Some(v) = value {
            self.seqs.push(*seq);
            *seq += 1;
            self.values.push(v);
        }
    }

    fn flush(
        &mut self,
        tx: &mut impl GenericClient,
        st: &Statements,
        id: i64,
    ) -> Result<(), HomeStoreError> {
        if self.slots.is_empty() {
            return Ok(());
        }
        if self.upsert {
            tx.execute(
                &st.upsert,
                &[&id, &self.slots, &self.key_bytes, &self.seqs, &self.values],
            )?;
        } else {
            tx.execute(&st.delete, &[&id, &self.slots, &self.key_bytes])?;
        }
        *self = Run::default();
        Ok(())
    }
}

/// Deletes the home `name`; `false` if there was none.
pub fn drop_home(conn: &mut Conn, name: &str) -> Result<bool, HomeStoreError> {
    let Conn { client, st } = conn;
    let mut tx = client.transaction()?;
    let Some(row) = tx.query_opt(&st.drop, &[&name])? else {
        return Ok(false);
    };
    let id: i64 = row.get(0);
    tx.execute(&st.clear_entries, &[&id])?;
    tx.execute(&st.clear_tables, &[&id])?;
    tx.commit()?;
    Ok(true)
}
