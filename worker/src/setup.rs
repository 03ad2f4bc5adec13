//! Building a worker's Lua state once: the allocator that counts, the stop
//! hook's registry entries and signal handlers, the CPU-time timer, the
//! external-table layer, the sandbox, and `print`'s line sink.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{ffi, Function, Lua, LuaOptions, MultiValue, StdLib, Table};

use crate::chunks::Chunks;
use crate::compute::{message_of, Worker};
use crate::convert::count_line;
use crate::cpu::CpuTimer;
use crate::ext::Conn;
use crate::ext::Ext;
use crate::ext::Fns;
use crate::sandbox::Sandbox;
use crate::{memory, stop};

/// Why a worker could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Lua refused (out of memory, most likely).
    #[error("cannot set up Lua: {0}")]
    Lua(#[from] mlua::Error),
    /// The CPU-time timer could not be made.
    #[error(transparent)]
    Timer(#[from] crate::cpu::CpuTimerError),
}

/// What a Rust callback hands back: `true, values...` or `false, message`
/// (`sandbox.lua`'s `check` raises the message as a plain string).
fn checked_result(lua: &Lua, r: Result<MultiValue, String>) -> mlua::Result<MultiValue> {
    let (ok, mut rest) = match r {
        Ok(v) => (true, v),
        Err(m) => (
            false,
            MultiValue::from_vec(vec![mlua::Value::String(lua.create_string(m)?)]),
        ),
    };
    rest.push_front(mlua::Value::Boolean(ok));
    Ok(rest)
}

/// `log(parts, n)`: joins the `n` strings of `parts` with tabs and sends
/// the line, counted against the conversion and memory limits first.
fn log(ext: &Ext, parts: &Table, n: i64) -> Result<MultiValue, String> {
    let part = |i: i64| parts.raw_get::<mlua::String>(i).map_err(|e| message_of(&e));
    let mut len = (n.max(1) - 1) as usize;
    for i in 1..=n {
        len = len.saturating_add(part(i)?.as_bytes().len());
    }
    count_line(len).map_err(|e| format!("print: {e}"))?;
    let mut line = Vec::with_capacity(len);
    for i in 1..=n {
        if i > 1 {
            line.push(b'\t');
        }
        line.extend_from_slice(&part(i)?.as_bytes());
    }
    let r = ext.link.conn().log(line);
    r.map_err(|e| format!("luapool: lost the supervisor: {e}"))?;
    Ok(MultiValue::new())
}

impl Worker {
    /// Builds the Lua state, the external-table layer and the sandbox.
    pub fn new(conn: Conn) -> Result<Worker, SetupError> {
        let libs = StdLib::COROUTINE
            | StdLib::TABLE
            | StdLib::OS
            | StdLib::STRING
            | StdLib::UTF8
            | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::new())?;
        memory::install(&lua)?;
        // SAFETY: reads the main thread from the registry; `stop::install`
        // pushes and pops its strings (2 slots, checked).
        unsafe {
            lua.exec_raw::<()>((), |l| {
                ffi::luaL_checkstack(l, 2, std::ptr::null());
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
                let main = ffi::lua_tothread(l, -1);
                ffi::lua_pop(l, 1);
                stop::install(main);
            })?;
        }
        stop::install_cancel_signal();
        let cpu = CpuTimer::new()?;
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
        crate::values::install(&lua, &ext)?;

        let log = {
            let ext = ext.clone();
            lua.create_function(move |lua, (parts, n): (Table, i64)| {
                checked_result(lua, log(&ext, &parts, n))
            })?
        };
        let overrides = vec![
            ("next", prelude.raw_get("next")?),
            ("pairs", prelude.raw_get("pairs")?),
            ("type", mlua::Value::Function(ro.type_.clone())),
            ("rawget", prelude.raw_get("rawget")?),
            ("rawlen", prelude.raw_get("rawlen")?),
            ("rawset", prelude.raw_get("rawset")?),
            ("getmetatable", prelude.raw_get("getmetatable")?),
            ("setmetatable", prelude.raw_get("setmetatable")?),
        ];
        let sandbox = Sandbox::new(&lua, overrides, log)?;

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
        // `ext.table`: the prelude raises its errors as plain strings.
        let ext_table: Function = prelude.raw_get("ext_table")?;
        drop(g);
        let env_holder: Function = lua
            .load("return function(e) return function() return e end end")
            .set_name("=luapool-env")
            .call(())?;
        let no_env: Function = env_holder.call(lua.create_table()?)?;
        Ok(Worker {
            lua,
            ext,
            sandbox,
            xpcall,
            tostring,
            handler,
            traceback,
            ext_table,
            chunks: Chunks::new(),
            env_holder,
            no_env,
            cpu,
            clean: memory::allocated(),
        })
    }
}
