//! `depends_on` as written: a name, an array of names (each `"ready"`), or a table of
//! name = condition, inline or as a `[services.depends_on]` sub-table.

use toml::de::DeValue;

use super::Field;
use super::values::{names_with_lines, wrong};
use crate::config::conditions::{Condition, NAMES};
use crate::config::error::{ErrorKind, suggest};
use crate::config::limits::{self, too_many};

/// The names of `depends_on`, each with its line, and their conditions in the same order: each
/// with whether it was spelt `"succeeded"`; empty for the name and array forms (all `"ready"`).
pub(in crate::config) type Depends = (Vec<(String, usize)>, Vec<(Condition, bool)>);

/// Reads `depends_on`. A table entry with an unknown condition is reported at its own line (key
/// `depends_on.NAME`).
pub(super) fn depends_on(f: &mut Field<'_, '_, '_>) -> Result<Depends, ErrorKind> {
    let DeValue::Table(table) = f.v() else {
        return Ok((names_with_lines(&f.sink.lines, f.v(), f.line)?, Vec::new()));
    };
    if let Some(kind) = too_many("dependencies", table.len(), limits::MAX_DEPENDENCIES) {
        return Err(kind);
    }
    let (mut names, mut conditions) = (Vec::new(), Vec::new());
    for (key, value) in super::in_file_order(table) {
        let name = key.get_ref().to_string();
        let offset = key.span().start;
        // A bad condition is reported and read as "ready": the name stays a dependency, so
        // that `wait_after` and the start order say nothing more of it.
        let c = condition(value.get_ref()).unwrap_or_else(|kind| {
            let key = format!("depends_on.{name}");
            f.sink.push(offset, f.service, Some(&key), kind);
            (Condition::Ready, false)
        });
        names.push((name, f.sink.lines.line(offset)));
        conditions.push(c);
    }
    Ok((names, conditions))
}

/// One table entry's condition.
fn condition(v: &DeValue<'_>) -> Result<(Condition, bool), ErrorKind> {
    let DeValue::String(text) = v else {
        return Err(wrong(
            "a condition: \"ready\", \"started\", \"completed\" or \"succeeded\"",
            v,
        ));
    };
    Condition::parse(text).ok_or_else(|| {
        let names = NAMES.iter().map(|(n, _)| *n);
        let hint = match suggest(text, names) {
            Some(s) => format!(" (did you mean {s:?}?)"),
            None => " (ready, started, completed or succeeded)".to_owned(),
        };
        ErrorKind::BadValue {
            message: format!("unknown condition {text:?}{hint}"),
        }
    })
}
