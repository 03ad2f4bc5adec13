//! The shared-memory ring (being written).
