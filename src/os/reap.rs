//! Reaping: one `waitpid(-1, WNOHANG)` loop per wakeup collects every child that has ended,
//! pidone's own and every orphan re-parented to it. Two children dying together deliver a single
//! `SIGCHLD`, so the loop always runs until the kernel says there is nothing left to collect.

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions, WaitStatus, wait};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// The kernel's OOM killer killed it (SIGKILL; known from its cgroup's `memory.events`).
    OutOfMemory,
}

impl Exit {
    fn from_wait(status: WaitStatus) -> Option<Exit> {
        if let Some(code) = status.exit_status() {
            Some(Exit::Code(code))
        } else {
            status.terminating_signal().map(Exit::Signal)
        }
    }

    /// The shell's convention, which pidone's own exit status follows: the exit code, or
    /// 128 + N for a death by signal N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(code) => code,
            Exit::Signal(sig) => 128 + sig,
            Exit::OutOfMemory => 128 + libc::SIGKILL,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(sig) => write!(f, "signal {}", crate::os::signals::name(*sig)),
            Exit::OutOfMemory => write!(f, "signal KILL from the OOM killer"),
        }
    }
}

/// What the reap loop found besides ended children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Children {
    /// Some children are still running.
    Remain,
    /// pidone has no child left at all (`ECHILD`).
    None,
    /// [`REAPS_PER_CALL`] children were collected and more may be waiting: call again soon,
    /// after the loop has looked at its signals.
    More,
}

/// The most children one call collects, so that a flood of orphans cannot keep the loop from
/// its signals and deadlines for long.
pub const REAPS_PER_CALL: usize = 1024;

/// Collects ended children, calling `ended` for each, until none is left to collect now or
/// [`REAPS_PER_CALL`] were collected.
pub fn reap(mut ended: impl FnMut(Pid, Exit)) -> Children {
    let mut reaped = 0;
    loop {
        if reaped == REAPS_PER_CALL {
            return Children::More;
        }
        match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if let Some(exit) = Exit::from_wait(status) {
                    reaped += 1;
                    ended(pid, exit);
                }
            }
            Ok(None) => return Children::Remain,
            Err(Errno::CHILD) => return Children::None,
            Err(Errno::INTR) => continue,
            Err(err) => {
                // waitpid(-1, WNOHANG) documents no other error; keep the loop alive anyway.
                log::error!("waitpid: {err}");
                return Children::Remain;
            }
        }
    }
}
