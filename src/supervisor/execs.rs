//! Services' execs in flight (start-up pipelining): a service's process is forked and the loop
//! goes on (the next service forks) while the child makes its way to exec. The child's
//! close-on-exec error pipe ([`ExecReport`](crate::os::fork::ExecReport)) is in the poll set;
//! its end of file means the exec happened (the service is `Spawned`: its readiness deadlines,
//! checks and OOM watch start then), an errno that it failed (`SpawnFailed`, with the same
//! reason as ever). Until then the service is STARTING with a pid, its exec not yet known.
//!
//! Nothing may act on a child whose exec is not known: [`Supervisor::settle_exec`] reads the
//! report first (waiting for it, as every start once did) before any other event reaches the
//! service's state machine, before its exit is handled, and before a signal is sent to it. So
//! the state machine sees the same events in the same order as when each start waited for its
//! exec: `Spawned` or `SpawnFailed` first, then whatever came next (a stop, an exit, a signal).
//! A child stuck on its way to exec (a frozen cgroup, a hung file system) holds up only a stop
//! of its own service, where it once held up pidone; a kill (the shutdown budget spent, a
//! second SIGTERM) does not wait for it.
//!
//! Only a service's pre_script and main process start this way: they are what a boot starts
//! by the dozen. The rest wait for their exec at the fork, as before, which keeps them simple:
//! the main program (one child; in single-program mode its exec error is pidone's exit status
//! at once), a `finish` and the `shutdown_scripts` (run one at a time, each waited for anyway),
//! a `post_script` (one per service, once it is up) and exec checks (their runs are periodic,
//! and a run that cannot be started is told apart at once by its errno).

use std::time::Instant;

use rustix::process::Pid;

use super::system::System;
use super::{Id, Owner, Supervisor};
use crate::config::{Kind, Level};
use crate::core::service::{Event, State, Step};
use crate::os::spawn;

impl<S: System> Supervisor<S> {
    /// Reads service `id`'s exec report if one is pending, waiting for it if it is not there
    /// yet, and hands the outcome to the service: `Spawned`, or `SpawnFailed` with the reason.
    pub(super) fn settle_exec(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let Some((step, report)) = svc.exec.take() else {
            return;
        };
        match report.outcome() {
            Ok(()) => self.spawned(id, step, now),
            Err(err) => {
                // The child exits 127 at once: its exit is no service's.
                if let Some(child) = svc.child.take() {
                    self.procs.insert(child.pid, Owner::FailedExec);
                }
                let why = spawn::exec_failure_reason(&err);
                self.apply(id, Event::SpawnFailed(step, why), now);
            }
        }
    }

    /// Settles service `id`'s exec in flight before `event` reaches its state machine. A `Kill`
    /// does not wait for the exec: the child gets SIGKILL first (whether it was about to exec or
    /// not, the service was to be killed), and its report ends with it.
    pub(super) fn settle_exec_before(&mut self, id: Id, event: &Event, now: Instant) {
        let Some(svc) = self.svcs.get(id).filter(|s| s.exec.is_some()) else {
            return;
        };
        match event {
            Event::Spawned(_) | Event::SpawnFailed(..) => return,
            Event::Kill(_) => {
                if let Some(child) = &svc.child {
                    match self.sys.signal(child, libc::SIGKILL) {
                        Ok(()) => {}
                        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(err) => log::warn!("{}: SIGKILL: {err}", svc.spec.name),
                    }
                }
            }
            _ => {}
        }
        self.settle_exec(id, now);
    }

    /// Settles the exec of the service whose child `pid` is, if it is pending: its exit comes
    /// after its exec (or its failure), as it always did.
    pub(super) fn settle_exec_of(&mut self, pid: Pid, now: Instant) {
        if let Some(&Owner::Service(id, _)) = self.procs.get(&pid) {
            let child = self.svcs.get(id).and_then(|s| s.child.as_ref());
            if child.is_some_and(|c| c.pid == pid) {
                self.settle_exec(id, now);
            }
        }
    }

    /// Service `id`'s `step` has exec'd: its state machine hears it, the OOM kills of its cgroup
    /// are followed, and a longrun's ready-level checks begin.
    fn spawned(&mut self, id: Id, step: Step, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let longrun_main = step == Step::Main && svc.spec.kind == Kind::Longrun;
        if let Some(tree) = self.cgroups.as_ref().filter(|_| step == Step::Main) {
            svc.oom = tree.watch(&svc.spec.name);
        }
        self.apply(id, Event::Spawned(step), now);
        let starting = self.svcs.get(id).map(|s| s.life.state) == Some(State::Starting);
        if longrun_main && starting {
            self.arm_checks(id, Level::Ready, now);
        }
    }
}
