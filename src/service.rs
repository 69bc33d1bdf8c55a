//! The life of one service, as pure code: no system calls, time passed in, so that it can be
//! tested with a fake clock.
//!
//! ```text
//!            start (dependencies up, delay over)       spawned (longrun)
//!  PENDING ─────────────────────────────────► STARTING ───────────────► RUNNING
//!     ▲  ▲                                      │  │ exited (oneshot, ok)    │
//!     │  └──── exited, restart allowed ◄────────┴──┼─────────────────────────┤
//!     │        (backoff deadline)                  ▼                         │ stop
//!     │                                         STOPPED ◄── exited ── STOPPING ◄┘
//!     └── start (by request) ── STOPPED / FAILED     ▲      (deadline: SIGKILL)
//! ```
//!
//! [`Service::handle`] is the only function that changes `state`: events in, an [`Action`] out,
//! for the supervisor to carry out. What the user wants (`want_up`) is kept apart from what is
//! (`state`), and every state change records why it happened (`reason`), which both the status
//! output and the restart decisions read.

use std::time::{Duration, Instant};

use crate::config::{Kind, Restart};
use crate::reap::Exit;

/// How long a service must stay up before its backoff delay and its restart count since the last
/// reset go back to the start.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// `at + d`, or a century later when `d` is too large for the clock (a configuration may say
/// `stop_timeout = "100000000h"`): a deadline so far away is never, without overflowing.
pub fn later(at: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(d.min(CENTURY)).unwrap_or(at)
}

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
    pub max_restarts: u32,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub has_pre_script: bool,
}

/// Something that happened to a service, or that is asked of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Requests: start now (its dependencies are up and its delays are over).
    Start,
    /// Request: the user or a shutdown wants it down.
    Stop,
    /// Request: the user wants it up again after a stop or a failure.
    Enable,
    /// Notification: the process of `step` was spawned (the supervisor keeps its pid).
    Spawned(Step),
    /// Notification: spawning `step` failed.
    SpawnFailed(Step, String),
    /// Notification: the process of `step` exited.
    Exited(Step, Exit),
    /// Notification: the service's deadline passed.
    DeadlinePassed,
    /// Notification: a dependency failed for good.
    DependencyFailed(String),
    /// Notification: the dependencies were not up within dependency_wait_timeout.
    DependencyTimeout(Duration),
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

/// The runtime record of one service.
#[derive(Debug, Clone)]
pub struct Service {
    pub state: State,
    /// What is wanted of it: up (true) or down.
    pub want_up: bool,
    /// Why it is in its state, for humans.
    pub reason: String,
    pub step: Step,
    pub last_exit: Option<Exit>,
    /// Restarts since pidone started.
    pub restarts: u32,
    /// Restarts since the service last stayed up [`STABLE_AFTER`].
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
    /// The last attempt to start failed before the program ran (spawn error, pre_script).
    pub start_failed: bool,
}

impl Service {
    /// A new service, PENDING if enabled, else STOPPED ("disabled").
    pub fn new(enabled: bool, policy: &Policy, now: Instant) -> Service {
        Service {
            state: if enabled {
                State::Pending
            } else {
                State::Stopped
            },
            want_up: enabled,
            reason: if enabled {
                "waiting to start"
            } else {
                "disabled"
            }
            .to_string(),
            step: Step::Main,
            last_exit: None,
            restarts: 0,
            streak: 0,
            backoff: policy.restart_delay,
            since: now,
            up_at: None,
            deadline: None,
            waiting_since: now,
            killed: false,
            start_failed: false,
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

    fn set(&mut self, state: State, reason: impl Into<String>, now: Instant) {
        self.state = state;
        self.reason = reason.into();
        self.since = now;
    }

    /// Applies `event` at time `now`; returns what the supervisor must do. The only writer of
    /// `state`.
    pub fn handle(&mut self, policy: &Policy, event: Event, now: Instant) -> Action {
        use Event::*;
        use State::*;
        match (self.state, event) {
            (Pending, Start) => {
                self.deadline = None;
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
                    self.start_failed = false;
                }
                if step == Step::Main && policy.kind == Kind::Longrun {
                    self.up_at = Some(now);
                    self.set(Running, "", now);
                }
                Action::Nothing
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
                }
                self.deadline = None;
                let reason = if self.killed {
                    "killed after stop_timeout"
                } else {
                    "stopped"
                };
                self.set(Stopped, reason, now);
                Action::Nothing
            }
            (Stopping, DeadlinePassed) if !self.killed => {
                self.killed = true;
                self.deadline = None;
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
            (Stopped | Failed, Enable) => {
                self.want_up = true;
                self.streak = 0;
                self.backoff = policy.restart_delay;
                self.waiting_since = now;
                self.up_at = None;
                self.set(Pending, "waiting to start", now);
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

    /// The main process exited while the service was wanted up.
    fn after_exit(&mut self, policy: &Policy, exit: Exit, now: Instant) -> Action {
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
        if !restart {
            if success {
                self.set(State::Stopped, format!("exited ({exit})"), now);
            } else {
                self.set(State::Failed, format!("exited with {exit}"), now);
            }
            return Action::Nothing;
        }
        self.schedule_restart(policy, format!("exited with {exit}"), now)
    }

    /// A start step failed (spawn error, pre_script failure): a restart if the policy allows one,
    /// else FAILED.
    fn after_failure(&mut self, policy: &Policy, why: String, now: Instant) -> Action {
        self.start_failed = true;
        if policy.restart == Restart::Never {
            self.set(State::Failed, why, now);
            return Action::Nothing;
        }
        self.schedule_restart(policy, why, now)
    }

    fn schedule_restart(&mut self, policy: &Policy, why: String, now: Instant) -> Action {
        if self
            .up_at
            .is_some_and(|up| now.saturating_duration_since(up) >= STABLE_AFTER)
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
            max_restarts: 0,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            has_pre_script: false,
        }
    }

    /// Runs the service through start → spawned → exit(code) at `now`.
    fn crash(s: &mut Service, p: &Policy, now: Instant, code: i32) {
        assert_eq!(s.handle(p, Event::Start, now), Action::Spawn(Step::Main));
        s.handle(p, Event::Spawned(Step::Main), now);
        assert_eq!(s.state, State::Running);
        s.handle(p, Event::Exited(Step::Main, Exit::Code(code)), now);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
        crash(&mut s, &p, t0, 1);
        let t1 = s.deadline.unwrap_or(t0);
        crash(&mut s, &p, t1, 1);
        assert_eq!(s.deadline, Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        s.handle(&p, Event::Start, t2);
        s.handle(&p, Event::Spawned(Step::Main), t2);
        let t3 = t2 + STABLE_AFTER;
        s.handle(&p, Event::Exited(Step::Main, Exit::Signal(9)), t3);
        assert_eq!(s.deadline, Some(t3 + Duration::from_secs(1)));
    }

    #[test]
    fn max_restarts_then_failed_for_good() {
        let p = Policy {
            max_restarts: 2,
            ..policy()
        };
        let t0 = Instant::now();
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
        crash(&mut s, &p, t0, 0);
        assert_eq!(s.state, State::Stopped);
        let p = Policy {
            success_exit_codes: vec![0, 3],
            ..policy()
        };
        let mut s = Service::new(true, &p, t0);
        crash(&mut s, &p, t0, 3);
        assert_eq!(s.state, State::Stopped);
        let p = Policy {
            restart: Restart::Always,
            ..policy()
        };
        let mut s = Service::new(true, &p, t0);
        crash(&mut s, &p, t0, 0);
        assert_eq!(s.state, State::Pending);
    }

    #[test]
    fn stop_timeout_leads_to_sigkill() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
        s.handle(&p, Event::DependencyFailed("db".into()), t0);
        assert_eq!(
            (s.state, s.reason.as_str()),
            (State::Failed, "dependency db failed")
        );
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(true, &p, t0);
        crash(&mut s, &p, t0, 1);
        assert!(s.deadline.is_some_and(|d| d > t0));
        s.handle(&p, Event::DeadlinePassed, t0);
        let mut s = Service::new(true, &p, t0);
        s.handle(&p, Event::Start, t0);
        s.handle(&p, Event::Spawned(Step::Main), t0);
        assert_eq!(s.handle(&p, Event::Stop, t0), Action::Signal(libc::SIGTERM));
        assert!(s.deadline.is_some_and(|d| d > t0));
    }

    #[test]
    fn a_failed_start_is_marked_until_the_program_runs() {
        let p = policy();
        let t0 = Instant::now();
        let mut s = Service::new(true, &p, t0);
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
        let mut s = Service::new(false, &p, t0);
        assert_eq!((s.state, s.reason.as_str()), (State::Stopped, "disabled"));
        s.handle(&p, Event::Enable, t0);
        assert_eq!(s.state, State::Pending);
        assert!(s.want_up);
    }
}
