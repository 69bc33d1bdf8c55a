//! pidone's scoreboard: the same scenarios for pidone and every peer found on PATH, each run in a
//! fresh PID namespace, repeated, reported as medians with min–max and pidone/peer ratios taken
//! pair by pair within the same run. Markdown on stdout, JSON under target/bench/.
//!
//! `cargo bench --bench bench -- [--quick] [--runs K] [--only LIST] [--inits LIST] [--pidone PATH] [--ns LIST]`;
//! see docs/bench.md for what each figure measures and how.

#[path = "bench/api.rs"]
mod api;
#[path = "bench/ns.rs"]
mod ns;
#[path = "bench/setup.rs"]
mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ns::{Ns, Res};
use setup::{Kind, Layout, STOP_TIMEOUT_MS, Svc, TRAP_DELAY};

const USAGE: &str = "\
usage: cargo bench --bench bench -- [OPTIONS]
  --quick          a smoke run (< 2 min): 1 run, N = 1 and 50 (trap: 10), 1,000 orphans, 2 s idle
  --runs K         repetitions of every scenario (default 4; env PIDONE_BENCH_RUNS)
  --only LIST      scenarios, comma-separated: startup,stop,reap,idle,size,api
  --inits LIST     contestants by key: none,floor,pidone,tini,tini-static,dumb-init,catatonit,
                   pidone-config,s6-svscan,runsvdir,supervisord,horust
  --pidone PATH    the pidone binary (default: the static build, env PIDONE_BIN)
  --ns LIST        service counts of the startup, memory, status and shutdown figures
                   (default 1,10,50,200; e.g. --ns 1000 --inits floor,pidone-config,s6-svscan)";

/// Services for which the control round trip is measured.
const STATUS_N: usize = 50;
/// Services in the idle figure and in the trap-TERM shutdown figure (10 in quick mode).
const MANY: usize = 50;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    quick: bool,
    runs: usize,
    only: Option<Vec<String>>,
    inits: Option<Vec<String>>,
    pidone: Option<PathBuf>,
    /// Service counts of the startup, memory, status and shutdown figures (`--ns`).
    ns: Option<Vec<usize>>,
}

fn parse_args() -> Res<Opts> {
    let env_flag = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
    let mut o = Opts {
        quick: env_flag("PIDONE_BENCH_QUICK"),
        runs: 0,
        only: None,
        inits: None,
        pidone: std::env::var_os("PIDONE_BIN").map(PathBuf::from),
        ns: None,
    };
    if let Ok(v) = std::env::var("PIDONE_BENCH_RUNS") {
        o.runs = v
            .parse()
            .map_err(|_| format!("PIDONE_BENCH_RUNS={v}: not a number"))?;
    }
    let list = |v: String| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .collect::<Vec<_>>()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--bench" => {} // cargo bench passes it to every bench target
            "--quick" => o.quick = true,
            "--runs" => {
                let v = value()?;
                o.runs = v.parse().map_err(|_| format!("--runs {v}: not a number"))?;
            }
            "--only" => o.only = Some(list(value()?)),
            "--inits" => o.inits = Some(list(value()?)),
            "--pidone" => o.pidone = Some(PathBuf::from(value()?)),
            "--ns" => {
                let v = value()?;
                let ns: Result<Vec<usize>, _> = list(v.clone()).iter().map(|n| n.parse()).collect();
                o.ns = Some(ns.map_err(|_| format!("--ns {v}: numbers, comma-separated"))?);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if o.runs == 0 {
        o.runs = if o.quick { 1 } else { 4 };
    }
    Ok(o)
}

/// Sizes of every scenario, fixed by `--quick`.
struct Plan {
    runs: usize,
    ns: Vec<usize>,
    orphans: u32,
    /// Services that trap TERM in the shutdown figure (supervisord stops them one by one).
    trap_n: usize,
    idle: Duration,
    /// Reaping and idle are long; they repeat at most this often.
    long_runs: usize,
    start_timeout: Duration,
    stop_timeout: Duration,
    reap_timeout: Duration,
}

impl Plan {
    fn new(o: &Opts) -> Plan {
        Plan {
            runs: o.runs,
            ns: match &o.ns {
                Some(ns) => ns.clone(),
                None if o.quick => vec![1, 50],
                None => vec![1, 10, 50, 200],
            },
            orphans: if o.quick { 1_000 } else { 10_000 },
            trap_n: if o.quick { 10 } else { MANY },
            idle: Duration::from_secs(if o.quick { 2 } else { 10 }),
            long_runs: if o.quick { 1 } else { o.runs.min(3) },
            start_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(if o.quick { 15 } else { 30 }),
            reap_timeout: Duration::from_secs(if o.quick { 15 } else { 30 }),
        }
    }
}

struct Init {
    kind: Kind,
    bin: PathBuf,
}

/// One figure of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fig {
    Startup,
    StopPlain,
    StopTrap,
    StopIgnore,
    Rss,
    Hwm,
    Pss,
    Procs,
    Status,
    ReapWall,
    ReapCpu,
    ReapZombies,
    IdleSwitches,
    IdleCpu,
}

impl Fig {
    fn key(self) -> &'static str {
        match self {
            Fig::Startup => "startup_ms",
            Fig::StopPlain => "stop_exit_at_once_ms",
            Fig::StopTrap => "stop_trap_term_ms",
            Fig::StopIgnore => "stop_ignore_term_ms",
            Fig::Rss => "rss_kb",
            Fig::Hwm => "hwm_kb",
            Fig::Pss => "pss_kb",
            Fig::Procs => "processes",
            Fig::Status => "status_round_trip_ms",
            Fig::ReapWall => "reap_wall_ms",
            Fig::ReapCpu => "reap_init_cpu_us_per_orphan",
            Fig::ReapZombies => "reap_zombies_left",
            Fig::IdleSwitches => "idle_context_switches",
            Fig::IdleCpu => "idle_cpu_ms",
        }
    }
}

/// Samples per (figure, N, init), indexed by run; `None` where that run failed.
#[derive(Default)]
struct Results {
    runs: usize,
    samples: BTreeMap<(Fig, usize, Kind), Vec<Option<f64>>>,
    notes: Vec<String>,
}

impl Results {
    fn put(&mut self, fig: Fig, n: usize, kind: Kind, run: usize, v: f64) {
        let runs = self.runs;
        let s = self
            .samples
            .entry((fig, n, kind))
            .or_insert_with(|| vec![None; runs]);
        s[run] = Some(v);
    }

    fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            eprintln!("  note: {text}");
            self.notes.push(text);
        }
    }

    fn get(&self, fig: Fig, n: usize, kind: Kind) -> Option<&Vec<Option<f64>>> {
        self.samples.get(&(fig, n, kind))
    }

    /// Median, min and max of the pidone/peer ratios of the runs where both have a sample.
    fn ratio(&self, fig: Fig, n_peer: usize, kind: Kind) -> Option<Stats> {
        let partner = kind.partner()?;
        let n_pidone = if partner.multi() { n_peer } else { 1 };
        let a = self.get(fig, n_pidone, partner)?;
        let b = self.get(fig, n_peer, kind)?;
        let r: Vec<f64> = a
            .iter()
            .zip(b)
            .filter_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) if *b > 0.0 => Some(a / b),
                (Some(a), Some(b)) if *a == 0.0 && *b == 0.0 => Some(1.0),
                _ => None,
            })
            .collect();
        Stats::of(&r)
    }
}

#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Option<Stats> {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn of_samples(s: &[Option<f64>]) -> Option<Stats> {
        Stats::of(&s.iter().flatten().copied().collect::<Vec<_>>())
    }
}

/// The per-process scratch directory; removed on drop, and stale ones from killed harnesses are
/// removed at start.
struct TempRoot(PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One run's directory. Declared before the [`Ns`] that uses it, so it is dropped after.
struct RunDir(Layout);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0.dir);
    }
}

struct Bench {
    plan: Plan,
    inits: Vec<Init>,
    root: TempRoot,
    counter: usize,
    res: Results,
    /// (scenario, init, N) that failed slowly once and are not repeated.
    given_up: BTreeSet<(&'static str, Kind, usize)>,
    /// Whether `pidone status` answered (None: not tried yet).
    pidone_status: Option<bool>,
    /// Inits that did not exit on SIGTERM with services that exit at once: their other shutdown
    /// figures are not attempted (each would wait for the full timeout).
    no_stop: BTreeSet<Kind>,
    /// pidone modes that are not functional (or not built): shown as rows of "–".
    placeholders: Vec<Kind>,
}

fn run() -> Res<()> {
    let o = parse_args()?;
    let plan = Plan::new(&o);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let wanted = |s: &str| o.only.as_ref().is_none_or(|l| l.iter().any(|x| x == s));

    clean_stale_roots();
    let root = std::env::temp_dir().join(format!("pidone-bench-{}", std::process::id()));
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let root = TempRoot(root);
    check_namespaces(&root.0)?;

    let mut res = Results {
        runs: plan.runs,
        ..Results::default()
    };
    let pidone = find_pidone(&o, &target, &mut res);
    let inits = find_inits(&o, pidone.as_deref(), &root.0, &mut res);
    let placeholders = [Kind::PidoneSingle, Kind::PidoneServices]
        .into_iter()
        .filter(|k| {
            o.inits
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x == k.key()))
        })
        .filter(|k| !inits.iter().any(|i| i.kind == *k))
        .collect();
    let mut b = Bench {
        plan,
        inits,
        root,
        counter: 0,
        res,
        given_up: BTreeSet::new(),
        pidone_status: None,
        no_stop: BTreeSet::new(),
        placeholders,
    };
    let started = Instant::now();
    let p = &b.plan;
    eprintln!(
        "bench: {} runs, N = {:?}, {} orphans, {} s idle; inits: {}",
        p.runs,
        p.ns,
        p.orphans,
        p.idle.as_secs(),
        b.inits
            .iter()
            .map(|i| i.kind.key())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for run in 0..b.plan.runs {
        if wanted("startup") {
            b.startup_round(run);
        }
        if wanted("stop") {
            b.stop_round(run);
        }
        if run < b.plan.long_runs {
            if wanted("reap") {
                b.reap_round(run);
            }
            if wanted("idle") {
                b.idle_round(run);
            }
        }
    }
    let sizes = if wanted("size") {
        sizes(&b.inits)
    } else {
        Vec::new()
    };
    // pidone alone: its API on TCP and on the socket, and supervision under a flood of requests.
    let api = match (&pidone, wanted("api")) {
        (Some(bin), true) => {
            eprintln!("api: /readyz and /metrics on TCP and the socket, lag under 100 clients");
            api::figures(bin, &b.root.0, o.quick).unwrap_or_else(|e| format!("\napi: {e}\n"))
        }
        _ => String::new(),
    };
    let elapsed = started.elapsed();
    let meta = Meta::collect(&o, &b.plan, elapsed);
    print!("{}{api}", markdown(&b, &sizes, &meta));
    let json = json(&b, &sizes, &meta);
    let out = target.join("bench");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join(format!("bench-{}.json", meta.epoch));
    fs::write(&file, &json).map_err(|e| format!("{}: {e}", file.display()))?;
    fs::write(out.join("latest.json"), &json).map_err(|e| e.to_string())?;
    eprintln!(
        "bench: done in {:.0} s; JSON in {}",
        elapsed.as_secs_f64(),
        file.display()
    );
    Ok(())
}

/// Removes scratch directories of harnesses that no longer run (killed before their cleanup).
fn clean_stale_roots() {
    let Ok(rd) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("pidone-bench-")
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn check_namespaces(root: &Path) -> Res<()> {
    let log = root.join("check.log");
    // A short sleep, not /bin/true: an init that is gone before the harness sees it start
    // would look like a failure.
    let argv = ["/bin/sleep".to_string(), "0.2".to_string()];
    let (mut ns, _) = Ns::launch(&argv, &log)
        .map_err(|e| format!("cannot start a PID namespace (root and util-linux needed): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(st) = ns.exited() {
            return match st.success() {
                true => Ok(()),
                false => Err(format!(
                    "`unshare --pid --fork --mount-proc /bin/sleep 0.2` failed ({st}){}; the bench \
                     needs root (or CAP_SYS_ADMIN)",
                    ns.log_tail()
                )),
            };
        }
        sleep(Duration::from_millis(1));
    }
    Err("`unshare --pid --fork --mount-proc /bin/sleep 0.2` did not finish within 5 s".into())
}

fn find_pidone(o: &Opts, target: &Path, res: &mut Results) -> Option<PathBuf> {
    if let Some(p) = &o.pidone {
        return Some(p.clone());
    }
    let musl = target.join("x86_64-unknown-linux-musl/release/pidone");
    if musl.is_file() {
        return Some(musl);
    }
    let glibc = target.join("release/pidone");
    if glibc.is_file() {
        res.note(format!(
            "static build missing (run `make static`); using {} instead",
            glibc.display()
        ));
        return Some(glibc);
    }
    res.note("pidone binary not found: run `make static` (pidone rows skipped)".into());
    None
}

fn find_inits(o: &Opts, pidone: Option<&Path>, root: &Path, res: &mut Results) -> Vec<Init> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        if o.inits
            .as_ref()
            .is_some_and(|l| !l.iter().any(|k| k == kind.key()))
        {
            continue;
        }
        let bin = match kind {
            Kind::NoInit => PathBuf::from("/bin/sh"),
            Kind::Floor => match setup::build_floor(root) {
                Ok(p) => p,
                Err(e) => {
                    res.note(format!("floor: {e}: skipped"));
                    continue;
                }
            },
            Kind::PidoneSingle | Kind::PidoneServices => match pidone {
                Some(p) => p.to_path_buf(),
                None => continue,
            },
            other => {
                let name = other.program().unwrap_or_default();
                match setup::which(name) {
                    Some(p) if other.helpers().iter().all(|h| setup::which(h).is_some()) => p,
                    _ => {
                        res.note(format!(
                            "{name} not found on PATH: skipped (see docs/bench.md)"
                        ));
                        continue;
                    }
                }
            }
        };
        if kind == Kind::PidoneServices && !pidone_services_work(&bin, root, res) {
            continue;
        }
        out.push(Init { kind, bin });
    }
    out
}

/// Services mode lands separately; until `pidone validate --config` accepts a plain config its
/// rows read "–".
fn pidone_services_work(bin: &Path, root: &Path, res: &mut Results) -> bool {
    let l = Layout {
        dir: root.join("validate"),
    };
    let ok = setup::write_services(&l, 2, Svc::Plain)
        .and_then(|()| setup::command(Kind::PidoneServices, bin, &l, 2))
        .map_err(|e| e.to_string())
        .and_then(|_| {
            let argv = vec![
                bin.display().to_string(),
                "validate".into(),
                "--config".into(),
                l.pidone_config().display().to_string(),
            ];
            ns::timed_command(&argv, Duration::from_secs(5))
        });
    let _ = fs::remove_dir_all(&l.dir);
    match ok {
        Ok((_, true)) => true,
        Ok((_, false)) => {
            res.note("`pidone validate --config` fails: services mode not available yet, its rows read –".into());
            false
        }
        Err(e) => {
            res.note(format!(
                "`pidone validate --config`: {e}; services rows read –"
            ));
            false
        }
    }
}

impl Bench {
    fn run_dir(&mut self) -> Res<RunDir> {
        self.counter += 1;
        let dir = self.root.0.join(format!("r{}", self.counter));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(RunDir(Layout { dir }))
    }

    /// The inits in this run's order: rotated each run so none always goes first.
    fn order(&self, run: usize) -> Vec<(Kind, PathBuf)> {
        let mut v: Vec<_> = self.inits.iter().map(|i| (i.kind, i.bin.clone())).collect();
        if !v.is_empty() {
            let k = run % v.len();
            v.rotate_left(k);
        }
        v
    }

    /// Runs one measurement, records its error as a note, and gives up on a (scenario, init, N)
    /// whose failure took long (a timeout), so later runs do not wait for it again.
    fn attempt(
        &mut self,
        scenario: &'static str,
        kind: Kind,
        n: usize,
        f: impl FnOnce(&mut Bench) -> Res<String>,
    ) {
        if self.given_up.contains(&(scenario, kind, n)) {
            return;
        }
        let t0 = Instant::now();
        match f(self) {
            Ok(summary) => eprintln!("  {scenario} N={n} {}: {summary}", kind.label()),
            Err(e) => {
                eprintln!("  {scenario} N={n} {}: failed: {e}", kind.label());
                if t0.elapsed() > Duration::from_secs(10) {
                    self.given_up.insert((scenario, kind, n));
                }
                self.res
                    .note(format!("{} ({scenario}, N={n}): {e}", kind.label()));
            }
        }
    }

    /// Startup, memory, control round trip and shutdown (services exit at once), in one launch.
    fn startup_round(&mut self, run: usize) {
        eprintln!(
            "run {}/{}: startup, memory, status, shutdown",
            run + 1,
            self.plan.runs
        );
        for n in self.plan.ns.clone() {
            for (kind, bin) in self.order(run) {
                if n > 1 && !kind.multi() {
                    continue;
                }
                self.attempt("startup", kind, n, |b| b.startup_one(kind, &bin, n, run));
            }
        }
    }

    fn launch(&mut self, kind: Kind, bin: &Path, n: usize, svc: Svc) -> Res<(RunDir, Ns, u128)> {
        let dir = self.run_dir()?;
        setup::write_services(&dir.0, n, svc).map_err(|e| format!("writing services: {e}"))?;
        let argv =
            setup::command(kind, bin, &dir.0, n).map_err(|e| format!("writing config: {e}"))?;
        if let Svc::Reap(_) = svc {
            let st = Command::new("mkfifo").arg(dir.0.go()).status();
            if !st.is_ok_and(|s| s.success()) {
                return Err("mkfifo failed".into());
            }
        }
        ns::age_tree(&dir.0.dir).map_err(|e| format!("ageing the run directory: {e}"))?;
        let (mut ns, t0) = Ns::launch(&argv, &dir.0.dir.join("init.log"))?;
        let last = wait_stamps(&mut ns, &dir.0, n, self.plan.start_timeout)?;
        Ok((dir, ns, last.saturating_sub(t0)))
    }

    fn startup_one(&mut self, kind: Kind, bin: &Path, n: usize, run: usize) -> Res<String> {
        let (dir, mut ns, startup) = self.launch(kind, bin, n, Svc::Plain)?;
        let ms = startup as f64 / 1e6;
        self.res.put(Fig::Startup, n, kind, run, ms);
        let mut out = format!("startup {ms:.2} ms");
        if kind == Kind::NoInit {
            return Ok(out); // the service itself is PID 1: no tree, no shutdown
        }
        sleep(Duration::from_millis(300));
        let m = ns::memory(&ns::supervision_tree(ns.pid1()));
        self.res.put(Fig::Rss, n, kind, run, m.rss as f64);
        self.res.put(Fig::Hwm, n, kind, run, m.hwm as f64);
        self.res.put(Fig::Pss, n, kind, run, m.pss as f64);
        self.res.put(Fig::Procs, n, kind, run, m.procs as f64);
        let _ = write!(
            out,
            ", RSS {} kB, Pss {} kB ({} procs)",
            m.rss, m.pss, m.procs
        );
        if n == STATUS_N {
            match self.status(kind, bin, &dir.0, n) {
                Ok(Some(ms)) => {
                    self.res.put(Fig::Status, n, kind, run, ms);
                    let _ = write!(out, ", status {ms:.2} ms");
                }
                Ok(None) => {}
                Err(e) => self.res.note(format!("{} status: {e}", kind.label())),
            }
        }
        if self.no_stop.contains(&kind) {
            return Ok(out);
        }
        let d = match ns.terminate(self.plan.stop_timeout) {
            Ok(d) => d,
            Err(e) => {
                // Startup and memory stand; only the shutdown figures are given up.
                self.no_stop.insert(kind);
                self.res.note(format!(
                    "{}: {e}; its shutdown figures read –",
                    kind.label()
                ));
                return Ok(format!("{out}, stop failed"));
            }
        };
        let ms = d.as_secs_f64() * 1e3;
        self.res.put(Fig::StopPlain, n, kind, run, ms);
        let _ = write!(out, ", stop {ms:.2} ms");
        drop(ns);
        drop(dir);
        Ok(out)
    }

    /// The median of five status requests, or None when the init has no status client.
    fn status(&mut self, kind: Kind, bin: &Path, l: &Layout, n: usize) -> Res<Option<f64>> {
        let Some(argv) = setup::status_command(kind, bin, l, n) else {
            return Ok(None);
        };
        if kind == Kind::PidoneServices && self.pidone_status == Some(false) {
            return Ok(None);
        }
        let mut times = Vec::new();
        for _ in 0..5 {
            let (d, ok) = ns::timed_command(&argv, Duration::from_secs(10))?;
            if !ok {
                if kind == Kind::PidoneServices {
                    self.pidone_status = Some(false);
                    self.res.note(
                        "`pidone status` fails: control socket not available yet, its row reads –"
                            .into(),
                    );
                    return Ok(None);
                }
                return Err(format!("`{}` failed", argv.join(" ")));
            }
            times.push(d.as_secs_f64() * 1e3);
        }
        self.pidone_status = Some(true);
        Ok(Stats::of(&times).map(|s| s.median))
    }

    /// Shutdown with services that trap TERM (N=50) and with one that ignores it.
    fn stop_round(&mut self, run: usize) {
        eprintln!(
            "run {}/{}: shutdown (trap, ignore)",
            run + 1,
            self.plan.runs
        );
        for (kind, bin) in self.order(run) {
            if kind == Kind::NoInit || self.no_stop.contains(&kind) {
                continue;
            }
            let n = if kind.multi() { self.plan.trap_n } else { 1 };
            self.attempt("stop-trap", kind, n, |b| {
                b.stop_one(kind, &bin, n, Svc::Trap, run)
            });
            if kind.has_stop_timeout() {
                self.attempt("stop-ignore", kind, 1, |b| {
                    b.stop_one(kind, &bin, 1, Svc::Ignore, run)
                });
            }
        }
    }

    fn stop_one(&mut self, kind: Kind, bin: &Path, n: usize, svc: Svc, run: usize) -> Res<String> {
        let (dir, mut ns, _) = self.launch(kind, bin, n, svc)?;
        sleep(Duration::from_millis(200));
        let d = ns.terminate(self.plan.stop_timeout)?;
        let ms = d.as_secs_f64() * 1e3;
        let fig = if svc == Svc::Trap {
            Fig::StopTrap
        } else {
            Fig::StopIgnore
        };
        self.res.put(fig, n, kind, run, ms);
        drop(ns);
        drop(dir);
        Ok(format!("stop {ms:.1} ms"))
    }

    fn reap_round(&mut self, run: usize) {
        eprintln!(
            "run {}/{}: reaping {} orphans",
            run + 1,
            self.plan.runs,
            self.plan.orphans
        );
        for (kind, bin) in self.order(run) {
            if kind != Kind::NoInit {
                self.attempt("reap", kind, 1, |b| b.reap_one(kind, &bin, run));
            }
        }
    }

    fn reap_one(&mut self, kind: Kind, bin: &Path, run: usize) -> Res<String> {
        let orphans = self.plan.orphans;
        let (dir, mut ns, _) = self.launch(kind, bin, 1, Svc::Reap(orphans))?;
        let pid1 = ns.pid1();
        sleep(Duration::from_millis(200));
        let (cpu0, _) = ns::cpu_and_switches(&[pid1]);
        let t0 = Instant::now();
        let deadline = t0 + self.plan.reap_timeout;
        go(&dir.0.go(), deadline)?;
        let mut drained = None;
        let mut left = 0;
        while Instant::now() < deadline {
            if ns.exited().is_some() {
                return Err(format!("init exited while reaping{}", ns.log_tail()));
            }
            if dir.0.done().exists() {
                left = ns::zombies(pid1);
                if left == 0 {
                    drained = Some(t0.elapsed());
                    break;
                }
            }
            sleep(Duration::from_millis(2));
        }
        let (cpu1, _) = ns::cpu_and_switches(&[pid1]);
        let per = (cpu1.saturating_sub(cpu0)) as f64 / 1e3 / f64::from(orphans);
        self.res.put(Fig::ReapCpu, 1, kind, run, per);
        self.res.put(Fig::ReapZombies, 1, kind, run, left as f64);
        let Some(wall) = drained else {
            let done = dir.0.done().exists();
            return Err(format!(
                "not drained after {} s ({} zombies left, loop {})",
                self.plan.reap_timeout.as_secs(),
                left,
                if done { "finished" } else { "still running" }
            ));
        };
        let ms = wall.as_secs_f64() * 1e3;
        self.res.put(Fig::ReapWall, 1, kind, run, ms);
        Ok(format!("{ms:.0} ms, {per:.1} µs CPU per orphan"))
    }

    /// All inits idle side by side (nothing runs, so they do not disturb one another); their
    /// supervision trees are sampled before and after the window.
    fn idle_round(&mut self, run: usize) {
        let secs = self.plan.idle.as_secs();
        eprintln!(
            "run {}/{}: idle {secs} s (all inits at once)",
            run + 1,
            self.plan.runs
        );
        let mut live = Vec::new();
        for (kind, bin) in self.order(run) {
            if kind == Kind::NoInit {
                continue;
            }
            let n = if kind.multi() { MANY } else { 1 };
            match self.launch(kind, &bin, n, Svc::Plain) {
                Ok((dir, ns, _)) => live.push((kind, n, dir, ns)),
                Err(e) => self
                    .res
                    .note(format!("{} (idle, N={n}): {e}", kind.label())),
            }
        }
        sleep(Duration::from_secs(1));
        let before: Vec<_> = live
            .iter()
            .map(|(_, _, _, ns)| ns::cpu_and_switches(&ns::supervision_tree(ns.pid1())))
            .collect();
        sleep(self.plan.idle);
        for ((kind, n, _dir, ns), (cpu0, cs0)) in live.iter_mut().zip(before) {
            if ns.exited().is_some() {
                self.res
                    .note(format!("{} exited during the idle window", kind.label()));
                continue;
            }
            let (cpu1, cs1) = ns::cpu_and_switches(&ns::supervision_tree(ns.pid1()));
            let cs = cs1.saturating_sub(cs0) as f64;
            let cpu = cpu1.saturating_sub(cpu0) as f64 / 1e6;
            self.res.put(Fig::IdleSwitches, *n, *kind, run, cs);
            self.res.put(Fig::IdleCpu, *n, *kind, run, cpu);
            eprintln!(
                "  idle N={n} {}: {cs} switches, {cpu:.2} ms CPU",
                kind.label()
            );
        }
        // Namespaces go first, then their directories.
        for (_, _, dir, ns) in live {
            drop(ns);
            drop(dir);
        }
    }
}

/// Waits until all N services have stamped; returns the latest stamp.
fn wait_stamps(ns: &mut Ns, l: &Layout, n: usize, timeout: Duration) -> Res<u128> {
    let deadline = Instant::now() + timeout;
    let mut seen: BTreeMap<std::ffi::OsString, u128> = BTreeMap::new();
    loop {
        if let Ok(rd) = fs::read_dir(l.stamps()) {
            for e in rd.flatten() {
                if seen.contains_key(&e.file_name()) {
                    continue;
                }
                // `date` writes its line in one write(2): a partial line does not parse.
                let text = fs::read_to_string(e.path()).unwrap_or_default();
                if let Some(v) = text.strip_suffix('\n').and_then(|t| t.parse().ok()) {
                    seen.insert(e.file_name(), v);
                }
            }
        }
        if seen.len() >= n {
            return Ok(seen.values().copied().max().unwrap_or(0));
        }
        if let Some(st) = ns.exited() {
            return Err(format!(
                "init exited ({st}) with {}/{n} services started{}",
                seen.len(),
                ns.log_tail()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}/{n} services started after {} s{}",
                seen.len(),
                timeout.as_secs(),
                ns.log_tail()
            ));
        }
        sleep(Duration::from_millis(1));
    }
}

/// Releases the reaping service: opens its FIFO without blocking (retrying until the service
/// has opened its end) and writes a line.
fn go(fifo: &Path, deadline: Instant) -> Res<()> {
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(nonblock)
            .open(fifo)
        {
            Ok(mut f) => return f.write_all(b"go\n").map_err(|e| format!("writing go: {e}")),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
                if Instant::now() > deadline {
                    return Err("the reaping service never opened its FIFO".into());
                }
                sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("{}: {e}", fifo.display())),
        }
    }
}

struct Size {
    init: &'static str,
    binary: String,
    bytes: u64,
    linkage: &'static str,
}

fn sizes(inits: &[Init]) -> Vec<Size> {
    let mut out = Vec::new();
    for i in inits {
        if matches!(i.kind, Kind::NoInit | Kind::PidoneServices) {
            continue;
        }
        let mut bins = vec![i.bin.clone()];
        bins.extend(i.kind.helpers().iter().filter_map(|h| setup::which(h)));
        for b in bins {
            let Ok(bytes) = fs::read(&b) else { continue };
            out.push(Size {
                init: i.kind.label(),
                binary: b.display().to_string(),
                bytes: bytes.len() as u64,
                linkage: linkage(&bytes),
            });
        }
    }
    out
}

/// "static" unless the ELF file names a program interpreter (PT_INTERP).
fn linkage(b: &[u8]) -> &'static str {
    if b.starts_with(b"#!") {
        return "script";
    }
    if !b.starts_with(b"\x7fELF") || b.len() < 64 || b[4] != 2 {
        return "?";
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (size, num) = (u16_at(0x36), u16_at(0x38));
    for k in 0..num {
        let o = phoff + k * size;
        if o + 4 > b.len() {
            break;
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return "dynamic";
        }
    }
    "static"
}

struct Meta {
    date: String,
    epoch: u64,
    cpu: String,
    cpus: usize,
    kernel: String,
    quick: bool,
    runs: usize,
    seconds: f64,
    orphans: u32,
    idle_s: u64,
    long_runs: usize,
}

impl Meta {
    fn collect(o: &Opts, p: &Plan, elapsed: Duration) -> Meta {
        let epoch = (ns::now_ns() / 1_000_000_000) as u64;
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| epoch.to_string());
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default();
        Meta {
            date,
            epoch,
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            quick: o.quick,
            runs: p.runs,
            seconds: elapsed.as_secs_f64(),
            orphans: p.orphans,
            idle_s: p.idle.as_secs(),
            long_runs: p.long_runs,
        }
    }
}

/// A table column: one figure at one N (`n_single` for single-program inits, None = n/a).
struct Col {
    title: String,
    fig: Fig,
    n_multi: Option<usize>,
    n_single: Option<usize>,
}

fn col(title: impl Into<String>, fig: Fig, n_multi: usize, n_single: Option<usize>) -> Col {
    Col {
        title: title.into(),
        fig,
        n_multi: Some(n_multi),
        n_single,
    }
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(res: &Results, c: &Col, kind: Kind) -> String {
    let n = if kind.multi() { c.n_multi } else { c.n_single };
    let Some(n) = n else { return "–".into() };
    let Some(s) = res.get(c.fig, n, kind).and_then(|s| Stats::of_samples(s)) else {
        return "–".into();
    };
    let mut out = num(s.median);
    if s.min != s.max {
        let _ = write!(out, " ({}–{})", num(s.min), num(s.max));
    }
    if let Some(r) = res.ratio(c.fig, n, kind) {
        let _ = write!(out, " ×{:.2}", r.median);
    }
    out
}

/// Appends a table; a table whose figures have no sample at all (scenario not run) is left out.
fn table(out: &mut String, b: &Bench, title: &str, cols: &[Col], skip: impl Fn(Kind) -> bool) {
    if !b
        .res
        .samples
        .keys()
        .any(|(f, _, _)| cols.iter().any(|c| c.fig == *f))
    {
        return;
    }
    let _ = writeln!(out, "\n### {title}\n");
    let _ = write!(out, "| init |");
    for c in cols {
        let _ = write!(out, " {} |", c.title);
    }
    let _ = write!(out, "\n|---|");
    for _ in cols {
        let _ = write!(out, "---:|");
    }
    out.push('\n');
    let kinds = Kind::ALL
        .into_iter()
        .filter(|k| b.inits.iter().any(|i| i.kind == *k) || b.placeholders.contains(k));
    for kind in kinds {
        if skip(kind) {
            continue;
        }
        let name = match kind.is_pidone() {
            true => format!("**{}**", kind.label()),
            false => kind.label().into(),
        };
        let _ = write!(out, "| {name} |");
        for c in cols {
            let _ = write!(out, " {} |", cell(&b.res, c, kind));
        }
        out.push('\n');
    }
}

fn markdown(b: &Bench, sizes: &[Size], m: &Meta) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## pidone bench — {}\n\n{} ({} CPUs), Linux {}; {} runs{} ({} for reaping and idle); {:.0} s.\n\
         Cells: median (min–max) over the runs; **×r** = pidone/peer, the median of the ratios of \
         the pair measured in the same run (below 1: pidone is smaller or faster). Peers that run \
         one child are compared with `pidone -- PROGRAM`, supervisors with `pidone --config`. \
         – = not applicable, not supported, or failed (see notes).",
        m.date,
        m.cpu,
        m.cpus,
        m.kernel,
        m.runs,
        if m.quick { " (--quick)" } else { "" },
        m.long_runs,
        m.seconds
    );
    let ns = &b.plan.ns;
    let single_only = |n: usize| if n == 1 { Some(1) } else { None };
    let cols: Vec<Col> = ns
        .iter()
        .map(|&n| col(format!("N={n}"), Fig::Startup, n, single_only(n)))
        .collect();
    table(
        &mut o,
        b,
        "Startup: launch → last service running (ms)",
        &cols,
        |_| false,
    );

    let mut cols: Vec<Col> = ns
        .iter()
        .map(|&n| {
            col(
                format!("exit at once, N={n}"),
                Fig::StopPlain,
                n,
                single_only(n),
            )
        })
        .collect();
    let trap_n = b.plan.trap_n;
    cols.push(col(
        format!("trap TERM, exit after {TRAP_DELAY} s, N={trap_n}¹"),
        Fig::StopTrap,
        trap_n,
        Some(1),
    ));
    cols.push(col(
        format!("ignores TERM (stop timeout {STOP_TIMEOUT_MS} ms), N=1"),
        Fig::StopIgnore,
        1,
        Some(1),
    ));
    table(
        &mut o,
        b,
        "Shutdown: SIGTERM to PID 1 → namespace gone (ms)",
        &cols,
        |k| k == Kind::NoInit,
    );

    let mem_ns: Vec<usize> = [1, 50, 200]
        .into_iter()
        .filter(|n| ns.contains(n))
        .collect();
    let mut cols = Vec::new();
    for (fig, name) in [(Fig::Rss, "ΣRSS"), (Fig::Hwm, "ΣHWM"), (Fig::Pss, "ΣPss")] {
        for &n in &mem_ns {
            cols.push(col(format!("{name} N={n}"), fig, n, single_only(n)));
        }
    }
    cols.push(col(
        format!("processes N={MANY}¹"),
        Fig::Procs,
        MANY,
        Some(1),
    ));
    table(
        &mut o,
        b,
        "Memory of the supervision tree, services excluded (kB)",
        &cols,
        |k| k == Kind::NoInit,
    );

    let cols = [
        col("wall (ms)", Fig::ReapWall, 1, Some(1)),
        col("init CPU per orphan (µs)", Fig::ReapCpu, 1, Some(1)),
        col("zombies left", Fig::ReapZombies, 1, Some(1)),
    ];
    let title = format!(
        "Reaping {} orphaned grandchildren of one service",
        m.orphans
    );
    table(&mut o, b, &title, &cols, |k| k == Kind::NoInit);

    let cols = [
        col("context switches", Fig::IdleSwitches, MANY, Some(1)),
        col("CPU (ms)", Fig::IdleCpu, MANY, Some(1)),
    ];
    let title = format!("Idle for {} s, N={MANY}¹: the supervision tree", m.idle_s);
    table(&mut o, b, &title, &cols, |k| k == Kind::NoInit);

    let cols = [col(
        format!("status of N={STATUS_N} (ms)"),
        Fig::Status,
        STATUS_N,
        None,
    )];
    table(
        &mut o,
        b,
        "Control round trip (client launch → answer)",
        &cols,
        |k| !k.multi(),
    );

    if !sizes.is_empty() {
        let _ = writeln!(
            o,
            "\n### Binary size\n\n| init | binary | bytes | linkage |\n|---|---|---:|---|"
        );
        for s in sizes {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                s.init, s.binary, s.bytes, s.linkage
            );
        }
    }
    let _ = writeln!(
        o,
        "\n¹ single-program inits (tini, dumb-init, catatonit, `pidone -- PROGRAM`) run one child.\n\
         runsvdir exits on SIGTERM at once without stopping its services (the kernel SIGKILLs \
         them with the namespace); s6 status is `s6-svstat` of one service, runit's `sv status` \
         of all."
    );
    if !b.res.notes.is_empty() {
        let _ = writeln!(o, "\nNotes:");
        for n in &b.res.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    o
}

fn jstr(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn jnum(v: f64) -> String {
    if v.is_finite() {
        format!("{}", (v * 1e4).round() / 1e4)
    } else {
        "null".into()
    }
}

fn jstats(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{{\"median\": {}, \"min\": {}, \"max\": {}}}",
            jnum(s.median),
            jnum(s.min),
            jnum(s.max)
        ),
        None => "null".into(),
    }
}

fn json(b: &Bench, sizes: &[Size], m: &Meta) -> String {
    let mut o = String::from("{\n");
    let _ = writeln!(o, "  \"date\": {},", jstr(&m.date));
    let _ = writeln!(
        o,
        "  \"machine\": {{\"cpu\": {}, \"cpus\": {}, \"kernel\": {}}},",
        jstr(&m.cpu),
        m.cpus,
        jstr(&m.kernel)
    );
    let _ = writeln!(
        o,
        "  \"settings\": {{\"runs\": {}, \"long_runs\": {}, \"quick\": {}, \"orphans\": {}, \
         \"idle_seconds\": {}, \"stop_timeout_ms\": {STOP_TIMEOUT_MS}, \"trap_delay_s\": {TRAP_DELAY}, \
         \"seconds\": {}}},",
        m.runs,
        m.long_runs,
        m.quick,
        m.orphans,
        m.idle_s,
        jnum(m.seconds)
    );
    let inits: Vec<String> = b
        .inits
        .iter()
        .map(|i| {
            format!(
                "{{\"key\": {}, \"label\": {}, \"path\": {}}}",
                jstr(i.kind.key()),
                jstr(i.kind.label()),
                jstr(&i.bin.display().to_string())
            )
        })
        .collect();
    let _ = writeln!(o, "  \"inits\": [\n    {}\n  ],", inits.join(",\n    "));
    let sz: Vec<String> = sizes
        .iter()
        .map(|s| {
            format!(
                "{{\"init\": {}, \"binary\": {}, \"bytes\": {}, \"linkage\": {}}}",
                jstr(s.init),
                jstr(&s.binary),
                s.bytes,
                jstr(s.linkage)
            )
        })
        .collect();
    let _ = writeln!(o, "  \"sizes\": [\n    {}\n  ],", sz.join(",\n    "));
    let figs: Vec<String> = b
        .res
        .samples
        .iter()
        .map(|(&(fig, n, kind), s)| {
            let samples: Vec<String> = s.iter().map(|v| v.map_or("null".into(), jnum)).collect();
            format!(
                "{{\"figure\": {}, \"n\": {n}, \"init\": {}, \"samples\": [{}], \"stats\": {}, \
                 \"pidone_ratio\": {}}}",
                jstr(fig.key()),
                jstr(kind.key()),
                samples.join(", "),
                jstats(Stats::of_samples(s)),
                jstats(b.res.ratio(fig, n, kind))
            )
        })
        .collect();
    let _ = writeln!(o, "  \"figures\": [\n    {}\n  ],", figs.join(",\n    "));
    let notes: Vec<String> = b.res.notes.iter().map(|n| jstr(n)).collect();
    let _ = writeln!(o, "  \"notes\": [\n    {}\n  ]\n}}", notes.join(",\n    "));
    o
}
