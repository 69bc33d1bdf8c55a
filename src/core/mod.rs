//! Pure logic with a fake clock: no system call, time passed in. The life of one service (its
//! state machine), the schedule and thresholds of one check, and the dependency graph. Each is
//! unit-tested without a process. `duration` reads durations as written (`1m30s`); the init-only
//! build keeps it and the other modules that need no configuration.

pub mod duration;
pub mod graph;
#[cfg(feature = "services")]
pub mod health;
pub mod schedule;
#[cfg(feature = "services")]
pub mod service;
pub mod zone;
