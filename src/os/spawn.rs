//! Building a child: its own process group (and the terminal's foreground when there is one),
//! exactly the signal mask and dispositions pidone inherited, then `exec`.
//!
//! [`crate::os::fork`] does the fork, the `PATH` lookup and the reporting of `exec` errors to
//! the parent, in both builds (`std::process::Command` did it in the full build, for some 20 kB
//! more). The hook in the child does the rest by hand, in the order std did its part before its
//! `pre_exec` hooks: the process group; for a service its stdio (`dup2` onto 0, 1 and 2, by a
//! [`Stdio`] of ours rather than std's) and then its working directory, an error of either
//! reported as an exec error, as std reported it. Then what std lacked: take the terminal's
//! foreground (while `SIGTTOU` is still ignored, as pidone ignores it), then restore the inherited
//! signal state (std reset the mask to empty; pidone's contract is "as inherited").
//!
//! A service's [`launch`] returns as soon as the child is forked ([`Forked`]): the supervisor
//! reads the outcome of its exec from its poll loop. The main program's [`spawn`] waits for it.

use std::ffi::OsString;
use std::io;
#[cfg(feature = "services")]
use std::os::fd::AsRawFd;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[cfg(feature = "services")]
use std::path::Path;

use rustix::io::Errno;
use rustix::process::{Pid, kill_process, kill_process_group};
#[cfg(feature = "services")]
use rustix::process::{PidfdFlags, pidfd_open};

#[cfg(feature = "services")]
use crate::os::controls::{self, Controls};
#[cfg(feature = "services")]
use crate::os::fork::ExecReport;
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
/// `listen_pid`, its `LISTEN_PID` is its own pid (the sockets passed to pidone are its). The
/// environment is pidone's, so exec takes the child's `environ`, with that `LISTEN_PID`.
pub fn spawn(argv: &[OsString], saved: &SavedSignals, listen_pid: bool) -> io::Result<Child> {
    let foreground = rustix::termios::isatty(rustix::stdio::stdin());
    let pid = crate::os::fork::fork_exec(argv, None, || {
        rustix::process::setpgid(None, None)?;
        prepare_main(listen_pid, foreground, saved)
    })?;
    Ok(finish(pid))
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

/// Where a service's stdout or stderr goes (std's `Stdio`, the three cases pidone uses).
#[cfg(feature = "services")]
#[derive(Debug)]
pub enum Stdio {
    /// pidone's own.
    Inherit,
    /// `/dev/null`, opened for the spawn.
    Null,
    /// This descriptor, closed in pidone once the child has its copy.
    Fd(OwnedFd),
}

#[cfg(feature = "services")]
impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

/// The descriptor to put at `n` for `stdio`, if any (`/dev/null` opened into `null` once).
#[cfg(feature = "services")]
fn stdio_place(
    stdio: &Stdio,
    n: i32,
    null: &mut Option<OwnedFd>,
) -> io::Result<Option<(i32, i32)>> {
    let fd = match stdio {
        Stdio::Inherit => return Ok(None),
        Stdio::Fd(fd) => fd.as_raw_fd(),
        Stdio::Null => match null {
            Some(fd) => fd.as_raw_fd(),
            None => {
                use rustix::fs::{Mode, OFlags};
                let flags = OFlags::RDWR | OFlags::CLOEXEC;
                null.insert(rustix::fs::open("/dev/null", flags, Mode::empty())?)
                    .as_raw_fd()
            }
        },
    };
    Ok(Some((fd, n)))
}

/// A service's child just forked, whose exec is not known yet: its [`ExecReport`] says, once
/// readable, whether it exec'd. [`Forked::wait`] waits for it there and then.
#[cfg(feature = "services")]
#[derive(Debug)]
pub struct Forked {
    pub child: Child,
    pub exec: ExecReport,
}

#[cfg(feature = "services")]
impl Forked {
    /// The child once it has exec'd, or the error of its exec (the failed child collected), as
    /// [`crate::os::fork::fork_exec`] returns them: for the processes started synchronously.
    pub fn wait(self) -> io::Result<Child> {
        match self.exec.outcome() {
            Ok(()) => Ok(self.child),
            Err(err) => {
                crate::os::fork::collect(self.child.pid);
                Err(err)
            }
        }
    }
}

/// Starts a service process in a new session (so in its own process group, without a controlling
/// terminal), stdin from /dev/null unless given, with the given user, environment and working
/// directory. Returns once it is forked: its exec's outcome comes later ([`Forked`]).
#[cfg(feature = "services")]
pub fn launch(launch: Launch<'_>, saved: &SavedSignals) -> io::Result<Forked> {
    // Stdio as std put it: each given descriptor onto 0, 1 and 2 (`place_fds` copes with one
    // sitting where another goes), `/dev/null` opened here for the null ones.
    let stdin = launch.stdin.map_or(Stdio::Null, Stdio::Fd);
    let mut null = None;
    let mut stdio = Vec::new();
    for (which, n) in [(&stdin, 0), (&launch.stdout, 1), (&launch.stderr, 2)] {
        stdio.extend(stdio_place(which, n, &mut null)?);
    }
    let workdir = match launch.workdir {
        Some(dir) => Some(std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?),
        None => None,
    };
    let user = launch.user;
    let switching = user.is_some_and(|u| u.uid != 0);
    let controls = launch.controls;
    let cgroup = launch.cgroup;
    // Each handed-over fd is placed at its number in the child. A number free here is taken for
    // the spawn (a close-on-exec copy of what goes there), so that the exec-error pipe of
    // `fork_exec`, created just before the fork, cannot land on it and be overwritten.
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
    // In the forked child (see `fork_exec`): stdio, then the directory, as std did them before
    // its `pre_exec` hook; then what the hook did: dup2, fcntl, setsid, openat and write of
    // cgroup.procs and /proc/self/oom_score_adj, setrlimit, setpriority, umask, prctl, capset,
    // setgroups, setgid, setuid, sigaction, sigprocmask, execve.
    let started = crate::os::fork::fork_start(launch.argv, Some(launch.env), || {
        sys::place_fds(&stdio)?;
        if let Some(dir) = &workdir {
            rustix::process::chdir(dir.as_c_str())?;
        }
        sys::place_fds(&places)?;
        rustix::process::setsid()?;
        if let Some(dir) = &cgroup {
            controls::join_cgroup(dir.as_fd())?;
        }
        controls.before_user(switching)?;
        if let Some(user) = user {
            sys::set_credentials(user.uid, user.gid, &user.groups)?;
        }
        controls.after_user(switching)?;
        saved.restore()?;
        match &mut exec {
            Some(exec) => Err(exec.run()),
            None => Ok(()),
        }
    });
    // pidone's copies of stdio and of the notify fd close here; the child has its own.
    drop((stdin, launch.stdout, launch.stderr, null));
    drop(reserved);
    drop(launch.notify_fd);
    let (pid, exec) = started?;
    Ok(Forked {
        child: finish(pid),
        exec,
    })
}

/// A service's exec prepared before the fork, for a child that must know its own pid in its
/// environment (`LISTEN_PID`): `fork_exec` takes an environment built before the fork, so the
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

/// The started child `pid`, with a pidfd to signal it by. pidone's reaper owns the pid.
#[cfg(feature = "services")]
fn finish(pid: Pid) -> Child {
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
    Child { pid, pidfd }
}

/// The init-only build's child: pidone's direct child, whose pid stays its own until pidone reaps
/// it, so no pidfd is needed to signal it safely, and its exit comes with `SIGCHLD`.
#[cfg(not(feature = "services"))]
fn finish(pid: Pid) -> Child {
    Child { pid, pidfd: None }
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
