//! The pool: N worker processes, one serving thread each, a bounded job
//! queue, restarts of dead workers with a crash-loop guard, and the homes.
//!
//! A worker is replaced when it dies, breaks the protocol, or is killed on
//! purpose (wall-clock limit, cancel). The first two are *crashes*. The
//! crash-loop guard (Erlang's intensity and period) counts the crashes that
//! no compute can be blamed for: a worker that fails to start, or dies or
//! talks out of turn while idle. More than `restart_intensity` of those
//! within `restart_period` and the pool stops respawning and answers
//! `Unavailable`, instead of spinning. A crash during a compute costs that
//! compute (`WorkerCrashed`) and is replaced on demand, but is not counted:
//! otherwise a client with a script that crashes its worker (or runs into
//! its limits) could take the whole pool down by repeating it.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use luapool_protocol::api::{Latency, WorkerState};
use luapool_store::{Store, StoreStats};

use crate::compute::{serve, ComputeOutput, Fate, Job, Reply, Settled, Transaction};
use crate::config::Config;
use crate::config::HomeStorage;
use crate::error::{ComputeError, HomeError, PoolError};
use crate::homes::{HomeInfo, Homes};
use crate::metrics::{PoolMetrics, Slot};
use crate::scripts::{ScriptLimits, Scripts};
use crate::worker_proc::{find_worker, WorkerProc};
use luapool_protocol::api::HostValue;

/// How often an idle serving thread checks that its worker is alive.
const HEALTH_EVERY: Duration = Duration::from_millis(100);
/// How long a worker gets to exit cleanly at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Attempts to start a worker for one job before it fails with `Unavailable`.
const SPAWN_ATTEMPTS: usize = 3;

/// A queued job's state, shared by its cancel hook and the slot that takes
/// it: exactly one of them moves it out of `QUEUED`, so a job cancelled
/// while queued is answered once (by the hook) and never run.
const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

/// Who answers a queued job.
struct Ticket {
    state: AtomicU8,
    /// The pool's count of jobs waiting for a worker: a job leaves it when
    /// it is taken or cancelled, so a cancelled job frees its place at once.
    waiting: Arc<AtomicUsize>,
    /// The job's transaction and reply, taken by whoever answers it.
    ends: Mutex<Option<(Box<dyn Transaction>, Reply)>>,
    /// The cancel hook, removed once the job is taken (a token may serve
    /// many computes).
    hook: Mutex<Option<u64>>,
}

impl Ticket {
    /// Moves the job out of `QUEUED` to `to`; false if someone else did.
    fn claim(&self, to: u8) -> bool {
        // SYNC POINT: AcqRel; pairs with the other claim (the slot's or the
        // cancel hook's): exactly one side leaves QUEUED.
        let left = self
            .state
            .compare_exchange(QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if left {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        left
    }
    /// Answers a job that never began (the first time only): its
    /// transaction is dropped (releasing what it holds), then the reply is
    /// called, outside the lock.
    fn answer(&self, result: Result<ComputeOutput, ComputeError>) {
        let ends = self.ends.lock().take();
        if let Some((txn, reply)) = ends {
            drop(txn);
            reply(result);
        }
    }
}

type Queued = (Job, Arc<Ticket>);

thread_local! {
    /// On a serving thread: its pool's address, and the job kept for it
    /// ([`keep_here`]).
    static KEPT: RefCell<(usize, Option<Queued>)> = const { RefCell::new((0, None)) };
}

/// Keeps `job` for this thread if it serves this pool and keeps none yet:
/// it runs the job as soon as the compute it is finishing has replied. That
/// reply starts its session's next compute, and releasing its home's turn
/// grants a compute that waited for it: either runs next on this thread
/// instead of waking another, so a pipelined batch on one session costs one
/// wake-up, not one per compute. Gives the job back otherwise.
///
/// A caller that then blocks on the job's result ([`not_kept`]) would wait
/// for itself: its jobs are not kept. Nor is a job submitted while others
/// wait for a worker ([`Pool::enqueue`]): it joins the queue behind them.
fn keep_here(shared: &Arc<Shared>, job: Queued) -> Option<Queued> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.0 == Arc::as_ptr(shared) as usize && kept.1.is_none() {
            kept.1 = Some(job);
            None
        } else {
            Some(job)
        }
    })
}

/// Runs `f`, which submits a job and waits for it, so that the job is not
/// kept for this thread ([`keep_here`]) if it is a serving thread.
pub(crate) fn not_kept<R>(f: impl FnOnce() -> R) -> R {
    let pool = KEPT.with(|kept| std::mem::take(&mut kept.borrow_mut().0));
    let r = f();
    KEPT.with(|kept| kept.borrow_mut().0 = pool);
    r
}

/// Counters for monitoring and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers configured.
    pub workers: usize,
    /// Workers running now.
    pub alive: usize,
    /// Workers replaced since start (after a crash, a kill on purpose, or a
    /// protocol violation).
    pub restarts: u64,
    /// Crashes since start: workers that died by themselves, broke the
    /// protocol, or failed to start. Those outside a compute count towards
    /// the crash-loop guard.
    pub crashes: u64,
    /// Computes finished (any result).
    pub computes: u64,
    /// Computes waiting for a worker.
    pub queued: usize,
    /// True once the crash-loop guard stopped respawning.
    pub crash_loop: bool,
    /// Named homes in memory now.
    pub homes_loaded: usize,
    /// Bytes of every home in memory (the `homes_bytes` limit counts these).
    pub homes_bytes: u64,
    /// The table store.
    pub store: StoreStats,
    /// How long computes waited, from their arrival until a worker started
    /// them (computes that never ran are not counted).
    pub wait: Latency,
    /// How long computes ran on a worker.
    pub run: Latency,
    /// Failed computes by error kind (`LuaError`, `Timeout`, ...; every
    /// kind, zeros included).
    pub errors: BTreeMap<String, u64>,
    /// What each worker does now, one entry per worker.
    pub worker_states: Vec<WorkerState>,
}

/// State shared by the pool and its serving threads.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<Store>,
    worker_path: PathBuf,
    alive: AtomicUsize,
    restarts: AtomicU64,
    crashes: AtomicU64,
    computes: AtomicU64,
    next_compute: AtomicU64,
    crash_loop: AtomicBool,
    /// When the crashes within the last `restart_period` happened.
    recent_crashes: Mutex<VecDeque<Instant>>,
    /// Process ids of the running workers (for [`Pool::worker_pids`]).
    pids: Mutex<Vec<u32>>,
    /// Wait and run times, errors, workers' states.
    pub(crate) metrics: PoolMetrics,
}

/// A pool of worker processes and the store they serve. Create with
/// [`Pool::builder`]; open sessions with [`Pool::session`].
pub struct Pool {
    pub(crate) shared: Arc<Shared>,
    jobs: Mutex<Option<Sender<Queued>>>,
    /// Jobs waiting for a worker (the queue's bound counts these).
    waiting: Arc<AtomicUsize>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) homes: Homes,
    pub(crate) scripts: Scripts,
}

impl Pool {
    /// Starts the serving threads; each starts its worker, so that every
    /// worker's parent thread lives as long as the worker does (a worker asks
    /// for SIGKILL when the *thread* that spawned it exits: spawned from the
    /// caller's thread, it would die with that thread).
    pub(crate) fn start(config: Config) -> Result<Arc<Pool>, PoolError> {
        let worker_path = find_worker(config.worker_path.as_deref())?;
        let store = Arc::new(Store::new());
        // The data directory first: a bad one fails before any worker starts.
        let backend: Option<Arc<dyn luapool_homes::HomeBackend>> = match &config.homes {
            HomeStorage::Memory => None,
            HomeStorage::Dir(dir) => Some(Arc::new(
                luapool_homes::SqliteHomes::open(dir).map_err(|e| PoolError::Homes(e.into()))?,
            )),
            HomeStorage::Postgres(url) => {
                // A pool thread may use two at once: one holding a home, one
                // reading it.
                let connections = match config.home_store_connections {
                    0 => 2 * config.workers + 4,
                    n => n,
                };
                Some(Arc::new(
                    luapool_homes::PgHomes::open(url, connections)
                        .map_err(|e| PoolError::Homes(e.into()))?,
                ))
            }
            HomeStorage::Backend(b) => Some(b.clone()),
        };
        let homes = Homes::new(store.clone(), backend, config.home_limits())?;
        let scripts = Scripts::new(ScriptLimits {
            max_scripts: config.max_scripts,
            script_bytes: config.script_bytes,
        });
        let n = config.workers;
        // Unbounded: the bound is `waiting`, which a cancelled job leaves at
        // once (the channel keeps it until a slot skips it).
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            store,
            worker_path,
            alive: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            computes: AtomicU64::new(0),
            next_compute: AtomicU64::new(1),
            crash_loop: AtomicBool::new(false),
            recent_crashes: Mutex::new(VecDeque::new()),
            pids: Mutex::new(Vec::new()),
            metrics: PoolMetrics::new(n),
            config,
        });
        let (started_tx, started) = crossbeam_channel::bounded(n);
        let threads = (0..n)
            .map(|i| {
                let (shared, rx, started) = (shared.clone(), rx.clone(), started_tx.clone());
                std::thread::Builder::new()
                    .name(format!("luapool-slot-{i}"))
                    .stack_size(8 << 20)
                    .spawn(move || {
                        let config = &shared.config;
                        match WorkerProc::spawn(&shared.worker_path, config.worker_address_space) {
                            Ok(w) => {
                                shared.alive.fetch_add(1, Ordering::Relaxed);
                                shared.pids.lock().push(w.pid());
                                let _ = started.send(Ok(()));
                                slot(shared, rx, Some(w), i);
                            }
                            Err(e) => drop(started.send(Err(e))),
                        }
                    })
                    .expect("spawn a serving thread")
            })
            .collect();
        let pool = Arc::new(Pool {
            shared,
            jobs: Mutex::new(Some(tx)),
            waiting: Arc::new(AtomicUsize::new(0)),
            threads: Mutex::new(threads),
            homes,
            scripts,
        });
        for _ in 0..n {
            let result = started
                .recv()
                .unwrap_or_else(|_| Err(PoolError::Spawn("a serving thread died".into())));
            if let Err(e) = result {
                pool.shutdown();
                return Err(e);
            }
        }
        Ok(pool)
    }

    /// The table store (for inspection).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Every named home (on disk and in memory), by name.
    pub fn list_homes(&self) -> Result<Vec<HomeInfo>, HomeError> {
        self.homes.list()
    }

    /// Deletes the named home, from disk too; `false` if there was none.
    /// One that a session holds is [`HomeError::InUse`].
    pub fn drop_home(&self, name: &str) -> Result<bool, HomeError> {
        self.homes.drop_home(name)
    }

    /// The named home as one value (its root as a map): a backup.
    pub fn export_home(&self, name: &str) -> Result<HostValue, HomeError> {
        self.homes.export(name)
    }

    /// [`export_home`](Self::export_home) as the bytes of one MessagePack
    /// value (what the daemon sends), written straight from the store.
    pub fn export_home_msgpack(&self, name: &str) -> Result<Vec<u8>, HomeError> {
        self.homes.export_msgpack(name)
    }

    /// Replaces the named home (created if new) with `value`, a map that
    /// becomes its root; durable on return. One that a session holds is
    /// [`HomeError::InUse`].
    pub fn import_home(&self, name: &str, value: &HostValue) -> Result<(), HomeError> {
        self.homes.import(name, value)
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        let crash_loop = s.crash_loop.load(Ordering::Relaxed);
        PoolStats {
            workers: s.config.workers,
            alive: s.alive.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            crashes: s.crashes.load(Ordering::Relaxed),
            computes: s.computes.load(Ordering::Relaxed),
            queued: self.waiting.load(Ordering::Relaxed),
            crash_loop,
            homes_loaded: self.homes.loaded(),
            homes_bytes: self.homes.bytes(),
            store: s.store.stats(),
            wait: s.metrics.times.wait.latency(),
            run: s.metrics.times.run.latency(),
            errors: s.metrics.errors(),
            worker_states: s.metrics.worker_states(crash_loop),
        }
    }

    /// Process ids of the workers running now (for monitoring and tests,
    /// e.g. reading a worker's memory from `/proc`).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.pids.lock().clone()
    }

    /// Queues `job` without waiting. Its reply is called exactly once:
    /// here with `Busy` (queue full) or `Unavailable`; at once, on the
    /// cancelling thread, with `Cancelled` if its token is cancelled while it
    /// waits for a worker (it then never runs and its transaction never
    /// begins); else on the serving thread, which runs the transaction's
    /// `begin` before the worker starts and its `end` after, with the
    /// compute's result.
    pub(crate) fn submit(&self, mut job: Job) {
        let reply = std::mem::replace(&mut job.reply, Box::new(drop));
        let txn = std::mem::replace(&mut job.txn, Box::new(NoTransaction));
        let ticket = Arc::new(Ticket {
            state: AtomicU8::new(QUEUED),
            waiting: self.waiting.clone(),
            ends: Mutex::new(Some((txn, reply))),
            hook: Mutex::new(None),
        });
        let cancel = job.cancel.clone();
        if let Err(e) = self.enqueue((job, ticket.clone())) {
            ticket.answer(Err(e));
            return;
        }
        let queued = ticket.clone();
        let hook = cancel.on_cancel(Box::new(move || {
            if queued.claim(ABANDONED) {
                queued.answer(Err(ComputeError::Cancelled));
            }
        }));
        *ticket.hook.lock() = hook;
    }

    /// Puts a job on the queue; `Busy` if the queue is full.
    fn enqueue(&self, job: Queued) -> Result<(), ComputeError> {
        if self.shared.crash_loop.load(Ordering::Relaxed) {
            return Err(crash_loop_error());
        }
        let jobs = self.jobs.lock();
        let Some(tx) = jobs.as_ref() else {
            return Err(ComputeError::Unavailable {
                message: "the pool is shutting down".into(),
            });
        };
        let cap = self.shared.config.queue;
        let room = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < cap).then_some(w + 1)
            });
        let Ok(waiting_before) = room else {
            return Err(ComputeError::Busy);
        };
        // Kept only when no other job waits: a tenant with a deep pipeline
        // must not keep a serving thread while others' jobs queue (FIFO
        // across sessions is what keeps one tenant from starving another).
        let job = if waiting_before == 0 {
            match keep_here(&self.shared, job) {
                None => return Ok(()),
                Some(job) => job,
            }
        } else {
            job
        };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(ComputeError::Unavailable {
                    message: "the pool stopped".into(),
                })
            }
        }
    }

    /// Stops accepting computes, lets queued and running ones finish, and
    /// stops the workers. Idempotent; also runs on drop.
    pub fn shutdown(&self) {
        self.jobs.lock().take();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a begun job on this slot's worker (a new one if it is gone).
fn run(
    shared: &Shared,
    worker: &mut Option<WorkerProc>,
    job: &mut Job,
    me: usize,
) -> Result<ComputeOutput, ComputeError> {
    let w = shared.ready_worker(worker)?;
    job.start.compute = shared.next_compute.fetch_add(1, Ordering::Relaxed);
    let began = Instant::now();
    let metrics = &shared.metrics;
    metrics.slot(me, Slot::Running(began));
    let served = serve(w, &shared.store, job);
    metrics.ran(job.arrived, began, job.times.as_deref());
    match served.fate {
        Fate::Kept => {}
        Fate::Killed => shared.retire(worker, End::Killed),
        Fate::Crashed => shared.retire(worker, End::CrashedInCompute),
    }
    metrics.slot(me, Slot::Waiting(worker.is_some()));
    shared.computes.fetch_add(1, Ordering::Relaxed);
    served.result
}

/// The transaction left in a job whose own was moved to its ticket.
struct NoTransaction;

impl Transaction for NoTransaction {
    fn begin(&mut self) -> Result<(), ComputeError> {
        Ok(())
    }
    fn end(&mut self, result: Result<ComputeOutput, ComputeError>) -> Settled {
        Settled::Reply(result)
    }
}

fn crash_loop_error() -> ComputeError {
    ComputeError::Unavailable {
        message: "workers crashed repeatedly; the pool stopped respawning them".into(),
    }
}

/// How a worker left the pool.
#[derive(Clone, Copy)]
enum End {
    /// Killed on purpose (timeout, cancel).
    Killed,
    /// Died or broke the protocol during a compute: the compute's doing.
    CrashedInCompute,
    /// Died or talked out of turn with no compute running.
    CrashedIdle,
}

impl Shared {
    /// Records a crash. One that no compute caused (`guard`) may trip the
    /// crash-loop guard: more than `restart_intensity` within `restart_period`.
    fn note_crash(&self, guard: bool) {
        self.crashes.fetch_add(1, Ordering::Relaxed);
        if !guard {
            return;
        }
        let mut recent = self.recent_crashes.lock();
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.restart_period)
        {
            recent.pop_front();
        }
        recent.push_back(now);
        if recent.len() > self.config.restart_intensity
            && !self.crash_loop.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "more than {} worker crashes within {:?}; no longer respawning workers",
                self.config.restart_intensity,
                self.config.restart_period
            );
        }
    }

    /// Starts a replacement worker, unless the crash-loop guard has tripped.
    /// A worker that fails to start counts as a crash.
    fn respawn(&self) -> Result<WorkerProc, ComputeError> {
        if self.crash_loop.load(Ordering::Relaxed) {
            return Err(crash_loop_error());
        }
        match WorkerProc::spawn(&self.worker_path, self.config.worker_address_space) {
            Ok(w) => {
                self.restarts.fetch_add(1, Ordering::Relaxed);
                self.alive.fetch_add(1, Ordering::Relaxed);
                self.pids.lock().push(w.pid());
                Ok(w)
            }
            Err(e) => {
                tracing::warn!("{e}");
                self.note_crash(true);
                Err(ComputeError::Unavailable {
                    message: e.to_string(),
                })
            }
        }
    }

    /// Forgets a worker that is gone (or is being dropped) and records how.
    fn retire(&self, worker: &mut Option<WorkerProc>, end: End) {
        if let Some(w) = worker.take() {
            self.alive.fetch_sub(1, Ordering::Relaxed);
            self.pids.lock().retain(|&p| p != w.pid());
            match end {
                End::Killed => {}
                End::CrashedInCompute => self.note_crash(false),
                End::CrashedIdle => self.note_crash(true),
            }
        }
    }

    /// Checks an idle worker: it must still run and must not have sent
    /// anything since its last compute. A bad one is killed and retired.
    fn check_idle(&self, worker: &mut Option<WorkerProc>) {
        let Some(w) = worker.as_mut() else { return };
        let problem = if !w.is_running() {
            Some(format!("{} while idle", w.reap()))
        } else {
            w.unsolicited()
                .map(|why| format!("sent {why}; killed ({})", w.kill()))
        };
        if let Some(why) = problem {
            tracing::warn!("worker {} {why}; replacing it", w.pid());
            self.retire(worker, End::CrashedIdle);
        }
    }

    /// A healthy worker for the next job: the current one if it passes
    /// [`check_idle`](Self::check_idle), else a new one.
    fn ready_worker<'w>(
        &self,
        worker: &'w mut Option<WorkerProc>,
    ) -> Result<&'w mut WorkerProc, ComputeError> {
        let mut last = None;
        for _ in 0..SPAWN_ATTEMPTS {
            self.check_idle(worker);
            if worker.is_some() {
                break;
            }
            match self.respawn() {
                Ok(w) => *worker = Some(w),
                Err(e) => {
                    let stop = self.crash_loop.load(Ordering::Relaxed);
                    last = Some(e);
                    if stop {
                        break;
                    }
                }
            }
        }
        match worker.as_mut() {
            Some(w) => Ok(w),
            None => Err(last.unwrap_or_else(crash_loop_error)),
        }
    }
}

/// One serving thread (number `me`): owns one worker, runs jobs on it,
/// replaces it when it dies.
fn slot(shared: Arc<Shared>, jobs: Receiver<Queued>, mut worker: Option<WorkerProc>, me: usize) {
    let metrics = &shared.metrics;
    KEPT.with(|kept| kept.borrow_mut().0 = Arc::as_ptr(&shared) as usize);
    loop {
        if worker.is_none() && !shared.crash_loop.load(Ordering::Relaxed) {
            metrics.slot(me, Slot::Starting);
            match shared.respawn() {
                Ok(w) => worker = Some(w),
                Err(_) => std::thread::sleep(HEALTH_EVERY),
            }
        }
        metrics.slot(me, Slot::Waiting(worker.is_some()));
        let kept = KEPT.with(|kept| kept.borrow_mut().1.take());
        let (mut job, ticket) = match kept.map_or_else(|| jobs.recv_timeout(HEALTH_EVERY), Ok) {
            Ok(queued) => queued,
            Err(RecvTimeoutError::Timeout) => {
                shared.check_idle(&mut worker);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if !ticket.claim(TAKEN) {
            continue; // cancelled while queued; its hook answered
        }
        job.cancel.remove_hook(ticket.hook.lock().take());
        // Taken: only this thread answers it now.
        let Some((mut txn, reply)) = ticket.ends.lock().take() else {
            continue;
        };
        if job.cancel.is_cancelled() {
            drop(txn);
            reply(Err(ComputeError::Cancelled));
            continue;
        }
        // More than once when the transaction says so (a shared home
        // changed under the compute: it was rolled back, and runs again).
        let result = loop {
            if let Err(e) = txn.begin() {
                break Err(e);
            }
            let result = if job.cancel.is_cancelled() {
                Err(ComputeError::Cancelled)
            } else {
                run(&shared, &mut worker, &mut job, me)
            };
            match txn.end(result) {
                Settled::Reply(result) => break result,
                Settled::Again => continue,
            }
        };
        // The transaction holds the compute's turns: released before the
        // reply, so whoever the reply wakes finds them free.
        drop(txn);
        reply(result);
    }
    if let Some(w) = worker.take() {
        shared.alive.fetch_sub(1, Ordering::Relaxed);
        shared.pids.lock().retain(|&p| p != w.pid());
        w.shutdown(SHUTDOWN_GRACE);
    }
}
