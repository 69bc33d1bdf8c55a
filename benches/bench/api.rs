//! The API figures (`--only api`): pidone alone, 50 services, its API on TCP beside the control
//! socket. Requests per second and latency of `GET /readyz` and `GET /metrics` on each, and the
//! supervision lag of a crashing service (restart delay 100 ms) while 100 clients hammer
//! `/metrics` on TCP, against the same service with nobody asking.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::ns::{Ns, Res};

/// Services besides the crashing one.
const SERVICES: usize = 50;
/// Clients hammering the endpoint in the lag figure.
const HAMMERS: usize = 100;
/// The crashing service's restart delay: its runs are this far apart when supervision keeps time.
const DELAY_MS: f64 = 100.0;

/// Where a request goes.
#[derive(Clone)]
enum To {
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl To {
    fn label(&self) -> &'static str {
        match self {
            To::Tcp(_) => "TCP",
            To::Unix(_) => "unix socket",
        }
    }

    /// One request; its status code (0: no answer).
    fn get(&self, path: &str) -> u16 {
        let raw = self.fetch(path);
        let status = raw.get(9..12).and_then(|s| std::str::from_utf8(s).ok());
        status.and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// One request; the whole response as it came (empty: no answer).
    fn fetch(&self, path: &str) -> Vec<u8> {
        let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut raw = Vec::new();
        let done = match self {
            To::Tcp(addr) => TcpStream::connect(addr).and_then(|mut s| {
                s.write_all(text.as_bytes())?;
                s.read_to_end(&mut raw)
            }),
            To::Unix(path) => UnixStream::connect(path).and_then(|mut s| {
                s.write_all(text.as_bytes())?;
                s.read_to_end(&mut raw)
            }),
        };
        if done.is_err() {
            raw.clear();
        }
        raw
    }
}

/// The API section of the report, markdown.
pub fn figures(bin: &Path, root: &Path, quick: bool) -> Res<String> {
    let dir = root.join("api");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let socket = dir.join("ctl.sock");
    let runs = dir.join("crash.runs");
    let mut config = format!("[api]\nlisten = [\"127.0.0.1:{port}\"]\n");
    for i in 1..=SERVICES {
        let _ = write!(
            config,
            "[[services]]\nname = \"s{i}\"\ncommand = [\"sleep\", \"1000000\"]\n"
        );
    }
    let _ = write!(
        config,
        "[[services]]\nname = \"crash\"\nrestart = \"always\"\nrestart_delay = \"100ms\"\n\
         restart_delay_max = \"100ms\"\n\
         command = [\"/bin/sh\", \"-c\", \"date +%s%N >> {}; exit 1\"]\n",
        runs.display()
    );
    let file = dir.join("pidone.toml");
    std::fs::write(&file, config).map_err(|e| e.to_string())?;
    let argv: Vec<String> = [
        bin.display().to_string(),
        "--socket".into(),
        socket.display().to_string(),
        "--config".into(),
        file.display().to_string(),
    ]
    .into();
    let (mut ns, _) = Ns::launch(&argv, &dir.join("log"))?;
    let tcp = To::Tcp(format!("127.0.0.1:{port}"));
    let unix = To::Unix(socket);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tcp.get("/readyz") != 200 || unix.get("/readyz") != 200 {
        if Instant::now() > deadline {
            return Err(format!("api: pidone not ready: {}", ns.log_tail()));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let seconds = if quick { 1.0 } else { 3.0 };
    let mut out = String::from(
        "\n## The API, 50 services\n\n\
         | request | on | one client: req/s | latency median | p99 | 8 clients: req/s |\n\
         |---|---|---|---|---|---|\n",
    );
    for path in ["/readyz", "/metrics"] {
        for to in [&tcp, &unix] {
            let (rate, median, p99) = one_client(to, path, seconds);
            let many = clients(to, path, 8, seconds);
            let _ = writeln!(
                out,
                "| `GET {path}` | {} | {rate:.0} | {median:.3} ms | {p99:.3} ms | {many:.0} |",
                to.label()
            );
        }
    }
    let seq = last_seq(&unix);
    let idle = lag(&runs, seconds * 2.0, || ());
    let idle_late = lateness(&unix, seq);
    let seq = last_seq(&unix);
    let hammered = lag(&runs, seconds * 2.0, || {
        clients(&tcp, "/metrics", HAMMERS, seconds * 2.0);
    });
    let hammered_late = lateness(&unix, seq);
    let _ = writeln!(
        out,
        "\nSupervision lag of a service crashing at once, restart delay 100 ms (its runs' spacing \
         minus 100 ms), median / max over {} s:\n\n\
         | while | lag median | lag max | restarts |\n|---|---|---|---|\n\
         | nobody asks | {:.1} ms | {:.1} ms | {} |\n\
         | {HAMMERS} clients hammer `/metrics` on TCP | {:.1} ms | {:.1} ms | {} |",
        seconds * 2.0,
        idle.0,
        idle.1,
        idle.2,
        hammered.0,
        hammered.1,
        hammered.2
    );
    let _ = writeln!(
        out,
        "\npidone's own lateness in the same windows, from its event stream: the time of each \
         restart (`pending -> starting`) minus the time the exit was seen (`running -> pending`) \
         minus 100 ms, to the millisecond of the events' times; median / max:\n\n\
         | while | lateness median | lateness max | restarts |\n|---|---|---|---|\n\
         | nobody asks | {:.0} ms | {:.0} ms | {} |\n\
         | {HAMMERS} clients hammer `/metrics` on TCP | {:.0} ms | {:.0} ms | {} |",
        idle_late.0, idle_late.1, idle_late.2, hammered_late.0, hammered_late.1, hammered_late.2
    );
    let _ = ns.terminate(Duration::from_secs(15));
    Ok(out)
}

/// Sequential requests for `seconds`: the rate, and the median and 99th percentile latency (ms).
fn one_client(to: &To, path: &str, seconds: f64) -> (f64, f64, f64) {
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        if to.get(path) != 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    let rate = times.len() as f64 / start.elapsed().as_secs_f64();
    (rate, at(0.5).unwrap_or(0.0), at(0.99).unwrap_or(0.0))
}

/// `n` clients asking `path` in a loop for `seconds`; the answers per second, all together.
fn clients(to: &To, path: &str, n: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (to, path, stop, answered) =
                (to.clone(), path.to_string(), stop.clone(), answered.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if to.get(&path) == 200 {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    answered.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// While `during` runs (or for `seconds` if it returns at once): the crashing service's lag,
/// median and max in ms, and how many restarts that was.
fn lag(runs: &Path, seconds: f64, during: impl FnOnce()) -> (f64, f64, usize) {
    let stamps = || -> Vec<u128> {
        let text = std::fs::read_to_string(runs).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    };
    let before = stamps().len();
    let start = Instant::now();
    during();
    if let Some(left) = Duration::from_secs_f64(seconds).checked_sub(start.elapsed()) {
        thread::sleep(left);
    }
    let all = stamps();
    let new = all.get(before..).unwrap_or_default();
    let mut lags: Vec<f64> = new
        .windows(2)
        .map(|w| (w[1].saturating_sub(w[0])) as f64 / 1e6 - DELAY_MS)
        .collect();
    lags.sort_by(f64::total_cmp);
    let median = lags.get(lags.len() / 2).copied().unwrap_or(f64::NAN);
    let max = lags.last().copied().unwrap_or(f64::NAN);
    (median, max, new.len())
}

/// The number of the last event so far (0: none, or no answer).
fn last_seq(to: &To) -> u64 {
    let raw = to.fetch("/v1/events");
    let text = String::from_utf8_lossy(&raw);
    text.lines()
        .filter_map(|l| field(l, "\"seq\":"))
        .filter_map(|v| v.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The crashing service's restarts after event `since`, from the event stream: for each, the
/// time from its exit being seen to its next start, minus the restart delay; median and max in
/// ms, and how many.
fn lateness(to: &To, since: u64) -> (f64, f64, usize) {
    let raw = to.fetch(&format!("/v1/events?since={since}"));
    let text = String::from_utf8_lossy(&raw);
    let mut exited: Option<f64> = None;
    let mut late: Vec<f64> = Vec::new();
    for line in text.lines().filter(|l| l.contains("\"service\":\"crash\"")) {
        let Some(at) = field(line, "\"time\":\"").and_then(millis_of_day) else {
            continue;
        };
        if line.contains("\"state\":\"pending\"") && line.contains("\"from\":\"running\"") {
            exited = Some(at);
        } else if line.contains("\"state\":\"starting\"") {
            if let Some(e) = exited.take() {
                late.push(at - e - DELAY_MS);
            }
        }
    }
    late.sort_by(f64::total_cmp);
    let median = late.get(late.len() / 2).copied().unwrap_or(f64::NAN);
    let max = late.last().copied().unwrap_or(f64::NAN);
    (median, max, late.len())
}

/// The value after `key` in a JSON line, up to the next `,`, `"` or `}`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.split_once(key)?.1;
    rest.split([',', '"', '}']).next()
}

/// `2026-11-30T03:42:42.233Z` as milliseconds since midnight (the windows are seconds long).
fn millis_of_day(stamp: &str) -> Option<f64> {
    let clock = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(((h * 60.0 + m) * 60.0 + s) * 1000.0)
}
