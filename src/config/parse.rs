//! From TOML text to raw, typed, per-file service definitions, with the line of every key.
//!
//! Why a hand walk over `toml::de::DeTable` instead of `#[derive(Deserialize)]` with
//! `deny_unknown_fields`: serde stops at the first error, and pidone must report every problem
//! at once. `DeTable::parse` keeps a byte span for every key and value, so each error can name its
//! line; the value conversions below are small and specific to this format (durations that are
//! integers or strings, `depends_on` as a string or an array, go-overlay's spellings). Nothing
//! here looks at other services, other files, the environment or the file system; `mod.rs` does
//! that on the result.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, ErrorKind, Location, suggest};
use super::{Kind, LogMode, Restart};

/// Every key a `[[services]]` entry may have. `health_check` is known only to refuse it.
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
    "health_check",
];

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

fn unknown_key(key: &str, known: &[&str]) -> ErrorKind {
    ErrorKind::UnknownKey {
        key: key.to_owned(),
        suggestion: suggest(key, known.iter().copied()),
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
        match duration(value.get_ref()) {
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
    for (key, value) in table.iter() {
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
                "start_delay" => s.start_delay = duration(v)?,
                "dependency_wait_timeout" => s.dependency_wait_timeout = Some(duration(v)?),
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
                "restart_delay" => s.restart_delay = Some(duration(v)?),
                "restart_delay_max" => s.restart_delay_max = Some(duration(v)?),
                "max_restarts" => s.max_restarts = count(v)?,
                "stop_signal" => s.stop_signal = Some(signal(v)?),
                "stop_timeout" => s.stop_timeout = Some(duration(v)?),
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
                    s.instances = Some(n);
                }
                "health_check" => return Err(ErrorKind::HealthCheckUnsupported),
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
    if s.command.is_none() {
        sink.push(
            header,
            label.as_deref(),
            Some("command"),
            ErrorKind::Missing,
        );
    }
    label.map(|_| s)
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

fn string(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
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

/// A non-negative integer that fits in `u32`.
fn count(v: &DeValue<'_>) -> Result<u32, ErrorKind> {
    let n = integer(v)?;
    u32::try_from(n).map_err(|_| ErrorKind::BadValue {
        message: format!("{n} is not a count (expected 0 to {})", u32::MAX),
    })
}

fn string_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    match v {
        DeValue::Array(items) => items
            .iter()
            .map(|item| string(item.get_ref()).map_err(|_| wrong("an array of strings", v)))
            .collect(),
        other => Err(wrong("an array of strings", other)),
    }
}

fn string_or_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    match v {
        DeValue::String(s) => Ok(vec![s.to_string()]),
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
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(s) => Ok((s.to_string(), sink.lines.line(item.span().start))),
                _ => Err(wrong(expected, v)),
            })
            .collect(),
        other => Err(wrong(expected, other)),
    }
}

fn wait_after(sink: &Sink<'_>, v: &DeValue<'_>) -> Result<RawWaitAfter, ErrorKind> {
    match v {
        DeValue::Table(table) => {
            let mut per = Vec::new();
            for (key, value) in table.iter() {
                per.push((
                    key.get_ref().to_string(),
                    duration(value.get_ref())?,
                    sink.lines.line(key.span().start),
                ));
            }
            Ok(RawWaitAfter::Per(per))
        }
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::String(_) => {
            Ok(RawWaitAfter::All(duration(v)?))
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
    let mut out = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !crate::envfile::is_valid_key(&name) {
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
/// everywhere else in pidone: [`crate::signals::parse`]).
pub fn parse_signal(text: &str) -> Option<i32> {
    crate::signals::parse(text)
}

fn signal_number(n: i64) -> Option<i32> {
    i32::try_from(n)
        .ok()
        .and_then(|n| crate::signals::parse(&n.to_string()))
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
