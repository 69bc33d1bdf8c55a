//! TOML values to typed ones: strings (no NUL, bounded), booleans, counts, durations and their
//! floors, signals, lists of names, `env` tables, scripts, exit codes. Each returns the error
//! for its key; the caller adds where.

use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::Lines;
use super::raw::RawWaitAfter;
use crate::config::describe::format_duration;
use crate::config::envfile;
use crate::config::error::ErrorKind;
use crate::config::limits::{self, too_long, too_many};

/// The shortest check `period` (go-overlay's `interval`): a fast-failing probe re-runs this
/// often at most, so PID 1 never spins on one.
pub(super) const MIN_PERIOD: Duration = Duration::from_millis(10);

/// The shortest check `timeout`: below it a probe could not even connect to localhost in time.
pub(super) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The floor of every other duration that is not 0: pidone's timers are `poll` deadlines in
/// milliseconds, so a shorter one cannot be kept as written and is a unit mistake.
pub(super) const MIN_DURATION: Duration = Duration::from_millis(1);

/// The floor of `restart_delay` and `restart_delay_max`: they pace a crashing service's
/// restarts, so, like a check's period, they keep PID 1 from forking in a tight loop.
pub(super) const MIN_RESTART_DELAY: Duration = Duration::from_millis(10);

/// The floor of `restart_reset`: with a shorter window a program that crashes within a second
/// of its start would count as having stayed up, so it would never back off nor reach
/// `max_restarts`.
pub(super) const MIN_RESTART_RESET: Duration = Duration::from_secs(1);

/// Stores a parsed value, for the key tables' one-line parsers.
pub(super) fn set<T>(slot: &mut T, value: Result<T, ErrorKind>) -> Result<(), ErrorKind> {
    *slot = value?;
    Ok(())
}

/// Stores a parsed value of a key that is optional.
pub(super) fn set_some<T>(
    slot: &mut Option<T>,
    value: Result<T, ErrorKind>,
) -> Result<(), ErrorKind> {
    *slot = Some(value?);
    Ok(())
}

/// A string naming one of `choices`: `what` names the key in the message, which lists the
/// choices and ends with `tail`.
pub(super) fn one_of<T: Clone>(
    v: &DeValue<'_>,
    what: &str,
    choices: &[(&str, T)],
    tail: &str,
) -> Result<T, ErrorKind> {
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let i = choice(v, what, &names, tail)?;
    choices
        .get(i)
        .map(|(_, value)| value.clone())
        .ok_or_else(|| wrong("a string", v))
}

/// [`one_of`]'s part that does not depend on the type of the choices: the index of the name.
fn choice(v: &DeValue<'_>, what: &str, names: &[&str], tail: &str) -> Result<usize, ErrorKind> {
    let text = string(v)?;
    if let Some(i) = names.iter().position(|name| *name == text) {
        return Ok(i);
    }
    let mut list = String::new();
    for (i, name) in names.iter().enumerate() {
        let sep = match i {
            0 => "",
            i if i + 1 == names.len() => " or ",
            _ => ", ",
        };
        list.push_str(&format!("{sep}{name:?}"));
    }
    Err(ErrorKind::BadValue {
        message: format!("unknown {what} {text:?}: use {list}{tail}"),
    })
}

pub(super) fn wrong(expected: &'static str, v: &DeValue<'_>) -> ErrorKind {
    ErrorKind::WrongType {
        expected,
        found: v.type_str(),
    }
}

/// Every string of the config ends up as a program argument, a path, a name or an environment
/// value, none of which can hold a NUL byte: `execve` and the path system calls would refuse it
/// at every spawn, so it is refused here. `item` is the 1-based position in an array.
pub(super) fn no_nul(text: &str, item: Option<usize>) -> Result<(), ErrorKind> {
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
pub(super) fn long_string(v: &Spanned<DeValue<'_>>) -> Option<(usize, ErrorKind)> {
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

pub(super) fn string(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    match v {
        DeValue::String(s) => {
            no_nul(s, None)?;
            Ok(s.to_string())
        }
        other => Err(wrong("a string", other)),
    }
}

pub(super) fn boolean(v: &DeValue<'_>) -> Result<bool, ErrorKind> {
    v.as_bool().ok_or_else(|| wrong("true or false", v))
}

pub(super) fn integer(v: &DeValue<'_>) -> Result<i64, ErrorKind> {
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
pub(super) fn positive(v: &DeValue<'_>, key: &str) -> Result<Duration, ErrorKind> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be longer than 0"),
        });
    }
    Ok(d)
}

/// `d`, if it is at least `min`; `key` names it in the message.
pub(super) fn at_least(d: Duration, key: &str, min: Duration) -> Result<Duration, ErrorKind> {
    if d < min {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be at least {}", format_duration(min)),
        });
    }
    Ok(d)
}

/// `d`, if it is 0 (none, or the default) or at least `min`; `key` names it in the message.
pub(super) fn zero_or_at_least(
    d: Duration,
    key: &str,
    min: Duration,
) -> Result<Duration, ErrorKind> {
    if d.is_zero() || d >= min {
        return Ok(d);
    }
    Err(ErrorKind::BadValue {
        message: format!("{key} must be 0 or at least {}", format_duration(min)),
    })
}

/// A count of at least 1; `key` names it in the message.
pub(super) fn threshold(v: &DeValue<'_>, key: &str) -> Result<u32, ErrorKind> {
    let n = count(v)?;
    if n == 0 {
        return Err(ErrorKind::BadValue {
            message: format!("{key} must be at least 1"),
        });
    }
    Ok(n)
}

/// `"text"` or `"json"` (`[log] format`, `log_format`): true for JSON.
pub(super) fn log_format(v: &DeValue<'_>) -> Result<bool, ErrorKind> {
    one_of(v, "log format", &[("text", false), ("json", true)], "")
}

/// A size in bytes (`log_max_size`): an integer, or a string with a unit, `"10MB"`; `K`, `M`
/// and `G` (alone, with `B`, or as `KiB`...) are powers of 1024, as in supervisord. At least
/// 4096, one line's worth, so that every file holds at least one line.
pub(super) fn size(v: &DeValue<'_>) -> Result<u64, ErrorKind> {
    let bad = |what: String| ErrorKind::BadValue {
        message: format!("{what}: use bytes or a size like \"10MB\" (K, M, G: powers of 1024)"),
    };
    let n = match v {
        DeValue::Integer(_) => {
            let n = integer(v)?;
            u64::try_from(n).map_err(|_| bad(format!("{n} is negative")))?
        }
        DeValue::String(s) => {
            let text = s.trim();
            size_text(text).ok_or_else(|| bad(format!("{text:?} is not a size")))?
        }
        other => return Err(wrong("a size (bytes, or a string like \"10MB\")", other)),
    };
    if n < 4096 {
        return Err(bad(format!("{n} bytes is less than 4096")));
    }
    Ok(n)
}

/// A non-negative integer that fits in `u32`.
pub(super) fn count(v: &DeValue<'_>) -> Result<u32, ErrorKind> {
    let n = integer(v)?;
    u32::try_from(n).map_err(|_| ErrorKind::BadValue {
        message: format!("{n} is not a count (expected 0 to {})", u32::MAX),
    })
}

pub(super) fn string_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
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

pub(super) fn string_or_list(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    match v {
        DeValue::String(s) => no_nul(s, None).map(|()| vec![s.to_string()]),
        DeValue::Array(_) => string_list(v),
        other => Err(wrong("a string or an array of strings", other)),
    }
}

/// `depends_on` / `after`: a name or an array of names, each with its line.
pub(super) fn names_with_lines(
    lines: &Lines,
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
                    DeValue::String(s) => Ok((s.to_string(), lines.line(item.span().start))),
                    _ => Err(wrong(expected, v)),
                })
                .collect()
        }
        other => Err(wrong(expected, other)),
    }
}

pub(super) fn wait_after(lines: &Lines, v: &DeValue<'_>) -> Result<RawWaitAfter, ErrorKind> {
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
                    lines.line(key.span().start),
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
pub(super) fn env_table(
    lines: &Lines,
    v: &DeValue<'_>,
) -> Result<Vec<(String, String, usize)>, ErrorKind> {
    let DeValue::Table(table) = v else {
        return Err(wrong("a table of NAME = \"value\"", v));
    };
    if let Some(kind) = too_many("variables", table.len(), limits::MAX_ENV_VARS) {
        return Err(kind);
    }
    let mut out = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !envfile::is_valid_key(&name) {
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
        out.push((name, text, lines.line(key.span().start)));
    }
    Ok(out)
}

/// A script: a string is one path, an array is an argv. The flag says which form was used.
pub(super) fn script(v: &DeValue<'_>) -> Result<(Vec<String>, bool), ErrorKind> {
    let argv = string_or_list(v)?;
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err(ErrorKind::BadValue {
            message: "the script must not be empty".into(),
        });
    }
    Ok((argv, matches!(v, DeValue::String(_))))
}

pub(super) fn exit_codes(v: &DeValue<'_>) -> Result<Vec<i32>, ErrorKind> {
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
pub(super) fn duration(v: &DeValue<'_>) -> Result<Duration, ErrorKind> {
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

pub(super) fn signal_number(n: i64) -> Option<i32> {
    i32::try_from(n)
        .ok()
        .and_then(|n| crate::os::signals::parse(&n.to_string()))
}

/// A size in bytes: digits and an optional unit (spaces before it allowed), `B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB` or `T`/`TB`/`TiB` in any case, each a power of 1024 as Docker
/// and supervisord count them. None when it is not one, or too large.
pub(super) fn size_text(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

pub(super) fn signal(v: &DeValue<'_>) -> Result<i32, ErrorKind> {
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
    fn sizes_count_in_powers_of_1024() {
        assert_eq!(size_text("8MB"), Some(8 << 20));
        assert_eq!(size_text("8m"), Some(8 << 20));
        assert_eq!(size_text("8 MB"), Some(8 << 20));
        assert_eq!(size_text("1KiB"), Some(1024));
        assert_eq!(size_text("512"), Some(512));
        for bad in ["", "lots", "MB", "-1K", "99999999999T", "8 M B"] {
            assert_eq!(size_text(bad), None, "{bad:?}");
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
