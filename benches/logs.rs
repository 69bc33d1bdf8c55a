//! Log throughput: one service writing 100-byte lines flat out (1 GB by default), through pidone
//! (prefix mode to its stdout redirected to a file, a rotating `log_file`, JSON lines), through
//! `s6-log` (rotating, when installed) and through `cat` (the floor). For each: throughput and
//! the CPU seconds per GB of the process that moves the lines (pidone itself, without the
//! service; s6-log; cat). Markdown on stdout. No timing is asserted; `cargo test` does not run it.
//!
//! `cargo bench --bench logs -- [--quick] [--mb N] [--pidone PATH]`; see docs/bench.md.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

type Res<T> = Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench logs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One contestant's result: wall seconds and CPU seconds of the logging process.
struct Sample {
    name: &'static str,
    wall: f64,
    cpu: f64,
}

fn run() -> Res<()> {
    let mut mb: u64 = 1000;
    let mut pidone = std::env::var_os("PIDONE_BIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => mb = 100,
            "--mb" => {
                let v = args.next().ok_or("--mb needs a value")?;
                mb = v.parse().map_err(|_| format!("--mb {v}: not a number"))?;
            }
            "--pidone" => pidone = args.next().map(PathBuf::from),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    let pidone = pidone.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/x86_64-unknown-linux-musl/release/pidone")
    });
    if !pidone.exists() {
        return Err(format!("{} missing: run make static", pidone.display()));
    }
    let dir = std::env::temp_dir().join(format!("pidone-bench-logs-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let writer = dir.join("gen.sh");
    let line: String = "x".repeat(99);
    fs::write(
        &writer,
        format!("#!/bin/sh\nyes {line} | head -c {}\n", mb * 1_000_000),
    )
    .map_err(|e| e.to_string())?;
    Command::new("chmod")
        .arg("+x")
        .arg(&writer)
        .status()
        .map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let service = format!("type = \"oneshot\"\ncommand = \"{}\"\n", writer.display());
    let rotating = format!(
        "{service}log_file = \"{}\"\nlog_max_size = \"10MB\"\n",
        dir.join("svc.log").display()
    );
    for (name, keys, flags) in [
        ("pidone, prefix to a file", service.as_str(), &[][..]),
        ("pidone, rotating log_file", rotating.as_str(), &[][..]),
        (
            "pidone, JSON lines",
            service.as_str(),
            &["--log-format", "json"][..],
        ),
    ] {
        samples.push(through_pidone(&pidone, &dir, name, keys, flags)?);
    }
    if let Some(s6) = which("s6-log") {
        let logdir = dir.join("s6");
        let args = ["-b", "n10", "s10000000"];
        samples.push(through_filter(
            "s6-log, rotating",
            &writer,
            &s6,
            &args,
            &logdir,
            None,
        )?);
    } else {
        eprintln!("note: s6-log not found (apt-get install s6): its row is left out");
    }
    let out = dir.join("cat.out");
    let cat = which("cat").ok_or("cat not found")?;
    samples.push(through_filter(
        "cat (the floor)",
        &writer,
        &cat,
        &[],
        &out,
        Some(&out),
    )?);
    let _ = fs::remove_dir_all(&dir);
    report(mb, &samples);
    Ok(())
}

/// `pidone --config` with the generator as a oneshot: pidone's own CPU (not its children's) is
/// read from /proc by its main program, which starts once the oneshot is done.
fn through_pidone(
    pidone: &Path,
    dir: &Path,
    name: &'static str,
    keys: &str,
    flags: &[&str],
) -> Res<Sample> {
    let config = dir.join("pidone.toml");
    fs::write(&config, format!("[[services]]\nname = \"gen\"\n{keys}"))
        .map_err(|e| e.to_string())?;
    for entry in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("svc.log") {
            let _ = fs::remove_file(entry.path());
        }
    }
    let stat = dir.join("stat");
    let out = fs::File::create(dir.join("pidone.out")).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let status = Command::new(pidone)
        .args(flags)
        .arg("--socket")
        .arg(dir.join("ctl.sock"))
        .arg("--config")
        .arg(&config)
        .args(["--", "/bin/sh", "-c"])
        .arg(format!("cat /proc/$PPID/stat > {}", stat.display()))
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", pidone.display()))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{name}: pidone exited with {status}"));
    }
    let text = fs::read_to_string(&stat).map_err(|e| e.to_string())?;
    // Fields 14 and 15 (utime, stime) after the `(comm)` field, in clock ticks.
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(Sample {
        name,
        wall,
        cpu: ticks.iter().sum::<f64>() / hz,
    })
}

/// `writer | FILTER ARGS... TARGET` (TARGET as its last argument, or as its stdout when
/// `stdout_to` is given); the filter's CPU from wait4's rusage.
fn through_filter(
    name: &'static str,
    writer: &Path,
    filter: &Path,
    args: &[&str],
    target: &Path,
    stdout_to: Option<&Path>,
) -> Res<Sample> {
    let start = Instant::now();
    let mut source = Command::new(writer)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let input = source.stdout.take().ok_or("no pipe")?;
    let mut cmd = Command::new(filter);
    cmd.args(args).stdin(input);
    match stdout_to {
        Some(path) => {
            cmd.stdout(fs::File::create(path).map_err(|e| e.to_string())?);
        }
        None => {
            cmd.arg(target);
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", filter.display()))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for writes; the pid is our own child.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    let _ = source.wait();
    if pid < 0 || std::process::ExitStatus::from_raw(status).code() != Some(0) {
        return Err(format!("{name}: {} failed", filter.display()));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Sample {
        name,
        wall,
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
    })
}

/// The program's path on PATH, if any.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn report(mb: u64, samples: &[Sample]) {
    let gb = mb as f64 / 1000.0;
    let floor = samples.last().map_or(0.0, |s| s.cpu / gb);
    println!("## Log throughput: {mb} MB of 100-byte lines\n");
    println!("| path | MB/s | CPU s/GB | CPU × cat |");
    println!("|---|---|---|---|");
    for s in samples {
        let per_gb = s.cpu / gb;
        let ratio = match floor > 0.0 {
            true => format!("{:.1}", per_gb / floor),
            false => "–".into(),
        };
        println!(
            "| {} | {:.0} | {:.2} | {ratio} |",
            s.name,
            mb as f64 / s.wall,
            per_gb
        );
    }
}
