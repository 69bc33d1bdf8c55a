//! The drop-in directory (`[api] dropin_dir`): one more source of the configuration, and the
//! place `pidone add` writes services to and `pidone remove` deletes them from.
//!
//! Its `*.toml` files (hidden ones skipped) are read after every other file, in name order, so a
//! reload and a restart of pidone both see them; files already read (the directory is also a
//! `--config` directory, or `/etc/pidone.d`) are not read twice. A directory that does not exist
//! yet holds none: `add` creates it. A drop-in file is an ordinary configuration file, except that
//! it may not move the drop-in directory itself.
//!
//! `add` and `remove` first load the configuration as if their change were made (an [`Edit`]),
//! with the same loader as a reload; only a valid result is written, then applied.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ErrorKind, Location};
use super::load::{parse_text, read};
use super::parse::RawFile;

/// A change to the drop-in directory, which loading makes in what it reads, not on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// A new file for the service `name` ([`file_of`]), holding `text`.
    Add { name: String, text: String },
    /// The drop-in file `path` is gone.
    Remove { path: PathBuf },
}

/// The file a service added as `name` is written to in `dir`.
pub fn file_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

/// True when `file` is in the drop-in directory `dir` (however either is spelled).
pub fn holds(dir: &Path, file: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    file.parent()
        .is_some_and(|parent| canonical(parent) == canonical(dir))
}

/// Adds the drop-in files to `sources` and their parsed form to `files` (`files[i]` is the file
/// `sources[i]`, `None` if it could not be read or parsed), with `edit` made; returns the
/// drop-in directory, if one of the files names one.
pub(super) fn extend(
    sources: &mut Vec<PathBuf>,
    files: &mut Vec<Option<RawFile>>,
    edit: Option<&Edit>,
    errors: &mut Vec<ConfigError>,
) -> Option<PathBuf> {
    let (dir, at) = configured(sources, files)?;
    let mut more: Vec<PathBuf> = gather(&dir, sources, &at, errors);
    let mut added = None;
    match edit {
        Some(Edit::Add { name, text }) => {
            let path = file_of(&dir, name);
            if std::fs::symlink_metadata(&path).is_ok() {
                errors.push(ConfigError {
                    location: Location::File { path, line: None },
                    service: Some(name.clone()),
                    key: None,
                    kind: ErrorKind::BadValue {
                        message: "this file already exists".to_string(),
                    },
                });
            } else {
                more.push(path.clone());
                more.sort();
                added = Some((path, text));
            }
        }
        Some(Edit::Remove { path }) => {
            more.retain(|p| p != path);
            // A drop-in among the other sources (the directory is read as one of them); a file
            // outside the directory is never removed.
            let listed = sources.iter().position(|p| p == path);
            if let Some(i) = listed.filter(|_| holds(&dir, path)) {
                if let Some(file) = files.get_mut(i) {
                    *file = Some(RawFile::default());
                }
            }
        }
        None => {}
    }
    for path in more {
        let text = match &added {
            Some((new, text)) if *new == path => Ok((*text).clone()),
            _ => read(&path),
        };
        let file = parse_text(sources.len(), &path, text, errors);
        if let Some((_, line)) = file.as_ref().and_then(|f| f.api.dropin_dir.as_ref()) {
            errors.push(ConfigError {
                location: Location::File {
                    path: path.clone(),
                    line: Some(*line),
                },
                service: None,
                key: Some("api.dropin_dir".to_string()),
                kind: ErrorKind::BadValue {
                    message: "a drop-in file cannot set the drop-in directory".to_string(),
                },
            });
        }
        files.push(file);
        sources.push(path);
    }
    Some(dir)
}

/// The directory named by the last of `files` that sets `dropin_dir` (relative to that file's
/// directory), with where it is set, for errors.
fn configured(sources: &[PathBuf], files: &[Option<RawFile>]) -> Option<(PathBuf, Location)> {
    let (index, (name, line)) = (files.iter().enumerate().rev())
        .find_map(|(i, f)| Some((i, f.as_ref()?.api.dropin_dir.as_ref()?)))?;
    let config = sources.get(index)?;
    let base = config.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = base.unwrap_or(Path::new(".")).join(name);
    let at = Location::File {
        path: config.clone(),
        line: Some(*line),
    };
    Some((dir, at))
}

/// The `*.toml` files of `dir` not already among `sources`, in name order; none when `dir` does
/// not exist. A `dir` that is not a directory, or cannot be read, is an error at `at`.
fn gather(
    dir: &Path,
    sources: &[PathBuf],
    at: &Location,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    let listed = match std::fs::metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Ok(meta) if !meta.is_dir() => Err(io::Error::other("not a directory")),
        Ok(_) => super::sources::expand_source(dir),
        Err(err) => Err(err),
    };
    let mut files = match listed {
        Ok(files) => files,
        Err(err) => {
            errors.push(ConfigError {
                location: at.clone(),
                service: None,
                key: Some("api.dropin_dir".to_string()),
                kind: ErrorKind::Read {
                    path: dir.to_path_buf(),
                    error: err.to_string(),
                },
            });
            return Vec::new();
        }
    };
    // A list, not a set: a few files, and a set of paths costs the binary a kilobyte.
    let known: Vec<PathBuf> = (sources.iter())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    files.retain(|f| !std::fs::canonicalize(f).is_ok_and(|c| known.contains(&c)));
    files
}

/// Writes `text` to the new drop-in file `path`, creating its directory (mode 0755) if missing:
/// first to a hidden name in the same directory (which the loader skips), flushed to disk, then
/// renamed into place, so that nothing ever reads half a file. The file's mode is 0600: it may
/// hold environment values. A file already at `path` is left alone, and is an error.
pub fn write(path: &Path, text: &str) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other("not a file path"));
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".new");
    let temp = dir.join(hidden);
    // A temporary file left by a crash in the middle of this.
    let _ = std::fs::remove_file(&temp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    // The rename reaches the disk with the directory (the file is in place either way).
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Deletes the drop-in file `path`; one already gone is no error.
pub fn delete(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
