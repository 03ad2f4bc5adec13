//! The SQLite backend against a real data directory.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{ChangeSet, Entry, HomeBackend, HomeStoreError, PersistTable, SqliteHomes};

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("luapool-homes-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entry(slot: u32, key: u8, value: Option<u8>) -> Entry {
    Entry {
        slot,
        key: vec![key],
        value: value.map(|v| vec![v]),
    }
}

fn root_with(entries: Vec<Entry>) -> ChangeSet {
    ChangeSet {
        created: vec![PersistTable {
            slot: 1,
            from_array: false,
        }],
        entries,
        ..ChangeSet::default()
    }
}

#[test]
fn commits_survive_reopening_in_first_written_order() {
    let dir = TempDir::new("reopen");
    {
        let h = SqliteHomes::open(&dir.0).unwrap();
        h.commit(
            "a",
            root_with(vec![entry(1, 3, Some(30)), entry(1, 1, Some(10))]),
            100,
        )
        .unwrap();
        h.commit(
            "a",
            ChangeSet {
                entries: vec![
                    entry(1, 3, Some(31)),
                    entry(1, 2, Some(20)),
                    entry(1, 1, None),
                ],
                ..ChangeSet::default()
            },
            120,
        )
        .unwrap();
        h.commit("b", root_with(vec![]), 64).unwrap();
    }
    let h = SqliteHomes::open(&dir.0).unwrap();
    let a = h.load("a").unwrap().unwrap();
    assert_eq!(a.bytes, 120);
    assert_eq!(
        a.tables,
        vec![PersistTable {
            slot: 1,
            from_array: false
        }]
    );
    assert_eq!(
        a.entries,
        vec![(1, vec![3], vec![31]), (1, vec![2], vec![20])],
        "an update keeps its place, a new key goes last"
    );
    let names: Vec<String> = h.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(h.drop_home("a").unwrap());
    assert!(!h.drop_home("a").unwrap());
    assert_eq!(h.load("a").unwrap(), None);
}

#[test]
fn a_freed_or_recreated_table_loses_its_old_entries() {
    let dir = TempDir::new("freed");
    let h = SqliteHomes::open(&dir.0).unwrap();
    let mut cs = root_with(vec![
        entry(1, 1, Some(1)),
        entry(2, 1, Some(2)),
        entry(3, 1, Some(3)),
    ]);
    cs.created.push(PersistTable {
        slot: 2,
        from_array: true,
    });
    cs.created.push(PersistTable {
        slot: 3,
        from_array: false,
    });
    h.commit("x", cs, 0).unwrap();
    h.commit(
        "x",
        ChangeSet {
            freed: vec![2, 3],
            ..ChangeSet::default()
        },
        0,
    )
    .unwrap();
    h.commit(
        "x",
        ChangeSet {
            created: vec![PersistTable {
                slot: 3,
                from_array: false,
            }],
            entries: vec![entry(3, 9, Some(9))],
            ..ChangeSet::default()
        },
        0,
    )
    .unwrap();
    let x = h.load("x").unwrap().unwrap();
    assert_eq!(x.tables.len(), 2);
    assert_eq!(
        x.entries,
        vec![(1, vec![1], vec![1]), (3, vec![9], vec![9])]
    );
}

#[test]
fn concurrent_commits_all_land() {
    let dir = TempDir::new("group");
    let h = Arc::new(SqliteHomes::open(&dir.0).unwrap());
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                let name = format!("h{t}");
                h.commit(&name, root_with(vec![]), 0).unwrap();
                for i in 0..50u8 {
                    let cs = ChangeSet {
                        entries: vec![entry(1, i, Some(t))],
                        ..ChangeSet::default()
                    };
                    h.commit(&name, cs, i as u64).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in 0..8u8 {
        let home = h.load(&format!("h{t}")).unwrap().unwrap();
        assert_eq!(home.entries.len(), 50);
        assert!(home.entries.iter().all(|(_, _, v)| v == &vec![t]));
    }
}

#[test]
fn a_second_opener_of_the_directory_is_refused() {
    let dir = TempDir::new("lock");
    let first = SqliteHomes::open(&dir.0).unwrap();
    match SqliteHomes::open(&dir.0) {
        Err(HomeStoreError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("two openers of one directory"),
    }
    drop(first);
    SqliteHomes::open(&dir.0).expect("free again once the first is closed");
}

#[test]
fn a_file_that_is_not_a_home_database_is_refused_and_left_untouched() {
    let dir = TempDir::new("corrupt");
    std::fs::create_dir(&dir.0).unwrap();
    let db = dir.0.join("homes.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db, &junk).unwrap();
    let e = SqliteHomes::open(&dir.0).err().expect("refused");
    assert!(matches!(e, HomeStoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("homes.db"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), junk);

    // An SQLite database of something else is not ours either.
    let other = TempDir::new("other");
    std::fs::create_dir(&other.0).unwrap();
    let c = rusqlite::Connection::open(other.0.join("homes.db")).unwrap();
    c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    let before = std::fs::read(other.0.join("homes.db")).unwrap();
    let e = SqliteHomes::open(&other.0).err().expect("refused");
    assert!(matches!(e, HomeStoreError::Corrupt { .. }), "{e}");
    assert_eq!(std::fs::read(other.0.join("homes.db")).unwrap(), before);
}

#[test]
fn a_path_that_is_a_file_is_not_a_directory() {
    let dir = TempDir::new("file");
    std::fs::write(&dir.0, b"x").unwrap();
    let e = SqliteHomes::open(&dir.0).err().expect("refused");
    assert!(matches!(e, HomeStoreError::NotADirectory { .. }), "{e}");
    assert_eq!(std::fs::read(&dir.0).unwrap(), b"x");
    let _ = std::fs::remove_file(&dir.0);
}
