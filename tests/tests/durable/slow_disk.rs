//! Where the disk work of a durable home runs: reading a home and waiting
//! for a commit happen on the pool thread that takes the compute, so a
//! slow disk costs that compute's time and nothing else: not the thread
//! that submitted it, not other computes, not the daemon's event loop. A
//! backend that holds one home's reads or commits until the test lets them
//! go makes every step deterministic. The daemon's home methods read the
//! disk on its call threads, never on its event loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use std::os::unix::net::UnixStream;

use luapool_client::Client;
use luapool_daemon::{Daemon, DaemonLimits};
use luapool_homes::{ChangeSet, HomeBackend, HomeInfo, HomeStoreError, SqliteHomes, StoredHome};
use luapool_supervisor::{CancelToken, ComputeError, ComputeOptions, HostValue, Pool};

use super::{int, pool, TempDir};
use crate::daemon::harness::{Answer as RawAnswer, Raw};

/// A backend that, for one home, reports each read or commit (with the
/// thread it runs on) and waits for the test to let it go.
struct Gated {
    inner: SqliteHomes,
    home: &'static str,
    hold_load: AtomicBool,
    hold_commit: AtomicBool,
    entered: Mutex<mpsc::Sender<(&'static str, String)>>,
    release: Mutex<mpsc::Receiver<()>>,
}

/// The test's ends of a [`Gated`] backend.
struct Gate {
    entered: mpsc::Receiver<(&'static str, String)>,
    release: mpsc::Sender<()>,
}

impl Gate {
    /// Waits until the held operation starts; returns the thread it runs on.
    fn entered(&self, what: &str) -> String {
        let (op, thread) = self.entered.recv().expect("the backend is gone");
        assert_eq!(op, what);
        thread
    }
    fn release(&self) {
        self.release.send(()).expect("the backend is gone");
    }
}

impl Gated {
    fn new(dir: &TempDir, home: &'static str) -> (Arc<Gated>, Gate) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gated = Gated {
            inner: SqliteHomes::open(&dir.0).expect("open the data directory"),
            home,
            hold_load: AtomicBool::new(false),
            hold_commit: AtomicBool::new(false),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        };
        (Arc::new(gated), Gate { entered, release })
    }

    fn hold(&self, name: &str, what: &'static str, flag: &AtomicBool) {
        if name != self.home || !flag.load(Ordering::SeqCst) {
            return;
        }
        let thread = std::thread::current().name().unwrap_or("").to_string();
        let _ = self.entered.lock().unwrap().send((what, thread));
        let _ = self.release.lock().unwrap().recv();
    }
}

impl HomeBackend for Gated {
    fn list(&self) -> Result<Vec<HomeInfo>, HomeStoreError> {
        self.inner.list()
    }
    fn load(&self, name: &str) -> Result<Option<StoredHome>, HomeStoreError> {
        self.hold(name, "load", &self.hold_load);
        self.inner.load(name)
    }
    fn commit(&self, name: &str, changes: ChangeSet, bytes: u64) -> Result<(), HomeStoreError> {
        self.hold(name, "commit", &self.hold_commit);
        self.inner.commit(name, changes, bytes)
    }
    fn drop_home(&self, name: &str) -> Result<bool, HomeStoreError> {
        self.inner.drop_home(name)
    }
}

/// A data directory whose home `slow` holds `n = 42`.
fn stored(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let p = pool(&dir);
    let s = p.session_with_home("slow").unwrap();
    s.compute("_home.n = 42").unwrap();
    dir
}

type Answer = mpsc::Receiver<Result<luapool_supervisor::ComputeOutput, ComputeError>>;

/// Starts `code` on `s` and returns where its answer will arrive.
fn start(s: &luapool_supervisor::Session, code: &str, cancel: Option<CancelToken>) -> Answer {
    let (tx, rx) = mpsc::channel();
    let opts = ComputeOptions {
        cancel,
        ..ComputeOptions::default()
    };
    s.compute_async(code, opts, Box::new(move |r| drop(tx.send(r))));
    rx
}

fn is_pool_thread(name: &str) -> bool {
    name.starts_with("luapool-slot-")
}

#[test]
fn a_home_is_read_on_a_pool_thread_while_other_computes_go_on() {
    let dir = stored("slow-load");
    let (backend, gate) = Gated::new(&dir, "slow");
    backend.hold_load.store(true, Ordering::SeqCst);
    let p = Pool::builder()
        .workers(2)
        .home_backend(backend.clone())
        .build()
        .unwrap();
    let slow = p.session_with_home("slow").unwrap();
    let answer = start(&slow, "return _home.n", None);
    let thread = gate.entered("load");
    assert!(is_pool_thread(&thread), "read on {thread:?}");
    // The read is held: another home's computes go on meanwhile.
    let other = p.session_with_home("fast").unwrap();
    assert_eq!(int(&other, "_home.x = 7 return _home.x"), 7);
    assert!(
        answer.try_recv().is_err(),
        "answered before its home was read"
    );
    gate.release();
    let out = answer.recv().unwrap().unwrap();
    assert_eq!(out.values, [HostValue::Int(42)]);
}

#[test]
fn a_compute_is_answered_only_once_its_home_writes_are_durable() {
    let dir = stored("slow-commit");
    {
        let (backend, gate) = Gated::new(&dir, "slow");
        let p = Pool::builder()
            .workers(1)
            .home_backend(backend.clone())
            .build()
            .unwrap();
        let s = p.session_with_home("slow").unwrap();
        assert_eq!(int(&s, "return _home.n"), 42);
        backend.hold_commit.store(true, Ordering::SeqCst);
        let answer = start(&s, "_home.n = 43 return 1", None);
        let thread = gate.entered("commit");
        assert!(is_pool_thread(&thread), "committed on {thread:?}");
        assert!(answer.try_recv().is_err(), "answered before the commit");
        gate.release();
        assert_eq!(answer.recv().unwrap().unwrap().values, [HostValue::Int(1)]);
    }
    let p = pool(&dir);
    let s = p.session_with_home("slow").unwrap();
    assert_eq!(int(&s, "return _home.n"), 43);
}

#[test]
fn a_compute_cancelled_while_its_home_is_read_is_cancelled_and_changes_nothing() {
    let dir = stored("cancel-load");
    let (backend, gate) = Gated::new(&dir, "slow");
    backend.hold_load.store(true, Ordering::SeqCst);
    let p = Pool::builder()
        .workers(1)
        .home_backend(backend.clone())
        .build()
        .unwrap();
    let s = p.session_with_home("slow").unwrap();
    let token = CancelToken::new();
    let answer = start(&s, "_home.n = 99", Some(token.clone()));
    gate.entered("load");
    token.cancel();
    gate.release();
    assert_eq!(answer.recv().unwrap(), Err(ComputeError::Cancelled));
    backend.hold_load.store(false, Ordering::SeqCst);
    assert_eq!(int(&s, "return _home.n"), 42);
}

#[test]
fn the_daemon_answers_other_clients_while_a_home_is_read() {
    let dir = stored("daemon-load");
    let (backend, gate) = Gated::new(&dir, "slow");
    backend.hold_load.store(true, Ordering::SeqCst);
    let sockets = crate::common::TempDir::new("slow-daemon");
    let socket = sockets.path().join("d.sock");
    let daemon = Daemon::builder(&socket)
        .handle_signals(false)
        .bind()
        .unwrap();
    let stopper = daemon.stopper();
    let p = Pool::builder()
        .workers(2)
        .home_backend(backend.clone())
        .build()
        .unwrap();
    let served = std::thread::spawn(move || daemon.run(p));
    let slow_client = Client::connect(&socket).unwrap();
    let waiting = std::thread::spawn(move || {
        let s = slow_client.session_with_home("slow").unwrap();
        s.compute("return _home.n").unwrap().values
    });
    let thread = gate.entered("load");
    assert!(is_pool_thread(&thread), "read on {thread:?}");
    // While it is held, the daemon serves others.
    let other = Client::connect(&socket).unwrap();
    assert_eq!(other.stats().unwrap().sessions, 0);
    let s = other.session_with_home("fast").unwrap();
    let out = s.compute("_home.y = 5 return _home.y").unwrap();
    assert_eq!(out.values, [HostValue::Int(5)]);
    assert!(!waiting.is_finished(), "answered before its home was read");
    gate.release();
    assert_eq!(waiting.join().unwrap(), [HostValue::Int(42)]);
    stopper.stop();
    served.join().unwrap().unwrap();
}

#[test]
fn home_methods_read_the_disk_on_a_call_thread_within_their_bound() {
    let dir = stored("daemon-export");
    let (backend, gate) = Gated::new(&dir, "slow");
    backend.hold_load.store(true, Ordering::SeqCst);
    let sockets = crate::common::TempDir::new("export-daemon");
    let socket = sockets.path().join("d.sock");
    // One call thread, and one home call waiting per connection.
    let limits = DaemonLimits {
        call_threads: 1,
        queued_calls: 1,
        ..DaemonLimits::default()
    };
    let daemon = Daemon::builder(&socket)
        .limits(limits)
        .handle_signals(false)
        .bind()
        .unwrap();
    let stopper = daemon.stopper();
    let p = Pool::builder()
        .workers(1)
        .home_backend(backend.clone())
        .build()
        .unwrap();
    let served = std::thread::spawn(move || daemon.run(p));
    let mut raw = Raw::new(UnixStream::connect(&socket).unwrap());
    raw.request(1, "home.export", vec!["slow".into()]);
    let thread = gate.entered("load");
    assert!(thread.starts_with("luapool-calls-"), "read on {thread:?}");
    // The call thread is held: one more home call waits, the next is Busy.
    raw.request(2, "home.export", vec!["other".into()]);
    let busy = raw.call(3, "home.drop", vec!["other".into()]);
    assert_eq!(busy, RawAnswer::Err("Busy".into()));
    // Meanwhile the daemon serves computes.
    let other = Client::connect(&socket).unwrap();
    let s = other.session().unwrap();
    assert_eq!(s.compute("return 5").unwrap().values, [HostValue::Int(5)]);
    gate.release();
    let exported = rmpv::Value::Map(vec![("n".into(), 42.into())]);
    assert_eq!(raw.answer(1), RawAnswer::Ok(exported));
    assert_eq!(raw.answer(2), RawAnswer::Err("HomeNotFound".into()));
    stopper.stop();
    served.join().unwrap().unwrap();
}
