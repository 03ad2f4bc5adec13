//! `cargo bench -p luapool-tests --bench shared`: daemons sharing their
//! homes through PostgreSQL (docs/deploy.md, "Measured").
//!
//! Computes per second that increment a counter, each reply after its
//! PostgreSQL commit, with 1, 2 and 3 daemons (2 workers each) and 8
//! client threads:
//! - one shared home, the clients spread over the daemons round-robin
//!   (every daemon writes the home: conflicts, re-runs, row locks);
//! - one shared home through `Cluster` (the home's daemon takes it all);
//! - many homes (a home per client) through `Cluster`.
//!
//! Plus, for scale, one daemon on SQLite (`--data`) with the same clients.
//! Needs `cargo build --release --workspace` and a server in
//! `LUAPOOL_TEST_PG` (`eval "$(.ci/services.sh)"`): each row gets a fresh
//! database there. `LUAPOOL_BENCH_SECS` sets each row's duration (default 5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use luapool_client::{Client, Cluster, ComputeError, Session};

#[path = "common/daemon.rs"]
mod daemon;
use daemon::Daemon;

const INCREMENT: &str = "_home.n = (_home.n or 0) + 1 return _home.n";
const CLIENTS: usize = 8;

fn secs() -> Duration {
    Duration::from_secs_f64(
        std::env::var("LUAPOOL_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0),
    )
}

/// A fresh database on the server of `admin`; dropped with it.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    fn fresh(admin: &str, tag: &str) -> Db {
        let name = format!("luapool_bench{}_{tag}", std::process::id());
        let mut c = postgres::Client::connect(admin, postgres::NoTls).expect("LUAPOOL_TEST_PG");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the bench database");
        let base = admin.rsplit_once('/').expect("a URL with a database").0;
        Db {
            admin: admin.into(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// How the clients reach the daemons.
#[derive(Clone, Copy)]
enum Spread {
    /// Client `c` talks to daemon `c % n`.
    RoundRobin,
    /// Through a `Cluster` of all of them.
    Cluster,
}

/// Computes per second, and conflicts (computes that ran out of retries).
fn rate(daemons: &[Daemon], spread: Spread, shared: bool) -> (f64, u64) {
    let stop = AtomicBool::new(false);
    let (done, conflicts) = (AtomicU64::new(0), AtomicU64::new(0));
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (stop, done, conflicts) = (&stop, &done, &conflicts);
            s.spawn(move || {
                let home = if shared {
                    "shared".to_string()
                } else {
                    format!("h{c}")
                };
                let session: Session = match spread {
                    Spread::RoundRobin => Client::connect(&daemons[c % daemons.len()].socket)
                        .and_then(|cl| cl.session_with_home(&home)),
                    Spread::Cluster => Cluster::new(daemons.iter().map(|d| d.socket.clone()))
                        .session_with_home(&home),
                }
                .expect("a session");
                while !stop.load(Ordering::Relaxed) {
                    match session.compute(INCREMENT) {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if matches!(e.as_compute(), Some(ComputeError::Conflict { .. })) => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("compute: {e}"),
                    }
                }
            });
        }
        std::thread::sleep(secs());
        stop.store(true, Ordering::Relaxed);
    });
    let per_sec = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    (per_sec, conflicts.load(Ordering::Relaxed))
}

fn main() {
    let Ok(admin) = std::env::var("LUAPOOL_TEST_PG") else {
        eprintln!("LUAPOOL_TEST_PG is not set: eval \"$(.ci/services.sh)\" first");
        return;
    };
    println!("computes/s incrementing a counter, {CLIENTS} client threads, 2 workers per daemon");
    println!("| daemons | one shared home, round-robin | one shared home, Cluster | a home per client, Cluster |");
    println!("|---|---|---|---|");
    for n in 1..=3 {
        let mut cells = Vec::new();
        for (spread, shared, tag) in [
            (Spread::RoundRobin, true, "rr"),
            (Spread::Cluster, true, "cl"),
            (Spread::Cluster, false, "many"),
        ] {
            let db = Db::fresh(&admin, &format!("{n}_{tag}"));
            let daemons: Vec<Daemon> = (0..n)
                .map(|i| Daemon::start(&format!("{tag}{n}-{i}"), &["--home-store", &db.url]).0)
                .collect();
            let (r, conflicts) = rate(&daemons, spread, shared);
            cells.push(if conflicts > 0 {
                format!("{r:.0} ({conflicts} conflicts)")
            } else {
                format!("{r:.0}")
            });
        }
        println!("| {n} | {} |", cells.join(" | "));
    }
    let dir = std::env::temp_dir().join(format!("luapool-bench-{}-sqlite", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (d, _) = Daemon::start("sqlite", &["--data", dir.to_str().unwrap()]);
    let (shared, _) = rate(std::slice::from_ref(&d), Spread::Cluster, true);
    let (many, _) = rate(std::slice::from_ref(&d), Spread::Cluster, false);
    println!("| 1, SQLite (--data) | | {shared:.0} | {many:.0} |");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
