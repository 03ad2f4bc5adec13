//! The contracts of `docs/lua-semantics.md`, point by point, in real
//! worker processes: the external tables (`tables.rs`), the session
//! (`sessions.rs`: homes, fresh globals, print) and the host-side
//! conversions (`host_values.rs`).

mod host_values;
mod sessions;
mod tables;

/// The error message of a compute that must fail.
fn lua_error(s: &luapool_supervisor::Session, code: &str) -> String {
    match s.compute(code) {
        Err(luapool_supervisor::ComputeError::LuaError { message, .. }) => message,
        other => panic!("expected a Lua error from:\n{code}\ngot {other:?}"),
    }
}
