//! The supervisor's side of the control socket: answers to requests, read from (and, for
//! start/stop/restart/shutdown, applied to) the services' state.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Instant, UNIX_EPOCH};

use super::system::System;
use super::{Id, Service, Supervisor};
use crate::config::{Kind, Level};
use crate::control::wire;
use crate::control::{self, Answer, MAX_LOGS, Request, Verb};
use crate::core::service::{Event, Intent, State};
use crate::io::ring::LineRing;
use crate::os::reap::Exit;

impl<S: System> Supervisor<S> {
    /// Answers one request at time `now`.
    pub(super) fn answer(&mut self, request: Request, now: Instant) -> Answer {
        match request {
            Request::Services { names } => {
                let ids = match names {
                    // A service a reload removed shows only while it is still stopping.
                    None => self.svcs.iter().map(|(id, _)| id).collect(),
                    Some(names) => match self.lookup(&names) {
                        Ok(ids) => ids,
                        Err(answer) => return answer,
                    },
                };
                let list: Vec<wire::Service> = ids
                    .iter()
                    .filter_map(|id| self.describe(*id, now))
                    .collect();
                Answer::of(200, &list)
            }
            Request::Act { name, verb } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                if self.phase != super::Phase::Running {
                    return Answer::error(409, "pidone is shutting down");
                }
                let asked = match verb {
                    Verb::Start => {
                        self.request_start(id, now);
                        Vec::new()
                    }
                    Verb::Stop => self.request_stop(id, false, now),
                    Verb::Restart => self.request_stop(id, true, now),
                };
                // The dependents taken down with it, for a client that waits for them too.
                let along = (asked.iter())
                    .filter(|&&a| a != id)
                    .filter_map(|a| self.svcs.get(*a).map(|s| s.spec.name.clone()))
                    .collect();
                let service = self.describe(id, now).map(|s| wire::Service {
                    along: Some(along),
                    ..s
                });
                Answer::of(200, &service)
            }
            Request::Signal { name, signal } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                // A child still on its way to exec is signalled once it is there (or not at all).
                self.settle_exec(id, now);
                let Some(child) = self.svcs.get(id).and_then(|s| s.child.as_ref()) else {
                    return Answer::error(409, &format!("{name} is not running"));
                };
                if let Err(err) = self.sys.signal(child, signal) {
                    return Answer::error(409, &format!("{name}: {err}"));
                }
                Answer::of(200, &self.describe(id, now))
            }
            Request::Logs { name, n, .. } => {
                let id = match self.lookup_one(&name) {
                    Ok(id) => id,
                    Err(answer) => return answer,
                };
                Answer {
                    status: 200,
                    content_type: "text/plain; charset=utf-8",
                    body: (self.svcs.get(id)).map_or_else(String::new, |s| log_text("", &s.log, n)),
                }
            }
            Request::Health { live } => {
                let problems = self.health_problems(live);
                let healthy = problems.is_empty();
                let status = if healthy { 200 } else { 503 };
                Answer::of(status, &wire::Health { healthy, problems })
            }
            Request::Metrics => Answer {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: self.metrics(now),
            },
            Request::Reload => match self.reload(now) {
                Ok(summary) => Answer::of(200, &summary),
                Err(errors) => {
                    let error = "configuration refused; the old one keeps running".to_string();
                    let errors = Some(errors);
                    Answer::of(400, &wire::Error { error, errors })
                }
            },
            Request::Events { since, .. } => Answer {
                status: 200,
                content_type: "application/x-ndjson",
                body: self.events_text("", since),
            },
            Request::Shutdown => {
                log::info!("shutdown requested through the control socket");
                self.begin_shutdown(now);
                Answer::json(200, wire::SHUTTING_DOWN.to_string())
            }
        }
    }

    /// Moves connection `i` of server `s` forward: reads its request and answers it, or writes
    /// its answer.
    pub(super) fn serve(&mut self, s: usize, i: usize, now: Instant) {
        let Some(server) = self.servers.get_mut(s).and_then(Option::as_mut) else {
            return;
        };
        let Some(conn) = server.conns.get_mut(i) else {
            return;
        };
        if conn.is_closed() {
            return; // It gave way to a newcomer or to the budget this turn.
        }
        if conn.answering() {
            conn.write();
            return;
        }
        if conn.following() {
            conn.drain_input();
            return;
        }
        let uid = conn.uid;
        let Some(request) = server.read(i) else {
            return;
        };
        let room = server.may_follow();
        let answer = if request.acts() && uid != 0 && uid != rustix::process::getuid().as_raw() {
            Answer::error(
                403,
                "permission denied: only root and pidone's own user may act; others may read",
            )
        } else if let Some(stream) = self.stream_of(&request, room) {
            match stream {
                Ok((key, text)) => {
                    if let Some(conn) = self.conn_mut(s, i) {
                        conn.stream(key, text);
                        conn.write();
                    }
                    return;
                }
                Err(answer) => answer,
            }
        } else {
            self.answer(request, now)
        };
        if let Some(conn) = self.conn_mut(s, i) {
            conn.answer(&answer);
            conn.write();
        }
    }

    /// For a request to follow logs or events: the key its connection follows and the text it
    /// starts with, or the refusal (an unknown service; no `room` for another follower).
    fn stream_of(&self, request: &Request, room: bool) -> Option<Result<(u64, String), Answer>> {
        let busy = || Answer::error(503, "too many clients follow logs or events; try later");
        match request {
            Request::Logs {
                name,
                n,
                follow: true,
            } => Some(self.lookup_one(name).and_then(|id| {
                let empty = LineRing::default();
                let log = self.svcs.get(id).map_or(&empty, |s| &s.log);
                let text = room.then(|| log_text(control::STREAM_HEAD, log, *n));
                text.map(|t| (id.key(), t)).ok_or_else(busy)
            })),
            Request::Events {
                since,
                follow: true,
            } => Some(match room {
                true => Ok((
                    control::EVENTS,
                    self.events_text(control::STREAM_HEAD, *since),
                )),
                false => Err(busy()),
            }),
            _ => None,
        }
    }

    /// Resolves names to ids; an unknown name is a 404 listing the known ones.
    fn lookup(&self, names: &[String]) -> Result<Vec<Id>, Answer> {
        names
            .iter()
            .map(|name| {
                // A service a reload removed is no longer known, even while it stops.
                (self.svcs.iter())
                    .find(|(_, s)| &s.spec.name == name && s.life.intent != Intent::Remove)
                    .map(|(id, _)| id)
                    .ok_or_else(|| {
                        let known: Vec<&str> = (self.svcs.iter())
                            .filter(|(_, s)| s.life.intent != Intent::Remove)
                            .map(|(_, s)| s.spec.name.as_str())
                            .collect();
                        Answer::error(
                            404,
                            &format!("unknown service {name:?}; known: {}", known.join(", ")),
                        )
                    })
            })
            .collect()
    }

    pub(super) fn lookup_one(&self, name: &str) -> Result<Id, Answer> {
        let ids = self.lookup(&[name.to_string()])?;
        ids.first()
            .copied()
            .ok_or_else(|| Answer::error(404, "no service named"))
    }

    /// Start: the service and, first, every dependency that is not up.
    fn request_start(&mut self, id: Id, now: Instant) {
        let mut todo = vec![id];
        let mut seen = HashSet::new();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let Some(svc) = self.svcs.get(i) else {
                continue;
            };
            let deps = svc.deps.clone();
            // A dependency that is up and was asked nothing is left alone (a done oneshot is not
            // run again); one asked down has that undone.
            // A timed job is no gate: only run when it is the one asked.
            if i != id && svc.spec.timer.is_some() {
                continue;
            }
            if i == id || !svc.life.is_up(svc.spec.kind) || svc.life.intent != Intent::Run {
                self.apply(i, Event::Release, now);
            }
            todo.extend(deps);
        }
    }

    /// Stop (or restart): the service and, first, everything running that depends on it,
    /// directly or through services that are down (a finished oneshot passes the dependency
    /// on). Returns the services it asked down.
    pub(super) fn request_stop(&mut self, id: Id, restart: bool, now: Instant) -> Vec<Id> {
        let mut asked = Vec::new();
        let mut todo = vec![id];
        let mut seen = HashSet::new();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let Some(svc) = self.svcs.get(i) else {
                continue;
            };
            let running = svc.life.is_active() || svc.life.state == State::Pending;
            // A finished oneshot on the way is asked too: it runs again once what it depends on
            // is back, rather than counting as up while that is down.
            let done = svc.spec.kind == Kind::Oneshot && svc.life.is_up(svc.spec.kind);
            todo.extend(svc.dependents.iter().copied());
            if i != id && !running && !done {
                continue;
            }
            let event = if restart { Event::Restart } else { Event::Hold };
            self.apply(i, event, now);
            asked.push(i);
        }
        asked
    }

    /// One service as the API shows it; `None` for an id no longer in the table.
    fn describe(&self, id: Id, now: Instant) -> Option<wire::Service> {
        let svc = self.svcs.get(id)?;
        let uptime = (svc.life.up_at)
            .filter(|_| svc.life.state == State::Running)
            .map(|up| now.saturating_duration_since(up).as_secs_f64());
        let kind = match svc.spec.kind {
            Kind::Longrun => "longrun",
            Kind::Oneshot => "oneshot",
        };
        let skipped = &svc.spec.cgroup_skipped;
        let cgroup_skipped = (!skipped.is_empty()).then(|| {
            let why = self.cgroups_why.as_deref();
            let why = why.unwrap_or("their cgroup controllers are not available");
            format!("{skipped} not applied: {why}")
        });
        Some(wire::Service {
            along: None,
            cgroup_skipped,
            checks: (svc.spec.checks.iter().zip(&svc.checks))
                .map(|(spec, c)| wire::Check {
                    consecutive_failures: c.failures,
                    consecutive_successes: c.successes,
                    failures: c.failed_runs,
                    kind: spec.probe.kind().to_string(),
                    last: c.last.clone(),
                    level: spec.level.as_str().to_string(),
                    name: spec.name.clone(),
                    runs: c.runs,
                    status: c.status.as_str().to_string(),
                })
                .collect(),
            description: svc.spec.description.clone(),
            enabled: svc.spec.enabled,
            instance: svc.spec.instance,
            last_exit: svc.life.last_exit.map(last_exit),
            log: self.output.log_state(id.key()).map(|(c, error)| wire::Log {
                bytes: c.bytes,
                dropped_console: c.dropped_console,
                dropped_file: c.dropped_file,
                error: error.map(str::to_owned),
                lines: c.lines,
            }),
            main_pid: svc.main_pid,
            name: svc.spec.name.clone(),
            notify_state: svc.notify_state.map(str::to_string),
            notify_status: svc.notify_status.clone(),
            pid: svc.child.as_ref().map(|c| c.pid.as_raw_nonzero().get()),
            ready: svc.spec.ready.kind().to_string(),
            reason: svc.life.reason.clone(),
            required: svc.spec.required,
            restarts: svc.life.restarts,
            since: self.wall(svc.life.since),
            starting_for: (svc.life.state == State::Starting)
                .then(|| now.saturating_duration_since(svc.life.since).as_secs_f64()),
            state: svc.life.state.as_str().to_string(),
            timer: svc.spec.timer.as_ref().map(|timer| {
                let t = &svc.timed;
                let last = t.last.as_ref();
                wire::Timer {
                    failures: t.failures,
                    last_duration: last.map(|r| r.took.as_secs_f64()),
                    last_result: last.map(|r| r.result.clone()),
                    last_run: last.map(|r| self.wall(r.started)),
                    last_success: t.last_success.map(|at| self.wall(at)),
                    next: t.next.map(|at| self.wall(at)),
                    runs: t.runs,
                    schedule: timer.text.clone(),
                    skipped: t.skipped,
                }
            }),
            kind: kind.to_string(),
            uptime,
        })
    }

    /// True for a service that is up, a oneshot done well, or an on-demand service waiting for
    /// its first start: nothing that makes pidone unready.
    fn up_or_idle(&self, svc: &Service) -> bool {
        let idle = svc.spec.on_demand && svc.life.state == State::Stopped;
        idle || svc.life.is_up(svc.spec.kind) || done_ok(svc)
    }

    /// Why pidone is not ready (`live == false`: `/v1/health`, `/readyz`) or not live (`/livez`).
    ///
    /// Not live: a required service failed for good, or an alive-level check is failing (past
    /// its `failure_threshold`). Not ready, in addition: an enabled service that is not up,
    /// whatever the reason (starting, in backoff, failed, or stopped on request, even when it
    /// exited 0: its traffic has nowhere to go), and a shutdown under way. Starting and backoff
    /// never make pidone unlive.
    fn health_problems(&self, live: bool) -> Vec<String> {
        let mut problems = Vec::new();
        for (_, svc) in self.svcs.iter() {
            // A timed job's failed runs are in its status and metrics, not a health problem.
            if svc.life.intent == Intent::Remove || svc.spec.timer.is_some() {
                continue;
            }
            if svc.life.state == State::Failed && svc.spec.required {
                problems.push(format!(
                    "required service {} failed: {}",
                    svc.spec.name, svc.life.reason
                ));
            } else if !live && svc.spec.enabled && !self.up_or_idle(svc) {
                problems.push(format!("{} is {}", svc.spec.name, svc.life.state.as_str()));
            } else if svc.life.state == State::Running {
                let failing = svc.spec.checks.iter().zip(&svc.checks).filter(|(spec, c)| {
                    spec.level == Level::Alive && c.status == crate::core::health::Status::Failing
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
        if !live {
            // A log file that cannot be written is worth a look, not a restart of the pod.
            problems.extend(self.log_problems());
        }
        if !live && self.phase != super::Phase::Running {
            problems.push("pidone is shutting down".to_string());
        }
        problems
    }

    /// Prometheus text format.
    fn metrics(&self, now: Instant) -> String {
        let mut out = String::new();
        let per_service = |f: &dyn Fn(&Service) -> Option<String>| -> Vec<(String, String)> {
            (self.svcs.iter())
                .filter_map(|(_, s)| f(s).map(|v| (format!("service=\"{}\"", s.spec.name), v)))
                .collect()
        };
        let up = per_service(&|s| Some(u8::from(s.life.is_up(s.spec.kind)).to_string()));
        family(
            &mut out,
            "pidone_service_up",
            "gauge",
            "1 when the service is up (running, or a oneshot done).",
            &up,
        );
        let states: Vec<(String, String)> = (self.svcs.iter())
            .flat_map(|(_, s)| {
                STATES.iter().map(move |state| {
                    let labels =
                        format!("service=\"{}\",state=\"{}\"", s.spec.name, state.as_str());
                    (labels, u8::from(s.life.state == *state).to_string())
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
        let restarts = per_service(&|s| Some(s.life.restarts.to_string()));
        family(
            &mut out,
            "pidone_service_restarts_total",
            "counter",
            "Restarts since pidone started.",
            &restarts,
        );
        let ooms = per_service(&|s| Some(s.oom_kills.to_string()));
        family(
            &mut out,
            "pidone_service_oom_kills_total",
            "counter",
            "Processes of the service killed by the OOM killer (managed cgroups only).",
            &ooms,
        );
        let exits = per_service(&|s| s.life.last_exit.map(|e| e.code().to_string()));
        family(
            &mut out,
            "pidone_service_last_exit_code",
            "gauge",
            "Last exit status (128+N for signal N).",
            &exits,
        );
        let starts = per_service(&|s| s.life.up_at.map(|up| seconds(self.since_epoch(up))));
        family(
            &mut out,
            "pidone_service_start_time_seconds",
            "gauge",
            "When the service last came up (unix time).",
            &starts,
        );
        self.usage_metrics(&mut out);
        let timed = |f: &dyn Fn(&super::timer::Timed) -> Option<String>| {
            per_service(&|s| s.spec.timer.as_ref().and_then(|_| f(&s.timed)))
        };
        family(
            &mut out,
            "pidone_timer_last_success_time_seconds",
            "gauge",
            "When the timed job's last successful run ended (unix time).",
            &timed(&|t| t.last_success.map(|at| seconds(self.since_epoch(at)))),
        );
        for (name, help, count) in [
            (
                "runs",
                "Runs of the timed job.",
                (|t| t.runs) as fn(&super::timer::Timed) -> u64,
            ),
            ("failures", "Failed runs of the timed job.", |t| t.failures),
            (
                "skipped",
                "Runs skipped: the previous run still went on.",
                |t| t.skipped,
            ),
        ] {
            family(
                &mut out,
                &format!("pidone_timer_{name}_total"),
                "counter",
                help,
                &timed(&|t| Some(count(t).to_string())),
            );
        }
        let checks = |f: &dyn Fn(&crate::core::health::Check) -> String| -> Vec<(String, String)> {
            (self.svcs.iter())
                .flat_map(|(_, s)| {
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
            &checks(&|c| u8::from(c.status == crate::core::health::Status::Passing).to_string()),
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
        family(
            &mut out,
            "pidone_cgroups_managed",
            "gauge",
            "1 when pidone manages cgroups.",
            &[(String::new(), u8::from(self.cgroups.is_some()).to_string())],
        );
        let took = |c: &crate::core::health::Check| c.took.map_or_else(String::new, seconds);
        let mut durations = checks(&took);
        durations.retain(|(_, v)| !v.is_empty());
        family(
            &mut out,
            "pidone_check_duration_seconds",
            "gauge",
            "How long the check's last run took.",
            &durations,
        );
        let uptime = seconds(now.saturating_duration_since(self.started));
        family(
            &mut out,
            "pidone_uptime_seconds",
            "gauge",
            "Time since pidone started.",
            &[(String::new(), uptime)],
        );
        self.log_metrics(&mut out);
        let orphans = self.orphans_reaped.to_string();
        family(
            &mut out,
            "pidone_orphans_reaped_total",
            "counter",
            "Orphans (not services) reaped.",
            &[(String::new(), orphans)],
        );
        let wakeups = self.wakeups.to_string();
        family(
            &mut out,
            "pidone_loop_wakeups_total",
            "counter",
            "Turns of pidone's loop: each poll() that returned.",
            &[(String::new(), wakeups)],
        );
        out
    }

    /// What each service's process, and pidone itself, use: read from `/proc` now.
    fn usage_metrics(&self, out: &mut String) {
        use crate::os::procfs::{Usage, usage};
        let mut all: Vec<(String, Usage)> = (self.svcs.iter())
            .filter_map(|(_, s)| {
                let pid = s.child.as_ref()?.pid.as_raw_nonzero().get();
                Some((
                    format!("service=\"{}\"", s.spec.name),
                    usage(&pid.to_string()),
                ))
            })
            .collect();
        let services = all.len();
        all.push((String::new(), usage("self")));
        let pick = |f: fn(&Usage) -> Option<String>, own: bool| -> Vec<(String, String)> {
            let (theirs, mine) = all.split_at(services);
            (if own { mine } else { theirs }.iter())
                .filter_map(|(labels, u)| f(u).map(|v| (labels.clone(), v)))
                .collect()
        };
        let cpu = |u: &Usage| u.cpu.map(seconds);
        let rss = |u: &Usage| u.rss.map(|n| n.to_string());
        let fds = |u: &Usage| u.fds.map(|n| n.to_string());
        for (name, kind, help, f, own) in [
            (
                "service_cpu_seconds_total",
                "counter",
                "CPU time (user and system) of the service's process.",
                cpu as fn(&Usage) -> Option<String>,
                false,
            ),
            (
                "service_resident_memory_bytes",
                "gauge",
                "Resident memory of the service's process.",
                rss,
                false,
            ),
            (
                "service_open_fds",
                "gauge",
                "Open file descriptors of the service's process.",
                fds,
                false,
            ),
            (
                "resident_memory_bytes",
                "gauge",
                "pidone's own resident memory.",
                rss,
                true,
            ),
            (
                "open_fds",
                "gauge",
                "pidone's own open file descriptors.",
                fds,
                true,
            ),
        ] {
            family(out, &format!("pidone_{name}"), kind, help, &pick(f, own));
        }
    }
}

/// Writes one metric family: HELP, TYPE, then one sample per (labels, value).
pub(super) fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, String)],
) {
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

/// A oneshot that is done, or a longrun that exited successfully on its own and is not restarted,
/// is fine (one stopped on request is down, not done).
fn done_ok(svc: &Service) -> bool {
    svc.life.state == State::Stopped
        && svc.life.intent == Intent::Run
        && matches!(svc.life.last_exit, Some(Exit::Code(c)) if svc.policy.success_exit_codes.contains(&c))
}

pub(super) fn last_exit(exit: Exit) -> wire::LastExit {
    let signal = match exit {
        Exit::Code(_) => None,
        Exit::Signal(sig) => Some(crate::os::signals::name(sig)),
        Exit::OutOfMemory => Some(crate::os::signals::name(libc::SIGKILL)),
    };
    let code = exit.code();
    wire::LastExit { code, signal }
}

impl<S: System> Supervisor<S> {
    /// The wall-clock time (unix seconds) of a monotonic instant, from pidone's start.
    fn wall(&self, at: Instant) -> f64 {
        self.since_epoch(at).as_secs_f64()
    }

    /// The wall-clock time of a monotonic instant, as time since the epoch.
    pub(super) fn since_epoch(&self, at: Instant) -> std::time::Duration {
        let start = self
            .started_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        start + at.saturating_duration_since(self.started)
    }
}

/// Seconds with milliseconds, `12.345`, as Prometheus reads them (written without float
/// formatting, which would cost the binary 10 kB).
fn seconds(d: std::time::Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// `head`, then the last `n` lines of a service's output, oldest first, each ending in a newline,
/// within [`MAX_LOGS`] bytes: when older lines do not fit, a first line says how many were
/// skipped.
pub(super) fn log_text(head: &str, log: &LineRing, n: usize) -> String {
    let (fit, bytes) = log.fit(n, MAX_LOGS);
    // Sized once: the text can be megabytes, and pidone's memory is what the budget bounds.
    let mut text = String::with_capacity(head.len() + 80 + bytes);
    text.push_str(head);
    let skipped = n.min(log.lines()).saturating_sub(fit);
    if skipped > 0 {
        let _ = writeln!(
            text,
            "pidone: {skipped} older lines skipped (4 MiB at most)"
        );
    }
    log.text(bytes, &mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::super::testing::Rig;
    use super::*;
    use crate::io::ring::Lines;

    #[test]
    fn the_client_reads_the_daemons_answers() {
        let text = "[[services]]\nname = \"db\"\ncommand = [\"/bin/echo\", \"db\"]\n\
                    [[services]]\nname = \"web\"\ncommand = [\"/bin/echo\", \"web\"]\n\
                    depends_on = \"db\"\n";
        let mut rig = Rig::new(text);
        let answer = rig.sup.answer(Request::Services { names: None }, rig.now);
        let list = wire::read_services(&answer.body).expect("a list of services");
        let seen: Vec<(&str, &str, &str)> = (list.iter())
            .map(|s| (s.name.as_str(), s.state.as_str(), s.kind.as_str()))
            .collect();
        assert_eq!(
            seen,
            [("db", "running", "longrun"), ("web", "running", "longrun")]
        );
        assert!(list.iter().all(|s| s.pid.is_some() && s.along.is_none()));

        let answer = rig.sup.answer(Request::Health { live: false }, rig.now);
        let health: wire::Health = wire::read(&answer.body).expect("health");
        assert_eq!(answer.status, 200);
        assert!(health.healthy && health.problems.is_empty(), "{health:?}");

        let restart = Request::Act {
            name: "db".to_string(),
            verb: Verb::Restart,
        };
        let answer = rig.sup.answer(restart, rig.now);
        let db = wire::read_service(&answer.body).expect("a service");
        assert_eq!(
            (db.name.as_str(), db.along),
            ("db", Some(vec!["web".to_string()]))
        );
    }

    #[test]
    fn log_text_gives_the_last_lines_within_the_limit_and_counts_the_skipped() {
        let ring = |lines: &mut dyn Iterator<Item = String>| {
            let (mut batch, mut ring) = (Lines::default(), LineRing::default());
            lines.for_each(|l| batch.push(l.as_bytes()));
            ring.push(&batch, usize::MAX);
            ring
        };
        let log = ring(&mut ["one", "two", "three"].map(String::from).into_iter());
        assert_eq!(log_text("", &log, 2), "two\nthree\n");
        assert_eq!(log_text("HEAD\n", &log, 10), "HEAD\none\ntwo\nthree\n");
        assert_eq!(log_text("", &log, 0), "");

        let long = ring(&mut (0..2000).map(|i| format!("{i:04}{}", "x".repeat(4091))));
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
