//! Processes as the tests see them: waiting for a condition with a deadline, how a finished run
//! ended ([`Outcome`]), and what `/proc` says about a process.
//!
//! Every wait polls a condition with a generous deadline: the tests run on small, noisy machines,
//! and no test may depend on how fast something happens, only on whether it happens.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mode::{Mode, pidone};

/// How long any single event may take before a test gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often a condition is re-checked while waiting for it.
pub const POLL: Duration = Duration::from_millis(10);

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

/// [`wait_until`] with the standard deadline, for conditions that need no pidone to watch.
pub fn wait_quietly(what: &str, condition: impl FnMut() -> bool) {
    wait_until(DEADLINE, what, condition);
}

/// Wall-clock nanoseconds, comparable with `date +%s%N` in the services.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// How a finished run ended and what it printed.
#[derive(Debug)]
pub struct Outcome {
    pub mode: Mode,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code; panics (with the output) if pidone did not exit normally.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "{:?}: pidone did not exit normally: {}\nstdout:\n{}\nstderr:\n{}",
                self.mode,
                self.status,
                tail(&self.stdout),
                self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output on failure.
    pub fn assert_code(&self, expected: i32, context: &str) {
        assert_eq!(
            self.code(),
            expected,
            "{:?}: {context}: wrong exit code\nstdout:\n{}\nstderr:\n{}",
            self.mode,
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

/// Runs `pidone ARGS` (a follower: `logs -f`, `events -f`), reads its first `count` lines and
/// asserts each is `line`, then kills it: lines keep coming, each as it comes.
pub fn follow_lines(args: &[&str], line: &str, count: usize) {
    let mut follow = Command::new(pidone())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("a follower");
    let mut lines = std::io::BufReader::new(follow.stdout.take().expect("stdout"));
    for _ in 0..count {
        let mut got = String::new();
        std::io::BufRead::read_line(&mut lines, &mut got).expect("a line");
        assert_eq!(got.trim(), line);
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

/// Runs `pidone ARGS...` as a plain command to completion (for `validate`, `--help`).
pub fn run_plain(args: &[&str]) -> Outcome {
    run_plain_env(args, &[])
}

/// [`run_plain`] with `env` added to the environment pidone inherits.
pub fn run_plain_env(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let out = Command::new(pidone())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run pidone");
    Outcome {
        mode: Mode::Child,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends a signal (a number, real-time ones too, or a name like `TERM`) with kill(1).
pub fn send_signal(pid: u32, signal: impl std::fmt::Display) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// SIGKILLs `pid`, whether or not it still exists.
pub fn sigkill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The pids in `/proc`.
fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// The pids of live (non-zombie) processes whose environment holds `VAR=value`.
pub fn pids_with_env(var: &str, value: &str) -> Vec<u32> {
    let needle = format!("{var}={value}").into_bytes();
    let has = |pid: u32| {
        fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_slice()))
    };
    all_pids()
        .into_iter()
        .filter(|&pid| has(pid) && stat(pid).is_some_and(|(state, _)| state != 'Z'))
        .collect()
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

/// What the kernel says a process is blocked in (`/proc/PID/wchan`), e.g. `pipe_write`.
pub fn wchan(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
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

/// How many bytes wait unread in a pipe.
pub fn pipe_pending(pipe: &impl std::os::fd::AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at a live c_int.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "ioctl(FIONREAD)");
    n as usize
}

/// A file's lines, or none while it does not exist yet.
pub fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The words of a line, split on anything that cannot be in a service name.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .filter(|w| !w.is_empty())
}

/// Splits `[name] line` (the name possibly padded with spaces inside the brackets) into name
/// and line; `None` for anything else.
pub fn split_prefixed(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('[')?;
    let end = rest.find(']')?;
    let name = rest[..end].trim_matches(' ');
    if name.is_empty() || !words(name).eq([name]) {
        return None;
    }
    let text = rest[end + 1..].strip_prefix(' ')?;
    Some((name.to_owned(), text.to_owned()))
}

/// Every `[name] line` of `output`, in order.
pub fn prefixed(output: &str) -> Vec<(String, String)> {
    output.lines().filter_map(split_prefixed).collect()
}
