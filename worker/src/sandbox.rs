//! The sandboxed global environment. Each compute gets a fresh one: the base
//! functions and copies of the allowed libraries, minus everything that
//! reaches outside the worker (no `io`, `os` only for time, no `require`,
//! `dofile`, `loadfile`, `debug`, `string.dump`; `load` is text-only;
//! `collectgarbage` only counts; the string metatable is locked; no `__gc`
//! finalizers; the heap limit, like the instruction budget, cannot be
//! swallowed by `pcall`). The Lua half is `sandbox.lua`.

use mlua::{Function, Lua, Table};

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

/// The pieces every compute's environment is built from.
pub struct Sandbox {
    /// name → base function (or value).
    base: Table,
    /// name → the allowed part of a library, copied per compute.
    libs: Table,
    /// `sandbox.lua`'s `new_env(base, libs)`.
    new_env: Function,
}

/// Looks up `name` in the (name, value) list.
fn take(list: &[(&'static str, mlua::Value)], name: &str) -> mlua::Result<mlua::Value> {
    list.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| mlua::Error::runtime(format!("sandbox: no {name} to wrap")))
}

impl Sandbox {
    /// Captures the pristine globals (call before any untrusted code runs)
    /// and adds `overrides` (name, value) to the base set. `pcall`, `xpcall`
    /// and `setmetatable` among the overrides, and `resume`, are wrapped by
    /// `sandbox.lua`; `on_memory_error` is called when a wrapped call caught
    /// a failed allocation (the compute must then stop with `MemoryLimit`);
    /// `stop` is the prelude's stop table (`reason` set once stopped).
    pub fn new(
        lua: &Lua,
        overrides: Vec<(&'static str, mlua::Value)>,
        resume: Function,
        on_memory_error: Function,
        stop: Table,
    ) -> mlua::Result<Sandbox> {
        let g = lua.globals();
        let wrapped: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=luapool-sandbox")
            .call((
                take(&overrides, "pcall")?,
                take(&overrides, "xpcall")?,
                resume,
                take(&overrides, "setmetatable")?,
                on_memory_error,
                stop,
            ))?;
        let mut base: Vec<(&'static str, mlua::Value)> = BASE
            .iter()
            .map(|n| Ok((*n, g.raw_get(*n)?)))
            .collect::<mlua::Result<_>>()?;
        for (name, v) in overrides {
            let v = match name {
                "pcall" | "xpcall" | "setmetatable" => wrapped.raw_get(name)?,
                _ => v,
            };
            base.push((name, v));
        }
        let resume: Function = wrapped.raw_get("resume")?;
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
            if *name == "coroutine" {
                lib.raw_set("resume", resume.clone())?;
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
        Ok(Sandbox {
            base: base_table,
            libs,
            new_env: wrapped.raw_get("new_env")?,
        })
    }

    /// A fresh global environment with `extra` globals (`_io`, `_home`, …).
    pub fn env(&self, extra: &[(&str, mlua::Value)]) -> mlua::Result<Table> {
        let env: Table = self.new_env.call((&self.base, &self.libs))?;
        for (name, v) in extra {
            env.raw_set(*name, v.clone())?;
        }
        Ok(env)
    }
}
