//! `pidone validate`'s summary of a loaded configuration, and durations as messages show them.

use std::fmt::Write as _;
use std::time::Duration;

use super::model::{Config, Kind, Level, OnFailure, Probe, ReadyMode, bracketed};
use crate::core::graph::ServiceId;

/// A human summary for `pidone validate`: the services in start order, one per line with their
/// dependencies, readiness and cgroup limits not applied, followed by one indented line per
/// check; then whether pidone manages cgroups.
pub fn describe(config: &Config) -> String {
    let width = config.name_width();
    let name_of = |id: &ServiceId| config.services.get(id.0).map_or("?", |s| s.name.as_str());
    let mut out = String::new();
    let enabled = config.services.iter().filter(|s| s.enabled).count();
    let _ = writeln!(
        out,
        "{} services ({} enabled), in start order:",
        config.services.len(),
        enabled
    );
    for (i, s) in config.services.iter().enumerate() {
        let _ = write!(
            out,
            "{:>3}. {:<width$}  {}",
            i + 1,
            s.name,
            match s.kind {
                Kind::Longrun => "longrun",
                Kind::Oneshot => "oneshot",
            }
        );
        if !s.enabled {
            out.push_str("  disabled");
        }
        if s.required {
            out.push_str("  required");
        }
        if let Some(timer) = &s.timer {
            let _ = write!(out, "  schedule: {}", timer.text);
        }
        if s.on_demand {
            out.push_str("  on-demand");
        }
        if !s.listen.is_empty() {
            let texts: Vec<&str> = s.listen.iter().map(|l| l.text.as_str()).collect();
            let _ = write!(out, "  listen: {}", texts.join(", "));
        }
        if !s.depends_on.is_empty() {
            let deps: Vec<String> = s
                .depends_on
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut what: Vec<String> = (s.conditions.get(i))
                        .map(|c| c.as_str().to_owned())
                        .filter(|c| c != "ready")
                        .into_iter()
                        .collect();
                    if let Some((_, d)) = s.wait_after.iter().find(|(w, _)| w == id) {
                        what.push(format!("+{}", format_duration(*d)));
                    }
                    match what.is_empty() {
                        true => name_of(id).to_owned(),
                        false => format!("{} ({})", name_of(id), what.join(", ")),
                    }
                })
                .collect();
            let _ = write!(out, "  depends on: {}", deps.join(", "));
        }
        if !s.after.is_empty() {
            let names: Vec<&str> = s.after.iter().map(name_of).collect();
            let _ = write!(out, "  after: {}", names.join(", "));
        }
        match s.ready {
            ReadyMode::Exec => {}
            ReadyMode::NotifyFd(fd) => {
                let _ = write!(out, "  ready: notify_fd {fd}");
            }
            ReadyMode::SdNotify => out.push_str("  ready: sd_notify"),
            ReadyMode::After(d) => {
                let _ = write!(out, "  ready: after {}", format_duration(d));
            }
        }
        if !s.cgroup_skipped.is_empty() {
            // cgroup_optional: the `cgroup v2` line below says why.
            let _ = write!(out, "  not applied: {}", s.cgroup_skipped);
        }
        if let Some(limit) = s.start_timeout.filter(|_| s.kind == Kind::Longrun) {
            let _ = write!(out, "  start_timeout: {}", format_duration(limit));
        }
        // Line 0: read from a layout that is not TOML (s6-overlay's), named by its directory.
        if cfg!(feature = "s6") && s.line == 0 {
            let _ = write!(out, "  from {}", s.file.display());
        }
        out.push('\n');
        for c in &s.checks {
            let what = match (c.level, c.on_failure) {
                (Level::Ready, _) => "ready",
                (Level::Alive, OnFailure::Restart) => "alive, on failure: restart",
                (Level::Alive, OnFailure::Stop) => "alive, on failure: stop",
                (Level::Alive, OnFailure::Shutdown) => "alive, on failure: shutdown",
                (Level::Alive, OnFailure::Ignore) => "alive, on failure: ignore",
            };
            let _ = writeln!(
                out,
                "     check {} ({what}): {} every {}",
                c.name,
                describe_probe(&c.probe),
                format_duration(c.period)
            );
        }
    }
    match &config.cgroups {
        Ok(controllers) if controllers.is_empty() => {
            out.push_str("cgroup v2: managed (no controllers)\n");
        }
        Ok(controllers) => {
            let _ = writeln!(out, "cgroup v2: managed ({})", controllers.join(" "));
        }
        Err(why) => {
            let _ = writeln!(out, "cgroup v2: not managed: {why}");
        }
    }
    out
}

/// A probe as `validate` shows it: `exec ARGV`, `tcp HOST:PORT`, `GET URL`.
fn describe_probe(probe: &Probe) -> String {
    match probe {
        Probe::Exec(argv) => {
            let words: Vec<String> = argv
                .iter()
                .map(|a| {
                    if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                        format!("{a:?}")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            format!("exec {}", words.join(" "))
        }
        Probe::Tcp { host: h, port } => format!("tcp {}:{port}", bracketed(h)),
        Probe::Http {
            host: h,
            port,
            path,
        } => format!("GET http://{}:{port}{path}", bracketed(h)),
    }
}

/// Formats a duration for messages, exactly: whole seconds as `"10s"`; under a second in the
/// largest unit that shows it whole (`"500ms"`, `"250µs"`, `"1ns"`); anything else as decimal
/// seconds (`"1.5s"`, `"2.000001s"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", d.as_secs());
    }
    if d.as_secs() == 0 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}
