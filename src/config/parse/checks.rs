//! A service's checks: `[[services.checks]]` ([`CHECK_KEYS`]), their names, and go-overlay's
//! `[services.health_check]` ([`HEALTH_CHECK_KEYS`]) read as one more check.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::address::{address, exec_probe, http_probe, tcp_probe};
use super::raw::{RawCheck, RawProbe};
use super::values::{
    MIN_DURATION, MIN_PERIOD, MIN_TIMEOUT, at_least, count, duration, one_of, set, string,
    threshold, wrong,
};
use super::{Field, Keys, Scope, Sink, walk};
use crate::config::error::ErrorKind;
use crate::config::limits::{self, too_long, too_many};
use crate::config::model::{Level, OnFailure, is_valid_name};

/// A check before it has a name: the name written (with its offset), if any, and its index.
pub(super) struct DraftCheck {
    /// 1-based position among the service's checks.
    pub(super) index: usize,
    /// Where its table starts.
    offset: usize,
    name: Option<(String, usize)>,
    /// `None` without a probe.
    check: Option<RawCheck>,
    /// False when one of its keys had an error: it takes part in naming, nothing else.
    valid: bool,
    /// For a ready-level check with `initial_delay` written: the delay and the key's offset,
    /// checked against `start_timeout` once the whole service is read.
    pub(super) ready_delay: Option<(Duration, usize)>,
}

/// One check's keys while they are read; the probe fields of `check` are set at the end.
pub(super) struct Draft {
    check: RawCheck,
    name: Option<(String, usize)>,
    /// The probe key, the probe and the key's offset.
    probe: Option<(&'static str, RawProbe, usize)>,
    /// The first probe key written, even if its value was refused.
    first_probe: Option<&'static str>,
    on_failure: Option<(OnFailure, usize)>,
    initial_delay_at: Option<usize>,
}

/// The keys of a `[[services.checks]]` entry.
pub(super) const CHECK_KEYS: &Keys<Draft> = &[
    ("name", check_name),
    ("exec", probe),
    ("tcp", probe),
    ("http", probe),
    ("initial_delay", |c, f| {
        c.check.initial_delay = f.delay(MIN_DURATION)?;
        c.initial_delay_at = Some(f.offset);
        Ok(())
    }),
    ("period", |c, f| {
        let period = duration(f.v()).and_then(|d| at_least(d, f.key, MIN_PERIOD));
        set(&mut c.check.period, period)
    }),
    ("timeout", |c, f| {
        let timeout = duration(f.v()).and_then(|d| at_least(d, f.key, MIN_TIMEOUT));
        set(&mut c.check.timeout, timeout)
    }),
    ("success_threshold", |c, f| {
        set(&mut c.check.success_threshold, threshold(f.v(), f.key))
    }),
    ("failure_threshold", |c, f| {
        set(&mut c.check.failure_threshold, threshold(f.v(), f.key))
    }),
    ("level", |c, f| {
        set(&mut c.check.level, one_of(f.v(), "level", LEVELS, ""))
    }),
    ("on_failure", |c, f| {
        let action = one_of(f.v(), "on_failure", ACTIONS, "")?;
        c.on_failure = Some((action, f.offset));
        Ok(())
    }),
];

const LEVELS: &[(&str, Level)] = &[("ready", Level::Ready), ("alive", Level::Alive)];

const ACTIONS: &[(&str, OnFailure)] = &[
    ("restart", OnFailure::Restart),
    ("stop", OnFailure::Stop),
    ("shutdown", OnFailure::Shutdown),
    ("ignore", OnFailure::Ignore),
];

fn check_name(c: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    let text = string(f.v())?;
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
    c.name = Some((text, f.offset));
    Ok(())
}

/// `exec`, `tcp` or `http`: exactly one per check.
fn probe(c: &mut Draft, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    if let Some(first) = c.first_probe {
        return Err(ErrorKind::Conflict {
            other: format!("{}.{first}", f.prefix),
        });
    }
    c.first_probe = Some(f.key);
    let raw = match f.key {
        "exec" => exec_probe(f.v())?,
        "tcp" => RawProbe::Tcp(address(f.v(), tcp_probe)?),
        _ => RawProbe::Http(address(f.v(), http_probe)?),
    };
    c.probe = Some((f.key, raw, f.offset));
    Ok(())
}

/// `[[services.checks]]`: an array of tables.
pub(super) fn parse_checks(f: &mut Field<'_, '_, '_>) -> Vec<DraftCheck> {
    let (value, service) = (f.value, f.service);
    let DeValue::Array(items) = value.get_ref() else {
        let kind = wrong("an array of tables ([[services.checks]])", value.get_ref());
        f.sink
            .push(value.span().start, service, Some("checks"), kind);
        return Vec::new();
    };
    if let Some(kind) = too_many("checks", items.len(), limits::MAX_CHECKS) {
        f.sink
            .push(value.span().start, service, Some("checks"), kind);
        return Vec::new();
    }
    let mut drafts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        let DeValue::Table(table) = item.get_ref() else {
            let kind = wrong("a table", item.get_ref());
            let prefix = format!("checks[{index}]");
            f.sink.push(item.span().start, service, Some(&prefix), kind);
            continue;
        };
        drafts.push(parse_check(
            f.sink,
            service,
            index,
            item.span().start,
            table,
        ));
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
    let scope = Scope::new(service, format!("checks[{index}]"), true);
    let errors_before = sink.errors.len();
    let mut c = Draft {
        check: RawCheck {
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
        },
        name: None,
        probe: None,
        first_probe: None,
        on_failure: None,
        initial_delay_at: None,
    };
    walk(sink, &scope, table, CHECK_KEYS, &mut c, |_, _| true);
    if let (Level::Ready, Some((_, at))) = (c.check.level, c.on_failure) {
        let kind = ErrorKind::BadValue {
            message: "a ready check only gates readiness and its failures never act (start_timeout does): remove on_failure, or use level = \"alive\"".into(),
        };
        sink.push(at, service, Some(&scope.full("on_failure")), kind);
    }
    let ready_delay = match (c.check.level, c.initial_delay_at) {
        (Level::Ready, Some(at)) => Some((c.check.initial_delay, at)),
        _ => None,
    };
    let check = match c.probe {
        Some((kind, raw, at)) => Some(RawCheck {
            probe: raw,
            probe_key: scope.full(kind),
            probe_line: sink.lines.line(at),
            on_failure: Some(c.on_failure.map_or(OnFailure::Restart, |(a, _)| a)),
            ..c.check
        }),
        None => {
            if sink.errors.len() == errors_before {
                let kind = ErrorKind::BadValue {
                    message: "no probe: set one of exec, tcp or http".into(),
                };
                sink.push(offset, service, Some(&scope.prefix), kind);
            }
            None
        }
    };
    DraftCheck {
        index,
        offset,
        name: c.name,
        check,
        valid: sink.errors.len() == errors_before,
        ready_delay,
    }
}

/// Gives every check its name and reports duplicates. Explicit names are taken first; a check
/// without one is called after its probe kind, or `kind-N` (N its position) when that is taken.
pub(super) fn name_checks(
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

/// go-overlay's health check while its keys are read.
pub(super) struct Health {
    check: RawCheck,
    endpoint: Option<(String, usize)>,
    command: Option<(String, usize)>,
}

/// The keys of go-overlay's `[services.health_check]`. As in go-overlay, 0 keeps a default and
/// an empty string counts as unset.
pub(super) const HEALTH_CHECK_KEYS: &Keys<Health> = &[
    ("endpoint", |h, f| {
        if !string(f.v())?.is_empty() {
            h.endpoint = Some((address(f.v(), http_probe)?, f.line));
        }
        Ok(())
    }),
    ("command", |h, f| {
        let text = string(f.v())?;
        if !text.is_empty() {
            h.command = Some((text, f.line));
        }
        Ok(())
    }),
    ("interval", |h, f| {
        nonzero(f, MIN_PERIOD, &mut h.check.period)
    }),
    ("retries", |h, f| {
        let n = count(f.v())?;
        if n > 0 {
            h.check.failure_threshold = n;
        }
        Ok(())
    }),
    ("timeout", |h, f| {
        nonzero(f, MIN_TIMEOUT, &mut h.check.timeout)
    }),
    ("start_delay", |h, f| {
        nonzero(f, MIN_DURATION, &mut h.check.initial_delay)
    }),
];

/// A duration where 0 keeps the default in `slot`; anything else must reach `min`.
fn nonzero(f: &Field<'_, '_, '_>, min: Duration, slot: &mut Duration) -> Result<(), ErrorKind> {
    let d = duration(f.v())?;
    if !d.is_zero() {
        *slot = at_least(d, f.key, min)?;
    }
    Ok(())
}

/// go-overlay's `[services.health_check]`, as one alive-level check named `health_check`:
/// `endpoint` (an HTTP URL) wins over `command` (a shell command); with neither there is no
/// check, as go-overlay treats such a service as always healthy.
pub(super) fn parse_health_check(f: &mut Field<'_, '_, '_>) -> Option<RawCheck> {
    let DeValue::Table(table) = f.v() else {
        let kind = wrong("a table ([services.health_check])", f.v());
        f.sink
            .push(f.value.span().start, f.service, Some("health_check"), kind);
        return None;
    };
    let errors_before = f.sink.errors.len();
    let mut h = Health {
        check: RawCheck {
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
        },
        endpoint: None,
        command: None,
    };
    let scope = Scope::new(f.service, "health_check", true);
    walk(f.sink, &scope, table, HEALTH_CHECK_KEYS, &mut h, |_, _| {
        true
    });
    if f.sink.errors.len() != errors_before {
        return None;
    }
    let (probe, key, line) = match (h.endpoint, h.command) {
        (Some((url, line)), _) => (RawProbe::Http(url), "endpoint", line),
        (None, Some((text, line))) => (RawProbe::Shell(text), "command", line),
        (None, None) => return None,
    };
    Some(RawCheck {
        probe,
        probe_key: scope.full(key),
        probe_line: line,
        ..h.check
    })
}
