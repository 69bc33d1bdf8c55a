//! Finding the config files: `--config`, `$PIDONE_CONFIG`, `/etc/pidone.toml` +
//! `/etc/pidone.d/*.toml`, or go-overlay's `/services.toml`.

use std::io;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ErrorKind, Location};
use super::model::Env;

/// Picks the config files, in the order they are read.
///
/// `cli` are the `--config` paths; `env` is pidone's environment (for `PIDONE_CONFIG`); `root`
/// is `/` in production and stands in for it when looking for the default files. A directory
/// contributes its `*.toml` files (not hidden ones), sorted by name. An explicit path (`--config`
/// or `PIDONE_CONFIG`) that is missing, unreadable or an empty directory is an error. An empty
/// result means there is no config: single-program mode.
pub fn resolve_sources(
    cli: &[PathBuf],
    env: &Env,
    root: &Path,
) -> Result<Vec<PathBuf>, Vec<ConfigError>> {
    let explicit: Vec<PathBuf> = if !cli.is_empty() {
        cli.to_vec()
    } else if let Some(path) = env.get("PIDONE_CONFIG").filter(|p| !p.is_empty()) {
        vec![PathBuf::from(path)]
    } else {
        Vec::new()
    };
    if !explicit.is_empty() {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for path in &explicit {
            match expand_source(path) {
                Ok(found) if found.is_empty() => errors.push(source_error(
                    path,
                    "no *.toml files in this directory".to_owned(),
                )),
                Ok(found) => files.extend(found),
                Err(e) => errors.push(source_error(path, e.to_string())),
            }
        }
        return if errors.is_empty() {
            Ok(files)
        } else {
            Err(errors)
        };
    }
    let mut files = Vec::new();
    let main = root.join("etc/pidone.toml");
    if main.is_file() {
        files.push(main);
    }
    let dir = root.join("etc/pidone.d");
    if dir.is_dir() {
        files.extend(expand_source(&dir).map_err(|e| vec![source_error(&dir, e.to_string())])?);
    }
    if files.is_empty() {
        let legacy = root.join("services.toml");
        if legacy.is_file() {
            files.push(legacy);
        }
    }
    Ok(files)
}

fn source_error(path: &Path, error: String) -> ConfigError {
    ConfigError {
        location: Location::None,
        service: None,
        key: None,
        kind: ErrorKind::Read {
            path: path.to_owned(),
            error,
        },
    }
}

/// A file is itself; a directory is its `*.toml` files sorted by name.
pub(super) fn expand_source(path: &Path) -> io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        let full = entry.path();
        if full.is_file() {
            files.push(full);
        }
    }
    files.sort();
    Ok(files)
}
