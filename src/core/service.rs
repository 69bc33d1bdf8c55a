//! The life of one service, as pure code: no system calls, time passed in, so that it can be
//! tested with a fake clock.
//!
//! ```text
//!            start (dependencies up, delay over)       ready (longrun)
//!  PENDING ─────────────────────────────────► STARTING ───────────────► RUNNING
//!     ▲  ▲                                      │  │ exited (oneshot, ok)    │
//!     │  └──── exited, restart allowed ◄────────┴──┼─────────────────────────┤
//!     │        (backoff deadline)                  ▼                         │ stop
//!     │                                         STOPPED ◄── exited ── STOPPING ◄┘
//!     └── start (by request) ── STOPPED / FAILED     ▲      (deadline: SIGKILL)
//! ```
//!
//! [`Life::handle`] is the only function that changes `state`: events in, an [`Action`] out,
//! for the supervisor to carry out. What the user wants (`want_up`) is kept apart from what is
//! (`state`), and every state change records why it happened (`reason`), which both the status
//! output and the restart decisions read.
//!
//! Readiness: a longrun is RUNNING once its readiness is complete — at once by default, else
//! when the supervisor reports [`Event::Ready`] (notify fd, sd_notify, ready-level checks) and
//! `ready.after` has passed. `start_timeout`, when one is set, bounds the wait (the service may
//! push it back, [`Event::AskedForTime`]); a start that times out, or whose readiness fails
//! ([`Event::NotReady`]), is stopped and then handled as a failed start. An
//! alive-level check that fails ([`Event::Unhealthy`]) stops a RUNNING service and then restarts
//! it or leaves it FAILED.

use std::time::{Duration, Instant};

use crate::config::{Kind, Restart};
use crate::os::reap::Exit;

/// Deadlines are computed by [`crate::core::duration::later`], which the init-only build shares.
pub use crate::core::duration::later;

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for its dependencies, a delay, or a restart backoff.
    Pending,
    /// Its pre_script or its process runs, and it is not up yet (a oneshot stays here until it
    /// exits).
    Starting,
    /// Up: a longrun whose process runs.
    Running,
    /// The stop signal was sent; waiting for the process to exit.
    Stopping,
    /// Not running, and fine: stopped by request, a oneshot done, or disabled.
    Stopped,
    /// Not running, for good, with a reason.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

/// What a service's start step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    PreScript,
    Main,
}

/// The parts of a service's configuration the state machine reads.
#[derive(Debug, Clone)]
pub struct Policy {
    pub kind: Kind,
    pub restart: Restart,
    pub success_exit_codes: Vec<i32>,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    /// How long the service must stay up before its backoff delay and its restart count since
    /// the last reset go back to the start (`restart_reset`).
    pub restart_reset: Duration,
    pub max_restarts: u32,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub has_pre_script: bool,
    /// `ready.after`: up once the main process has run this long.
    pub ready_after: Option<Duration>,
    /// Up only once the supervisor reports [`Event::Ready`].
    pub waits_for_ready: bool,
    /// Bounds the wait for readiness, from the spawn of the main process; None: no bound.
    pub start_timeout: Option<Duration>,
    /// What a start waits for, for humans (`waiting for a newline on fd 3`); empty when the
    /// service is up at exec.
    pub waiting_for: String,
    /// A timed oneshot: not started at boot, but by its timer (the supervisor's).
    pub scheduled: bool,
    /// `start = "on-demand"`: not started at boot, but when asked (a request, a dependent, a
    /// connection).
    pub on_demand: bool,
}

/// Something that happened to a service, or that is asked of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Requests: start now (its dependencies are up and its delays are over).
    Start,
    /// Request: the user or a shutdown wants it down.
    Stop,
    /// Request: down at once, by SIGKILL to its process group (the shutdown budget is spent, or
    /// a second SIGTERM came); the text says why, for its reason.
    Kill(String),
    /// Request: up again after a stop or a failure (a restart by request, a reload's new
    /// settings); counted as a restart when the user asked for one.
    Enable,
    /// Request: the user wants it down and kept down (`pidone stop`); the supervisor stops it
    /// once its dependents are down.
    Hold,
    /// Request: the user wants it restarted: down once its dependents are down, then up again.
    Restart,
    /// Request: the user wants it up (`pidone start`): a held service is up again (once
    /// stopped, if it is stopping); a restart under way goes on.
    Release,
    /// Request: a reload removed it from the configuration: down, then forgotten.
    Remove,
    /// Notification: the process of `step` was spawned (the supervisor keeps its pid).
    Spawned(Step),
    /// Notification: spawning `step` failed.
    SpawnFailed(Step, String),
    /// Notification: the process of `step` exited.
    Exited(Step, Exit),
    /// Notification: the service's deadline passed.
    DeadlinePassed,
    /// Notification: the service's readiness signal and ready-level checks are complete.
    Ready,
    /// Notification: the service asked for this much more time to get ready, from now
    /// (sd_notify's `EXTEND_TIMEOUT_USEC=`).
    AskedForTime(Duration),
    /// Notification: readiness failed (the notify fd closed without a newline): a failed start.
    NotReady(String),
    /// Notification: an alive-level check failed; stop the service, then `Recovery`.
    Unhealthy(String, Recovery),
    /// Notification: a oneshot ran past its `max_runtime` (the text says so): stopped, FAILED.
    Overran(String),
    /// Notification: a dependency failed for good.
    DependencyFailed(String),
    /// Notification: the dependencies were not up within dependency_wait_timeout.
    DependencyTimeout(Duration),
}

/// What follows when a service stopped because it was unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Start it again (with the backoff, counted against max_restarts).
    Restart,
    /// Leave it FAILED.
    Fail,
}

/// Why a service is STOPPING while still wanted up, and what follows its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Then {
    /// A failed start: the restart policy decides.
    FailedStart(String),
    /// Unhealthy.
    Recover(String, Recovery),
}

/// What the user (or a reload) asked of a service, kept apart from what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Intent {
    /// As configured: up if enabled, restarted by its policy.
    #[default]
    Run,
    /// Down, and kept down until started again.
    Hold,
    /// Down, then up again.
    Restart,
    /// Removed by a reload: down, then forgotten.
    Remove,
}

impl Intent {
    /// What was asked, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Run => "asked to run",
            Intent::Hold => "asked to stop and stay down",
            Intent::Restart => "asked to restart",
            Intent::Remove => "removed from the configuration",
        }
    }

    /// True when the service is to be brought down (once its dependents are down).
    pub fn wants_down(self) -> bool {
        self != Intent::Run
    }
}

/// What the supervisor must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Spawn the process of this step.
    Spawn(Step),
    /// Send this signal to the service's process group.
    Signal(i32),
}

/// The life of one service: where it is (`state`, `reason`), what is wanted of it (`want_up`,
/// `intent`), its restarts and deadlines. Only [`Life::handle`] changes it.
#[derive(Debug, Clone)]
pub struct Life {
    pub state: State,
    /// What is wanted of it: up (true) or down.
    pub want_up: bool,
    /// Why it is in its state, for humans.
    pub reason: String,
    pub step: Step,
    pub last_exit: Option<Exit>,
    /// What the user asked of it; only [`Life::handle`] writes it.
    pub intent: Intent,
    /// Restarts since pidone started (automatic and requested).
    pub restarts: u32,
    /// Restarts since the service last stayed up `restart_reset`.
    streak: u32,
    /// The delay before the next restart.
    backoff: Duration,
    /// When the state last changed.
    pub since: Instant,
    /// When it last came up (for the stability reset and dependents' wait_after).
    pub up_at: Option<Instant>,
    /// Pending: not before this instant. Stopping: SIGKILL at this instant.
    pub deadline: Option<Instant>,
    /// When it last entered PENDING wanting to be up (for dependency_wait_timeout).
    pub waiting_since: Instant,
    /// SIGKILL was sent while stopping.
    pub killed: bool,
    /// The last attempt to start failed (spawn error, pre_script, readiness).
    pub start_failed: bool,
    /// Starting: when `ready.after` has passed (None once it has, or without it).
    ready_at: Option<Instant>,
    /// Starting: [`Event::Ready`] arrived (or is not needed).
    signalled: bool,
    /// Starting: the main process of a longrun was spawned at this instant and it is not ready
    /// yet.
    spawned_at: Option<Instant>,
    /// Starting: the start fails at this instant (`start_timeout`, or what the service asked
    /// for).
    start_by: Option<Instant>,
    /// Stopping while wanted up: what follows the exit.
    then: Option<Then>,
    /// When the main process of the current start was spawned (a dependent's `"started"`);
    /// None until then, from each start on.
    pub started_at: Option<Instant>,
    /// When the main process of the current run exited (a dependent's `"completed"`); None
    /// from each start on, and while it waits to start again.
    pub ended_at: Option<Instant>,
}

impl Life {
    /// A new service, PENDING if enabled, else STOPPED ("disabled"); a timed one STOPPED until
    /// its timer starts it.
    pub fn new(enabled: bool, policy: &Policy, now: Instant) -> Life {
        let (state, reason) = match (enabled, policy.scheduled, policy.on_demand) {
            (true, false, false) => (State::Pending, "waiting to start"),
            (true, true, _) => (State::Stopped, "waiting for its schedule"),
            (true, false, true) => (State::Stopped, "on demand: not started yet"),
            (false, _, _) => (State::Stopped, "disabled"),
        };
        Life {
            state,
            want_up: state == State::Pending,
            reason: reason.to_string(),
            step: Step::Main,
            last_exit: None,
            intent: Intent::Run,
            restarts: 0,
            streak: 0,
            backoff: policy.restart_delay,
            since: now,
            up_at: None,
            deadline: None,
            waiting_since: now,
            killed: false,
            start_failed: false,
            ready_at: None,
            signalled: false,
            spawned_at: None,
            start_by: None,
            then: None,
            started_at: None,
            ended_at: None,
        }
    }

    /// True when dependents may start: a running longrun, or a oneshot that exited successfully.
    pub fn is_up(&self, kind: Kind) -> bool {
        match kind {
            Kind::Longrun => self.state == State::Running,
            Kind::Oneshot => self.state == State::Stopped && self.up_at.is_some() && self.want_up,
        }
    }

    /// True when a process of the service may still run.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            State::Starting | State::Running | State::Stopping
        )
    }

    /// Enters `state` for `reason`; `since` moves only when the state changes, so a STARTING
    /// service's `since` is when its start began (its pre_script, then its program).
    fn set(&mut self, state: State, reason: impl Into<String>, now: Instant) {
        if self.state != state {
            self.since = now;
        }
        if state == State::Pending {
            self.ended_at = None;
        }
        self.state = state;
        self.reason = reason.into();
    }

    /// Applies `event` at time `now`; returns what the supervisor must do. The only writer of
    /// `state`.
    pub fn handle(&mut self, policy: &Policy, event: Event, now: Instant) -> Action {
        use Event::*;
        use State::*;
        match (self.state, event) {
            (Pending, Start) => {
                self.started_at = None;
                self.ended_at = None;
                self.deadline = None;
                self.start_by = None;
                self.then = None;
                let step = if policy.has_pre_script {
                    Step::PreScript
                } else {
                    Step::Main
                };
                self.step = step;
                self.set(Starting, "starting", now);
                Action::Spawn(step)
            }
            (Starting, Spawned(step)) => {
                self.step = step;
                if step == Step::Main {
                    self.started_at = Some(now);
                }
                if step == Step::Main && policy.kind == Kind::Longrun {
                    self.ready_at = policy.ready_after.map(|d| later(now, d));
                    self.signalled = !policy.waits_for_ready;
                    self.spawned_at = Some(now);
                    self.start_by = policy.start_timeout.map(|d| later(now, d));
                    let why = if policy.waiting_for.is_empty() {
                        "waiting until ready"
                    } else {
                        &policy.waiting_for
                    };
                    self.set(Starting, why, now);
                    self.check_ready(policy, now)
                } else {
                    if step == Step::Main {
                        self.start_failed = false;
                    }
                    Action::Nothing
                }
            }
            (Starting, Ready) if self.waiting_for_ready() => {
                self.signalled = true;
                self.check_ready(policy, now)
            }
            (Starting, DeadlinePassed) if self.waiting_for_ready() => self.check_ready(policy, now),
            // systemd's meaning: the deadline becomes the later of the configured one and now +
            // what was asked; without a start_timeout there is nothing to push back.
            (Starting, AskedForTime(more)) if self.waiting_for_ready() => {
                if let (Some(spawned), Some(limit)) = (self.spawned_at, policy.start_timeout) {
                    self.start_by = Some(later(spawned, limit).max(later(now, more)));
                }
                self.check_ready(policy, now)
            }
            (Starting, NotReady(why)) if self.waiting_for_ready() => {
                self.stop_for(policy, Then::FailedStart(why), now)
            }
            (Running, Unhealthy(why, recovery)) => {
                self.stop_for(policy, Then::Recover(why, recovery), now)
            }
            (Starting, Overran(why)) => {
                self.stop_for(policy, Then::Recover(why, Recovery::Fail), now)
            }
            (Starting, SpawnFailed(step, why)) => {
                let what = if step == Step::PreScript {
                    "pre_script"
                } else {
                    "start"
                };
                self.after_failure(policy, format!("{what} failed: {why}"), now)
            }
            (Starting, Exited(Step::PreScript, exit)) => {
                if exit == Exit::Code(0) {
                    self.step = Step::Main;
                    Action::Spawn(Step::Main)
                } else {
                    self.last_exit = Some(exit);
                    self.after_failure(policy, format!("pre_script failed: {exit}"), now)
                }
            }
            (Starting | Running, Exited(Step::Main, exit)) => {
                self.last_exit = Some(exit);
                self.after_exit(policy, exit, now)
            }
            (Stopping, Exited(_, exit)) => {
                if self.step == Step::Main {
                    self.last_exit = Some(exit);
                    self.ended_at = Some(now);
                }
                self.deadline = None;
                match self.then.take() {
                    Some(Then::FailedStart(why)) if self.want_up => {
                        return self.after_failure(policy, why, now);
                    }
                    Some(Then::Recover(why, Recovery::Restart)) if self.want_up => {
                        return self.schedule_restart(policy, why, now);
                    }
                    Some(Then::Recover(why, Recovery::Fail)) if self.want_up => {
                        self.set(Failed, why, now);
                        return Action::Nothing;
                    }
                    _ => {}
                }
                // Killed: the reason given when it was (after stop_timeout, or why it was killed).
                let reason = if self.killed {
                    std::mem::take(&mut self.reason)
                } else {
                    "stopped".to_string()
                };
                self.set(Stopped, reason, now);
                Action::Nothing
            }
            (Stopping, DeadlinePassed) if !self.killed => {
                self.killed = true;
                self.deadline = None;
                self.reason = "killed after stop_timeout".to_string();
                Action::Signal(libc::SIGKILL)
            }
            (Starting | Running | Stopping, Kill(why)) => {
                self.want_up = false;
                self.then = None;
                self.forget_readiness();
                self.killed = true;
                self.set(Stopping, why, now);
                Action::Signal(libc::SIGKILL)
            }
            (Pending, Stop) => {
                self.want_up = false;
                self.deadline = None;
                self.set(Stopped, "stopped", now);
                Action::Nothing
            }
            (Starting | Running, Stop) => {
                self.want_up = false;
                self.killed = false;
                self.spawned_at = None;
                self.start_by = None;
                self.deadline = Some(later(now, policy.stop_timeout));
                self.set(Stopping, "stopping", now);
                // A pre_script is only a helper: it gets no grace.
                let sig = if self.step == Step::PreScript {
                    libc::SIGKILL
                } else {
                    policy.stop_signal
                };
                Action::Signal(sig)
            }
            (Stopped | Failed | Stopping, Stop) => {
                self.want_up = false;
                Action::Nothing
            }
            (Stopped | Failed, Enable) if self.intent != Intent::Remove => {
                if self.intent == Intent::Restart {
                    self.restarts += 1;
                }
                self.intent = Intent::Run;
                self.want_up = true;
                self.deadline = None;
                self.streak = 0;
                self.backoff = policy.restart_delay;
                self.waiting_since = now;
                self.up_at = None;
                self.set(Pending, "waiting to start", now);
                Action::Nothing
            }
            (_, Hold) if self.intent != Intent::Remove => {
                self.intent = Intent::Hold;
                self.forget_done();
                Action::Nothing
            }
            (_, Restart) if self.intent != Intent::Remove => {
                self.intent = Intent::Restart;
                self.forget_done();
                Action::Nothing
            }
            (Stopped | Failed, Release) if self.intent != Intent::Remove => {
                self.intent = Intent::Run;
                self.handle(policy, Enable, now)
            }
            // Asked down, and now up: up again once stopped. A stop of the service's own (a
            // failed start, an unhealthy check) is the restart policy's to follow up.
            (Stopping, Release) if self.intent != Intent::Remove => {
                if self.intent.wants_down() || !self.want_up {
                    self.intent = Intent::Restart;
                }
                Action::Nothing
            }
            (_, Release) if self.intent != Intent::Remove => {
                self.intent = Intent::Run;
                Action::Nothing
            }
            (_, Remove) => {
                self.intent = Intent::Remove;
                self.forget_done();
                Action::Nothing
            }
            (Pending, DependencyFailed(name)) => {
                self.deadline = None;
                self.set(Failed, format!("dependency {name} failed"), now);
                Action::Nothing
            }
            (Pending, DependencyTimeout(after)) => {
                self.deadline = None;
                let after = crate::config::format_duration(after);
                self.set(Failed, format!("dependencies not up after {after}"), now);
                Action::Nothing
            }
            _ => Action::Nothing,
        }
    }

    /// Asked down while already down: a finished oneshot (or a failed service) no longer counts
    /// as up, so a later start runs it again.
    fn forget_done(&mut self) {
        if matches!(self.state, State::Stopped | State::Failed) {
            self.want_up = false;
        }
    }

    /// True while a started longrun's main process runs and it is not ready yet.
    fn waiting_for_ready(&self) -> bool {
        self.state == State::Starting && self.step == Step::Main && self.spawned_at.is_some()
    }

    /// Starting: RUNNING once every readiness condition holds, a failed start once
    /// `start_timeout` has passed; else the next deadline.
    fn check_ready(&mut self, policy: &Policy, now: Instant) -> Action {
        if self.ready_at.is_some_and(|at| now >= at) {
            self.ready_at = None;
        }
        if self.ready_at.is_none() && self.signalled {
            self.spawned_at = None;
            self.start_by = None;
            self.deadline = None;
            self.start_failed = false;
            self.up_at = Some(now);
            self.set(State::Running, "", now);
            return Action::Nothing;
        }
        match self.start_by {
            Some(at) if now >= at => {
                // The time it had: start_timeout, or longer if it asked for more.
                let spawned = self.spawned_at.unwrap_or(self.since);
                let limit = crate::config::format_duration(at.saturating_duration_since(spawned));
                self.stop_for(
                    policy,
                    Then::FailedStart(format!("not ready after {limit}")),
                    now,
                )
            }
            start_by => {
                self.deadline = match (self.ready_at, start_by) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Action::Nothing
            }
        }
    }

    /// The wait for readiness is over (the process is gone): none of its deadlines may outlive
    /// it, or the next start would wait for them.
    fn forget_readiness(&mut self) {
        self.spawned_at = None;
        self.start_by = None;
        self.ready_at = None;
        self.deadline = None;
    }

    /// Stops a service that stays wanted up; `then` decides what its exit leads to.
    fn stop_for(&mut self, policy: &Policy, then: Then, now: Instant) -> Action {
        let why = match &then {
            Then::FailedStart(why) | Then::Recover(why, _) => why.clone(),
        };
        self.then = Some(then);
        self.spawned_at = None;
        self.start_by = None;
        self.ready_at = None;
        self.killed = false;
        self.deadline = Some(later(now, policy.stop_timeout));
        self.set(State::Stopping, format!("{why}: stopping"), now);
        Action::Signal(policy.stop_signal)
    }

    /// The main process exited while the service was wanted up.
    fn after_exit(&mut self, policy: &Policy, exit: Exit, now: Instant) -> Action {
        self.forget_readiness();
        self.ended_at = Some(now);
        let success = matches!(exit, Exit::Code(c) if policy.success_exit_codes.contains(&c));
        if policy.kind == Kind::Oneshot && success {
            self.up_at = Some(now);
            self.set(State::Stopped, "done", now);
            return Action::Nothing;
        }
        let restart = match policy.restart {
            Restart::Always => true,
            Restart::OnFailure => !success,
            Restart::Never => false,
        };
        let how = match exit {
            Exit::OutOfMemory => "killed by the OOM killer".to_owned(),
            _ => format!("exited with {exit}"),
        };
        if !restart {
            if success {
                self.set(State::Stopped, format!("exited ({exit})"), now);
            } else {
                self.set(State::Failed, how, now);
            }
            return Action::Nothing;
        }
        self.schedule_restart(policy, how, now)
    }

    /// A start step failed (spawn error, pre_script failure): a restart if the policy allows one,
    /// else FAILED.
    fn after_failure(&mut self, policy: &Policy, why: String, now: Instant) -> Action {
        self.start_failed = true;
        self.forget_readiness();
        if policy.restart == Restart::Never {
            self.set(State::Failed, why, now);
            return Action::Nothing;
        }
        self.schedule_restart(policy, why, now)
    }

    fn schedule_restart(&mut self, policy: &Policy, why: String, now: Instant) -> Action {
        if self
            .up_at
            .is_some_and(|up| now.saturating_duration_since(up) >= policy.restart_reset)
        {
            self.streak = 0;
            self.backoff = policy.restart_delay;
        }
        if policy.max_restarts > 0 && self.streak >= policy.max_restarts {
            let n = policy.max_restarts;
            self.set(
                State::Failed,
                format!("{why}; gave up after {n} restarts"),
                now,
            );
            return Action::Nothing;
        }
        let delay = self.backoff;
        self.backoff = self.backoff.saturating_mul(2).min(policy.restart_delay_max);
        self.streak += 1;
        self.restarts += 1;
        self.up_at = None;
        self.deadline = Some(later(now, delay));
        self.waiting_since = now;
        let delay = crate::config::format_duration(delay);
        self.set(State::Pending, format!("{why}; restarting in {delay}"), now);
        Action::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            kind: Kind::Longrun,
            restart: Restart::OnFailure,
            success_exit_codes: vec![0],
            restart_delay: Duration::from_secs(1),
            restart_delay_max: Duration::from_secs(5),
            restart_reset: Duration::from_secs(10),
            max_restarts: 0,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            has_pre_script: false,
            ready_after: None,
            waits_for_ready: false,
            start_timeout: None,
            waiting_for: String::new(),
            scheduled: false,
            on_demand: false,
        }
    }

    /// Runs the service through start → spawned → exit(code) at `now`.
    fn crash(s: &mut Life, p: &Policy, now: Instant, code: i32) {
        assert_eq!(s.handle(p, Event::Start, now), Action::Spawn(Step::Main));
        s.handle(p, Event::Spawned(Step::Main), now);
        assert_eq!(s.state, State::Running);
        s.handle(p, Event::Exited(Step::Main, Exit::Code(code)), now);
    }

    #[test]
    fn an_oom_kill_is_named_in_the_reason() {
        let mut p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Spawned(Step::Main), t0);
        s.handle(&p, Event::Exited(Step::Main, Exit::OutOfMemory), t0);
        assert_eq!(s.state, State::Pending);
        assert!(
            s.reason.starts_with("killed by the OOM killer; "),
            "{}",
            s.reason
        );
        p.restart = Restart::Never;
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Spawned(Step::Main), t0);
        s.handle(&p, Event::Exited(Step::Main, Exit::OutOfMemory), t0);
        assert_eq!(
            (s.state, s.reason.as_str()),
            (State::Failed, "killed by the OOM killer")
        );
        assert_eq!(s.last_exit.map(Exit::code), Some(137));
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..5 {
            crash(&mut s, &p, now, 1);
            assert_eq!(s.state, State::Pending);
            let at = s.deadline.expect("a restart deadline");
            delays.push((at - now).as_secs());
            now = at;
        }
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(s.restarts, 5);
    }

    #[test]
    fn backoff_resets_after_staying_up() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 1);
        let t1 = s.deadline.unwrap_or(t0);
        crash(&mut s, &p, t1, 1);
        assert_eq!(s.deadline, Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        s.handle(&p, Event::Start, t2);
        s.handle(&p, Event::Spawned(Step::Main), t2);
        let t3 = t2 + p.restart_reset;
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(9)), t3);
        assert_eq!(s.deadline, Some(t3 + Duration::from_secs(1)));
    }

    /// Issue 11: with the window fixed at 10 s, a service crashing every 11 s never reached
    /// `max_restarts`; `restart_reset` widens it.
    #[test]
    fn restart_reset_is_the_window_that_forgives_restarts() {
        let every_11s = |reset: u64| {
            let p = Policy {
                max_restarts: 3,
                restart_reset: Duration::from_secs(reset),
                ..policy()
            };
            let mut now = Instant::now();
            let mut s = Life::new(true, &p, now);
            for _ in 0..10 {
                spawn(&mut s, &p, now);
                now += Duration::from_secs(11);
                s.handle(&p, Event::Exited(Step::Main, Exit::Code(1)), now);
                match s.deadline {
                    Some(at) if s.state == State::Pending => now = at,
                    _ => break,
                }
            }
            (s.state, s.restarts)
        };
        assert_eq!(
            every_11s(10),
            (State::Pending, 10),
            "up 11 s > 10 s: forgiven"
        );
        assert_eq!(every_11s(60), (State::Failed, 3), "up 11 s < 60 s: counted");
    }

    #[test]
    fn max_restarts_then_failed_for_good() {
        let p = Policy {
            max_restarts: 2,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 3);
        crash(&mut s, &p, t0, 3);
        crash(&mut s, &p, t0, 3);
        assert_eq!(s.state, State::Failed);
        assert!(
            s.reason.contains("gave up after 2 restarts"),
            "{}",
            s.reason
        );
        assert_eq!(s.last_exit, Some(Exit::Code(3)));
    }

    #[test]
    fn on_failure_does_not_restart_a_clean_exit() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 0);
        assert_eq!(s.state, State::Stopped);
        let p = Policy {
            success_exit_codes: vec![0, 3],
            ..policy()
        };
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 3);
        assert_eq!(s.state, State::Stopped);
        let p = Policy {
            restart: Restart::Always,
            ..policy()
        };
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 0);
        assert_eq!(s.state, State::Pending);
    }

    #[test]
    fn stop_timeout_leads_to_sigkill() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Spawned(Step::Main), t0);
        assert_eq!(s.handle(&p, Event::Stop, t0), Action::Signal(libc::SIGTERM));
        assert_eq!(s.state, State::Stopping);
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(10)));
        assert_eq!(
            s.handle(&p, Event::DeadlinePassed, t0 + Duration::from_secs(10)),
            Action::Signal(libc::SIGKILL)
        );
        assert_eq!(
            s.handle(&p, Event::DeadlinePassed, t0 + Duration::from_secs(11)),
            Action::Nothing
        );
        s.handle(
            &p,
            Event::Exited(Step::Main, Exit::Signal(9)),
            t0 + Duration::from_secs(11),
        );
        assert_eq!(s.state, State::Stopped);
        assert_eq!(s.reason, "killed after stop_timeout");
        // A stopped service stays stopped: no restart.
        assert_eq!(s.deadline, None);
    }

    #[test]
    fn dependency_failure_and_timeout_fail_a_pending_service() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::DependencyFailed("db".into()), t0);
        assert_eq!(
            (s.state, s.reason.as_str()),
            (State::Failed, "dependency db failed")
        );
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::DependencyTimeout(Duration::from_secs(300)), t0);
        assert_eq!(s.state, State::Failed);
        assert!(s.reason.contains("300s"), "{}", s.reason);
    }

    #[test]
    fn oneshot_is_up_once_done_and_pre_script_runs_first() {
        let p = Policy {
            kind: Kind::Oneshot,
            restart: Restart::Never,
            has_pre_script: true,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        assert_eq!(
            s.handle(&p, Event::Start, t0),
            Action::Spawn(Step::PreScript)
        );
        s.handle(&p, Event::Spawned(Step::PreScript), t0);
        assert_eq!(
            s.handle(&p, Event::Exited(Step::PreScript, Exit::Code(0)), t0),
            Action::Spawn(Step::Main)
        );
        s.handle(&p, Event::Spawned(Step::Main), t0);
        assert_eq!(s.state, State::Starting);
        assert!(!s.is_up(Kind::Oneshot));
        s.handle(&p, Event::Exited(Step::Main, Exit::Code(0)), t0);
        assert!(s.is_up(Kind::Oneshot));
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Exited(Step::PreScript, Exit::Code(1)), t0);
        assert_eq!(s.state, State::Failed);
        assert!(s.reason.starts_with("pre_script failed"), "{}", s.reason);
    }

    #[test]
    fn huge_durations_do_not_overflow_the_clock() {
        let p = Policy {
            stop_timeout: Duration::MAX,
            restart_delay: Duration::MAX,
            restart_delay_max: Duration::MAX,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        crash(&mut s, &p, t0, 1);
        assert!(s.deadline.is_some_and(|d| d > t0));
        s.handle(&p, Event::DeadlinePassed, t0);
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Spawned(Step::Main), t0);
        assert_eq!(s.handle(&p, Event::Stop, t0), Action::Signal(libc::SIGTERM));
        assert!(s.deadline.is_some_and(|d| d > t0));
    }

    #[test]
    fn a_failed_start_is_marked_until_the_program_runs() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::SpawnFailed(Step::Main, "not found".into()), t0);
        assert!(s.start_failed);
        let t1 = s.deadline.unwrap_or(t0);
        s.handle(&p, Event::Start, t1);
        s.handle(&p, Event::Spawned(Step::Main), t1);
        assert!(!s.start_failed);
    }

    #[test]
    fn a_disabled_service_is_stopped_and_can_be_enabled() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Life::new(false, &p, t0);
        assert_eq!((s.state, s.reason.as_str()), (State::Stopped, "disabled"));
        s.handle(&p, Event::Enable, t0);
        assert_eq!(s.state, State::Pending);
        assert!(s.want_up);
    }

    fn waiting() -> Policy {
        Policy {
            waits_for_ready: true,
            start_timeout: Some(Duration::from_secs(60)),
            ..policy()
        }
    }

    /// Start and spawn at `now`.
    fn spawn(s: &mut Life, p: &Policy, now: Instant) {
        assert_eq!(s.handle(p, Event::Start, now), Action::Spawn(Step::Main));
        s.handle(p, Event::Spawned(Step::Main), now);
    }

    #[test]
    fn a_longrun_waiting_for_readiness_is_not_up_until_ready() {
        let p = waiting();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        assert_eq!(s.state, State::Starting);
        assert!(!s.is_up(Kind::Longrun), "dependents must wait");
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(60)));
        let t1 = t0 + Duration::from_millis(1500);
        s.handle(&p, Event::Ready, t1);
        assert_eq!(s.state, State::Running);
        assert!(s.is_up(Kind::Longrun));
        assert_eq!(s.up_at, Some(t1));
        assert_eq!(s.deadline, None);
        // A second READY changes nothing.
        assert_eq!(s.handle(&p, Event::Ready, t1), Action::Nothing);
        assert_eq!(s.state, State::Running);
    }

    #[test]
    fn start_timeout_stops_the_service_and_counts_as_a_failed_start() {
        let p = waiting();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(s.handle(&p, Event::DeadlinePassed, t1), Action::Nothing);
        assert_eq!(s.state, State::Starting);
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(
            s.handle(&p, Event::DeadlinePassed, t2),
            Action::Signal(libc::SIGTERM)
        );
        assert_eq!(s.state, State::Stopping);
        assert!(s.reason.contains("not ready after 60s"), "{}", s.reason);
        assert!(s.want_up);
        // READY after the timeout is too late.
        s.handle(&p, Event::Ready, t2);
        assert_eq!(s.state, State::Stopping);
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t2);
        assert_eq!(s.state, State::Pending, "restarted with the backoff");
        assert!(s.start_failed);
        assert_eq!(s.restarts, 1);
        assert_eq!(s.deadline, Some(t2 + Duration::from_secs(1)));
        let p = Policy {
            restart: Restart::Never,
            ..waiting()
        };
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(&p, Event::DeadlinePassed, t2);
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t2);
        assert_eq!(s.state, State::Failed);
        assert!(s.reason.starts_with("not ready after 60s"), "{}", s.reason);
    }

    /// Issue 11: a database replaying its WAL may take many minutes; with no start_timeout
    /// configured, nothing times its start out.
    #[test]
    fn without_start_timeout_a_start_may_take_as_long_as_it_needs() {
        let p = Policy {
            start_timeout: None,
            ..waiting()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        assert_eq!(s.deadline, None, "nothing to wait for but readiness");
        let t1 = t0 + Duration::from_secs(3600);
        assert_eq!(s.handle(&p, Event::DeadlinePassed, t1), Action::Nothing);
        s.handle(&p, Event::AskedForTime(Duration::from_secs(5)), t1);
        assert_eq!(
            (s.state, s.deadline),
            (State::Starting, None),
            "no timeout to extend"
        );
        s.handle(&p, Event::Ready, t1);
        assert_eq!(s.state, State::Running);
    }

    /// sd_notify's `EXTEND_TIMEOUT_USEC=`, with systemd's meaning: the start fails at the later
    /// of the configured deadline and now + what was asked.
    #[test]
    fn extend_timeout_pushes_the_start_deadline_back() {
        let p = waiting(); // start_timeout 60 s
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(&p, Event::AskedForTime(secs(10)), t0 + secs(5));
        assert_eq!(s.deadline, Some(t0 + secs(60)), "60 s is later than 15 s");
        s.handle(&p, Event::AskedForTime(secs(90)), t0 + secs(50));
        assert_eq!(s.deadline, Some(t0 + secs(140)));
        assert_eq!(
            s.handle(&p, Event::DeadlinePassed, t0 + secs(60)),
            Action::Nothing,
            "the configured deadline no longer counts"
        );
        assert_eq!(s.state, State::Starting);
        s.handle(&p, Event::AskedForTime(secs(30)), t0 + secs(130));
        assert_eq!(s.deadline, Some(t0 + secs(160)));
        assert_eq!(
            s.handle(&p, Event::DeadlinePassed, t0 + secs(160)),
            Action::Signal(libc::SIGTERM)
        );
        assert!(s.reason.contains("not ready after 160s"), "{}", s.reason);
        // Once stopping, or before the program runs, asking for time changes nothing.
        s.handle(&p, Event::AskedForTime(secs(1000)), t0 + secs(160));
        assert_eq!(s.deadline, Some(t0 + secs(170)), "stop_timeout");
    }

    #[test]
    fn ready_after_needs_the_time_and_the_signal_when_both_are_asked() {
        let p = Policy {
            ready_after: Some(Duration::from_secs(2)),
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        assert_eq!(s.state, State::Starting);
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(2)));
        s.handle(&p, Event::DeadlinePassed, t0 + Duration::from_secs(2));
        assert_eq!(s.state, State::Running);
        // Dying before the time is an exit like any other.
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(
            &p,
            Event::Exited(Step::Main, Exit::Code(1)),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(s.state, State::Pending);
        let p = Policy {
            ready_after: Some(Duration::from_secs(2)),
            ..waiting()
        };
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(&p, Event::Ready, t0 + Duration::from_secs(1));
        assert_eq!(s.state, State::Starting, "after not over yet");
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(2)));
        s.handle(&p, Event::DeadlinePassed, t0 + Duration::from_secs(2));
        assert_eq!(s.state, State::Running);
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(&p, Event::DeadlinePassed, t0 + Duration::from_secs(2));
        assert_eq!(s.state, State::Starting, "the signal is still missing");
        assert_eq!(s.deadline, Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn readiness_failing_is_a_failed_start() {
        let p = waiting();
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        assert_eq!(
            s.handle(&p, Event::NotReady("notify fd 3 closed".into()), t0),
            Action::Signal(libc::SIGTERM)
        );
        s.handle(&p, Event::Exited(Step::Main, Exit::Code(0)), t0);
        assert_eq!(s.state, State::Pending);
        assert!(s.reason.starts_with("notify fd 3 closed"), "{}", s.reason);
        assert!(s.start_failed);
    }

    #[test]
    fn unhealthy_restarts_whatever_the_policy_or_fails() {
        let p = Policy {
            restart: Restart::Never,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        assert_eq!(s.state, State::Running);
        let why = "check http failed 3 times in a row".to_string();
        assert_eq!(
            s.handle(&p, Event::Unhealthy(why.clone(), Recovery::Restart), t0),
            Action::Signal(libc::SIGTERM)
        );
        assert_eq!(s.state, State::Stopping);
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t0);
        assert_eq!(s.state, State::Pending);
        assert_eq!(s.restarts, 1);
        assert!(!s.start_failed);
        spawn(&mut s, &p, t0 + Duration::from_secs(1));
        s.handle(&p, Event::Unhealthy(why.clone(), Recovery::Fail), t0);
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t0);
        assert_eq!((s.state, s.reason.as_str()), (State::Failed, why.as_str()));
        // A stop request during that stop wins: stopped, not restarted.
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(&p, Event::Unhealthy(why, Recovery::Restart), t0);
        s.handle(&p, Event::Stop, t0);
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t0);
        assert_eq!(s.state, State::Stopped);
    }

    #[test]
    fn an_exit_while_waiting_for_readiness_leaves_no_deadline_behind() {
        let p = Policy {
            restart: Restart::Never,
            ..waiting()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(
            &p,
            Event::Exited(Step::Main, Exit::Code(3)),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(s.state, State::Failed);
        assert_eq!(
            s.deadline, None,
            "the old start_timeout must not delay a new start"
        );
        s.handle(&p, Event::Enable, t0 + Duration::from_secs(2));
        assert_eq!(s.deadline, None);
        let p = Policy {
            ready_after: Some(Duration::from_secs(5)),
            ..policy()
        };
        let mut s = Life::new(true, &p, t0);
        spawn(&mut s, &p, t0);
        s.handle(
            &p,
            Event::Exited(Step::Main, Exit::Code(0)),
            t0 + Duration::from_secs(1),
        );
        assert_eq!((s.state, s.deadline), (State::Stopped, None));
    }

    #[test]
    fn a_timed_oneshot_waits_for_its_timer_and_a_run_past_max_runtime_fails() {
        let p = Policy {
            kind: Kind::Oneshot,
            restart: Restart::Never,
            scheduled: true,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        assert_eq!(
            (s.state, s.want_up, s.reason.as_str()),
            (State::Stopped, false, "waiting for its schedule")
        );
        s.handle(&p, Event::Release, t0);
        assert_eq!(s.state, State::Pending, "the timer starts it");
        spawn(&mut s, &p, t0);
        let why = "still running after max_runtime 5s".to_string();
        assert_eq!(
            s.handle(&p, Event::Overran(why.clone()), t0),
            Action::Signal(libc::SIGTERM)
        );
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t0);
        assert_eq!((s.state, s.reason.as_str()), (State::Failed, why.as_str()));
        s.handle(&p, Event::Release, t0);
        assert_eq!(s.state, State::Pending, "the next run");
    }

    #[test]
    fn max_restarts_counts_unhealthy_restarts() {
        let p = Policy {
            max_restarts: 1,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Life::new(true, &p, t0);
        for _ in 0..2 {
            spawn(&mut s, &p, t0);
            s.handle(&p, Event::Unhealthy("bad".into(), Recovery::Restart), t0);
            s.handle(&p, Event::Exited(Step::Main, Exit::Signal(15)), t0);
        }
        assert_eq!(s.state, State::Failed);
        assert!(
            s.reason.contains("gave up after 1 restarts"),
            "{}",
            s.reason
        );
    }
}
