//! `pidone import procfile FILE`: Heroku/foreman `name: command` lines. Each command runs under
//! `/bin/sh -c`, as foreman runs it; each process gets foreman's `PORT` (5000, 5100, ...), and
//! restarts when it exits, as Heroku restarts a dyno.

use std::path::Path;

use crate::out::{Doc, Place, Service, Value};
use crate::words;

/// foreman's first port, and the step between process types.
const BASE_PORT: i64 = 5000;
const PORT_STEP: i64 = 100;

pub fn import(path: &Path) -> Result<Doc, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let mut doc = Doc {
        source: file.clone(),
        format: "Procfile",
        ..Doc::default()
    };
    for (n, raw) in text.lines().enumerate() {
        let place = Place {
            file: file.clone(),
            line: n + 1,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            return Err(format!("{place}: expected 'name: command', found {line:?}"));
        };
        let name = name.trim();
        let command = command.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "{place}: bad process type {name:?}: use letters, digits, '_' and '-'"
            ));
        }
        if command.is_empty() {
            return Err(format!("{place}: process type {name:?} has no command"));
        }
        if doc.services.iter().any(|s| s.name == name) {
            return Err(format!("{place}: process type {name:?} is defined twice"));
        }
        let port = BASE_PORT + PORT_STEP * doc.services.len() as i64;
        let mut s = Service::new(name);
        s.set(
            "command",
            Value::strs(&["/bin/sh", "-c", &words::literal(command)]),
        );
        s.set("restart", Value::str("always"));
        s.set(
            "env",
            Value::Table(vec![("PORT".into(), Value::Str(port.to_string()))]),
        );
        if name == "release" {
            s.note(&place, false, "Heroku runs 'release' once per deploy, before the other processes; here it is a service like the others (make it type = \"oneshot\" and depends_on it if it must run first)");
        }
        doc.services.push(s);
    }
    if doc.services.is_empty() {
        return Err(format!("{file}: no process types"));
    }
    crate::dotenv::carry_over(&mut doc, path, "foreman");
    Ok(doc)
}
