//! pidone run with pipes, for single-program mode: stdin fed to it, its whole output captured,
//! and the tree below it killed if a test gives up. Runs of services mode use
//! [`super::pidone::Pidone`], which keeps the output in files and tags every process of the run.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::mode::{Mode, pidone};
use super::process::{DEADLINE, Outcome, POLL, parents, sigkill};

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
            Mode::Child => self.id(),
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
        for &pid in doomed.iter().rev() {
            sigkill(pid);
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
