//! `script.load` and computes by digest over a real daemon: a digest is
//! the connection's own, an unknown one is `NoScript`, the script store's
//! bounds (per connection, for the daemon) hold and free up when a
//! connection closes, and a large load holds up its own connection only.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use luapool_client::{ClientError, ComputeError, ErrorKind};
use luapool_supervisor::script_digest;
use rmpv::Value;

use super::harness::{Answer, Daemon, Raw};

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

/// Whether nothing waits to be read on `s` (without waiting for it).
fn nothing_to_read(s: &UnixStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into `byte`, which outlives the call.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

/// Hashing a script takes time in proportion to it (a 64 MiB one about
/// 100 ms), so `script.load` runs on a call thread, not on the event loop
/// that serves every connection. Here the daemon's only call thread is
/// held (by a `home.export` that waits for a home a running compute
/// holds), so a 4 MiB load cannot finish, by construction: meanwhile
/// another connection is served (answered-at-once methods and a compute),
/// and the loading connection gets nothing, not even the replies of what
/// it pipelined behind the load. Once the call thread is free, its replies
/// come in order: the load, then a `stats` sent after it, then a compute
/// by the new digest.
#[test]
fn a_large_script_load_holds_up_only_its_own_connection_whose_replies_stay_in_order() {
    let d = Daemon::start(&[
        "--call-threads",
        "1",
        "--cpu-time",
        "0",
        "--max-cpu-time",
        "0",
    ]);
    let long = || Value::Map(vec![("timeout_ms".into(), 120_000.into())]);
    // Hold the only call thread.
    let mut holder = d.raw();
    let root = Value::Map(vec![("n".into(), 1.into())]);
    let imported = holder.call(1, "home.import", vec!["h".into(), root.clone()]);
    assert_eq!(imported, Answer::Ok(Value::Nil));
    let sid = holder.open(2, Some("h"));
    let spin = "print('running') while true do end";
    holder.request(3, "compute", vec![sid.clone(), spin.into(), long()]);
    let running = holder.next().expect("a log notification");
    assert_eq!(
        running[0],
        Value::from(2),
        "the compute holding `h` runs: {running}"
    );
    holder.request(4, "home.export", vec!["h".into()]);
    // Answered at once, after the export was handed to the call thread:
    // the export is ahead of anything sent from here on.
    assert!(matches!(holder.call(5, "stats", vec![]), Answer::Ok(_)));

    // A large load with a `stats` and a compute by its digest pipelined behind.
    let stream = UnixStream::connect(&d.socket).expect("connect");
    let probe = stream.try_clone().unwrap();
    let mut a = Raw::new(stream);
    let sa = a.open(1, None);
    let code = format!("--{}\nreturn 7", "x".repeat(4 << 20));
    let digest = script_digest(&code);
    a.request(10, "script.load", vec![code.into()]);
    a.request(11, "stats", vec![]);
    a.request(12, "compute", vec![sa, digest.as_str().into()]);

    // Another connection is served meanwhile, every kind of call but a
    // call thread's.
    let mut b = d.raw();
    let sb = b.open(1, None);
    let Answer::Ok(out) = b.call(2, "compute", vec![sb.clone(), "return 1".into()]) else {
        panic!("B's compute")
    };
    assert_eq!(out["values"], Value::Array(vec![1.into()]));
    assert!(matches!(b.call(3, "stats", vec![]), Answer::Ok(_)));
    assert!(matches!(
        b.call(4, "get_table_info", vec![sb]),
        Answer::Ok(_)
    ));
    assert!(matches!(b.call(5, "session.open", vec![]), Answer::Ok(_)));
    // The loading connection got nothing yet: its load waits for the call
    // thread, and what it sent after the load waits for the load.
    assert!(
        nothing_to_read(&probe),
        "the load was answered without a call thread"
    );

    // Free the call thread: the export, then the load, run.
    holder.request(6, "cancel", vec![sid]);
    assert_eq!(holder.answer(3), Answer::Err("Cancelled".into()));
    assert_eq!(holder.answer(4), Answer::Ok(root));
    let replies = a.responses_until(Some(12));
    let ids: Vec<_> = replies.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [Some(10), Some(11), Some(12)], "{replies:?}");
    assert_eq!(replies[0].1, Answer::Ok(digest.as_str().into()));
    let Answer::Ok(out) = &replies[2].1 else {
        panic!("the compute by digest: {replies:?}")
    };
    assert_eq!(out["values"], Value::Array(vec![7.into()]));
}
