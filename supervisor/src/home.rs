//! A `_home`: the arena shared by every session that names it, and the turn
//! that serializes the computes using it (a wait for it can be cancelled).

use std::sync::Arc;

use luapool_protocol::TableId;
use luapool_store::{ArenaId, Store};
use parking_lot::Mutex;

use crate::turn::Turn;

/// A `_home`: an arena with one root table and a turn that serializes the
/// computes using it.
pub struct Home {
    store: Arc<Store>,
    pub(crate) arena: ArenaId,
    pub(crate) root: TableId,
    pub(crate) turn: Arc<Turn>,
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
            turn: Turn::new(),
            live_bytes: Mutex::new(0),
        }
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        self.store.drop_arena(self.arena);
    }
}
