//! Unit-test support for the supervisor's glue: a fake [`System`] that starts no process (it
//! hands out made-up pids and records every signal), and a [`Rig`] that drives a supervisor of a
//! configuration text with a fake clock: settle, exits, requests, reloads.

#![allow(clippy::indexing_slicing)]

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::Pid;

use super::system::System;
use super::{Id, Options, Supervisor};
use crate::config::{Config, LoadContext};
use crate::core::service::State;
use crate::os::fork::ExecReport;
use crate::os::reap::{Children, Exit};
use crate::os::spawn::{Child, Forked, Launch};

/// The fake system: process `n` is pid `FIRST_PID + n`, above the kernel's largest pid
/// (`PID_MAX_LIMIT`, 4,194,304), and no signal leaves it.
#[derive(Default)]
pub struct Fake {
    /// Each process started: its argv and pid.
    pub started: Vec<(Vec<String>, Pid)>,
    /// Each signal sent, as (process group or pid, signal), in order.
    pub sent: Vec<(Pid, i32)>,
    /// Services' execs do not happen until the test says so ([`Rig::exec`]): the write ends of
    /// their reports, by pid. Otherwise each exec is done (or failed) as soon as forked.
    pub hold_execs: bool,
    pub held: Vec<(Pid, OwnedFd)>,
    /// Programs whose exec fails, with the errno.
    pub failing: Vec<(String, i32)>,
}

const FIRST_PID: i32 = 4_200_000;

impl Fake {
    fn next(&mut self, argv: Vec<String>) -> io::Result<Child> {
        let n = i32::try_from(self.started.len()).unwrap_or(0);
        let pid = Pid::from_raw(FIRST_PID + n).ok_or(Errno::INVAL)?;
        self.started.push((argv, pid));
        Ok(Child::made_up(pid))
    }
}

impl System for Fake {
    fn launch(&mut self, launch: Launch<'_>) -> io::Result<Forked> {
        let child = self.next(launch.argv.to_vec())?;
        let (exec, writer) = ExecReport::made_up()?;
        let program = launch.argv.first().map_or("", String::as_str);
        if self.hold_execs {
            self.held.push((child.pid, writer));
        } else if let Some((_, errno)) = self.failing.iter().find(|(p, _)| p == program) {
            rustix::io::write(&writer, &errno.to_ne_bytes())?;
        }
        Ok(Forked { child, exec })
    }

    fn spawn(&mut self, argv: &[OsString]) -> io::Result<Child> {
        self.next(
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        )
    }

    fn signal(&mut self, child: &Child, sig: i32) -> io::Result<()> {
        self.sent.push((child.pid, sig));
        // A killed child holds no end of its exec report any more.
        if sig == libc::SIGKILL {
            self.held.retain(|(pid, _)| *pid != child.pid);
        }
        Ok(())
    }

    fn kill_group(&mut self, group: Pid, sig: i32) -> Result<(), Errno> {
        self.sent.push((group, sig));
        Ok(())
    }

    fn kill(&mut self, pid: Pid, sig: i32) -> Result<(), Errno> {
        self.sent.push((pid, sig));
        Ok(())
    }

    fn kill_everything(&mut self, _sig: i32) -> io::Result<()> {
        Ok(())
    }

    fn children(&mut self) -> Vec<Pid> {
        Vec::new()
    }

    fn reap(&mut self, _on_exit: &mut dyn FnMut(Pid, Exit)) -> Children {
        Children::None
    }
}

/// Loads configuration `text` as a file would be.
pub fn config(text: &str) -> Config {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("pidone-unit-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the config");
    let config = crate::config::load(std::slice::from_ref(&path), &LoadContext::from_process());
    let _ = std::fs::remove_file(&path);
    config.expect("a valid config")
}

/// A supervisor over [`Fake`] and a clock the test moves.
pub struct Rig {
    pub sup: Supervisor<Fake>,
    pub now: Instant,
}

impl Rig {
    /// A supervisor of configuration `text`, settled once.
    pub fn new(text: &str) -> Rig {
        Rig::with(text, false)
    }

    /// As [`Rig::new`], but no exec happens until [`Rig::exec`] says so.
    pub fn holding(text: &str) -> Rig {
        Rig::with(text, true)
    }

    fn with(text: &str, hold_execs: bool) -> Rig {
        let options = Options {
            group: false,
            grace: Duration::from_secs(5),
            map_exit: Vec::new(),
            log_lines: 100,
            log_style: Default::default(),
            config_paths: Vec::new(),
            passed_sockets: None,
            listen: Vec::new(),
        };
        let now = Instant::now();
        let fake = Fake {
            hold_execs,
            ..Fake::default()
        };
        let sup = Supervisor::with_system(fake, options, config(text), now);
        let mut rig = Rig { sup, now };
        rig.settle();
        rig
    }

    /// Settles, and hands every exec report that is there to its service (as the loop's poll
    /// does), until nothing changes.
    pub fn settle(&mut self) {
        loop {
            self.sup.settle(self.now);
            let held: Vec<Pid> = self.sup.sys.held.iter().map(|(pid, _)| *pid).collect();
            let ready: Vec<Id> = (self.sup.svcs.iter())
                .filter(|(_, s)| s.exec.is_some())
                .filter(|(_, s)| s.child.as_ref().is_some_and(|c| !held.contains(&c.pid)))
                .map(|(id, _)| id)
                .collect();
            if ready.is_empty() {
                return;
            }
            for id in ready {
                self.sup.settle_exec(id, self.now);
            }
        }
    }

    /// The held exec of service `name` happens (`errno` None) or fails; then everything settles.
    pub fn exec(&mut self, name: &str, errno: Option<i32>) {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("{name} has no process"));
        let held = &mut self.sup.sys.held;
        let i = (held.iter().position(|(p, _)| *p == pid))
            .unwrap_or_else(|| panic!("{name}: no exec held"));
        let (_, writer) = held.remove(i);
        if let Some(errno) = errno {
            rustix::io::write(&writer, &errno.to_ne_bytes()).expect("write the report");
        }
        drop(writer);
        self.settle();
    }

    /// True while service `name`'s exec is not known.
    pub fn exec_pending(&self, name: &str) -> bool {
        self.sup
            .svcs
            .get(self.id(name))
            .is_some_and(|s| s.exec.is_some())
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.settle();
    }

    pub fn id(&self, name: &str) -> Id {
        (self.sup.svcs.iter())
            .find(|(_, s)| s.spec.name == name)
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    pub fn state(&self, name: &str) -> State {
        let id = self.id(name);
        self.sup.svcs.get(id).expect("in the table").life.state
    }

    pub fn pid(&self, name: &str) -> Option<Pid> {
        let id = self.id(name);
        let svc = self.sup.svcs.get(id).expect("in the table");
        svc.child.as_ref().map(|c| c.pid)
    }

    /// The service's process exits with `exit`; then everything settles.
    pub fn exit(&mut self, name: &str, exit: Exit) {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("{name} has no process"));
        // A child that is gone holds no end of its exec report: a held exec ends with it.
        self.sup.sys.held.retain(|(p, _)| *p != pid);
        self.sup.on_exit(pid, exit, self.now);
        self.settle();
    }

    /// The names of the services sent `sig` (to their process group), in order.
    pub fn signalled(&self, sig: i32) -> Vec<String> {
        let names: Vec<(Pid, String)> = (self.sup.sys.started.iter())
            .map(|(argv, pid)| (*pid, argv.join(" ")))
            .collect();
        (self.sup.sys.sent.iter())
            .filter(|(_, s)| *s == sig)
            .filter_map(|(pid, _)| names.iter().find(|(p, _)| p == pid))
            .map(|(_, argv)| argv.rsplit(' ').next().unwrap_or_default().to_string())
            .collect()
    }
}
