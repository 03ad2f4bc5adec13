//! [`SqliteHomes`]: homes in an SQLite database in a data directory.
//!
//! Opening checks the directory before anything is written: it must be a
//! directory (created if missing, not its parents), readable and writable;
//! its lock must be free (another daemon on it is [`HomeStoreError::InUse`]);
//! `homes.db` must be absent, empty, or a luapool home database (anything
//! else is [`HomeStoreError::Corrupt`] and is left untouched).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::committer::{Committer, Write};
use crate::lock::DirLock;
use crate::schema::{self, DB_FILE};
use crate::{ChangeSet, HomeBackend, HomeInfo, HomeStoreError, StoredHome};

/// Homes kept in `DIR/homes.db` (SQLite, WAL, `synchronous = FULL`), with
/// group commit (`committer.rs`). Dropping it releases the directory.
pub struct SqliteHomes {
    dir: PathBuf,
    committer: Committer,
    reader: Mutex<Connection>,
    _lock: DirLock,
}

impl SqliteHomes {
    /// Opens the data directory `dir` (see the module documentation).
    pub fn open(dir: impl AsRef<Path>) -> Result<SqliteHomes, HomeStoreError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path, source| HomeStoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => return Err(HomeStoreError::NotADirectory { path: dir }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&dir).map_err(|e| io(&dir, e))?
            }
            Err(e) => return Err(io(&dir, e)),
        }
        std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        let lock = DirLock::take(&dir)?;
        let db = dir.join(DB_FILE);
        let writer = schema::open(&db)?;
        let reader = schema::open_reader(&db).map_err(|e| HomeStoreError::Corrupt {
            path: db.clone(),
            message: e.to_string(),
        })?;
        Ok(SqliteHomes {
            dir,
            committer: Committer::new(writer),
            reader: Mutex::new(reader),
            _lock: lock,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, write: Write) -> Result<bool, HomeStoreError> {
        self.committer.write(write)
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HomeBackend for SqliteHomes {
    fn list(&self) -> Result<Vec<HomeInfo>, HomeStoreError> {
        schema::list(&self.reader())
    }

    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
        schema::load(&mut self.reader(), name)
    }

    fn commit(&self, name: &str, changes: ChangeSet, bytes: u64) -> Result<(), HomeStoreError> {
        self.write(Write::Commit(name.to_string(), changes, bytes))
            .map(drop)
    }

    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError> {
        self.write(Write::Drop(name.to_string()))
    }
}

impl Drop for SqliteHomes {
    fn drop(&mut self) {
        self.committer.close();
    }
}
