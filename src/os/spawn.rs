//! Building a child: its own process group (and the terminal's foreground when there is one),
//! exactly the signal mask and dispositions pidone inherited, then `exec`.
//!
//! `std::process::Command` does the fork, the `PATH` lookup and the reporting of `exec` errors to
//! the parent; the `pre_exec` hook adds what it lacks, in this order: take the terminal's
//! foreground (while `SIGTTOU` is still ignored, as pidone ignores it), then restore the inherited
//! signal state (std resets the mask to empty; pidone's contract is "as inherited").

use std::ffi::OsString;
use std::io;
#[cfg(feature = "services")]
use std::os::fd::AsRawFd;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[cfg(feature = "services")]
use std::os::unix::process::CommandExt;
#[cfg(feature = "services")]
use std::path::Path;
#[cfg(feature = "services")]
use std::process::{Command, Stdio};

use rustix::io::Errno;
use rustix::process::{Pid, kill_process, kill_process_group};
#[cfg(feature = "services")]
use rustix::process::{PidfdFlags, pidfd_open};

#[cfg(feature = "services")]
use crate::os::controls::{self, Controls};
use crate::os::sys::{self, SavedSignals};
#[cfg(feature = "services")]
use crate::os::users::Credentials;

/// A running child: its pid and, where the kernel supports it, a pidfd that can be polled for its
/// exit and signalled without any risk of hitting a recycled pid.
#[derive(Debug)]
pub struct Child {
    pub pid: Pid,
    pidfd: Option<OwnedFd>,
}

impl Child {
    /// A child that no process stands behind (the supervisor's unit tests).
    #[cfg(test)]
    pub(crate) fn made_up(pid: Pid) -> Child {
        Child { pid, pidfd: None }
    }

    /// Sends `sig` to the child only. `ESRCH` (already gone) is reported to the caller.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        let Some(sig) = sys::signal(sig) else {
            return Err(Errno::INVAL.into());
        };
        match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, sig)?,
            None => kill_process(self.pid, sig)?,
        }
        Ok(())
    }

    /// Sends `sig` to the child's whole process group (the child leads it).
    pub fn signal_group(&self, sig: i32) -> io::Result<()> {
        let Some(sig) = sys::signal(sig) else {
            return Err(Errno::INVAL.into());
        };
        kill_process_group(self.pid, sig)?;
        Ok(())
    }

    /// The pidfd, readable once the child has ended, for the poll set.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }
}

/// Starts `argv` as a child in a new process group led by itself, made the terminal's foreground
/// group when `stdin` is a terminal, with the signal state `saved`: the main program. With
/// `listen_pid`, its `LISTEN_PID` is its own pid (the sockets passed to pidone are its).
#[cfg(feature = "services")]
pub fn spawn(argv: &[OsString], saved: &SavedSignals, listen_pid: bool) -> io::Result<Child> {
    let (program, args) = argv.split_first().ok_or(Errno::INVAL)?;
    let mut cmd = Command::new(program);
    cmd.args(args).process_group(0);
    let saved = saved.clone();
    let foreground = rustix::termios::isatty(rustix::stdio::stdin());
    // SAFETY: the hook runs in the forked child before exec and only makes raw system calls
    // (tcsetpgrp, sigaction, sigprocmask) on memory allocated before the fork, and setenv, which
    // allocates: pidone has one thread, so no lock can have been held at the fork. The command's
    // environment is not changed, so exec takes the child's `environ`, with that LISTEN_PID.
    unsafe {
        cmd.pre_exec(move || prepare_main(listen_pid, foreground, &saved));
    }
    finish(cmd)
}

/// [`spawn`] in the init-only build, with the same contract, over [`crate::os::fork`] rather than
/// `std::process` (too big for that build). The program is pidone's direct child: its pid stays
/// its own until pidone reaps it, so no pidfd is needed to signal it safely, and its exit comes
/// with `SIGCHLD` on the signalfd.
#[cfg(not(feature = "services"))]
pub fn spawn(argv: &[OsString], saved: &SavedSignals, listen_pid: bool) -> io::Result<Child> {
    let foreground = rustix::termios::isatty(rustix::stdio::stdin());
    let pid = crate::os::fork::fork_exec(argv, || {
        rustix::process::setpgid(None, None)?;
        prepare_main(listen_pid, foreground, saved)
    })?;
    Ok(Child { pid, pidfd: None })
}

/// In the main program's child, before exec: its `LISTEN_PID`, the terminal's foreground, and
/// the signal state pidone inherited.
fn prepare_main(listen_pid: bool, foreground: bool, saved: &SavedSignals) -> io::Result<()> {
    if listen_pid {
        let mut buf = [0u8; 12];
        let value = crate::os::listen::own_pid(&mut buf);
        // SAFETY: both strings are NUL-terminated; setenv allocates, which is safe in this forked
        // child because pidone has one thread (no lock was held at the fork).
        if unsafe { libc::setenv(c"LISTEN_PID".as_ptr(), value.as_ptr().cast(), 1) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if foreground {
        let me = rustix::process::getpid();
        match rustix::termios::tcsetpgrp(rustix::stdio::stdin(), me) {
            Ok(()) | Err(Errno::NOTTY) | Err(Errno::NXIO) => {}
            Err(err) => return Err(err.into()),
        }
    }
    saved.restore()
}

/// How a service's process is started: everything but the signal state, which is always the one
/// pidone inherited. Services, their launch and its `Exec` are not in the init-only build.
#[cfg(feature = "services")]
pub struct Launch<'a> {
    pub argv: &'a [String],
    /// The complete environment (nothing of pidone's is added).
    pub env: &'a [(String, String)],
    pub workdir: Option<&'a Path>,
    pub user: Option<&'a Credentials>,
    /// Limits, capabilities and the rest, applied around the user switch.
    pub controls: &'a Controls,
    /// The directory of the cgroup to join first, when pidone manages cgroups.
    pub cgroup: Option<OwnedFd>,
    /// `/dev/null` unless given (a logger's end of its pipeline).
    pub stdin: Option<OwnedFd>,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// A descriptor to hand over at a fixed number, 3 or more (`ready.notify_fd`).
    pub notify_fd: Option<(OwnedFd, i32)>,
    /// Sockets to hand over as fds 3… (`listen`), with `LISTEN_PID` set to the child's pid (the
    /// caller puts `LISTEN_FDS` and `LISTEN_FDNAMES` in `env`).
    pub listen: Vec<BorrowedFd<'a>>,
}

/// Starts a service process in a new session (so in its own process group, without a controlling
/// terminal), stdin from /dev/null unless given, with the given user, environment and working
/// directory.
#[cfg(feature = "services")]
pub fn launch(launch: Launch<'_>, saved: &SavedSignals) -> io::Result<Child> {
    let (program, args) = launch.argv.split_first().ok_or(Errno::INVAL)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(launch.stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(launch.stdout)
        .stderr(launch.stderr);
    if let Some(dir) = launch.workdir {
        cmd.current_dir(dir);
    }
    let saved = saved.clone();
    let user = launch.user.cloned();
    let switching = user.as_ref().is_some_and(|u| u.uid != 0);
    let controls = launch.controls.clone();
    let cgroup = launch.cgroup;
    // Each handed-over fd is placed at its number in the child. A number free here is taken for
    // the spawn (a close-on-exec copy of what goes there), so that std's own exec-error pipe,
    // created just before the fork, cannot land on it and be overwritten.
    let mut reserved = Vec::new();
    let mut places = Vec::new();
    let listen = (launch.listen.iter()).zip(3..).map(|(fd, n)| (*fd, n));
    let notify = launch.notify_fd.as_ref().map(|(fd, n)| (fd.as_fd(), *n));
    for (fd, n) in listen.chain(notify) {
        if sys::fd_is_open(n) {
            places.push((fd.as_raw_fd(), n));
        } else {
            let copy = sys::dup_at(fd, n)?;
            places.push((copy.as_raw_fd(), n));
            reserved.push(copy);
        }
    }
    let mut exec = match launch.listen.is_empty() {
        true => None,
        false => Some(Exec::new(launch.argv, launch.env)?),
    };
    // SAFETY: as in `spawn`: only raw system calls (dup2, fcntl, setsid, openat and write of
    // cgroup.procs and /proc/self/oom_score_adj, setrlimit, setpriority, umask, prctl, capset,
    // setgroups, setgid, setuid, sigaction, sigprocmask, execve) on memory allocated before the
    // fork.
    unsafe {
        cmd.pre_exec(move || {
            sys::place_fds(&places)?;
            rustix::process::setsid()?;
            if let Some(dir) = &cgroup {
                controls::join_cgroup(dir.as_fd())?;
            }
            controls.before_user(switching)?;
            if let Some(user) = &user {
                sys::set_credentials(user.uid, user.gid, &user.groups)?;
            }
            controls.after_user(switching)?;
            saved.restore()?;
            match &mut exec {
                Some(exec) => Err(exec.run()),
                None => Ok(()),
            }
        });
    }
    let child = finish(cmd);
    // pidone's copies of the notify fd close here; the child has its own.
    drop(reserved);
    drop(launch.notify_fd);
    child
}

/// A service's exec prepared before the fork, for a child that must know its own pid in its
/// environment (`LISTEN_PID`): std's exec takes an environment built before the fork, so the
/// child execs by itself, after writing its pid into the slot kept for it.
#[cfg(feature = "services")]
struct Exec {
    /// The program (a path: a service's program is resolved at load), argv and environment,
    /// NUL-terminated, and the NULL-terminated pointer arrays into them.
    program: std::ffi::CString,
    _strings: Vec<std::ffi::CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// `LISTEN_PID=` and room for the pid and its NUL; `envp` points at it.
    pid_slot: Box<[u8; 24]>,
}

// SAFETY: the pointers point into the strings and the slot the struct owns (heap memory that
// does not move with it); it is used by the forked child only.
#[cfg(feature = "services")]
unsafe impl Send for Exec {}
// SAFETY: as above; nothing reads it concurrently (pidone has one thread).
#[cfg(feature = "services")]
unsafe impl Sync for Exec {}

#[cfg(feature = "services")]
const PID_KEY: &[u8] = b"LISTEN_PID=";

#[cfg(feature = "services")]
impl Exec {
    fn new(argv: &[String], env: &[(String, String)]) -> io::Result<Exec> {
        let c = |s: String| std::ffi::CString::new(s).map_err(|_| io::Error::from(Errno::INVAL));
        let program = c(argv.first().cloned().unwrap_or_default())?;
        let args = argv
            .iter()
            .map(|a| c(a.clone()))
            .collect::<io::Result<Vec<_>>>()?;
        let vars = (env.iter())
            .filter(|(k, _)| k != "LISTEN_PID")
            .map(|(k, v)| c(format!("{k}={v}")))
            .collect::<io::Result<Vec<_>>>()?;
        let mut pid_slot = Box::new([0u8; 24]);
        if let Some(key) = pid_slot.get_mut(..PID_KEY.len()) {
            key.copy_from_slice(PID_KEY);
        }
        let ptrs = |list: &[std::ffi::CString]| -> Vec<*const libc::c_char> {
            list.iter().map(|s| s.as_ptr()).collect()
        };
        let mut argv = ptrs(&args);
        argv.push(std::ptr::null());
        let mut envp = ptrs(&vars);
        envp.push(pid_slot.as_ptr().cast());
        envp.push(std::ptr::null());
        let mut strings = args;
        strings.extend(vars);
        Ok(Exec {
            program,
            _strings: strings,
            argv,
            envp,
            pid_slot,
        })
    }

    /// In the child: writes its pid into `LISTEN_PID=` and execs; returns only the error.
    fn run(&mut self) -> io::Error {
        let mut digits = [0u8; 12];
        let value = crate::os::listen::own_pid(&mut digits);
        if let Some(slot) = self
            .pid_slot
            .get_mut(PID_KEY.len()..PID_KEY.len() + value.len())
        {
            slot.copy_from_slice(value);
        }
        // The slot's pointer, taken again after the write.
        if let Some(entry) = self.envp.iter_mut().rev().nth(1) {
            *entry = self.pid_slot.as_ptr().cast();
        }
        // SAFETY: every pointer is to a NUL-terminated string owned by `self` (the slot now
        // holds the pid and its NUL), and both arrays end with NULL.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            )
        };
        io::Error::last_os_error()
    }
}

#[cfg(feature = "services")]
fn finish(mut cmd: Command) -> io::Result<Child> {
    let child = cmd.spawn()?;
    let pid = Pid::from_child(&child);
    // Dropping std's handle neither waits nor kills: pidone's reaper owns the pid from now on.
    drop(child);
    let pidfd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => Some(fd),
        Err(err) => {
            // Kernels before 5.3 (or a seccomp filter) lack pidfd_open; signalling by pid works.
            log::debug!(
                "pidfd_open({}): {err}; signalling by pid",
                pid.as_raw_nonzero()
            );
            None
        }
    };
    Ok(Child { pid, pidfd })
}

/// Logs why `argv` could not be started (`NAME: not found`, pidone's one line about it); returns
/// the exit status that reports it ([`exec_failure_code`]).
pub fn exec_failed(argv: &[OsString], err: &io::Error) -> i32 {
    let name = argv
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    log::error!("{name}: {}", exec_failure_reason(err));
    exec_failure_code(err)
}

/// The exit status the shell convention gives to an `exec` failure: 127 when the program was not
/// found, 126 when it was found but could not be run.
pub fn exec_failure_code(err: &io::Error) -> i32 {
    match Errno::from_io_error(err) {
        Some(Errno::NOENT) | Some(Errno::NOTDIR) => 127,
        _ => 126,
    }
}

/// A short reason for an `exec` failure, for the one line pidone prints.
pub fn exec_failure_reason(err: &io::Error) -> String {
    // Only services have controls, whose failures are told apart here.
    #[cfg(feature = "services")]
    if let Some(reason) = controls::describe(err) {
        return reason;
    }
    match Errno::from_io_error(err) {
        Some(Errno::NOENT) => "not found".to_string(),
        Some(Errno::ACCESS) => "permission denied (not executable, or a directory)".to_string(),
        _ => err.to_string(),
    }
}
