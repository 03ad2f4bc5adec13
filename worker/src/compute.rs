//! Running one compute: its limits on, its chunk (cached) in a fresh
//! sandboxed environment, and how it ended as a typed [`Outcome`].
//!
//! Every compute starts from the same observable state: its memory is
//! counted from what the worker held when it started (`memory.rs`), its
//! CPU time and `os.clock` from zero (`cpu.rs`), its random generator
//! freshly seeded (`sandbox.rs`), with no hook unless it counts
//! instructions (`stop.rs`). Between computes the worker collects garbage
//! once an earlier compute left more than [`GC_SLACK`] behind, so what a
//! compute sees of garbage it did not make stays below that.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use luapool_protocol::{
    Failure, FailureKind, Literal, Outcome, Reply, RequestErrorKind, Start, WorkerLimits,
};
use mlua::{ffi, ChunkMode, Function, Lua, Table};

use crate::chunks::Chunks;
use crate::convert::{literal_of, CopyErrorKind, MAX_COPY_BYTES};
use crate::cpu::{self, CpuTimer};
use crate::ext::Ext;
use crate::ext::{Conn, ConnError};
use crate::memory;
use crate::sandbox::Sandbox;
use crate::stop::{self, Reason};

/// Garbage the worker lets earlier computes leave before it collects.
const GC_SLACK: usize = 1 << 20;

/// A worker's Lua state and what each compute needs (`setup.rs` builds it).
pub struct Worker {
    pub(crate) lua: Lua,
    pub(crate) ext: Rc<Ext>,
    pub(crate) sandbox: Sandbox,
    /// Runs a chunk under xpcall, results packed in one table.
    pub(crate) xpcall: Function,
    pub(crate) tostring: Function,
    /// The message handler: keeps the traceback in `traceback`.
    pub(crate) handler: Function,
    pub(crate) traceback: Rc<RefCell<String>>,
    /// `ext.table`, wrapped by the sandbox.
    pub(crate) ext_table: Function,
    pub(crate) chunks: Chunks,
    /// `function(e) return function() return e end end`: a closure whose
    /// one upvalue holds `e`, for [`Worker::join_env`].
    pub(crate) env_holder: Function,
    /// A holder of the empty environment a cached chunk keeps between
    /// computes (made once: only the chunk shares its upvalue).
    pub(crate) no_env: Function,
    pub(crate) cpu: CpuTimer,
    /// The heap after the last full collection.
    pub(crate) clean: usize,
}

impl Worker {
    /// Caps the whole heap of the worker at `bytes`, whatever a compute's
    /// limit (0: no cap). The worker sets it under its OS address-space
    /// limit, so that running out of memory is `MemoryLimit`, not an abort.
    pub fn cap_heap(&self, bytes: usize) {
        memory::set_cap(bytes);
    }

    /// The connection to the supervisor.
    pub fn conn(&self) -> std::cell::RefMut<'_, Conn> {
        self.ext.link.conn()
    }

    /// Runs one compute. An `Err` means the ring broke: the worker must exit.
    pub fn run(&mut self, start: &Start) -> Result<Outcome, ConnError> {
        let limits = start.limits;
        cpu::start_clock();
        self.cpu.arm(Duration::from_millis(limits.cpu_time_ms));
        stop::begin(limits.instructions);
        self.traceback.borrow_mut().clear();

        let outcome = self.call(start);
        self.ext.values.end();
        self.cpu.arm(Duration::ZERO);
        // An allocation refused and never granted ended the compute even if
        // no instruction ran after it to stop it.
        let reason = stop::reason().or(memory::refused().then_some(Reason::Memory));
        stop::end();
        memory::end();
        let outcome = match (reason, outcome) {
            // A stop ends the compute whatever Lua made of it (a `__close`
            // handler that caught it, a result returned after it).
            (Some(r), _) => Outcome::Failed(self.stopped(r, &limits)),
            (None, Ok(o)) => o,
            (None, Err(e)) => Outcome::Failed(self.failure(message_of(&e), FailureKind::LuaError)),
        };
        if let Some(e) = self.ext.link.take_broken() {
            return Err(e);
        }
        let outcome = match (outcome, self.ext.finish()?) {
            (Outcome::Returned(_), Some(Reply::Error(e))) => Outcome::Failed(Failure {
                kind: match e.kind {
                    RequestErrorKind::Quota => FailureKind::Quota,
                    _ => FailureKind::LuaError,
                },
                message: e.message,
                traceback: String::new(),
            }),
            (o, _) => o,
        };
        self.ext.link.conn().discard_writes();
        Ok(outcome)
    }

    /// Work between computes, done after a reply is sent so that no compute
    /// waits for it: collects what earlier computes left (past
    /// [`GC_SLACK`]) and builds the next environment. If that fails (the
    /// heap cap), the next compute builds its own and meets the error there.
    pub fn idle(&mut self) {
        if memory::allocated() > self.clean + GC_SLACK {
            let _ = self.lua.gc_collect();
            self.clean = memory::allocated();
        }
        let _ = self.sandbox.prepare();
    }

    fn call(&mut self, start: &Start) -> mlua::Result<Outcome> {
        // Drops the previous compute's read-only cache first, so that its
        // memory is not counted from inside this one.
        self.ext.begin(&self.lua)?;
        memory::begin(usize::try_from(start.limits.memory).unwrap_or(usize::MAX));
        let io = self.ext.bare(&self.lua, start.io, true)?;
        let home = self.ext.bare(&self.lua, start.home, false)?;
        let ext = self.lua.create_table()?;
        ext.raw_set("table", self.ext_table.clone())?;
        let env = self.sandbox.env(&[
            ("_io", mlua::Value::Table(io)),
            ("_home", mlua::Value::Table(home)),
            ("ext", mlua::Value::Table(ext)),
        ])?;
        let f = match self.chunk(start) {
            Ok(f) => f,
            Err(mlua::Error::SyntaxError { message, .. }) => {
                return Ok(Outcome::Failed(
                    self.failure(message, FailureKind::LuaError),
                ))
            }
            Err(e) => return Err(e),
        };
        self.ext
            .values
            .begin(&start.code, &start.chunk_name, env.clone());
        self.join_env(&f, &self.env_holder.call(env)?)?;
        let packed = self.xpcall.call::<Table>((&f, self.handler.clone()));
        // The cached chunk must not keep this compute's globals alive.
        self.join_env(&f, &self.no_env)?;
        let packed = packed?;
        let n: i64 = packed.raw_get("n")?;
        let mut results = (1..=n)
            .map(|i| packed.raw_get::<mlua::Value>(i))
            .collect::<mlua::Result<Vec<_>>>()?
            .into_iter();
        let ok = matches!(results.next(), Some(mlua::Value::Boolean(true)));
        if !ok {
            let err = results.next().unwrap_or(mlua::Value::Nil);
            let message = self.error_text(err);
            return Ok(Outcome::Failed(
                self.failure(message, FailureKind::LuaError),
            ));
        }
        let mut values: Vec<Literal> = Vec::new();
        for v in results {
            match literal_of(&self.lua, &self.ext.values, &v) {
                Ok((lit, _)) => values.push(lit),
                Err(e) => {
                    let kind = match e.kind {
                        // A function, a cycle, a thread: not data.
                        CopyErrorKind::Invalid(_) => FailureKind::BadResult,
                        // The stop decides (run() reads it).
                        _ => FailureKind::ConversionLimit,
                    };
                    return Ok(Outcome::Failed(
                        self.failure(format!("cannot return this value: {e}"), kind),
                    ));
                }
            }
        }
        Ok(Outcome::Returned(values))
    }

    /// The text of an error value, as `lua.c` reports one: a string or
    /// number as it is; anything else through its `__tostring` (still under
    /// the compute's limits), else its type.
    fn error_text(&self, err: mlua::Value) -> String {
        match &err {
            mlua::Value::String(s) => return s.to_string_lossy(),
            mlua::Value::Error(e) => return message_of(e),
            _ => {}
        }
        let type_name = err.type_name();
        match self.tostring.call::<mlua::String>(err) {
            Ok(s) => s.to_string_lossy(),
            Err(_) => format!("(error object is a {type_name} value)"),
        }
    }

    /// Makes the `_ENV` of a loaded main chunk (its one upvalue) the
    /// upvalue of `holder` (a closure of [`Worker::env_holder`]), as `load`
    /// with an environment gives a chunk a fresh upvalue: a closure an
    /// earlier compute made from the chunk keeps that compute's globals,
    /// never sees a later one's. (mlua's `set_environment` does the same
    /// but compiles a helper chunk per call, which cost more than a whole
    /// trivial compute.)
    fn join_env(&self, chunk: &Function, holder: &Function) -> mlua::Result<()> {
        // SAFETY: exec_raw pushed the chunk and the holder, two Lua
        // closures with one upvalue each; the chunk's first (its only,
        // `_ENV`) becomes the holder's, and both are popped.
        unsafe {
            self.lua.exec_raw::<()>((chunk, holder), |l| {
                ffi::lua_upvaluejoin(l, -2, 1, -1, 1);
                ffi::lua_settop(l, -3);
            })
        }
    }

    /// The compiled chunk for this code, from the cache when possible.
    fn chunk(&mut self, start: &Start) -> mlua::Result<Function> {
        if let Some(f) = self.chunks.get(&start.code, &start.chunk_name) {
            return Ok(f);
        }
        let before = memory::allocated();
        let f = self
            .lua
            .load(&start.code[..])
            .set_name(start.chunk_name.clone())
            .set_mode(ChunkMode::Text)
            .into_function()?;
        let compiled = memory::allocated().saturating_sub(before);
        self.chunks
            .insert(&start.code, &start.chunk_name, f.clone(), compiled);
        Ok(f)
    }

    /// A failure with the traceback Lua left.
    fn failure(&self, message: String, kind: FailureKind) -> Failure {
        Failure {
            kind,
            message,
            traceback: std::mem::take(&mut *self.traceback.borrow_mut()),
        }
    }

    /// The failure of a stopped compute, naming the limit and its value.
    fn stopped(&self, r: Reason, limits: &WorkerLimits) -> Failure {
        let (kind, message) = match r {
            Reason::Instructions => (
                FailureKind::InstructionLimit,
                format!(
                    "instruction limit exceeded ({} instructions)",
                    limits.instructions
                ),
            ),
            Reason::CpuTime => (
                FailureKind::CpuLimit,
                format!(
                    "CPU-time limit of {:?} exceeded",
                    Duration::from_millis(limits.cpu_time_ms)
                ),
            ),
            Reason::Memory => (
                FailureKind::MemoryLimit,
                match (limits.memory, memory::cap()) {
                    (0, cap) => format!(
                        "not enough memory: the worker's heap cap of {cap} bytes was reached"
                    ),
                    (limit, _) => format!(
                        "not enough memory: the compute's memory limit of {limit} bytes was reached"
                    ),
                },
            ),
            Reason::Cancel => (FailureKind::Cancelled, "compute cancelled".into()),
            Reason::Conversion => (
                FailureKind::ConversionLimit,
                format!(
                    "value too large: a copy out of Lua passed the conversion limit of {MAX_COPY_BYTES} bytes"
                ),
            ),
        };
        self.failure(message, kind)
    }
}

/// The message of an mlua error: what the Lua side raised, without the
/// Rust callback's traceback around it.
pub fn message_of(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m)
        | mlua::Error::MemoryError(m)
        | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::CallbackError { cause, .. } => message_of(cause),
        mlua::Error::WithContext { cause, .. } => message_of(cause),
        other => other.to_string(),
    }
}
