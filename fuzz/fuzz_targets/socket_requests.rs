//! The daemon's request decoding (`luapool_protocol::rpc`) on hostile
//! frames: never a panic; whatever decodes to a typed request re-encodes
//! (as a client would send it) to a frame that decodes to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use luapool_protocol::rpc::{decode_request, Incoming, Request};

fuzz_target!(|data: &[u8]| {
    let Incoming::Request(raw) = decode_request(data) else {
        return;
    };
    let Ok(req) = Request::decode(&raw.method, &raw.params) else {
        return;
    };
    let mut frame = Vec::new();
    req.encode(raw.msgid, &mut frame);
    let Incoming::Request(again) = decode_request(&frame) else {
        panic!("our own encoding is a request");
    };
    assert_eq!(again.msgid, raw.msgid);
    let again = Request::decode(&again.method, &again.params).expect("our own encoding decodes");
    assert_eq!(again, req);
});
