//! What the pool measures for monitoring ([`PoolStats`](crate::PoolStats)):
//! how long computes wait and run ([`ComputeTimes`], two [`Histogram`]s),
//! how many failed of each kind, and what each worker does now.
//!
//! Recording must cost nothing a compute would notice: a histogram is a
//! fixed array of counters (HDR-style logarithmic buckets, eight per power
//! of two), so recording is a leading-zeros count and two relaxed atomic
//! adds, and memory does not grow with the number of computes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use luapool_protocol::api::{ComputeError, Latency, WorkerState};

/// Sub-buckets per power of two: 2^3 = 8, so a bucket spans at most 12.5%
/// of its values.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or past 2^32 µs (about 71 minutes) share the last bucket.
const MAX_BITS: u32 = 32;
/// Buckets: values below `SUB` one each, then `SUB` per power of two.
const BUCKETS: usize = (SUB + (MAX_BITS - SUB_BITS) as u64 * SUB) as usize;

/// A histogram of durations in microseconds, of fixed size (240 buckets,
/// about 2 KiB). Every method takes `&self`: threads record concurrently.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Histogram").field(&self.latency()).finish()
    }
}

/// The bucket of `us` microseconds.
fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let us = us.min((1 << MAX_BITS) - 1);
    let top = 63 - us.leading_zeros(); // >= SUB_BITS
    let shift = top - SUB_BITS;
    // The SUB_BITS bits below the top one pick the sub-bucket.
    let sub = (us >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// The largest value bucket `i` holds.
fn upper_edge(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let sub = (i - SUB) % SUB;
    ((SUB + sub + 1) << shift) - 1
}

impl Histogram {
    /// Counts one duration.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // Relaxed: counters read only for monitoring; no other memory
        // depends on them.
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The count, sum and percentiles recorded so far. Concurrent records
    /// may or may not be in it.
    pub fn latency(&self) -> Latency {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let at = |q: f64| {
            if count == 0 {
                return 0;
            }
            // The smallest value with at least q of the counts at or below it.
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return upper_edge(i);
                }
            }
            upper_edge(BUCKETS - 1)
        };
        Latency {
            count,
            sum_us: self.sum_us.load(Ordering::Relaxed),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
        }
    }
}

/// Wait and run times of computes. The pool keeps one for all its
/// computes; a caller may keep its own (the daemon keeps one per client
/// connection) and pass it with each compute
/// ([`ComputeOptions::times`](crate::ComputeOptions::times)).
#[derive(Debug, Default)]
pub struct ComputeTimes {
    /// From the compute's arrival (the call, or
    /// [`ComputeOptions::arrived`](crate::ComputeOptions::arrived)) until a
    /// worker started it: its session's earlier calls, its home, the queue.
    pub wait: Histogram,
    /// From a worker starting it until its result is settled.
    pub run: Histogram,
}

impl ComputeTimes {
    /// Counts one compute that waited `wait` and ran `run`.
    pub fn record(&self, wait: Duration, run: Duration) {
        self.wait.record(wait);
        self.run.record(run);
    }
}

/// The names of the compute error kinds, as the daemon sends them.
const KINDS: [&str; 13] = [
    "LuaError",
    "Timeout",
    "MemoryLimit",
    "QuotaExceeded",
    "TooLarge",
    "WorkerCrashed",
    "Cancelled",
    "Busy",
    "Unavailable",
    "BadResult",
    "OutputTooLarge",
    "NoScript",
    "Conflict",
];

fn kind_index(e: &ComputeError) -> usize {
    // Exhaustive: a new kind must be named here (and in KINDS).
    match e {
        ComputeError::LuaError { .. } => 0,
        ComputeError::Timeout { .. } => 1,
        ComputeError::MemoryLimit { .. } => 2,
        ComputeError::QuotaExceeded { .. } => 3,
        ComputeError::TooLarge { .. } => 4,
        ComputeError::WorkerCrashed { .. } => 5,
        ComputeError::Cancelled => 6,
        ComputeError::Busy => 7,
        ComputeError::Unavailable { .. } => 8,
        ComputeError::BadResult { .. } => 9,
        ComputeError::OutputTooLarge { .. } => 10,
        ComputeError::NoScript { .. } => 11,
        ComputeError::Conflict { .. } => 12,
    }
}

/// What a worker's serving thread does, in one word that only that thread
/// writes: `STARTING`, `IDLE`, `DOWN`, or `RUNNING + µs since the pool
/// started` when the compute began.
const STARTING: u64 = 0;
const IDLE: u64 = 1;
const DOWN: u64 = 2;
const RUNNING: u64 = 3;

/// The pool's measurements.
pub(crate) struct PoolMetrics {
    epoch: Instant,
    pub times: ComputeTimes,
    errors: [AtomicU64; KINDS.len()],
    slots: Box<[AtomicU64]>,
}

/// What a serving thread is doing, for [`PoolMetrics::slot`].
pub(crate) enum Slot {
    /// Starting a worker.
    Starting,
    /// Holding a healthy worker (`true`) or none (`false`).
    Waiting(bool),
    /// Running a compute since then.
    Running(Instant),
}

impl PoolMetrics {
    pub fn new(workers: usize) -> PoolMetrics {
        PoolMetrics {
            epoch: Instant::now(),
            times: ComputeTimes::default(),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            slots: (0..workers).map(|_| AtomicU64::new(STARTING)).collect(),
        }
    }

    /// Counts a compute's result (errors by kind).
    pub fn settled<T>(&self, result: &Result<T, ComputeError>) {
        if let Err(e) = result {
            self.errors[kind_index(e)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Serving thread `i` is now doing `what`.
    pub fn slot(&self, i: usize, what: Slot) {
        let word = match what {
            Slot::Starting => STARTING,
            Slot::Waiting(true) => IDLE,
            Slot::Waiting(false) => DOWN,
            Slot::Running(t) => {
                RUNNING + u64::try_from(t.duration_since(self.epoch).as_micros()).unwrap_or(0)
            }
        };
        if let Some(s) = self.slots.get(i) {
            // Relaxed: a monitoring snapshot; nothing else is published.
            s.store(word, Ordering::Relaxed);
        }
    }

    /// A compute ran on serving thread `i` from `began` to now, having
    /// arrived at `arrived`: counted here and in the caller's `also`.
    pub fn ran(&self, arrived: Instant, began: Instant, also: Option<&ComputeTimes>) {
        let (wait, run) = (began.saturating_duration_since(arrived), began.elapsed());
        self.times.record(wait, run);
        if let Some(t) = also {
            t.record(wait, run);
        }
    }

    /// Errors by kind name, every kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        KINDS
            .iter()
            .zip(&self.errors)
            .map(|(k, n)| (k.to_string(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// What each worker does now (`crash_loop`: the guard has tripped).
    pub fn worker_states(&self, crash_loop: bool) -> Vec<WorkerState> {
        let now = self.epoch.elapsed();
        self.slots
            .iter()
            .map(|s| match s.load(Ordering::Relaxed) {
                STARTING => WorkerState::Starting,
                IDLE => WorkerState::Idle,
                DOWN if crash_loop => WorkerState::CrashLooped,
                DOWN => WorkerState::Starting,
                since => {
                    let since = Duration::from_micros(since - RUNNING);
                    WorkerState::Running {
                        for_ms: now.saturating_sub(since).as_millis() as u64,
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_within_an_eighth() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, (1 << 32) - 1, 1 << 40, u64::MAX]) {
            let b = bucket(us);
            assert!(b < BUCKETS, "{us} -> {b}");
            assert!(b >= last || us > 100_000, "buckets must not go back");
            last = b;
            let edge = upper_edge(b);
            if us < 1 << MAX_BITS {
                assert!(edge >= us, "{us} above its bucket's edge {edge}");
                assert!(edge - us <= us / 8, "{us}: edge {edge} too far");
                assert_eq!(bucket(edge), b, "the edge is in its bucket");
            } else {
                assert_eq!(b, BUCKETS - 1);
            }
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let h = Histogram::default();
        assert_eq!(h.latency(), Latency::default());
        // 1..=1000 µs, once each.
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let l = h.latency();
        assert_eq!((l.count, l.sum_us), (1000, 500_500));
        for (got, want) in [(l.p50_us, 500), (l.p90_us, 900), (l.p99_us, 990)] {
            assert!(got >= want && got <= want + want / 8, "{got} for {want}");
        }
        let small = Histogram::default();
        for us in [3, 3, 3, 7] {
            small.record(Duration::from_micros(us));
        }
        let l = small.latency();
        assert_eq!(
            (l.p50_us, l.p90_us, l.p99_us),
            (3, 7, 7),
            "exact below 8 µs"
        );
    }

    #[test]
    fn a_running_slot_reports_for_how_long_and_a_dead_one_the_crash_loop() {
        let m = PoolMetrics::new(3);
        // Began after the pool did (times count from the pool's start).
        m.slot(0, Slot::Running(Instant::now()));
        std::thread::sleep(Duration::from_millis(50));
        m.slot(1, Slot::Waiting(true));
        m.slot(2, Slot::Waiting(false));
        let s = m.worker_states(false);
        assert!(matches!(s[0], WorkerState::Running { for_ms } if for_ms >= 50));
        assert_eq!(&s[1..], &[WorkerState::Idle, WorkerState::Starting]);
        assert_eq!(m.worker_states(true)[2], WorkerState::CrashLooped);
    }

    #[test]
    fn errors_are_counted_by_kind_and_every_kind_is_listed() {
        let m = PoolMetrics::new(1);
        m.settled::<()>(&Err(ComputeError::Busy));
        m.settled::<()>(&Err(ComputeError::Busy));
        m.settled(&Ok(()));
        let e = m.errors();
        assert_eq!(e.len(), KINDS.len());
        assert_eq!((e["Busy"], e["LuaError"]), (2, 0));
    }
}
