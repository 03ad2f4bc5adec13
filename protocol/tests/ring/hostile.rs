//! A hostile peer: random and mutated frames forged with `send_raw`, and the
//! pure frame-header decoder on random input. Every outcome must be a message
//! or a typed error: no panic, no hang, no unbounded allocation.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use luapool_protocol::{Endpoint, FrameHeader, RingError, FRAME_HEADER_LEN};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A tiny deterministic generator, seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Produces the frames a well-behaved sender would, one at a time.
struct Forger {
    max_frame: u64,
    /// (total, sent) of the message in progress.
    current: Option<(u64, u64)>,
    /// Whole messages a well-behaved stream has produced so far.
    complete: Vec<Vec<u8>>,
    building: Vec<u8>,
}

impl Forger {
    fn frame(&mut self, rng: &mut Rng) -> Vec<u8> {
        let (total, sent) = match self.current {
            Some(c) => c,
            None => {
                self.building.clear();
                (rng.below(3 * self.max_frame + 2), 0)
            }
        };
        let remaining = total - sent;
        let len = if remaining <= self.max_frame && rng.below(2) == 0 {
            remaining
        } else {
            (1 + rng.below(remaining.min(self.max_frame))).min(remaining)
        };
        let mut flags = 0;
        if sent > 0 {
            flags |= FrameHeader::CONT;
        }
        if sent + len < total {
            flags |= FrameHeader::MORE;
            self.current = Some((total, sent + len));
        } else {
            self.current = None;
        }
        let h = FrameHeader {
            len: len as u32,
            flags,
            total,
        };
        let mut out = h.encode().to_vec();
        let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        self.building.extend_from_slice(&payload);
        if self.current.is_none() {
            self.complete.push(self.building.clone());
        }
        out.extend_from_slice(&payload);
        out
    }
}

/// Damages `frame` in one of several ways.
fn mutate(frame: &mut Vec<u8>, rng: &mut Rng, capacity: usize) {
    match rng.below(6) {
        0 if !frame.is_empty() => {
            let i = rng.below(frame.len().min(FRAME_HEADER_LEN) as u64) as usize;
            frame[i] ^= 1 << rng.below(8);
        }
        1 if !frame.is_empty() => {
            let i = rng.below(frame.len() as u64) as usize;
            frame[i] = rng.next() as u8;
        }
        2 => frame.truncate(rng.below(frame.len() as u64 + 1) as usize),
        3 => frame.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
        4 => {
            let n = rng.below(capacity as u64 + 1) as usize;
            *frame = (0..n).map(|_| rng.next() as u8).collect();
        }
        _ => {
            let len =
                [0u32, 1, u32::MAX, capacity as u32, rng.next() as u32][rng.below(5) as usize];
            if frame.len() >= 4 {
                frame[0..4].copy_from_slice(&len.to_le_bytes());
            }
        }
    }
}

/// What the receiver did with the forged frames.
#[derive(Default, Debug)]
struct Tally {
    fed: usize,
    messages: usize,
    too_large: usize,
    corrupt: usize,
}

/// Feeds `frames` frames into fresh pairs of `capacity`, damaging one in
/// `mutate_one_in`, and counts the outcomes into `tally`.
fn hostile_stream(
    capacity: usize,
    seed: u64,
    mutate_one_in: u64,
    frames: usize,
    tally: &mut Tally,
) {
    let mut rng = Rng(seed | 1);
    let mut fed = 0;
    'pairs: while fed < frames {
        let (evil, victim) = Endpoint::pair_with_capacity(capacity);
        let mut victim = victim;
        victim.set_max_message(2 * capacity);
        let mut forger = Forger {
            max_frame: (capacity - FRAME_HEADER_LEN) as u64,
            current: None,
            complete: Vec::new(),
            building: Vec::new(),
        };
        let mut clean = true;
        let mut received = Vec::new();
        let mut buf = Vec::new();
        while fed < frames {
            let mut frame = forger.frame(&mut rng);
            if rng.below(mutate_one_in) == 0 {
                mutate(&mut frame, &mut rng, capacity);
                clean = false;
            }
            frame.truncate(capacity);
            fed += 1;
            tally.fed += 1;
            if evil.send_raw(&frame).is_err() {
                continue 'pairs;
            }
            loop {
                let got = if rng.below(8) == 0 {
                    let soon = Instant::now() + Duration::from_micros(200);
                    match victim.recv(&mut buf, Some(soon)) {
                        Err(RingError::Timeout) => Ok(false),
                        other => other.map(|()| true),
                    }
                } else {
                    victim.try_recv(&mut buf)
                };
                match got {
                    Ok(true) => {
                        tally.messages += 1;
                        received.push(std::mem::take(&mut buf));
                    }
                    Ok(false) => break,
                    Err(RingError::MessageTooLarge { len, max }) => {
                        assert!(len > max);
                        tally.too_large += 1;
                    }
                    Err(RingError::Corrupt(_)) | Err(RingError::Closed) => {
                        assert!(!clean, "a well-formed stream was rejected");
                        tally.corrupt += 1;
                        continue 'pairs;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            if clean {
                let expect: Vec<&Vec<u8>> = forger
                    .complete
                    .iter()
                    .filter(|m| m.len() <= 2 * capacity)
                    .collect();
                assert_eq!(received.len(), expect.len());
                assert!(received.iter().zip(expect).all(|(a, b)| a == b));
            }
        }
    }
}

#[test]
fn hostile_frames_yield_messages_or_typed_errors() {
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (17usize..300, any::<u64>(), 1u64..40);
    runner
        .run(&strategy, |(capacity, seed, one_in)| {
            hostile_stream(capacity, seed, one_in, 60, &mut tally.borrow_mut());
            Ok(())
        })
        .unwrap();
    let t = tally.into_inner();
    eprintln!("hostile frames: {t:?}");
    assert!(t.fed >= 100_000, "{t:?}");
    assert!(
        t.messages > 10_000 && t.too_large > 100 && t.corrupt > 1_000,
        "{t:?}"
    );
}

/// What `FrameHeader::decode` must decide, written independently.
fn decode_model(len: u32, flags: u32, total: u64, max: usize) -> bool {
    let (len64, more) = (len as u64, flags & FrameHeader::MORE != 0);
    flags & !FrameHeader::KNOWN_FLAGS == 0
        && len64 <= max as u64
        && len64 <= total
        && !(more && len == 0)
        && !(flags == 0 && len64 != total)
}

#[test]
fn frame_decoder_agrees_with_its_model_on_random_headers() {
    let mut runner = TestRunner::new(Config {
        cases: 100_000,
        failure_persistence: None,
        ..Config::default()
    });
    let near = (0u32..300, 0u32..8, 0u64..600, 0usize..400);
    let strategy = prop_oneof![
        any::<[u8; FRAME_HEADER_LEN]>().prop_map(|b| (b, 1000usize)),
        near.prop_map(|(len, flags, total, max)| {
            let h = FrameHeader { len, flags, total };
            (h.encode(), max)
        }),
    ];
    runner
        .run(&strategy, |(bytes, max)| {
            let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
            let flags = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            let total = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
            let got = FrameHeader::decode(&bytes, max);
            prop_assert_eq!(got.is_ok(), decode_model(len, flags, total, max));
            if let Ok(h) = got {
                prop_assert_eq!(h, FrameHeader { len, flags, total });
                prop_assert_eq!(h.encode(), bytes);
            }
            Ok(())
        })
        .unwrap();
}
