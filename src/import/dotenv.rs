//! The `.env` process-compose (unless `is_dotenv_disabled`) and foreman load for every process,
//! from the directory they run in, carried over as pidone's top-level `env_file`. The `.env`
//! beside the imported file is taken for the one the tool would read.

use std::path::Path;

use crate::out::{Doc, Place, Value};
use crate::words;

/// Writes `env_file` for the `.env` beside `source` (read by `tool`), if there is one that
/// pidone reads; one pidone would refuse is noted as lost, each problem with its line.
pub fn carry_over(doc: &mut Doc, source: &Path, tool: &str) {
    let dir = match source.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file = dir.join(".env");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let path = std::path::absolute(&file).unwrap_or(file);
    let shown = path.display().to_string();
    match pidone::config::envfile::parse(&text) {
        Ok(_) => {
            doc.keys
                .push(("env_file".into(), Value::Str(words::literal(&shown))));
            let place = Place {
                file: shown,
                line: 1,
            };
            let text = format!(
                "the .env {tool} loads for every process: {tool} reads the one of the directory it runs in, this is the one beside {}; pidone reads it strictly (no escapes, inline comments or ${{VAR}} in values)",
                doc.source
            );
            doc.note(&place, false, text);
        }
        Err(problems) => {
            for p in problems {
                let place = Place {
                    file: shown.clone(),
                    line: p.line,
                };
                let text =
                    format!("{p}: pidone would refuse this .env, so it is not written as env_file");
                doc.note(&place, true, text);
            }
        }
    }
}
