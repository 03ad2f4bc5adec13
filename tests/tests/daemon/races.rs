//! One table of lifecycle races: a compute that is queued, running, waiting
//! for its home, or flooding `print`, crossed with `cancel`, a
//! `session.close` pipelined behind it (then `cancel`), a disconnect,
//! SIGTERM, and a second SIGTERM during shutdown. Every request gets
//! exactly one reply (or the connection closes), and no worker stays busy
//! after the daemon said the compute ended.

use rmpv::Value;

use super::harness::{eventually, Answer, Daemon, Raw};

#[derive(Clone, Copy, Debug)]
enum State {
    Queued,
    Running,
    WaitingForHome,
    FloodingPrint,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Cancel,
    CloseThenCancel,
    Disconnect,
    Sigterm,
    SigtermTwice,
}

const ACTIONS: [Action; 5] = [
    Action::Cancel,
    Action::CloseThenCancel,
    Action::Disconnect,
    Action::Sigterm,
    Action::SigtermTwice,
];

const SPIN: &str = "print('go') while true do end";
const FLOOD: &str = "while true do print(string.rep('x', 4000)) end";

fn long() -> Value {
    Value::Map(vec![("timeout_ms".into(), 60_000.into())])
}

fn compute(raw: &mut Raw, msgid: u32, sid: &Value, code: &str) {
    raw.request(msgid, "compute", vec![sid.clone(), code.into(), long()]);
}

/// Reads until the first log line of a compute: it runs.
fn wait_started(raw: &mut Raw) {
    let msg = raw.next().expect("a log notification");
    assert_eq!(
        msg[0],
        Value::from(2),
        "a response before the compute printed: {msg}"
    );
}

/// Sets up `state`; returns the target session and the msgids of the
/// computes that are pending (all must end `Cancelled`), plus the session
/// holding the home (to stop afterwards), if any.
fn set_up(raw: &mut Raw, state: State) -> (Value, Vec<u32>, Option<Value>) {
    match state {
        State::Running => {
            let sid = raw.open(1, None);
            compute(raw, 10, &sid, SPIN);
            wait_started(raw);
            (sid, vec![10], None)
        }
        State::Queued => {
            let sid = raw.open(1, None);
            compute(raw, 10, &sid, SPIN);
            wait_started(raw);
            compute(raw, 11, &sid, "return 1");
            (sid, vec![10, 11], None)
        }
        State::WaitingForHome => {
            let holder = raw.open(1, Some("h"));
            compute(raw, 10, &holder, SPIN);
            wait_started(raw);
            let sid = raw.open(2, Some("h"));
            compute(raw, 11, &sid, "return 1");
            (sid, vec![11], Some(holder))
        }
        State::FloodingPrint => {
            let sid = raw.open(1, None);
            compute(raw, 10, &sid, FLOOD);
            wait_started(raw);
            // Not reading for a while: the outbox fills past its bound.
            std::thread::sleep(std::time::Duration::from_millis(300));
            (sid, vec![10], None)
        }
    }
}

/// Each msgid in `want` answered exactly once, with that answer, and
/// nothing else answered.
fn exactly_once(got: &[(Option<u64>, Answer)], want: &[(u32, Answer)], case: &str) {
    for (id, answer) in want {
        let replies: Vec<_> = got
            .iter()
            .filter(|(g, _)| *g == Some(u64::from(*id)))
            .collect();
        assert_eq!(replies.len(), 1, "{case}: msgid {id} answered {replies:?}");
        assert_eq!(&replies[0].1, answer, "{case}: msgid {id}");
    }
    for (g, a) in got {
        assert!(
            want.iter().any(|(id, _)| *g == Some(u64::from(*id))),
            "{case}: unexpected reply {g:?} {a:?}"
        );
    }
}

fn race(state: State, action: Action) {
    let case = format!("{state:?} x {action:?}");
    let mut d = Daemon::start(&["--grace", "1", "--max-unsent-mib", "1"]);
    let mut raw = d.raw();
    let (sid, pending, holder) = set_up(&mut raw, state);
    let cancelled = || Answer::Err("Cancelled".into());
    let mut want: Vec<(u32, Answer)> = pending.iter().map(|&id| (id, cancelled())).collect();
    match action {
        Action::Cancel | Action::CloseThenCancel => {
            if let Action::CloseThenCancel = action {
                raw.request(31, "session.close", vec![sid.clone()]);
                want.push((31, Answer::Ok(Value::Nil)));
            }
            raw.request(30, "cancel", vec![sid.clone()]);
            want.push((30, Answer::Ok(Value::Nil)));
            let mut got = raw.responses_until(Some(*pending.last().unwrap()));
            if let Some(holder) = holder {
                // The waiter stopped waiting while the holder still runs.
                assert!(
                    !got.iter().any(|(id, _)| *id == Some(10)),
                    "{case}: the holder ended first"
                );
                raw.request(40, "cancel", vec![holder]);
                want.push((40, Answer::Ok(Value::Nil)));
                want.push((10, cancelled()));
                got.extend(raw.responses_until(Some(10)));
            }
            raw.request(99, "get_io_table_id", vec![999.into()]);
            want.push((99, Answer::Err("UnknownSession".into())));
            got.extend(raw.responses_until(Some(99)));
            exactly_once(&got, &want, &case);
            d.workers_are_free();
        }
        Action::Disconnect => {
            drop(raw);
            eventually(&format!("{case}: the sessions are freed"), || {
                d.tables().1 == 0
            });
            d.workers_are_free();
        }
        Action::Sigterm | Action::SigtermTwice => {
            d.signal(libc::SIGTERM);
            if let Action::SigtermTwice = action {
                d.signal(libc::SIGTERM);
            }
            if holder.is_some() {
                want.push((10, cancelled()));
            }
            let got = raw.responses_until(None);
            exactly_once(&got, &want, &case);
            let status = d.wait_exit();
            assert!(status.success(), "{case}: {status}: {}", d.stderr());
        }
    }
}

#[test]
fn races_with_a_queued_compute() {
    for a in ACTIONS {
        race(State::Queued, a);
    }
}

#[test]
fn races_with_a_running_compute() {
    for a in ACTIONS {
        race(State::Running, a);
    }
}

#[test]
fn races_with_a_compute_waiting_for_its_home() {
    for a in ACTIONS {
        race(State::WaitingForHome, a);
    }
}

#[test]
fn races_with_a_compute_flooding_print() {
    for a in ACTIONS {
        race(State::FloodingPrint, a);
    }
}
