//! loom model tests of the ring algorithm (built only with `--cfg luapool_loom`).
//!
//! The same `Endpoint` code runs on an in-process pair with a tiny capacity,
//! so wrap-around and chunking happen within a few bytes; spinning is off (the
//! default under loom), so every wait goes through the futex handshake, whose
//! model in `sync.rs` turns a lost wake-up into a loom deadlock. Data-area
//! bytes are loom cells, so a missing happens-before on them is reported too.
//!
//! Run: `RUSTFLAGS="--cfg luapool_loom" LOOM_MAX_PREEMPTIONS=2 \
//!       cargo test -p luapool-protocol --release loom_`

use luapool_protocol::{Endpoint, RingError};

/// `len` bytes that identify message `index`.
fn msg(index: u8, len: usize) -> Vec<u8> {
    (0..len as u8).map(|i| index.wrapping_mul(16) ^ i).collect()
}

/// Capacity 24: one frame carries at most 8 payload bytes.
const TINY: usize = 24;

#[test]
fn loom_frames_arrive_whole_once_and_in_order_across_wrap() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        // 16 + 3 and 16 + 5 bytes: the second frame wraps the 24-byte ring.
        let sender = loom::thread::spawn(move || {
            sup.send(&msg(1, 3)).unwrap();
            sup.send(&msg(2, 5)).unwrap();
            sup
        });
        let mut buf = Vec::new();
        wrk.recv(&mut buf, None).unwrap();
        assert_eq!(buf, msg(1, 3));
        wrk.recv(&mut buf, None).unwrap();
        assert_eq!(buf, msg(2, 5));
        drop(sender.join().unwrap());
    });
}

#[test]
fn loom_chunked_message_is_reassembled() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        // 10 bytes need two frames (at most 8 payload bytes per frame); the
        // sender sleeps for space between them.
        let sender = loom::thread::spawn(move || {
            sup.send(&msg(3, 10)).unwrap();
            sup
        });
        let mut buf = Vec::new();
        wrk.recv(&mut buf, None).unwrap();
        assert_eq!(buf, msg(3, 10));
        drop(sender.join().unwrap());
    });
}

#[test]
fn loom_sleeping_receiver_is_woken_by_a_send() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let receiver = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            wrk.recv(&mut buf, None).unwrap();
            buf
        });
        sup.send(b"hi").unwrap();
        assert_eq!(receiver.join().unwrap(), b"hi");
    });
}

#[test]
fn loom_ping_pong_both_directions() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let echo = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            wrk.recv(&mut buf, None).unwrap();
            wrk.send(&buf).unwrap();
        });
        let mut buf = Vec::new();
        sup.send(b"ab").unwrap();
        sup.recv(&mut buf, None).unwrap();
        assert_eq!(buf, b"ab");
        echo.join().unwrap();
    });
}

#[test]
fn loom_close_wakes_a_sleeping_receiver() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let receiver = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            wrk.recv(&mut buf, None)
        });
        sup.close();
        assert_eq!(receiver.join().unwrap(), Err(RingError::Closed));
    });
}

#[test]
fn loom_message_sent_before_close_is_delivered_first() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let receiver = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            let first = wrk.recv(&mut buf, None).map(|()| buf.clone());
            (first, wrk.recv(&mut buf, None))
        });
        sup.send(b"last").unwrap();
        sup.close();
        let (first, second) = receiver.join().unwrap();
        assert_eq!(first.unwrap(), b"last");
        assert_eq!(second, Err(RingError::Closed));
    });
}

#[test]
fn loom_close_wakes_a_sender_waiting_for_space() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let sender = loom::thread::spawn(move || {
            let first = sup.send(&msg(4, 8)); // fills the ring (or sees the close)
            let second = sup.send(&msg(5, 8)); // waits for space, then sees the close
            (first, second)
        });
        wrk.close();
        let (first, second) = sender.join().unwrap();
        assert!(matches!(first, Ok(()) | Err(RingError::Closed)));
        assert_eq!(second, Err(RingError::Closed));
    });
}

#[test]
fn loom_mixed_stream_laps_the_ring_twice() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        // 21 + 2×16+9 + 18 = 80 bytes through a 24-byte ring; the middle
        // message is chunked.
        let sender = loom::thread::spawn(move || {
            for (i, n) in [(6, 5), (7, 9), (8, 2)] {
                sup.send(&msg(i, n)).unwrap();
            }
            sup
        });
        let mut buf = Vec::new();
        for (i, n) in [(6, 5), (7, 9), (8, 2)] {
            wrk.recv(&mut buf, None).unwrap();
            assert_eq!(buf, msg(i, n));
        }
        drop(sender.join().unwrap());
    });
}

#[test]
fn loom_chunked_echo_both_directions() {
    loom::model(|| {
        let (sup, wrk) = Endpoint::pair_with_capacity(TINY);
        let echo = loom::thread::spawn(move || {
            let mut buf = Vec::new();
            wrk.recv(&mut buf, None).unwrap();
            wrk.send(&buf).unwrap();
            wrk
        });
        let mut buf = Vec::new();
        sup.send(&msg(9, 12)).unwrap();
        sup.recv(&mut buf, None).unwrap();
        assert_eq!(buf, msg(9, 12));
        drop(echo.join().unwrap());
    });
}
