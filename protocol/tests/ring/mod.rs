//! Ring tests, one module per concern.

#[cfg(not(luapool_loom))]
mod basic;
#[cfg(not(luapool_loom))]
mod hostile;
#[cfg(luapool_loom)]
mod model;
#[cfg(not(luapool_loom))]
mod process;
#[cfg(not(luapool_loom))]
mod shm;
