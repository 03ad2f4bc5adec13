//! [`PgHomes`]: homes kept in PostgreSQL, shared by several daemons.
//!
//! Opening connects once (a server that cannot be reached, or a database
//! whose `luapool_*` tables are not ours, fails at start) and creates the
//! tables if there are none (`sql.rs`). Every call then runs on the
//! calling thread (a pool thread for a compute's load and commit) over a
//! connection of a small bounded pool (`conns.rs`); the backend starts no
//! thread.
//!
//! Durability is PostgreSQL's: a commit returns once the server has
//! committed (with the server's default `synchronous_commit = on`, after
//! its WAL is flushed). Group commit is the server's too: commits from
//! several connections share its WAL flushes.

mod conns;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::{ChangeSet, HomeBackend, HomeInfo, HomeLock, HomeStoreError, StoredHome, Version};
use conns::{Conns, Lease};

/// Homes in a PostgreSQL database (see the module documentation).
pub struct PgHomes {
    conns: Arc<Conns>,
}

impl PgHomes {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, a
    /// Unix socket as a percent-encoded directory in place of HOST, or
    /// libpq's `key=value` form), creates the tables if the database has
    /// none, and keeps at most `connections` connections open.
    pub fn open(url: &str, connections: usize) -> Result<PgHomes, HomeStoreError> {
        let target = redact(url);
        let config = postgres::Config::from_str(url).map_err(|e| HomeStoreError::Connect {
            target: target.clone(),
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        let conns = Arc::new(Conns::new(config, target, connections));
        let mut first = conns.raw()?;
        sql::ensure_schema(&mut first, &conns.target)?;
        drop(first);
        // One prepared connection now: a grant missing on the tables shows here.
        drop(conns.get()?);
        Ok(PgHomes { conns })
    }

    /// The server, as given (without its password).
    pub fn target(&self) -> &str {
        &self.conns.target
    }
}

impl HomeBackend for PgHomes {
    fn list(&self) -> Result<Vec<HomeInfo>, HomeStoreError> {
        sql::list(&mut *self.conns.get()?)
    }

    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
        sql::load(&mut *self.conns.get()?, name)
    }

    fn commit(&self, name: &str, changes: ChangeSet, bytes: u64) -> Result<(), HomeStoreError> {
        sql::commit(&mut *self.conns.get()?, name, &changes, bytes, None).map(drop)
    }

    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError> {
        sql::drop_home(&mut *self.conns.get()?, name)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn version(&self, name: &str) -> Result<Version, HomeStoreError> {
        sql::version(&mut *self.conns.get()?, name)
    }

    fn commit_if(
        &self,
        name: &str,
        changes: ChangeSet,
        bytes: u64,
        expected: Version,
    ) -> Result<Version, HomeStoreError> {
        sql::commit(
            &mut *self.conns.get()?,
            name,
            &changes,
            bytes,
            Some(expected),
        )
    }

    fn lock(
        &self,
        name: &str,
        hold: Duration,
    ) -> Result<Option<Box<dyn HomeLock>>, HomeStoreError> {
        let mut conn = self.conns.get()?;
        Ok(sql::lock(&mut conn, name, hold)?.map(|version| {
            Box::new(PgLock {
                conn: Some(conn),
                name: name.to_string(),
                version,
            }) as Box<dyn HomeLock>
        }))
    }
}

/// A transaction holding a home's row (`SELECT … FOR UPDATE`), on a
/// connection of its own until it commits or is dropped (rolled back).
struct PgLock {
    conn: Option<Lease>,
    name: String,
    version: Version,
}

impl HomeLock for PgLock {
    fn version(&self) -> Version {
        self.version
    }

    fn commit(
        mut self: Box<Self>,
        changes: ChangeSet,
        bytes: u64,
    ) -> Result<Version, HomeStoreError> {
        let mut conn = self.conn.take().expect("a lock commits once");
        sql::commit_locked(&mut conn, &self.name, &changes, bytes, self.version)
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Nothing to write: let the row go.
            let _ = conn.client.batch_execute("ROLLBACK");
        }
    }
}

/// `url` without the password, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if let Some((user, host)) = authority.rsplit_once('@') {
            let user = user.split(':').next().unwrap_or_default();
            return format!("{scheme}://{user}@{host}{tail}");
        }
        return url.to_string();
    }
    // key=value form: drop the password pair.
    url.split_whitespace()
        .filter(|kv| !kv.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            redact("postgres://me:secret@db.example:5432/homes?sslmode=disable"),
            "postgres://me@db.example:5432/homes?sslmode=disable"
        );
        assert_eq!(redact("postgres://me@%2Ftmp/x"), "postgres://me@%2Ftmp/x");
        assert_eq!(
            redact("host=db user=me password=secret dbname=x"),
            "host=db user=me dbname=x"
        );
    }
}
