//! [`HomeStoreError`]: why a data directory cannot be used, or a home not
//! read or written.

use std::path::PathBuf;

/// Why a home store failed. At start, each variant names the directory or
/// file and leaves it as it was.
#[derive(Debug, thiserror::Error)]
pub enum HomeStoreError {
    /// The data directory path exists and is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The data directory (or a file in it) cannot be created, read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process (a running daemon) holds the data directory.
    #[error("{path} is in use by another luapool process{}; stop it or use another directory", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The data directory.
        path: PathBuf,
        /// The pid the other process wrote in the lock file, if readable.
        pid: Option<u32>,
    },
    /// The database file is not a readable SQLite database of luapool homes.
    #[error("{path} is corrupt or not a luapool home database ({message}); it was left untouched")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The engine failed to read or write (disk full, I/O error, corruption
    /// found while reading a home).
    #[error("home store: {0}")]
    Engine(String),
    /// The store is shut down.
    #[error("the home store is closed")]
    Closed,
    /// A commit was made on top of a version of the home that is no longer
    /// the current one: another daemon committed (or dropped it) since it
    /// was read. Nothing was written.
    #[error("home {name:?} was changed by another daemon since it was read")]
    Conflict {
        /// The home.
        name: String,
    },
    /// The database server cannot be reached or refused the connection.
    #[error("cannot connect to the home store {target}: {message}")]
    Connect {
        /// The server, as given (without its password).
        target: String,
        /// What went wrong.
        message: String,
    },
    /// The database holds tables named like luapool's that are not a
    /// luapool home store of this version; nothing was changed.
    #[error("the home store {target} is not a luapool home store this luapool can use: {message}")]
    Schema {
        /// The server, as given (without its password).
        target: String,
        /// What was wrong.
        message: String,
    },
    /// Every connection to the database was busy for the whole wait.
    #[error("all {connections} connections to the home store were busy for {waited:?} (home_store_connections)")]
    Busy {
        /// The pool's size.
        connections: usize,
        /// How long the caller waited.
        waited: std::time::Duration,
    },
}

impl From<::postgres::Error> for HomeStoreError {
    fn from(e: ::postgres::Error) -> HomeStoreError {
        // The server's own message (with its detail) says more than Display.
        match e.as_db_error() {
            Some(db) => HomeStoreError::Engine(format!("{}: {}", db.severity(), db.message())),
            None => HomeStoreError::Engine(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for HomeStoreError {
    fn from(e: rusqlite::Error) -> HomeStoreError {
        HomeStoreError::Engine(e.to_string())
    }
}
