//! pidone's duties as init: the main program, signals (forwarded, or shutdown and reload in
//! services mode), the phases of the end (stopping, draining, killing), the stragglers, and the
//! exit status.

use std::ffi::OsString;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::Pid;

use super::system::System;
use super::{KILL_WAIT, Phase, Supervisor};
use crate::core::service::{Event, State, later};
use crate::os::reap::Children;
use crate::os::signals;
use crate::os::spawn;

impl<S: System> Supervisor<S> {
    pub(super) fn start_main(&mut self, argv: &[OsString]) -> Result<(), i32> {
        match self.sys.spawn(argv) {
            Ok(child) => {
                log::debug!("started {argv:?} as pid {}", child.pid.as_raw_nonzero());
                self.main_group = Some(child.pid);
                self.main = Some(child);
                Ok(())
            }
            Err(err) => Err(spawn::exec_failed(argv, &err)),
        }
    }

    pub(super) fn on_signal(&mut self, sig: i32, now: Instant) {
        if sig == libc::SIGCHLD {
            return; // Reaping follows every wakeup anyway.
        }
        let stopping = !matches!(self.phase, Phase::Running);
        if self.services_mode && (sig == libc::SIGTERM || sig == libc::SIGINT) {
            if stopping {
                log::warn!("second {}: killing everything now", signals::name(sig));
                self.kill_all(now, "killed: a second SIGTERM or SIGINT");
            } else {
                log::info!("{}: shutting down", signals::name(sig));
                self.begin_shutdown(now);
            }
            return;
        }
        if self.services_mode && sig == libc::SIGHUP {
            match self.reload(now) {
                Ok(_) => {}
                Err(errors) => {
                    log::error!("SIGHUP: configuration refused, the old one keeps running:");
                    for err in errors {
                        log::error!("  {err}");
                    }
                }
            }
            return;
        }
        if signals::forwarded(sig, self.signal_main(sig), stopping) {
            self.kill_all(now, "killed: a second SIGTERM or SIGINT");
        }
    }

    /// Begins the ordered shutdown: the main program first, then services once their dependents
    /// are down; the shutdown budget starts.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let end = later(now, self.global_shutdown);
        // Single-program mode has no budget: the program's own exit ends it, `--grace` bounds
        // its stragglers.
        self.budget_end = self.services_mode.then_some(end);
        self.phase = Phase::Stopping { cap: end };
        let event = crate::control::wire::Event::new("shutdown", None, "shutting down".into());
        self.emit(event, now);
        self.main_argv = None;
        self.stop_alive_checks();
        if let Some(Err(err)) = self.signal_main(libc::SIGTERM) {
            log::debug!("SIGTERM to the main program: {err}");
        }
    }

    /// Everything configured is down: SIGTERM to whatever is left, SIGKILL after the grace
    /// period or when the shutdown budget is spent, whichever comes first.
    pub(super) fn begin_draining(&mut self, now: Instant) {
        log::debug!("stopping what is left behind");
        let grace = later(now, self.options.grace);
        self.phase = Phase::Draining {
            kill_at: self.budget_end.map_or(grace, |end| grace.min(end)),
        };
        self.signal_stragglers(libc::SIGTERM);
    }

    /// SIGKILL to every service (`why` becomes its reason), the main program and every
    /// straggler. pidone gives up waiting for them after the grace period, or [`KILL_WAIT`] after
    /// the shutdown budget, whichever comes first.
    pub(super) fn kill_all(&mut self, now: Instant, why: &str) {
        let active: Vec<_> = (self.svcs.iter())
            .filter(|(_, s)| s.life.is_active())
            .map(|(id, _)| id)
            .collect();
        for id in active {
            self.apply(id, Event::Kill(why.to_string()), now);
        }
        if let Some(main) = self.main.as_ref().map(|m| m.pid) {
            self.kill_group(main, libc::SIGKILL);
        }
        let grace = later(now, self.options.grace);
        let budget = self.budget_end.map(|end| later(end.max(now), KILL_WAIT));
        self.phase = Phase::Killing {
            give_up_at: budget.map_or(grace, |b| grace.min(b)),
        };
        self.signal_stragglers(libc::SIGKILL);
    }

    /// After a reap: keep signalling orphans that appeared since their parent died, and fire the
    /// grace deadline.
    pub(super) fn on_reaped(&mut self, children: Children, now: Instant) {
        if children == Children::None {
            return;
        }
        match self.phase {
            Phase::Draining { kill_at } if now >= kill_at => {
                log::debug!("grace period over: SIGKILL to what is left");
                self.kill_all(now, "killed: grace period over");
            }
            Phase::Draining { .. } => self.signal_stragglers(libc::SIGTERM),
            Phase::Killing { .. } => self.signal_stragglers(libc::SIGKILL),
            Phase::Running | Phase::Stopping { .. } => {}
        }
    }

    /// Sends `sig` to everything still running that pidone reaps. As PID 1 that is every process
    /// of the namespace; as a subreaper, the main program's process group and pidone's children.
    pub(super) fn signal_stragglers(&mut self, sig: i32) {
        if self.pid1 {
            match self.sys.kill_everything(sig) {
                Ok(()) => {}
                Err(err) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
                Err(err) => log::warn!("kill(-1, {}): {err}", signals::name(sig)),
            }
            return;
        }
        if let Some(group) = self.main_group {
            self.kill_group(group, sig);
        }
        for pid in self.sys.children() {
            if sig == libc::SIGTERM && !self.termed.insert(pid) {
                continue;
            }
            match self.sys.kill(pid, sig) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(err) => log::warn!(
                    "kill({}, {}): {err}",
                    pid.as_raw_nonzero(),
                    signals::name(sig)
                ),
            }
        }
    }

    /// pidone's exit status once nothing is left, else None.
    pub(super) fn finished(&mut self, now: Instant) -> Option<i32> {
        let give_up = match self.phase {
            Phase::Running | Phase::Stopping { .. } => return None,
            Phase::Draining { .. } => false,
            Phase::Killing { give_up_at } => now >= give_up_at,
        };
        if !give_up {
            let mut ended = Vec::new();
            let left = self.sys.reap(&mut |pid, exit| ended.push((pid, exit)));
            self.more_to_reap = left == Children::More;
            for (pid, exit) in ended {
                self.on_exit(pid, exit, now);
            }
            if left != Children::None {
                return None;
            }
        }
        if give_up {
            log::warn!("processes survived SIGKILL; exiting anyway");
        }
        log::debug!("{} orphans reaped", self.orphans_reaped);
        let code = if let Some(exit) = self.main_exit {
            exit.code()
        } else if let Some(code) = self.required_failure {
            code
        } else if (self.svcs.iter())
            .any(|(_, s)| s.life.state == State::Failed && s.spec.timer.is_none())
        {
            1
        } else {
            0
        };
        // s6-overlay: the number a script (or CMD's end) left in the exit-code file.
        #[cfg(feature = "s6")]
        let code = self.overlay_exit_code().unwrap_or(code);
        Some(if self.options.map_exit.contains(&code) {
            0
        } else {
            code
        })
    }

    /// Sends `sig` to process group `group`; a group already gone is fine.
    pub(super) fn kill_group(&mut self, group: Pid, sig: i32) {
        match self.sys.kill_group(group, sig) {
            Ok(()) | Err(Errno::SRCH) => {}
            Err(err) => log::warn!(
                "kill(-{}, {}): {err}",
                group.as_raw_nonzero(),
                signals::name(sig)
            ),
        }
    }

    /// Sends `sig` to the main program, or its whole group with `--group`.
    fn signal_main(&mut self, sig: i32) -> Option<std::io::Result<()>> {
        let main = self.main.as_ref()?;
        Some(if self.options.group {
            self.sys
                .kill_group(main.pid, sig)
                .map_err(std::io::Error::from)
        } else {
            self.sys.signal(main, sig)
        })
    }
}
