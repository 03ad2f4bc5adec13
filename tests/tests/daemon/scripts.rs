//! `script.load` and computes by digest over a real daemon: a digest is
//! the connection's own, an unknown one is `NoScript`, and the script
//! store's bounds (per connection, for the daemon) hold and free up when a
//! connection closes.

use luapool_client::{ClientError, ComputeError, ErrorKind};

use super::harness::{Answer, Daemon};

fn limit(e: ClientError) -> String {
    match e {
        ClientError::Daemon {
            kind: ErrorKind::LimitReached,
            limit: Some(l),
            ..
        } => l.limit,
        other => panic!("not a limit: {other:?}"),
    }
}

#[test]
fn a_loaded_script_runs_by_digest_on_the_connection_that_loaded_it() {
    let d = Daemon::start(&[]);
    let c = d.client();
    let digest = c.load_script("return 1").unwrap();
    // Redis's SHA-1 of the same script (`redis-cli SCRIPT LOAD "return 1"`).
    assert_eq!(digest, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    let s = c.session().unwrap();
    assert_eq!(s.compute(&digest).unwrap().value::<i64>(0).unwrap(), 1);

    // Another connection does not see it until it loads it itself.
    let other = d.client();
    let o = other.session().unwrap();
    match o.compute(&digest) {
        Err(ClientError::Compute(ComputeError::NoScript { digest: d })) => assert_eq!(d, digest),
        other => panic!("{other:?}"),
    }
    assert_eq!(other.load_script("return 1").unwrap(), digest);
    assert_eq!(o.compute(&digest).unwrap().value::<i64>(0).unwrap(), 1);

    // Over raw frames: the error's kind, and the connection goes on.
    let mut raw = d.raw();
    let sid = raw.open(1, None);
    let e = raw.call(2, "compute", vec![sid.clone(), digest.as_str().into()]);
    assert_eq!(e, Answer::Err("NoScript".into()));
    assert_eq!(
        raw.call(3, "script.load", vec![7.into()]),
        Answer::Err("BadRequest".into())
    );
    let loaded = raw.call(4, "script.load", vec!["return 1".into()]);
    assert_eq!(loaded, Answer::Ok(digest.as_str().into()));
    assert!(matches!(
        raw.call(5, "compute", vec![sid, digest.as_str().into()]),
        Answer::Ok(_)
    ));
}

#[test]
fn the_daemons_script_bounds_hold_and_a_closed_connection_frees_its_scripts() {
    let d = Daemon::start(&[
        "--max-scripts",
        "2",
        "--max-script-mib",
        "1",
        "--max-scripts-per-connection",
        "1",
    ]);
    let a = d.client();
    a.load_script("return 'a'").unwrap();
    // The same code again takes no more room.
    a.load_script("return 'a'").unwrap();
    assert_eq!(
        limit(a.load_script("return 'a2'").unwrap_err()),
        "scripts_per_connection"
    );
    let b = d.client();
    b.load_script("return 'b'").unwrap();
    let c = d.client();
    assert_eq!(
        limit(c.load_script("return 'c'").unwrap_err()),
        "max_scripts"
    );
    // A script that another connection loaded already costs nothing more.
    c.load_script("return 'b'").unwrap();
    drop(a);
    // The daemon frees `a`'s script once it sees the connection close.
    let d2 = d.client();
    super::harness::eventually("a closed connection's script is freed", || {
        d2.load_script("return 'd'").is_ok()
    });
    drop((b, c));
    let e = d.client();
    let big = format!("return '{}'", "x".repeat(1 << 20));
    assert_eq!(limit(e.load_script(&big).unwrap_err()), "script_bytes");
}
