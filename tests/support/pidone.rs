//! pidone started for a test (services or single-program mode, on its own or behind a wrapper,
//! stdin fed or not), its output going to files in the test's [`Dir`], and killed with every
//! process of its run when the test ends, even when it fails.
//!
//! Processes of a run are found by a unique environment variable ([`TAG_VAR`]) set on pidone and
//! inherited by every service and everything they spawn, so cleanup never matches by name.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::dir::Dir;
use super::mode::{Mode, pidone};
use super::process::{
    DEADLINE, Outcome, POLL, now_ns, pids_with_env, send_signal, sigkill, stat, tail,
};

/// The environment variable marking every process of one run.
pub const TAG_VAR: &str = "PIDONE_SVC_TEST_TAG";

/// A unique tag value for one run.
fn new_tag() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}x{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        now_ns() % 1_000_000_000
    )
}

/// Which of pidone's standard streams is a pipe the test holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Piped {
    None,
    Stdin,
    Stdout,
    Stderr,
}

/// A started pidone. Dropping it SIGKILLs every process of the run.
pub struct Pidone {
    pub mode: Mode,
    child: Option<Child>,
    tag: String,
    stdout: PathBuf,
    stderr: PathBuf,
    pid: Option<u32>,
    status: Option<ExitStatus>,
}

impl Pidone {
    /// Starts `pidone ARGS...` in `mode`, its stdout and stderr going to files in `dir`, with
    /// `env` added to the environment it inherits from the test.
    pub fn start(mode: Mode, dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Pidone {
        Pidone::spawn(mode, dir, mode.command(args), env, Piped::None)
    }

    /// Starts `command` (from [`Mode::command`] or [`Mode::command_via`]) like
    /// [`Pidone::start`], with `stdin` (if any) fed to it and then closed.
    pub fn start_command(mode: Mode, dir: &Dir, command: Command, stdin: Option<&[u8]>) -> Pidone {
        let Some(input) = stdin else {
            return Pidone::spawn(mode, dir, command, &[], Piped::None);
        };
        let mut run = Pidone::spawn(mode, dir, command, &[], Piped::Stdin);
        let mut pipe = run
            .child
            .as_mut()
            .expect("child")
            .stdin
            .take()
            .expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
        // Dropping the pipe closes it: the child sees end of file.
        run
    }

    /// Starts `pidone --config CONFIG EXTRA...` in `mode` (see [`Pidone::start`]).
    pub fn start_config(mode: Mode, dir: &Dir, config: &str, extra: &[&str]) -> Pidone {
        let mut args = vec!["--config", config];
        args.extend_from_slice(extra);
        Pidone::start(mode, dir, &args, &[])
    }

    /// Like [`Pidone::start`], but pidone's stdout is a pipe the test reads (or not) itself.
    pub fn start_piped(mode: Mode, dir: &Dir, args: &[&str]) -> (Pidone, ChildStdout) {
        let mut run = Pidone::spawn(mode, dir, mode.command(args), &[], Piped::Stdout);
        let pipe = run.child.as_mut().expect("child").stdout.take();
        (run, pipe.expect("stdout pipe"))
    }

    /// Like [`Pidone::start`], but pidone's stderr is a pipe the test reads (or not) itself.
    pub fn start_stderr_piped(mode: Mode, dir: &Dir, args: &[&str]) -> (Pidone, ChildStderr) {
        let mut run = Pidone::spawn(mode, dir, mode.command(args), &[], Piped::Stderr);
        let pipe = run.child.as_mut().expect("child").stderr.take();
        (run, pipe.expect("stderr pipe"))
    }

    fn spawn(
        mode: Mode,
        dir: &Dir,
        mut command: Command,
        env: &[(&str, &str)],
        piped: Piped,
    ) -> Pidone {
        let tag = new_tag();
        let n = {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            RUNS.fetch_add(1, Ordering::Relaxed)
        };
        let stdout = dir.join(&format!("pidone-{n}.stdout"));
        let stderr = dir.join(&format!("pidone-{n}.stderr"));
        command
            .env(TAG_VAR, &tag)
            // Each pidone gets its own control socket: tests run in parallel.
            .env("PIDONE_SOCKET", dir.join(&format!("pidone-{n}.sock")))
            .envs(env.iter().copied())
            .stdin(if piped == Piped::Stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if piped == Piped::Stdout {
                Stdio::piped()
            } else {
                Stdio::from(fs::File::create(&stdout).expect("stdout file"))
            })
            .stderr(if piped == Piped::Stderr {
                Stdio::piped()
            } else {
                Stdio::from(fs::File::create(&stderr).expect("stderr file"))
            });
        let child = command.spawn().expect("spawn pidone");
        Pidone {
            mode,
            child: Some(child),
            tag,
            stdout,
            stderr,
            pid: None,
            status: None,
        }
    }

    /// What pidone printed to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stdout).unwrap_or_default()).into_owned()
    }

    /// What pidone printed to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// Live processes of this run (pidone, its services, their children), `unshare` excluded.
    pub fn processes(&self) -> Vec<u32> {
        let unshare = self.child.as_ref().map(Child::id);
        pids_with_env(TAG_VAR, &self.tag)
            .into_iter()
            .filter(|&p| Some(p) != unshare || self.mode == Mode::Child)
            .collect()
    }

    /// Whether pidone (or the `unshare` holding it) is still running.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self
            .child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("try_wait")
        {
            Some(status) => {
                self.status = Some(status);
                false
            }
            None => true,
        }
    }

    /// pidone's pid as the test sees it.
    pub fn pid(&mut self) -> u32 {
        if let Some(pid) = self.pid {
            return pid;
        }
        let top = self.child.as_ref().expect("child").id();
        let pid = match self.mode {
            Mode::Child => top,
            Mode::Pid1 => {
                let exe = fs::canonicalize(pidone()).expect("canonical pidone path");
                let mut found = None;
                self.wait_for("unshare to exec pidone", |run| {
                    found = pids_with_env(TAG_VAR, &run.tag).into_iter().find(|&p| {
                        stat(p).is_some_and(|(_, ppid)| ppid == top)
                            && fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == exe)
                    });
                    found.is_some()
                });
                found.expect("pidone found")
            }
        };
        self.pid = Some(pid);
        pid
    }

    /// Sends a signal (a name like `TERM`) to pidone.
    pub fn signal(&mut self, signal: &str) {
        let pid = self.pid();
        send_signal(pid, signal);
    }

    /// Polls `condition` (given this run, for its output) until it holds; fails at once, with
    /// pidone's output, if pidone exits meanwhile, and after [`DEADLINE`].
    pub fn wait_for(&mut self, what: &str, condition: impl FnMut(&Pidone) -> bool) {
        self.wait_for_within(what, DEADLINE, condition);
    }

    /// [`Pidone::wait_for`] with a deadline of its own, for work whose time grows with the
    /// machine's load (thousands of processes made by the test itself).
    pub fn wait_for_within(
        &mut self,
        what: &str,
        within: Duration,
        mut condition: impl FnMut(&Pidone) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if condition(self) {
                return;
            }
            if !self.is_running() {
                // One last look: the condition may have become true just before the exit.
                if condition(self) {
                    return;
                }
                panic!(
                    "{:?}: pidone exited ({:?}) while waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                    self.mode,
                    self.status,
                    tail(&self.stdout()),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: timed out after {within:?} waiting for {what}\nstdout:\n{}\nstderr:\n{}",
                self.mode,
                tail(&self.stdout()),
                self.stderr()
            );
            thread::sleep(POLL);
        }
    }

    /// Waits for pidone to exit on its own within [`DEADLINE`].
    pub fn wait(&mut self) -> Outcome {
        self.wait_timeout(DEADLINE)
    }

    /// Waits for pidone to exit within `timeout`; panics (after killing the run) otherwise.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                let (stdout, stderr) = (self.stdout(), self.stderr());
                self.kill_all();
                panic!(
                    "{:?}: pidone still running after {timeout:?}\nstdout:\n{}\nstderr:\n{stderr}",
                    self.mode,
                    tail(&stdout)
                );
            }
            thread::sleep(POLL);
        }
        Outcome {
            mode: self.mode,
            status: self.status.expect("exited"),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// SIGKILLs every process of the run and reaps pidone (or unshare).
    fn kill_all(&mut self) {
        for _ in 0..3 {
            let pids = pids_with_env(TAG_VAR, &self.tag);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                sigkill(pid);
            }
            thread::sleep(POLL);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status.get_or_insert(status);
            }
        }
    }
}

impl Drop for Pidone {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Runs `pidone ARGS...` in `mode` to completion, its output kept in a directory of its own.
pub fn run<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> Outcome {
    let dir = Dir::new();
    Pidone::start_command(mode, &dir, mode.command(args), None).wait()
}
