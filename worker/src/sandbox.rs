//! The sandboxed global environment. Each compute gets a fresh one: the base
//! functions and copies of the allowed libraries, minus everything that
//! reaches outside the worker (no `io`, `os` only for time, no `require`,
//! `dofile`, `loadfile`, `debug`, `string.dump`; `load` is text-only;
//! `collectgarbage` only counts; the string metatable is locked).

use mlua::{Function, Lua, Table};

/// Base functions copied as they are.
const BASE: &[&str] = &[
    "assert", "error", "ipairs", "pairs", "select", "tonumber", "tostring", "type", "rawequal", "rawget", "rawset",
    "rawlen", "_VERSION",
];
/// Libraries copied per compute, with the functions they keep (`None`: all).
const LIBS: &[(&str, Option<&[&str]>)] = &[
    ("string", None),
    ("table", None),
    ("math", None),
    ("utf8", None),
    ("coroutine", None),
    ("os", Some(&["clock", "time", "date", "difftime"])),
];

/// The pieces every compute's environment is built from.
pub struct Sandbox {
    base: Vec<(&'static str, mlua::Value)>,
    libs: Vec<(&'static str, Table)>,
    env_wrappers: Function,
}

impl Sandbox {
    /// Captures the pristine globals (call before any untrusted code runs)
    /// and adds `overrides` (name, value) to the base set.
    pub fn new(lua: &Lua, overrides: Vec<(&'static str, mlua::Value)>, resume: Function) -> mlua::Result<Sandbox> {
        let g = lua.globals();
        let mut base: Vec<(&'static str, mlua::Value)> = BASE.iter().map(|n| Ok((*n, g.raw_get(*n)?))).collect::<mlua::Result<_>>()?;
        base.extend(overrides);
        let mut libs = Vec::new();
        for (name, keep) in LIBS {
            let orig: Table = g.raw_get(*name)?;
            let lib = lua.create_table()?;
            for pair in orig.pairs::<mlua::Value, mlua::Value>() {
                let (k, v) = pair?;
                let keep_it = match (keep, &k) {
                    (Some(names), mlua::Value::String(s)) => names.iter().any(|n| s.as_bytes() == n.as_bytes()),
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
            libs.push((*name, lib));
        }
        // Lock the string metatable: `getmetatable("")` no longer hands out
        // the shared string library that every compute's methods use.
        lua.load("getmetatable('').__metatable = false").set_name("=luapool-sandbox").exec()?;
        let env_wrappers: Function = lua.load(include_str!("sandbox.lua")).set_name("=luapool-sandbox").call(())?;
        Ok(Sandbox { base, libs, env_wrappers })
    }

    /// A fresh global environment with `extra` globals (`_io`, `_home`, …).
    pub fn env(&self, lua: &Lua, extra: &[(&str, mlua::Value)]) -> mlua::Result<Table> {
        let env = lua.create_table_with_capacity(0, 40)?;
        for (name, v) in &self.base {
            env.raw_set(*name, v.clone())?;
        }
        for (name, lib) in &self.libs {
            let copy = lua.create_table_with_capacity(0, 32)?;
            for pair in lib.pairs::<mlua::Value, mlua::Value>() {
                let (k, v) = pair?;
                copy.raw_set(k, v)?;
            }
            env.raw_set(*name, copy)?;
        }
        let (load, collect): (Function, Function) = self.env_wrappers.call(env.clone())?;
        env.raw_set("load", load)?;
        env.raw_set("collectgarbage", collect)?;
        env.raw_set("_G", env.clone())?;
        for (name, v) in extra {
            env.raw_set(*name, v.clone())?;
        }
        Ok(env)
    }
}
