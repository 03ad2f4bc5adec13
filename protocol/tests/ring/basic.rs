//! Behaviour of an in-process endpoint pair: round trips, large and chunked
//! messages, wrap-around, close, deadlines, peer-gone, limits, cancel.

use std::thread;
use std::time::{Duration, Instant};

use luapool_protocol::{Endpoint, RingError, FRAME_HEADER_LEN};

/// A message whose bytes depend on its index and position, so loss,
/// duplication, reordering or misplaced bytes all show up.
pub(crate) fn pattern(index: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ index.wrapping_mul(131)) as u8)
        .collect()
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(30))
}

#[test]
fn endpoint_is_send() {
    fn is_send<T: Send>() {}
    is_send::<Endpoint>();
}

#[test]
fn small_messages_round_trip_both_ways() {
    let (sup, wrk) = Endpoint::pair();
    let mut buf = Vec::new();
    sup.send(b"hello worker").unwrap();
    wrk.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, b"hello worker");
    wrk.send(b"hello supervisor").unwrap();
    sup.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, b"hello supervisor");
}

#[test]
fn empty_message_round_trips() {
    let (sup, wrk) = Endpoint::pair();
    let mut buf = vec![1, 2, 3];
    sup.send(b"").unwrap();
    wrk.recv(&mut buf, soon()).unwrap();
    assert!(buf.is_empty());
}

#[test]
fn try_recv_reports_nothing_then_the_message() {
    let (sup, wrk) = Endpoint::pair();
    let mut buf = Vec::new();
    assert!(!wrk.try_recv(&mut buf).unwrap());
    sup.send(b"x").unwrap();
    sup.send(b"yz").unwrap();
    assert!(wrk.try_recv(&mut buf).unwrap());
    assert_eq!(buf, b"x");
    assert!(wrk.try_recv(&mut buf).unwrap());
    assert_eq!(buf, b"yz");
    assert!(!wrk.try_recv(&mut buf).unwrap());
}

/// Sends `count` pattern messages of the given sizes from one thread and
/// checks they arrive whole and in order on another.
fn stream(sup: Endpoint, wrk: Endpoint, sizes: &[usize], rounds: usize) {
    let sizes: Vec<usize> = sizes.to_vec();
    let expect = sizes.clone();
    let sender = thread::spawn(move || {
        for r in 0..rounds {
            for (i, &n) in sizes.iter().enumerate() {
                sup.send(&pattern(r * 1000 + i, n)).unwrap();
            }
        }
        sup
    });
    let mut buf = Vec::new();
    for r in 0..rounds {
        for (i, &n) in expect.iter().enumerate() {
            wrk.recv(&mut buf, soon()).unwrap();
            assert_eq!(buf.len(), n, "message {r}/{i}");
            assert!(buf == pattern(r * 1000 + i, n), "message {r}/{i} bytes");
        }
    }
    sender.join().unwrap();
}

#[test]
fn messages_wrap_around_a_small_ring_in_order() {
    let (sup, wrk) = Endpoint::pair_with_capacity(64);
    // 0..=48 bytes: single frames of every size, many laps of the 64-byte ring.
    let sizes: Vec<usize> = (0..=48).collect();
    stream(sup, wrk, &sizes, 20);
}

#[test]
fn messages_larger_than_the_ring_are_chunked() {
    let (sup, wrk) = Endpoint::pair_with_capacity(100);
    let sizes = [85, 84, 86, 100, 101, 250, 1000, 7, 4096];
    stream(sup, wrk, &sizes, 5);
}

#[test]
fn one_and_ten_mib_messages_round_trip() {
    let (sup, wrk) = Endpoint::pair();
    stream(sup, wrk, &[1 << 20, 10 << 20, 3], 1);
}

#[test]
fn frame_size_boundaries_of_the_default_ring() {
    let (sup, wrk) = Endpoint::pair();
    let cap = 32320;
    let max = cap - FRAME_HEADER_LEN;
    stream(
        sup,
        wrk,
        &[
            max / 4,
            max / 4 + 1,
            max - 1,
            max,
            max + 1,
            cap,
            2 * cap + 5,
        ],
        3,
    );
}

#[test]
fn futex_path_round_trips_without_losing_a_wake_up() {
    let (mut sup, mut wrk) = Endpoint::pair_with_capacity(256);
    sup.set_spin(Duration::ZERO);
    wrk.set_spin(Duration::ZERO);
    let echo = thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            match wrk.recv(&mut buf, None) {
                Ok(()) => wrk.send(&buf).unwrap(),
                Err(RingError::Closed) => return,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let mut buf = Vec::new();
    for i in 0..20_000 {
        let msg = pattern(i, i % 300);
        sup.send(&msg).unwrap();
        // No deadline: a lost wake-up would hang here (the test harness
        // reports it), not be papered over by a timeout.
        sup.recv(&mut buf, None).unwrap();
        assert!(buf == msg);
    }
    sup.close();
    echo.join().unwrap();
}

#[test]
fn try_recv_continues_a_chunked_message_across_calls() {
    let (sup, wrk) = Endpoint::pair_with_capacity(128);
    let msg = pattern(7, 10_000);
    let expect = msg.clone();
    let sender = thread::spawn(move || {
        sup.send(&msg).unwrap();
        sup
    });
    let mut buf = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(30);
    while !wrk.try_recv(&mut buf).unwrap() {
        assert!(Instant::now() < give_up);
        thread::yield_now();
    }
    assert!(buf == expect);
    sender.join().unwrap();
}

#[test]
fn recv_times_out_at_the_deadline() {
    let (_sup, wrk) = Endpoint::pair();
    let mut buf = Vec::new();
    let start = Instant::now();
    let r = wrk.recv(&mut buf, Some(start + Duration::from_millis(50)));
    let took = start.elapsed();
    assert_eq!(r, Err(RingError::Timeout));
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    // A timeout leaves the ring usable.
    _sup.send(b"late").unwrap();
    wrk.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, b"late");
}

#[test]
fn close_wakes_a_sleeping_receiver() {
    let (sup, mut wrk) = Endpoint::pair();
    wrk.set_spin(Duration::ZERO);
    let waiter = thread::spawn(move || {
        let mut buf = Vec::new();
        wrk.recv(&mut buf, None)
    });
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    sup.close();
    assert_eq!(waiter.join().unwrap(), Err(RingError::Closed));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn close_wakes_a_sender_blocked_on_a_full_ring() {
    let (mut sup, wrk) = Endpoint::pair_with_capacity(64);
    sup.set_spin(Duration::ZERO);
    let sender = thread::spawn(move || {
        // Far more than the ring holds; nobody reads.
        sup.send(&[5u8; 10_000])
    });
    thread::sleep(Duration::from_millis(50));
    wrk.close();
    assert_eq!(sender.join().unwrap(), Err(RingError::Closed));
}

#[test]
fn messages_sent_before_close_are_delivered_then_closed() {
    let (sup, wrk) = Endpoint::pair();
    sup.send(b"one").unwrap();
    sup.send(b"two").unwrap();
    sup.close();
    sup.close(); // idempotent
    let mut buf = Vec::new();
    wrk.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, b"one");
    assert!(wrk.try_recv(&mut buf).unwrap());
    assert_eq!(buf, b"two");
    assert_eq!(wrk.recv(&mut buf, soon()), Err(RingError::Closed));
    assert_eq!(wrk.try_recv(&mut buf), Err(RingError::Closed));
    assert_eq!(wrk.send(b"reply"), Err(RingError::Closed));
    assert_eq!(sup.send(b"three"), Err(RingError::Closed));
    assert_eq!(sup.recv(&mut buf, soon()), Err(RingError::Closed));
}

#[test]
fn dropping_an_endpoint_closes_it() {
    let (sup, wrk) = Endpoint::pair();
    drop(sup);
    let mut buf = Vec::new();
    assert_eq!(wrk.recv(&mut buf, soon()), Err(RingError::Closed));
}

#[test]
fn peer_gone_ends_a_receive_without_deadline() {
    let (_sup, mut wrk) = Endpoint::pair();
    wrk.set_peer_alive(Box::new(|| false));
    let start = Instant::now();
    let mut buf = Vec::new();
    assert_eq!(wrk.recv(&mut buf, None), Err(RingError::PeerGone));
    let took = start.elapsed();
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn peer_gone_ends_a_send_blocked_on_a_full_ring() {
    let (mut sup, _wrk) = Endpoint::pair_with_capacity(64);
    sup.set_peer_alive(Box::new(|| false));
    assert_eq!(sup.send(&[0u8; 1000]), Err(RingError::PeerGone));
}

#[test]
fn send_deadline_gives_up_on_a_peer_that_never_drains() {
    let (mut sup, _wrk) = Endpoint::pair_with_capacity(64);
    sup.set_spin(Duration::ZERO);
    let start = Instant::now();
    let r = sup.send_deadline(&[7u8; 1000], Some(start + Duration::from_millis(50)));
    assert_eq!(r, Err(RingError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn oversized_message_is_rejected_and_skipped() {
    let (sup, mut wrk) = Endpoint::pair_with_capacity(128);
    wrk.set_max_message(1000);
    let sender = thread::spawn(move || {
        sup.send(&[1u8; 1001]).unwrap(); // chunked, too large
        sup.send(&[2u8; 1000]).unwrap(); // exactly the limit
        sup.send(&[3u8; 5000]).unwrap(); // too large again
        sup.send(b"after").unwrap();
        sup
    });
    let mut buf = Vec::new();
    assert_eq!(
        wrk.recv(&mut buf, soon()),
        Err(RingError::MessageTooLarge {
            len: 1001,
            max: 1000
        })
    );
    wrk.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, vec![2u8; 1000]);
    assert_eq!(
        wrk.recv(&mut buf, soon()),
        Err(RingError::MessageTooLarge {
            len: 5000,
            max: 1000
        })
    );
    wrk.recv(&mut buf, soon()).unwrap();
    assert_eq!(buf, b"after");
    sender.join().unwrap();
}

#[test]
fn cancel_flag_is_seen_by_the_peer() {
    let (sup, wrk) = Endpoint::pair();
    assert!(!wrk.cancel_requested());
    sup.set_cancel(true);
    assert!(wrk.cancel_requested());
    sup.set_cancel(false);
    assert!(!wrk.cancel_requested());
}
