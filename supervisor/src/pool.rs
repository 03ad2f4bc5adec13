//! The pool: N worker processes, one serving thread each, a bounded job
//! queue, restarts of dead workers with a crash-loop guard, and the homes.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

use crate::config::{Config, PoolBuilder};
use crate::error::{ComputeError, PoolError};
use crate::serve::{serve, Job};
use crate::session::{Home, Session};
use crate::store::{Store, StoreStats};
use crate::worker_proc::{find_worker, WorkerProc};

/// How often an idle serving thread checks that its worker is alive.
const HEALTH_EVERY: Duration = Duration::from_millis(100);
/// How long a worker gets to exit cleanly at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Counters for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers configured.
    pub workers: usize,
    /// Workers running now.
    pub alive: usize,
    /// Workers replaced since start.
    pub restarts: u64,
    /// Computes finished (any result).
    pub computes: u64,
    /// Computes waiting for a worker.
    pub queued: usize,
    /// True once the crash-loop guard stopped respawning.
    pub crash_loop: bool,
    /// The table store.
    pub store: StoreStats,
}

/// State shared by the pool and its serving threads.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<Store>,
    worker_path: PathBuf,
    alive: AtomicUsize,
    restarts: AtomicU64,
    computes: AtomicU64,
    next_compute: AtomicU64,
    crash_loop: AtomicBool,
    recent_restarts: Mutex<VecDeque<Instant>>,
    /// Process ids of the running workers (for [`Pool::worker_pids`]).
    pids: Mutex<Vec<u32>>,
}

/// A pool of worker processes and the store they serve. Create with
/// [`Pool::builder`]; open sessions with [`Pool::session`].
pub struct Pool {
    pub(crate) shared: Arc<Shared>,
    jobs: Mutex<Option<Sender<Job>>>,
    queue: Receiver<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    homes: Mutex<HashMap<String, Arc<Home>>>,
}

impl Pool {
    /// A builder with defaults: one worker per CPU, 30 s per compute, 256 MiB
    /// of Lua heap per worker, 1 GiB of store per session.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    pub(crate) fn start(config: Config) -> Result<Arc<Pool>, PoolError> {
        let worker_path = find_worker(config.worker_path.as_deref())?;
        let mut workers = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            workers.push(WorkerProc::spawn(&worker_path, config.worker_address_space)?);
        }
        let (tx, rx) = crossbeam_channel::bounded(config.queue);
        let shared = Arc::new(Shared {
            store: Arc::new(Store::new()),
            worker_path,
            alive: AtomicUsize::new(workers.len()),
            restarts: AtomicU64::new(0),
            computes: AtomicU64::new(0),
            next_compute: AtomicU64::new(1),
            crash_loop: AtomicBool::new(false),
            recent_restarts: Mutex::new(VecDeque::new()),
            pids: Mutex::new(workers.iter().map(WorkerProc::pid).collect()),
            config,
        });
        let threads = workers
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let (shared, rx) = (shared.clone(), rx.clone());
                std::thread::Builder::new()
                    .name(format!("luapool-slot-{i}"))
                    .stack_size(8 << 20)
                    .spawn(move || slot(shared, rx, Some(w)))
                    .expect("spawn a serving thread")
            })
            .collect();
        Ok(Arc::new(Pool {
            shared,
            jobs: Mutex::new(Some(tx)),
            queue: rx,
            threads: Mutex::new(threads),
            homes: Mutex::new(HashMap::new()),
        }))
    }

    /// A new session with its own, private `_home`.
    pub fn session(self: &Arc<Self>) -> Session {
        let home = Arc::new(Home::new(self.shared.store.clone(), self.shared.config.home_quota));
        Session::new(self.clone(), home)
    }

    /// A new session bound to the named home: every session naming it shares
    /// one `_home`, which lives as long as the pool.
    pub fn session_with_home(self: &Arc<Self>, name: &str) -> Session {
        let home = self
            .homes
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Home::new(self.shared.store.clone(), self.shared.config.home_quota)))
            .clone();
        Session::new(self.clone(), home)
    }

    /// The table store (for inspection).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            workers: s.config.workers,
            alive: s.alive.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            computes: s.computes.load(Ordering::Relaxed),
            queued: self.queue.len(),
            crash_loop: s.crash_loop.load(Ordering::Relaxed),
            store: s.store.stats(),
        }
    }

    /// Process ids of the workers running now (for monitoring and tests,
    /// e.g. reading a worker's memory from `/proc`).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.pids.lock().clone()
    }

    /// Queues a job; `Busy` if the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<(), ComputeError> {
        if self.shared.crash_loop.load(Ordering::Relaxed) {
            return Err(crash_loop_error());
        }
        let jobs = self.jobs.lock();
        let Some(tx) = jobs.as_ref() else {
            return Err(ComputeError::Unavailable { message: "the pool is shutting down".into() });
        };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(ComputeError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(ComputeError::Unavailable { message: "the pool stopped".into() }),
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

fn crash_loop_error() -> ComputeError {
    ComputeError::Unavailable { message: "workers crashed repeatedly; the pool stopped respawning them".into() }
}

impl Shared {
    /// Starts a replacement worker, unless the crash-loop guard trips.
    fn respawn(&self) -> Option<WorkerProc> {
        if self.crash_loop.load(Ordering::Relaxed) {
            return None;
        }
        {
            let mut recent = self.recent_restarts.lock();
            let now = Instant::now();
            while recent.front().is_some_and(|t| now.duration_since(*t) > self.config.restart_period) {
                recent.pop_front();
            }
            recent.push_back(now);
            if recent.len() > self.config.restart_intensity {
                self.crash_loop.store(true, Ordering::Relaxed);
                eprintln!(
                    "luapool: more than {} worker restarts within {:?}; no longer respawning workers",
                    self.config.restart_intensity, self.config.restart_period
                );
                return None;
            }
        }
        self.restarts.fetch_add(1, Ordering::Relaxed);
        match WorkerProc::spawn(&self.worker_path, self.config.worker_address_space) {
            Ok(w) => {
                self.alive.fetch_add(1, Ordering::Relaxed);
                self.pids.lock().push(w.pid());
                Some(w)
            }
            Err(e) => {
                eprintln!("luapool: {e}");
                None
            }
        }
    }
}

/// One serving thread: owns one worker, runs jobs on it, replaces it when it dies.
fn slot(shared: Arc<Shared>, jobs: Receiver<Job>, mut worker: Option<WorkerProc>) {
    let dead = |worker: &mut Option<WorkerProc>| {
        if let Some(w) = worker.take() {
            shared.alive.fetch_sub(1, Ordering::Relaxed);
            shared.pids.lock().retain(|&p| p != w.pid());
        }
    };
    loop {
        if worker.is_none() {
            worker = shared.respawn();
            if worker.is_none() && !shared.crash_loop.load(Ordering::Relaxed) {
                std::thread::sleep(HEALTH_EVERY);
            }
        }
        let mut job = match jobs.recv_timeout(HEALTH_EVERY) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(w) = worker.as_mut() {
                    if !w.is_running() {
                        eprintln!("luapool: worker {} {} while idle; replacing it", w.pid(), w.reap());
                        dead(&mut worker);
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if job.cancel.is_cancelled() {
            let _ = job.reply.send(Err(ComputeError::Cancelled));
            continue;
        }
        if worker.as_mut().is_some_and(|w| !w.is_running()) {
            if let Some(w) = worker.as_mut() {
                w.reap();
            }
            dead(&mut worker);
            worker = shared.respawn();
        }
        let Some(w) = worker.as_mut() else {
            let _ = job.reply.send(Err(crash_loop_error()));
            continue;
        };
        job.start.compute = shared.next_compute.fetch_add(1, Ordering::Relaxed);
        let served = serve(w, &shared.store, &mut job);
        if !served.worker_ok {
            dead(&mut worker);
        }
        shared.computes.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(served.result);
    }
    if let Some(w) = worker.take() {
        shared.alive.fetch_sub(1, Ordering::Relaxed);
        shared.pids.lock().retain(|&p| p != w.pid());
        w.shutdown(SHUTDOWN_GRACE);
    }
}
