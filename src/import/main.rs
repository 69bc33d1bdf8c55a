//! pidone-import: turns a supervisord, Procfile or process-compose configuration into a pidone
//! TOML file on stdout. A companion binary of pidone (`pidone import` runs it), so that its
//! parsers cost the PID-1 binary nothing.
//!
//! Exit status: 0 when everything was carried over, 1 when something was not (listed on stderr and
//! marked in the output; `--lossy` makes that 0), 2 for a usage error or a file that cannot be
//! parsed (with its file, line and reason).

mod compose;
mod dotenv;
mod ini;
mod out;
mod procfile;
mod pyformat;
mod supervisord;
mod supervisord_logs;
mod words;
mod yaml;

use std::io::Write;
use std::path::PathBuf;

const USAGE: &str = "usage: pidone import [--lossy] supervisord|procfile|process-compose FILE";

fn main() {
    std::process::exit(run(std::env::args_os().skip(1).collect()));
}

fn run(args: Vec<std::ffi::OsString>) -> i32 {
    let mut lossy = false;
    let mut rest = Vec::new();
    for arg in args {
        match arg.to_str() {
            Some("--lossy") => lossy = true,
            Some("-h" | "--help") => {
                println!(
                    "{USAGE}\n\nPrints the pidone configuration on stdout; what could not be carried over is marked\nin it and listed on stderr (exit 1, unless --lossy). See docs/migration.md."
                );
                return 0;
            }
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                eprintln!("pidone import: unknown option {s}\n{USAGE}");
                return 2;
            }
            _ => rest.push(arg),
        }
    }
    let [format, file] = rest.as_slice() else {
        eprintln!("pidone import: expected a format and a file\n{USAGE}");
        return 2;
    };
    let path = PathBuf::from(file);
    let result = match format.to_str() {
        Some("supervisord" | "supervisor") => supervisord::import(&path),
        Some("procfile" | "Procfile") => procfile::import(&path),
        Some("process-compose" | "compose") => compose::import(&path),
        _ => {
            eprintln!(
                "pidone import: unknown format {format:?} (supervisord, procfile, process-compose)\n{USAGE}"
            );
            return 2;
        }
    };
    let doc = match result {
        Ok(doc) => doc,
        Err(err) => {
            eprintln!("pidone import: {err}");
            return 2;
        }
    };
    let text = out::render(&doc);
    if std::io::stdout()
        .write_all(text.as_bytes())
        .and_then(|()| std::io::stdout().flush())
        .is_err()
    {
        eprintln!("pidone import: cannot write to stdout");
        return 2;
    }
    // Copies of one program (numprocs) repeat its notes: list each once.
    let mut lost: Vec<&out::Note> = Vec::new();
    for note in doc.lost() {
        if !lost
            .iter()
            .any(|n| n.place == note.place && n.text == note.text)
        {
            lost.push(note);
        }
    }
    for note in &lost {
        eprintln!(
            "pidone import: not carried over: {}: {}",
            note.place, note.text
        );
    }
    if lost.is_empty() || lossy {
        0
    } else {
        eprintln!(
            "pidone import: {} setting(s) not carried over (marked in the output); --lossy accepts that",
            lost.len()
        );
        1
    }
}
