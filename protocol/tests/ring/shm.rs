//! Shared-memory regions in one process: create/open, the typed open errors
//! for a wrong region, and counters a hostile peer overwrote.

use std::thread;
use std::time::{Duration, Instant};

use luapool_protocol::{
    Endpoint, RingCorruption, RingError, RingOpenError, LAYOUT_VERSION, REGION_SIZE,
};
use shared_memory::ShmemConf;

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(30))
}

/// Writes `bytes` at `offset` of the region named `os_id`, as a hostile or
/// broken peer could (offsets from the layout table in the README).
fn poke(os_id: &str, offset: usize, bytes: &[u8]) {
    let shm = ShmemConf::new().os_id(os_id).open().unwrap();
    assert!(offset + bytes.len() <= shm.len());
    // SAFETY: in bounds (checked above); the test owns both endpoints and no
    // operation is running on them while we write.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), shm.as_ptr().add(offset), bytes.len()) };
}

#[test]
fn created_region_opens_by_os_id_and_carries_messages() {
    let sup = Endpoint::create().unwrap();
    assert!(!sup.os_id().is_empty());
    let wrk = Endpoint::open(sup.os_id()).unwrap();
    let echo = thread::spawn(move || {
        let mut buf = Vec::new();
        while wrk.recv(&mut buf, soon()).is_ok() {
            wrk.send(&buf).unwrap();
        }
    });
    let mut buf = Vec::new();
    for n in [0usize, 1, 100, 40_000, 1 << 20] {
        let msg: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        sup.send(&msg).unwrap();
        sup.recv(&mut buf, soon()).unwrap();
        assert!(buf == msg, "echo of {n} bytes");
    }
    drop(sup);
    echo.join().unwrap();
}

#[test]
fn region_name_is_unlinked_when_the_supervisor_endpoint_drops() {
    let sup = Endpoint::create().unwrap();
    let id = sup.os_id().to_owned();
    drop(sup);
    assert!(matches!(
        Endpoint::open(&id),
        Err(RingOpenError::Open { .. })
    ));
}

#[test]
fn opening_a_missing_region_names_it() {
    match Endpoint::open("/luapool_no_such_region") {
        Err(RingOpenError::Open { os_id, reason }) => {
            assert_eq!(os_id, "/luapool_no_such_region");
            assert!(reason.contains("No such file"), "{reason}");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn opening_a_region_without_magic_is_bad_magic() {
    let shm = ShmemConf::new().size(REGION_SIZE).create().unwrap();
    let err = Endpoint::open(shm.get_os_id()).err().unwrap();
    assert!(
        matches!(err, RingOpenError::BadMagic { found: 0, .. }),
        "{err}"
    );
}

#[test]
fn opening_a_region_of_another_size_is_wrong_size() {
    let shm = ShmemConf::new().size(4096).create().unwrap();
    let err = Endpoint::open(shm.get_os_id()).err().unwrap();
    assert_eq!(
        err,
        RingOpenError::WrongSize {
            found: 4096,
            expected: REGION_SIZE
        }
    );
}

#[test]
fn opening_a_region_of_another_version_is_version_mismatch() {
    let sup = Endpoint::create().unwrap();
    poke(sup.os_id(), 8, &99u32.to_ne_bytes());
    let err = Endpoint::open(sup.os_id()).err().unwrap();
    assert_eq!(
        err,
        RingOpenError::VersionMismatch {
            found: 99,
            expected: LAYOUT_VERSION
        }
    );
    assert!(err.to_string().contains("99"));
}

#[test]
fn opening_a_region_with_another_layout_is_bad_layout() {
    let sup = Endpoint::create().unwrap();
    poke(sup.os_id(), 28, &1000u32.to_ne_bytes()); // data_capacity[0]
    let err = Endpoint::open(sup.os_id()).err().unwrap();
    assert!(
        matches!(
            err,
            RingOpenError::BadLayout {
                field: "data_capacity[0]",
                found: 1000,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_tail_moved_past_the_capacity_is_corrupt_not_a_hang() {
    let sup = Endpoint::create().unwrap();
    let wrk = Endpoint::open(sup.os_id()).unwrap();
    poke(sup.os_id(), 128, &1_000_000u64.to_ne_bytes()); // ring 0 tail
    let mut buf = Vec::new();
    assert!(matches!(
        wrk.recv(&mut buf, soon()),
        Err(RingError::Corrupt(RingCorruption::TailOutOfRange {
            distance: 1_000_000,
            ..
        }))
    ));
    // The corrupt endpoint closed itself, and the peer hears of it.
    assert_eq!(wrk.recv(&mut buf, soon()), Err(RingError::Closed));
    assert_eq!(sup.send(b"x"), Err(RingError::Closed));
}

#[test]
fn a_head_moved_back_or_past_the_tail_is_corrupt() {
    let sup = Endpoint::create().unwrap();
    let _wrk = Endpoint::open(sup.os_id()).unwrap();
    // Fill the ring so the producer must re-read head, then forge it.
    let mut used = 0;
    while used + 1016 <= 32_320 {
        sup.send(&[0u8; 1000]).unwrap();
        used += 1016;
    }
    poke(sup.os_id(), 256, &u64::MAX.to_ne_bytes()); // ring 0 head
    assert!(matches!(
        sup.send(&[0u8; 1000]),
        Err(RingError::Corrupt(RingCorruption::HeadOutOfRange { .. }))
    ));
}
