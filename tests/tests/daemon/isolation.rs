//! What a client learns of other clients (issue 11): `stats` covers only
//! its own sessions (the operator's socket sees the whole daemon), session
//! ids count per connection, and table ids carry unpredictable arena ids.

use luapool_client::StatsScope;
use serde_json::json;

use super::harness::Daemon;

#[test]
fn stats_show_a_client_its_own_sessions_and_nothing_of_others() {
    let d = Daemon::start(&[]);
    let (a, b) = (d.client(), d.client());
    let sa = a.session().unwrap();
    let sb = b.session().unwrap();
    sb.set_input(&json!({ "mine": 1 })).unwrap();
    let before = b.stats().unwrap();
    assert_eq!(before.scope, StatsScope::Connection);
    sa.set_input(&json!({ "secret": "x".repeat(123_457) }))
        .unwrap();
    let _more: Vec<_> = (0..5).map(|_| a.session().unwrap()).collect();
    let after = b.stats().unwrap();
    assert_eq!(after, before, "B sees nothing of A's sessions or data");
    assert_eq!(
        (after.sessions, after.connections, after.computes),
        (1, None, None)
    );
    assert_eq!(after.store.tables, sb.table_info().unwrap().session_tables);
    // The operator sees everything.
    let all = d.operator().stats().unwrap();
    assert_eq!((all.scope, all.sessions), (StatsScope::Daemon, 7));
    assert!(all.store.bytes > 123_457);
}

#[test]
fn ids_say_nothing_about_other_clients_activity() {
    let d = Daemon::start(&[]);
    let (a, b) = (d.client(), d.client());
    let first = b.session().unwrap();
    let mut arenas = vec![first.io_table_id().unwrap().arena()];
    let mut others = Vec::new();
    for _ in 0..20 {
        // Another client opens sessions in between...
        others.extend((0..3).map(|_| a.session().unwrap()));
        let s = b.session().unwrap();
        arenas.push(s.io_table_id().unwrap().arena());
        others.push(s);
    }
    // ...which B's session ids do not count,
    assert_eq!(first.id(), 1);
    assert_eq!(others.last().unwrap().id(), 21);
    // and B's arena ids do not step by what A opened: they are spread
    // over the whole range (sequential ids would differ by 8 each time).
    let steps: Vec<i64> = arenas
        .windows(2)
        .map(|w| i64::from(w[1]) - i64::from(w[0]))
        .collect();
    assert!(
        steps.iter().filter(|s| s.abs() > 1 << 12).count() > 10,
        "arena ids look sequential: {arenas:?}"
    );
}
