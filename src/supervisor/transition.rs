//! Where a service's state changes: [`Supervisor::apply`] feeds an event to its state machine,
//! logs the transition and carries out the action that comes back; [`Supervisor::on_exit`] turns
//! a reaped pid into the event of whoever owned it.

use std::time::Instant;

use rustix::process::Pid;

use super::system::System;
use super::{Id, Owner, Supervisor};
use crate::control::wire;
use crate::core::service::{Action, Event, State, Step, later};
use crate::os::reap::Exit;

impl<S: System> Supervisor<S> {
    pub(super) fn on_exit(&mut self, pid: Pid, exit: Exit, now: Instant) {
        if self.main.as_ref().is_some_and(|m| m.pid == pid) {
            log::debug!("main program {} ended: {exit}", pid.as_raw_nonzero());
            self.main = None;
            self.main_exit = Some(exit);
            #[cfg(feature = "s6")]
            self.record_main_exit(exit.code());
            self.begin_shutdown(now);
            return;
        }
        // A child that ends before its exec report was read: the report first (`execs`).
        self.settle_exec_of(pid, now);
        match self.procs.remove(&pid) {
            Some(Owner::Service(id, step)) => {
                // Nothing the service spawned survives it: its session's group goes too, and
                // its cgroup (what escaped the session with setsid).
                self.kill_group(pid, libc::SIGKILL);
                let Some(svc) = self.svcs.get_mut(id) else {
                    return;
                };
                if let Some(Err(e)) = self.cgroups.as_ref().map(|t| t.kill(&svc.spec.name)) {
                    log::warn!("{}: cgroup.kill: {e}", svc.spec.name);
                }
                // A SIGKILL pidone did not send, while the cgroup's OOM kills went up.
                let mut exit = exit;
                if step == Step::Main {
                    let killed = exit == Exit::Signal(libc::SIGKILL);
                    if svc.look_at_oom_kills(killed && svc.life.state != State::Stopping) {
                        log::warn!("{}: killed by the OOM killer", svc.spec.name);
                        exit = Exit::OutOfMemory;
                    }
                    svc.oom = Default::default();
                }
                svc.child = None;
                let name = &svc.spec.name;
                log::debug!(
                    "{name}: {} {} ended: {exit}",
                    step_name(step),
                    pid.as_raw_nonzero()
                );
                let message = format!("{name}: {} ended: {exit}", step_name(step));
                let mut event = wire::Event::new("exit", Some(name), message);
                event.exit = Some(super::api::last_exit(exit));
                self.emit(event, now);
                #[cfg(feature = "s6")]
                if step == Step::Main && self.run_finish(id, exit, now) {
                    return;
                }
                self.apply(id, Event::Exited(step, exit), now);
            }
            Some(Owner::Check(id, k)) => {
                self.kill_group(pid, libc::SIGKILL);
                self.on_check_exit(id, k, pid, exit, now);
            }
            Some(Owner::PostScript(id)) => {
                self.kill_group(pid, libc::SIGKILL);
                let name = self.svcs.get(id).map_or("?", |s| s.spec.name.as_str());
                if exit == Exit::Code(0) {
                    log::debug!("{name}: post_script done");
                } else {
                    log::warn!("{name}: post_script failed: {exit}");
                }
            }
            #[cfg(feature = "s6")]
            Some(owner @ (Owner::Finish(..) | Owner::ShutdownScript)) => {
                self.on_hook_exit(pid, owner, exit, now);
            }
            Some(Owner::FailedExec) => {
                log::trace!("reaped {} (its exec failed): {exit}", pid.as_raw_nonzero());
            }
            None => {
                self.orphans_reaped += 1;
                log::trace!("reaped orphan {}: {exit}", pid.as_raw_nonzero());
            }
        }
    }

    /// Feeds `event` to service `id` and carries out the action it returns.
    pub(super) fn apply(&mut self, id: Id, event: Event, now: Instant) {
        // An exec in flight is known before anything else happens to the service (`execs`).
        self.settle_exec_before(id, &event, now);
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let (before, intent, restarts) = (svc.life.state, svc.life.intent, svc.life.restarts);
        let once = svc.once && matches!(event, Event::Exited(Step::Main, _));
        let action = svc.life.handle(&svc.policy, event, now);
        let after = svc.life.state;
        if svc.life.restarts != restarts {
            let name = &svc.spec.name;
            let n = svc.life.restarts;
            let mut event = wire::Event::new("restart", Some(name), format!("{name}: restart {n}"));
            event.restarts = Some(n);
            self.emit(event, now);
        }
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        if intent != svc.life.intent {
            log::info!("{}: {}", svc.spec.name, svc.life.intent.as_str());
        }
        if before != after {
            let reason = &svc.life.reason;
            let sep = if reason.is_empty() { "" } else { ": " };
            // Failing for good is worth a line even at the default (quiet) level.
            let level = match after {
                State::Failed => log::Level::Warn,
                _ => log::Level::Info,
            };
            log::log!(
                level,
                "{}: {} -> {}{sep}{reason}",
                svc.spec.name,
                before.as_str(),
                after.as_str()
            );
            if after == State::Running && svc.spec.post_script.is_some() {
                svc.post_at = Some(later(now, self.post_script_timeout));
            }
            let name = &svc.spec.name;
            let message = format!(
                "{name}: {} -> {}{sep}{reason}",
                before.as_str(),
                after.as_str()
            );
            let mut event = wire::Event::new("state", Some(name), message);
            (event.from, event.state) = (Some(before.as_str()), Some(after.as_str()));
            self.emit(event, now);
            self.record_run(id, before, after, now);
            match after {
                State::Running => self.on_up(id, now),
                State::Starting => {}
                _ => self.on_down(id),
            }
            let Some(svc) = self.svcs.get(id) else {
                return;
            };
            if after == State::Failed && svc.spec.required && self.required_failure.is_none() {
                // A failed start is 1 (documented), whatever an earlier run exited with.
                let code = match svc.life.last_exit {
                    _ if svc.life.start_failed => 1,
                    Some(exit) if exit != Exit::Code(0) => exit.code(),
                    _ => 1,
                };
                log::error!("required service {} failed: shutting down", svc.spec.name);
                self.required_failure = Some(code);
                self.begin_shutdown(now);
            }
        }
        if once {
            self.end_once(id, now);
        }
        match action {
            Action::Nothing => {}
            Action::Spawn(step) => self.spawn_step(id, step, now),
            Action::Signal(sig) => {
                if self.phase != super::Phase::Running {
                    self.release_pipeline(id);
                }
                if let Some(pid) = self
                    .svcs
                    .get(id)
                    .and_then(|s| s.child.as_ref())
                    .map(|c| c.pid)
                {
                    self.kill_group(pid, sig);
                }
            }
        }
    }
}

impl<S: System> Supervisor<S> {
    /// Service `id`, asked to run once (s6-svc's `-O`), saw its process end: a restart its
    /// policy scheduled is cancelled and it stays down (held, as by `pidone stop`) until
    /// started again, as s6-supervise does not start it again.
    fn end_once(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        svc.once = false;
        if svc.life.state == State::Pending && svc.life.want_up {
            log::info!("{}: asked to run once: not restarted", svc.spec.name);
            self.apply(id, Event::Hold, now);
        }
    }
}

pub(super) fn step_name(step: Step) -> &'static str {
    match step {
        Step::PreScript => "pre_script",
        Step::Main => "process",
    }
}
