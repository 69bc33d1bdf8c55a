//! One init in a fresh PID namespace, and what procfs tells about its process tree.
//!
//! Every init is started the same way: `setpriv --pdeathsig KILL unshare --pid --fork --mount-proc
//! --kill-child INIT…`. `unshare` forks the init as PID 1 of the new namespace and gives it a death
//! signal, and `setpriv` gives `unshare` one, so if the harness dies (even by SIGKILL) the chain
//! collapses and the kernel kills everything in the namespace. [`Ns`]'s `Drop` does the same on
//! every ordinary path.

use std::fs::{self, File, FileTimes};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, Signal, kill_process};

pub type Res<T> = Result<T, String>;

/// Nanoseconds since the epoch, CLOCK_REALTIME: the clock `date +%s%N` reads in the services.
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub struct Ns {
    /// `setpriv`/`unshare`'s pid; a waiter thread owns the `Child` and reports its exit.
    pid: u32,
    exit: Receiver<(ExitStatus, Instant)>,
    pid1: u32,
    log: PathBuf,
    done: Option<(ExitStatus, Instant)>,
}

/// Hands `child` to a thread that blocks in wait(2) and sends back the status and the moment it
/// returned, so exits are timed without polling.
fn waiter(mut child: Child) -> Receiver<(ExitStatus, Instant)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Ok(st) = child.wait() {
            let _ = tx.send((st, Instant::now()));
        }
    });
    rx
}

impl Ns {
    /// Starts `argv` as PID 1 of a new namespace; returns the guard and the launch time (taken just
    /// before the spawn).
    pub fn launch(argv: &[String], log: &Path) -> Res<(Ns, u128)> {
        Ns::launch_to(argv, log, None)
    }

    /// [`Ns::launch`] with the init's stdout on `stdout` when given (its stderr stays on `log`).
    pub fn launch_to(argv: &[String], log: &Path, stdout: Option<OwnedFd>) -> Res<(Ns, u128)> {
        let err = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let out = match stdout {
            Some(fd) => Stdio::from(fd),
            None => Stdio::from(err.try_clone().map_err(|e| e.to_string())?),
        };
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "unshare", "--pid", "--fork"])
            .args(["--mount-proc", "--kill-child"])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let t0 = now_ns();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning setpriv/unshare: {e}"))?;
        let id = child.id();
        let mut ns = Ns {
            pid: id,
            exit: waiter(child),
            pid1: 0,
            log: log.to_path_buf(),
            done: None,
        };
        let children = format!("/proc/{id}/task/{id}/children");
        let deadline = Instant::now() + Duration::from_secs(5);
        while ns.pid1 == 0 {
            if let Some(st) = ns.exited() {
                return Err(format!(
                    "unshare exited with {st} before starting the init{}",
                    ns.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err("unshare did not fork the init within 5 s".into());
            }
            let text = fs::read_to_string(&children).unwrap_or_default();
            match text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                Some(p) => ns.pid1 = p,
                None => sleep(Duration::from_micros(100)),
            }
        }
        Ok((ns, t0))
    }

    /// The init's pid as the host sees it.
    pub fn pid1(&self) -> u32 {
        self.pid1
    }

    /// The exit status once the namespace is gone (`unshare` waits for its PID 1, which in turn
    /// is reaped only after every other process of the namespace is gone).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.done.is_none() {
            self.done = self.exit.try_recv().ok();
        }
        self.done.map(|(st, _)| st)
    }

    /// Sends SIGTERM to PID 1 and returns how long the namespace took to disappear.
    pub fn terminate(&mut self, timeout: Duration) -> Res<Duration> {
        if let Some(st) = self.exited() {
            return Err(format!("init had already exited with {st}"));
        }
        let t0 = Instant::now();
        self.signal(Signal::TERM)?;
        match self.exit.recv_timeout(timeout) {
            Ok((st, at)) => {
                self.done = Some((st, at));
                Ok(at.duration_since(t0))
            }
            Err(_) => Err(format!(
                "still running {} s after SIGTERM",
                timeout.as_secs()
            )),
        }
    }

    pub fn signal(&mut self, sig: Signal) -> Res<()> {
        // While `unshare` has not been reaped, PID 1 has not been reaped either, so its pid cannot
        // have been reused.
        if self.exited().is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(self.pid1 as i32).ok_or("bad pid")?;
        kill_process(pid, sig).map_err(|e| format!("kill {}: {e}", self.pid1))
    }

    /// The last lines the init printed, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        let start = text.len().saturating_sub(300);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!(": {}", text[start..].replace('\n', " / "))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.signal(Signal::KILL);
            if let Some(pid) = Pid::from_raw(self.pid as i32) {
                let _ = kill_process(pid, Signal::KILL);
            }
            let _ = self.exit.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// Runs a short command with a deadline; returns its wall time and whether it succeeded.
pub fn timed_command(argv: &[String], timeout: Duration) -> Res<(Duration, bool)> {
    let t0 = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    let pid = child.id();
    match waiter(child).recv_timeout(timeout) {
        Ok((st, at)) => Ok((at.duration_since(t0), st.success())),
        Err(_) => {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                let _ = kill_process(pid, Signal::KILL);
            }
            Err(format!("{} timed out", argv[0]))
        }
    }
}

/// Sets the modification time of everything under `dir` an hour back, as if the files came with
/// the image: runsvdir ignores a service directory modified within the last second.
pub fn age_tree(dir: &Path) -> std::io::Result<()> {
    let past = SystemTime::now() - Duration::from_secs(3600);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d)?.flatten() {
            let t = e.file_type()?;
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                File::open(e.path())?.set_times(FileTimes::new().set_modified(past))?;
            }
        }
        File::open(&d)?.set_times(FileTimes::new().set_modified(past))?;
    }
    Ok(())
}

/// A process's command name and state letter, from /proc/PID/stat.
fn comm_state(pid: u32) -> Option<(String, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some((stat[open + 1..close].to_string(), state))
}

/// A service process: a service script (its comm is the script's name) or what it execs.
fn is_service(comm: &str) -> bool {
    comm.ends_with(".sh") || matches!(comm, "sleep" | "sh" | "date")
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// The supervision tree: PID 1 and its descendants, minus the services and everything below them.
/// Bounded: at most 10,000 processes are visited.
pub fn supervision_tree(pid1: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid1];
    while let Some(pid) = todo.pop() {
        if out.len() > 10_000 {
            break;
        }
        match comm_state(pid) {
            Some((comm, _)) if pid == pid1 || !is_service(&comm) => {
                out.push(pid);
                todo.extend(children(pid));
            }
            _ => {}
        }
    }
    out
}

/// How many zombies the namespace holds (PID 1's direct children in state Z; orphans are its
/// children once reparented). Bounded by the size of the children list.
pub fn zombies(pid1: u32) -> usize {
    children(pid1)
        .into_iter()
        .filter(|&p| comm_state(p).is_some_and(|(_, s)| s == 'Z'))
        .count()
}

/// Memory of a set of processes, in kB: ΣVmRSS, ΣVmHWM, ΣPss; and the process and thread counts.
#[derive(Default, Clone, Copy)]
pub struct Mem {
    pub rss: u64,
    pub hwm: u64,
    pub pss: u64,
    pub procs: u64,
    pub threads: u64,
}

fn status_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn memory(pids: &[u32]) -> Mem {
    let mut m = Mem::default();
    for &pid in pids {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        m.rss += status_field(&status, "VmRSS:");
        m.hwm += status_field(&status, "VmHWM:");
        m.threads += status_field(&status, "Threads:");
        m.pss += status_field(&rollup, "Pss:");
        m.procs += 1;
    }
    m
}

/// CPU time in nanoseconds (schedstat's run time, summed over threads) and context switches
/// (voluntary + involuntary, summed over threads) of a set of processes.
pub fn cpu_and_switches(pids: &[u32]) -> (u64, u64) {
    let (mut cpu, mut cs) = (0, 0);
    for &pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let sched = fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            cpu += sched
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let status = fs::read_to_string(t.path().join("status")).unwrap_or_default();
            cs += status_field(&status, "voluntary_ctxt_switches:")
                + status_field(&status, "nonvoluntary_ctxt_switches:");
        }
    }
    (cpu, cs)
}
