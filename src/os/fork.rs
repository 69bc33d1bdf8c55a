//! Fork and exec without `std::process`, for every child pidone starts: std's `Command` brings an
//! environment map, `posix_spawn` and stdio plumbing, some 20 kB of the full build and 25 kB of
//! the init-only one, for a few lines of ours. The contract is std's as pidone used it: a hook
//! runs in the child first (the callers put stdio, directory and the rest there, in std's
//! order), then exec; an error of either comes back to the parent through a close-on-exec pipe,
//! the failed child reaped.
//!
//! That pipe is read at once by [`fork_exec`] (the main program, hooks, checks), or later by the
//! supervisor's poll loop for a service ([`fork_start`] and its [`ExecReport`]): pidone forks the
//! next service while the last one is still on its way to exec (start-up pipelining).
//!
//! The program is found as std found it. With the environment inherited (the main program), by
//! `execvp` on pidone's `PATH`. With an environment of its own (a service, which std got with
//! `env_clear` and `envs`: std installed it as the child's `environ` and called `execvp`), on that
//! environment's `PATH`, the last value of a name winning, and names sorted as std's map sorted
//! them. That search is musl's `execvp`, done here by hand because `execve` must get the
//! environment: a name with a `/` is used as is; else each `PATH` entry (musl's default
//! `/usr/local/bin:/bin:/usr/bin` when there is none) is tried in turn, `ENOENT` and `ENOTDIR`
//! going on to the next, `EACCES` remembered and going on, any other error ending the search.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, WaitOptions, waitpid};

/// musl's `PATH` when the environment has none.
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";

type Pointers = Vec<*const libc::c_char>;

/// Starts `argv` in a forked child that runs `prepare`, then execs, with pidone's environment
/// (`env` is `None`) or exactly `env`; returns the child's pid, or the error of `prepare` or of
/// exec as the child reported it. It waits for that report: the main program, hooks and checks
/// start this way; a service starts by [`fork_start`] and reads its report from the poll loop.
/// Call it only while pidone has one thread: `prepare` runs in the forked copy of pidone, and
/// may allocate.
pub fn fork_exec<A: AsRef<OsStr>>(
    argv: &[A],
    env: Option<&[(String, String)]>,
    prepare: impl FnOnce() -> io::Result<()>,
) -> io::Result<Pid> {
    let (pid, report) = fork_start(argv, env, prepare)?;
    match report.outcome() {
        Ok(()) => Ok(pid),
        Err(err) => {
            collect(pid);
            Err(err)
        }
    }
}

/// As [`fork_exec`], but returns as soon as the child is forked, with its pid and the report of
/// its exec, for the caller to read when it is ready (in pidone's poll set: end of file once the
/// child has exec'd, its errno if it could not). Until then the exec may still fail.
pub fn fork_start<A: AsRef<OsStr>>(
    argv: &[A],
    env: Option<&[(String, String)]>,
    prepare: impl FnOnce() -> io::Result<()>,
) -> io::Result<(Pid, ExecReport)> {
    let strings = (argv.iter())
        .map(|a| c_string(a.as_ref().as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let program = strings.first().ok_or(Errno::INVAL)?;
    let argv = pointers(&strings);
    let environment = env.map(environment).transpose()?;
    let envp = environment.as_deref().map(pointers);
    let candidates = match &environment {
        Some(vars) => candidates(program.as_bytes(), vars)?,
        None => Vec::new(),
    };
    let (reader, writer) = pipe_with(PipeFlags::CLOEXEC)?;
    // SAFETY: pidone has one thread, so the child is a consistent copy with no lock held; it
    // only runs `prepare` and exec, and leaves with `_exit`, never returning into pidone's code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let err = match (prepare(), &envp) {
            (Err(err), _) => err,
            (Ok(()), Some(envp)) => exec_path(&candidates, &argv, envp),
            // SAFETY: `program` and every pointer are NUL-terminated strings built before the
            // fork, and the array ends with NULL.
            (Ok(()), None) => unsafe {
                libc::execvp(program.as_ptr(), argv.as_ptr());
                io::Error::last_os_error()
            },
        };
        let errno = err.raw_os_error().unwrap_or(libc::EINVAL);
        let _ = rustix::io::write(&writer, &errno.to_ne_bytes());
        // SAFETY: _exit ends the child at once, without running pidone's exit handlers.
        unsafe { libc::_exit(127) };
    }
    // A failed fork (-1: EAGAIN under a pids limit, ENOMEM) is an error, never a `Pid` (whose
    // constructor asserts a number not below 0).
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = Pid::from_raw(pid).ok_or_else(io::Error::last_os_error)?;
    // From here only the child holds the write end: its exec (close-on-exec) or its exit ends it.
    drop(writer);
    Ok((pid, ExecReport(reader)))
}

/// The read end of a child's close-on-exec error pipe: end of file once the child has exec'd
/// (or died before it could say anything), else the errno of what failed.
#[derive(Debug)]
pub struct ExecReport(OwnedFd);

impl ExecReport {
    /// The pipe, for the poll set: readable (or hung up) once the outcome is known.
    #[cfg(feature = "services")]
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }

    /// The outcome, waiting for it if it is not there yet: `Ok` once the child has exec'd, or
    /// the error it reported. The child is not reaped here: a failed one exits 127.
    pub fn outcome(&self) -> io::Result<()> {
        let mut errno = [0u8; 4];
        loop {
            return match rustix::io::read(&self.0, &mut errno) {
                // End of file: exec closed the pipe.
                Ok(0) => Ok(()),
                Ok(_) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
                Err(Errno::INTR) => continue,
                // Cannot be told: the child is taken as started, and reaped like any other.
                Err(_) => Ok(()),
            };
        }
    }

    /// A report with no child behind it, and the write end that decides it (the supervisor's
    /// unit tests): closed, an exec; an errno written, a failure.
    #[cfg(test)]
    pub(crate) fn made_up() -> io::Result<(ExecReport, OwnedFd)> {
        let (reader, writer) = pipe_with(PipeFlags::CLOEXEC)?;
        Ok((ExecReport(reader), writer))
    }
}

/// Waits for the child `pid`, whose exec failed and which exits at once: collected here, as std
/// did, so that nobody else takes it for a service's exit.
pub fn collect(pid: Pid) {
    while let Err(Errno::INTR) = waitpid(Some(pid), WaitOptions::empty()) {}
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(Errno::INVAL))
}

/// The NULL-terminated array of pointers into `strings`.
fn pointers(strings: &[CString]) -> Pointers {
    let mut list: Pointers = strings.iter().map(|s| s.as_ptr()).collect();
    list.push(std::ptr::null());
    list
}

/// `NAME=value` strings as std's `envs` made them: sorted by name, the last value of a name kept.
fn environment(env: &[(String, String)]) -> io::Result<Vec<CString>> {
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    // Stable: of equal names the later stays later, and wins below.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<&(String, String)> = Vec::with_capacity(sorted.len());
    for var in sorted {
        match kept.last_mut() {
            Some(last) if last.0 == var.0 => *last = var,
            _ => kept.push(var),
        }
    }
    (kept.iter())
        .map(|(k, v)| c_string(format!("{k}={v}").as_bytes()))
        .collect()
}

/// The paths to try for `program`, as musl's `execvp` would under the environment `vars`.
fn candidates(program: &[u8], vars: &[CString]) -> io::Result<Vec<CString>> {
    if program.contains(&b'/') {
        return Ok(vec![c_string(program)?]);
    }
    if program.is_empty() {
        return Ok(Vec::new());
    }
    let path = (vars.iter().rev())
        .find_map(|v| v.as_bytes().strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH);
    (path.split(|&b| b == b':'))
        .map(|dir| {
            let mut full = dir.to_vec();
            if !dir.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(program);
            c_string(&full)
        })
        .collect()
}

/// In the child: `execve` of each candidate in turn, as `execvp` tries `PATH`; returns the error
/// that ends the search (`EACCES` if one was met and nothing else stopped it, else `ENOENT`).
fn exec_path(candidates: &[CString], argv: &Pointers, envp: &Pointers) -> io::Error {
    let mut denied = false;
    for path in candidates {
        // SAFETY: `path` and every pointer are NUL-terminated strings built before the fork, and
        // both arrays end with NULL.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EACCES) => denied = true,
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            _ => return err,
        }
    }
    io::Error::from_raw_os_error(if denied { libc::EACCES } else { libc::ENOENT })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_is_sorted_with_the_last_value_of_a_name() {
        let env = environment(&vars(&[("B", "1"), ("A", "2"), ("B", "3")])).unwrap();
        let got: Vec<&[u8]> = env.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(got, [&b"A=2"[..], b"B=3"]);
    }

    #[test]
    fn candidates_follow_the_childs_path() {
        let env = environment(&vars(&[("PATH", "/opt/x::/y")])).unwrap();
        let got = candidates(b"tool", &env).unwrap();
        let got: Vec<&[u8]> = got.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(got, [&b"/opt/x/tool"[..], b"tool", b"/y/tool"]);
        let got = candidates(b"tool", &[]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got.first().unwrap().as_bytes(), b"/usr/local/bin/tool");
        let got = candidates(b"./tool", &env).unwrap();
        assert_eq!(got.first().unwrap().as_bytes(), b"./tool");
    }

    /// A directory of its own holding `tool` (a script exiting 7) and `plain` (not executable).
    fn tools() -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pidone-fork-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("tool");
        std::fs::write(&tool, "#!/bin/sh\nexit 7\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("plain"), "").unwrap();
        dir
    }

    fn run(program: &str, env: &[(String, String)]) -> io::Result<i32> {
        let pid = fork_exec(&[program], Some(env), || Ok(()))?;
        let status = waitpid(Some(pid), WaitOptions::empty()).unwrap().unwrap();
        Ok(status.1.exit_status().unwrap())
    }

    /// A program named without a `/` is found on the child's own `PATH`, which pidone's (the
    /// test's) does not include, and the search's errors are `execvp`'s.
    #[test]
    fn a_bare_name_is_found_on_the_childs_path_not_pidones() {
        let dir = tools();
        let own = dir.display().to_string();
        let parent = std::env::var("PATH").unwrap_or_default();
        assert!(!parent.split(':').any(|d| d == own));
        let env = vars(&[("PATH", &format!("/nonexistent:{own}")), ("X", "1")]);
        assert_eq!(run("tool", &env).unwrap(), 7);
        let err = run("no-such-tool", &env).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = run("plain", &env).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
        let _ = std::fs::remove_dir_all(dir);
    }
}
