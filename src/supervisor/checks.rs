//! Readiness and checks at run time: the notifier of a start (notify fd, sd_notify), the runs
//! of each check, and what their verdicts do to the service.
//!
//! Ready-level checks run from the spawn of the main process until they pass; alive-level
//! checks run while the service is up. Leaving STARTING/RUNNING cancels every run (an exec run's
//! process group is killed) and closes the notifier, so a service that is down costs nothing.

use std::io;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::Pid;

use super::{Owner, Phase, Supervisor, Svc, kill_group};
use crate::config::{Level, OnFailure, Probe, ReadyMode};
use crate::graph::ServiceId;
use crate::health::Verdict;
use crate::notify::Notifier;
use crate::probe::{self, NotStarted, Progress, Run};
use crate::reap::Exit;
use crate::service::{Event, Recovery, State};
use crate::spawn::{self, Launch};

/// What a start hands to the service's process besides its configuration.
#[derive(Default)]
pub(super) struct Handover {
    /// The notify pipe's write end and its number in the service.
    pub notify_fd: Option<(OwnedFd, i32)>,
    /// An extra environment variable (`NOTIFY_SOCKET`).
    pub env: Option<(String, String)>,
}

impl Svc {
    /// Cancels the runs and schedules of the checks of `level` (all with None). The checks of a
    /// spec replaced at a reload are cancelled before the new spec is set.
    pub(super) fn cancel_checks(&mut self, level: Option<Level>) {
        for k in 0..self.spec.checks.len() {
            if level.is_some_and(|l| l != self.spec.checks[k].level) {
                continue;
            }
            if let Some(check) = self.checks.get_mut(k) {
                check.disarm();
            }
            self.abort_run(k);
        }
    }

    /// Ends check `k`'s run in progress, if any: an exec run's process group is killed (its pid
    /// is reaped later and ignored), a connection is closed.
    fn abort_run(&mut self, k: usize) {
        if let Some(Some(Run::Exec { pid, .. })) = self.runs.get(k) {
            kill_group(*pid, libc::SIGKILL);
        }
        if let Some(run) = self.runs.get_mut(k) {
            *run = None;
        }
    }
}

impl Supervisor {
    /// Opens the readiness channel of a longrun about to start.
    pub(super) fn prepare_notify(&mut self, id: ServiceId) -> io::Result<Handover> {
        let svc = &mut self.svcs[id.0];
        svc.notifier = None;
        svc.notify_status = None;
        svc.main_pid = None;
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
                    handover.env = Some(("NOTIFY_SOCKET".to_string(), address.clone()));
                }
                svc.notifier = Some(notifier);
            }
            ReadyMode::Exec | ReadyMode::After(_) => return Ok(handover),
        }
        svc.awaiting_notice = true;
        Ok(handover)
    }

    /// The notifier of service `id` has something to read.
    pub(super) fn on_notice(&mut self, id: ServiceId, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id.0) else {
            return;
        };
        let Some(notifier) = &svc.notifier else {
            return;
        };
        let notice = notifier.read(svc.child.as_ref().map(|c| c.pid));
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
        if notice.eof {
            svc.notifier = None;
        }
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
    fn maybe_ready(&mut self, id: ServiceId, now: Instant) {
        let svc = &self.svcs[id.0];
        if svc.rt.state != State::Starting || svc.awaiting_notice {
            return;
        }
        let checks_pass = svc
            .spec
            .checks
            .iter()
            .zip(&svc.checks)
            .filter(|(spec, _)| spec.level == Level::Ready)
            .all(|(_, c)| c.status == crate::health::Status::Passing);
        if checks_pass {
            self.apply(id, Event::Ready, now);
        }
    }

    /// Starts the schedule of every check of `level`.
    pub(super) fn arm_checks(&mut self, id: ServiceId, level: Level, now: Instant) {
        let svc = &mut self.svcs[id.0];
        for (spec, check) in svc.spec.checks.iter().zip(svc.checks.iter_mut()) {
            if spec.level == level {
                check.arm(spec, now);
            }
        }
    }

    /// The service came up: its ready checks are done, its alive checks begin (not while pidone
    /// shuts down: nothing may restart or stop out of order then).
    pub(super) fn on_up(&mut self, id: ServiceId, now: Instant) {
        self.svcs[id.0].cancel_checks(Some(Level::Ready));
        if self.phase == Phase::Running {
            self.arm_checks(id, Level::Alive, now);
        }
    }

    /// Shutdown begins: alive checks stop, so that none acts on a service that is on its way
    /// down (in dependency order) or turns a clean shutdown into a failure.
    pub(super) fn stop_alive_checks(&mut self) {
        for svc in &mut self.svcs {
            svc.cancel_checks(Some(Level::Alive));
        }
    }

    /// The service left STARTING/RUNNING: no more runs, no notifier.
    pub(super) fn on_down(&mut self, id: ServiceId) {
        let svc = &mut self.svcs[id.0];
        svc.cancel_checks(None);
        svc.notifier = None;
        svc.awaiting_notice = false;
    }

    /// Fires the due runs and timeouts of service `id`'s checks and asks to be woken for the next.
    pub(super) fn settle_checks(&mut self, id: ServiceId, now: Instant) {
        for k in 0..self.svcs[id.0].checks.len() {
            let svc = &self.svcs[id.0];
            if !matches!(svc.rt.state, State::Starting | State::Running) {
                return;
            }
            let check = &svc.checks[k];
            if check.timed_out(now) {
                let timeout = crate::config::format_duration(svc.spec.checks[k].timeout);
                self.svcs[id.0].abort_run(k);
                self.finish_run(id, k, false, format!("timed out after {timeout}"), now);
            } else if check.due(now) {
                self.start_run(id, k, now);
            }
            if let Some(at) = self.svcs[id.0].checks.get(k).and_then(|c| c.deadline()) {
                self.wake_at(at);
            }
        }
    }

    /// Begins one run of check `k`.
    fn start_run(&mut self, id: ServiceId, k: usize, now: Instant) {
        let svc = &mut self.svcs[id.0];
        let spec = &svc.spec.checks[k];
        svc.checks[k].begin(spec, now);
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
            Ok(run) => self.svcs[id.0].runs[k] = Some(run),
            Err(NotStarted { why, ours: false }) => self.finish_run(id, k, false, why, now),
            Err(NotStarted { why, ours: true }) => {
                let svc = &mut self.svcs[id.0];
                let spec = &svc.spec.checks[k];
                if self.unstarted.add(1, now).is_some() {
                    let (name, check) = (&svc.spec.name, &spec.name);
                    log::warn!("{name}: check {check} not run: {why}; tried again each period");
                }
                svc.checks[k].skip(spec, format!("not run: {why}"), now);
            }
        }
    }

    /// Spawns an exec check as its service would run, its output into a pipe of its own.
    fn launch_check(
        &mut self,
        id: ServiceId,
        argv: &[String],
    ) -> Result<(spawn::Child, OwnedFd), NotStarted> {
        let spec = &self.svcs[id.0].spec;
        let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).and_then(|(r, w)| {
            rustix::fs::fcntl_setfl(&r, rustix::fs::OFlags::NONBLOCK)?;
            Ok((r, w))
        });
        let (read, write) = pipe.map_err(|e| NotStarted::new("pipe", e))?;
        let copy = write
            .try_clone()
            .map_err(|e| NotStarted::new("pipe", Errno::from_io_error(&e).unwrap_or(Errno::IO)))?;
        let launch = Launch {
            argv,
            env: &spec.env,
            workdir: spec.workdir.as_deref(),
            user: spec.user.as_ref(),
            stdout: Stdio::from(write),
            stderr: Stdio::from(copy),
            notify_fd: None,
        };
        match spawn::launch(launch, self.signals.saved()) {
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
    pub(super) fn on_probe_ready(&mut self, id: ServiceId, k: usize, now: Instant) {
        let Some(Some(run)) = self.svcs.get_mut(id.0).and_then(|s| s.runs.get_mut(k)) else {
            return;
        };
        if let Progress::Done(ok, text) = run.ready() {
            self.svcs[id.0].runs[k] = None;
            self.finish_run(id, k, ok, text, now);
        }
    }

    /// An exec check's process ended (its group is already killed).
    pub(super) fn on_check_exit(
        &mut self,
        id: ServiceId,
        k: usize,
        pid: Pid,
        exit: Exit,
        now: Instant,
    ) {
        let Some(slot) = self.svcs.get_mut(id.0).and_then(|s| s.runs.get_mut(k)) else {
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
    fn finish_run(&mut self, id: ServiceId, k: usize, ok: bool, text: String, now: Instant) {
        let svc = &mut self.svcs[id.0];
        let spec = &svc.spec.checks[k];
        if !ok {
            log::debug!("{}: check {} failed: {text:?}", svc.spec.name, spec.name);
        }
        let was_failing = svc.checks[k].status == crate::health::Status::Failing;
        let verdict = svc.checks[k].finish(spec, ok, text, now);
        let name = format!("{}: check {}", svc.spec.name, spec.name);
        let (level, on_failure) = (spec.level, spec.on_failure);
        let failures = svc.checks[k].failures;
        match (verdict, level) {
            (Verdict::Unchanged, _) => {}
            (Verdict::Passed, Level::Ready) => {
                svc.checks[k].disarm();
                log::debug!("{name} passed");
                self.maybe_ready(id, now);
            }
            (Verdict::Passed, Level::Alive) if was_failing => log::info!("{name} passes again"),
            (Verdict::Passed, Level::Alive) => log::debug!("{name} passes"),
            (Verdict::Failed, Level::Ready) => {
                log::warn!("{name} failed {failures} times in a row; still waiting");
            }
            (Verdict::Failed, Level::Alive) => {
                let why = format!("check {} failed {failures} times in a row", spec.name);
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
