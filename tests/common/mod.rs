//! Shared helpers for pidone's black-box tests: run the real binary as a true PID 1 or as a plain
//! child, wait for events with a deadline instead of sleeping, and read what `/proc` says about it.
//!
//! Every helper polls for a condition with a generous deadline: the tests run on small, noisy
//! machines, and no test may depend on how fast something happens, only on whether it happens.
#![allow(dead_code)] // Each test file uses its own subset of these helpers.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any single event may take before a test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often a condition is re-checked while waiting for it.
const POLL: Duration = Duration::from_millis(5);

/// The binary under test.
pub fn pidone() -> &'static str {
    env!("CARGO_BIN_EXE_pidone")
}

/// Debian's python3, not a version-manager shim that would add a shell between us and Python.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A script under `tests/helpers/`.
pub fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The two ways pidone runs: as the init of a fresh PID namespace, and as an ordinary child of
/// the test (where it must register as child subreaper to adopt orphans).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pid1,
    Subreaper,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Pid1, Mode::Subreaper];

    /// `pidone ARGS...` in this mode.
    pub fn command<S: AsRef<OsStr>>(self, args: &[S]) -> Command {
        self.command_via::<&str, S>(&[], true, args)
    }

    /// `WRAPPER... pidone ARGS...` in this mode, or `WRAPPER... ARGS...` when `with_pidone` is
    /// false (the baseline a test compares pidone against). The wrapper runs inside the namespace
    /// and must exec what follows it, so that pidone still ends up as PID 1.
    pub fn command_via<W: AsRef<OsStr>, S: AsRef<OsStr>>(
        self,
        wrapper: &[W],
        with_pidone: bool,
        args: &[S],
    ) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if self == Mode::Pid1 {
            // --kill-child: if a test gives up and kills unshare, the namespace goes with it.
            for a in ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] {
                argv.push(a.into());
            }
        }
        argv.extend(wrapper.iter().map(|w| w.as_ref().to_os_string()));
        if with_pidone {
            argv.push(pidone().into());
        }
        argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("pidone-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory as a string, for command lines.
    pub fn arg(&self) -> String {
        self.0.to_str().expect("temp dir is UTF-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `condition` until it holds; panics naming `what` if it does not within `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(POLL);
    }
}

/// Sends signal number `signal` to `pid` with kill(1), which takes any number (real-time too).
pub fn send_signal(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// One line of `/proc/PID/status`, e.g. `field(pid, "PPid")`; `None` once the process is gone.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == field).then(|| value.trim().to_owned())
    })
}

/// The process's state letter and parent from `/proc/PID/stat`; `None` once it is gone.
pub fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Every process's parent, from one scan of `/proc`.
pub fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                if let Some((_, ppid)) = stat(pid) {
                    map.insert(pid, ppid);
                }
            }
        }
    }
    map
}

/// Voluntary plus involuntary context switches of every thread of `pid`.
pub fn context_switches(pid: u32) -> u64 {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("read task dir");
    let mut total = 0;
    for task in tasks.flatten() {
        let status = fs::read_to_string(task.path().join("status")).expect("read task status");
        for line in status.lines() {
            if let Some(("voluntary_ctxt_switches" | "nonvoluntary_ctxt_switches", value)) =
                line.split_once(':')
            {
                total += value.trim().parse::<u64>().expect("context switch count");
            }
        }
    }
    total
}

/// A file's lines, or none while it does not exist yet.
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// How a finished run ended and what it printed.
pub struct Outcome {
    pub mode: Mode,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; panics (showing stderr) if the process did not exit normally.
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(code) => code,
            None => panic!(
                "{:?}: pidone did not exit: {}; stderr:\n{}",
                self.mode, self.status, self.stderr
            ),
        }
    }

    /// Asserts the exit code, showing stderr on failure.
    pub fn assert_code(&self, expected: i32, context: &str) {
        assert_eq!(
            self.code(),
            expected,
            "{:?}: {context}: wrong exit code; stdout:\n{}\nstderr:\n{}",
            self.mode,
            self.stdout,
            self.stderr
        );
    }
}

/// A started pidone (or the `unshare` holding it), killed with its whole tree if a test panics.
pub struct Running {
    pub mode: Mode,
    child: Option<Child>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    pidone_pid: Option<u32>,
}

impl Running {
    /// Spawns `command` with stdout and stderr captured and `stdin` (if any) fed to it.
    pub fn spawn(mode: Mode, mut command: Command, stdin: Option<&[u8]>) -> Running {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("spawn pidone");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(input).expect("write stdin");
            // Dropping the pipe closes it: the child sees end of file.
        }
        let stdout = drain(child.stdout.take().expect("stdout pipe"));
        let stderr = drain(child.stderr.take().expect("stderr pipe"));
        Running {
            mode,
            child: Some(child),
            stdout,
            stderr,
            pidone_pid: None,
        }
    }

    /// The pid of the process the test started (pidone itself, or `unshare` in PID-1 mode).
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// pidone's pid as seen from the test: the test's own child, or `unshare`'s child once it
    /// has exec'd pidone.
    pub fn pidone_pid(&mut self) -> u32 {
        if let Some(pid) = self.pidone_pid {
            return pid;
        }
        let pid = match self.mode {
            Mode::Subreaper => self.id(),
            Mode::Pid1 => {
                let unshare = self.id();
                let exe = fs::canonicalize(pidone()).expect("canonical pidone path");
                let mut found = None;
                self.wait_for("unshare to exec pidone", || {
                    found = parents().into_iter().find_map(|(pid, ppid)| {
                        let is_pidone =
                            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe);
                        (ppid == unshare && is_pidone).then_some(pid)
                    });
                    found.is_some()
                });
                found.expect("found")
            }
        };
        self.pidone_pid = Some(pid);
        pid
    }

    /// Whether the started process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("try_wait")
            .is_none()
    }

    /// Like [`wait_until`], but fails at once, with pidone's output, if pidone exits meanwhile.
    pub fn wait_for(&mut self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !condition() {
            if !self.is_running() {
                let outcome = self.finish(DEADLINE);
                panic!(
                    "{:?}: pidone exited ({}) while waiting for {what}; stdout:\n{}\nstderr:\n{}",
                    self.mode, outcome.status, outcome.stdout, outcome.stderr
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: timed out after {DEADLINE:?} waiting for {what}",
                self.mode
            );
            thread::sleep(POLL);
        }
    }

    /// Waits for the run to finish (at most [`DEADLINE`]).
    pub fn wait(self) -> Outcome {
        self.wait_timeout(DEADLINE)
    }

    /// Waits for the run to finish within `timeout`; kills it and panics otherwise.
    pub fn wait_timeout(mut self, timeout: Duration) -> Outcome {
        self.finish(timeout)
    }

    fn finish(&mut self, timeout: Duration) -> Outcome {
        let mode = self.mode;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self
                .child
                .as_mut()
                .expect("running")
                .try_wait()
                .expect("try_wait")
            {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill_tree();
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_default();
                panic!("{mode:?}: pidone still running after {timeout:?}; stderr:\n{stderr}");
            }
            thread::sleep(POLL);
        };
        self.child = None;
        // A process that pidone failed to clean up may still hold the pipes open.
        let leftover = "<pipe still held open by a leftover process>".to_owned();
        let stdout = self
            .stdout
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| leftover.clone());
        let stderr = self.stderr.recv_timeout(DEADLINE).unwrap_or(leftover);
        Outcome {
            mode,
            status,
            stdout,
            stderr,
        }
    }

    /// SIGKILLs the started process and everything below it.
    fn kill_tree(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let root = child.id();
        let parents = parents();
        let mut doomed = vec![root];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i];
            doomed.extend(
                parents
                    .iter()
                    .filter(|&(_, &ppid)| ppid == parent)
                    .map(|(&pid, _)| pid),
            );
            i += 1;
        }
        for pid in doomed.iter().rev() {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_tree();
        }
    }
}

/// Reads a pipe to its end on a thread; the text arrives on the returned channel.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Runs pidone to completion in `mode` with `args`.
pub fn run<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> Outcome {
    Running::spawn(mode, mode.command(args), None).wait()
}
