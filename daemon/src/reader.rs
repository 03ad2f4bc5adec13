//! One connection's reading side: its buffer of bytes read, the frames
//! found in it (handled in order by `requests.rs`), a `script.load` handed
//! to a call thread with the frame it came in (`scripts.rs`), and its
//! share of the daemon-wide bound on request bytes held (`buffered_bytes`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use luapool_protocol::rpc::RpcError;
use luapool_protocol::stream::{FrameScanner, Scan};

use crate::requests::{Flow, Requests};
use crate::scripts;
use crate::shared::Shared;

/// Bytes read from a client at a time.
pub(crate) const READ_CHUNK: usize = 64 << 10;

/// One connection's reading side.
pub(crate) struct Reader {
    pub req: Requests,
    pub buf: Vec<u8>,
    pub scanner: FrameScanner,
    /// The scanner takes only frames of `unauthenticated_bytes` (before auth).
    pub small_frames: bool,
    /// Bytes of `shared.buffered` this reader holds (its buffer past the
    /// first chunk, and what the last read may have added).
    pub reserved: usize,
    /// No more reading: shutdown, or closing after a protocol error (then
    /// closed once its last reply is out, or at the deadline).
    pub stopped: bool,
    pub closing: Option<Instant>,
    /// A `script.load` of this connection is on a call thread: the frames
    /// after it wait in `buf`, and no more is read, until it is answered.
    pub held: bool,
}

/// Handles the complete frames at the front of the reader's buffer, up to
/// a `script.load` that goes to a call thread (then `Load`: the reader is
/// held).
pub(crate) fn frames(shared: &Arc<Shared>, r: &mut Reader) -> Flow {
    let mut flow = Flow::Continue;
    let mut used = 0;
    while flow == Flow::Continue {
        match r.scanner.scan(&r.buf[used..]) {
            Scan::Complete(len) => {
                let frame = used..used + len;
                flow = r.req.frame(shared, &r.buf[frame.clone()]);
                used += len;
                r.scanner.reset();
                if let Flow::Load(msgid) = flow {
                    flow = hand_off(shared, r, frame, msgid);
                    used = 0; // what was used went with it
                }
                if r.req.authed && r.small_frames {
                    // Authenticated: frames of any allowed size from now on.
                    r.small_frames = false;
                    r.scanner = FrameScanner::new(shared.limits.max_frame);
                }
            }
            Scan::Incomplete => break,
            Scan::TooLarge => {
                let max = if r.req.authed {
                    shared.limits.max_frame
                } else {
                    shared.limits.unauthenticated_bytes
                };
                let e = RpcError::bad_request(format!(
                    "frame larger than {max} bytes; closing the connection"
                ));
                r.req.conn.reply(shared, None, Err(e));
                flow = Flow::Close;
            }
            Scan::Invalid(why) => {
                let e = RpcError::bad_request(format!(
                    "not MessagePack ({why}); closing the connection"
                ));
                r.req.conn.reply(shared, None, Err(e));
                flow = Flow::Close;
            }
        }
    }
    r.buf.drain(..used);
    if r.buf.capacity() > 4 * READ_CHUNK && r.buf.len() < READ_CHUNK {
        // Do not keep a large frame's buffer for the connection's life.
        r.buf.shrink_to(READ_CHUNK);
    }
    let held = r.buf.len().saturating_sub(READ_CHUNK);
    if held < r.reserved {
        release(shared, r.reserved - held);
        r.reserved = held;
    }
    flow
}

/// Gives the `script.load` in `r.buf[frame]` to a call thread: the buffer
/// up to the frame's end goes with it, not copied (the frame may be tens
/// of MiB), and so does its share of `buffered_bytes`; what follows the
/// frame (less than a read's chunk) stays. `Load` (the reader is held
/// until the load is answered), or `Continue` if it was answered already.
fn hand_off(shared: &Shared, r: &mut Reader, frame: Range<usize>, msgid: u32) -> Flow {
    let rest = r.buf.split_off(frame.end);
    let buf = std::mem::replace(&mut r.buf, rest);
    let held = r.buf.len().saturating_sub(READ_CHUNK).min(r.reserved);
    let bytes = r.reserved - held;
    r.reserved = held;
    if scripts::submit(shared, &r.req.conn, msgid, (buf, frame), bytes) {
        r.held = true;
        Flow::Load(msgid)
    } else {
        Flow::Continue
    }
}

/// Takes `more` bytes of the daemon-wide bound for `r`; false if the bound
/// is reached (the reader pauses until others give back).
pub(crate) fn reserve(shared: &Shared, r: &mut Reader, more: usize) -> bool {
    let ok = shared.buffered.try_take(more);
    if ok {
        r.reserved += more;
    }
    ok
}

pub(crate) fn release(shared: &Shared, bytes: usize) {
    shared.buffered.give_back(bytes);
}
