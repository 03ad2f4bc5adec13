//! A `_home`: the arena shared by every session that names it, and the lock
//! that serializes the computes using it.

use std::sync::Arc;

use luapool_protocol::TableId;
use luapool_store::{ArenaId, Store};
use parking_lot::Mutex;

/// A `_home`: an arena with one root table and a lock that serializes the
/// computes using it.
pub struct Home {
    store: Arc<Store>,
    pub(crate) arena: ArenaId,
    pub(crate) root: TableId,
    pub(crate) lock: Mutex<()>,
    pub(crate) live_bytes: Mutex<u64>,
}

impl Home {
    pub(crate) fn new(store: Arc<Store>, quota: u64) -> Home {
        let arena = store.create_arena(quota);
        let root = store
            .new_table(arena)
            .expect("a new arena has room for its root");
        store.add_root(root);
        Home {
            store,
            arena,
            root,
            lock: Mutex::new(()),
            live_bytes: Mutex::new(0),
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.store.drop_arena(self.arena);
    }
}
