//! The SQLite database of homes: opening (and refusing what is not ours),
//! the schema, and the statements that apply a change set and read a home.
//!
//! ```sql
//! homes   (id INTEGER PRIMARY KEY, name TEXT UNIQUE, bytes, next_seq)
//! tables  (home, slot, from_array)            PRIMARY KEY (home, slot)
//! entries (home, slot, key, seq, value)       PRIMARY KEY (home, slot, key)
//! ```
//! `tables` and `entries` are `WITHOUT ROWID`: a home is one range of each
//! primary key, so loading it is a scan. `seq` orders a home's entries by
//! first write (an update keeps it), so `pairs` walks in the same order
//! after a restart.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a commit returns
//! after its WAL frames are fsynced (SQLite's default `NORMAL` in WAL mode
//! may lose the last commits at a power cut; `FULL` does not).

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{ChangeSet, HomeInfo, HomeStoreError, PersistTable, StoredEntry, StoredHome};

/// The database file's name in the data directory.
pub const DB_FILE: &str = "homes.db";
/// `PRAGMA application_id` of a luapool home database ("LUAH").
const APPLICATION_ID: i64 = 0x4C55_4148;
/// `PRAGMA user_version` of this schema.
const SCHEMA_VERSION: i64 = 1;
/// What every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

const SCHEMA: &str = "
    CREATE TABLE homes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        bytes INTEGER NOT NULL DEFAULT 0,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE tables (
        home INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        from_array INTEGER NOT NULL,
        PRIMARY KEY (home, slot)
    ) WITHOUT ROWID;
    CREATE TABLE entries (
        home INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        key BLOB NOT NULL,
        seq INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (home, slot, key)
    ) WITHOUT ROWID;
";

fn corrupt(path: &Path, message: impl ToString) -> HomeStoreError {
    HomeStoreError::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Checks the file at `path` before SQLite writes anything to it: absent,
/// empty, or starting like an SQLite database.
pub fn precheck(path: &Path) -> Result<(), HomeStoreError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(HomeStoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut head = Vec::with_capacity(16);
    (&mut f)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|source| HomeStoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if head.is_empty() || head == SQLITE_MAGIC {
        return Ok(());
    }
    Err(corrupt(path, "the file is not an SQLite database"))
}

/// Opens (creating if new) the database at `path` and checks it is ours.
pub fn open(path: &Path) -> Result<Connection, HomeStoreError> {
    precheck(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(path, e))?;
    let read = |sql: &str| -> Result<i64, HomeStoreError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| corrupt(path, e))
    };
    let app = read("PRAGMA application_id")?;
    let objects = read("SELECT count(*) FROM sqlite_master")?;
    match (app, objects) {
        (0, 0) => {
            conn.execute_batch("PRAGMA journal_mode = WAL")
                .map_err(|e| corrupt(path, e))?;
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
        }
        (APPLICATION_ID, _) => {
            let version = read("PRAGMA user_version")?;
            if version != SCHEMA_VERSION {
                return Err(corrupt(
                    path,
                    format!("schema version {version}, this luapool reads {SCHEMA_VERSION}"),
                ));
            }
            // Reads the homes table: a damaged first page shows here.
            read("SELECT count(*) FROM homes")?;
            conn.execute_batch("PRAGMA journal_mode = WAL")
                .map_err(|e| corrupt(path, e))?;
        }
        _ => return Err(corrupt(path, "an SQLite database of something else")),
    }
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    Ok(conn)
}

/// A second connection to the database, for reading homes while the
/// committer writes (WAL readers see the last commit).
pub fn open_reader(path: &Path) -> Result<Connection, HomeStoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    Ok(conn)
}

/// Every home, by name.
pub fn list(conn: &Connection) -> Result<Vec<HomeInfo>, HomeStoreError> {
    let mut st = conn.prepare_cached("SELECT name, bytes FROM homes ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(HomeInfo {
            name: r.get(0)?,
            bytes: r.get::<_, i64>(1)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The home `name`, its entries in first-written order.
pub fn load(conn: &mut Connection, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
    let tx = conn.transaction()?; // one snapshot for the three reads
    let Some((id, bytes)) = tx
        .query_row("SELECT id, bytes FROM homes WHERE name = ?1", [name], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let mut home = StoredHome {
        bytes: bytes as u64,
        ..StoredHome::default()
    };
    {
        let mut st = tx.prepare_cached("SELECT slot, from_array FROM tables WHERE home = ?1")?;
        let rows = st.query_map([id], |r| {
            Ok(PersistTable {
                slot: r.get(0)?,
                from_array: r.get(1)?,
            })
        })?;
        home.tables = rows.collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare_cached("SELECT slot, key, value, seq FROM entries WHERE home = ?1")?;
        let mut rows = st.query([id])?;
        let mut entries: Vec<(i64, StoredEntry)> = Vec::new();
        while let Some(r) = rows.next()? {
            entries.push((r.get(3)?, (r.get(0)?, r.get(1)?, r.get(2)?)));
        }
        entries.sort_unstable_by_key(|(seq, _)| *seq);
        home.entries = entries.into_iter().map(|(_, e)| e).collect();
    }
    tx.finish()?;
    Ok(Some(home))
}

/// The id of the home `name` and its next entry sequence, creating it.
fn home_id(tx: &Connection, name: &str) -> Result<(i64, i64), HomeStoreError> {
    tx.execute(
        "INSERT INTO homes (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        [name],
    )?;
    Ok(tx.query_row(
        "SELECT id, next_seq FROM homes WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// Applies `cs` to the home `name` inside the open transaction `tx`.
pub fn apply(
    tx: &Connection,
    name: &str,
    cs: &ChangeSet,
    bytes: u64,
) -> Result<(), HomeStoreError> {
    let (id, mut seq) = home_id(tx, name)?;
    if cs.replace {
        tx.execute("DELETE FROM entries WHERE home = ?1", [id])?;
        tx.execute("DELETE FROM tables WHERE home = ?1", [id])?;
    }
    {
        let mut del_entries =
            tx.prepare_cached("DELETE FROM entries WHERE home = ?1 AND slot = ?2")?;
        let mut del_table =
            tx.prepare_cached("DELETE FROM tables WHERE home = ?1 AND slot = ?2")?;
        for slot in cs.freed.iter().chain(cs.created.iter().map(|t| &t.slot)) {
            del_entries.execute(params![id, slot])?;
            del_table.execute(params![id, slot])?;
        }
        let mut add_table =
            tx.prepare_cached("INSERT INTO tables (home, slot, from_array) VALUES (?1, ?2, ?3)")?;
        for t in &cs.created {
            add_table.execute(params![id, t.slot, t.from_array])?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO entries (home, slot, key, seq, value) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (home, slot, key) DO UPDATE SET value = excluded.value",
        )?;
        let mut delete =
            tx.prepare_cached("DELETE FROM entries WHERE home = ?1 AND slot = ?2 AND key = ?3")?;
        for e in &cs.entries {
            match &e.value {
                Some(v) => {
                    upsert.execute(params![id, e.slot, e.key, seq, v])?;
                    seq += 1;
                }
                None => drop(delete.execute(params![id, e.slot, e.key])?),
            }
        }
    }
    tx.execute(
        "UPDATE homes SET bytes = ?2, next_seq = ?3 WHERE id = ?1",
        params![id, bytes as i64, seq],
    )?;
    Ok(())
}

/// Deletes the home `name` inside `tx`; `false` if there was none.
pub fn drop_home(tx: &Connection, name: &str) -> Result<bool, HomeStoreError> {
    let Some(id) = tx
        .query_row("SELECT id FROM homes WHERE name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(false);
    };
    tx.execute("DELETE FROM entries WHERE home = ?1", [id])?;
    tx.execute("DELETE FROM tables WHERE home = ?1", [id])?;
    tx.execute("DELETE FROM homes WHERE id = ?1", [id])?;
    Ok(true)
}
