//! Settling: everything that follows from the current state, applied until nothing changes,
//! and the next deadline. Services start once their dependencies are up ([`start_time`]), stop
//! (at shutdown or by request) once everything that depends on them is down, fire their due
//! deadlines; the main program starts once no service is on its way up.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::conditions::{Verdict, verdict};
use super::system::System;
use super::table::Table;
use super::{Id, Phase, STARTS_PER_TURN, Service, Supervisor};
use crate::core::service::{Event, Intent, State, later};
use crate::os::reap::Exit;

impl<S: System> Supervisor<S> {
    /// Applies everything that follows from the current state, until nothing changes, and
    /// computes the next deadline.
    pub(super) fn settle(&mut self, now: Instant) {
        self.starts = 0;
        loop {
            self.wake = None;
            let mut changed = false;
            for i in 0..self.svcs.len() {
                if let Some(id) = self.svcs.nth(i) {
                    changed |= self.settle_one(id, now);
                }
            }
            if !changed {
                break;
            }
        }
        if self.more_to_reap {
            self.wake_at(now);
        }
        self.forget_removed();
        #[cfg(feature = "s6")]
        self.settle_cmd_wait(now);
        if self.phase == Phase::Running && self.main.is_none() && self.main_exit.is_none() {
            self.maybe_start_main(now);
        }
        if self.phase == Phase::Running
            && self.services_mode
            && self.main_argv.is_none()
            && self.main.is_none()
            && !self.svcs.iter().any(|(_, s)| {
                ((s.spec.timer.is_some() || s.spec.on_demand)
                    && s.spec.enabled
                    && s.life.intent == Intent::Run)
                    || s.life.is_active()
                    || (s.life.state == State::Pending && s.life.want_up)
                    || matches!(s.life.intent, Intent::Hold | Intent::Restart)
            })
        {
            log::info!("no service left to run: exiting");
            self.begin_shutdown(now);
        }
        if let Phase::Stopping { cap } = self.phase {
            if now >= cap {
                log::warn!(
                    "shutdown budget (global_shutdown_timeout, {}) spent: SIGKILL to everything left",
                    crate::config::format_duration(self.global_shutdown)
                );
                self.kill_all(now, "killed: the shutdown budget is spent");
            } else if self.main.is_none() && !self.svcs.iter().any(|(_, s)| s.life.is_active()) {
                #[cfg(feature = "s6")]
                let scripts = self.settle_shutdown_scripts(now, cap);
                #[cfg(not(feature = "s6"))]
                let scripts = false;
                if !scripts {
                    self.begin_draining(now);
                }
            } else {
                self.wake_at(cap);
            }
        }
        match self.phase {
            Phase::Running | Phase::Stopping { .. } => {}
            Phase::Draining { kill_at } => self.wake_at(kill_at),
            Phase::Killing { give_up_at } => self.wake_at(give_up_at),
        }
        for server in self.servers.iter_mut().flatten() {
            if let Some(at) = server.expire(now) {
                self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
            }
        }
        self.tell_upstream();
    }

    /// Settles one service; true when its state changed.
    pub(super) fn settle_one(&mut self, id: Id, now: Instant) -> bool {
        let Some(svc) = self.svcs.get(id) else {
            return false;
        };
        let before = (svc.life.state, svc.life.want_up);
        let shutting_down = !matches!(self.phase, Phase::Running);
        if let Some(at) = svc.post_at.filter(|_| svc.life.state == State::Running) {
            if now >= at {
                if let Some(svc) = self.svcs.get_mut(id) {
                    svc.post_at = None;
                }
                self.run_post_script(id);
            } else {
                self.wake_at(at);
            }
        }
        let starting = |s: &Service| s.life.state == State::Pending && s.life.want_up;
        // A dependency brought up changes another service: settle goes round again.
        let released = !shutting_down
            && self.svcs.get(id).is_some_and(starting)
            && self.start_on_demand_deps(id, now);
        let Some(svc) = self.svcs.get(id) else {
            return false;
        };
        let wants_down = svc.life.intent.wants_down();
        match svc.life.state {
            State::Pending if shutting_down || !svc.life.want_up || wants_down => {
                self.apply(id, Event::Stop, now);
            }
            State::Pending => match start_time(&self.svcs, id) {
                Gate::Failed(dep) => self.apply(id, Event::DependencyFailed(dep), now),
                Gate::Waiting => {
                    let limit = svc.spec.dependency_wait_timeout;
                    let at = later(svc.life.waiting_since, limit);
                    if now >= at {
                        self.apply(id, Event::DependencyTimeout(limit), now);
                    } else {
                        self.wake_at(at);
                    }
                }
                Gate::At(at) if now >= at && self.starts >= STARTS_PER_TURN => self.wake_at(at),
                Gate::At(at) if now >= at => {
                    self.starts += 1;
                    self.apply(id, Event::Start, now);
                }
                Gate::At(at) => self.wake_at(at),
            },
            State::Starting | State::Running
                if ((shutting_down && self.main.is_none()) || wants_down)
                    && self.dependents_down(id) =>
            {
                self.apply(id, Event::Stop, now);
            }
            State::Stopped | State::Failed
                if svc.life.intent == Intent::Restart
                    && !shutting_down
                    && !self.upstream_restarting(id) =>
            {
                self.apply(id, Event::Enable, now);
            }
            State::Stopping => match svc.life.deadline {
                Some(at) if now >= at => {
                    log::warn!(
                        "{}: still running after stop_timeout: SIGKILL",
                        svc.spec.name
                    );
                    self.apply(id, Event::DeadlinePassed, now);
                }
                Some(at) => self.wake_at(at),
                None => {}
            },
            _ => {}
        }
        // Waiting for readiness: `ready.after` or `start_timeout`.
        let deadline = (self.svcs.get(id))
            .filter(|s| s.life.state == State::Starting)
            .and_then(|s| s.life.deadline);
        match deadline {
            Some(at) if now >= at => self.apply(id, Event::DeadlinePassed, now),
            Some(at) => self.wake_at(at),
            None => {}
        }
        if self.svcs.get(id).is_some_and(|s| !s.checks.is_empty()) {
            self.settle_checks(id, now);
        }
        self.settle_max_runtime(id, now);
        #[cfg(feature = "s6")]
        self.settle_finish(id, now);
        self.settle_idle(id, now);
        self.settle_watchdog(id, now);
        self.settle_timer(id, now);
        released
            || self
                .svcs
                .get(id)
                .is_some_and(|s| before != (s.life.state, s.life.want_up))
    }

    /// True when nothing that depends on service `id` (or is ordered after it), directly or
    /// through any chain, still runs and is going down too (at shutdown, everything is): a
    /// dependent that stays up (ordered `after` a service the user stops) does not hold it. A
    /// service that is down (a finished oneshot, a stopped middle service) passes the dependency
    /// on: `web` after the done `migrate` after `db` keeps `db` up until `web` is down.
    pub(super) fn dependents_down(&self, id: Id) -> bool {
        let all = self.phase != Phase::Running;
        !self.reaches(id, dependents_of, |d| {
            d.life.is_active() && (all || d.life.intent.wants_down())
        })
    }

    /// True when nothing that depends on service `id` (directly or through any chain) runs.
    pub(super) fn dependents_idle(&self, id: Id) -> bool {
        !self.reaches(id, dependents_of, |d| d.life.is_active())
    }

    /// True while something service `id` depends on (or starts after), directly or through any
    /// chain, is being restarted: a dependent taken down by a restart comes back only after it.
    fn upstream_restarting(&self, id: Id) -> bool {
        self.reaches(id, dependencies_of, |d| d.life.intent == Intent::Restart)
    }

    /// True when a service reached from `id` along `edges`, directly or through any chain
    /// (`id` itself excluded), satisfies `hit`.
    fn reaches(
        &self,
        id: Id,
        edges: fn(&Service) -> [&[Id]; 2],
        hit: impl Fn(&Service) -> bool,
    ) -> bool {
        let mut seen = HashSet::new();
        let mut todo = vec![id];
        while let Some(at) = todo.pop() {
            let Some(svc) = self.svcs.get(at) else {
                continue;
            };
            for &d in edges(svc).into_iter().flatten() {
                let Some(next) = self.svcs.get(d) else {
                    continue;
                };
                if hit(next) {
                    return true;
                }
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        false
    }

    /// Forgets the services a reload removed once they are down; their log followers end.
    pub(super) fn forget_removed(&mut self) {
        let gone: Vec<Id> = (self.svcs.iter())
            .filter(|(_, s)| s.life.intent == Intent::Remove && !s.life.is_active())
            .map(|(id, _)| id)
            .collect();
        for id in gone {
            if let Some(svc) = self.svcs.remove(id) {
                log::debug!("{}: removed", svc.spec.name);
                if let Some(Err(e)) = self.cgroups.as_ref().map(|t| t.remove(&svc.spec.name)) {
                    log::debug!("{}: its cgroup stays: {e}", svc.spec.name);
                }
            }
            self.output.forget_log(id.key());
            for server in self.servers.iter_mut().flatten() {
                server.end_followers(id.key());
            }
        }
    }

    /// Starts the main program once no service is on its way up (every enabled service up, or
    /// failed for good), or once S6_CMD_WAIT_FOR_SERVICES_MAXTIME ran out.
    pub(super) fn maybe_start_main(&mut self, now: Instant) {
        if self.main_argv.is_none() {
            return;
        }
        #[cfg(feature = "s6")]
        let ran_out = self.cmd_wait_ran_out();
        #[cfg(not(feature = "s6"))]
        let ran_out = false;
        if self.settling() && !ran_out {
            return;
        }
        let Some(argv) = self.main_argv.take() else {
            return;
        };
        if let Err(code) = self.start_main(&argv) {
            #[cfg(feature = "s6")]
            self.record_main_exit(code);
            self.main_exit = Some(Exit::Code(code));
            self.begin_shutdown(now);
        }
    }

    /// True while an enabled service (not a timed job) is on its way up.
    pub(super) fn settling(&self) -> bool {
        self.svcs.iter().any(|(_, s)| {
            s.spec.timer.is_none()
                && s.life.want_up
                && (s.life.state == State::Pending
                    || (s.life.state == State::Starting && !s.life.is_up(s.spec.kind)))
        })
    }

    pub(super) fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

/// What depends on a service or is ordered after it.
fn dependents_of(svc: &Service) -> [&[Id]; 2] {
    [&svc.dependents, &[]]
}

/// What a service depends on or is ordered after.
fn dependencies_of(svc: &Service) -> [&[Id]; 2] {
    [&svc.deps, &svc.after]
}

/// When service `id` (PENDING) may start, from its dependencies and delays. A longrun dependency
/// counts once it is up, that is ready (RUNNING), never while it is still STARTING, unless the
/// service asks less of it (`"started"`, see `conditions`).
pub(super) fn start_time(svcs: &Table<Service>, id: Id) -> Gate {
    let Some(svc) = svcs.get(id) else {
        return Gate::Waiting;
    };
    // The moment the dependencies were satisfied (the latest dependency up + its wait_after),
    // then start_delay on top, and never before a restart backoff ends.
    let mut at = svc.life.waiting_since;
    for dep in &svc.deps {
        let Some(d) = svcs.get(*dep) else {
            return Gate::Waiting;
        };
        // A timed job is no gate: its runs come and go on their own.
        if d.spec.timer.is_some() {
            continue;
        }
        let up = match verdict(svc.condition_of(*dep), d) {
            Verdict::Met(at) => at,
            Verdict::Waiting => return Gate::Waiting,
            Verdict::Failed => return Gate::Failed(d.spec.name.clone()),
        };
        let extra = (svc.wait_after.iter())
            .find(|(w, _)| w == dep)
            .map_or(Duration::ZERO, |(_, delay)| *delay);
        at = at.max(later(up, extra));
    }
    for dep in &svc.after {
        let starting = svcs.get(*dep).is_some_and(|d| {
            d.spec.timer.is_none()
                && (d.life.state == State::Starting
                    || (d.life.state == State::Pending && d.life.want_up))
        });
        if starting {
            return Gate::Waiting;
        }
    }
    let at = later(at, svc.spec.start_delay);
    Gate::At(
        svc.life
            .deadline
            .map_or(at, |not_before| at.max(not_before)),
    )
}

/// Whether a PENDING service may start.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// A dependency failed for good (its name).
    Failed(String),
    /// A dependency is not up yet.
    Waiting,
    /// It may start at this instant.
    At(Instant),
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::LoadContext;
    use crate::core::service::Step;

    /// The services of configuration `text`, as the supervisor holds them at `now`, and their
    /// ids in the configuration's order.
    fn services(text: &str, now: Instant) -> (Table<Service>, Vec<Id>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pidone-gate-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the config");
        let config = crate::config::load(std::slice::from_ref(&path), &LoadContext::from_process());
        let _ = std::fs::remove_file(&path);
        let mut config = config.expect("a valid config");
        super::super::service::table_of(&mut config, now)
    }

    fn svc(svcs: &mut Table<Service>, id: Id) -> &mut Service {
        svcs.get_mut(id).expect("a service of the table")
    }

    fn handle(svc: &mut Service, event: Event, now: Instant) {
        svc.life.handle(&svc.policy, event, now);
    }

    const CONFIG: &str = r#"
[[services]]
name = "db"
command = ["/bin/true"]
ready = { notify_fd = 3 }
start_timeout = "10s"
restart = "never"

[[services]]
name = "web"
command = ["/bin/true"]
depends_on = "db"
wait_after = { db = 2 }
"#;

    #[test]
    fn dependents_wait_for_readiness_not_for_the_spawn() {
        let t0 = Instant::now();
        let (mut svcs, ids) = services(CONFIG, t0);
        let (db, web) = (ids[0], ids[1]);
        assert_eq!(start_time(&svcs, db), Gate::At(t0));
        handle(svc(&mut svcs, db), Event::Start, t0);
        handle(svc(&mut svcs, db), Event::Spawned(Step::Main), t0);
        assert_eq!(svc(&mut svcs, db).life.state, State::Starting);
        assert_eq!(
            svc(&mut svcs, db).life.reason,
            "waiting for a newline on fd 3"
        );
        assert_eq!(
            start_time(&svcs, web),
            Gate::Waiting,
            "db runs but is not ready"
        );
        let t1 = t0 + Duration::from_millis(1500);
        handle(svc(&mut svcs, db), Event::Ready, t1);
        assert_eq!(
            start_time(&svcs, web),
            Gate::At(t1 + Duration::from_secs(2)),
            "wait_after counts from readiness"
        );
    }

    #[test]
    fn the_starting_reason_says_what_it_waits_for() {
        let (svcs, _) = services(
            r#"
[[services]]
name = "a"
command = ["/bin/true"]
ready = { sd_notify = true }
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
[[services.checks]]
name = "deep"
http = "http://127.0.0.1:1/"
level = "ready"
[[services.checks]]
exec = ["/bin/true"]

[[services]]
name = "b"
command = ["/bin/true"]
ready = { after = "1500ms" }

[[services]]
name = "c"
command = ["/bin/true"]
"#,
            Instant::now(),
        );
        let reasons: Vec<String> = svcs
            .iter()
            .map(|(_, s)| s.policy.waiting_for.clone())
            .collect();
        assert_eq!(
            reasons,
            [
                "waiting for READY=1 and check tcp and check deep",
                "waiting for 1.5s alive",
                "",
            ]
        );
    }

    #[test]
    fn a_dependency_that_never_gets_ready_fails_its_dependents() {
        let t0 = Instant::now();
        let (mut svcs, ids) = services(CONFIG, t0);
        let (db, web) = (ids[0], ids[1]);
        handle(svc(&mut svcs, db), Event::Start, t0);
        handle(svc(&mut svcs, db), Event::Spawned(Step::Main), t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(svc(&mut svcs, db).life.deadline, Some(t1), "start_timeout");
        handle(svc(&mut svcs, db), Event::DeadlinePassed, t1);
        assert_eq!(start_time(&svcs, web), Gate::Waiting, "db is stopping");
        handle(
            svc(&mut svcs, db),
            Event::Exited(Step::Main, Exit::Signal(libc::SIGTERM)),
            t1,
        );
        assert_eq!(svc(&mut svcs, db).life.state, State::Failed);
        assert_eq!(start_time(&svcs, web), Gate::Failed("db".into()));
    }
}
