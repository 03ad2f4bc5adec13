//! `PgHomes` itself: what a commit writes and a load reads back, versions
//! and conflicts, and databases it must refuse.

use luapool_homes::{ChangeSet, Entry, HomeBackend, HomeStoreError, PersistTable, PgHomes, ABSENT};

use super::PgDb;

fn entry(slot: u32, key: &[u8], value: Option<&[u8]>) -> Entry {
    Entry {
        slot,
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn root_with(entries: Vec<Entry>) -> ChangeSet {
    ChangeSet {
        replace: true,
        created: vec![PersistTable {
            slot: 1,
            from_array: false,
        }],
        entries,
        ..ChangeSet::default()
    }
}

fn open(db: &PgDb) -> PgHomes {
    PgHomes::open(db.url(), 4).expect("open the home store")
}

#[test]
fn commits_read_back_in_first_written_order_and_each_gets_a_new_version() {
    let Some(db) = PgDb::fresh("order") else {
        return;
    };
    let h = open(&db);
    assert_eq!(h.version("a").unwrap(), ABSENT);
    let v1 = h
        .commit_if(
            "a",
            root_with(vec![entry(1, b"z", Some(b"1")), entry(1, b"a", Some(b"2"))]),
            100,
            ABSENT,
        )
        .unwrap();
    assert_ne!(v1, ABSENT);
    assert_eq!(h.version("a").unwrap(), v1);
    // One key updated (keeps its place), one deleted, one added; a table freed.
    let cs = ChangeSet {
        entries: vec![
            entry(1, b"z", Some(b"3")),
            entry(1, b"a", None),
            entry(1, b"m", Some(b"4")),
        ],
        ..ChangeSet::default()
    };
    let v2 = h.commit_if("a", cs, 120, v1).unwrap();
    assert!(v2 > v1);
    let a = h.load("a").unwrap().unwrap();
    assert_eq!(a.version, v2);
    assert_eq!(a.bytes, 120);
    assert_eq!(
        a.entries,
        vec![
            (1, b"z".to_vec(), b"3".to_vec()),
            (1, b"m".to_vec(), b"4".to_vec())
        ]
    );
    let names: Vec<String> = h.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn a_commit_on_a_stale_version_writes_nothing() {
    let Some(db) = PgDb::fresh("stale") else {
        return;
    };
    let h = open(&db);
    let v1 = h
        .commit_if("c", root_with(vec![entry(1, b"n", Some(b"1"))]), 0, ABSENT)
        .unwrap();
    let v2 = h
        .commit_if("c", root_with(vec![entry(1, b"n", Some(b"2"))]), 0, v1)
        .unwrap();
    // A second writer that read v1 (or thought the home new) is refused.
    for stale in [v1, ABSENT] {
        let e = h
            .commit_if("c", root_with(vec![entry(1, b"n", Some(b"9"))]), 0, stale)
            .unwrap_err();
        assert!(matches!(e, HomeStoreError::Conflict { .. }), "{e}");
    }
    let c = h.load("c").unwrap().unwrap();
    assert_eq!(c.version, v2);
    assert_eq!(c.entries, vec![(1, b"n".to_vec(), b"2".to_vec())]);
}

#[test]
fn a_home_dropped_and_made_again_never_has_a_version_it_had() {
    let Some(db) = PgDb::fresh("drop") else {
        return;
    };
    let h = open(&db);
    let v1 = h.commit_if("d", root_with(vec![]), 0, ABSENT).unwrap();
    assert!(h.drop_home("d").unwrap());
    assert!(!h.drop_home("d").unwrap());
    assert_eq!(h.version("d").unwrap(), ABSENT);
    assert_eq!(h.load("d").unwrap(), None);
    // A daemon that cached version v1 cannot commit on top of it.
    let e = h.commit_if(
        "d",
        ChangeSet {
            entries: vec![entry(1, b"k", Some(b"1"))],
            ..ChangeSet::default()
        },
        0,
        v1,
    );
    assert!(matches!(e, Err(HomeStoreError::Conflict { .. })), "{e:?}");
    let v2 = h.commit_if("d", root_with(vec![]), 0, ABSENT).unwrap();
    assert!(v2 > v1);
}

#[test]
fn large_change_sets_and_repeated_keys_apply_in_order() {
    let Some(db) = PgDb::fresh("large") else {
        return;
    };
    let h = open(&db);
    // More rows than one statement takes, and keys written more than once
    // (set, delete, set again) in one change set.
    let mut entries: Vec<Entry> = (0..20_000u32)
        .map(|i| entry(1, &i.to_be_bytes(), Some(b"v")))
        .collect();
    entries.push(entry(1, &5u32.to_be_bytes(), None));
    entries.push(entry(1, &5u32.to_be_bytes(), Some(b"again")));
    entries.push(entry(1, &6u32.to_be_bytes(), None));
    entries.push(entry(1, &7u32.to_be_bytes(), Some(b"updated")));
    h.commit_if("big", root_with(entries), 0, ABSENT).unwrap();
    let big = h.load("big").unwrap().unwrap();
    assert_eq!(big.entries.len(), 19_999);
    let get = |k: u32| {
        big.entries
            .iter()
            .position(|e| e.1 == k.to_be_bytes())
            .map(|i| (i, big.entries[i].2.clone()))
    };
    assert_eq!(get(6), None);
    // Updated in place; deleted and set again: last.
    assert_eq!(get(7), Some((5, b"updated".to_vec())));
    assert_eq!(get(5), Some((19_998, b"again".to_vec())));
    assert_eq!(get(19_999), Some((19_997, b"v".to_vec())));
}

#[test]
fn a_server_that_is_not_there_or_a_foreign_database_fails_at_open() {
    let e = PgHomes::open("postgres://nobody:secret@127.0.0.1:1/none", 1)
        .err()
        .expect("no server listens on port 1");
    let text = e.to_string();
    assert!(matches!(e, HomeStoreError::Connect { .. }), "{text}");
    assert!(!text.contains("secret"), "the password shows: {text}");
    let e = PgHomes::open("not a url at all ===", 1)
        .err()
        .expect("not a URL");
    assert!(matches!(e, HomeStoreError::Connect { .. }), "{e}");

    let Some(db) = PgDb::fresh("foreign") else {
        return;
    };
    db.connect()
        .batch_execute("CREATE TABLE luapool_homes (x int); INSERT INTO luapool_homes VALUES (7)")
        .unwrap();
    let e = PgHomes::open(db.url(), 1)
        .err()
        .expect("a foreign luapool_homes");
    assert!(matches!(e, HomeStoreError::Schema { .. }), "{e}");
    // Left as it was.
    let n: i64 = db
        .connect()
        .query_one("SELECT count(*) FROM luapool_homes WHERE x = 7", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn daemons_starting_together_make_the_tables_once() {
    let Some(db) = PgDb::fresh("together") else {
        return;
    };
    let url = db.url().to_string();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgHomes::open(&url, 1).map(drop))
        })
        .collect();
    for t in opened {
        t.join().unwrap().expect("every opener sees one schema");
    }
}

#[test]
fn a_held_home_commits_without_conflict_and_other_writers_wait_for_it() {
    let Some(db) = PgDb::fresh("lock") else {
        return;
    };
    let h = std::sync::Arc::new(open(&db));
    let hold = std::time::Duration::from_secs(60);
    assert!(h.lock("w", hold).unwrap().is_none(), "no such home");
    let v1 = h
        .commit_if("w", root_with(vec![entry(1, b"n", Some(b"0"))]), 0, ABSENT)
        .unwrap();
    let lock = h.lock("w", hold).unwrap().expect("a lock on w");
    assert_eq!(lock.version(), v1);
    // Another writer that read v1: it waits for the lock, then finds v1 gone.
    let other = {
        let h = h.clone();
        std::thread::spawn(move || {
            h.commit_if("w", root_with(vec![entry(1, b"n", Some(b"other"))]), 0, v1)
        })
    };
    let set = |v: &[u8]| ChangeSet {
        entries: vec![entry(1, b"n", Some(v))],
        ..ChangeSet::default()
    };
    let v2 = lock.commit(set(b"held"), 0).unwrap();
    let e = other.join().unwrap().unwrap_err();
    assert!(matches!(e, HomeStoreError::Conflict { .. }), "{e}");
    // A lock dropped writes nothing and lets the home go.
    drop(h.lock("w", hold).unwrap());
    let v3 = h.commit_if("w", set(b"after"), 0, v2).unwrap();
    let w = h.load("w").unwrap().unwrap();
    assert_eq!(
        (w.version, w.entries),
        (v3, vec![(1, b"n".to_vec(), b"after".to_vec())])
    );
}
