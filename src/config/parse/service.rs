//! One `[[services]]` table: its keys ([`SERVICE_KEYS`], and `ready`'s [`READY_KEYS`]), then the
//! rules between its own keys (`type` and `oneshot`, `log` and `log_file`, what a oneshot may not
//! have, delays that must end before `start_timeout`).

use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::checks::{self, DraftCheck};
use super::controls::{self, RawControls};
use super::raw::{RawCheck, RawService};
use super::values::{
    MIN_DURATION, MIN_RESTART_DELAY, MIN_RESTART_RESET, at_least, boolean, count, duration,
    env_table, exit_codes, integer, log_format, long_string, names_with_lines, one_of,
    parse_duration, positive, script, set, set_some, signal, size, string, string_list,
    string_or_list, wait_after, wrong,
};
use super::{Field, Keys, Scope, Sink, walk};
use crate::config::describe::format_duration;
use crate::config::error::ErrorKind;
use crate::config::limits::{self, too_many};
use crate::config::model::{
    Kind, Listen, ListenAddr, LogMode, Overlap, ReadyMode, Restart, Schedule,
};
use crate::core::schedule::Cron;

/// A service while its keys are read: the raw service, and the keys that decide something only
/// together with others.
#[derive(Default)]
pub(super) struct Draft {
    s: RawService,
    kind: Option<Kind>,
    oneshot: Option<bool>,
    checks: Vec<DraftCheck>,
    health_check: Option<RawCheck>,
}

/// Every key a `[[services]]` entry may have. `name` is read before the others.
pub(super) const SERVICE_KEYS: &Keys<Draft> = &[
    ("name", |_, _| Ok(())),
    ("command", command),
    ("args", |d, f| set(&mut d.s.args, string_list(f.v()))),
    ("enabled", |d, f| set(&mut d.s.enabled, boolean(f.v()))),
    ("required", |d, f| set(&mut d.s.required, boolean(f.v()))),
    ("type", |d, f| {
        set_some(&mut d.kind, one_of(f.v(), "type", KINDS, ""))
    }),
    ("oneshot", |d, f| set_some(&mut d.oneshot, boolean(f.v()))),
    ("depends_on", |d, f| {
        let (names, conditions) = super::conditions::depends_on(f)?;
        d.s.depends_when = conditions;
        set(&mut d.s.depends_on, Ok(names))
    }),
    ("after", |d, f| {
        set(
            &mut d.s.after,
            names_with_lines(&f.sink.lines, f.v(), f.line),
        )
    }),
    ("wait_after", |d, f| {
        set(&mut d.s.wait_after, wait_after(&f.sink.lines, f.v()))
    }),
    ("start_delay", |d, f| {
        set(&mut d.s.start_delay, f.delay(MIN_DURATION))
    }),
    ("dependency_wait_timeout", |d, f| {
        set_some(&mut d.s.dependency_wait_timeout, f.delay(MIN_DURATION))
    }),
    ("restart", |d, f| {
        set_some(
            &mut d.s.restart,
            one_of(f.v(), "restart policy", RESTARTS, ""),
        )
    }),
    ("success_exit_codes", |d, f| {
        set_some(&mut d.s.success_exit_codes, exit_codes(f.v()))
    }),
    ("restart_delay", |d, f| {
        set_some(&mut d.s.restart_delay, f.delay(MIN_RESTART_DELAY))
    }),
    ("restart_delay_max", |d, f| {
        let max = duration(f.v()).and_then(|max| at_least(max, f.key, MIN_RESTART_DELAY));
        set_some(&mut d.s.restart_delay_max, max)
    }),
    ("restart_reset", |d, f| {
        let reset = duration(f.v()).and_then(|r| at_least(r, f.key, MIN_RESTART_RESET));
        set_some(&mut d.s.restart_reset, reset)
    }),
    ("max_restarts", |d, f| {
        set(&mut d.s.max_restarts, count(f.v()))
    }),
    ("stop_signal", |d, f| {
        set_some(&mut d.s.stop_signal, signal(f.v()))
    }),
    ("stop_timeout", |d, f| {
        set_some(&mut d.s.stop_timeout, f.delay(MIN_DURATION))
    }),
    ("user", |d, f| set_some(&mut d.s.user, string(f.v()))),
    ("group", |d, f| set_some(&mut d.s.group, string(f.v()))),
    ("workdir", |d, f| set_some(&mut d.s.workdir, string(f.v()))),
    ("env", |d, f| {
        set(&mut d.s.env, env_table(&f.sink.lines, f.v()))
    }),
    ("env_file", |d, f| {
        set_some(&mut d.s.env_file, string(f.v()))
    }),
    ("pre_script", |d, f| {
        set_some(&mut d.s.pre_script, script(f.v()))
    }),
    ("pos_script", post_script),
    ("post_script", post_script),
    #[cfg(feature = "s6")]
    ("finish", |d, f| set_some(&mut d.s.finish, script(f.v()))),
    #[cfg(feature = "s6")]
    ("finish_timeout", |d, f| {
        set_some(&mut d.s.finish_timeout, f.delay(MIN_DURATION))
    }),
    #[cfg(feature = "s6")]
    ("env_dir", |d, f| set_some(&mut d.s.env_dir, string(f.v()))),
    ("log", |d, f| {
        set_some(
            &mut d.s.log,
            one_of(f.v(), "log mode", LOGS, " (or log_file)"),
        )
    }),
    ("log_file", |d, f| {
        set_some(&mut d.s.log_file, string(f.v()))
    }),
    ("log_max_size", |d, f| {
        set_some(&mut d.s.log_max_size, size(f.v()))
    }),
    ("log_keep", |d, f| set_some(&mut d.s.log_keep, count(f.v()))),
    ("log_format", |d, f| {
        set_some(&mut d.s.log_json, log_format(f.v()))
    }),
    ("tty", |d, f| set(&mut d.s.tty, boolean(f.v()))),
    ("log_to", |d, f| {
        let line = f.line;
        set_some(&mut d.s.log_to, string(f.v()).map(|name| (name, line)))
    }),
    ("log_to_stderr", |d, f| {
        set(&mut d.s.log_to_stderr, boolean(f.v()))
    }),
    ("instances", instances),
    ("start_timeout", |d, f| {
        set_some(&mut d.s.start_timeout, positive(f.v(), f.key))
    }),
    ("ready", |d, f| set(&mut d.s.ready, Ok(parse_ready(f)))),
    ("checks", |d, f| {
        set(&mut d.checks, Ok(checks::parse_checks(f)))
    }),
    ("health_check", |d, f| {
        set(&mut d.health_check, Ok(checks::parse_health_check(f)))
    }),
    ("rlimits", control),
    ("umask", control),
    ("no_new_privs", control),
    ("capabilities", control),
    ("oom_score_adj", control),
    ("nice", control),
    ("description", control),
    ("inherit_env", control),
    ("env_allow", control),
    ("secrets", control),
    ("env_from_files", control),
    ("memory_max", control),
    ("memory_high", control),
    ("cpu_max", control),
    ("pids_max", control),
    ("cgroup_optional", control),
    ("schedule", |d, f| {
        set_some(&mut d.s.schedule, schedule(f.v()))
    }),
    ("timezone", |d, f| {
        set_some(&mut d.s.timezone, timezone(f.v()))
    }),
    ("jitter", |d, f| set(&mut d.s.jitter, duration(f.v()))),
    ("overlap", |d, f| {
        set(&mut d.s.overlap, one_of(f.v(), "overlap", OVERLAPS, ""))
    }),
    ("max_runtime", |d, f| {
        set_some(&mut d.s.max_runtime, positive(f.v(), f.key))
    }),
    ("start", |d, f| {
        set(&mut d.s.on_demand, one_of(f.v(), "start", STARTS, ""))
    }),
    ("idle_timeout", |d, f| {
        set_some(&mut d.s.idle_timeout, positive(f.v(), f.key))
    }),
    ("listen", |d, f| set(&mut d.s.listen, listen(f.v(), f.line))),
    ("watchdog", |d, f| {
        let d_ = duration(f.v()).and_then(|w| at_least(w, f.key, MIN_WATCHDOG));
        set_some(&mut d.s.watchdog, d_)
    }),
    ("groups", |d, f| {
        set(&mut d.s.groups, super::groups::groups(f.v()))
    }),
];

const STARTS: &[(&str, bool)] = &[("boot", false), ("on-demand", true)];

/// The most sockets one service may listen on.
const MAX_LISTEN: usize = 32;

/// `listen`: `tcp:HOST:PORT`, `udp:HOST:PORT` (an IP literal, IPv6 in brackets) or
/// `unix:/ABSOLUTE/PATH`.
fn listen(v: &DeValue<'_>, line: usize) -> Result<Vec<Listen>, ErrorKind> {
    let items = string_list(v)?;
    if let Some(kind) = too_many("listen", items.len(), MAX_LISTEN) {
        return Err(kind);
    }
    let one = |text: String| {
        let bad = |why: &str| ErrorKind::BadValue {
            message: format!("bad address {text:?}: {why}"),
        };
        let ip = |a: &str| match a.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Ok(addr),
            Ok(_) => Err(bad("port 0 is out of range")),
            Err(_) => Err(bad("use HOST:PORT with an IP address (IPv6 in brackets)")),
        };
        let addr = match text.split_once(':') {
            Some(("tcp", a)) => ListenAddr::Tcp(ip(a)?),
            Some(("udp", a)) => ListenAddr::Udp(ip(a)?),
            Some(("unix", p)) if p.starts_with('/') && p.len() < 108 => ListenAddr::Unix(p.into()),
            Some(("unix", _)) => return Err(bad("use an absolute path of at most 107 bytes")),
            _ => return Err(bad("use tcp:HOST:PORT, udp:HOST:PORT or unix:/PATH")),
        };
        Ok(Listen { addr, text, line })
    };
    items.into_iter().map(one).collect()
}

/// The shortest `watchdog`: the service must be able to keep up with it.
const MIN_WATCHDOG: Duration = Duration::from_millis(100);

const OVERLAPS: &[(&str, Overlap)] = &[
    ("skip", Overlap::Skip),
    ("queue", Overlap::Queue),
    ("kill", Overlap::Kill),
];

/// `schedule`: five cron fields, a shorthand, or `@every DURATION` (at least a second).
fn schedule(v: &DeValue<'_>) -> Result<(Schedule, String), ErrorKind> {
    let text = string(v)?;
    let bad = |message| ErrorKind::BadValue { message };
    let schedule = match text.trim().strip_prefix("@every") {
        Some(every) => match parse_duration(every) {
            Some(d) if d >= Duration::from_secs(1) => Schedule::Every(d),
            Some(_) => return Err(bad("@every needs at least 1s".into())),
            None => {
                return Err(bad(format!(
                    "@every needs a duration (\"@every 90s\"), not {every:?}"
                )));
            }
        },
        None => Schedule::Cron(Cron::parse(&text).map_err(bad)?),
    };
    Ok((schedule, text))
}

/// `timezone`: a name under the image's zoneinfo (`Europe/Paris`), read at load.
fn timezone(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    let name = string(v)?;
    let inside = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !inside {
        return Err(ErrorKind::BadValue {
            message: format!("{name:?} is not a zone name like \"Europe/Paris\""),
        });
    }
    Ok(name)
}

/// A process-control key (`controls::CONTROL_KEYS`).
fn control(d: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    controls::parse_key(&mut d.s.controls, f)
}

const KINDS: &[(&str, Kind)] = &[("longrun", Kind::Longrun), ("oneshot", Kind::Oneshot)];

const RESTARTS: &[(&str, Restart)] = &[
    ("always", Restart::Always),
    ("on-failure", Restart::OnFailure),
    ("never", Restart::Never),
];

const LOGS: &[(&str, LogMode)] = &[
    ("prefix", LogMode::Prefix),
    ("raw", LogMode::Raw),
    ("null", LogMode::Null),
];

fn command(d: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    let argv = string_or_list(f.v())?;
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err(ErrorKind::BadValue {
            message: "the program must not be empty".into(),
        });
    }
    d.s.command = Some(argv);
    Ok(())
}

/// `post_script`, or go-overlay's spelling `pos_script`: not both.
fn post_script(d: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    if d.s.post_script.is_some() {
        let other = match f.key {
            "pos_script" => "post_script",
            _ => "pos_script",
        };
        return Err(ErrorKind::Conflict {
            other: other.into(),
        });
    }
    set_some(&mut d.s.post_script, script(f.v()))
}

fn instances(d: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    let n = count(f.v())?;
    if n == 0 {
        return Err(ErrorKind::BadValue {
            message: "instances must be at least 1".into(),
        });
    }
    if let Some(kind) = too_many("instances", n as usize, limits::MAX_INSTANCES as usize) {
        return Err(kind);
    }
    d.s.instances = Some(n);
    Ok(())
}

/// Parses one `[[services]]` table. Returns `None` when it has no usable name.
pub(super) fn parse_service(
    sink: &mut Sink<'_>,
    file: usize,
    item: &Spanned<DeValue<'_>>,
) -> Option<RawService> {
    let header = item.span().start;
    let DeValue::Table(table) = item.get_ref() else {
        let kind = wrong("a table", item.get_ref());
        sink.push(header, None, Some("services"), kind);
        return None;
    };
    let mut d = Draft {
        s: RawService {
            file,
            line: sink.lines.line(header),
            enabled: true,
            controls: RawControls {
                file,
                ..RawControls::default()
            },
            ..RawService::default()
        },
        ..Draft::default()
    };
    let label: Option<String> = match table.iter().find(|(k, _)| k.get_ref() == "name") {
        None => {
            sink.push(header, None, Some("name"), ErrorKind::Missing);
            None
        }
        Some((k, v)) => match string(v.get_ref()) {
            Ok(name) => {
                d.s.key_lines
                    .insert("name", sink.lines.line(k.span().start));
                d.s.name = name.clone();
                Some(name)
            }
            Err(kind) => {
                sink.push(k.span().start, None, Some("name"), kind);
                None
            }
        },
    };
    let scope = Scope::new(label.as_deref(), "", false);
    walk(sink, &scope, table, SERVICE_KEYS, &mut d, |d, f| {
        if f.key == "name" {
            return false;
        }
        d.s.key_lines.insert(f.key, f.line);
        if let Some((at, kind)) = long_string(f.value) {
            f.sink.push(at, f.service, Some(f.key), kind);
            return false;
        }
        true
    });
    let s = finish(sink, label.as_deref(), header, d);
    label.map(|_| s)
}

/// The rules between a service's keys, once all are read.
fn finish(sink: &mut Sink<'_>, service: Option<&str>, header: usize, d: Draft) -> RawService {
    let mut s = d.s;
    s.kind = match (d.kind, d.oneshot) {
        (Some(t), Some(o)) if (t == Kind::Oneshot) != o => {
            let kind = ErrorKind::Conflict {
                other: "type".into(),
            };
            sink.push_line(s.line_of("oneshot"), service, Some("oneshot"), kind);
            t
        }
        (Some(t), _) => t,
        (None, Some(true)) => Kind::Oneshot,
        (None, _) => Kind::Longrun,
    };
    // `log = "prefix"` with `log_file` writes both; raw and null leave pidone nothing to write.
    if s.log.as_ref().is_some_and(|l| *l != LogMode::Prefix) && s.log_file.is_some() {
        let kind = ErrorKind::Conflict {
            other: "log".into(),
        };
        sink.push_line(s.line_of("log_file"), service, Some("log_file"), kind);
    }
    // A terminal pidone reads: raw and null leave it nothing to read.
    if s.tty && s.log.as_ref().is_some_and(|l| *l != LogMode::Prefix) {
        let kind = ErrorKind::Conflict {
            other: "log".into(),
        };
        sink.push_line(s.line_of("tty"), service, Some("tty"), kind);
    }
    if s.log_to.is_none()
        && let Some(&line) = s.key_lines.get("log_to_stderr")
    {
        let kind = ErrorKind::BadValue {
            message: "needs log_to".into(),
        };
        sink.push_line(line, service, Some("log_to_stderr"), kind);
    }
    if s.log_file.is_none() {
        for key in ["log_max_size", "log_keep", "log_format"] {
            if let Some(&line) = s.key_lines.get(key) {
                let kind = ErrorKind::BadValue {
                    message: "needs log_file".into(),
                };
                sink.push_line(line, service, Some(key), kind);
            }
        }
    }
    // A command that was written but refused has its own error already.
    if s.command.is_none() && !s.key_lines.contains_key("command") {
        sink.push(header, service, Some("command"), ErrorKind::Missing);
    }
    let ready_delays: Vec<(usize, (Duration, usize))> = d
        .checks
        .iter()
        .filter_map(|c| Some((c.index, c.ready_delay?)))
        .collect();
    s.checks = checks::name_checks(sink, service, d.checks, d.health_check.is_some());
    s.checks.extend(d.health_check);
    if s.kind == Kind::Oneshot {
        for key in ["start_timeout", "ready", "checks", "health_check"] {
            if let Some(&line) = s.key_lines.get(key) {
                sink.push_line(line, service, Some(key), ErrorKind::NotForOneshot { key });
            }
        }
    } else {
        before_start_timeout(sink, service, &s, ready_delays);
    }
    kind_rules(sink, service, &s);
    s
}

/// The keys that fit one kind of service only, or go with another key: `schedule` and
/// `max_runtime` are for a oneshot; `timezone`, `jitter` and `overlap` go with a `schedule`; a
/// timed job is not `required` (a failed run does not end pidone); `watchdog` is for a longrun
/// that speaks sd_notify.
fn kind_rules(sink: &mut Sink<'_>, service: Option<&str>, s: &RawService) {
    let mut bad = |key, message: &str| refuse(sink, service, s, key, message);
    if s.kind != Kind::Oneshot {
        let why = "only a oneshot (type = \"oneshot\") runs on a schedule or has a max_runtime";
        bad("schedule", why);
        bad("max_runtime", why);
    }
    if !s.key_lines.contains_key("schedule") {
        for key in ["timezone", "jitter", "overlap"] {
            bad(key, "applies only with schedule");
        }
    } else {
        let why = "a timed job cannot be required: a failed run does not end pidone";
        bad("required", why);
    }
    if matches!(s.schedule, Some((Schedule::Every(_), _))) {
        bad("timezone", "@every does not depend on a time zone");
    }
    let sd_notify = matches!(s.ready, Some((ReadyMode::SdNotify, _)));
    if s.watchdog.is_none() {
        // Not set, or refused already.
    } else if s.kind == Kind::Longrun && !sd_notify {
        let why = "needs ready = { sd_notify = true } (WATCHDOG=1 comes through it)";
        bad("watchdog", why);
    } else if s.kind == Kind::Oneshot {
        bad("watchdog", "a oneshot has no watchdog (see max_runtime)");
    }
    socket_rules(sink, service, s);
}

/// `listen` is for a longrun without `instances`, its fds clear of the notify fd;
/// `idle_timeout` goes with `start = "on-demand"`, which has no `schedule`.
fn socket_rules(sink: &mut Sink<'_>, service: Option<&str>, s: &RawService) {
    let mut bad = |key, message: &str| refuse(sink, service, s, key, message);
    if s.kind != Kind::Longrun {
        bad(
            "listen",
            "only a longrun listens (its sockets are passed to it as fds 3…)",
        );
    }
    if s.on_demand {
        bad("schedule", "an on-demand service has no schedule");
    } else {
        bad("idle_timeout", "applies only with start = \"on-demand\"");
    }
    if !s.listen.is_empty() {
        let why = "one set of listen sockets cannot go to several instances";
        bad("instances", why);
        let range = 3..3 + s.listen.len() as i32;
        if matches!(s.ready, Some((ReadyMode::NotifyFd(n), _)) if range.contains(&n)) {
            bad(
                "ready",
                "the notify fd collides with the listen sockets (fds 3…)",
            );
        }
    }
}

/// Reports `key` of service `s`, if it was written, as refused for `message`.
fn refuse(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    s: &RawService,
    key: &'static str,
    message: &str,
) {
    if let Some(&line) = s.key_lines.get(key) {
        let kind = ErrorKind::BadValue {
            message: message.into(),
        };
        sink.push_line(line, service, Some(key), kind);
    }
}

/// `ready.after` and ready checks' `initial_delay` count from the spawn, as `start_timeout` does:
/// a delay that reaches a written one would fail every start (there is no default).
fn before_start_timeout(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    s: &RawService,
    ready_delays: Vec<(usize, (Duration, usize))>,
) {
    let too_late = |delay: Duration| {
        let timeout = s.start_timeout?;
        (delay >= timeout).then(|| ErrorKind::BadValue {
            message: format!(
                "{} must be shorter than start_timeout ({})",
                format_duration(delay),
                format_duration(timeout),
            ),
        })
    };
    if let Some((ReadyMode::After(after), line)) = s.ready
        && let Some(kind) = too_late(after)
    {
        sink.push_line(line, service, Some("ready.after"), kind);
    }
    for (index, (delay, at)) in ready_delays {
        if let Some(kind) = too_late(delay) {
            let key = format!("checks[{index}].initial_delay");
            sink.push(at, service, Some(&key), kind);
        }
    }
}

/// The keys of `ready`; exactly one may be given.
pub(super) const READY_KEYS: &Keys<Option<(ReadyMode, usize)>> = &[
    ("notify_fd", |mode, f| {
        let n = integer(f.v())?;
        match i32::try_from(n) {
            Ok(fd @ 3..=1023) => set_some(mode, Ok((ReadyMode::NotifyFd(fd), f.line))),
            _ => Err(ErrorKind::BadValue {
                message: format!(
                    "fd {n} is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)"
                ),
            }),
        }
    }),
    ("sd_notify", |mode, f| {
        let ready = match boolean(f.v())? {
            true => ReadyMode::SdNotify,
            false => ReadyMode::Exec,
        };
        set_some(mode, Ok((ready, f.line)))
    }),
    ("after", |mode, f| {
        let after = positive(f.v(), "after")?;
        set_some(mode, Ok((ReadyMode::After(after), f.line)))
    }),
];

/// `ready = { ... }` or `[services.ready]`: one key, and the line of that key.
fn parse_ready(f: &mut Field<'_, '_, '_>) -> Option<(ReadyMode, usize)> {
    let DeValue::Table(table) = f.v() else {
        let expected = "a table: { notify_fd = N }, { sd_notify = true } or { after = DURATION }";
        let kind = wrong(expected, f.v());
        f.sink
            .push(f.value.span().start, f.service, Some("ready"), kind);
        return None;
    };
    if table.is_empty() {
        let kind = ErrorKind::BadValue {
            message: "empty: set one of notify_fd, sd_notify or after".into(),
        };
        f.sink
            .push(f.value.span().start, f.service, Some("ready"), kind);
        return None;
    }
    let mut chosen: Option<&str> = None;
    let mut mode = None;
    let scope = Scope::new(f.service, "ready", true);
    walk(f.sink, &scope, table, READY_KEYS, &mut mode, |_, key| {
        let Some(first) = chosen else {
            chosen = Some(key.key);
            return true;
        };
        let kind = ErrorKind::Conflict {
            other: format!("ready.{first}"),
        };
        let full = format!("ready.{}", key.key);
        key.sink.push(key.offset, key.service, Some(&full), kind);
        false
    });
    mode
}
