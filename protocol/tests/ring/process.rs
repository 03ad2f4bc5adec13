//! Two real processes on one region: the test re-executes this test binary
//! with an environment variable naming the region, and the child runs
//! `echo_child_process` as a worker would (open by os id, echo until closed).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use luapool_protocol::{Endpoint, RingError};

const CHILD_ENV: &str = "LUAPOOL_RING_ECHO_CHILD";

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn echo_child_process() {
    let Ok(os_id) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut ring = Endpoint::open(&os_id).expect("child opens the region");
    let parent = std::os::unix::process::parent_id();
    ring.set_peer_alive(Box::new(move || {
        std::os::unix::process::parent_id() == parent
    }));
    let mut buf = Vec::new();
    loop {
        match ring.recv(&mut buf, None) {
            // Exit without closing the ring, as a crash would.
            Ok(()) if buf == b"crash" => std::process::exit(3),
            Ok(()) => ring.send(&buf).expect("child echoes"),
            Err(RingError::Closed) => return,
            Err(e) => panic!("child: {e}"),
        }
    }
}

/// Creates a region and starts a child process serving it.
fn spawn_echo() -> (Endpoint, Arc<Mutex<Child>>) {
    let mut ring = Endpoint::create().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ring::process::echo_child_process",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD_ENV, ring.os_id())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let child = Arc::new(Mutex::new(child));
    let watched = child.clone();
    ring.set_peer_alive(Box::new(move || {
        matches!(watched.lock().unwrap().try_wait(), Ok(None))
    }));
    (ring, child)
}

fn deadline() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(60))
}

#[test]
fn child_process_opens_the_region_and_echoes_messages() {
    let (ring, child) = spawn_echo();
    let mut buf = Vec::new();
    for (i, n) in [5usize, 0, 1000, 32_320, 100_000, 10 << 20, 3]
        .into_iter()
        .enumerate()
    {
        let msg: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
        ring.send(&msg).unwrap();
        ring.recv(&mut buf, deadline()).unwrap();
        assert!(buf == msg, "echo {i} of {n} bytes");
    }
    for i in 0..10_000u32 {
        ring.send(&i.to_le_bytes()).unwrap();
        ring.recv(&mut buf, deadline()).unwrap();
        assert_eq!(buf, i.to_le_bytes());
    }
    ring.close();
    let status = child.lock().unwrap().wait().unwrap();
    assert!(status.success(), "child exited with {status}");
}

#[test]
fn a_crashed_child_is_peer_gone_not_a_hang() {
    let (ring, child) = spawn_echo();
    let mut buf = Vec::new();
    ring.send(b"ping").unwrap();
    ring.recv(&mut buf, deadline()).unwrap();
    ring.send(b"crash").unwrap();
    let start = Instant::now();
    assert_eq!(ring.recv(&mut buf, None), Err(RingError::PeerGone));
    assert!(start.elapsed() < Duration::from_secs(10));
    let status = child.lock().unwrap().wait().unwrap();
    assert!(!status.success());
}
