//! `luapool-worker`: one sandboxed Lua 5.4 state serving computes for a
//! luapool supervisor over a 64 KiB shared-memory ring.
//!
//! The supervisor starts it as `luapool-worker --ring <os-id> [--max-memory <bytes>]`.
//! The worker opens the ring, builds its Lua state, confines itself
//! (`confine.rs`: no descriptors, tight rlimits, a seccomp allowlist), says
//! it is ready, then runs each compute it is sent. External tables live in the supervisor: every read the worker cannot
//! serve from its per-compute cache becomes a request on the ring. The worker
//! exits when told to, when its parent dies, or when the ring breaks.
//!
//! Where things are: `setup.rs` builds the Lua state once; `compute.rs`
//! runs a compute (sandbox: `sandbox.rs`, `sandbox.lua`; stops of every
//! limit: `stop.rs`, with `coroutines.rs`, the CPU-time timer `cpu.rs` and
//! the memory count `memory.rs`; compiled chunks: `chunks.rs`; process-wide
//! statics: `statics.rs`). External tables are `ext/`: writable ones are
//! Lua proxies (`ext/prelude.lua`, `ext/writable/`), read-only ones (the
//! input) light userdata over a Rust cache (`ext/readonly/`);
//! `ext/link.rs` and `ext/conn.rs` talk to the supervisor (requests,
//! buffered writes, windows fetched ahead), and replies are read in place
//! with `luapool_protocol::hot`. `convert.rs` turns Lua values into
//! protocol values.

mod bigint;
mod chunks;
mod compute;
mod convert;
mod coroutines;
mod cpu;
mod ext;
mod func_source;
mod memory;
mod sandbox;
mod setup;
mod statics;
mod stop;
mod values;

/// Every allocation is counted, so a compute's memory includes its Rust
/// buffers (`memory.rs`).
#[global_allocator]
static ALLOCATOR: memory::Counting = memory::Counting;

use std::process::ExitCode;

use luapool_protocol::{Endpoint, ToSupervisor, ToWorker};

use crate::compute::Worker;
use crate::ext::Conn;

fn main() -> ExitCode {
    let mut ring_id = None;
    let mut max_memory: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ring" => ring_id = args.next(),
            "--max-memory" => max_memory = args.next().and_then(|s| s.parse().ok()),
            "--help" | "-h" => {
                println!("luapool-worker --ring <os-id> [--max-memory <bytes>]\nStarted by the luapool supervisor; not meant to be run by hand.");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("luapool-worker: unknown argument {a:?} (see --help)");
                return ExitCode::from(2);
            }
        }
    }
    let Some(ring_id) = ring_id else {
        eprintln!("luapool-worker: --ring <os-id> is required");
        return ExitCode::from(2);
    };
    let parent = die_with_parent();
    if let Some(bytes) = max_memory.filter(|&b| b > 0) {
        limit_address_space(bytes);
    }
    let mut ring = match Endpoint::open(&ring_id) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("luapool-worker: cannot open ring {ring_id}: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: getppid has no preconditions.
    ring.set_peer_alive(Box::new(move || unsafe { libc::getppid() } == parent));
    let mut worker = match Worker::new(Conn::new(ring)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("luapool-worker: {e}");
            return ExitCode::from(3);
        }
    };
    if let Some(bytes) = max_memory {
        worker.cap_heap(heap_cap_under(bytes));
    }
    // From here on: no descriptors, no files, no processes, a seccomp
    // allowlist (confine.rs).
    if let Err(e) = luapool_worker::confine::confine() {
        eprintln!("luapool-worker: cannot confine the worker: {e}");
        return ExitCode::from(3);
    }
    worker.idle();
    if let Err(e) = worker.conn().send(&ToSupervisor::Ready {
        pid: std::process::id(),
    }) {
        eprintln!("luapool-worker: {e}");
        return ExitCode::from(3);
    }
    loop {
        let msg = worker.conn().recv();
        match msg {
            Ok(ToWorker::Start(start)) => {
                let done = worker
                    .run(&start)
                    .and_then(|outcome| worker.conn().done(outcome));
                if let Err(e) = done {
                    eprintln!("luapool-worker: {e}");
                    return ExitCode::from(3);
                }
                worker.idle();
            }
            Ok(ToWorker::Shutdown) => return ExitCode::SUCCESS,
            Ok(ToWorker::Reply(_)) => {
                eprintln!("luapool-worker: a reply arrived with no request outstanding");
                return ExitCode::from(3);
            }
            Err(e) => {
                eprintln!("luapool-worker: {e}");
                return ExitCode::from(3);
            }
        }
    }
}

/// Asks the kernel to kill this process when its parent dies; returns the parent's pid.
fn die_with_parent() -> libc::pid_t {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::getppid()
    }
}

/// The Lua heap cap under an address-space limit of `bytes`: a quarter (at
/// least 32 MiB) is left for the program, its stacks and its buffers, so a
/// Lua allocation fails cleanly (`MemoryLimit`) before the OS refuses one and
/// the Rust allocator aborts. 0 (no address-space limit) means no cap.
fn heap_cap_under(bytes: u64) -> usize {
    let headroom = (bytes / 4).max(32 << 20);
    usize::try_from(bytes.saturating_sub(headroom).max(bytes / 2)).unwrap_or(usize::MAX)
}

/// The OS backstop behind the Lua heap limit: cap the address space.
fn limit_address_space(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit that outlives the call.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &lim);
    }
}
