//! supervisord's output options (`stdout_logfile`, `stderr_logfile`, `redirect_stderr`, the
//! rotation sizes) into pidone's one output setting per service: `log`, or `log_file` (which takes
//! both streams).

use crate::ini::{Entry, Section};
use crate::out::{Place, Service, Value};
use crate::pyformat::{self, Target, Vars};
use crate::supervisord::boolean;

/// Where supervisord sends one stream.
#[derive(Debug, Clone, PartialEq)]
enum Dest {
    /// A file in `childlogdir` that supervisord names and keeps (the default).
    Auto,
    Discard,
    /// supervisord's own stdout or stderr (`/dev/stdout`, `/dev/fd/2`...).
    Console,
    File(String),
}

fn dest(section: &Section, key: &str, vars: &Vars<'_>) -> Result<(Dest, Option<Entry>), String> {
    let Some(e) = section.get(key) else {
        return Ok((Dest::Auto, None));
    };
    let place = Place {
        file: section.place.file.clone(),
        line: e.line,
    };
    let v = e.value.trim();
    let d = match v {
        "" | "AUTO" => Dest::Auto,
        "NONE" => Dest::Discard,
        "/dev/stdout" | "/dev/stderr" | "/dev/fd/1" | "/dev/fd/2" | "/proc/self/fd/1"
        | "/proc/self/fd/2" => Dest::Console,
        _ => Dest::File(
            pyformat::expand(v, vars, Target::Expanding)
                .map_err(|r| format!("{place}: {key}: {}", r.unwrap_or_default()))?,
        ),
    };
    Ok((d, Some(e.clone())))
}

pub fn map(section: &Section, vars: &Vars<'_>, s: &mut Service) -> Result<(), String> {
    let place_of = |e: Option<&Entry>| Place {
        file: section.place.file.clone(),
        line: e.map_or(section.place.line, |e| e.line),
    };
    let redirect = match section.get("redirect_stderr") {
        None => false,
        Some(e) => boolean(e.value.trim()).ok_or_else(|| {
            format!(
                "{}: redirect_stderr: not a boolean: {:?}",
                place_of(Some(e)),
                e.value
            )
        })?,
    };
    let (out, out_entry) = dest(section, "stdout_logfile", vars)?;
    let (err, err_entry) = if redirect {
        (out.clone(), None)
    } else {
        dest(section, "stderr_logfile", vars)?
    };
    let at = place_of(out_entry.as_ref().or(err_entry.as_ref()));
    match (&out, &err) {
        (Dest::Auto, Dest::Auto) => s.note(&at, false, "output: supervisord kept it in files under childlogdir; pidone prints it on its own stdout and stderr as [name] lines (set log_file for a file)"),
        (Dest::Console, Dest::Console) => s.set("log", Value::str("raw")),
        (Dest::Discard, Dest::Discard) => s.set("log", Value::str("null")),
        (Dest::File(a), Dest::File(b)) if a == b => s.set("log_file", Value::str(a)),
        _ => {
            match &out {
                Dest::File(path) => s.set("log_file", Value::str(path)),
                Dest::Console => s.set("log", Value::str("raw")),
                Dest::Discard => s.set("log", Value::str("null")),
                Dest::Auto => {}
            }
            s.note(&at, true, format!("output: stdout goes to {} and stderr to {}: pidone sends both streams of a service to one place ({})", describe(&out), describe(&err), describe(&out)));
        }
    }
    for (stream, d) in [("stdout", &out), ("stderr", &err)] {
        if !matches!(d, Dest::File(_)) || (stream == "stderr" && (redirect || out == err)) {
            continue;
        }
        let key = format!("{stream}_logfile_maxbytes");
        let entry = section.get(&key);
        let max = entry.map_or("50MB", |e| e.value.trim());
        if max != "0" {
            s.note(&place_of(entry.or(out_entry.as_ref())), true, format!("{key}={max} (rotation): pidone appends to log_file without rotating it; rotate it outside (logrotate with copytruncate)"));
        }
    }
    Ok(())
}

fn describe(d: &Dest) -> String {
    match d {
        Dest::Auto => "supervisord's AUTO file".into(),
        Dest::Discard => "nowhere (NONE)".into(),
        Dest::Console => "the console".into(),
        Dest::File(p) => format!("{p:?}"),
    }
}
