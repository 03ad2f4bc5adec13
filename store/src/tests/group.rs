//! Arenas bounded together: the bytes of all homes.

use std::sync::Arc;

use luapool_protocol::{Key, Value};

use crate::{ArenaGroup, Store, StoreError};

#[test]
fn arenas_of_a_group_share_its_limit_and_give_bytes_back_when_dropped() {
    let store = Store::new();
    let group = Arc::new(ArenaGroup::new(10_000, "homes_bytes"));
    let a = store.create_arena_in(0, Some(group.clone()));
    let b = store.create_arena_in(0, Some(group.clone()));
    let (ta, tb) = (store.new_table(a).unwrap(), store.new_table(b).unwrap());
    store
        .host_set(ta, Key::str("x"), Value::Str(vec![1; 6000]))
        .unwrap();
    let e = store
        .host_set(tb, Key::str("y"), Value::Str(vec![1; 6000]))
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::GroupQuota {
                limit: 10_000,
                what: "homes_bytes",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("homes_bytes"), "{e}");
    assert_eq!(store.host_get(tb, &Key::str("y")), Ok(Value::Nil));
    let used = group.used();
    assert!(used > 6000 && used < 7000, "{used}");
    store.drop_arena(a);
    assert!(group.used() < 200, "{}", group.used());
    store
        .host_set(tb, Key::str("y"), Value::Str(vec![1; 6000]))
        .unwrap();
}
