//! The supervisor's side of the control socket: answers to requests, read from (and, for
//! start/stop/restart/shutdown, applied to) the services' state.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{Supervisor, Svc};
use crate::config::{Kind, Level};
use crate::control::{Answer, MAX_LOGS, Request, Verb};
use crate::graph::ServiceId;
use crate::reap::Exit;
use crate::service::State;

impl Supervisor {
    /// Answers one request at time `now`.
    pub(super) fn answer(&mut self, request: Request, now: Instant) -> Answer {
        match request {
            Request::Services { names } => {
                let ids = match names {
                    // A service a reload removed shows only while it is still stopping.
                    None => (0..self.svcs.len())
                        .filter(|&i| !self.svcs[i].removed || self.svcs[i].rt.is_active())
                        .map(ServiceId)
                        .collect(),
                    Some(names) => match self.lookup(&names) {
                        Ok(ids) => ids,
                        Err(answer) => return answer,
                    },
                };
                let list: Vec<Value> = ids.iter().map(|id| self.describe(*id, now)).collect();
                Answer::json(200, Value::Array(list).to_string())
            }
            Request::Act { name, verb } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                if self.phase != super::Phase::Running {
                    return Answer::error(409, "pidone is shutting down");
                }
                match verb {
                    Verb::Start => self.request_start(id),
                    Verb::Stop => self.request_stop(id, false),
                    Verb::Restart => self.request_stop(id, true),
                }
                Answer::json(200, self.describe(id, now).to_string())
            }
            Request::Signal { name, signal } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                let Some(child) = &self.svcs[id.0].child else {
                    return Answer::error(409, &format!("{name} is not running"));
                };
                if let Err(err) = child.signal(signal) {
                    return Answer::error(409, &format!("{name}: {err}"));
                }
                Answer::json(200, self.describe(id, now).to_string())
            }
            Request::Logs { name, n, .. } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                Answer {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body: log_text("", &self.svcs[id.0].log, n),
                }
            }
            Request::Health => {
                let problems = self.health_problems();
                let body = json!({ "healthy": problems.is_empty(), "problems": problems });
                Answer::json(
                    if problems.is_empty() { 200 } else { 503 },
                    body.to_string(),
                )
            }
            Request::Metrics => Answer {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: self.metrics(now),
            },
            Request::Reload => match self.reload(now) {
                Ok(summary) => Answer::json(200, summary.to_json()),
                Err(errors) => {
                    let body = json!({
                        "error": "configuration refused; the old one keeps running",
                        "errors": errors,
                    });
                    Answer::json(400, body.to_string())
                }
            },
            Request::Shutdown => {
                log::info!("shutdown requested through the control socket");
                self.begin_shutdown(now);
                Answer::json(200, json!({ "shutting_down": true }).to_string())
            }
        }
    }

    /// Resolves names to ids; an unknown name is a 404 listing the known ones.
    fn lookup(&self, names: &[String]) -> Result<Vec<ServiceId>, Answer> {
        names
            .iter()
            .map(|name| {
                // A service a reload removed is no longer known, even while it stops.
                self.svcs
                    .iter()
                    .position(|s| &s.spec.name == name && !s.removed)
                    .map(ServiceId)
                    .ok_or_else(|| {
                        let known: Vec<&str> = self
                            .svcs
                            .iter()
                            .filter(|s| !s.removed)
                            .map(|s| s.spec.name.as_str())
                            .collect();
                        Answer::error(
                            404,
                            &format!("unknown service {name:?}; known: {}", known.join(", ")),
                        )
                    })
            })
            .collect()
    }

    pub(super) fn lookup_one(&self, name: &str) -> Result<ServiceId, Answer> {
        let ids = self.lookup(&[name.to_string()])?;
        ids.first()
            .copied()
            .ok_or_else(|| Answer::error(404, "no service named"))
    }

    /// Start: the service and, first, every dependency that is not up.
    fn request_start(&mut self, id: ServiceId) {
        let mut todo = vec![id];
        let mut seen = vec![false; self.svcs.len()];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i.0], true) {
                continue;
            }
            let svc = &mut self.svcs[i.0];
            svc.held = false;
            let up = svc.rt.is_up(svc.spec.kind);
            if i == id || !up {
                if matches!(svc.rt.state, State::Stopped | State::Failed) {
                    self.apply(i, crate::service::Event::Enable, Instant::now());
                } else if svc.rt.state == State::Stopping {
                    svc.restart_requested = true;
                }
            }
            todo.extend(self.svcs[i.0].spec.depends_on.iter().copied());
        }
    }

    /// Stop (or restart): the service and, first, everything running that depends on it.
    pub(super) fn request_stop(&mut self, id: ServiceId, restart: bool) {
        let mut todo = vec![id];
        let mut seen = vec![false; self.svcs.len()];
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut seen[i.0], true) {
                continue;
            }
            let svc = &mut self.svcs[i.0];
            let running = svc.rt.is_active() || svc.rt.state == State::Pending;
            if i != id && !running {
                continue;
            }
            svc.held = true;
            svc.restart_requested = restart && (running || i == id);
            if !running {
                // A finished oneshot (or a failed service) is down from now on: a later start
                // runs it again instead of counting it as up.
                self.apply(i, crate::service::Event::Stop, Instant::now());
            }
            todo.extend(self.dependents[i.0].iter().copied());
        }
    }

    /// One service as JSON.
    fn describe(&self, id: ServiceId, now: Instant) -> Value {
        let svc = &self.svcs[id.0];
        let since = self.wall(svc.rt.since);
        let uptime = svc
            .rt
            .up_at
            .filter(|_| svc.rt.state == State::Running)
            .map(|up| now.saturating_duration_since(up).as_secs_f64());
        json!({
            "name": svc.spec.name,
            "state": svc.rt.state.as_str(),
            "reason": svc.rt.reason,
            "pid": svc.child.as_ref().map(|c| c.pid.as_raw_nonzero().get()),
            "since": since,
            "uptime": uptime,
            "restarts": svc.rt.restarts,
            "last_exit": svc.rt.last_exit.map(exit_json),
            "required": svc.spec.required,
            "enabled": svc.spec.enabled,
            "instance": svc.spec.instance,
            "type": match svc.spec.kind { Kind::Longrun => "longrun", Kind::Oneshot => "oneshot" },
            "ready": svc.spec.ready.kind(),
            "notify_status": svc.notify_status,
            "main_pid": svc.main_pid,
            "checks": svc.spec.checks.iter().zip(&svc.checks).map(|(spec, c)| json!({
                "name": spec.name,
                "kind": spec.probe.kind(),
                "level": spec.level.as_str(),
                "status": c.status.as_str(),
                "consecutive_successes": c.successes,
                "consecutive_failures": c.failures,
                "runs": c.runs,
                "failures": c.failed_runs,
                "last": c.last,
            })).collect::<Vec<_>>(),
        })
    }

    /// Why pidone is not healthy: enabled services not up, required services failed.
    fn health_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for svc in self.svcs.iter().filter(|s| !s.removed) {
            if svc.rt.state == State::Failed && svc.spec.required {
                problems.push(format!(
                    "required service {} failed: {}",
                    svc.spec.name, svc.rt.reason
                ));
            } else if svc.spec.enabled && !svc.held && !svc.rt.is_up(svc.spec.kind) && !done_ok(svc)
            {
                problems.push(format!("{} is {}", svc.spec.name, svc.rt.state.as_str()));
            } else if svc.rt.state == State::Running {
                let failing = svc.spec.checks.iter().zip(&svc.checks).filter(|(spec, c)| {
                    spec.level == Level::Alive && c.status == crate::health::Status::Failing
                });
                for (spec, c) in failing {
                    problems.push(format!(
                        "{}: check {} is failing: {}",
                        svc.spec.name,
                        spec.name,
                        c.last.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        if self.phase != super::Phase::Running {
            problems.push("pidone is shutting down".to_string());
        }
        problems
    }

    /// Prometheus text format.
    fn metrics(&self, now: Instant) -> String {
        let mut out = String::new();
        let per_service = |f: &dyn Fn(&Svc) -> Option<String>| -> Vec<(String, String)> {
            self.svcs
                .iter()
                .filter_map(|s| f(s).map(|v| (format!("service=\"{}\"", s.spec.name), v)))
                .collect()
        };
        let up = per_service(&|s| Some(u8::from(s.rt.is_up(s.spec.kind)).to_string()));
        family(
            &mut out,
            "pidone_service_up",
            "gauge",
            "1 when the service is up (running, or a oneshot done).",
            &up,
        );
        let states: Vec<(String, String)> = self
            .svcs
            .iter()
            .flat_map(|s| {
                STATES.iter().map(move |state| {
                    let labels =
                        format!("service=\"{}\",state=\"{}\"", s.spec.name, state.as_str());
                    (labels, u8::from(s.rt.state == *state).to_string())
                })
            })
            .collect();
        family(
            &mut out,
            "pidone_service_state",
            "gauge",
            "1 for the state the service is in.",
            &states,
        );
        let restarts = per_service(&|s| Some(s.rt.restarts.to_string()));
        family(
            &mut out,
            "pidone_service_restarts_total",
            "counter",
            "Restarts since pidone started.",
            &restarts,
        );
        let exits = per_service(&|s| s.rt.last_exit.map(|e| e.code().to_string()));
        family(
            &mut out,
            "pidone_service_last_exit_code",
            "gauge",
            "Last exit status (128+N for signal N).",
            &exits,
        );
        let starts = per_service(&|s| s.rt.up_at.map(|up| format!("{:.3}", self.wall(up))));
        family(
            &mut out,
            "pidone_service_start_time_seconds",
            "gauge",
            "When the service last came up (unix time).",
            &starts,
        );
        let checks = |f: &dyn Fn(&crate::health::Check) -> String| -> Vec<(String, String)> {
            self.svcs
                .iter()
                .flat_map(|s| {
                    s.spec.checks.iter().zip(&s.checks).map(move |(spec, c)| {
                        let labels = format!(
                            "service=\"{}\",check=\"{}\",level=\"{}\"",
                            s.spec.name,
                            spec.name,
                            spec.level.as_str()
                        );
                        (labels, f(c))
                    })
                })
                .collect()
        };
        family(
            &mut out,
            "pidone_check_up",
            "gauge",
            "1 when the check passes (0 when failing or not known yet).",
            &checks(&|c| u8::from(c.status == crate::health::Status::Passing).to_string()),
        );
        family(
            &mut out,
            "pidone_check_consecutive_failures",
            "gauge",
            "Failures of the check in a row.",
            &checks(&|c| c.failures.to_string()),
        );
        family(
            &mut out,
            "pidone_check_runs_total",
            "counter",
            "Runs of the check since pidone started.",
            &checks(&|c| c.runs.to_string()),
        );
        family(
            &mut out,
            "pidone_check_failures_total",
            "counter",
            "Failed runs of the check since pidone started.",
            &checks(&|c| c.failed_runs.to_string()),
        );
        let uptime = format!(
            "{:.3}",
            now.saturating_duration_since(self.started).as_secs_f64()
        );
        family(
            &mut out,
            "pidone_uptime_seconds",
            "gauge",
            "Time since pidone started.",
            &[(String::new(), uptime)],
        );
        let orphans = self.orphans_reaped.to_string();
        family(
            &mut out,
            "pidone_orphans_reaped_total",
            "counter",
            "Orphans (not services) reaped.",
            &[(String::new(), orphans)],
        );
        out
    }
}

/// Writes one metric family: HELP, TYPE, then one sample per (labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

const STATES: [State; 6] = [
    State::Pending,
    State::Starting,
    State::Running,
    State::Stopping,
    State::Stopped,
    State::Failed,
];

/// A oneshot that is done, or a longrun that exited successfully and is not restarted, is fine.
fn done_ok(svc: &Svc) -> bool {
    svc.rt.state == State::Stopped
        && matches!(svc.rt.last_exit, Some(Exit::Code(c)) if svc.policy.success_exit_codes.contains(&c))
}

fn exit_json(exit: Exit) -> Value {
    match exit {
        Exit::Code(code) => json!({ "code": code }),
        Exit::Signal(sig) => json!({ "signal": crate::signals::name(sig), "code": exit.code() }),
    }
}

/// The wall-clock time (unix seconds) of a monotonic instant in the past.
impl Supervisor {
    /// The wall-clock time (unix seconds) of a monotonic instant, from pidone's start.
    fn wall(&self, at: Instant) -> f64 {
        let start = self
            .started_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (start + at.saturating_duration_since(self.started)).as_secs_f64()
    }
}

/// `head`, then the last `n` lines of a service's output, oldest first, each ending in a newline,
/// within [`MAX_LOGS`] bytes: when older lines do not fit, a first line says how many were
/// skipped.
pub(super) fn log_text(head: &str, log: &VecDeque<String>, n: usize) -> String {
    let (mut bytes, mut fit) = (0, 0);
    for line in log.iter().rev().take(n) {
        if bytes + line.len() + 1 > MAX_LOGS {
            break;
        }
        (bytes, fit) = (bytes + line.len() + 1, fit + 1);
    }
    // Sized once: the text can be megabytes, and pidone's memory is what the budget bounds.
    let mut text = String::with_capacity(head.len() + 80 + bytes);
    text.push_str(head);
    let skipped = n.min(log.len()) - fit;
    if skipped > 0 {
        let _ = writeln!(
            text,
            "pidone: {skipped} older lines skipped (4 MiB at most)"
        );
    }
    for line in log.iter().skip(log.len() - fit) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_gives_the_last_lines_within_the_limit_and_counts_the_skipped() {
        let log: VecDeque<String> = ["one", "two", "three"].map(String::from).into();
        assert_eq!(log_text("", &log, 2), "two\nthree\n");
        assert_eq!(log_text("HEAD\n", &log, 10), "HEAD\none\ntwo\nthree\n");
        assert_eq!(log_text("", &log, 0), "");

        let long: VecDeque<String> = (0..2000)
            .map(|i| format!("{i:04}{}", "x".repeat(4091)))
            .collect();
        let text = log_text("", &long, 1500);
        let fit = MAX_LOGS / 4096;
        let first = format!(
            "pidone: {} older lines skipped (4 MiB at most)\n",
            1500 - fit
        );
        assert!(text.starts_with(&first), "{:.60}", text);
        assert!(text.len() - first.len() <= MAX_LOGS);
        assert_eq!(text.lines().count(), fit + 1);
        assert!(text[first.len()..].starts_with(&format!("{:04}x", 2000 - fit)));
        assert!(text.ends_with(&format!("1999{}\n", "x".repeat(4091))));
    }
}
