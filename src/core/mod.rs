//! Pure logic with a fake clock: no system call, time passed in. The life of one service (its
//! state machine), the schedule and thresholds of one check, and the dependency graph. Each is
//! unit-tested without a process.

pub mod graph;
pub mod health;
pub mod schedule;
pub mod service;
pub mod zone;
