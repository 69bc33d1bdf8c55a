//! The two hooks s6 has and pidone's model otherwise lacks: a service's `finish`, run after
//! each exit of its main process before that exit reaches the state machine (s6-supervise's
//! `./finish`), and the configuration's `shutdown_scripts`, run one by one once every service
//! is down and before the stragglers are stopped (s6-overlay's `cont-finish.d`). Each runs with a
//! time limit, after which its process group gets SIGKILL. Both need the `s6` feature (the keys
//! are refused without it): this file is compiled out otherwise.

use crate::os::spawn::Stdio;

use rustix::process::Pid;
use std::time::Instant;

use super::checks::Handover;
use super::system::System;
use super::{Id, Owner, Supervisor};
use crate::core::service::{Event, State, Step, later};
use crate::os::reap::Exit;
use crate::os::spawn::{Forked, Launch};

/// What a `finish` exiting with this code means to s6: the service stays down.
const FINISH_KEEP_DOWN: i32 = 125;

impl<S: System> Supervisor<S> {
    /// Runs service `id`'s `finish` for `exit` of its main process, if it has one: true when it
    /// did (the exit is handed to the state machine once `finish` is over).
    pub(super) fn run_finish(&mut self, id: Id, exit: Exit, now: Instant) -> bool {
        let Some(svc) = self.svcs.get(id) else {
            return false;
        };
        let Some(mut argv) = svc.spec.finish.clone() else {
            return false;
        };
        // s6's arguments: the exit code and 0, or 256 and the signal that killed it.
        let (code, sig) = match exit {
            Exit::Code(c) => (c, 0),
            Exit::Signal(s) => (256, s),
            Exit::OutOfMemory => (256, libc::SIGKILL),
        };
        argv.extend([code.to_string(), sig.to_string()]);
        let limit = svc.spec.finish_timeout;
        let handover = Handover {
            secrets: true,
            ..Handover::default()
        };
        match self.launch(id, &argv, handover).and_then(Forked::wait) {
            Ok(child) => {
                self.procs.insert(child.pid, Owner::Finish(id, exit));
                if let Some(svc) = self.svcs.get_mut(id) {
                    svc.finish_by = Some((child.pid, later(now, limit)));
                }
                true
            }
            Err(err) => {
                let name = self.svcs.get(id).map_or("?", |s| s.spec.name.as_str());
                log::warn!("{name}: finish: {err}");
                false
            }
        }
    }

    /// A `finish` or shutdown script (`owner`) ended with `exit`.
    pub(super) fn on_hook_exit(&mut self, pid: Pid, owner: Owner, exit: Exit, now: Instant) {
        self.kill_group(pid, libc::SIGKILL);
        match owner {
            Owner::Finish(id, main_exit) => self.on_finish_exit(id, main_exit, exit, now),
            _ => {
                self.shutdown_script = None;
                if exit != Exit::Code(0) {
                    log::warn!("shutdown script {} failed: {exit}", pid.as_raw_nonzero());
                }
            }
        }
    }

    /// Service `id`'s `finish` ended with `done`: the exit of the main process it was run for
    /// goes to the state machine, and a restart it scheduled is cancelled if `finish` said 125.
    fn on_finish_exit(&mut self, id: Id, exit: Exit, done: Exit, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        svc.finish_by = None;
        if !matches!(done, Exit::Code(0 | FINISH_KEEP_DOWN)) {
            log::warn!("{}: finish failed: {done}", svc.spec.name);
        }
        self.apply(id, Event::Exited(Step::Main, exit), now);
        let pending = |s: &super::Service| s.life.state == State::Pending && s.life.want_up;
        if done == Exit::Code(FINISH_KEEP_DOWN) && self.svcs.get(id).is_some_and(pending) {
            let name = self.svcs.get(id).map_or("?", |s| s.spec.name.as_str());
            log::warn!("{name}: finish exited 125: not restarted");
            self.apply(id, Event::Stop, now);
        }
    }

    /// A `finish` past its time limit gets SIGKILL; one still within it sets the wake-up.
    pub(super) fn settle_finish(&mut self, id: Id, now: Instant) {
        let Some((pid, at)) = self.svcs.get(id).and_then(|s| s.finish_by) else {
            return;
        };
        if now < at {
            return self.wake_at(at);
        }
        if let Some(svc) = self.svcs.get_mut(id) {
            log::warn!(
                "{}: finish still running after finish_timeout: SIGKILL",
                svc.spec.name
            );
            svc.finish_by = None;
        }
        self.kill_group(pid, libc::SIGKILL);
    }

    /// At shutdown, once every service is down: runs the next of `shutdown_scripts` if none
    /// is running, kills one past its time limit. False when none is left to run or wait for.
    pub(super) fn settle_shutdown_scripts(&mut self, now: Instant, cap: Instant) -> bool {
        if let Some((pid, at)) = self.shutdown_script {
            if now >= at {
                log::warn!("shutdown script still running after shutdown_script_timeout: SIGKILL");
                self.kill_group(pid, libc::SIGKILL);
                self.shutdown_script = Some((pid, cap));
            }
            self.wake_at(at.min(cap));
            return true;
        }
        while let Some(argv) = self.shutdown_scripts.pop_front() {
            // Not `env::vars`, which panics on a variable that is not UTF-8.
            let env: Vec<(String, String)> = (std::env::vars_os())
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect();
            let launch = Launch {
                argv: &argv,
                env: &env,
                workdir: None,
                user: None,
                controls: &Default::default(),
                cgroup: None,
                stdin: None,
                stdout: Stdio::Inherit,
                stderr: Stdio::Inherit,
                notify_fd: None,
                listen: Vec::new(),
            };
            match self.sys.launch(launch).and_then(Forked::wait) {
                Ok(child) => {
                    let at = later(now, self.shutdown_script_timeout).min(cap);
                    self.procs.insert(child.pid, Owner::ShutdownScript);
                    self.shutdown_script = Some((child.pid, at));
                    self.wake_at(at);
                    return true;
                }
                Err(err) => log::warn!("shutdown script {}: {err}", argv.join(" ")),
            }
        }
        false
    }
}
