//! Sessions: the Rust form of the reference's `lua` object. Each session owns
//! an `_io` table (input, output, meta) in its own arena and is bound to one
//! `_home`. Its computes run one at a time, in order; computes that share a
//! home are serialized with respect to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use luapool_protocol::{Key, Start, TableId, Value, WorkerLimits};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

use luapool_protocol::api::{from_host, HostValue};
use luapool_store::{ArenaId, ArenaStats, OutputBudget, Scope, Store};

use crate::atomic::ComputeTxn;
use crate::compute::{CancelToken, ComputeOutput, Job, LogSink, Reply};
use crate::error::{ComputeError, SessionError};
use crate::home::Home;
use crate::home::HomeTurn;
use crate::metrics::ComputeTimes;
use crate::pool::Pool;
use crate::scripts::is_digest;
use crate::turn::{Turn, TurnGuard};

/// Bytes an arena may grow to before a collection, at least.
const MIN_COLLECT_BYTES: u64 = 1 << 20;

impl Pool {
    /// A new session with its own, private `_home`: in memory, gone when
    /// the session is.
    pub fn session(self: &Arc<Self>) -> Session {
        Session::new(self.clone(), self.homes.private())
    }

    /// A new session bound to the named home: every session naming it shares
    /// one `_home`. With a data directory (or a home store) the home is durable (read from
    /// disk on its first compute); without, it lives as long as the pool.
    /// A new name past `max_homes` is [`HomeError::TooManyHomes`](crate::HomeError::TooManyHomes).
    pub fn session_with_home(self: &Arc<Self>, name: &str) -> Result<Session, SessionError> {
        let home = self.homes.open_home(name)?;
        Ok(Session::new(self.clone(), home))
    }
}

/// Per-compute options; the defaults are the pool's.
#[derive(Default)]
pub struct ComputeOptions {
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// CPU-time limit (`Duration::ZERO` = none).
    pub cpu_time: Option<Duration>,
    /// Instruction budget (0 = none).
    pub instructions: Option<u64>,
    /// Memory limit in bytes: what the compute allocates above what its
    /// worker held when it started (0 = none).
    pub memory: Option<u64>,
    /// Cancels this compute when cancelled.
    pub cancel: Option<CancelToken>,
    /// Receives each printed line as it is printed.
    pub on_log: Option<LogSink>,
    /// The chunk name in error messages (default `=compute`).
    pub chunk_name: Option<String>,
    /// When the request for this compute arrived: its wait time
    /// ([`PoolStats::wait`](crate::PoolStats::wait)) counts from here
    /// (default: when `compute` is called).
    pub arrived: Option<Instant>,
    /// Also counts this compute's wait and run times here (the pool counts
    /// them in any case): a caller's own figures, such as the daemon's per
    /// client connection.
    pub times: Option<Arc<ComputeTimes>>,
}

pub use luapool_protocol::api::TableInfo;

/// A session: `_io` plus a `_home`, and computes against them. Dropping it
/// cancels its computes; its tables are freed once the last of them ends.
pub struct Session(Arc<State>);

/// What a session holds; a compute in flight holds it too.
pub struct State {
    pool: Arc<Pool>,
    arena: ArenaId,
    io: TableId,
    home: Arc<Home>,
    /// The session's calls take turns: one at a time, in order.
    turn: Arc<Turn>,
    running: Mutex<Option<CancelToken>>,
    live_bytes: Mutex<u64>,
}

impl std::ops::Deref for Session {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

impl Session {
    pub(crate) fn new(pool: Arc<Pool>, home: Arc<Home>) -> Session {
        let store = &pool.shared.store;
        let arena = store.create_arena(pool.shared.config.session_quota);
        let io = store
            .new_table(arena)
            .expect("a new arena has room for _io");
        store.add_root(io);
        Session(Arc::new(State {
            pool,
            arena,
            io,
            home,
            turn: Turn::new(),
            running: Mutex::new(None),
            live_bytes: Mutex::new(0),
        }))
    }

    /// Sets `_io.input` (read-only in Lua), replacing any previous input.
    /// Like every host call that changes `_io`, it waits for a running
    /// compute of this session to finish: a session's operations are ordered.
    pub fn set_input<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SessionError> {
        self.set_input_msgpack(&to_msgpack(data)?)
    }

    /// [`set_input`](Self::set_input) with the data as the bytes of one
    /// MessagePack value (what rmp-serde writes; what a daemon client sends),
    /// loaded into the store straight from the bytes.
    pub fn set_input_msgpack(&self, data: &[u8]) -> Result<(), SessionError> {
        let _turn = self.turn.lock();
        let v = self.load_msgpack(data, true)?;
        self.store().host_set(self.io, Key::str("input"), v)?;
        self.maybe_collect();
        Ok(())
    }

    /// `_io.output` converted to `T` (`serde_json::Value` works; `Null` if unset).
    pub fn get_output<T: DeserializeOwned>(&self) -> Result<T, SessionError> {
        self.extract(&self.output()?)
    }

    /// `_io.output` as the bytes of one MessagePack value (nil if unset):
    /// what [`get_output`](Self::get_output) reads, converted once.
    pub fn get_output_msgpack(&self) -> Result<Vec<u8>, SessionError> {
        self.extract_msgpack(&self.output()?)
    }

    /// Sets one field of `_io.input`, creating the input table if there is none.
    pub fn set_input_field<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        self.set_input_field_msgpack(key, &to_msgpack(value)?)
    }

    /// [`set_input_field`](Self::set_input_field) with the value as the bytes
    /// of one MessagePack value.
    pub fn set_input_field_msgpack(&self, key: &str, value: &[u8]) -> Result<(), SessionError> {
        let _turn = self.turn.lock();
        let input = match self.store().host_get(self.io, &Key::str("input"))? {
            Value::Table(id) => id,
            _ => {
                let id = match self
                    .store()
                    .load(self.arena, &HostValue::Map(Vec::new()), true)?
                {
                    Value::Table(id) => id,
                    _ => unreachable!("an empty map loads as a table"),
                };
                self.store()
                    .host_set(self.io, Key::str("input"), Value::Table(id))?;
                id
            }
        };
        let v = self.load_msgpack(value, true)?;
        self.store().host_set(input, Key::str(key), v)?;
        Ok(())
    }

    /// One field of `_io.output` converted to `T` (`Null` / `None` if absent).
    pub fn get_output_field<T: DeserializeOwned>(&self, key: &str) -> Result<T, SessionError> {
        self.extract(&self.output_field(key)?)
    }

    /// One field of `_io.output` as the bytes of one MessagePack value (nil
    /// if absent).
    pub fn get_output_field_msgpack(&self, key: &str) -> Result<Vec<u8>, SessionError> {
        self.extract_msgpack(&self.output_field(key)?)
    }

    /// Sets `_io.meta` (writable from Lua).
    pub fn set_metadata<T: Serialize + ?Sized>(&self, meta: &T) -> Result<(), SessionError> {
        self.set_metadata_msgpack(&to_msgpack(meta)?)
    }

    /// [`set_metadata`](Self::set_metadata) with the metadata as the bytes of
    /// one MessagePack value.
    pub fn set_metadata_msgpack(&self, meta: &[u8]) -> Result<(), SessionError> {
        let _turn = self.turn.lock();
        let v = self.load_msgpack(meta, false)?;
        self.store().host_set(self.io, Key::str("meta"), v)?;
        Ok(())
    }

    /// Clears `_io.input`, `_io.output` and `_io.meta` (as the reference's
    /// example states); `_home` is untouched.
    pub fn clear_io(&self) -> Result<(), SessionError> {
        let _turn = self.turn.lock();
        for k in ["input", "output", "meta"] {
            self.store().host_set(self.io, Key::str(k), Value::Nil)?;
        }
        self.collect();
        Ok(())
    }

    /// The id of the session's `_io` table.
    pub fn io_table_id(&self) -> TableId {
        self.io
    }

    /// Ids and sizes of the session's tables.
    pub fn table_info(&self) -> TableInfo {
        let s = self.store().arena_stats(self.arena).unwrap_or_default();
        let h = self
            .store()
            .arena_stats(self.home.arena)
            .unwrap_or_default();
        TableInfo {
            io: self.io,
            home: self.home.root,
            session_tables: s.tables,
            session_bytes: s.bytes,
            session_quota: s.quota,
            home_tables: h.tables,
            home_bytes: h.bytes,
        }
    }

    /// Runs `code` (or the digest of a loaded script: [`Pool::load_script`])
    /// with the pool's default limits.
    pub fn compute(&self, code: &str) -> Result<ComputeOutput, ComputeError> {
        self.compute_with(code, ComputeOptions::default())
    }

    /// Runs `code` with per-compute options. A cancel (through
    /// `opts.cancel` or [`cancel`](Self::cancel)) reaches it while it waits
    /// for the session's earlier calls, for its home, for a worker, and
    /// while it runs.
    pub fn compute_with(
        &self,
        code: &str,
        opts: ComputeOptions,
    ) -> Result<ComputeOutput, ComputeError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        crate::pool::not_kept(|| {
            self.compute_async(
                code,
                opts,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
        });
        rx.recv().unwrap_or(Err(ComputeError::Unavailable {
            message: "the pool stopped".into(),
        }))
    }

    /// Starts `code` and returns at once, holding no thread while the
    /// compute waits for its turn, its home or a worker: `done` gets the
    /// result exactly once, on the thread that settles it (a pool thread,
    /// a cancelling thread, or this one for an immediate `Busy` or
    /// `NoScript`).
    ///
    /// `code` may be the digest of a loaded script ([`Pool::load_script`])
    /// instead: 40 hex digits, which no Lua chunk is.
    pub fn compute_async(&self, code: &str, mut opts: ComputeOptions, done: Reply) {
        opts.arrived.get_or_insert_with(Instant::now);
        // The pool's shared state, not the pool: holding no handle that
        // could stop it from the thread that settles the compute.
        let shared = self.pool.shared.clone();
        let done: Reply = Box::new(move |r| {
            shared.metrics.settled(&r);
            drop(shared);
            done(r)
        });
        let script;
        let code = if is_digest(code) {
            match self.pool.scripts.get(code) {
                Ok(s) => {
                    script = s;
                    &**script.code()
                }
                Err(e) => return done(Err(e)),
            }
        } else {
            code
        };
        let cancel = opts.cancel.clone().unwrap_or_default();
        *self.running.lock() = Some(cancel.clone());
        let state = self.0.clone();
        let code = code.as_bytes().to_vec();
        let token = cancel.clone();
        self.turn.acquire(
            Some(&cancel),
            Box::new(move |session_turn| {
                let session_turn = match session_turn {
                    Ok(g) => g,
                    Err(e) => return state.finish_waiting(&token, done, Err(e)),
                };
                let home = state.home.clone();
                home.acquire(
                    Some(&token.clone()),
                    Box::new(move |home_turn| match home_turn {
                        Ok(home_turn) => {
                            State::start(state, code, opts, token, session_turn, home_turn, done)
                        }
                        Err(e) => {
                            drop(session_turn);
                            state.finish_waiting(&token, done, Err(e))
                        }
                    }),
                );
            }),
        );
    }

    /// Cancels the compute this session is running or waiting to run, if any.
    pub fn cancel(&self) {
        let running = self.running.lock().clone();
        if let Some(c) = running {
            c.cancel();
        }
    }
}

impl State {
    pub(crate) fn store(&self) -> &Store {
        &self.pool.shared.store
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The name of the session's home, if it is a named durable one.
    pub(crate) fn home_name(&self) -> Option<&str> {
        self.home.name()
    }

    /// Sends the compute with both turns held. Its transaction holds them
    /// ([`ComputeTxn`]): the pool thread that takes the compute loads the
    /// home and begins, then commits (durably) or rolls back, and releases
    /// the turns before `done` is called.
    fn start(
        state: Arc<State>,
        code: Vec<u8>,
        opts: ComputeOptions,
        cancel: CancelToken,
        session_turn: TurnGuard,
        home: HomeTurn,
        done: Reply,
    ) {
        let limits = state.pool.shared.config.limits;
        let pool = state.pool.clone();
        let token = cancel.clone();
        let timeout = opts.timeout.unwrap_or(limits.timeout);
        // A run that holds a shared home: its time, a cancel's grace, and
        // room for the home's load and commit.
        let hold = timeout + state.pool.shared.config.cancel_grace + Duration::from_secs(30);
        let (io, home_root, scope) = (
            state.io,
            state.home.root,
            Scope {
                session: state.arena,
                home: state.home.arena,
                io: Some(state.io),
            },
        );
        let job = Job {
            start: Start {
                compute: 0,
                code,
                chunk_name: opts.chunk_name.unwrap_or_else(|| "=compute".into()),
                io,
                home: home_root,
                limits: WorkerLimits {
                    instructions: opts.instructions.unwrap_or(limits.instructions),
                    cpu_time_ms: millis(opts.cpu_time.unwrap_or(limits.cpu_time)),
                    memory: opts.memory.unwrap_or(limits.memory),
                },
            },
            scope,
            timeout,
            cancel,
            cancel_grace: state.pool.shared.config.cancel_grace,
            on_log: opts.on_log,
            arrived: opts.arrived.unwrap_or_else(Instant::now),
            times: opts.times,
            max_output_bytes: state.pool.shared.config.max_output_bytes,
            txn: Box::new(ComputeTxn::new(
                state.clone(),
                scope,
                home,
                session_turn,
                token.clone(),
                hold,
            )),
            reply: Box::new(move |out| {
                // The transaction (and with it the turns) is gone: the
                // session's tables go with its last handle, so none is held
                // here once the caller has its answer.
                state.forget_running(&token);
                drop(state);
                done(out);
            }),
        };
        pool.submit(job);
    }

    /// Forgets the compute's token (unless a later compute set its own).
    fn forget_running(&self, token: &CancelToken) {
        let mut running = self.running.lock();
        if running.as_ref().is_some_and(|r| r.same(token)) {
            *running = None;
        }
    }

    /// A compute that never started (cancelled while waiting) is answered.
    fn finish_waiting(
        self: Arc<Self>,
        token: &CancelToken,
        done: Reply,
        out: Result<ComputeOutput, ComputeError>,
    ) {
        self.forget_running(token);
        drop(self);
        done(out);
    }

    /// Loads one MessagePack value, which must be all of `bytes`, into the
    /// session's arena: no tree of Rust values is built on the way.
    fn load_msgpack(&self, bytes: &[u8], readonly: bool) -> Result<Value, SessionError> {
        Ok(self.store().load_msgpack(self.arena, bytes, readonly)?)
    }

    fn output(&self) -> Result<Value, SessionError> {
        Ok(self.store().host_get(self.io, &Key::str("output"))?)
    }

    fn output_field(&self, key: &str) -> Result<Value, SessionError> {
        Ok(match self.output()? {
            Value::Table(id) => self.store().host_get(id, &Key::str(key))?,
            _ => Value::Nil,
        })
    }

    fn budget(&self) -> OutputBudget {
        OutputBudget::new(self.pool.shared.config.max_output_bytes)
    }

    fn extract<T: DeserializeOwned>(&self, v: &Value) -> Result<T, SessionError> {
        let hv = self.store().extract_within(v, &mut self.budget())?;
        from_host(hv).map_err(|e| SessionError::Convert(e.to_string()))
    }

    /// Straight from the store to MessagePack bytes, bounded by the output limit.
    fn extract_msgpack(&self, v: &Value) -> Result<Vec<u8>, SessionError> {
        let mut out = Vec::new();
        self.store()
            .extract_msgpack(v, &mut self.budget(), &mut out)?;
        Ok(out)
    }

    /// Collects the session's arena if it grew enough. The store's GC must
    /// not run while a compute uses the arena: callers hold the session's turn.
    pub(crate) fn maybe_collect(&self) {
        maybe_collect_arena(self.store(), self.arena, &self.live_bytes);
    }

    pub(crate) fn collect(&self) {
        self.store().collect(self.arena);
        *self.live_bytes.lock() = self.store().arena_stats(self.arena).map_or(0, |s| s.bytes);
    }
}

/// Serializes host data (structs as maps keyed by field name, numbers
/// exact: see `api::to_msgpack`) for loading.
fn to_msgpack<T: Serialize + ?Sized>(data: &T) -> Result<Vec<u8>, SessionError> {
    luapool_protocol::api::to_msgpack(data).map_err(|e| SessionError::Convert(e.to_string()))
}

/// True once an arena has grown to twice what was live after its last
/// collection (and past a floor).
pub(crate) fn should_collect(stats: &ArenaStats, live: u64) -> bool {
    // An arena whose quota is under the usual floor would never reach it.
    let floor = if stats.quota > 0 {
        MIN_COLLECT_BYTES.min(stats.quota / 2)
    } else {
        MIN_COLLECT_BYTES
    };
    stats.bytes > floor.max(live * 2)
}

/// Collects an arena once [`should_collect`] says so.
fn maybe_collect_arena(store: &Store, arena: ArenaId, live: &Mutex<u64>) {
    let Some(stats) = store.arena_stats(arena) else {
        return;
    };
    let mut live = live.lock();
    if should_collect(&stats, *live) {
        store.collect(arena);
        *live = store.arena_stats(arena).map_or(0, |s| s.bytes);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.store().drop_arena(self.arena);
        self.pool.homes.release(&self.home);
    }
}

/// A CPU-time limit in whole milliseconds (at least 1 unless zero).
fn millis(d: Duration) -> u64 {
    if d.is_zero() {
        0
    } else {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }
}
