//! Helpers shared by the end-to-end tests.

use std::sync::{Arc, OnceLock};

use luapool_supervisor::Pool;

/// One pool of two workers shared by the tests that do not break workers.
pub fn pool() -> Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::builder()
            .workers(2)
            .build()
            .expect("start a pool (is luapool-worker built? run `cargo test --workspace`)")
    })
    .clone()
}
