//! Pools in this process that share one PostgreSQL home store, as daemons
//! on several machines would: a home made through one is read through the
//! other, a drop is seen by all, a cached home is never served stale,
//! and computes that share a home lose no update, a compute whose home
//! changed under it running again on the new home.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luapool_homes::{
    ChangeSet, HomeBackend, HomeInfo, HomeLock, HomeStoreError, StoredHome, Version,
};
use luapool_supervisor::{ComputeError, ComputeOptions, HostValue, Pool, PoolBuilder, Session};

use super::PgDb;

fn builder() -> PoolBuilder {
    Pool::builder()
        .workers(2)
        .restart_intensity(1000, Duration::from_secs(60))
}

fn pool(db: &PgDb) -> Arc<Pool> {
    builder()
        .home_store(db.url())
        .build()
        .expect("a pool on the home store")
}

fn value(s: &Session, code: &str) -> HostValue {
    let out = s.compute(code).unwrap_or_else(|e| panic!("{code}: {e}"));
    out.values.into_iter().next().unwrap_or(HostValue::Nil)
}

fn int(s: &Session, code: &str) -> i64 {
    match value(s, code) {
        HostValue::Int(n) => n,
        other => panic!("{code}: expected an integer, got {other:?}"),
    }
}

fn names(p: &Pool) -> Vec<String> {
    p.list_homes()
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect()
}

#[test]
fn a_home_made_through_one_pool_is_read_through_another_and_a_drop_is_seen_by_all() {
    let Some(db) = PgDb::fresh("pools_drop") else {
        return;
    };
    let (a, b) = (pool(&db), pool(&db));
    {
        let s = a.session_with_home("h").unwrap();
        s.compute("_home.x = 1 _home.t = { a = 2 }").unwrap();
    }
    let sb = b.session_with_home("h").unwrap();
    assert_eq!(int(&sb, "return _home.x + _home.t.a"), 3);
    assert_eq!(names(&b), ["h"]);
    assert_eq!(
        a.export_home("h").unwrap().to_json(),
        serde_json::json!({ "x": 1, "t": { "a": 2 } })
    );
    // Dropped through A while B holds it in memory (and a session on it).
    assert!(a.drop_home("h").unwrap());
    assert!(names(&b).is_empty(), "B lists a home dropped elsewhere");
    assert!(names(&a).is_empty());
    assert!(b.export_home("h").is_err(), "B exports a dropped home");
    // B's session finds an empty home: nothing of the dropped one.
    assert_eq!(value(&sb, "return _home.x"), HostValue::Nil);
    // And a home made again through B is B's new one, seen by A.
    sb.compute("_home.y = 5").unwrap();
    let sa = a.session_with_home("h").unwrap();
    assert_eq!(
        value(&sa, "return { x = _home.x, y = _home.y }").to_json(),
        serde_json::json!({ "y": 5 })
    );
}

#[test]
fn a_cached_home_is_never_served_stale() {
    let Some(db) = PgDb::fresh("pools_stale") else {
        return;
    };
    let (a, b) = (pool(&db), pool(&db));
    let sa = a.session_with_home("c").unwrap();
    let sb = b.session_with_home("c").unwrap();
    sa.compute("_home.n = 1 _home.list = { 'a' }").unwrap();
    // B caches it, then A commits twice: B sees each write.
    assert_eq!(int(&sb, "return _home.n"), 1);
    for n in 2..5 {
        sa.compute(&format!("_home.n = {n} _home.list[#_home.list + 1] = 'x'"))
            .unwrap();
        assert_eq!(int(&sb, "return _home.n"), n);
        assert_eq!(int(&sb, "return #_home.list"), n);
    }
    // Export and import go by the store too.
    drop(sa);
    a.import_home(
        "c",
        &HostValue::Map(vec![(luapool_protocol::Key::str("n"), HostValue::Int(40))]),
    )
    .unwrap();
    assert_eq!(int(&sb, "return _home.n"), 40);
    assert_eq!(
        b.export_home("c").unwrap().to_json(),
        serde_json::json!({ "n": 40 })
    );
}

#[test]
fn computes_of_two_pools_on_one_home_lose_no_update() {
    let Some(db) = PgDb::fresh("pools_count") else {
        return;
    };
    let pools = [pool(&db), pool(&db)];
    const THREADS: usize = 3;
    const EACH: i64 = 40;
    std::thread::scope(|scope| {
        for p in &pools {
            for t in 0..THREADS {
                scope.spawn(move || {
                    let s = p.session_with_home("shared").unwrap();
                    for i in 0..EACH {
                        let code = format!(
                            "_home.n = (_home.n or 0) + 1
                             _home.log = _home.log or {{}}
                             _home.log[#_home.log + 1] = '{t}:{i}'"
                        );
                        s.compute(&code).unwrap_or_else(|e| panic!("{code}: {e}"));
                    }
                });
            }
        }
    });
    let s = pools[0].session_with_home("shared").unwrap();
    let total = (2 * THREADS) as i64 * EACH;
    assert_eq!(int(&s, "return _home.n"), total);
    assert_eq!(int(&s, "return #_home.log"), total);
}

/// A backend that holds the next commit until the test lets it go.
struct Gated {
    inner: Arc<dyn HomeBackend>,
    hold: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Gated {
    /// Holds the next commit: `arrived` hears of it, `go` lets it go on.
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (arrived_tx, arrived) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        *self.hold.lock().unwrap() = Some((arrived_tx, go_rx));
        (arrived, go)
    }
}

impl HomeBackend for Gated {
    fn list(&self) -> Result<Vec<HomeInfo>, HomeStoreError> {
        self.inner.list()
    }
    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
        self.inner.load(name)
    }
    fn commit(&self, name: &str, changes: ChangeSet, bytes: u64) -> Result<(), HomeStoreError> {
        self.inner.commit(name, changes, bytes)
    }
    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError> {
        self.inner.drop_home(name)
    }
    fn is_shared(&self) -> bool {
        true
    }
    fn version(&self, name: &str) -> Result<Version, HomeStoreError> {
        self.inner.version(name)
    }
    fn lock(
        &self,
        name: &str,
        hold: Duration,
    ) -> Result<Option<Box<dyn HomeLock>>, HomeStoreError> {
        self.inner.lock(name, hold)
    }
    fn commit_if(
        &self,
        name: &str,
        changes: ChangeSet,
        bytes: u64,
        expected: Version,
    ) -> Result<Version, HomeStoreError> {
        let hold = self.hold.lock().unwrap().take();
        if let Some((arrived, go)) = hold {
            arrived.send(()).unwrap();
            go.recv().unwrap();
        }
        self.inner.commit_if(name, changes, bytes, expected)
    }
}

/// The compute of `retry_test`: reads, then writes what it read plus one.
const READ_THEN_WRITE: &str = "print('ran') local n = _home.n _home.n = n + 1 return n";

#[test]
fn a_compute_whose_home_changed_while_it_ran_runs_again_on_the_new_home() {
    let Some(db) = PgDb::fresh("pools_retry") else {
        return;
    };
    let gated = |retries| {
        let g = Arc::new(Gated {
            inner: Arc::new(luapool_homes::PgHomes::open(db.url(), 4).unwrap()),
            hold: Mutex::new(None),
        });
        let p = builder()
            .home_backend(g.clone())
            .conflict_retries(retries)
            .build()
            .unwrap();
        (g, p)
    };
    let other = pool(&db);
    let so = other.session_with_home("g").unwrap();
    so.compute("_home.n = 0").unwrap();

    let (gate, a) = gated(10);
    let sa = a.session_with_home("g").unwrap();
    let (arrived, go) = gate.arm();
    let streamed = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done) = mpsc::channel();
    let sink = streamed.clone();
    let opts = ComputeOptions {
        on_log: Some(Box::new(move |l: &str| {
            sink.lock().unwrap().push(l.to_string())
        })),
        ..ComputeOptions::default()
    };
    sa.compute_async(
        READ_THEN_WRITE,
        opts,
        Box::new(move |r| drop(done_tx.send(r))),
    );
    // A's compute read n = 0 and waits to commit n = 1; another pool commits first.
    arrived.recv().unwrap();
    so.compute("_home.n = _home.n + 100").unwrap();
    go.send(()).unwrap();
    let out = done
        .recv()
        .unwrap()
        .expect("the compute ran again and committed");
    assert_eq!(
        out.values,
        [HostValue::Int(100)],
        "the second run read the new home"
    );
    assert_eq!(out.logs, ["ran"], "the result has the last run's lines");
    assert_eq!(
        *streamed.lock().unwrap(),
        ["ran", "ran"],
        "streaming saw both runs"
    );
    assert_eq!(int(&so, "return _home.n"), 101);

    // With no retries allowed, the conflict is the compute's error, and
    // nothing of it is kept.
    let (gate, b) = gated(0);
    let sb = b.session_with_home("g").unwrap();
    sb.compute("_io.output = 'before'").unwrap();
    let (arrived, go) = gate.arm();
    let (done_tx, done) = mpsc::channel();
    sb.compute_async(
        "_io.output = 'mine' _home.n = _home.n + 1",
        ComputeOptions::default(),
        Box::new(move |r| drop(done_tx.send(r))),
    );
    arrived.recv().unwrap();
    so.compute("_home.n = _home.n + 100").unwrap();
    go.send(()).unwrap();
    match done.recv().unwrap() {
        Err(ComputeError::Conflict { message }) => {
            assert!(message.contains("conflict_retries = 0"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(int(&so, "return _home.n"), 201);
    assert_eq!(sb.get_output::<String>().unwrap(), "before");
}
