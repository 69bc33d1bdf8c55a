//! From TOML text to raw, typed, per-file service definitions, with the line of every key.
//!
//! Why a hand walk over `toml::de::DeTable` instead of `#[derive(Deserialize)]` with
//! `deny_unknown_fields`: serde stops at the first error, and pidone must report every problem
//! at once. `DeTable::parse` keeps a byte span for every key and value, so each error can name its
//! line; the value conversions (`values`) are small and specific to this format (durations that
//! are integers or strings, `depends_on` as a string or an array, go-overlay's spellings).
//!
//! Every section's keys are written once, in a table of (key, parser): [`TOP_KEYS`] and
//! [`TIMEOUT_KEYS`] here, `service::SERVICE_KEYS` and `READY_KEYS`, `checks::CHECK_KEYS` and
//! `HEALTH_CHECK_KEYS`. [`walk`] reads a TOML table through one of them: the unknown-key error and
//! its "did you mean" come from the same table, and a unit test checks that docs/config.md names
//! every key. Nothing here looks at other services, other files, the environment or the file
//! system; `resolve` and `outside` do that on the result.

mod address;
mod checks;
mod conditions;
mod controls;
mod groups;
mod raw;
mod service;
mod values;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, ErrorKind, Location, suggest};
use super::model::Timeouts;

pub use address::{empty_after, http_probe, tcp_probe};
pub use controls::{At, RawControls};
pub use raw::{RawApi, RawCheck, RawFile, RawProbe, RawService, RawTimeout, RawWaitAfter};
pub use values::{parse_duration, parse_signal};

/// The shell that runs a check written as one string (`exec = "..."`, go-overlay's `command`).
pub const SHELL: &str = "/bin/sh";

/// How one key's value is read into its section's draft `T`. An `Err` is reported by [`walk`]
/// for the key; a parser of a sub-table reports its own errors and returns `Ok`.
type Parser<T> = fn(&mut T, &mut Field<'_, '_, '_>) -> Result<(), ErrorKind>;

/// A section's keys, each with its parser.
type Keys<T> = [(&'static str, Parser<T>)];

/// The top level of a file.
const TOP_KEYS: &Keys<(usize, RawFile)> = &[
    ("services", |(file, raw), f| {
        let DeValue::Array(items) = f.v() else {
            return Err(values::wrong("an array of tables ([[services]])", f.v()));
        };
        for item in items.iter() {
            raw.services
                .extend(service::parse_service(f.sink, *file, item));
        }
        Ok(())
    }),
    ("defaults", |(file, raw), f| {
        let DeValue::Table(table) = f.v() else {
            return Err(values::wrong("a table", f.v()));
        };
        let mut defaults = RawControls {
            file: *file,
            ..RawControls::default()
        };
        let scope = Scope::new(None, "defaults", true);
        walk(
            f.sink,
            &scope,
            table,
            controls::CONTROL_KEYS,
            &mut defaults,
            |d, f| {
                d.key_lines.push((f.key, (d.file, f.line)));
                true
            },
        );
        raw.defaults = Some((defaults, f.line));
        Ok(())
    }),
    ("log", |(_, raw), f| {
        let DeValue::Table(table) = f.v() else {
            return Err(values::wrong("a table", f.v()));
        };
        let scope = Scope::new(None, "log", true);
        walk(f.sink, &scope, table, LOG_KEYS, raw, |_, _| true);
        Ok(())
    }),
    #[cfg(feature = "s6")]
    ("shutdown_scripts", |(_, raw), f| {
        let DeValue::Array(items) = f.v() else {
            return Err(values::wrong("an array of scripts", f.v()));
        };
        let scripts = (items.iter())
            .map(|item| values::script(item.get_ref()).map(|(argv, _)| argv))
            .collect::<Result<_, _>>()?;
        raw.shutdown_scripts = Some((scripts, f.line));
        Ok(())
    }),
    ("env_file", |(_, raw), f| {
        raw.env_file = Some((values::string_or_list(f.v())?, f.line));
        Ok(())
    }),
    ("api", |(_, raw), f| {
        let DeValue::Table(table) = f.v() else {
            return Err(values::wrong("a table", f.v()));
        };
        let scope = Scope::new(None, "api", true);
        walk(f.sink, &scope, table, API_KEYS, &mut raw.api, |_, _| true);
        Ok(())
    }),
    ("timeouts", |(_, raw), f| {
        let DeValue::Table(table) = f.v() else {
            return Err(values::wrong("a table", f.v()));
        };
        // Unknown keys are named bare, errors in values as `timeouts.KEY`.
        let scope = Scope::new(None, "timeouts", false);
        walk(
            f.sink,
            &scope,
            table,
            TIMEOUT_KEYS,
            &mut raw.timeouts,
            |_, _| true,
        );
        Ok(())
    }),
];

/// `[log]`: how every line pidone writes looks.
const LOG_KEYS: &Keys<RawFile> = &[
    ("timestamps", |raw, f| {
        values::set_some(&mut raw.log_timestamps, values::boolean(f.v()))
    }),
    ("format", |raw, f| {
        values::set_some(&mut raw.log_json, values::log_format(f.v()))
    }),
];

/// `[api]`: the HTTP endpoint on TCP.
const API_KEYS: &Keys<RawApi> = &[
    ("listen", |api, f| {
        let texts = values::string_list(f.v())?;
        let addrs = texts.into_iter().map(|text| match text.parse() {
            Ok(addr) => Ok((addr, text)),
            Err(_) => Err(ErrorKind::BadValue {
                message: format!("'{text}' is not an address like 0.0.0.0:9100 or [::]:9100"),
            }),
        });
        api.listen = Some((addrs.collect::<Result<_, _>>()?, f.line));
        Ok(())
    }),
    ("public", |api, f| {
        let paths = values::string_list(f.v())?;
        if let Some(bad) = paths
            .iter()
            .find(|p| !p.starts_with('/') || p.contains('?'))
        {
            let message = format!("'{bad}' is not a path like /metrics");
            return Err(ErrorKind::BadValue { message });
        }
        api.public = Some(paths);
        Ok(())
    }),
    ("token_file", |api, f| {
        api.token_file = Some((values::string(f.v())?, f.line));
        Ok(())
    }),
    ("read_token_file", |api, f| {
        api.read_token_file = Some((values::string(f.v())?, f.line));
        Ok(())
    }),
    ("dropin_dir", |api, f| {
        api.dropin_dir = Some((values::string(f.v())?, f.line));
        Ok(())
    }),
    ("cert_file", |api, f| {
        api.cert_file = Some((values::string(f.v())?, f.line));
        Ok(())
    }),
    ("key_file", |api, f| {
        api.key_file = Some((values::string(f.v())?, f.line));
        Ok(())
    }),
];

/// `[timeouts]`: each sets one field of [`Timeouts`]; 0 keeps the default, as in go-overlay.
const TIMEOUT_KEYS: &Keys<Vec<RawTimeout>> = &[
    ("post_script_timeout", |out, f| {
        timeout(out, f, |t| &mut t.post_script)
    }),
    ("service_shutdown_timeout", |out, f| {
        timeout(out, f, |t| &mut t.service_shutdown)
    }),
    ("global_shutdown_timeout", |out, f| {
        timeout(out, f, |t| &mut t.global_shutdown)
    }),
    ("dependency_wait_timeout", |out, f| {
        timeout(out, f, |t| &mut t.dependency_wait)
    }),
    #[cfg(feature = "s6")]
    ("shutdown_script_timeout", |out, f| {
        timeout(out, f, |t| &mut t.shutdown_script)
    }),
];

/// One `[timeouts]` entry, kept with the field of [`Timeouts`] it sets (merged across files
/// by `load`).
fn timeout(
    out: &mut Vec<RawTimeout>,
    f: &Field<'_, '_, '_>,
    slot: fn(&mut Timeouts) -> &mut Duration,
) -> Result<(), ErrorKind> {
    out.push(RawTimeout {
        key: f.key,
        value: f.delay(values::MIN_DURATION)?,
        line: f.line,
        slot,
    });
    Ok(())
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
        let line = self.lines.line(offset);
        self.push_line(line, service, key, kind);
    }

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

/// How a section names its keys in errors: the service, and a prefix (`ready`, `checks[2]`,
/// `timeouts`, or none for a service's own keys).
struct Scope<'a> {
    service: Option<&'a str>,
    prefix: Cow<'a, str>,
    /// Whether an unknown key is named with the prefix too (`ready.notfy_fd`); `[timeouts]`'s
    /// are named bare, as top-level keys.
    unknown_prefixed: bool,
}

impl<'a> Scope<'a> {
    fn new(
        service: Option<&'a str>,
        prefix: impl Into<Cow<'a, str>>,
        unknown_prefixed: bool,
    ) -> Self {
        Scope {
            service,
            prefix: prefix.into(),
            unknown_prefixed,
        }
    }

    /// `key` as errors name it.
    fn full(&self, key: &str) -> String {
        match self.prefix.as_ref() {
            "" => key.to_owned(),
            prefix => format!("{prefix}.{key}"),
        }
    }

    /// The error for a key that is not one of `known`, with the closest as a suggestion.
    fn unknown(&self, key: &str, known: &[&str]) -> ErrorKind {
        let suggestion = suggest(key, known.iter().copied());
        match self.unknown_prefixed {
            true => ErrorKind::UnknownKey {
                key: self.full(key),
                suggestion: suggestion.map(|s| self.full(&s)),
            },
            false => ErrorKind::UnknownKey {
                key: key.to_owned(),
                suggestion,
            },
        }
    }
}

/// One key's value, with what its parser may need.
struct Field<'f, 's, 'i> {
    sink: &'f mut Sink<'s>,
    service: Option<&'f str>,
    /// The key as its table spells it.
    key: &'static str,
    /// The section's prefix in errors (see [`Scope`]).
    prefix: &'f str,
    value: &'f Spanned<DeValue<'i>>,
    /// Where the key starts, and its line.
    offset: usize,
    line: usize,
}

impl<'f, 'i> Field<'f, '_, 'i> {
    /// The value, borrowed for as long as the table it is in (not only as long as `self`).
    fn v(&self) -> &'f DeValue<'i> {
        self.value.get_ref()
    }

    /// A duration that is 0 or at least `min`.
    fn delay(&self, min: Duration) -> Result<Duration, ErrorKind> {
        values::zero_or_at_least(values::duration(self.v())?, self.key, min)
    }
}

/// Reads `table` into `draft` through `keys`: an unknown key is reported with a suggestion, a
/// parser's error with the key's full name and line. `admit` sees every known key first and may
/// skip it (returning false) after reporting what it found.
fn walk<T>(
    sink: &mut Sink<'_>,
    scope: &Scope<'_>,
    table: &DeTable<'_>,
    keys: &Keys<T>,
    draft: &mut T,
    mut admit: impl FnMut(&mut T, &mut Field<'_, '_, '_>) -> bool,
) {
    let names: Vec<&'static str> = keys.iter().map(|(k, _)| *k).collect();
    let mut each = |i: usize, f: &mut Field<'_, '_, '_>| match keys.get(i) {
        Some((_, parse)) if admit(draft, f) => parse(draft, f),
        _ => Ok(()),
    };
    walk_names(sink, scope, table, &names, &mut each);
}

/// [`walk`]'s part that does not depend on the draft's type, compiled once: `each` reads the
/// value of the key at an index of `names`.
fn walk_names(
    sink: &mut Sink<'_>,
    scope: &Scope<'_>,
    table: &DeTable<'_>,
    names: &[&'static str],
    each: &mut dyn FnMut(usize, &mut Field<'_, '_, '_>) -> Result<(), ErrorKind>,
) {
    for (key, value) in in_file_order(table) {
        let offset = key.span().start;
        let found = names
            .iter()
            .enumerate()
            .find(|(_, k)| **k == key.get_ref().as_ref());
        let Some((i, &name)) = found else {
            let kind = scope.unknown(key.get_ref(), names);
            sink.push(offset, scope.service, None, kind);
            continue;
        };
        let line = sink.lines.line(offset);
        let mut field = Field {
            sink,
            service: scope.service,
            key: name,
            prefix: &scope.prefix,
            value,
            offset,
            line,
        };
        if let Err(kind) = each(i, &mut field) {
            sink.push(offset, scope.service, Some(&scope.full(name)), kind);
        }
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
            let message = e.message().to_owned();
            sink.push(offset, None, None, ErrorKind::Syntax { message });
        }
        return None;
    }
    let mut draft = (file, RawFile::default());
    let scope = Scope::new(None, "", false);
    walk(
        &mut sink,
        &scope,
        doc.get_ref(),
        TOP_KEYS,
        &mut draft,
        |_, _| true,
    );
    Some(draft.1)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every section, as the key tables define them.
    fn every_key() -> Vec<&'static str> {
        fn names<T>(keys: &Keys<T>) -> impl Iterator<Item = &'static str> + '_ {
            keys.iter().map(|(k, _)| *k)
        }
        names(TOP_KEYS)
            .chain(names(TIMEOUT_KEYS))
            .chain(names(LOG_KEYS))
            .chain(names(service::SERVICE_KEYS))
            .chain(names(controls::CONTROL_KEYS))
            .chain(names(service::READY_KEYS))
            .chain(names(checks::CHECK_KEYS))
            .chain(names(checks::HEALTH_CHECK_KEYS))
            .chain(names(API_KEYS))
            .collect()
    }

    /// docs/config.md cannot fall behind the key tables: each key is named there as `key`.
    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../../docs/config.md");
        let missing: Vec<&str> = every_key()
            .into_iter()
            .filter(|k| !docs.contains(&format!("`{k}`")))
            .collect();
        assert_eq!(
            missing,
            Vec::<&str>::new(),
            "keys missing from docs/config.md"
        );
    }

    /// A service reads every process-control key, as `[defaults]` does.
    #[test]
    fn services_take_every_control_key() {
        let missing: Vec<&str> = controls::CONTROL_KEYS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !service::SERVICE_KEYS.iter().any(|(s, _)| s == k))
            .collect();
        assert_eq!(missing, Vec::<&str>::new());
    }

    #[test]
    fn lines_maps_offsets() {
        let l = Lines::new("a\nbb\n\nc");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(1), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(5), 3);
        assert_eq!(l.line(6), 4);
    }
}
