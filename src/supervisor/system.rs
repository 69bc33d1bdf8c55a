//! The system-call seam of the supervisor: every process the glue starts, signals or reaps goes
//! through [`System`]. [`Real`] does it (spawn, kill, waitpid, /proc); the glue's unit tests put
//! a fake in its place that records what was asked and hands out made-up pids, so that shutdown
//! order, requests and reloads are tested with a fake clock and no process at all.
//!
//! The clock is not here: every glue function takes `now`, and only the loop reads the time.

use std::ffi::OsString;
use std::io;

use rustix::io::Errno;
use rustix::process::Pid;

use crate::os::procfs;
use crate::os::reap::{self, Children, Exit};
use crate::os::signals::Signals;
use crate::os::spawn::{self, Child, Forked, Launch};
use crate::os::sys;

/// What the supervisor asks of the operating system about processes.
pub trait System {
    /// Starts a service's process (or an exec check) as `launch` describes; returns once it is
    /// forked, its exec's outcome to be read from the [`Forked`] (or waited for).
    fn launch(&mut self, launch: Launch<'_>) -> io::Result<Forked>;
    /// Starts the main program in a process group of its own.
    fn spawn(&mut self, argv: &[OsString]) -> io::Result<Child>;
    /// Sends `sig` to one child.
    fn signal(&mut self, child: &Child, sig: i32) -> io::Result<()>;
    /// Sends `sig` to process group `group`.
    fn kill_group(&mut self, group: Pid, sig: i32) -> Result<(), Errno>;
    /// Sends `sig` to one process.
    fn kill(&mut self, pid: Pid, sig: i32) -> Result<(), Errno>;
    /// Sends `sig` to every process but pidone (`kill(-1)`, as PID 1).
    fn kill_everything(&mut self, sig: i32) -> io::Result<()>;
    /// pidone's children that are still there (subreaper mode).
    fn children(&mut self) -> Vec<Pid>;
    /// Reaps every child that has ended, without waiting; says whether any is left.
    fn reap(&mut self, on_exit: &mut dyn FnMut(Pid, Exit)) -> Children;
}

/// The real thing, holding the signal state that children must get back before exec.
pub struct Real {
    pub signals: Signals,
    /// Sockets were passed to pidone (`LISTEN_FDS`): the main program gets them, with its own
    /// pid as `LISTEN_PID`.
    pub listen_pid: bool,
}

impl System for Real {
    fn launch(&mut self, launch: Launch<'_>) -> io::Result<Forked> {
        spawn::launch(launch, self.signals.saved())
    }

    fn spawn(&mut self, argv: &[OsString]) -> io::Result<Child> {
        spawn::spawn(argv, self.signals.saved(), self.listen_pid)
    }

    fn signal(&mut self, child: &Child, sig: i32) -> io::Result<()> {
        child.signal(sig)
    }

    fn kill_group(&mut self, group: Pid, sig: i32) -> Result<(), Errno> {
        let s = sys::signal(sig).ok_or(Errno::INVAL)?;
        rustix::process::kill_process_group(group, s)
    }

    fn kill(&mut self, pid: Pid, sig: i32) -> Result<(), Errno> {
        let s = sys::signal(sig).ok_or(Errno::INVAL)?;
        rustix::process::kill_process(pid, s)
    }

    fn kill_everything(&mut self, sig: i32) -> io::Result<()> {
        sys::kill_everything(sig)
    }

    fn children(&mut self) -> Vec<Pid> {
        procfs::children_of(rustix::process::getpid())
    }

    fn reap(&mut self, on_exit: &mut dyn FnMut(Pid, Exit)) -> Children {
        reap::reap(on_exit)
    }
}
