//! From TOML text to raw, typed, per-file service definitions, with the line of every key.
//!
//! Why a hand walk over `toml::de::DeTable` instead of `#[derive(Deserialize)]` with
//! `deny_unknown_fields`: serde stops at the first error, and pidone must report every problem
//! at once. `DeTable::parse` keeps a byte span for every key and value, so each error can name its
//! line; the value conversions below are small and specific to this format (durations that are
//! integers or strings, `depends_on` as a string or an array, go-overlay's spellings). Nothing
//! here looks at other services, other files, the environment or the file system; `mod.rs` does
//! that on the result.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::describe::format_duration;
use super::error::{ConfigError, ErrorKind, Location, suggest};
use super::limits::{self, too_long, too_many};
use super::model::{
    DEFAULT_START_TIMEOUT, Kind, Level, LogMode, OnFailure, Probe, ReadyMode, Restart,
    is_valid_name,
};

/// Every key a `[[services]]` entry may have.
pub const SERVICE_KEYS: &[&str] = &[
    "name",
    "command",
    "args",
    "enabled",
    "required",
    "type",
    "oneshot",
    "depends_on",
    "after",
    "wait_after",
    "start_delay",
    "dependency_wait_timeout",
    "restart",
    "success_exit_codes",
    "restart_delay",
    "restart_delay_max",
    "max_restarts",
    "stop_signal",
    "stop_timeout",
    "user",
    "group",
    "workdir",
    "env",
    "env_file",
    "pre_script",
    "pos_script",
    "post_script",
    "log",
    "log_file",
    "instances",
    "start_timeout",
    "ready",
    "checks",
    "health_check",
];

/// The keys of `ready`; exactly one may be given.
pub const READY_KEYS: &[&str] = &["notify_fd", "sd_notify", "after"];

/// The keys of a `[[services.checks]]` entry.
pub const CHECK_KEYS: &[&str] = &[
    "name",
    "exec",
    "tcp",
    "http",
    "initial_delay",
    "period",
    "timeout",
    "success_threshold",
    "failure_threshold",
    "level",
    "on_failure",
];

/// The keys of go-overlay's `[services.health_check]`.
pub const HEALTH_CHECK_KEYS: &[&str] = &[
    "endpoint",
    "command",
    "interval",
    "retries",
    "timeout",
    "start_delay",
];

/// The shell that runs a check written as one string (`exec = "..."`, go-overlay's `command`).
pub const SHELL: &str = "/bin/sh";

/// The shortest check `period` (go-overlay's `interval`): a fast-failing probe re-runs this
/// often at most, so PID 1 never spins on one.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The shortest check `timeout`: below it a probe could not even connect to localhost in time.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The floor of every other duration that is not 0: pidone's timers are `poll` deadlines in
/// milliseconds, so a shorter one cannot be kept as written and is a unit mistake.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// The floor of `restart_delay` and `restart_delay_max`: they pace a crashing service's
/// restarts, so, like a check's period, they keep PID 1 from forking in a tight loop.
const MIN_RESTART_DELAY: Duration = Duration::from_millis(10);

/// The keys of `[timeouts]`.
pub const TIMEOUT_KEYS: &[&str] = &[
    "post_script_timeout",
    "service_shutdown_timeout",
    "global_shutdown_timeout",
    "dependency_wait_timeout",
];

const TOP_KEYS: &[&str] = &["services", "timeouts"];

/// What one file contributes.
#[derive(Debug, Default)]
pub struct RawFile {
    /// `[timeouts]` entries: key, value, line. Zero values are kept; the merge applies defaults.
    pub timeouts: Vec<(&'static str, Duration, usize)>,
    /// The `[[services]]` entries in file order; entries without a usable name are dropped
    /// (their error is already reported).
    pub services: Vec<RawService>,
}

/// `wait_after` as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RawWaitAfter {
    /// Not set.
    #[default]
    None,
    /// One delay for every dependency (go-overlay's integer form).
    All(Duration),
    /// A delay per dependency name, with the line of each entry.
    Per(Vec<(String, Duration, usize)>),
}

/// One `[[services]]` entry, typed but not yet resolved against anything else.
#[derive(Debug, Clone, Default)]
pub struct RawService {
    /// Index of the file in the list of sources.
    pub file: usize,
    /// Line of the `[[services]]` header.
    pub line: usize,
    /// Line of each key present, for errors found later.
    pub key_lines: BTreeMap<&'static str, usize>,
    pub name: String,
    pub command: Option<Vec<String>>,
    pub args: Vec<String>,
    pub enabled: bool,
    pub required: bool,
    pub kind: Kind,
    pub restart: Option<Restart>,
    pub depends_on: Vec<(String, usize)>,
    pub after: Vec<(String, usize)>,
    pub wait_after: RawWaitAfter,
    pub start_delay: Duration,
    pub dependency_wait_timeout: Option<Duration>,
    pub success_exit_codes: Option<Vec<i32>>,
    pub restart_delay: Option<Duration>,
    pub restart_delay_max: Option<Duration>,
    pub max_restarts: u32,
    pub stop_signal: Option<i32>,
    pub stop_timeout: Option<Duration>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub workdir: Option<String>,
    /// `env` entries: key, value (unexpanded), line.
    pub env: Vec<(String, String, usize)>,
    pub env_file: Option<String>,
    /// The script and whether it was written as a single string (a path) rather than an argv.
    pub pre_script: Option<(Vec<String>, bool)>,
    pub post_script: Option<(Vec<String>, bool)>,
    pub log: Option<LogMode>,
    pub log_file: Option<String>,
    pub instances: Option<u32>,
    pub start_timeout: Option<Duration>,
    /// `ready` with the line of the key chosen inside it (for `ready.after`'s later check).
    pub ready: Option<(ReadyMode, usize)>,
    /// The `[[services.checks]]` entries in file order, then `health_check`'s check, if any.
    /// Entries with errors are left out (their errors are already reported).
    pub checks: Vec<RawCheck>,
}

/// One check as written, named, its strings not yet `${VAR}`-expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCheck {
    /// The final name: as given, or derived from the probe kind.
    pub name: String,
    pub probe: RawProbe,
    /// How errors name the probe's key (`checks[2].tcp`, `health_check.endpoint`), and its line.
    pub probe_key: String,
    pub probe_line: usize,
    pub level: Level,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `None` for go-overlay's `health_check`, whose action follows from the resolved restart
    /// policy and `required`.
    pub on_failure: Option<OnFailure>,
}

/// A probe as written. Addresses are checked here when they contain no `$`, and again after
/// expansion.
#[derive(Debug, Clone, PartialEq)]
pub enum RawProbe {
    /// An argv (`exec = [...]`).
    Exec(Vec<String>),
    /// A shell command (`exec = "..."`, go-overlay's `command`), run as `[SHELL, "-c", text]`.
    Shell(String),
    Tcp(String),
    Http(String),
}

impl RawService {
    /// The line of `key` if it was written, else the header's line.
    pub fn line_of(&self, key: &str) -> usize {
        self.key_lines.get(key).copied().unwrap_or(self.line)
    }
}

/// Maps byte offsets to 1-based line numbers.
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// Collects errors for one file, with the path and line mapping at hand.
struct Sink<'a> {
    path: &'a Path,
    lines: Lines,
    errors: &'a mut Vec<ConfigError>,
}

impl Sink<'_> {
    fn push(&mut self, offset: usize, service: Option<&str>, key: Option<&str>, kind: ErrorKind) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.path.to_owned(),
                line: Some(self.lines.line(offset)),
            },
            service: service.map(str::to_owned),
            key: key.map(str::to_owned),
            kind,
        });
    }
}

/// Parses one file. Returns `None` after reporting syntax errors, so that half-read files do not
/// cause a flood of follow-up errors in other services.
pub fn parse_file(
    file: usize,
    path: &Path,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<RawFile> {
    let mut sink = Sink {
        path,
        lines: Lines::new(text),
        errors,
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let offset = e.span().map_or(0, |s| s.start);
            sink.push(
                offset,
                None,
                None,
                ErrorKind::Syntax {
                    message: e.message().to_owned(),
                },
            );
        }
        return None;
    }
    let mut raw = RawFile::default();
    for (key, value) in doc.get_ref().iter() {
        let offset = key.span().start;
        match key.get_ref().as_ref() {
            "timeouts" => parse_timeouts(&mut sink, value, &mut raw.timeouts),
            "services" => match value.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        if let Some(service) = parse_service(&mut sink, file, item) {
                            raw.services.push(service);
                        }
                    }
                }
                other => sink.push(
                    offset,
                    None,
                    Some("services"),
                    ErrorKind::WrongType {
                        expected: "an array of tables ([[services]])",
                        found: other.type_str(),
                    },
                ),
            },
            other => sink.push(offset, None, None, unknown_key(other, TOP_KEYS)),
        }
    }
    Some(raw)
}

/// A table's entries in the order they were written. `DeTable` iterates its keys sorted by name,
/// so where two keys conflict, walking it as it is would blame whichever sorts first rather than
/// the one written second.
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<Cow<'i, str>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

fn unknown_key(key: &str, known: &[&str]) -> ErrorKind {
    ErrorKind::UnknownKey {
        key: key.to_owned(),
        suggestion: suggest(key, known.iter().copied()),
    }
}

/// An unknown key inside a sub-table, named with its prefix: `ready.notfy_fd`.
fn unknown_sub_key(prefix: &str, key: &str, known: &[&str]) -> ErrorKind {
    ErrorKind::UnknownKey {
        key: format!("{prefix}.{key}"),
        suggestion: suggest(key, known.iter().copied()).map(|s| format!("{prefix}.{s}")),
    }
}

fn parse_timeouts(
    sink: &mut Sink<'_>,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<(&'static str, Duration, usize)>,
) {
    let DeValue::Table(table) = value.get_ref() else {
        sink.push(
            value.span().start,
            None,
            Some("timeouts"),
            ErrorKind::WrongType {
                expected: "a table",
                found: value.get_ref().type_str(),
            },
        );
        return;
    };
    for (key, value) in table.iter() {
        let offset = key.span().start;
        let Some(&known) = TIMEOUT_KEYS.iter().find(|k| **k == key.get_ref().as_ref()) else {
            sink.push(offset, None, None, unknown_key(key.get_ref(), TIMEOUT_KEYS));
            continue;
        };
        match duration(value.get_ref()).and_then(|d| zero_or_at_least(d, known, MIN_DURATION)) {
            Ok(d) => out.push((known, d, sink.lines.line(offset))),
            Err(kind) => sink.push(offset, None, Some(&format!("timeouts.{known}")), kind),
        }
    }
}

/// Parses one `[[services]]` table. Returns `None` when it has no usable name.
fn parse_service(
    sink: &mut Sink<'_>,
    file: usize,
    item: &Spanned<DeValue<'_>>,
) -> Option<RawService> {
    let header = item.span().start;
    let DeValue::Table(table) = item.get_ref() else {
        sink.push(
            header,
            None,
            Some("services"),
            ErrorKind::WrongType {
                expected: "a table",
                found: item.get_ref().type_str(),
            },
        );
        return None;
    };
    let mut s = RawService {
        file,
        line: sink.lines.line(header),
        enabled: true,
        ..RawService::default()
    };
    let name_entry = table.iter().find(|(k, _)| k.get_ref() == "name");
    let label: Option<String> = match name_entry {
        None => {
            sink.push(header, None, Some("name"), ErrorKind::Missing);
            None
        }
        Some((k, v)) => match string(v.get_ref()) {
            Ok(name) => {
                s.key_lines.insert("name", sink.lines.line(k.span().start));
                s.name = name.clone();
                Some(name)
            }
            Err(kind) => {
                sink.push(k.span().start, None, Some("name"), kind);
                None
            }
        },
    };
    let mut oneshot: Option<bool> = None;
    let mut kind: Option<Kind> = None;
    let mut drafts: Vec<DraftCheck> = Vec::new();
    let mut health_check: Option<RawCheck> = None;
    for (key, value) in in_file_order(table) {
        let offset = key.span().start;
        let Some(&k) = SERVICE_KEYS.iter().find(|k| **k == key.get_ref().as_ref()) else {
            sink.push(
                offset,
                label.as_deref(),
                None,
                unknown_key(key.get_ref(), SERVICE_KEYS),
            );
            continue;
        };
        if k == "name" {
            continue;
        }
        let line = sink.lines.line(offset);
        s.key_lines.insert(k, line);
        let service = label.as_deref();
        if let Some((at, kind)) = long_string(value) {
            sink.push(at, service, Some(k), kind);
            continue;
        }
        match k {
            "ready" => {
                s.ready = parse_ready(sink, service, value);
                continue;
            }
            "checks" => {
                drafts = parse_checks(sink, service, value);
                continue;
            }
            "health_check" => {
                health_check = parse_health_check(sink, service, value);
                continue;
            }
            _ => {}
        }
        let v = value.get_ref();
        let result: Result<(), ErrorKind> = (|| {
            match k {
                "command" => {
                    let argv = string_or_list(v)?;
                    if argv.first().is_none_or(|p| p.is_empty()) {
                        return Err(ErrorKind::BadValue {
                            message: "the program must not be empty".into(),
                        });
                    }
                    s.command = Some(argv);
                }
                "args" => s.args = string_list(v)?,
                "enabled" => s.enabled = boolean(v)?,
                "required" => s.required = boolean(v)?,
                "type" => {
                    kind = Some(match string(v)?.as_str() {
                        "longrun" => Kind::Longrun,
                        "oneshot" => Kind::Oneshot,
                        other => {
                            return Err(ErrorKind::BadValue {
                                message: format!(
                                    "unknown type {other:?}: use \"longrun\" or \"oneshot\""
                                ),
                            });
                        }
                    })
                }
                "oneshot" => oneshot = Some(boolean(v)?),
                "depends_on" => s.depends_on = names_with_lines(sink, v, line)?,
                "after" => s.after = names_with_lines(sink, v, line)?,
                "wait_after" => s.wait_after = wait_after(sink, v)?,
                "start_delay" => s.start_delay = zero_or_at_least(duration(v)?, k, MIN_DURATION)?,
                "dependency_wait_timeout" => {
                    s.dependency_wait_timeout =
                        Some(zero_or_at_least(duration(v)?, k, MIN_DURATION)?)
                }
                "restart" => {
                    s.restart = Some(match string(v)?.as_str() {
                        "always" => Restart::Always,
                        "on-failure" => Restart::OnFailure,
                        "never" => Restart::Never,
                        other => {
                            return Err(ErrorKind::BadValue {
                                message: format!(
                                    "unknown restart policy {other:?}: use \"always\", \"on-failure\" or \"never\""
                                ),
                            });
                        }
                    })
                }
                "success_exit_codes" => s.success_exit_codes = Some(exit_codes(v)?),
                "restart_delay" => {
                    s.restart_delay = Some(zero_or_at_least(duration(v)?, k, MIN_RESTART_DELAY)?)
                }
                "restart_delay_max" => {
                    s.restart_delay_max = Some(at_least(duration(v)?, k, MIN_RESTART_DELAY)?)
                }
                "max_restarts" => s.max_restarts = count(v)?,
                "stop_signal" => s.stop_signal = Some(signal(v)?),
                "stop_timeout" => {
                    s.stop_timeout = Some(zero_or_at_least(duration(v)?, k, MIN_DURATION)?)
                }
                "user" => s.user = Some(string(v)?),
                "group" => s.group = Some(string(v)?),
                "workdir" => s.workdir = Some(string(v)?),
                "env" => s.env = env_table(sink, v)?,
                "env_file" => s.env_file = Some(string(v)?),
                "pre_script" => s.pre_script = Some(script(v)?),
                "pos_script" | "post_script" => {
                    if s.post_script.is_some() {
                        let other = if k == "pos_script" {
                            "post_script"
                        } else {
                            "pos_script"
                        };
                        return Err(ErrorKind::Conflict {
                            other: other.into(),
                        });
                    }
                    s.post_script = Some(script(v)?);
                }
                "log" => {
                    s.log = Some(match string(v)?.as_str() {
                        "prefix" => LogMode::Prefix,
                        "raw" => LogMode::Raw,
                        "null" => LogMode::Null,
                        other => {
                            return Err(ErrorKind::BadValue {
                                message: format!(
                                    "unknown log mode {other:?}: use \"prefix\", \"raw\" or \"null\" (or log_file)"
                                ),
                            });
                        }
                    })
                }
                "log_file" => s.log_file = Some(string(v)?),
                "instances" => {
                    let n = count(v)?;
                    if n == 0 {
                        return Err(ErrorKind::BadValue {
                            message: "instances must be at least 1".into(),
                        });
                    }
                    if let Some(kind) =
                        too_many("instances", n as usize, limits::MAX_INSTANCES as usize)
                    {
                        return Err(kind);
                    }
                    s.instances = Some(n);
                }
                "start_timeout" => s.start_timeout = Some(positive(v, k)?),
                _ => {}
            }
            Ok(())
        })();
        if let Err(kind) = result {
            sink.push(offset, label.as_deref(), Some(k), kind);
        }
    }
    s.kind = match (kind, oneshot) {
        (Some(t), Some(o)) if (t == Kind::Oneshot) != o => {
            sink.push_line(
                s.line_of("oneshot"),
                label.as_deref(),
                Some("oneshot"),
                ErrorKind::Conflict {
                    other: "type".into(),
                },
            );
            t
        }
        (Some(t), _) => t,
        (None, Some(true)) => Kind::Oneshot,
        (None, _) => Kind::Longrun,
    };
    if s.log.is_some() && s.log_file.is_some() {
        sink.push_line(
            s.line_of("log_file"),
            label.as_deref(),
            Some("log_file"),
            ErrorKind::Conflict {
                other: "log".into(),
            },
        );
    }
    // A command that was written but refused has its own error already.
    if s.command.is_none() && !s.key_lines.contains_key("command") {
        sink.push(
            header,
            label.as_deref(),
            Some("command"),
            ErrorKind::Missing,
        );
    }
    let ready_delays: Vec<(usize, (Duration, usize))> = drafts
        .iter()
        .filter_map(|d| Some((d.index, d.ready_delay?)))
        .collect();
    s.checks = name_checks(sink, label.as_deref(), drafts, health_check.is_some());
    s.checks.extend(health_check);
    if s.kind == Kind::Oneshot {
        for key in ["start_timeout", "ready", "checks", "health_check"] {
            if let Some(&line) = s.key_lines.get(key) {
                sink.push_line(
                    line,
                    label.as_deref(),
                    Some(key),
                    ErrorKind::NotForOneshot { key },
                );
            }
        }
    } else {
        // Both count from the spawn: a delay that reaches start_timeout fails every start.
        let too_late = |delay: Duration| {
            let timeout = s.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT);
            let default = match s.start_timeout {
                None => ", the default",
                Some(_) => "",
            };
            (delay >= timeout).then(|| ErrorKind::BadValue {
                message: format!(
                    "{} must be shorter than start_timeout ({}{default})",
                    format_duration(delay),
                    format_duration(timeout),
                ),
            })
        };
        if let Some((ReadyMode::After(after), line)) = s.ready
            && let Some(kind) = too_late(after)
        {
            sink.push_line(line, label.as_deref(), Some("ready.after"), kind);
        }
        for (index, (delay, at)) in ready_delays {
            if let Some(kind) = too_late(delay) {
                let key = format!("checks[{index}].initial_delay");
                sink.push(at, label.as_deref(), Some(&key), kind);
            }
        }
    }
    label.map(|_| s)
}

/// `ready = { ... }` or `[services.ready]`: one key, and the line of that key.
fn parse_ready(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    value: &Spanned<DeValue<'_>>,
) -> Option<(ReadyMode, usize)> {
    let DeValue::Table(table) = value.get_ref() else {
        let expected = "a table: { notify_fd = N }, { sd_notify = true } or { after = DURATION }";
        let kind = wrong(expected, value.get_ref());
        sink.push(value.span().start, service, Some("ready"), kind);
        return None;
    };
    if table.is_empty() {
        let kind = ErrorKind::BadValue {
            message: "empty: set one of notify_fd, sd_notify or after".into(),
        };
        sink.push(value.span().start, service, Some("ready"), kind);
        return None;
    }
    let mut chosen: Option<&str> = None;
    let mut mode = None;
    for (key, value) in in_file_order(table) {
        let offset = key.span().start;
        let Some(&k) = READY_KEYS.iter().find(|k| **k == key.get_ref().as_ref()) else {
            let kind = unknown_sub_key("ready", key.get_ref(), READY_KEYS);
            sink.push(offset, service, None, kind);
            continue;
        };
        let full = format!("ready.{k}");
        if let Some(first) = chosen {
            let kind = ErrorKind::Conflict {
                other: format!("ready.{first}"),
            };
            sink.push(offset, service, Some(&full), kind);
            continue;
        }
        chosen = Some(k);
        let v = value.get_ref();
        let result = match k {
            "notify_fd" => integer(v).and_then(|n| match i32::try_from(n) {
                Ok(fd @ 3..=1023) => Ok(ReadyMode::NotifyFd(fd)),
                _ => Err(ErrorKind::BadValue {
                    message: format!(
                        "fd {n} is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)"
                    ),
                }),
            }),
            "sd_notify" => boolean(v).map(|on| {
                if on {
                    ReadyMode::SdNotify
                } else {
                    ReadyMode::Exec
                }
            }),
            _ => positive(v, "after").map(ReadyMode::After),
        };
        match result {
            Ok(m) => mode = Some((m, sink.lines.line(offset))),
            Err(kind) => sink.push(offset, service, Some(&full), kind),
        }
    }
    mode
}

/// A check before it has a name: the name written (with its offset), if any, and its index.
struct DraftCheck {
    /// 1-based position among the service's checks.
    index: usize,
    /// Where its table starts.
    offset: usize,
    name: Option<(String, usize)>,
    /// `None` without a probe.
    check: Option<RawCheck>,
    /// False when one of its keys had an error: it takes part in naming, nothing else.
    valid: bool,
    /// For a ready-level check with `initial_delay` written: the delay and the key's offset,
    /// checked against `start_timeout` once the whole service is read.
    ready_delay: Option<(Duration, usize)>,
}

/// `[[services.checks]]`: an array of tables.
fn parse_checks(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    value: &Spanned<DeValue<'_>>,
) -> Vec<DraftCheck> {
    let DeValue::Array(items) = value.get_ref() else {
        let kind = wrong("an array of tables ([[services.checks]])", value.get_ref());
        sink.push(value.span().start, service, Some("checks"), kind);
        return Vec::new();
    };
    if let Some(kind) = too_many("checks", items.len(), limits::MAX_CHECKS) {
        sink.push(value.span().start, service, Some("checks"), kind);
        return Vec::new();
    }
    let mut drafts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        let prefix = format!("checks[{index}]");
        let DeValue::Table(table) = item.get_ref() else {
            let kind = wrong("a table", item.get_ref());
            sink.push(item.span().start, service, Some(&prefix), kind);
            continue;
        };
        drafts.push(parse_check(sink, service, index, item.span().start, table));
    }
    drafts
}

/// One `[[services.checks]]` table.
fn parse_check(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    index: usize,
    offset: usize,
    table: &DeTable<'_>,
) -> DraftCheck {
    let prefix = format!("checks[{index}]");
    let errors_before = sink.errors.len();
    let mut name = None;
    let mut probe: Option<(&str, RawProbe, usize)> = None;
    let mut first_probe: Option<&str> = None;
    let mut on_failure: Option<(OnFailure, usize)> = None;
    let mut initial_delay_at: Option<usize> = None;
    // The probe fields are set at the end, once the probe is known.
    let mut check = RawCheck {
        name: String::new(),
        probe: RawProbe::Exec(Vec::new()),
        probe_key: String::new(),
        probe_line: 0,
        level: Level::Alive,
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        success_threshold: 1,
        failure_threshold: 3,
        on_failure: None,
    };
    for (key, value) in in_file_order(table) {
        let key_offset = key.span().start;
        let Some(&k) = CHECK_KEYS.iter().find(|k| **k == key.get_ref().as_ref()) else {
            let kind = unknown_sub_key(&prefix, key.get_ref(), CHECK_KEYS);
            sink.push(key_offset, service, None, kind);
            continue;
        };
        let v = value.get_ref();
        let result: Result<(), ErrorKind> = (|| {
            match k {
                "name" => {
                    let text = string(v)?;
                    if let Some(kind) = too_long("name", text.len(), limits::MAX_NAME_LEN) {
                        return Err(kind);
                    }
                    if !is_valid_name(&text) {
                        return Err(ErrorKind::BadValue {
                            message: format!(
                                "invalid check name {text:?}: use only letters, digits, '_', '.' and '-'"
                            ),
                        });
                    }
                    name = Some((text, key_offset));
                }
                "exec" | "tcp" | "http" => {
                    if let Some(first) = first_probe {
                        return Err(ErrorKind::Conflict {
                            other: format!("{prefix}.{first}"),
                        });
                    }
                    first_probe = Some(k);
                    let raw = match k {
                        "exec" => exec_probe(v)?,
                        "tcp" => RawProbe::Tcp(address(v, tcp_probe)?),
                        _ => RawProbe::Http(address(v, http_probe)?),
                    };
                    probe = Some((k, raw, key_offset));
                }
                "initial_delay" => {
                    check.initial_delay = zero_or_at_least(duration(v)?, k, MIN_DURATION)?;
                    initial_delay_at = Some(key_offset);
                }
                "period" => check.period = at_least(duration(v)?, "period", MIN_PERIOD)?,
                "timeout" => check.timeout = at_least(duration(v)?, "timeout", MIN_TIMEOUT)?,
                "success_threshold" => check.success_threshold = threshold(v, k)?,
                "failure_threshold" => check.failure_threshold = threshold(v, k)?,
                "level" => {
                    check.level = match string(v)?.as_str() {
                        "ready" => Level::Ready,
                        "alive" => Level::Alive,
                        other => {
                            return Err(ErrorKind::BadValue {
                                message: format!(
                                    "unknown level {other:?}: use \"ready\" or \"alive\""
                                ),
                            });
                        }
                    }
                }
                _ => {
                    let action = match string(v)?.as_str() {
                        "restart" => OnFailure::Restart,
                        "stop" => OnFailure::Stop,
                        "shutdown" => OnFailure::Shutdown,
                        "ignore" => OnFailure::Ignore,
                        other => {
                            return Err(ErrorKind::BadValue {
                                message: format!(
                                    "unknown on_failure {other:?}: use \"restart\", \"stop\", \"shutdown\" or \"ignore\""
                                ),
                            });
                        }
                    };
                    on_failure = Some((action, key_offset));
                }
            }
            Ok(())
        })();
        if let Err(kind) = result {
            sink.push(key_offset, service, Some(&format!("{prefix}.{k}")), kind);
        }
    }
    if let (Level::Ready, Some((_, at))) = (check.level, on_failure) {
        let kind = ErrorKind::BadValue {
            message: "a ready check only gates readiness and its failures never act (start_timeout does): remove on_failure, or use level = \"alive\"".into(),
        };
        sink.push(at, service, Some(&format!("{prefix}.on_failure")), kind);
    }
    let ready_delay = match (check.level, initial_delay_at) {
        (Level::Ready, Some(at)) => Some((check.initial_delay, at)),
        _ => None,
    };
    let check = match probe {
        Some((kind, raw, at)) => Some(RawCheck {
            probe: raw,
            probe_key: format!("{prefix}.{kind}"),
            probe_line: sink.lines.line(at),
            on_failure: Some(on_failure.map_or(OnFailure::Restart, |(a, _)| a)),
            ..check
        }),
        None => {
            if sink.errors.len() == errors_before {
                let kind = ErrorKind::BadValue {
                    message: "no probe: set one of exec, tcp or http".into(),
                };
                sink.push(offset, service, Some(&prefix), kind);
            }
            None
        }
    };
    DraftCheck {
        index,
        offset,
        name,
        check,
        valid: sink.errors.len() == errors_before,
        ready_delay,
    }
}

/// Gives every check its name and reports duplicates. Explicit names are taken first; a check
/// without one is called after its probe kind, or `kind-N` (N its position) when that is taken.
fn name_checks(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    drafts: Vec<DraftCheck>,
    has_health_check: bool,
) -> Vec<RawCheck> {
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    if has_health_check {
        taken.insert("health_check".into(), "health_check".into());
    }
    let mut ok = vec![true; drafts.len()];
    for (i, d) in drafts.iter().enumerate() {
        let Some((name, offset)) = &d.name else {
            continue;
        };
        let here = format!("checks[{}]", d.index);
        if let Some(first) = taken.get(name) {
            let kind = ErrorKind::BadValue {
                message: format!("duplicate check name {name:?} (also used by {first})"),
            };
            sink.push(*offset, service, Some(&format!("{here}.name")), kind);
            ok[i] = false;
        } else {
            taken.insert(name.clone(), here);
        }
    }
    let mut checks = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.into_iter().enumerate() {
        let here = format!("checks[{}]", d.index);
        let Some(mut check) = d.check else {
            continue;
        };
        let name = match d.name {
            Some((name, _)) => name,
            None => {
                let kind = match &check.probe {
                    RawProbe::Exec(_) | RawProbe::Shell(_) => "exec",
                    RawProbe::Tcp(_) => "tcp",
                    RawProbe::Http(_) => "http",
                };
                let numbered = format!("{kind}-{}", d.index);
                let name = [kind.to_owned(), numbered]
                    .into_iter()
                    .find(|n| !taken.contains_key(n));
                let Some(name) = name else {
                    let message = format!(
                        "its default name {kind:?} and {kind}-{} are both taken: give it a name",
                        d.index
                    );
                    let kind = ErrorKind::BadValue { message };
                    sink.push(d.offset, service, Some(&here), kind);
                    continue;
                };
                taken.insert(name.clone(), here);
                name
            }
        };
        if d.valid && ok[i] {
            check.name = name;
            checks.push(check);
        }
    }
    checks
}

/// go-overlay's `[services.health_check]`, as one alive-level check named `health_check`:
/// `endpoint` (an HTTP URL) wins over `command` (a shell command); with neither there is no
/// check, as go-overlay treats such a service as always healthy. A 0 means the default.
fn parse_health_check(
    sink: &mut Sink<'_>,
    service: Option<&str>,
    value: &Spanned<DeValue<'_>>,
) -> Option<RawCheck> {
    let DeValue::Table(table) = value.get_ref() else {
        let kind = wrong("a table ([services.health_check])", value.get_ref());
        sink.push(value.span().start, service, Some("health_check"), kind);
        return None;
    };
    let errors_before = sink.errors.len();
    let mut endpoint: Option<(String, usize)> = None;
    let mut command: Option<(String, usize)> = None;
    let mut check = RawCheck {
        name: "health_check".into(),
        probe: RawProbe::Exec(Vec::new()),
        probe_key: String::new(),
        probe_line: 0,
        level: Level::Alive,
        initial_delay: Duration::from_secs(10),
        period: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        success_threshold: 1,
        failure_threshold: 3,
        on_failure: None,
    };
    for (key, value) in table.iter() {
        let offset = key.span().start;
        let Some(&k) = HEALTH_CHECK_KEYS
            .iter()
            .find(|k| **k == key.get_ref().as_ref())
        else {
            let kind = unknown_sub_key("health_check", key.get_ref(), HEALTH_CHECK_KEYS);
            sink.push(offset, service, None, kind);
            continue;
        };
        let v = value.get_ref();
        let line = sink.lines.line(offset);
        // 0 keeps the default, as in go-overlay; anything else must reach the minimum.
        let nonzero = |d: Duration, min: Duration, slot: &mut Duration| {
            if !d.is_zero() {
                *slot = at_least(d, k, min)?;
            }
            Ok::<(), ErrorKind>(())
        };
        let result: Result<(), ErrorKind> = (|| {
            match k {
                "endpoint" => {
                    let url = string(v)?;
                    if !url.is_empty() {
                        endpoint = Some((address(v, http_probe)?, line));
                    }
                }
                "command" => {
                    let text = string(v)?;
                    if !text.is_empty() {
                        command = Some((text, line));
                    }
                }
                "interval" => nonzero(duration(v)?, MIN_PERIOD, &mut check.period)?,
                "timeout" => nonzero(duration(v)?, MIN_TIMEOUT, &mut check.timeout)?,
                "start_delay" => nonzero(duration(v)?, MIN_DURATION, &mut check.initial_delay)?,
                _ => {
                    let n = count(v)?;
                    if n > 0 {
                        check.failure_threshold = n;
                    }
                }
            }
            Ok(())
        })();
        if let Err(kind) = result {
            sink.push(offset, service, Some(&format!("health_check.{k}")), kind);
        }
    }
    if sink.errors.len() != errors_before {
        return None;
    }
    let (probe, key, line) = match (endpoint, command) {
        (Some((url, line)), _) => (RawProbe::Http(url), "endpoint", line),
        (None, Some((text, line))) => (RawProbe::Shell(text), "command", line),
        (None, None) => return None,
    };
    check.probe = probe;
    check.probe_key = format!("health_check.{key}");
    check.probe_line = line;
    Some(check)
}

/// `exec`: a string runs through the shell, an array is an argv.
fn exec_probe(v: &DeValue<'_>) -> Result<RawProbe, ErrorKind> {
    let argv = string_or_list(v)?;
    let probe = match v {
        DeValue::String(_) => RawProbe::Shell(argv.into_iter().next().unwrap_or_default()),
        _ => RawProbe::Exec(argv),
    };
    empty_exec(&probe)?;
    Ok(probe)
}

/// Refuses an exec probe with nothing to run: an argv whose program is empty, or a shell command
/// that is only blanks (`sh -c ""` succeeds without doing anything). `mod.rs` applies the same
/// rules again after `${VAR}` expansion, with [`empty_after`].
fn empty_exec(probe: &RawProbe) -> Result<(), ErrorKind> {
    let what = match probe {
        RawProbe::Exec(argv) if argv.first().is_none_or(|p| p.is_empty()) => "program",
        RawProbe::Shell(text) if text.trim().is_empty() => "command",
        _ => return Ok(()),
    };
    Err(ErrorKind::BadValue {
        message: format!("the {what} must not be empty"),
    })
}

/// A program, script or shell command that `${VAR}` expansion left empty (or blank): `written`
/// is the text as written, `expanded` what it became.
pub fn empty_after(what: &str, written: &str, expanded: &str) -> ErrorKind {
    ErrorKind::BadValue {
        message: format!("the {what} must not be empty: {written:?} expands to {expanded:?}"),
    }
}

/// A `tcp` or `http` address: a string, checked now unless `${VAR}` expansion may change it.
fn address(
    v: &DeValue<'_>,
    check: fn(&str) -> Result<Probe, ErrorKind>,
) -> Result<String, ErrorKind> {
    let text = string(v)?;
    if !text.contains('$') {
        check(&text)?;
    }
    Ok(text)
}

/// Parses a `tcp` address: `host:port`, an IPv6 address in brackets (`[::1]:5432`).
pub fn tcp_probe(text: &str) -> Result<Probe, ErrorKind> {
    let (host, port) = host_port(text, None).map_err(|why| ErrorKind::BadValue {
        message: format!("bad address {text:?}: {why}"),
    })?;
    Ok(Probe::Tcp { host, port })
}

/// Parses an `http` URL: `http://host[:port][/path][?query]`; port 80 and path `/` by default.
/// A fragment is dropped (it is never sent).
pub fn http_probe(url: &str) -> Result<Probe, ErrorKind> {
    let bad = |why: &str| ErrorKind::BadValue {
        message: format!("bad URL {url:?}: {why}"),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected http://HOST[:PORT][/PATH]"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(ErrorKind::BadValue {
                message: "https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS".into(),
            });
        }
        _ => return Err(bad("only http:// is supported")),
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad("user info (user@host) is not supported"));
    }
    let (host, port) = host_port(authority, Some(80)).map_err(|why| bad(&why))?;
    if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "the path must not contain spaces or control characters (percent-encode them)",
        ));
    }
    // The path goes into the request line as written, so it must already be valid there.
    if !tail.is_ascii() {
        return Err(bad(
            "the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
        ));
    }
    if let Some(escape) = bad_percent_escape(tail) {
        return Err(bad(&format!(
            "bad percent escape {escape:?} in the path: '%' must be followed by two hex digits (write %25 for a '%')"
        )));
    }
    let path = match tail.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_owned(),
    };
    Ok(Probe::Http { host, port, path })
}

/// The first `%` in `text` not followed by two hex digits, with what follows it (up to two
/// characters), if any.
fn bad_percent_escape(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let at = (0..bytes.len()).find(|&i| {
        bytes[i] == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })?;
    Some(text.get(at..(at + 3).min(text.len())).unwrap_or("%"))
}

/// Splits `host:port` or `[v6]:port`; the port may be left out when there is a default. The
/// host is returned without brackets. Names are not looked up here.
fn host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err("unclosed '[' in the host".into());
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
        (v6, port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("an IPv6 address needs brackets, like [::1]:8080".into());
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let is_name = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !is_name {
            return Err(format!("bad host {host:?}"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match (port, default_port) {
        (Some(""), _) => return Err("the port is empty".into()),
        (Some(p), _) if !p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("bad port {p:?}"));
        }
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port {p} is out of range (1 to 65535)")),
        },
        (None, Some(d)) => d,
        (None, None) => return Err("expected HOST:PORT (an IPv6 address as [::1]:PORT)".into()),
    };
    Ok((host.to_owned(), port))
}

impl Sink<'_> {
    /// Like `push`, for errors found after the walk, when only the line is known.
    fn push_line(
        &mut self,
        line: usize,
        service: Option<&str>,
        key: Option<&str>,
        kind: ErrorKind,
    ) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.path.to_owned(),
                line: Some(line),
            },
            service: service.map(str::to_owned),
            key: key.map(str::to_owned),
            kind,
        });
    }
}

fn wrong(expected: &'static str, v: &DeValue<'_>) -> ErrorKind {
    ErrorKind::WrongType {
        expected,
        found: v.type_str(),
    }
}

/// Every string of the config ends up as a program argument, a path, a name or an environment
/// value, none of which can hold a NUL byte: `execve` and the path system calls would refuse it
/// at every spawn, so it is refused here. `item` is the 1-based position in an array.
fn no_nul(text: &str, item: Option<usize>) -> Result<(), ErrorKind> {
    if !text.contains('\0') {
        return Ok(());
    }
    let what = match item {
        Some(i) => format!("item {i} contains"),
        None => "contains".to_owned(),
    };
    Err(ErrorKind::BadValue {
        message: format!(
            "{what} a NUL byte (\\u0000), which no program argument, path or name can hold"
        ),
    })
}

/// The first string (value or key) in `v` longer than [`limits::MAX_VALUE_LEN`]: where it
/// starts, and the error.
fn long_string(v: &Spanned<DeValue<'_>>) -> Option<(usize, ErrorKind)> {
    let check =
        |s: &str, at: usize| Some(at).zip(too_long("value", s.len(), limits::MAX_VALUE_LEN));
    match v.get_ref() {
        DeValue::String(s) => check(s, v.span().start),
        DeValue::Array(items) => items.iter().find_map(long_string),
        DeValue::Table(table) => table
            .iter()
            .find_map(|(k, v)| check(k.get_ref(), k.span().start).or_else(|| long_string(v))),
        _ => None,
    }
}

fn string(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    match v {
        DeValue::String(s) => {
            no_nul(s, None)?;
            Ok(s.to_string())
        }
        other => Err(wrong("a string", other)),
    }
}

fn boolean(v: &DeValue<'_>) -> Result<bool, ErrorKind> {
    v.as_bool().ok_or_else(|| wrong("true or false", v))
}

fn integer(v: &DeValue<'_>) -> Result<i64, ErrorKind> {
    match v {
        DeValue::Integer(i) => {
            i64::from_str_radix(i.as_str(), i.radix()).map_err(|_| ErrorKind::BadValue {
                message: format!("integer {} is out of range", i.as_str()),
            })
        }
        other => Err(wrong("an integer", other)),
    }
}

/// A duration longer than zero; `key` names it in the message.
fn positive(v: &DeValue<'_>, key: &str) -> Result<Duration, ErrorKind> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be longer than 0"),
        });
    }
    Ok(d)
}

/// `d`, if it is at least `min`; `key` names it in the message.
fn at_least(d: Duration, key: &str, min: Duration) -> Result<Duration, ErrorKind> {
    if d < min {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be at least {}", format_duration(min)),
        });
    }
    Ok(d)
}

/// `d`, if it is 0 (none, or the default) or at least `min`; `key` names it in the message.
fn zero_or_at_least(d: Duration, key: &str, min: Duration) -> Result<Duration, ErrorKind> {
    if d.is_zero() || d >= min {
        return Ok(d);
    }
    Err(ErrorKind::BadValue {
        message: format!("{key} must be 0 or at least {}", format_duration(min)),
    })
}

/// A count of at least 1; `key` names it in the message.
fn threshold(v: &DeValue<'_>, key: &str) -> Result<u32, ErrorKind> {
    let n = count(v)?;
    if n == 0 {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be at least 1"),
        });
    }
    Ok(n)
}

/// A non-negative integer that fits in `u32`.
fn count(v: &DeValue<'_>) -> Result<u32, ErrorKind> {
    let n = integer(v)?;
    u32::try_from(n).map_err(|_| ErrorKind::BadValue {
        message: format!("{n} is not a count (expected 0 to {})", u32::MAX),
    })
}

fn string_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    let DeValue::Array(items) = v else {
        return Err(wrong("an array of strings", v));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.get_ref() {
            DeValue::String(s) => no_nul(s, Some(i + 1)).map(|()| s.to_string()),
            _ => Err(wrong("an array of strings", v)),
        })
        .collect()
}

fn string_or_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    match v {
        DeValue::String(s) => no_nul(s, None).map(|()| vec![s.to_string()]),
        DeValue::Array(_) => string_list(v),
        other => Err(wrong("a string or an array of strings", other)),
    }
}

/// `depends_on` / `after`: a name or an array of names, each with its line.
fn names_with_lines(
    sink: &Sink<'_>,
    v: &DeValue<'_>,
    key_line: usize,
) -> Result<Vec<(String, usize)>, ErrorKind> {
    let expected = "a service name or an array of service names";
    match v {
        DeValue::String(s) => Ok(vec![(s.to_string(), key_line)]),
        DeValue::Array(items) => {
            if let Some(kind) = too_many("dependencies", items.len(), limits::MAX_DEPENDENCIES) {
                return Err(kind);
            }
            items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok((s.to_string(), sink.lines.line(item.span().start))),
                    _ => Err(wrong(expected, v)),
                })
                .collect()
        }
        other => Err(wrong(expected, other)),
    }
}

fn wait_after(sink: &Sink<'_>, v: &DeValue<'_>) -> Result<RawWaitAfter, ErrorKind> {
    let wait = |v: &DeValue<'_>| zero_or_at_least(duration(v)?, "wait_after", MIN_DURATION);
    match v {
        DeValue::Table(table) => {
            if let Some(kind) = too_many("dependencies", table.len(), limits::MAX_DEPENDENCIES) {
                return Err(kind);
            }
            let mut per = Vec::new();
            for (key, value) in table.iter() {
                per.push((
                    key.get_ref().to_string(),
                    wait(value.get_ref())?,
                    sink.lines.line(key.span().start),
                ));
            }
            Ok(RawWaitAfter::Per(per))
        }
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::String(_) => {
            Ok(RawWaitAfter::All(wait(v)?))
        }
        other => Err(wrong(
            "a duration or a table of dependency = duration",
            other,
        )),
    }
}

/// `env = { KEY = "value" }`. Numbers and booleans are accepted and written out as TOML shows
/// them, since `PORT = 8080` is what people type.
fn env_table(sink: &Sink<'_>, v: &DeValue<'_>) -> Result<Vec<(String, String, usize)>, ErrorKind> {
    let DeValue::Table(table) = v else {
        return Err(wrong("a table of NAME = \"value\"", v));
    };
    if let Some(kind) = too_many("variables", table.len(), limits::MAX_ENV_VARS) {
        return Err(kind);
    }
    let mut out = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !crate::config::envfile::is_valid_key(&name) {
            return Err(ErrorKind::BadValue {
                message: format!("invalid variable name {name:?}"),
            });
        }
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => integer(value.get_ref())
                .map(|n| n.to_string())
                .unwrap_or_else(|_| i.as_str().to_owned()),
            DeValue::Float(f) => f.as_str().to_owned(),
            DeValue::Boolean(b) => b.to_string(),
            other => {
                return Err(ErrorKind::BadValue {
                    message: format!(
                        "value of {name} must be a string, number or boolean, found {}",
                        other.type_str()
                    ),
                });
            }
        };
        if text.contains('\0') {
            return Err(ErrorKind::BadValue {
                message: format!("value of {name} contains a NUL byte"),
            });
        }
        out.push((name, text, sink.lines.line(key.span().start)));
    }
    Ok(out)
}

/// A script: a string is one path, an array is an argv. The flag says which form was used.
fn script(v: &DeValue<'_>) -> Result<(Vec<String>, bool), ErrorKind> {
    let argv = string_or_list(v)?;
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err(ErrorKind::BadValue {
            message: "the script must not be empty".into(),
        });
    }
    Ok((argv, matches!(v, DeValue::String(_))))
}

fn exit_codes(v: &DeValue<'_>) -> Result<Vec<i32>, ErrorKind> {
    let DeValue::Array(items) = v else {
        return Err(wrong("an array of exit codes", v));
    };
    items
        .iter()
        .map(|item| {
            let n = integer(item.get_ref())?;
            match u8::try_from(n) {
                Ok(code) => Ok(i32::from(code)),
                Err(_) => Err(ErrorKind::BadValue {
                    message: format!("exit code {n} is out of range (0 to 255)"),
                }),
            }
        })
        .collect()
}

/// A duration: integer or float seconds, or a string (see [`parse_duration`]).
pub fn duration(v: &DeValue<'_>) -> Result<Duration, ErrorKind> {
    match v {
        DeValue::Integer(_) => {
            let n = integer(v)?;
            u64::try_from(n)
                .map(Duration::from_secs)
                .map_err(|_| ErrorKind::BadDuration {
                    value: n.to_string(),
                })
        }
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| ErrorKind::BadDuration {
                value: f.as_str().to_owned(),
            }),
        DeValue::String(s) => parse_duration(s).ok_or_else(|| ErrorKind::BadDuration {
            value: s.to_string(),
        }),
        other => Err(wrong(
            "a duration (seconds, or a string like \"10s\")",
            other,
        )),
    }
}

/// Parses `"500ms"`, `"10s"`, `"2m"`, `"1h"`, and sums like `"1m30s"`. A bare `"0"` is zero;
/// any other number needs a unit, since `"10"` could mean seconds or milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (part, tail) = if let Some(t) = rest.strip_prefix("ms") {
            (Duration::from_millis(n), t)
        } else if let Some(t) = rest.strip_prefix('s') {
            (Duration::from_secs(n), t)
        } else if let Some(t) = rest.strip_prefix('m') {
            (Duration::from_secs(n.checked_mul(60)?), t)
        } else if let Some(t) = rest.strip_prefix('h') {
            (Duration::from_secs(n.checked_mul(3600)?), t)
        } else {
            return None;
        };
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}

/// Parses a signal: `"TERM"`, `"SIGTERM"`, `"sigterm"`, `"RTMIN+2"` or `"15"` (the same rules as
/// everywhere else in pidone: [`crate::os::signals::parse`]).
pub fn parse_signal(text: &str) -> Option<i32> {
    crate::os::signals::parse(text)
}

fn signal_number(n: i64) -> Option<i32> {
    i32::try_from(n)
        .ok()
        .and_then(|n| crate::os::signals::parse(&n.to_string()))
}

fn signal(v: &DeValue<'_>) -> Result<i32, ErrorKind> {
    let parsed = match v {
        DeValue::Integer(_) => signal_number(integer(v)?),
        DeValue::String(s) => parse_signal(s),
        other => return Err(wrong("a signal name or number", other)),
    };
    parsed.ok_or_else(|| ErrorKind::BadValue {
        message:
            "unknown signal: use a name like \"TERM\" or \"SIGQUIT\", or a number from 1 to 64"
                .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_maps_offsets() {
        let l = Lines::new("a\nbb\n\nc");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(1), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(5), 3);
        assert_eq!(l.line(6), 4);
    }

    #[test]
    fn durations_in_every_form() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 0 "), Some(Duration::ZERO));
        for bad in [
            "",
            "10",
            "s",
            "1x",
            "-1s",
            "1.5s",
            "10 s",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(parse_signal("sigusr1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
    }
}
