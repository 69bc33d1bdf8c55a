//! The operating system: the system-call wrappers of pidone and all but two of its `unsafe`
//! blocks (`argv` in main.rs, `NOTIFY_SOCKET` in supervisor/mod.rs) live here, and no policy
//! does. Signals and their signalfd, spawning with the inherited signal state
//! restored, reaping, the little read from /proc, the image's users and groups, and the
//! descriptor helpers of `sys`. `fork` is the fork and exec of every child, by hand rather than
//! through `std::process` (smaller).

pub mod cgroup;
pub mod companion;
pub mod controls;
pub mod fork;
pub mod listen;
pub mod procfs;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod sys;
// The image's users matter to services only: the init-only build has none.
#[cfg(feature = "services")]
pub mod users;
