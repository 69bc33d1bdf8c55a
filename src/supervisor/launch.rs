//! Launching a service's processes: its pre_script and main process (with the readiness channel
//! handed over), its post_script, each with the service's user, environment (its secrets read
//! afresh at each launch), directory, process controls and output.

use std::borrow::Cow;
use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use super::checks::Handover;
use super::pipelines::Ends;
use super::system::System;
use super::{Id, Owner, Supervisor};
#[cfg(feature = "s6")]
use crate::config::envfile::read_env_dir;
use crate::config::{Kind, LogMode, ServiceSpec};
use crate::core::service::{Event, Step};
use crate::io::logfile::Rotation;
use crate::io::output::{FileSpec, Source, Stream};
use crate::os::spawn::{self, Forked, Launch, Stdio};

impl<S: System> Supervisor<S> {
    /// Starts a service's pre_script or main process: a failure before the fork is reported to
    /// its state machine at once, the outcome of the exec once known (`execs`).
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
        let handover = handover.map(|h| Handover {
            secrets: step == Step::Main,
            main: step == Step::Main,
            ..h
        });
        match handover.and_then(|h| self.launch(id, &argv, h)) {
            // Forked: the exec's outcome comes through the poll loop (`execs`), and with it the
            // service's `Spawned` or `SpawnFailed`; the next service forks meanwhile.
            Ok(forked) => {
                self.procs
                    .insert(forked.child.pid, Owner::Service(id, step));
                if let Some(svc) = self.svcs.get_mut(id) {
                    svc.child = Some(forked.child);
                    svc.exec = Some((step, forked.exec));
                }
            }
            Err(err) => {
                let why = spawn::exec_failure_reason(&err);
                self.apply(id, Event::SpawnFailed(step, why), now);
            }
        }
    }

    /// Spawns `argv` as service `id` would run: its user, environment, directory and output.
    pub(super) fn launch(
        &mut self,
        id: Id,
        argv: &[String],
        handover: Handover,
    ) -> io::Result<Forked> {
        let (stdout, stderr, sources) = self.output_of(id)?;
        let ends = match handover.main {
            true => self.pipeline_ends(id)?,
            false => Ends::default(),
        };
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let listen: Vec<_> = (self.svcs.get(id).iter())
            .filter(|_| handover.listen)
            .flat_map(|s| s.sockets.iter().map(AsFd::as_fd))
            .collect();
        let mut extra = handover.env;
        if !listen.is_empty() {
            let names = vec![spec.name.as_str(); listen.len()].join(":");
            extra.push(("LISTEN_FDS".to_string(), listen.len().to_string()));
            extra.push(("LISTEN_FDNAMES".to_string(), names));
        }
        let env = launch_env(spec, handover.secrets, extra)?;
        let cgroup = match &self.cgroups {
            Some(tree) => Some(
                (tree.prepare(&spec.name, &spec.cgroup))
                    .map_err(|e| io::Error::other(format!("cgroup: {e}")))?,
            ),
            None if spec.cgroup.is_empty() => None,
            None => {
                let why = "cgroup limits set, but pidone could not set up cgroups (see its log)";
                return Err(io::Error::other(why));
            }
        };
        let stdout = ends.stdout.map_or(stdout, Stdio::from);
        let stderr = ends.stderr.map_or(stderr, Stdio::from);
        let launch = Launch {
            argv,
            env: &env,
            workdir: spec.workdir.as_deref(),
            user: spec.user.as_ref(),
            controls: &spec.controls,
            cgroup,
            stdin: ends.stdin,
            stdout,
            stderr,
            notify_fd: handover.notify_fd,
            listen,
        };
        let forked = self.sys.launch(launch)?;
        // The write ends went to the child (and are closed here with `launch`): the pipes reach
        // EOF when the service and everything it spawned are gone.
        self.sources
            .extend(sources.into_iter().map(|src| (id, src)));
        Ok(forked)
    }

    /// Service `id`'s stdout and stderr as its `log`, `log_file` and `tty` say, with the sources
    /// pidone reads (none for `raw` and `null`); its log file is configured and opened again.
    fn output_of(&mut self, id: Id) -> io::Result<(Stdio, Stdio, Vec<Source>)> {
        let Some(spec) = self.svcs.get(id).map(|s| &s.spec) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let console = match &spec.log {
            LogMode::Prefix => true,
            LogMode::File(f) => f.console,
            LogMode::Raw | LogMode::Null => false,
        };
        let (stdout, stderr, sources) = match &spec.log {
            LogMode::Prefix | LogMode::File(_) if spec.tty => {
                // One terminal for both streams, as on a console: its lines all go to stdout.
                let (master, slave) = crate::os::sys::pty()?;
                let stderr = slave.try_clone()?;
                let key = Some(id.key());
                let source =
                    (self.output).source_of(key, &spec.name, Stream::Stdout, master, console);
                (Stdio::from(slave), Stdio::from(stderr), vec![source])
            }
            LogMode::Prefix | LogMode::File(_) => {
                let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let key = Some(id.key());
                let sources = vec![
                    (self.output).source_of(key, &spec.name, Stream::Stdout, out_r, console),
                    (self.output).source_of(key, &spec.name, Stream::Stderr, err_r, console),
                ];
                (Stdio::from(out_w), Stdio::from(err_w), sources)
            }
            LogMode::Raw => (Stdio::Inherit, Stdio::Inherit, Vec::new()),
            LogMode::Null => (Stdio::Null, Stdio::Null, Vec::new()),
        };
        // The log file is opened again at each spawn (as the service's user, never following a
        // symlink): a file that cannot be opened costs lines, counted, never the start.
        let file = match &spec.log {
            LogMode::File(f) => Some(FileSpec {
                path: f.path.clone(),
                user: spec.user.clone(),
                rotation: f.max_size.map(|max_size| Rotation {
                    max_size,
                    keep: f.keep,
                }),
                json: f.json.unwrap_or(self.output.style().json),
            }),
            _ => None,
        };
        let has_file = file.is_some();
        match &spec.log {
            LogMode::Raw | LogMode::Null => self.output.forget_log(id.key()),
            _ => self.output.configure_log(id.key(), &spec.name, file),
        }
        if has_file {
            self.output.reopen_log(id.key());
        }
        Ok((stdout, stderr, sources))
    }

    pub(super) fn run_post_script(&mut self, id: Id) {
        let Some(svc) = self.svcs.get(id) else { return };
        let Some(argv) = svc.spec.post_script.clone() else {
            return;
        };
        let name = svc.spec.name.clone();
        let handover = Handover {
            secrets: true,
            ..Handover::default()
        };
        match self.launch(id, &argv, handover).and_then(Forked::wait) {
            Ok(child) => {
                self.procs.insert(child.pid, Owner::PostScript(id));
            }
            Err(err) => log::warn!("{name}: post_script: {err}"),
        }
    }
}

/// The environment of one launch: the service's, with (if `secrets`) its secrets read now and
/// the readiness variable (`NOTIFY_SOCKET`) if any. A secret that cannot be read fails the
/// launch.
fn launch_env(
    spec: &ServiceSpec,
    secrets: bool,
    extra: Vec<(String, String)>,
) -> io::Result<Cow<'_, [(String, String)]>> {
    let mut env = Cow::Borrowed(&spec.env[..]);
    let mut added: Vec<(String, String)> = Vec::new();
    #[cfg_attr(not(feature = "s6"), allow(unused_mut))]
    let mut unset: Vec<String> = Vec::new();
    #[cfg(feature = "s6")]
    for (var, value) in spec.env_dir.iter().flat_map(|d| read_env_dir(d)) {
        match value {
            Some(value) => added.push((var, value)),
            None => unset.push(var),
        }
    }
    for s in spec.secrets.iter().filter(|_| secrets) {
        let value = crate::config::read_secret(&s.path).map_err(|e| {
            let path = s.path.display();
            io::Error::other(format!("secret {}: cannot read {path}: {e}", s.var))
        })?;
        added.push((s.var.clone(), value));
    }
    added.extend(extra);
    if !added.is_empty() || !unset.is_empty() {
        let env = env.to_mut();
        env.retain(|(k, _)| !added.iter().any(|(a, _)| a == k) && !unset.contains(k));
        env.extend(added);
    }
    Ok(env)
}
