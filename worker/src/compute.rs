//! One worker: a Lua state that runs computes, each in a fresh sandboxed
//! environment, under an instruction budget and a heap limit.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use luapool_protocol::{Failure, FailureKind, Literal, Outcome, Reply, Start};
use mlua::{
    ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, VmState,
};

use crate::budget::Budget;
use crate::convert::literal_of;
use crate::ext::Ext;
use crate::ext::Fns;
use crate::ext::{Conn, ConnError};
use crate::sandbox::Sandbox;

/// Instructions between two runs of the hook (budget and cancel checks).
const HOOK_EVERY: u32 = 1000;
/// Compiled chunks kept per worker.
const CHUNK_CACHE: usize = 256;
/// Lua heap above which the worker collects garbage between computes.
const GC_AFTER_BYTES: usize = 16 << 20;

/// Why the running compute is being stopped, if it is.
#[derive(Default)]
struct Stop {
    remaining: Cell<u64>,
    reason: Cell<Option<FailureKind>>,
    /// The Lua heap limit of the running compute (0: none).
    heap_limit: Cell<usize>,
    /// The most Lua heap any compute may have: below the OS address-space
    /// limit, so Lua fails an allocation before the OS does (0: no cap).
    heap_cap: Cell<usize>,
    /// Whether the running compute has an instruction budget (else the
    /// hook runs only when a cancel signal turned it on; see budget.rs).
    counting: Cell<bool>,
}

impl Stop {
    /// Stops the compute for `kind`: from now on the hook raises an error at
    /// every tick, and the prelude's `pcall`, `xpcall` and `coroutine.resume`
    /// raise a caught error again (they read `stop_table.reason`).
    fn halt(&self, stop_table: &Table, kind: FailureKind) {
        if self.reason.get().is_none() {
            self.reason.set(Some(kind));
            // Can fail only for memory; the hook raises the stop regardless.
            let _ = stop_table.raw_set("reason", stop_message(kind));
        }
    }
}

/// A worker's Lua state and what each compute needs.
pub struct Worker {
    lua: Lua,
    ext: Rc<Ext>,
    sandbox: Sandbox,
    stop: Rc<Stop>,
    stop_table: Table,
    xpcall: Function,
    tostring: Function,
    handler: Function,
    traceback: Rc<RefCell<String>>,
    ext_table: Function,
    chunks: HashMap<u64, Function>,
    budget: Budget,
}

impl Worker {
    /// Builds the Lua state, the external-table layer and the sandbox.
    pub fn new(conn: Conn) -> mlua::Result<Worker> {
        let libs = StdLib::COROUTINE
            | StdLib::TABLE
            | StdLib::OS
            | StdLib::STRING
            | StdLib::UTF8
            | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::new())?;
        let g = lua.globals();
        // Runs a chunk under xpcall and returns its results packed in one
        // table (by table.pack, in C). Taking them as a MultiValue straight
        // off the stack is not safe: after a C-stack overflow mlua pushes
        // past the frame's stack top (a Lua API assertion, found by the
        // sandbox tests; unchecked in a build without assertions).
        let xpcall: Function = lua
            .load("local xpcall, pack = ... return function(f, h) return pack(xpcall(f, h)) end")
            .set_name("=luapool-run")
            .call((
                g.raw_get::<Function>("xpcall")?,
                g.raw_get::<Table>("table")?.raw_get::<Function>("pack")?,
            ))?;
        let tostring: Function = g.raw_get("tostring")?;
        g.raw_set("bigint", crate::bigint::library(&lua)?)?;

        let r = lua.create_table()?;
        r.raw_set("idkey", crate::ext::id_key())?;
        let ext = Ext::new(conn);
        let ro = crate::ext::readonly::functions(&lua, &ext)?;
        r.raw_set("ro_next", &ro.next)?;
        r.raw_set("ro_info", &ro.info)?;
        let prelude: Table = lua
            .load(include_str!("ext/prelude.lua"))
            .set_name("=luapool-prelude")
            .call(r.clone())?;
        ext.set_fns(Fns {
            newindex: prelude.raw_get("newindex")?,
            len: prelude.raw_get("len")?,
            pairs: prelude.raw_get("pairs_")?,
            make: prelude.raw_get("make")?,
        });
        crate::ext::readonly::install(&lua, &ro, prelude.raw_get("ud_mt")?)?;
        ext.install(&lua, &r)?;

        let print = {
            let ext = ext.clone();
            let tostring = tostring.clone();
            lua.create_function(move |_, args: MultiValue| {
                let mut line = Vec::new();
                for (i, a) in args.into_iter().enumerate() {
                    if i > 0 {
                        line.push(b'\t');
                    }
                    let s: mlua::String = tostring.call(a)?;
                    line.extend_from_slice(&s.as_bytes());
                }
                let r = ext.link.conn().log(line);
                r.map_err(|e| mlua::Error::runtime(format!("luapool: lost the supervisor: {e}")))
            })?
        };
        let overrides = vec![
            ("print", mlua::Value::Function(print)),
            ("next", prelude.raw_get("next")?),
            ("pairs", prelude.raw_get("pairs")?),
            ("type", mlua::Value::Function(ro.type_.clone())),
            ("rawget", prelude.raw_get("rawget")?),
            ("rawlen", prelude.raw_get("rawlen")?),
            ("rawset", prelude.raw_get("rawset")?),
            ("getmetatable", prelude.raw_get("getmetatable")?),
            ("setmetatable", prelude.raw_get("setmetatable")?),
            ("pcall", prelude.raw_get("pcall")?),
            ("xpcall", prelude.raw_get("xpcall")?),
        ];
        let stop = Rc::new(Stop::default());
        let stop_table: Table = prelude.raw_get("stop")?;
        let on_memory_error = {
            let (stop, stop_table) = (stop.clone(), stop_table.clone());
            lua.create_function(move |_, ()| {
                stop.halt(&stop_table, FailureKind::MemoryLimit);
                Ok(())
            })?
        };
        let sandbox = Sandbox::new(
            &lua,
            overrides,
            prelude.raw_get("resume")?,
            on_memory_error,
            stop_table.clone(),
        )?;

        let traceback = Rc::new(RefCell::new(String::new()));
        let handler = {
            let tb = traceback.clone();
            lua.create_function(move |lua, msg: mlua::Value| {
                *tb.borrow_mut() = lua
                    .traceback(None, 2)
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default();
                Ok(msg)
            })?
        };
        let ext_table: Function = prelude.raw_get("ext_table")?;

        {
            let stop = stop.clone();
            let stop_table = stop_table.clone();
            let ext = ext.clone();
            lua.set_global_hook(
                HookTriggers::new().every_nth_instruction(HOOK_EVERY),
                move |_, _| {
                    if stop.reason.get().is_none() {
                        let cancelled = ext.link.cancel_requested();
                        if !cancelled && !stop.counting.get() {
                            // A cancel signal that came after its compute.
                            crate::budget::off_from_hook();
                            return Ok(VmState::Continue);
                        }
                        let left = stop.remaining.get().saturating_sub(HOOK_EVERY as u64);
                        stop.remaining.set(left);
                        let reason = if cancelled {
                            Some(FailureKind::Cancelled)
                        } else if left == 0 {
                            Some(FailureKind::InstructionLimit)
                        } else {
                            None
                        };
                        if let Some(r) = reason {
                            stop.halt(&stop_table, r);
                        }
                    }
                    match stop.reason.get() {
                        Some(r) => Err(mlua::Error::runtime(stop_message(r))),
                        None => Ok(VmState::Continue),
                    }
                },
            )?;
        }
        let budget = Budget::capture(&lua, HOOK_EVERY)?;
        drop(g);
        Ok(Worker {
            lua,
            ext,
            sandbox,
            stop,
            stop_table,
            xpcall,
            tostring,
            handler,
            traceback,
            ext_table,
            chunks: HashMap::new(),
            budget,
        })
    }

    /// Caps the Lua heap of every compute at `bytes`, whatever its own limit
    /// (0: no cap). The worker sets it under its OS address-space limit, so
    /// that a script running out of memory gets `MemoryLimit`, not an abort.
    pub fn cap_heap(&self, bytes: usize) {
        self.stop.heap_cap.set(bytes);
    }

    /// The connection to the supervisor.
    pub fn conn(&self) -> std::cell::RefMut<'_, Conn> {
        self.ext.link.conn()
    }

    /// Runs one compute. An `Err` means the ring broke: the worker must exit.
    pub fn run(&mut self, start: &Start) -> Result<Outcome, ConnError> {
        let counting = start.limits.instructions != 0;
        self.stop.remaining.set(if counting {
            start.limits.instructions
        } else {
            u64::MAX
        });
        self.stop.counting.set(counting);
        self.budget.set(counting);
        self.stop.reason.set(None);
        let _ = self.stop_table.raw_set("reason", mlua::Value::Nil);
        self.traceback.borrow_mut().clear();
        let heap_limit = match (start.limits.memory as usize, self.stop.heap_cap.get()) {
            (0, cap) => cap,
            (limit, 0) => limit,
            (limit, cap) => limit.min(cap),
        };
        self.stop.heap_limit.set(heap_limit);
        let _ = self.lua.set_memory_limit(heap_limit);

        let outcome = match self.call(start) {
            // A stop that Lua code caught where no wrapper could re-raise it
            // (a `__close` handler, say) still ends the compute.
            Ok(Outcome::Returned(_)) if self.stop.reason.get().is_some() => {
                Outcome::Failed(self.failure(String::new(), FailureKind::LuaError))
            }
            Ok(o) => o,
            Err(e) => Outcome::Failed(self.failure(e.to_string(), mlua_kind(&e))),
        };
        let _ = self.lua.set_memory_limit(0);
        if let Some(e) = self.ext.link.take_broken() {
            return Err(e);
        }
        let outcome = match (outcome, self.ext.finish()?) {
            (Outcome::Returned(_), Some(Reply::Error(e))) => Outcome::Failed(Failure {
                kind: FailureKind::LuaError,
                message: e.message,
                traceback: String::new(),
            }),
            (o, _) => o,
        };
        self.ext.link.conn().discard_writes();
        if self.lua.used_memory() > GC_AFTER_BYTES {
            let _ = self.lua.gc_collect();
        }
        Ok(outcome)
    }

    fn call(&mut self, start: &Start) -> mlua::Result<Outcome> {
        self.ext.begin(&self.lua)?;
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
        f.set_environment(env)?;
        let packed: Table = self.xpcall.call((f.clone(), self.handler.clone()))?;
        // The cached chunk must not keep this compute's globals (and the
        // external tables' caches they reach) alive until its next run.
        f.set_environment(self.lua.create_table()?)?;
        let n: i64 = packed.raw_get("n")?;
        let mut results = (1..=n)
            .map(|i| packed.raw_get::<mlua::Value>(i))
            .collect::<mlua::Result<Vec<_>>>()?
            .into_iter();
        let ok = matches!(results.next(), Some(mlua::Value::Boolean(true)));
        if !ok {
            let err = results.next().unwrap_or(mlua::Value::Nil);
            let message = match self.tostring.call::<mlua::String>(err) {
                Ok(s) => s.to_string_lossy(),
                Err(e) => e.to_string(),
            };
            let kind = if message.ends_with("not enough memory") {
                FailureKind::MemoryLimit
            } else {
                FailureKind::LuaError
            };
            return Ok(Outcome::Failed(self.failure(message, kind)));
        }
        let mut values: Vec<Literal> = Vec::new();
        for v in results {
            match literal_of(&v) {
                Ok((lit, _)) => values.push(lit),
                Err(e) => {
                    return Ok(Outcome::Failed(self.failure(
                        format!("cannot return this value: {e}"),
                        FailureKind::LuaError,
                    )))
                }
            }
        }
        Ok(Outcome::Returned(values))
    }

    /// The compiled chunk for this code, from the cache when possible.
    fn chunk(&mut self, start: &Start) -> mlua::Result<Function> {
        let mut h = DefaultHasher::new();
        start.code.hash(&mut h);
        start.chunk_name.hash(&mut h);
        let key = h.finish();
        if let Some(f) = self.chunks.get(&key) {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(&start.code[..])
            .set_name(start.chunk_name.clone())
            .set_mode(ChunkMode::Text)
            .into_function()?;
        if self.chunks.len() >= CHUNK_CACHE {
            self.chunks.clear();
        }
        self.chunks.insert(key, f.clone());
        Ok(f)
    }

    /// A failure, with the stop reason taking precedence over what Lua saw.
    fn failure(&self, message: String, kind: FailureKind) -> Failure {
        let kind = self.stop.reason.get().unwrap_or(kind);
        let message = match kind {
            FailureKind::InstructionLimit | FailureKind::Cancelled => {
                stop_message(kind).to_string()
            }
            FailureKind::MemoryLimit => format!(
                "{} (Lua heap limit of {} bytes)",
                if message.is_empty() {
                    stop_message(kind)
                } else {
                    &message
                },
                self.stop.heap_limit.get()
            ),
            _ => message,
        };
        Failure {
            kind,
            message,
            traceback: std::mem::take(&mut *self.traceback.borrow_mut()),
        }
    }
}

fn stop_message(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Cancelled => "compute cancelled",
        FailureKind::MemoryLimit => "not enough memory",
        _ => "instruction limit exceeded",
    }
}

fn mlua_kind(e: &mlua::Error) -> FailureKind {
    match e {
        mlua::Error::MemoryError(_) => FailureKind::MemoryLimit,
        _ => FailureKind::LuaError,
    }
}
