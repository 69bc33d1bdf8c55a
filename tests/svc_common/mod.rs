//! Helpers for the services-mode black-box tests: a temp dir holding the config, the services'
//! markers and pidone's captured output; pidone started as a true PID 1 or as a plain child; and
//! a guard that kills every process of a run when the test ends, even when it fails.
//!
//! Processes of a run are found by a unique environment variable ([`TAG_VAR`]) set on pidone and
//! inherited by every service and everything they spawn, so cleanup never matches by name.
#![allow(dead_code)] // Not every helper is used by every scenario.
#![allow(unused_macros)]

/// `in_both_modes!(scenario, ...)`: a `#[test]` per scenario as a true PID 1 and one as a plain
/// child; each scenario is a `fn(Mode)` of the test file. (`#[macro_use] mod svc_common;`)
macro_rules! in_both_modes {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn as_pid1() {
                super::$scenario(super::Mode::Pid1);
            }
            #[test]
            fn as_child() {
                super::$scenario(super::Mode::Child);
            }
        }
    )*};
}

/// `as_pid1!(scenario, ...)`: one `#[test]` per scenario, as a true PID 1.
macro_rules! as_pid1 {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn as_pid1() {
                super::$scenario(super::Mode::Pid1);
            }
        }
    )*};
}

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single event may take before a test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often a condition is re-checked while waiting for it.
const POLL: Duration = Duration::from_millis(10);

/// The environment variable marking every process of one run.
pub const TAG_VAR: &str = "PIDONE_SVC_TEST_TAG";

/// The binary under test.
pub fn pidone() -> &'static str {
    env!("CARGO_BIN_EXE_pidone")
}

/// pidone as the init of a fresh PID namespace, or as an ordinary child of the test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pid1,
    Child,
}

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
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

/// Wall-clock nanoseconds, comparable with `date +%s%N` in the services.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// A fresh directory for one run: the config, the services' markers, pidone's output. Holds an
/// executable `stamp NAME` script that atomically writes `date +%s%N` into `NAME`.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new() -> Dir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "pidone-svc-{}-{n}-{}",
            std::process::id(),
            now_ns() % 1_000_000_000
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let dir = Dir(path);
        dir.script(
            "stamp",
            "#!/bin/sh\nd=$(dirname \"$0\")\n\
             date +%s%N > \"$d/$1.tmp.$$\" && mv \"$d/$1.tmp.$$\" \"$d/$1\"\n",
        );
        dir
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory as a string, for configs and command lines.
    pub fn s(&self) -> String {
        self.0.to_str().expect("temp dir is UTF-8").to_owned()
    }

    /// Writes a file; `@D` in `text` becomes the directory's path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.join(name);
        fs::write(&path, text.replace("@D", &self.s())).expect("write file");
        path.to_str().expect("UTF-8").to_owned()
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, text: &str) -> String {
        let path = self.write(name, text);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    pub fn exists(&self, name: &str) -> bool {
        self.join(name).exists()
    }

    /// The timestamp written by `stamp NAME`, or `None` while it does not exist.
    pub fn try_stamp(&self, name: &str) -> Option<u128> {
        fs::read_to_string(self.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The timestamp written by `stamp NAME`, waiting for it (a service may write it a moment
    /// after pidone considers it up); panics if it does not appear within [`DEADLINE`].
    pub fn stamp(&self, name: &str) -> u128 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(stamp) = self.try_stamp(name) {
                return stamp;
            }
            assert!(
                Instant::now() < deadline,
                "no timestamp {name} in {} after {DEADLINE:?}",
                self.s()
            );
            thread::sleep(POLL);
        }
    }

    /// Every timestamp of a file written with `date +%s%N >> FILE`.
    pub fn stamps(&self, name: &str) -> Vec<u128> {
        fs::read_to_string(self.join(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.join(name)).unwrap_or_default()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

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

/// The pids of live (non-zombie) processes whose environment holds `VAR=value`.
pub fn pids_with_env(var: &str, value: &str) -> Vec<u32> {
    let needle = format!("{var}={value}").into_bytes();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|kv| kv == needle.as_slice())
            && stat(pid).is_some_and(|(state, _)| state != 'Z')
        {
            found.push(pid);
        }
    }
    found
}

/// The state letter and parent pid of a process; `None` once it is gone.
pub fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A process's command line, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn sigkill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// How a finished run ended and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; panics (with the output) if pidone did not exit normally.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "pidone did not exit normally: {}\nstdout:\n{}\nstderr:\n{}",
                self.status,
                tail(&self.stdout),
                self.stderr
            )
        })
    }

    pub fn assert_code(&self, expected: i32, context: &str) {
        assert_eq!(
            self.code(),
            expected,
            "{context}: wrong exit code\nstdout:\n{}\nstderr:\n{}",
            tail(&self.stdout),
            self.stderr
        );
    }
}

/// The end of a long text, for failure messages.
pub fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(3000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A started pidone. Dropping it SIGKILLs every process of the run.
/// Which of pidone's output streams is a pipe the test holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Piped {
    None,
    Stdout,
    Stderr,
}

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
        Pidone::spawn(mode, dir, args, env, Piped::None)
    }

    /// Like [`Pidone::start`], but pidone's stdout is a pipe the test reads (or not) itself.
    pub fn start_piped(mode: Mode, dir: &Dir, args: &[&str]) -> (Pidone, ChildStdout) {
        let mut run = Pidone::spawn(mode, dir, args, &[], Piped::Stdout);
        let pipe = run.child.as_mut().expect("child").stdout.take();
        (run, pipe.expect("stdout pipe"))
    }

    /// Like [`Pidone::start`], but pidone's stderr is a pipe the test reads (or not) itself.
    pub fn start_stderr_piped(mode: Mode, dir: &Dir, args: &[&str]) -> (Pidone, ChildStderr) {
        let mut run = Pidone::spawn(mode, dir, args, &[], Piped::Stderr);
        let pipe = run.child.as_mut().expect("child").stderr.take();
        (run, pipe.expect("stderr pipe"))
    }

    fn spawn(mode: Mode, dir: &Dir, args: &[&str], env: &[(&str, &str)], piped: Piped) -> Pidone {
        let tag = new_tag();
        let mut argv: Vec<String> = Vec::new();
        if mode == Mode::Pid1 {
            // --kill-child: if unshare is killed, pidone (and with it the namespace) goes too.
            for a in ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] {
                argv.push(a.into());
            }
        }
        argv.push(pidone().into());
        argv.extend(args.iter().map(|a| a.to_string()));
        let n = {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            RUNS.fetch_add(1, Ordering::Relaxed)
        };
        let stdout = dir.join(&format!("pidone-{n}.stdout"));
        let stderr = dir.join(&format!("pidone-{n}.stderr"));
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env(TAG_VAR, &tag)
            // Each pidone gets its own control socket: tests run in parallel.
            .env("PIDONE_SOCKET", dir.join(&format!("pidone-{n}.sock")))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
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
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Polls `condition` (given this run, for its output) until it holds; fails at once, with
    /// pidone's output, if pidone exits meanwhile, and after [`DEADLINE`].
    pub fn wait_for(&mut self, what: &str, mut condition: impl FnMut(&Pidone) -> bool) {
        let deadline = Instant::now() + DEADLINE;
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
                "{:?}: timed out after {DEADLINE:?} waiting for {what}\nstdout:\n{}\nstderr:\n{}",
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

/// Runs `pidone ARGS...` as a plain command to completion (for `validate`).
pub fn run_plain(args: &[&str]) -> Outcome {
    let out = Command::new(pidone())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pidone");
    Outcome {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What the kernel says a process is blocked in (`/proc/PID/wchan`), e.g. `pipe_write`.
pub fn wchan(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// How many bytes wait unread in a pipe.
pub fn pipe_pending(pipe: &impl std::os::fd::AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at a live c_int.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "ioctl(FIONREAD)");
    n as usize
}

/// Sends one raw request to the control socket and reads the whole answer: its status and body,
/// or None if the socket does not answer with HTTP/1.1.
pub fn exchange(socket: &Path, request: &[u8]) -> Option<(u16, String)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(DEADLINE)).ok()?;
    stream.write_all(request).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse_answer(&raw)
}

/// The status and body of an HTTP answer.
pub fn parse_answer(raw: &[u8]) -> Option<(u16, String)> {
    let raw = String::from_utf8_lossy(raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut first = head.lines().next()?.split_whitespace();
    if first.next()? != "HTTP/1.1" {
        return None;
    }
    Some((first.next()?.parse().ok()?, body.to_string()))
}

/// `GET target` on the control socket.
pub fn get(socket: &Path, target: &str) -> Option<(u16, String)> {
    exchange(
        socket,
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// One service object, read without panicking (for polling).
pub fn service_of(socket: &Path, name: &str) -> Option<serde_json::Value> {
    let (status, body) = get(socket, "/v1/services")?;
    if status != 200 {
        return None;
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
    list.into_iter().find(|s| s["name"] == name)
}
