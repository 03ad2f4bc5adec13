//! The daemon's socket framing (`luapool_protocol::stream`) on hostile bytes.
//!
//! - It never panics, and `Complete(n)` never points past the bytes.
//! - Scanning the bytes as they arrive in arbitrary slices gives the same
//!   answer as scanning them at once.
//! - Differential: when `rmpv` reads one whole MessagePack value of `n`
//!   bytes from the input (within the limits), the scanner says
//!   `Complete(n)`; when it says `Complete(n)`, those `n` bytes are one
//!   value's worth of headers (rmpv agrees on the length, or rejects the
//!   contents, e.g. invalid UTF-8, which the scanner does not look at).
#![no_main]

use luapool_protocol::stream::{FrameScanner, Scan, MAX_DEPTH};
use libfuzzer_sys::fuzz_target;

/// Small, so inputs of libFuzzer's usual sizes reach the limit.
const MAX: usize = 256;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let step = usize::from(data[0]) % 17 + 1;
    let bytes = &data[1..];

    let at_once = FrameScanner::new(MAX).scan(bytes);
    if let Scan::Complete(n) = at_once {
        assert!(n > 0 && n <= bytes.len());
    }

    // The same bytes, arriving `step` at a time.
    let mut s = FrameScanner::new(MAX);
    let mut seen = 0;
    let mut incremental = Scan::Incomplete;
    while seen < bytes.len() {
        seen = (seen + step).min(bytes.len());
        incremental = s.scan(&bytes[..seen]);
        if incremental != Scan::Incomplete {
            break;
        }
    }
    if bytes.is_empty() {
        return;
    }
    assert_eq!(at_once, incremental, "at once vs {step} bytes at a time");

    // Differential against rmpv.
    let mut cursor = std::io::Cursor::new(bytes);
    let theirs = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_DEPTH + 8);
    match (at_once, theirs) {
        (Scan::Complete(n), Ok(_)) => assert_eq!(n as u64, cursor.position(), "lengths differ"),
        (Scan::Complete(_), Err(_)) => {} // contents rmpv rejects (e.g. UTF-8); framing is fine
        (Scan::Incomplete, Ok(_)) => panic!("rmpv read a whole value the scanner calls incomplete"),
        // Every declared byte and item takes a byte: a value the scanner
        // refuses as too large really is larger than the limit.
        (Scan::TooLarge, Ok(_)) => assert!(
            cursor.position() as usize > MAX,
            "TooLarge, but rmpv read {} bytes",
            cursor.position()
        ),
        (Scan::Invalid(why), Ok(_)) if why.contains("deep") => {} // depth limits count differently
        // rmpv reads the never-used byte 0xc1 as nil; the scanner refuses it,
        // as the MessagePack spec says to (found by this target, 1st run).
        (Scan::Invalid(why), Ok(_)) if why.contains("0xc1") => {}
        (Scan::Invalid(why), Ok(v)) => panic!("scanner says invalid ({why}), rmpv read {v:?}"),
        (_, Err(_)) => {}
    }
});
