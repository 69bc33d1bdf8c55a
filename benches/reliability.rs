//! The reliability harness (issue #19's measured goal): pidone as PID 1 of a fresh namespace under
//! one adversarial load at a time. For each load it measures how late a crash-looping service is
//! restarted against its fixed 100 ms schedule, how long `pidone status` takes, pidone's fds and
//! RSS before and after the load, and SIGTERM → exit under the load against the shutdown budget.
//! Markdown on stdout, JSON in target/bench/reliability-latest.json; nothing is asserted.
//!
//! `cargo bench --bench reliability -- [--quick] [--only LIST] [--pidone PATH]`; see docs/bench.md.
//! The same binary plays the services and the sd_notify attacker (see `role`).

#[path = "reliability/load.rs"]
mod load;
// Shared with the bench target, which uses all of it.
#[allow(dead_code)]
#[path = "bench/ns.rs"]
mod ns;
#[path = "reliability/report.rs"]
mod report;
#[path = "reliability/role.rs"]
mod role;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use load::{Ctx, Load};
use ns::{Ns, Res, now_ns};
use report::{Row, Sample};

const USAGE: &str = "\
usage: cargo bench --bench reliability -- [OPTIONS]
  --quick          3 s of each load instead of 10
  --seconds N      N s of each load
  --only LIST      loads, comma-separated: quiet,slowloris,garbage,notify-flood,stdout-blocked,
                   followers,large-answers,log-fifo,env-fifo
  --pidone PATH    the pidone binary (default: the static build, env PIDONE_BIN)";

/// The crash-looping service's fixed restart delay, and the goals of issue #19.
pub const RESTART_DELAY_MS: f64 = 100.0;
pub const BUDGET: Duration = Duration::from_secs(5);

/// Set while pidone's stdout pipe is left unread (the stdout-blocked load).
static STDOUT_PAUSED: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = role::play(&args) {
        return code;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reliability: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    phase: Duration,
    only: Option<Vec<String>>,
    pidone: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Res<Opts> {
    let mut o = Opts {
        phase: Duration::from_secs(10),
        only: None,
        pidone: std::env::var_os("PIDONE_BIN").map(PathBuf::from),
    };
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or(format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--bench" => {} // cargo bench passes it to every bench target
            "--quick" => o.phase = Duration::from_secs(3),
            "--seconds" => {
                let v = value()?;
                let n = v
                    .parse()
                    .map_err(|_| format!("--seconds {v}: not a number"))?;
                o.phase = Duration::from_secs(n);
            }
            "--only" => o.only = Some(value()?.split(',').map(|s| s.trim().into()).collect()),
            "--pidone" => o.pidone = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn run(args: &[String]) -> Res<()> {
    let o = parse_args(args)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = find_pidone(&o, &target)?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    raise_fd_limit();
    clean_stale_scratch();
    let root = std::env::temp_dir().join(format!("{SCRATCH}{}", std::process::id()));
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let root = Scratch(root);
    let started = Instant::now();
    let mut rows = Vec::new();
    for load in Load::ALL {
        if o.only
            .as_ref()
            .is_some_and(|l| !l.iter().any(|k| k == load.key()))
        {
            continue;
        }
        eprintln!("reliability: {} ...", load.title());
        let dir = Scratch(root.0.join(load.key()));
        let mut row = Row::new(load);
        if let Err(e) = measure(&mut row, &bin, &exe, &dir.0, o.phase) {
            row.notes.push(e);
        }
        eprintln!("  {}", row.verdict());
        rows.push(row);
    }
    let meta = report::Meta::collect(&bin, o.phase, started.elapsed());
    print!("{}", report::markdown(&rows, &meta));
    let out = target.join("bench");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join("reliability-latest.json");
    fs::write(&file, report::json(&rows, &meta)).map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!("reliability: JSON in {}", file.display());
    Ok(())
}

/// The scratch directory's name, before the harness's pid.
const SCRATCH: &str = "pidone-reliability-";

/// Removes the scratch directories of harnesses that no longer run (killed before their cleanup).
fn clean_stale_scratch() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(SCRATCH)
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn find_pidone(o: &Opts, target: &Path) -> Res<PathBuf> {
    if let Some(p) = &o.pidone {
        return Ok(p.clone());
    }
    let musl = target.join("x86_64-unknown-linux-musl/release/pidone");
    let glibc = target.join("release/pidone");
    if musl.is_file() {
        Ok(musl)
    } else if glibc.is_file() {
        eprintln!(
            "reliability: static build missing (make static); using {}",
            glibc.display()
        );
        Ok(glibc)
    } else {
        Err("pidone binary not found: run `make static`".into())
    }
}

/// 1000 connections need more than the usual 1024 descriptors' soft limit leaves.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
}

/// Writes pidone's configuration for `load`: the crash-looping service, plus what the load needs.
fn write_config(load: Load, c: &Ctx, exe: &Path) -> Res<PathBuf> {
    let (exe, dir) = (exe.display(), c.dir.display());
    let crash = |name: &str, lines: usize| {
        format!(
            "\n[[services]]\nname = \"{name}\"\n\
             command = [\"{exe}\", \"--svc-crash\", \"{dir}/{name}.stamps\", \"{lines}\"]\n\
             restart = \"always\"\nrestart_delay = \"{d}ms\"\nrestart_delay_max = \"{d}ms\"\n",
            d = RESTART_DELAY_MS
        )
    };
    let mut t = format!(
        "[timeouts]\nservice_shutdown_timeout = \"1s\"\nglobal_shutdown_timeout = \"{}s\"\n",
        BUDGET.as_secs()
    );
    t += &crash("crash", load.crash_lines());
    if load.streams() {
        t += &format!(
            "\n[[services]]\nname = \"stream\"\ncommand = [\"{exe}\", \"--svc-stream\", \"10\"]\n"
        );
    }
    if load == Load::NotifyFlood {
        t += &format!(
            "\n[[services]]\nname = \"notified\"\nready = {{ sd_notify = true }}\n\
             command = [\"{exe}\", \"--svc-notified\", \"{}\"]\n",
            c.notify_file().display()
        );
    }
    if load == Load::LogFifo {
        t += &crash("logged", 1);
        t += &format!("log_file = \"{}\"\n", c.log_file().display());
    }
    if load == Load::EnvFifo {
        t += &format!(
            "\n[[services]]\nname = \"envd\"\ncommand = [\"/bin/sleep\", \"1000000\"]\n\
             env_file = \"{}\"\n",
            c.env_file().display()
        );
        fs::write(c.env_file(), "A=1\n").map_err(|e| e.to_string())?;
    }
    let path = c.dir.join("pidone.toml");
    fs::write(&path, t).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One load, one launch: warm-up and baseline, the load while restarts and `status` are timed,
/// the after-sample, then the load again and SIGTERM under it.
fn measure(row: &mut Row, bin: &Path, exe: &Path, dir: &Path, phase: Duration) -> Res<()> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut c = Ctx {
        socket: dir.join("sock").join("pidone.sock"),
        dir: dir.to_path_buf(),
        pid1: 0,
        exe: exe.to_path_buf(),
        stdout_paused: &STDOUT_PAUSED,
    };
    let config = write_config(row.load, &c, exe)?;
    let stdout = (row.load == Load::StdoutBlocked)
        .then(drained_pipe)
        .transpose()?;
    let argv: Vec<String> = [
        bin,
        Path::new("--socket"),
        &c.socket,
        Path::new("--config"),
        &config,
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let (mut ns, _) = Ns::launch_to(&argv, &dir.join("pidone.log"), stdout)?;
    c.pid1 = ns.pid1();
    let stamps = dir.join("crash.stamps");
    wait_for(&mut ns, "3 starts of the crash-looping service", || {
        starts(&stamps) >= 3 && (row.load != Load::NotifyFlood || c.notify_file().exists())
    })?;
    sleep(Duration::from_millis(1500));
    row.before = Some(Sample::of(c.pid1));

    let (t0, t1) = under_load(row, bin, &c, phase);
    (row.lateness, row.open) = lateness(&stamps, t0, t1);
    sleep(Duration::from_secs(2));
    row.after = Some(Sample::of(c.pid1));

    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let h = s.spawn(|| load::run(row.load, &c, &stop));
        sleep(Duration::from_secs(1));
        row.shutdown = Some(ns.terminate(BUDGET + Duration::from_secs(5)));
        stop.store(true, Relaxed);
        let _ = h.join();
    });
    let tail = ns.log_tail();
    if ns.exited().is_none() && !tail.is_empty() {
        row.notes.push(format!("pidone's last words{tail}"));
    }
    Ok(())
}

/// Runs the load for `phase` while `pidone status` is timed every 200 ms and PID 1's schedstat
/// is read at both ends; returns the load's start and end (ns, CLOCK_REALTIME).
fn under_load(row: &mut Row, bin: &Path, c: &Ctx, phase: Duration) -> (u128, u128) {
    let load = row.load;
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let h = s.spawn(|| load::run(load, c, &stop));
        let t0 = now_ns();
        let sched0 = sched(c.pid1);
        let deadline = Instant::now() + phase;
        while Instant::now() < deadline {
            row.status.push(status(bin, &c.socket));
            sleep(Duration::from_millis(200));
        }
        let t1 = now_ns();
        let sched1 = sched(c.pid1);
        let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 / (t1 - t0) as f64 * 100.0;
        row.cpu_pct = Some((pct(sched1.0, sched0.0), pct(sched1.1, sched0.1)));
        stop.store(true, Relaxed);
        row.notes.extend(h.join().ok().filter(|n| !n.is_empty()));
        (t0, t1)
    })
}

/// Waits (10 s at most) until `ready` holds; an error if pidone exits first.
fn wait_for(ns: &mut Ns, what: &str, mut ready: impl FnMut() -> bool) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if let Some(st) = ns.exited() {
            return Err(format!("pidone exited with {st}{}", ns.log_tail()));
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within 10 s{}", ns.log_tail()));
        }
        sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// One `pidone status` with a 5 s deadline: its wall time, or None when it failed or timed out.
fn status(bin: &Path, socket: &Path) -> Option<Duration> {
    let argv = [bin, Path::new("--socket"), socket, Path::new("status")];
    let argv: Vec<String> = argv.iter().map(|p| p.display().to_string()).collect();
    match ns::timed_command(&argv, Duration::from_secs(5)) {
        Ok((d, true)) => Some(d),
        _ => None,
    }
}

/// PID 1's time on a CPU and waiting for one (run queue), in ns, summed over its threads: the
/// two first fields of schedstat.
fn sched(pid: u32) -> (u64, u64) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for t in tasks.flatten() {
        let text = fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let mut f = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        sum.0 += f.next().unwrap_or(0);
        sum.1 += f.next().unwrap_or(0);
    }
    sum
}

/// The stamps file's `(tag, ns)` lines, in order.
fn read_stamps(path: &Path) -> Vec<(char, u128)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (tag, n) = l.split_once(' ')?;
            Some((tag.chars().next()?, n.parse().ok()?))
        })
        .collect()
}

fn starts(path: &Path) -> usize {
    read_stamps(path).iter().filter(|(t, _)| *t == 's').count()
}

/// Lateness in ms of every restart due within `[t0, t1]` (due: the previous exit + the delay),
/// and, when the last one due had not happened by `t1`, how late it was then (a lower bound).
fn lateness(path: &Path, t0: u128, t1: u128) -> (Vec<f64>, Option<f64>) {
    let stamps = read_stamps(path);
    let ms = |a: u128, b: u128| (a as f64 - b as f64) / 1e6;
    let mut late = Vec::new();
    for (i, &(tag, exit)) in stamps.iter().enumerate() {
        let due = exit + (RESTART_DELAY_MS * 1e6) as u128;
        if tag != 'e' || due < t0 || due > t1 {
            continue;
        }
        match stamps.iter().skip(i).find(|(t, _)| *t == 's') {
            Some(&(_, start)) => late.push(ms(start, due)),
            None => return (late, Some(ms(t1, due))),
        }
    }
    (late, None)
}

/// A pipe for pidone's stdout, read by a thread except while [`STDOUT_PAUSED`] is set.
fn drained_pipe() -> Res<std::os::fd::OwnedFd> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let mut r = fs::File::from(r);
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            if STDOUT_PAUSED.load(Relaxed) {
                sleep(Duration::from_millis(10));
            } else if !matches!(r.read(&mut buf), Ok(n) if n > 0) {
                return;
            }
        }
    });
    Ok(w)
}
