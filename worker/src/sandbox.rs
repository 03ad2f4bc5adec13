//! The sandboxed global environment. Each compute gets a fresh one (built
//! ahead, while the worker waits for the compute: [`Sandbox::prepare`]): the base
//! functions and copies of the allowed libraries, minus everything that
//! reaches outside the worker (no `io`, `os` only for time, no `require`,
//! `dofile`, `loadfile`, `debug`, `string.dump`; `load` is text-only;
//! `collectgarbage` only counts; the string metatable is locked; no `__gc`
//! finalizers). What a compute can observe starts from the same state
//! whatever ran before on the worker: the random generator is seeded from
//! the OS per compute, `os.clock` counts the compute's own CPU time,
//! `collectgarbage("count")` its own memory. The coroutine functions keep
//! stops on every thread (`coroutines.rs`). The Lua half is `sandbox.lua`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{ffi, Function, Lua, Table};

/// Base functions copied as they are.
const BASE: &[&str] = &[
    "assert", "error", "ipairs", "pairs", "select", "tonumber", "tostring", "type", "rawequal",
    "rawget", "rawset", "rawlen", "_VERSION",
];
/// Libraries copied per compute, with the functions they keep (`None`: all).
const LIBS: &[(&str, Option<&[&str]>)] = &[
    ("string", None),
    ("table", None),
    ("math", None),
    ("utf8", None),
    ("coroutine", None),
    ("bigint", None),
    ("os", Some(&["clock", "time", "date", "difftime"])),
];

/// Random bytes from the OS, fetched a few hundred at a time.
struct Entropy {
    buf: [u8; 512],
    used: usize,
}

impl Entropy {
    fn new() -> Entropy {
        Entropy {
            buf: [0; 512],
            used: 512,
        }
    }

    /// Two random integers.
    fn pair(&mut self) -> (i64, i64) {
        if self.used + 16 > self.buf.len() {
            let mut got = 0;
            while got < self.buf.len() {
                // SAFETY: writes within `buf`.
                let n = unsafe {
                    libc::getrandom(self.buf[got..].as_mut_ptr().cast(), self.buf.len() - got, 0)
                };
                if n > 0 {
                    got += n as usize;
                } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    // No entropy at all: never expected on Linux ≥ 3.17;
                    // better a clock than a seed another compute knows.
                    let t = crate::cpu::thread_time().as_nanos() as u64;
                    self.buf[got..].iter_mut().enumerate().for_each(|(i, b)| {
                        *b = (t.rotate_left(i as u32 % 64) >> (i % 8)) as u8;
                    });
                    break;
                }
            }
            self.used = 0;
        }
        let word = |i: usize| i64::from_ne_bytes(self.buf[i..i + 8].try_into().expect("8 bytes"));
        let pair = (word(self.used), word(self.used + 8));
        self.used += 16;
        pair
    }
}

/// The pieces every compute's environment is built from.
pub struct Sandbox {
    /// `sandbox.lua`'s `new_env(s1, s2)`, over the base and the libraries.
    new_env: Function,
    entropy: Rc<RefCell<Entropy>>,
    /// The next compute's environment, built while the worker waits.
    ready: RefCell<Option<Table>>,
}

/// Looks up `name` in the (name, value) list.
fn take(list: &[(&'static str, mlua::Value)], name: &str) -> mlua::Result<mlua::Value> {
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| mlua::Error::runtime(format!("sandbox: no {name} to wrap")))
}

/// C functions as Lua values.
fn c_functions<const N: usize>(
    lua: &Lua,
    push: unsafe fn(*mut ffi::lua_State),
) -> mlua::Result<Vec<Function>> {
    // SAFETY: `push` pushes N C functions (stack space checked first).
    let multi = unsafe {
        lua.exec_raw::<mlua::MultiValue>((), |l| {
            ffi::luaL_checkstack(l, N as i32, std::ptr::null());
            push(l)
        })?
    };
    multi
        .into_iter()
        .map(|v| match v {
            mlua::Value::Function(f) => Ok(f),
            _ => Err(mlua::Error::runtime("sandbox: expected a C function")),
        })
        .collect()
}

unsafe fn push_small(l: *mut ffi::lua_State) {
    ffi::lua_pushcfunction(l, crate::stop::lp_stopped);
    ffi::lua_pushcfunction(l, crate::cpu::lp_clock);
    ffi::lua_pushcfunction(l, lp_count);
    ffi::lua_pushcfunction(l, lp_clone);
}

/// `clone(flat, extra)`: a table of the pairs in `flat` (`{k1, v1, k2,
/// v2, ...}`, `sandbox.lua`'s `flat`), made at its final size plus `extra`
/// slots, so filling it never rehashes.
///
/// # Safety
/// Called by Lua as a C function (arguments checked; 3 stack slots used).
unsafe extern "C-unwind" fn lp_clone(l: *mut ffi::lua_State) -> std::ffi::c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    let extra = ffi::luaL_checkinteger(l, 2).clamp(0, 64) as std::ffi::c_int;
    let len = ffi::lua_rawlen(l, 1) as ffi::lua_Integer;
    let pairs = std::ffi::c_int::try_from(len / 2).unwrap_or(0);
    ffi::lua_createtable(l, 0, pairs + extra);
    for i in 0..ffi::lua_Integer::from(pairs) {
        ffi::lua_rawgeti(l, 1, 2 * i + 1);
        ffi::lua_rawgeti(l, 1, 2 * i + 2);
        ffi::lua_rawset(l, -3);
    }
    1
}

/// `collectgarbage("count")`: the compute's own memory, in KiB.
unsafe extern "C-unwind" fn lp_count(l: *mut ffi::lua_State) -> std::ffi::c_int {
    ffi::lua_pushnumber(l, crate::memory::used() as f64 / 1024.0);
    1
}

impl Sandbox {
    /// Captures the pristine globals (call before any untrusted code runs)
    /// and adds `overrides` (name, value) to the base set; `setmetatable`
    /// among them is wrapped by `sandbox.lua`. `log(parts, n)` sends a
    /// `print` line and returns `true` or `false, message`.
    pub fn new(
        lua: &Lua,
        overrides: Vec<(&'static str, mlua::Value)>,
        log: Function,
    ) -> mlua::Result<Sandbox> {
        let g = lua.globals();
        let small = c_functions::<4>(lua, push_small)?;
        let coroutines = c_functions::<4>(lua, crate::coroutines::push_functions)?;
        let entropy = Rc::new(RefCell::new(Entropy::new()));
        let f = lua.create_table()?;
        f.raw_set("xpcall", g.raw_get::<Function>("xpcall")?)?;
        f.raw_set("setmetatable", take(&overrides, "setmetatable")?)?;
        f.raw_set("stopped", &small[0])?;
        f.raw_set("clock", &small[1])?;
        f.raw_set("count", &small[2])?;
        f.raw_set("clone", &small[3])?;
        let math: Table = g.raw_get("math")?;
        f.raw_set("randomseed", math.raw_get::<Function>("randomseed")?)?;
        let e = entropy.clone();
        f.raw_set(
            "entropy",
            lua.create_function(move |_, ()| Ok(e.borrow_mut().pair()))?,
        )?;
        f.raw_set("log", log)?;
        let plain = lua.create_function(|lua, v: mlua::Value| {
            Ok(match v {
                mlua::Value::Error(e) => {
                    mlua::Value::String(lua.create_string(crate::compute::message_of(&e))?)
                }
                other => other,
            })
        })?;
        crate::coroutines::set_plain(lua, &plain)?;
        f.raw_set("plain", plain)?;
        let wrapped: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=luapool-sandbox")
            .call(f)?;
        let mut base: Vec<(&'static str, mlua::Value)> = BASE
            .iter()
            .map(|n| Ok((*n, g.raw_get(*n)?)))
            .collect::<mlua::Result<_>>()?;
        for (name, v) in overrides {
            let v = match name {
                "setmetatable" => wrapped.raw_get(name)?,
                _ => v,
            };
            base.push((name, v));
        }
        for name in ["pcall", "xpcall", "print", "collectgarbage"] {
            base.push((name, wrapped.raw_get(name)?));
        }
        let libs = lua.create_table()?;
        for (name, keep) in LIBS {
            let orig: Table = g.raw_get(*name)?;
            let lib = lua.create_table()?;
            for pair in orig.pairs::<mlua::Value, mlua::Value>() {
                let (k, v) = pair?;
                let keep_it = match (keep, &k) {
                    (Some(names), mlua::Value::String(s)) => {
                        names.iter().any(|n| s.as_bytes() == n.as_bytes())
                    }
                    (Some(_), _) => false,
                    (None, mlua::Value::String(s)) => s.as_bytes() != b"dump".as_slice(),
                    (None, _) => true,
                };
                if keep_it {
                    lib.raw_set(k, v)?;
                }
            }
            match *name {
                "coroutine" => {
                    for (n, f) in crate::coroutines::NAMES.iter().zip(&coroutines) {
                        lib.raw_set(*n, f)?;
                    }
                }
                "os" => lib.raw_set("clock", wrapped.raw_get::<Function>("clock")?)?,
                "math" => lib.raw_set("randomseed", wrapped.raw_get::<Function>("randomseed")?)?,
                _ => {}
            }
            libs.raw_set(*name, lib)?;
        }
        // The original string table stays reachable as the strings' method
        // table (`("").dump`): take `dump` out of it too.
        let string: Table = g.raw_get("string")?;
        string.raw_set("dump", mlua::Value::Nil)?;
        // Lock the string metatable: `getmetatable("")` no longer hands out
        // the shared string library that every compute's methods use.
        lua.load("getmetatable('').__metatable = false")
            .set_name("=luapool-sandbox")
            .exec()?;
        let base_table = lua.create_table()?;
        for (name, v) in base {
            base_table.raw_set(name, v)?;
        }
        let env_maker: Function = wrapped.raw_get("env_maker")?;
        Ok(Sandbox {
            new_env: env_maker.call((base_table, libs))?,
            entropy,
            ready: RefCell::new(None),
        })
    }

    /// A fresh global environment with `extra` globals (`_io`, `_home`, …):
    /// the one [`Sandbox::prepare`] built, or a new one.
    pub fn env(&self, extra: &[(&str, mlua::Value)]) -> mlua::Result<Table> {
        let env = match self.ready.borrow_mut().take() {
            Some(env) => env,
            None => self.fresh()?,
        };
        for (name, v) in extra {
            env.raw_set(*name, v.clone())?;
        }
        Ok(env)
    }

    /// Builds the next compute's environment ahead, off the path from a
    /// compute's start to its reply. Nothing runs between this and the
    /// compute that takes it, so it is as fresh as one built then (the
    /// random generator is seeded here; only computes draw from it).
    pub fn prepare(&self) -> mlua::Result<()> {
        if self.ready.borrow().is_none() {
            let env = self.fresh()?;
            *self.ready.borrow_mut() = Some(env);
        }
        Ok(())
    }

    fn fresh(&self) -> mlua::Result<Table> {
        let (s1, s2) = self.entropy.borrow_mut().pair();
        self.new_env.call((s1, s2))
    }
}
