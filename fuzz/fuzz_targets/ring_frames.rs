//! The ring's receive path on hostile bytes: whatever a peer publishes in
//! its data area (frame headers, chunk chains, payloads), the consumer
//! returns whole messages or typed errors; it never panics, loops, or
//! allocates more than the bytes it was given (plus a bounded reserve).
//!
//! Input: byte 0 picks the ring's capacity (64..=4159 bytes, so wrap-around
//! and chunking happen), byte 1 the message limit; the rest is written raw
//! into the ring in slices of at most the free space, each slice followed by
//! receives until nothing more is complete. Every message received is also
//! decoded as a `ToSupervisor`, as the supervisor does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luapool_protocol::{decode, Endpoint, FrameHeader, RingError, ToSupervisor, FRAME_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let capacity = 64 + usize::from(data[0]) * 16;
    let max_message = 1 + usize::from(data[1]) * 64;
    let bytes = &data[2..];

    // The pure header decoder on every 16-byte window.
    for w in bytes.windows(FRAME_HEADER_LEN) {
        let h: &[u8; FRAME_HEADER_LEN] = w.try_into().unwrap();
        if let Ok(h) = FrameHeader::decode(h, capacity - FRAME_HEADER_LEN) {
            assert!(h.len as u64 <= h.total);
        }
    }

    let (mut sup, worker) = Endpoint::pair_with_capacity(capacity);
    sup.set_max_message(max_message);
    let mut buf = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        // The worker side writes raw bytes; only what fits (the supervisor
        // drains below, so there is always room eventually).
        let n = rest.len().min(capacity / 2).max(1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if worker.send_raw(chunk).is_err() {
            return;
        }
        loop {
            match sup.try_recv(&mut buf) {
                Ok(true) => {
                    assert!(buf.len() <= max_message);
                    let _ = decode::<ToSupervisor>(&buf);
                }
                Ok(false) => break,
                Err(RingError::MessageTooLarge { len, max }) => assert!(len > max),
                Err(RingError::Corrupt(_)) | Err(RingError::Closed) => return,
                Err(e) => panic!("unexpected error from try_recv: {e}"),
            }
        }
    }
});
