//! Launching a service's processes: its pre_script and main process (with the readiness channel
//! handed over), its post_script, each with the service's user, environment, directory and
//! output.

use std::io;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::Instant;

use super::checks::Handover;
use super::system::System;
use super::{Id, Owner, Supervisor};
use crate::config::{Kind, Level, LogMode};
use crate::core::service::{Event, State, Step};
use crate::io::output::Stream;
use crate::os::spawn::{self, Child, Launch};

impl<S: System> Supervisor<S> {
    /// Starts a service's pre_script or main process and reports the outcome to its state machine.
    pub(super) fn spawn_step(&mut self, id: Id, step: Step, now: Instant) {
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return;
        };
        let argv = match step {
            Step::PreScript => spec.pre_script.clone().unwrap_or_default(),
            Step::Main => spec.argv.clone(),
        };
        let longrun_main = step == Step::Main && spec.kind == Kind::Longrun;
        let handover = if longrun_main {
            self.prepare_notify(id)
                .map(|h| Handover { listen: true, ..h })
        } else {
            Ok(Handover::default())
        };
        let event = match handover.and_then(|h| self.launch(id, &argv, h)) {
            Ok(child) => {
                let pid = child.pid;
                self.procs.insert(pid, Owner::Service(id, step));
                if let Some(svc) = self.svcs.get_mut(id) {
                    svc.child = Some(child);
                }
                Event::Spawned(step)
            }
            Err(err) => Event::SpawnFailed(step, spawn::exec_failure_reason(&err)),
        };
        self.apply(id, event, now);
        if longrun_main
            && self
                .svcs
                .get(id)
                .is_some_and(|s| s.life.state == State::Starting)
        {
            self.arm_checks(id, Level::Ready, now);
        }
    }

    /// Spawns `argv` as service `id` would run: its user, environment, directory and output.
    pub(super) fn launch(
        &mut self,
        id: Id,
        argv: &[String],
        handover: Handover,
    ) -> io::Result<Child> {
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let (stdout, stderr, sources) = match &spec.log {
            LogMode::Prefix => {
                let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let sources = [
                    self.output.source(&spec.name, Stream::Stdout, out_r),
                    self.output.source(&spec.name, Stream::Stderr, err_r),
                ];
                (Stdio::from(out_w), Stdio::from(err_w), Some(sources))
            }
            LogMode::Raw => (Stdio::inherit(), Stdio::inherit(), None),
            LogMode::Null => (Stdio::null(), Stdio::null(), None),
            LogMode::File(path) => {
                let file = crate::io::files::open_for_service(path, spec.user.as_ref())
                    .map_err(|e| io::Error::other(format!("log_file {}: {e}", path.display())))?;
                let copy = file.try_clone()?;
                (Stdio::from(file), Stdio::from(copy), None)
            }
        };
        let mut env = std::borrow::Cow::Borrowed(&spec.env);
        let svc = self.svcs.get(id);
        let listen: Vec<_> = (svc.iter())
            .filter(|_| handover.listen)
            .flat_map(|s| s.sockets.iter().map(AsFd::as_fd))
            .collect();
        let mut extra = handover.env;
        if !listen.is_empty() {
            let names = vec![spec.name.as_str(); listen.len()].join(":");
            extra.push(("LISTEN_FDS".to_string(), listen.len().to_string()));
            extra.push(("LISTEN_FDNAMES".to_string(), names));
        }
        for (key, value) in extra {
            let env = env.to_mut();
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        let launch = Launch {
            argv,
            env: &env,
            workdir: spec.workdir.as_deref(),
            user: spec.user.as_ref(),
            stdout,
            stderr,
            notify_fd: handover.notify_fd,
            listen,
        };
        let child = self.sys.launch(launch)?;
        // The write ends went to the child (and are closed here with `launch`): the pipes reach
        // EOF when the service and everything it spawned are gone.
        self.sources
            .extend(sources.into_iter().flatten().map(|src| (id, src)));
        Ok(child)
    }

    pub(super) fn run_post_script(&mut self, id: Id) {
        let Some(svc) = self.svcs.get(id) else { return };
        let Some(argv) = svc.spec.post_script.clone() else {
            return;
        };
        let name = svc.spec.name.clone();
        match self.launch(id, &argv, Handover::default()) {
            Ok(child) => {
                self.procs.insert(child.pid, Owner::PostScript(id));
            }
            Err(err) => log::warn!("{name}: post_script: {err}"),
        }
    }
}
