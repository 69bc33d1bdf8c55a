//! What one load's run measured, its verdict against issue #19's goals, and the report: a markdown
//! table on stdout and the same figures as JSON.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use serde_json::{Value, json};

use crate::load::Load;
use crate::{BUDGET, RESTART_DELAY_MS};

/// The goals: a restart at most this late, a `status` answer within this.
const LATE_MS: f64 = 10.0;
const STATUS_MS: f64 = 1000.0;

/// pidone's open fds and resident memory: the smallest of 5 readings 100 ms apart, so that a
/// service's pipe or a connection open at one instant does not count.
#[derive(Clone, Copy)]
pub struct Sample {
    pub fds: usize,
    pub rss_kb: u64,
}

impl Sample {
    pub fn of(pid: u32) -> Sample {
        let mut s = Sample {
            fds: usize::MAX,
            rss_kb: u64::MAX,
        };
        for _ in 0..5 {
            let fds = fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            s = Sample {
                fds: s.fds.min(fds),
                rss_kb: s.rss_kb.min(rss),
            };
            sleep(Duration::from_millis(100));
        }
        s
    }
}

pub struct Row {
    pub load: Load,
    /// How late each restart due during the load came, in ms.
    pub lateness: Vec<f64>,
    /// How late the last restart due was at the end of the load, when it had not come (ms).
    pub open: Option<f64>,
    /// Each `status` call's wall time; None for a failure or a 5 s timeout.
    pub status: Vec<Option<Duration>>,
    /// pidone's time on a CPU and waiting for one during the load, in % of the load's duration.
    pub cpu_pct: Option<(f64, f64)>,
    pub before: Option<Sample>,
    pub after: Option<Sample>,
    pub shutdown: Option<Result<Duration, String>>,
    pub notes: Vec<String>,
}

fn median_max(v: &[f64]) -> Option<(f64, f64)> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

impl Row {
    pub fn new(load: Load) -> Row {
        Row {
            load,
            lateness: Vec::new(),
            open: None,
            status: Vec::new(),
            cpu_pct: None,
            before: None,
            after: None,
            shutdown: None,
            notes: Vec::new(),
        }
    }

    fn late_max(&self) -> Option<f64> {
        let max = median_max(&self.lateness).map(|m| m.1);
        match (max, self.open) {
            (Some(m), Some(o)) => Some(m.max(o)),
            (m, o) => m.or(o),
        }
    }

    fn status_ms(&self) -> Vec<f64> {
        self.status
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect()
    }

    fn status_failed(&self) -> usize {
        self.status.iter().filter(|s| s.is_none()).count()
    }

    /// The goals this run missed; empty when it met them all.
    fn missed(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.late_max().is_none_or(|l| l > LATE_MS) {
            m.push("restarts");
        }
        let slow = median_max(&self.status_ms()).is_none_or(|s| s.1 > STATUS_MS);
        if self.status_failed() > 0 || slow {
            m.push("status");
        }
        if !matches!(self.shutdown, Some(Ok(d)) if d <= BUDGET) {
            m.push("shutdown");
        }
        match (self.before, self.after) {
            (Some(b), Some(a)) => {
                if a.fds > b.fds {
                    m.push("fds");
                }
                if a.rss_kb > b.rss_kb + (b.rss_kb / 10).max(256) {
                    m.push("RSS");
                }
            }
            _ => m.push("fds and RSS"),
        }
        m
    }

    pub fn verdict(&self) -> String {
        match self.missed() {
            m if m.is_empty() => "met".into(),
            m => format!("**missed**: {}", m.join(", ")),
        }
    }
}

/// Where and when the run took place.
pub struct Meta {
    date: String,
    cpu: String,
    cpus: usize,
    kernel: String,
    binary: String,
    binary_bytes: u64,
    phase_s: u64,
    seconds: f64,
}

impl Meta {
    pub fn collect(bin: &Path, phase: Duration, elapsed: Duration) -> Meta {
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Meta {
            date,
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: kernel.trim().to_string(),
            binary: bin.display().to_string(),
            binary_bytes: fs::metadata(bin).map_or(0, |m| m.len()),
            phase_s: phase.as_secs(),
            seconds: elapsed.as_secs_f64(),
        }
    }
}

fn pair(v: &[f64], unit: &str) -> String {
    median_max(v).map_or("–".into(), |(m, x)| format!("{m:.1} / {x:.1} {unit}"))
}

fn lateness_cell(r: &Row) -> String {
    let over = r.lateness.iter().filter(|&&l| l > LATE_MS).count();
    match (median_max(&r.lateness), r.open) {
        (_, Some(o)) if r.late_max() == Some(o) => {
            let med = median_max(&r.lateness).map_or("–".into(), |m| format!("{:.1}", m.0));
            format!("{med} / ≥ {o:.0} ms (none since)")
        }
        _ if over > 0 => format!("{}, {over} over {LATE_MS} ms", pair(&r.lateness, "ms")),
        _ => pair(&r.lateness, "ms"),
    }
}

fn cells(r: &Row) -> [String; 9] {
    let mut status = pair(&r.status_ms(), "ms");
    if r.status_failed() > 0 {
        let _ = write!(
            status,
            ", {} of {} failed",
            r.status_failed(),
            r.status.len()
        );
    }
    let shutdown = match &r.shutdown {
        Some(Ok(d)) => format!("{:.0} ms", d.as_secs_f64() * 1e3),
        Some(Err(e)) => e.clone(),
        None => "–".into(),
    };
    let both = |f: fn(&Sample) -> String| match (r.before, r.after) {
        (Some(b), Some(a)) => format!("{} → {}", f(&b), f(&a)),
        (Some(b), None) => format!("{} → –", f(&b)),
        _ => "–".into(),
    };
    [
        r.load.title().into(),
        format!("{}", r.lateness.len() + usize::from(r.open.is_some())),
        lateness_cell(r),
        status,
        r.cpu_pct
            .map_or("–".into(), |(c, w)| format!("{c:.0} % / {w:.1} %")),
        shutdown,
        both(|s| s.fds.to_string()),
        both(|s| format!("{} kB", s.rss_kb)),
        r.verdict(),
    ]
}

pub fn markdown(rows: &[Row], m: &Meta) -> String {
    let mut out = format!(
        "# pidone reliability, {}\n\n{} ({} CPUs), Linux {}; {} ({} bytes); {} s of each load; \
         run took {:.0} s.\n\nGoals: restart ≤ {LATE_MS} ms after its schedule (exit + \
         {RESTART_DELAY_MS} ms), `status` ≤ 1 s, SIGTERM → exit ≤ {} s (the \
         global_shutdown_timeout), fds and RSS back to their baseline.\n\n\
         | load | restarts due | lateness median / max | `status` median / max | pidone on CPU / waiting \
         | SIGTERM → exit | fds before → after | RSS before → after | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        m.date,
        m.cpu,
        m.cpus,
        m.kernel,
        m.binary,
        m.binary_bytes,
        m.phase_s,
        m.seconds,
        BUDGET.as_secs()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", cells(r).join(" | "));
    }
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.notes
                .iter()
                .map(move |n| format!("- {}: {n}", r.load.key()))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n{}", notes.join("\n"));
    }
    out
}

pub fn json(rows: &[Row], m: &Meta) -> String {
    let sample = |s: Option<Sample>| s.map(|s| json!({"fds": s.fds, "rss_kb": s.rss_kb}));
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "load": r.load.key(),
                "title": r.load.title(),
                "restart_lateness_ms": r.lateness,
                "overdue_restart_ms": r.open,
                "status_ms": r.status.iter().map(|s| s.map(|d| d.as_secs_f64() * 1e3)).collect::<Vec<_>>(),
                "cpu_percent": r.cpu_pct.map(|c| c.0),
                "runqueue_wait_percent": r.cpu_pct.map(|c| c.1),
                "shutdown_ms": match &r.shutdown {
                    Some(Ok(d)) => json!(d.as_secs_f64() * 1e3),
                    Some(Err(e)) => json!(e),
                    None => Value::Null,
                },
                "before": sample(r.before),
                "after": sample(r.after),
                "missed": r.missed(),
                "notes": r.notes,
            })
        })
        .collect();
    let doc = json!({
        "date": m.date, "cpu": m.cpu, "cpus": m.cpus, "kernel": m.kernel,
        "binary": m.binary, "binary_bytes": m.binary_bytes, "load_seconds": m.phase_s,
        "run_seconds": m.seconds, "restart_delay_ms": RESTART_DELAY_MS,
        "shutdown_budget_ms": BUDGET.as_millis() as u64, "rows": rows,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
