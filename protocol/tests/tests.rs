//! Integration tests of `luapool-protocol`'s ring (one test binary).
//!
//! Normal builds run the behaviour, cross-process and hostile-peer tests;
//! under `--cfg luapool_loom` only the loom model tests (`loom_*`) exist.

mod ring;
