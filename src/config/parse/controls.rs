//! The process-control keys ([`CONTROL_KEYS`]): resource limits, umask, privileges, OOM score,
//! nice, description, the environment's origin and secrets. A service may set each, and so may
//! the top-level `[defaults]` table, for every service; a service's own key wins (`rlimits` and
//! `secrets` entry by entry). Only the form of each value is checked here; `controls` checks
//! what depends on the world (pidone's hard limits, the secret files).

use toml::de::DeValue;

use super::values::{boolean, integer, set_some, string, string_list, wrong};
use super::{Field, Keys};
use crate::config::envfile;
use crate::config::error::{ErrorKind, suggest};
use crate::os::controls::{CAPABILITIES, Limit, RESOURCES};

/// Where a value was written: file index and line.
pub type At = (usize, usize);

/// The process-control keys of one service or of `[defaults]`, as written.
#[derive(Debug, Clone, Default)]
pub struct RawControls {
    /// The file these keys are read from (set before parsing).
    pub file: usize,
    /// Where each key present was written.
    pub key_lines: Vec<(&'static str, At)>,
    /// Each limit, with where it was written.
    pub rlimits: Vec<(Limit, At)>,
    pub umask: Option<u32>,
    pub no_new_privs: Option<bool>,
    pub capabilities: Option<u64>,
    pub oom_score_adj: Option<i32>,
    pub nice: Option<i32>,
    pub description: Option<String>,
    pub inherit_env: Option<bool>,
    pub env_allow: Option<Vec<String>>,
    /// Variable, file path as written, where.
    pub secrets: Vec<(String, String, At)>,
    /// cgroup limits: interface file (`memory.max`), value to write, where.
    pub cgroup: Vec<(&'static str, String, At)>,
    pub cgroup_optional: Option<bool>,
    /// `env_from_files`: `Some(None)` for `true` (every `NAME_FILE`), `Some(Some(names))` for
    /// a list of names (`false` is the empty list).
    pub env_from_files: Option<Option<Vec<String>>>,
}

impl RawControls {
    /// Where `key` was written, if it was.
    pub fn at(&self, key: &str) -> Option<At> {
        self.key_lines
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, at)| *at)
    }

    /// Takes from `defaults` every key not set here (limits and secrets one by one).
    pub fn fill(&mut self, defaults: &RawControls) {
        for (key, at) in &defaults.key_lines {
            if self.at(key).is_none() {
                self.key_lines.push((key, *at));
            }
        }
        for (limit, at) in &defaults.rlimits {
            if !self
                .rlimits
                .iter()
                .any(|(l, _)| l.resource == limit.resource)
            {
                self.rlimits.push((*limit, *at));
            }
        }
        for limit in &defaults.cgroup {
            if !self.cgroup.iter().any(|(file, _, _)| *file == limit.0) {
                self.cgroup.push(limit.clone());
            }
        }
        for secret in &defaults.secrets {
            if !self.secrets.iter().any(|(var, _, _)| *var == secret.0) {
                self.secrets.push(secret.clone());
            }
        }
        let d = defaults;
        self.umask = self.umask.or(d.umask);
        self.no_new_privs = self.no_new_privs.or(d.no_new_privs);
        self.capabilities = self.capabilities.or(d.capabilities);
        self.oom_score_adj = self.oom_score_adj.or(d.oom_score_adj);
        self.nice = self.nice.or(d.nice);
        self.inherit_env = self.inherit_env.or(d.inherit_env);
        self.cgroup_optional = self.cgroup_optional.or(d.cgroup_optional);
        if self.description.is_none() {
            self.description.clone_from(&d.description);
        }
        if self.env_allow.is_none() {
            self.env_allow.clone_from(&d.env_allow);
        }
        if self.env_from_files.is_none() {
            self.env_from_files.clone_from(&d.env_from_files);
        }
    }
}

/// Every process-control key. `SERVICE_KEYS` names each too, reading it through [`parse_key`].
pub(super) const CONTROL_KEYS: &Keys<RawControls> = &[
    ("rlimits", rlimits),
    ("umask", |c, f| set_some(&mut c.umask, umask(f.v()))),
    ("no_new_privs", |c, f| {
        set_some(&mut c.no_new_privs, boolean(f.v()))
    }),
    ("capabilities", |c, f| {
        set_some(&mut c.capabilities, capabilities(f.v()))
    }),
    ("oom_score_adj", |c, f| {
        set_some(&mut c.oom_score_adj, within(f.v(), -1000, 1000))
    }),
    ("nice", |c, f| set_some(&mut c.nice, within(f.v(), -20, 19))),
    ("description", |c, f| {
        set_some(&mut c.description, string(f.v()))
    }),
    ("inherit_env", |c, f| {
        set_some(&mut c.inherit_env, boolean(f.v()))
    }),
    ("env_allow", |c, f| {
        set_some(&mut c.env_allow, variable_names(f.v()))
    }),
    ("secrets", secrets),
    ("memory_max", |c, f| {
        cgroup(c, f, "memory.max", memory(f.v()))
    }),
    ("memory_high", |c, f| {
        cgroup(c, f, "memory.high", memory(f.v()))
    }),
    ("cpu_max", |c, f| cgroup(c, f, "cpu.max", cpu(f.v()))),
    ("pids_max", |c, f| cgroup(c, f, "pids.max", pids(f.v()))),
    ("cgroup_optional", |c, f| {
        set_some(&mut c.cgroup_optional, boolean(f.v()))
    }),
    ("env_from_files", |c, f| {
        let which = match f.v() {
            DeValue::Boolean(true) => Ok(None),
            DeValue::Boolean(false) => Ok(Some(Vec::new())),
            DeValue::Array(_) => variable_names(f.v()).map(Some),
            other => Err(wrong("true, false or an array of variable names", other)),
        };
        set_some(&mut c.env_from_files, which)
    }),
];

/// Reads the control key `f.key` into `c`, recording where it was written.
pub(super) fn parse_key(c: &mut RawControls, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    c.key_lines.push((f.key, (c.file, f.line)));
    match CONTROL_KEYS.iter().find(|(k, _)| *k == f.key) {
        Some((_, parse)) => parse(c, f),
        None => Ok(()),
    }
}

fn within(v: &DeValue<'_>, min: i32, max: i32) -> Result<i32, ErrorKind> {
    let n = integer(v)?;
    match i32::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ErrorKind::BadValue {
            message: format!("{n} is out of range: use {min} to {max}"),
        }),
    }
}

/// `"0027"`: up to four octal digits, at most 0777.
fn umask(v: &DeValue<'_>) -> Result<u32, ErrorKind> {
    let text = string(v)?;
    let value = u32::from_str_radix(&text, 8).ok();
    match value.filter(|m| *m <= 0o777 && (1..=4).contains(&text.len())) {
        Some(mask) => Ok(mask),
        None => Err(ErrorKind::BadValue {
            message: format!("bad umask {text:?}: use octal digits up to \"0777\", like \"0027\""),
        }),
    }
}

/// Names like `NET_BIND_SERVICE` or `CAP_NET_BIND_SERVICE`, any case, as a bit set.
fn capabilities(v: &DeValue<'_>) -> Result<u64, ErrorKind> {
    let mut set = 0u64;
    for name in string_list(v)? {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        let Some(bit) = CAPABILITIES.iter().position(|c| *c == bare) else {
            let suggestion = suggest(bare, CAPABILITIES.iter().copied());
            let hint = suggestion.map_or(String::new(), |s| format!(" (did you mean {s:?}?)"));
            return Err(ErrorKind::BadValue {
                message: format!("unknown capability {name:?}{hint}"),
            });
        };
        set |= 1 << bit;
    }
    Ok(set)
}

fn variable_names(v: &DeValue<'_>) -> Result<Vec<String>, ErrorKind> {
    let names = string_list(v)?;
    match names.iter().find(|n| !envfile::is_valid_key(n)) {
        Some(bad) => Err(ErrorKind::BadValue {
            message: format!("invalid variable name {bad:?}"),
        }),
        None => Ok(names),
    }
}

/// `rlimits = { nofile = 65536, core = [0, "unlimited"], stack = "8MB" }`: each entry's error
/// is reported at its own line, as `rlimits.NAME`.
fn rlimits(c: &mut RawControls, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    let DeValue::Table(table) = f.v() else {
        return Err(wrong("a table of limit = value", f.v()));
    };
    // In name order: the errors are sorted by line at the end, and the order of setrlimit
    // calls does not matter.
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let at = key.span().start;
        let full = format!("rlimits.{name}");
        let Some(&(_, resource)) = RESOURCES.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
            let suggestion = suggest(name, names.iter().copied());
            let kind = ErrorKind::UnknownKey {
                key: full,
                suggestion: suggestion.map(|s| format!("rlimits.{s}")),
            };
            f.sink.push(at, f.service, None, kind);
            continue;
        };
        let bytes = matches!(
            name,
            "as" | "core" | "data" | "fsize" | "memlock" | "msgqueue" | "rss" | "stack"
        );
        match soft_hard(value.get_ref(), bytes) {
            Ok((soft, hard)) => {
                let limit = Limit {
                    resource,
                    soft,
                    hard,
                };
                c.rlimits.push((limit, (c.file, f.sink.lines.line(at))));
            }
            Err(kind) => f.sink.push(at, f.service, Some(&full), kind),
        }
    }
    Ok(())
}

/// One value, or `[soft, hard]` with soft not above hard (`None` is unlimited).
fn soft_hard(v: &DeValue<'_>, bytes: bool) -> Result<(Option<u64>, Option<u64>), ErrorKind> {
    let DeValue::Array(items) = v else {
        let one = limit_value(v, bytes)?;
        return Ok((one, one));
    };
    let mut each = items.iter();
    let (Some(soft), Some(hard), None) = (each.next(), each.next(), each.next()) else {
        return Err(ErrorKind::BadValue {
            message: "expected one value or [soft, hard]".into(),
        });
    };
    let (soft, hard) = (
        limit_value(soft.get_ref(), bytes)?,
        limit_value(hard.get_ref(), bytes)?,
    );
    if soft.unwrap_or(u64::MAX) > hard.unwrap_or(u64::MAX) {
        return Err(ErrorKind::BadValue {
            message: "the soft limit is above the hard limit".into(),
        });
    }
    Ok((soft, hard))
}

/// A number, `"unlimited"`, or (for limits in bytes) a size like `"8MB"`.
fn limit_value(v: &DeValue<'_>, bytes: bool) -> Result<Option<u64>, ErrorKind> {
    let bad = |text: &str| ErrorKind::BadValue {
        message: match bytes {
            true => {
                format!("bad limit {text:?}: use a number, a size like \"8MB\", or \"unlimited\"")
            }
            false => format!("bad limit {text:?}: use a number or \"unlimited\""),
        },
    };
    match v {
        DeValue::Integer(_) => {
            let n = integer(v)?;
            u64::try_from(n).map(Some).map_err(|_| bad(&n.to_string()))
        }
        DeValue::String(s) if s == "unlimited" || s == "infinity" => Ok(None),
        DeValue::String(s) if bytes => super::values::size_text(s).map(Some).ok_or_else(|| bad(s)),
        DeValue::String(s) => Err(bad(s)),
        other => Err(wrong("a number, a string or [soft, hard]", other)),
    }
}

/// `secrets = { VAR = "/run/secrets/file" }`, each entry with its line.
fn secrets(c: &mut RawControls, f: &mut Field<'_, '_, '_>) -> Result<(), ErrorKind> {
    let DeValue::Table(table) = f.v() else {
        return Err(wrong("a table of VAR = \"/path/to/file\"", f.v()));
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        let at = key.span().start;
        let path = string(value.get_ref()).and_then(|p| match p.is_empty() {
            true => Err(ErrorKind::BadValue {
                message: "the path must not be empty".into(),
            }),
            false => Ok(p),
        });
        let path = match envfile::is_valid_key(&name) {
            true => path,
            false => Err(ErrorKind::BadValue {
                message: format!("invalid variable name {name:?}"),
            }),
        };
        match path {
            Ok(path) => c
                .secrets
                .push((name, path, (c.file, f.sink.lines.line(at)))),
            Err(kind) => f.sink.push(at, f.service, Some("secrets"), kind),
        }
    }
    Ok(())
}

/// Stores the value for cgroup interface `file`.
fn cgroup(
    c: &mut RawControls,
    f: &Field<'_, '_, '_>,
    file: &'static str,
    value: Result<String, ErrorKind>,
) -> Result<(), ErrorKind> {
    c.cgroup.push((file, value?, (c.file, f.line)));
    Ok(())
}

/// `memory_max`, `memory_high`: bytes, a size like `"512MB"`, or `"max"`.
fn memory(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    match v {
        DeValue::String(s) if s == "max" => Ok("max".into()),
        DeValue::String(s) => super::values::size_text(s)
            .map(|n| n.to_string())
            .ok_or_else(|| ErrorKind::BadValue {
                message: format!("bad size {s:?}: use bytes, a size like \"512MB\", or \"max\""),
            }),
        DeValue::Integer(_) => u64::try_from(integer(v)?)
            .map(|n| n.to_string())
            .map_err(|_| wrong("a size", v)),
        other => Err(wrong("a size like \"512MB\" or \"max\"", other)),
    }
}

/// `cpu_max`: `"50%"` of one CPU, `"1.5"` CPUs, or `"max"`, as `cpu.max` wants it: a quota in
/// microseconds per period of 100 ms.
fn cpu(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    let text = match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => i.as_str().to_owned(),
        DeValue::Float(x) => x.as_str().to_owned(),
        other => return Err(wrong("a share like \"50%\" or \"0.5\"", other)),
    };
    if text == "max" {
        return Ok("max 100000".into());
    }
    let cpus = match text.strip_suffix('%') {
        Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    // The kernel's smallest quota is 1 ms per period.
    match cpus {
        Ok(cpus) if (0.01..=1024.0).contains(&cpus) => {
            Ok(format!("{} 100000", (cpus * 100_000.0).round() as u64))
        }
        _ => Err(ErrorKind::BadValue {
            message: format!(
                "bad CPU share {text:?}: use \"50%\" or \"0.5\" CPUs (at least 1%), or \"max\""
            ),
        }),
    }
}

/// `pids_max`: at least 1, or `"max"`.
fn pids(v: &DeValue<'_>) -> Result<String, ErrorKind> {
    match v {
        DeValue::String(s) if s == "max" => Ok("max".into()),
        DeValue::Integer(_) => match integer(v)? {
            n @ 1.. => Ok(n.to_string()),
            n => Err(ErrorKind::BadValue {
                message: format!("{n} is too low: use at least 1, or \"max\""),
            }),
        },
        other => Err(wrong("a number or \"max\"", other)),
    }
}
