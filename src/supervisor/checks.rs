//! Readiness and checks at run time: the notifier of a start (notify fd, sd_notify), the runs
//! of each check, and what their verdicts do to the service.
//!
//! Ready-level checks run from the spawn of the main process until they pass; alive-level
//! checks run while the service is up. Leaving STARTING/RUNNING cancels every run (an exec run's
//! process group is killed) and closes the notifier, so a service that is down costs nothing.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::Pid;

use super::system::System;
use super::{Id, Owner, Phase, Service, Supervisor};
use crate::config::{Level, OnFailure, Probe, ReadyMode};
use crate::core::health::{Check, Verdict};
use crate::core::service::{Event, Recovery, State, later};
use crate::io::notify::Notifier;
use crate::io::probe::{self, NotStarted, Progress, Run};
use crate::os::reap::Exit;
use crate::os::spawn::{self, Forked, Launch, Stdio};

/// What a start hands to the service's process besides its configuration.
#[derive(Default)]
pub(super) struct Handover {
    /// The notify pipe's write end and its number in the service.
    pub notify_fd: Option<(OwnedFd, i32)>,
    /// Extra environment variables (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).
    pub env: Vec<(String, String)>,
    /// Whether the service's secrets are read into the environment: for the main process and
    /// post_script, not for a pre_script, which may be what writes them.
    pub secrets: bool,
    /// The service's main process (not a script): the one a logger pipeline connects.
    pub main: bool,
    /// The service's `listen` sockets go to this process (its main one).
    pub listen: bool,
}

impl Service {
    /// Cancels the runs and schedules of the checks of `level` (all with None). The checks of a
    /// spec replaced at a reload are cancelled before the new spec is set.
    /// Returns the process groups of the exec runs it ended, for the supervisor to kill (their
    /// pids are reaped later and ignored).
    #[must_use]
    pub(super) fn cancel_checks(&mut self, level: Option<Level>) -> Vec<Pid> {
        let mut groups = Vec::new();
        for k in 0..self.spec.checks.len() {
            let of_level = self.spec.checks.get(k).map(|c| c.level);
            if level.is_some_and(|l| Some(l) != of_level) {
                continue;
            }
            if let Some(check) = self.checks.get_mut(k) {
                check.disarm();
            }
            groups.extend(self.abort_run(k));
        }
        groups
    }

    /// Ends check `k`'s run in progress, if any: a connection is closed; an exec run's process
    /// group is returned, to be killed.
    #[must_use]
    pub(super) fn abort_run(&mut self, k: usize) -> Option<Pid> {
        let run = self.runs.get_mut(k)?.take()?;
        match run {
            Run::Exec { pid, .. } => Some(pid),
            Run::Net(_) => None,
        }
    }
}

impl<S: System> Supervisor<S> {
    /// Opens the readiness channel of a longrun about to start.
    pub(super) fn prepare_notify(&mut self, id: Id) -> io::Result<Handover> {
        let Some(svc) = self.svcs.get_mut(id) else {
            return Ok(Handover::default());
        };
        svc.notifier = None;
        svc.notify_status = None;
        svc.main_pid = None;
        svc.notify_state = None;
        svc.watchdog_at = None;
        svc.awaiting_notice = false;
        let mut handover = Handover::default();
        match svc.spec.ready {
            ReadyMode::NotifyFd(n) => {
                let (notifier, write) = Notifier::pipe()?;
                svc.notifier = Some(notifier);
                handover.notify_fd = Some((write, n));
            }
            ReadyMode::SdNotify => {
                let uid = svc
                    .spec
                    .user
                    .as_ref()
                    .map_or_else(|| rustix::process::getuid().as_raw(), |u| u.uid);
                let notifier = Notifier::socket(uid)?;
                if let Notifier::Socket { address, .. } = &notifier {
                    handover
                        .env
                        .push(("NOTIFY_SOCKET".to_string(), address.clone()));
                }
                if let Some(d) = svc.spec.watchdog {
                    handover
                        .env
                        .push(("WATCHDOG_USEC".to_string(), d.as_micros().to_string()));
                }
                svc.notifier = Some(notifier);
            }
            ReadyMode::Exec | ReadyMode::After(_) => return Ok(handover),
        }
        svc.awaiting_notice = true;
        Ok(handover)
    }

    /// The notifier of service `id` has something to read.
    pub(super) fn on_notice(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let Some(notifier) = &svc.notifier else {
            return;
        };
        let notice = notifier.read(svc.child.as_ref().map(|c| c.pid));
        svc.active_at = now;
        if let Some(n) = self.strangers.add(notice.ignored, now) {
            let (name, who) = (&svc.spec.name, &notice.stranger);
            log::warn!("{name}: ignored {n} sd_notify message(s) from {who}: not the service's");
        }
        if let Some(status) = notice.status {
            log::debug!("{}: status: {status:?}", svc.spec.name);
            svc.notify_status = Some(status);
        }
        if notice.main_pid.is_some() {
            svc.main_pid = notice.main_pid;
        }
        if notice.stopping {
            svc.notify_state = Some("stopping");
        } else if notice.reloading {
            svc.notify_state = Some("reloading");
        } else if notice.ready && svc.notify_state == Some("reloading") {
            svc.notify_state = None;
        }
        if let (Some(d), true) = (svc.spec.watchdog, notice.watchdog) {
            if svc.watchdog_at.is_some() {
                svc.watchdog_at = Some(later(now, d));
            }
        }
        if notice.watchdog_trigger && svc.life.state == State::Running {
            svc.watchdog_at = Some(now);
        }
        if notice.eof {
            svc.notifier = None;
        }
        if let Some(more) = notice.extend {
            self.apply(id, Event::AskedForTime(more), now);
        }
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        if !svc.awaiting_notice {
            return;
        }
        if notice.ready {
            svc.awaiting_notice = false;
            self.maybe_ready(id, now);
        } else if notice.eof {
            svc.awaiting_notice = false;
            let n = match svc.spec.ready {
                ReadyMode::NotifyFd(n) => n,
                _ => 0,
            };
            let why = format!("notify fd {n} closed before the readiness newline");
            self.apply(id, Event::NotReady(why), now);
        }
    }

    /// Reports readiness to the state machine once the notifier has spoken and every ready-level
    /// check passes (`ready.after` is the state machine's own deadline).
    fn maybe_ready(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get(id) else {
            return;
        };
        if svc.life.state != State::Starting || svc.awaiting_notice {
            return;
        }
        let checks_pass = svc
            .spec
            .checks
            .iter()
            .zip(&svc.checks)
            .filter(|(spec, _)| spec.level == Level::Ready)
            .all(|(_, c)| c.status == crate::core::health::Status::Passing);
        if checks_pass {
            self.apply(id, Event::Ready, now);
        }
    }

    /// Starts the schedule of every check of `level`.
    pub(super) fn arm_checks(&mut self, id: Id, level: Level, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        for (spec, check) in svc.spec.checks.iter().zip(svc.checks.iter_mut()) {
            if spec.level == level {
                check.arm(spec, now);
            }
        }
    }

    /// The service came up: its ready checks are done, its alive checks begin (not while pidone
    /// shuts down: nothing may restart or stop out of order then).
    pub(super) fn on_up(&mut self, id: Id, now: Instant) {
        self.cancel_checks(id, Some(Level::Ready));
        if self.phase == Phase::Running {
            self.arm_checks(id, Level::Alive, now);
            if let Some(svc) = self.svcs.get_mut(id) {
                svc.watchdog_at = svc.spec.watchdog.map(|d| later(now, d));
                svc.active_at = now;
            }
        }
    }

    /// A running service whose `WATCHDOG=1` is overdue fails as an alive check does (stopped,
    /// then restarted with the backoff).
    pub(super) fn settle_watchdog(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let Some(at) = svc.watchdog_at else {
            return;
        };
        if svc.life.state != State::Running {
            svc.watchdog_at = None;
        } else if now < at {
            self.wake_at(at);
        } else {
            svc.watchdog_at = None;
            let d = crate::config::format_duration(svc.spec.watchdog.unwrap_or_default());
            let why = format!("watchdog: no WATCHDOG=1 within {d}");
            log::warn!("{}: {why}", svc.spec.name);
            self.apply(id, Event::Unhealthy(why, Recovery::Restart), now);
        }
    }

    /// Shutdown begins: alive checks stop, so that none acts on a service that is on its way
    /// down (in dependency order) or turns a clean shutdown into a failure.
    pub(super) fn stop_alive_checks(&mut self) {
        let groups: Vec<Pid> = (self.svcs.values_mut())
            .flat_map(|svc| svc.cancel_checks(Some(Level::Alive)))
            .collect();
        for group in groups {
            self.kill_group(group, libc::SIGKILL);
        }
    }

    /// Cancels service `id`'s checks of `level` (all with None), killing their exec runs.
    pub(super) fn cancel_checks(&mut self, id: Id, level: Option<Level>) {
        let groups = (self.svcs.get_mut(id)).map_or_else(Vec::new, |s| s.cancel_checks(level));
        for group in groups {
            self.kill_group(group, libc::SIGKILL);
        }
    }

    /// The service left STARTING/RUNNING: no more runs, no watchdog; the notifier stays open
    /// while it stops (it may say `STOPPING=1`), until its process has exited.
    pub(super) fn on_down(&mut self, id: Id) {
        self.cancel_checks(id, None);
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        if svc.life.state != State::Stopping {
            svc.notifier = None;
            svc.notify_state = None;
        }
        svc.watchdog_at = None;
        svc.awaiting_notice = false;
    }

    /// Fires the due runs and timeouts of service `id`'s checks and asks to be woken for the next.
    pub(super) fn settle_checks(&mut self, id: Id, now: Instant) {
        for k in 0.. {
            let Some(svc) = self.svcs.get(id) else {
                return;
            };
            let (Some(check), Some(spec)) = (svc.checks.get(k), svc.spec.checks.get(k)) else {
                return;
            };
            if !matches!(svc.life.state, State::Starting | State::Running) {
                return;
            }
            if check.timed_out(now) {
                let timeout = crate::config::format_duration(spec.timeout);
                if let Some(group) = self.svcs.get_mut(id).and_then(|s| s.abort_run(k)) {
                    self.kill_group(group, libc::SIGKILL);
                }
                self.finish_run(id, k, false, format!("timed out after {timeout}"), now);
            } else if check.due(now) {
                self.start_run(id, k, now);
            }
            let check = self.svcs.get(id).and_then(|s| s.checks.get(k));
            if let Some(at) = check.and_then(Check::deadline) {
                self.wake_at(at);
            }
        }
    }

    /// Begins one run of check `k`.
    fn start_run(&mut self, id: Id, k: usize, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let (Some(spec), Some(check)) = (svc.spec.checks.get(k), svc.checks.get_mut(k)) else {
            return;
        };
        check.begin(spec, now);
        let started = match &spec.probe {
            Probe::Exec(argv) => {
                let argv = argv.clone();
                self.launch_check(id, &argv).map(|(child, out)| {
                    self.procs.insert(child.pid, Owner::Check(id, k));
                    Run::Exec {
                        pid: child.pid,
                        out: Some(out),
                        text: Vec::new(),
                    }
                })
            }
            Probe::Tcp { host, port } => probe::connect(host, *port, None).map(Run::Net),
            Probe::Http { host, port, path } => {
                probe::connect(host, *port, Some(path)).map(Run::Net)
            }
        };
        match started {
            Ok(run) => {
                if let Some(slot) = self.svcs.get_mut(id).and_then(|s| s.runs.get_mut(k)) {
                    *slot = Some(run);
                }
            }
            Err(NotStarted { why, ours: false }) => self.finish_run(id, k, false, why, now),
            Err(NotStarted { why, ours: true }) => {
                let Some(svc) = self.svcs.get_mut(id) else {
                    return;
                };
                let (Some(spec), Some(check)) = (svc.spec.checks.get(k), svc.checks.get_mut(k))
                else {
                    return;
                };
                if self.unstarted.add(1, now).is_some() {
                    let (name, check) = (&svc.spec.name, &spec.name);
                    log::warn!("{name}: check {check} not run: {why}; tried again each period");
                }
                check.skip(spec, format!("not run: {why}"), now);
            }
        }
    }

    /// Spawns an exec check as its service would run, its output into a pipe of its own.
    fn launch_check(
        &mut self,
        id: Id,
        argv: &[String],
    ) -> Result<(spawn::Child, OwnedFd), NotStarted> {
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return Err(NotStarted {
                why: "the service is gone".to_string(),
                ours: true,
            });
        };
        let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).and_then(|(r, w)| {
            rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::NONBLOCK)?;
            Ok((r, w))
        });
        let (read, write) = pipe.map_err(|e| NotStarted::new("pipe", e))?;
        let copy = write
            .try_clone()
            .map_err(|e| NotStarted::new("pipe", Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
        let launch = Launch {
            listen: Vec::new(),
            argv,
            env: &spec.env,
            workdir: spec.workdir.as_deref(),
            user: spec.user.as_ref(),
            controls: &spec.controls,
            cgroup: None,
            stdin: None,
            stdout: Stdio::from(write),
            stderr: Stdio::from(copy),
            notify_fd: None,
        };
        match self.sys.launch(launch).and_then(Forked::wait) {
            Ok(child) => Ok((child, read)),
            Err(err) => Err(NotStarted {
                why: format!(
                    "{}: {}",
                    argv.first().map_or("", String::as_str),
                    spawn::exec_failure_reason(&err)
                ),
                ours: Errno::from_io_error(&err).is_some_and(probe::ours),
            }),
        }
    }

    /// Poll said the fd of check `k`'s run is ready.
    pub(super) fn on_probe_ready(&mut self, id: Id, k: usize, now: Instant) {
        let Some(slot) = self.svcs.get_mut(id).and_then(|s| s.runs.get_mut(k)) else {
            return;
        };
        let Some(run) = slot else {
            return;
        };
        if let Progress::Done(ok, text) = run.ready() {
            *slot = None;
            self.finish_run(id, k, ok, text, now);
        }
    }

    /// An exec check's process ended (its group is already killed).
    pub(super) fn on_check_exit(&mut self, id: Id, k: usize, pid: Pid, exit: Exit, now: Instant) {
        let Some(slot) = self.svcs.get_mut(id).and_then(|s| s.runs.get_mut(k)) else {
            return;
        };
        // A run cancelled or timed out earlier: its process is only reaped now.
        let Some(run) = slot
            .as_mut()
            .filter(|r| matches!(r, Run::Exec { pid: p, .. } if *p == pid))
        else {
            return;
        };
        let progress = run.exited(exit);
        *slot = None;
        if let Progress::Done(ok, text) = progress {
            self.finish_run(id, k, ok, text, now);
        }
    }

    /// Records the outcome of a run of check `k` and acts on a change of status.
    fn finish_run(&mut self, id: Id, k: usize, ok: bool, text: String, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let (Some(spec), Some(check)) = (svc.spec.checks.get(k), svc.checks.get_mut(k)) else {
            return;
        };
        if !ok {
            log::debug!("{}: check {} failed: {text:?}", svc.spec.name, spec.name);
        }
        let was_failing = check.status == crate::core::health::Status::Failing;
        let verdict = check.finish(spec, ok, text, now);
        let name = format!("{}: check {}", svc.spec.name, spec.name);
        let (level, on_failure) = (spec.level, spec.on_failure);
        let failures = check.failures;
        let check_name = spec.name.clone();
        if verdict != Verdict::Unchanged {
            let status = check.status.as_str();
            let message = format!("{name} is {status} ({failures} failures in a row)");
            let mut event =
                crate::control::wire::Event::new("check", Some(&svc.spec.name), message);
            (event.check, event.state) = (Some(check_name.clone()), Some(status));
            self.emit(event, now);
        }
        match (verdict, level) {
            (Verdict::Unchanged, _) => {}
            (Verdict::Passed, Level::Ready) => {
                if let Some(check) = self.svcs.get_mut(id).and_then(|s| s.checks.get_mut(k)) {
                    check.disarm();
                }
                log::debug!("{name} passed");
                self.maybe_ready(id, now);
            }
            (Verdict::Passed, Level::Alive) if was_failing => log::info!("{name} passes again"),
            (Verdict::Passed, Level::Alive) => log::debug!("{name} passes"),
            (Verdict::Failed, Level::Ready) => {
                log::warn!("{name} failed {failures} times in a row; still waiting");
            }
            (Verdict::Failed, Level::Alive) => {
                let why = format!("check {check_name} failed {failures} times in a row");
                match on_failure {
                    OnFailure::Restart => {
                        self.apply(id, Event::Unhealthy(why, Recovery::Restart), now)
                    }
                    OnFailure::Stop => self.apply(id, Event::Unhealthy(why, Recovery::Fail), now),
                    OnFailure::Shutdown => {
                        log::error!("{name} failed {failures} times in a row: shutting down");
                        self.required_failure.get_or_insert(1);
                        self.begin_shutdown(now);
                    }
                    OnFailure::Ignore => log::warn!("{name} failed {failures} times in a row"),
                }
            }
        }
    }
}
