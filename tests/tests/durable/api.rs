//! The Rust API on a data directory: homes survive the pool, load lazily,
//! leave memory when idle, are written incrementally, and are managed with
//! list / drop / export / import.

use std::sync::{Arc, Mutex};

use luapool_homes::{
    ChangeSet, HomeBackend, HomeInfo as StoredInfo, HomeStoreError, SqliteHomes, StoredHome,
};
use luapool_supervisor::{ComputeError, HomeError, HostValue, Pool, SessionError};
use serde_json::json;

use super::{builder, int, pool, TempDir};

#[test]
fn a_named_home_survives_the_pool_and_a_private_one_does_not() {
    let dir = TempDir::new("survives");
    {
        let p = pool(&dir);
        let s = p.session_with_home("counter").unwrap();
        assert_eq!(int(&s, "_home.n = (_home.n or 0) + 1 return _home.n"), 1);
        assert_eq!(
            int(
                &s,
                "_home.n = _home.n + 1 _home.t = {1, {x = 'y'}} return _home.n"
            ),
            2
        );
        let private = p.session();
        private.compute("_home.secret = 1").unwrap();
    }
    let p = pool(&dir);
    let s = p.session_with_home("counter").unwrap();
    assert_eq!(int(&s, "return _home.n"), 2);
    let out = s.compute("return _home.t").unwrap();
    assert_eq!(out.values[0].to_json(), json!([1, {"x": "y"}]));
    let names: Vec<String> = p
        .list_homes()
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["counter"], "private homes are not kept");
}

#[test]
fn a_failed_compute_writes_nothing_to_disk() {
    let dir = TempDir::new("failed");
    {
        let p = pool(&dir);
        let s = p.session_with_home("h").unwrap();
        s.compute("_home.n = 1").unwrap();
        let e = s
            .compute("_home.n = 2 _home.more = {1, 2} for _ in pairs(_home) do end error('no')")
            .unwrap_err();
        assert!(matches!(e, ComputeError::LuaError { .. }));
    }
    let p = pool(&dir);
    let s = p.session_with_home("h").unwrap();
    assert_eq!(int(&s, "return _home.n"), 1);
    assert_eq!(int(&s, "return _home.more == nil and 1 or 0"), 1);
}

/// A backend that records the size of every change set it commits.
struct Counting {
    inner: SqliteHomes,
    commits: Mutex<Vec<usize>>,
}

impl HomeBackend for Counting {
    fn list(&self) -> Result<Vec<StoredInfo>, HomeStoreError> {
        self.inner.list()
    }
    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
        self.inner.load(name)
    }
    fn commit(&self, name: &str, cs: ChangeSet, bytes: u64) -> Result<(), HomeStoreError> {
        let rows = cs.entries.len() + cs.created.len() + cs.freed.len();
        self.commits.lock().unwrap().push(rows);
        self.inner.commit(name, cs, bytes)
    }
    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError> {
        self.inner.drop_home(name)
    }
}

#[test]
fn a_counter_increment_writes_one_row_whatever_the_home_size() {
    let dir = TempDir::new("incremental");
    let backend = Arc::new(Counting {
        inner: SqliteHomes::open(&dir.0).unwrap(),
        commits: Mutex::new(Vec::new()),
    });
    let p = Pool::builder()
        .workers(1)
        .home_backend(backend.clone())
        .build()
        .unwrap();
    let s = p.session_with_home("big").unwrap();
    s.compute(
        "_home.n = 0 _home.records = {} \
         for i = 1, 100000 do _home.records[i] = {id = i, name = 'r' .. i} end",
    )
    .unwrap();
    let first = *backend.commits.lock().unwrap().iter().max().unwrap();
    assert!(
        first > 300_000,
        "the first commit writes the home: {first} rows"
    );
    for _ in 0..3 {
        s.compute("_home.n = _home.n + 1").unwrap();
    }
    s.compute("_home.records[#_home.records + 1] = {id = 0}")
        .unwrap();
    let commits = backend.commits.lock().unwrap().clone();
    assert_eq!(
        &commits[commits.len() - 4..commits.len() - 1],
        &[1, 1, 1],
        "an increment is one row: {commits:?}"
    );
    // An appended record: its table, its key and the array slot (plus the
    // few empty tables the worker reserved for literals and did not use,
    // which the next collection deletes): not the 100 000 records.
    let append = commits[commits.len() - 1];
    assert!((3..=16).contains(&append), "{commits:?}");
    assert_eq!(int(&s, "return _home.n"), 3);
    // A compute that only reads writes nothing.
    s.compute("return #_home.records").unwrap();
    assert_eq!(backend.commits.lock().unwrap().len(), commits.len());
}

#[test]
fn homes_load_on_first_use_and_idle_ones_leave_memory() {
    let dir = TempDir::new("lazy");
    {
        let p = pool(&dir);
        for name in ["a", "b", "c"] {
            p.session_with_home(name)
                .unwrap()
                .compute(&format!(
                    "_home.name = '{name}' _home.pad = string.rep('x', 100000)"
                ))
                .unwrap();
        }
    }
    let p = builder(&dir).idle_homes_bytes(0).build().unwrap();
    assert_eq!(p.stats().homes_loaded, 0, "a restart reads no home");
    let a = p.session_with_home("a").unwrap();
    assert_eq!(p.stats().homes_loaded, 0, "naming a home reads nothing yet");
    assert_eq!(int(&a, "return #_home.pad"), 100_000);
    assert_eq!(p.stats().homes_loaded, 1);
    let bytes = p.stats().homes_bytes;
    assert!(bytes > 100_000, "{bytes}");
    drop(a);
    assert_eq!(p.stats().homes_loaded, 0, "an idle home leaves memory");
    assert!(p.stats().homes_bytes < 1000, "{}", p.stats().homes_bytes);
    let a = p.session_with_home("a").unwrap();
    assert_eq!(
        int(&a, "return #_home.pad"),
        100_000,
        "and reads back from disk"
    );
}

#[test]
fn homes_are_bounded_in_number_and_bytes() {
    let dir = TempDir::new("bounded");
    let p = builder(&dir)
        .max_homes(2)
        .homes_bytes(1 << 20)
        .build()
        .unwrap();
    let a = p.session_with_home("a").unwrap();
    a.compute("_home.x = 1").unwrap();
    let _b = p.session_with_home("b").unwrap();
    match p.session_with_home("c") {
        Err(SessionError::Home(HomeError::TooManyHomes { limit: 2 })) => {}
        Err(e) => panic!("expected TooManyHomes, got {e}"),
        Ok(_) => panic!("a third home past max_homes"),
    }
    let e = a
        .compute("_home.big = string.rep('x', 2 * 2^20)")
        .unwrap_err();
    assert!(
        matches!(&e, ComputeError::QuotaExceeded { message } if message.contains("homes_bytes")),
        "{e:?}"
    );
    assert_eq!(int(&a, "return _home.x"), 1);
    // Dropping a home makes room for another.
    drop(a);
    assert!(p.drop_home("a").unwrap());
    p.session_with_home("c").unwrap();
}

#[test]
fn list_drop_export_and_import_manage_homes() {
    let dir = TempDir::new("manage");
    let p = pool(&dir);
    let s = p.session_with_home("src").unwrap();
    s.compute("_home.users = {{name = 'ann', age = 31}, {name = 'bo', age = 4}} _home.n = 2")
        .unwrap();
    let exported = p.export_home("src").unwrap();
    assert_eq!(
        exported.to_json(),
        json!({"users": [{"name": "ann", "age": 31}, {"name": "bo", "age": 4}], "n": 2})
    );
    // A session holds it: neither dropped nor replaced.
    assert!(matches!(
        p.drop_home("src"),
        Err(HomeError::InUse { sessions: 1, .. })
    ));
    assert!(matches!(
        p.import_home("src", &HostValue::Map(vec![])),
        Err(HomeError::InUse { .. })
    ));
    p.import_home("copy", &exported).unwrap();
    p.import_home("copy", &HostValue::from_json(json!({"n": 3, "users": []})))
        .unwrap();
    drop(s);
    let infos = p.list_homes().unwrap();
    let names: Vec<&str> = infos.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["copy", "src"]);
    assert!(p.drop_home("src").unwrap());
    assert!(!p.drop_home("src").unwrap());
    assert!(matches!(
        p.export_home("src"),
        Err(HomeError::NotFound { .. })
    ));
    drop(p);
    // The import is durable and replaced the whole home.
    let p = pool(&dir);
    let c = p.session_with_home("copy").unwrap();
    assert_eq!(
        c.compute("return _home").unwrap().values[0].to_json(),
        json!({"n": 3, "users": []})
    );
    assert_eq!(int(&c, "_home.n = _home.n + 1 return _home.n"), 4);
    assert!(matches!(
        p.import_home("x", &HostValue::Int(1)),
        Err(HomeError::Import(_))
    ));
}
