//! Homes shared by several daemons through PostgreSQL (issue 16), against
//! a real server: the backend itself (`backend.rs`), pools in this process
//! sharing one database (`pools.rs`), and real daemons, one killed with -9
//! while clients spread over them with `luapool_client::Cluster`
//! (`daemons.rs`).
//!
//! The server is the one `LUAPOOL_TEST_PG` names (an admin URL: each test
//! creates a database of its own there, so tests run in parallel):
//! `eval "$(.ci/services.sh)"` starts a throwaway one. Without it these
//! tests say how to run them and pass, except in CI (`CI` set), where
//! they fail: there they must run.

mod backend;
mod daemons;
mod pools;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh database on the test server, dropped with this value.
pub struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    /// A new empty database for the test `tag`, or `None` (after saying
    /// how to run the test) when no server is configured outside CI.
    pub fn fresh(tag: &str) -> Option<PgDb> {
        let Ok(admin) = std::env::var("LUAPOOL_TEST_PG") else {
            let how = "PostgreSQL tests need a server: run `eval \"$(.ci/services.sh)\"` \
                       (installs PostgreSQL if missing and starts a throwaway cluster), \
                       then `cargo test --workspace` in the same shell";
            if std::env::var_os("CI").is_some() {
                panic!("LUAPOOL_TEST_PG is not set in CI. {how}");
            }
            eprintln!("skipping {tag}: {how}");
            return None;
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "luapool_t{}_{}_{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to LUAPOOL_TEST_PG ({admin}): {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let url = with_db(&admin, &name);
        Some(PgDb { admin, name, url })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain connection to the database (to look or to meddle).
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

#[test]
fn test_databases_are_named_in_the_admin_url() {
    assert_eq!(
        with_db("postgres://u@%2Ftmp%2Fx/luapool_test", "d1"),
        "postgres://u@%2Ftmp%2Fx/d1"
    );
    assert_eq!(
        with_db("postgres://u@h:5/a?sslmode=disable", "d"),
        "postgres://u@h:5/d?sslmode=disable"
    );
    assert_eq!(with_db("postgres://u@h", "d"), "postgres://u@h/d");
}
