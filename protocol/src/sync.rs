//! Atomics facade (being written).
