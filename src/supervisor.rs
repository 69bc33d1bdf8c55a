//! The main loop: one `poll()` over the signal self-pipe and the children's pidfds, with the
//! earliest deadline as its timeout. Each turn drains signals, reaps, fires what is due, and checks
//! whether pidone is done. Nothing wakes pidone up when nothing is due.
//!
//! In single-program mode the life of pidone has three phases:
//! - **Running**: the main program runs; signals are forwarded to it; orphans are reaped.
//! - **Draining**: the main program has ended; everything else still running that pidone reaps
//!   (its process group, orphans) got `SIGTERM`; pidone waits for them until the grace deadline.
//! - **Killing**: the grace period is over (or a second TERM/INT came): `SIGKILL` to whatever is
//!   left, repeated for late orphans, until pidone has no child at all.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::procfs;
use crate::reap::{self, Children, Exit};
use crate::signals::{self, Signals};
use crate::spawn::{self, Child};
use crate::sys;

/// How single-program mode behaves: the knobs of the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Forward signals to the whole process group of the main program.
    pub group: bool,
    /// Time given to stragglers between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Exit codes reported as 0.
    pub map_exit: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining { kill_at: Instant },
    Killing { give_up_at: Instant },
}

/// pidone as the init of one program.
pub struct Supervisor {
    signals: Signals,
    options: Options,
    /// True when pidone is PID 1 of its namespace; else it is a child subreaper.
    pid1: bool,
    main: Option<Child>,
    /// The main program's process group (its pid), signalled with the stragglers.
    main_group: Option<Pid>,
    main_exit: Option<Exit>,
    phase: Phase,
    /// Stragglers already sent SIGTERM (subreaper mode), so a rescan does not repeat it.
    termed: HashSet<Pid>,
    /// Orphans reaped so far (not the main program).
    orphans_reaped: u64,
}

impl Supervisor {
    /// Takes over signals and, when pidone is not PID 1, registers as child subreaper. Start-up
    /// errors here are fatal: nothing runs yet.
    pub fn new(options: Options) -> io::Result<Supervisor> {
        let signals = Signals::install()?;
        let pid1 = rustix::process::getpid().is_init();
        if !pid1 {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
            log::debug!("not PID 1: registered as child subreaper, orphans of the child come here");
        }
        Ok(Supervisor {
            signals,
            options,
            pid1,
            main: None,
            main_group: None,
            main_exit: None,
            phase: Phase::Running,
            termed: HashSet::new(),
            orphans_reaped: 0,
        })
    }

    /// Runs `program` to its end and everything it left behind to theirs; returns pidone's exit
    /// status.
    pub fn run(mut self, program: &[OsString]) -> i32 {
        match spawn::spawn(program, self.signals.saved()) {
            Ok(child) => {
                log::debug!(
                    "started {:?} as pid {}",
                    program[0],
                    child.pid.as_raw_nonzero()
                );
                self.main_group = Some(child.pid);
                self.main = Some(child);
            }
            Err(err) => {
                let name = program
                    .first()
                    .map(|p| p.to_string_lossy())
                    .unwrap_or_default();
                log::error!("{name}: {}", spawn::exec_failure_reason(&err));
                return spawn::exec_failure_code(&err);
            }
        }
        loop {
            self.wait_for_events();
            for sig in self.signals.pending() {
                self.on_signal(sig);
            }
            let children = reap::reap(|pid, exit| self.on_exit(pid, exit));
            self.on_reaped(children, Instant::now());
            if let Some(code) = self.finished(children) {
                return code;
            }
        }
    }

    /// Sleeps in poll() until a signal, a child's exit, or the next deadline.
    fn wait_for_events(&self) {
        let timeout = self.deadline().map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        let signal_fd = self.signals.fd();
        let mut fds = vec![PollFd::new(&signal_fd, PollFlags::IN)];
        if let Some(fd) = self.main.as_ref().and_then(Child::pidfd) {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => log::error!("poll: {err}"),
        }
    }

    /// The earliest instant at which something is due, if any.
    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => None,
            Phase::Draining { kill_at } => Some(kill_at),
            Phase::Killing { give_up_at } => Some(give_up_at),
        }
    }

    fn on_signal(&mut self, sig: i32) {
        if sig == libc::SIGCHLD {
            return; // Reaping follows every wakeup anyway.
        }
        match (&self.main, self.phase) {
            (Some(main), _) => {
                let sent = if self.options.group {
                    main.signal_group(sig)
                } else {
                    main.signal(sig)
                };
                match sent {
                    Ok(()) => log::debug!("forwarded {} to the child", signals::name(sig)),
                    Err(err) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
                    Err(err) => log::warn!("forwarding {}: {err}", signals::name(sig)),
                }
            }
            (None, Phase::Draining { .. }) if sig == libc::SIGTERM || sig == libc::SIGINT => {
                log::debug!(
                    "{} while draining: killing what is left",
                    signals::name(sig)
                );
                self.kill_stragglers(Instant::now());
            }
            (None, _) => log::debug!("ignored {}: the child is gone", signals::name(sig)),
        }
    }

    fn on_exit(&mut self, pid: Pid, exit: Exit) {
        if self.main.as_ref().is_some_and(|m| m.pid == pid) {
            log::debug!("child {} ended: {exit}", pid.as_raw_nonzero());
            self.main = None;
            self.main_exit = Some(exit);
        } else {
            self.orphans_reaped += 1;
            log::trace!("reaped orphan {}: {exit}", pid.as_raw_nonzero());
        }
    }

    /// After a reap: enter Draining when the main program is gone, and keep signalling orphans
    /// that appeared since (their parent died).
    fn on_reaped(&mut self, children: Children, now: Instant) {
        if self.main.is_some() || children == Children::None {
            return;
        }
        match self.phase {
            Phase::Running => {
                log::debug!("stopping what the child left behind");
                self.phase = Phase::Draining {
                    kill_at: now + self.options.grace,
                };
                self.signal_stragglers(libc::SIGTERM);
            }
            Phase::Draining { kill_at } if now >= kill_at => self.kill_stragglers(now),
            Phase::Draining { .. } => self.signal_stragglers(libc::SIGTERM),
            Phase::Killing { .. } => self.signal_stragglers(libc::SIGKILL),
        }
    }

    fn kill_stragglers(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Killing { .. }) {
            log::debug!("grace period over: SIGKILL to what is left");
        }
        self.phase = Phase::Killing {
            give_up_at: now + self.options.grace,
        };
        self.signal_stragglers(libc::SIGKILL);
    }

    /// Sends `sig` to everything still running that pidone reaps. As PID 1 that is every process
    /// of the namespace; as a subreaper, the main program's process group and pidone's children.
    fn signal_stragglers(&mut self, sig: i32) {
        if self.pid1 {
            match sys::kill_everything(sig) {
                Ok(()) => {}
                Err(err) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
                Err(err) => log::warn!("kill(-1, {}): {err}", signals::name(sig)),
            }
            return;
        }
        if let (Some(group), Some(s)) = (self.main_group, sys::signal(sig)) {
            match rustix::process::kill_process_group(group, s) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(err) => log::warn!(
                    "kill(-{}, {}): {err}",
                    group.as_raw_nonzero(),
                    signals::name(sig)
                ),
            }
        }
        for pid in procfs::children_of(rustix::process::getpid()) {
            if sig == libc::SIGTERM && !self.termed.insert(pid) {
                continue;
            }
            if let Some(s) = sys::signal(sig) {
                match rustix::process::kill_process(pid, s) {
                    Ok(()) | Err(Errno::SRCH) => {}
                    Err(err) => log::warn!(
                        "kill({}, {}): {err}",
                        pid.as_raw_nonzero(),
                        signals::name(sig)
                    ),
                }
            }
        }
    }

    /// pidone's exit status once nothing is left, else None.
    fn finished(&mut self, children: Children) -> Option<i32> {
        let exit = self.main_exit?;
        let done = match self.phase {
            _ if children == Children::None => true,
            Phase::Killing { give_up_at } if Instant::now() >= give_up_at => {
                log::warn!(
                    "processes survived SIGKILL for {:?}; exiting anyway",
                    self.options.grace
                );
                true
            }
            _ => false,
        };
        if !done {
            return None;
        }
        log::debug!("{} orphans reaped", self.orphans_reaped);
        let code = exit.code();
        Some(if self.options.map_exit.contains(&code) {
            0
        } else {
            code
        })
    }
}
