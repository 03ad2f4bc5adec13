//! Decoding the protocol's messages from hostile bytes, both directions:
//! never a panic or an allocation beyond the input's size; whatever decodes
//! re-encodes to bytes that decode to the same encoding (a fixed point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use luapool_protocol::{decode, encode, ToSupervisor, ToWorker};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode::<ToSupervisor>(data) {
        let once = encode(&m);
        let again = encode(&decode::<ToSupervisor>(&once).expect("our own encoding decodes"));
        assert_eq!(once, again);
    }
    if let Ok(m) = decode::<ToWorker>(data) {
        let once = encode(&m);
        let again = encode(&decode::<ToWorker>(&once).expect("our own encoding decodes"));
        assert_eq!(once, again);
    }
});
