//! The memory a compute uses, Lua heap and Rust buffers alike, and its limit.
//!
//! Every allocation of the worker goes through [`Counting`], the global
//! allocator, which keeps one count (`statics::ALLOCATED`); Lua's heap comes
//! from the same allocator ([`lua_alloc`], installed in place of mlua's). A
//! compute's memory is that count above what it was when the compute
//! started ([`begin`]): the heap it started with (cached chunks, the
//! sandbox, garbage of earlier computes) is never charged to it, and what
//! it allocates outside the Lua heap (a plain table copied for the store,
//! a `print` line, replies it reads) is.
//!
//! - A Lua allocation past the limit is refused. Lua then collects garbage
//!   and tries once more, or raises an error; unless the same request is
//!   granted on the retry, the hook stops the compute with `MemoryLimit` at
//!   the next instruction (`stop.rs`), and no `pcall` can catch that.
//! - Rust code that grows a buffer for the compute asks [`reserve`] first;
//!   past the limit that also stops the compute with `MemoryLimit`.
//! - Whatever the limit, the heap is capped below the worker's OS
//!   address-space limit ([`set_cap`]), so that Lua fails an allocation
//!   before the OS refuses one and the Rust allocator aborts.
//!
//! The worker runs Lua on one thread, so the count is kept with plain
//! loads and stores of an atomic (no locked instruction per allocation); an
//! allocation on another thread would only make the count approximate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::atomic::Ordering;

use crate::statics::{ALLOCATED, COMPUTE_BASE, COMPUTE_LIMIT, HEAP_CAP, IN_COMPUTE, REFUSED};
use crate::stop::{self, Reason};

/// The worker's global allocator: the system's, counted.
pub struct Counting;

fn add(n: usize) {
    ALLOCATED.store(
        ALLOCATED.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

fn sub(n: usize) {
    ALLOCATED.store(
        ALLOCATED.load(Ordering::Relaxed).wrapping_sub(n),
        Ordering::Relaxed,
    );
}

// SAFETY: every method forwards to `System` with the same arguments and
// only adjusts a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        sub(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}

/// Bytes allocated now, in all.
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Caps the whole heap at `bytes` (0: no cap).
pub fn set_cap(bytes: usize) {
    HEAP_CAP.store(bytes, Ordering::Relaxed);
}

/// The cap set by [`set_cap`] (0: none).
pub fn cap() -> usize {
    HEAP_CAP.load(Ordering::Relaxed)
}

/// Starts counting a compute's memory, limited to `limit` bytes (0: only
/// the cap).
pub fn begin(limit: usize) {
    COMPUTE_BASE.store(allocated(), Ordering::Relaxed);
    COMPUTE_LIMIT.store(limit, Ordering::Relaxed);
    REFUSED.store(0, Ordering::Relaxed);
}

/// Ends a compute's limit (the cap stays).
pub fn end() {
    COMPUTE_LIMIT.store(0, Ordering::Relaxed);
}

/// The running compute's memory: what the heap holds above where it started.
pub fn used() -> usize {
    allocated().saturating_sub(COMPUTE_BASE.load(Ordering::Relaxed))
}

/// Whether a Lua allocation was refused and not granted since (on Lua's
/// retry after collecting garbage): the compute is out of memory.
pub fn refused() -> bool {
    REFUSED.load(Ordering::Relaxed) != 0
}

/// Whether `more` bytes fit: under the cap, and within the compute's limit
/// while one runs.
fn fits(more: usize) -> bool {
    let after = allocated().saturating_add(more);
    let cap = HEAP_CAP.load(Ordering::Relaxed);
    if cap > 0 && after > cap {
        return false;
    }
    let limit = COMPUTE_LIMIT.load(Ordering::Relaxed);
    !(limit > 0
        && IN_COMPUTE.load(Ordering::Relaxed)
        && after > COMPUTE_BASE.load(Ordering::Relaxed).saturating_add(limit))
}

/// The compute's memory limit was reached by Rust code.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not enough memory: {wanted} more bytes would pass the compute's memory limit")]
pub struct OutOfMemory {
    /// The bytes asked for.
    pub wanted: usize,
}

/// Asks for `bytes` more for the running compute before Rust code
/// allocates them. Past the limit the compute is stopped (`MemoryLimit`).
pub fn reserve(bytes: usize) -> Result<(), OutOfMemory> {
    if fits(bytes) {
        return Ok(());
    }
    stop::halt(Reason::Memory);
    Err(OutOfMemory { wanted: bytes })
}

/// Lua's alignment (`LUAI_MAXALIGN` on 64-bit targets); mlua's allocator
/// uses the same, so blocks it allocated before [`lua_alloc`] took over
/// are freed with the right layout.
const ALIGN: usize = mlua::ffi::SYS_MIN_ALIGN;

fn layout(size: usize) -> Layout {
    // SAFETY: ALIGN is a power of two and Lua never asks for a size near
    // isize::MAX (luaM_ checks sizes against MAX_SIZE first).
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// The Lua allocator (`lua_Alloc`): the global allocator, with the limit.
///
/// # Safety
/// Called by Lua with Lua's allocator contract (`ptr` from this allocator
/// or mlua's, which allocates the same way, `osize` its size when not null).
pub unsafe extern "C" fn lua_alloc(
    _ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        if !ptr.is_null() {
            std::alloc::dealloc(ptr.cast(), layout(osize));
        }
        return std::ptr::null_mut();
    }
    let old = if ptr.is_null() { 0 } else { osize };
    let key = nsize ^ old.rotate_left(32) ^ (ptr as usize);
    if nsize > old && !fits(nsize - old) {
        // Lua may collect garbage and ask again (its own allocations do),
        // or raise a plain error (the string buffers of its libraries do).
        // The hook, at the next instruction, stops the compute unless the
        // same request was granted since.
        REFUSED.store(key.max(1), Ordering::Relaxed);
        if IN_COMPUTE.load(Ordering::Relaxed) {
            stop::arm();
        }
        return std::ptr::null_mut();
    }
    if nsize > old && REFUSED.load(Ordering::Relaxed) == key.max(1) {
        REFUSED.store(0, Ordering::Relaxed);
    }
    if ptr.is_null() {
        std::alloc::alloc(layout(nsize)).cast()
    } else {
        std::alloc::realloc(ptr.cast(), layout(osize), nsize).cast()
    }
}

/// Makes [`lua_alloc`] the allocator of `lua`.
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    // SAFETY: only swaps the allocator function; mlua's allocator data
    // stays valid (mlua keeps it), and both allocators allocate alike.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi_setallocf(l);
        })
    }
}

/// # Safety
/// `l` is a live Lua state.
unsafe fn ffi_setallocf(l: *mut mlua::ffi::lua_State) {
    mlua::ffi::lua_setallocf(l, lua_alloc, std::ptr::null_mut());
}
