//! The daemon under output expansion (issue 10): a reply is bounded by
//! bytes (`--max-output`), and an output that shares one table 100 000
//! times is refused with `OutputTooLarge` while the daemon and every other
//! session go on.

use rmpv::Value;

use super::harness::{Answer, Daemon};

#[test]
fn a_shared_table_output_is_refused_and_the_daemon_goes_on() {
    let d = Daemon::start(&["--max-output", "64"]);
    let mut raw = d.raw();
    let Answer::Ok(sid) = raw.call(1, "session.open", vec![]) else {
        panic!("session.open failed")
    };
    let script = r#"
        local s = ext.table(); s[1] = string.rep("x", 2^20)
        local out = ext.table(); for i = 1, 100000 do out[i] = s end
        _io.output = out
    "#;
    assert!(matches!(
        raw.call(2, "compute", vec![sid.clone(), script.into()]),
        Answer::Ok(_)
    ));
    for id in 3..6 {
        assert_eq!(
            raw.call(id, "get_output", vec![sid.clone()]),
            Answer::Err("OutputTooLarge".into())
        );
    }
    assert_eq!(
        raw.call(6, "compute", vec![sid.clone(), "return _io.output".into()]),
        Answer::Err("OutputTooLarge".into())
    );
    let Answer::Ok(n) = raw.call(7, "compute", vec![sid, "return #_io.output".into()]) else {
        panic!("the session no longer computes")
    };
    assert_eq!(n["values"][0], Value::from(100_000));
    assert!(d.child_running());
    let other = d.client().session().unwrap();
    other.compute("_io.output = {ok = true}").unwrap();
    assert_eq!(
        other.get_output::<serde_json::Value>().unwrap(),
        serde_json::json!({"ok": true})
    );
}
