//! Loading: reads each file, hands it to `parse`, merges `[timeouts]` across files, then lets
//! `resolve` check the services against each other and the outside world; every error of every
//! stage is collected and returned sorted by file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::dropin::{self, Edit};
use super::error::{ConfigError, ErrorKind, Location};
use super::limits;
use super::model::{Config, Env, Timeouts};
use super::parse::{self, RawControls, RawFile, RawService, RawTimeout};
use super::resolve::Loader;

/// Everything outside the config files that loading depends on, so tests can supply their own.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// pidone's own environment: inherited by every service, and the source of `${VAR}` values
    /// and of the `PIDONE_*` / `GO_OVERLAY_*` selection variables.
    pub env: Env,
    /// pidone's effective uid and gid: a service whose `user` is someone else needs the uid to
    /// be 0; one that names the user and group pidone already runs as is not switched.
    pub euid: u32,
    pub egid: u32,
    /// The directory holding the image's `etc/passwd` and `etc/group`: `/` in production. Programs,
    /// scripts and env files are looked up on the real file system regardless.
    pub root: PathBuf,
    /// The cgroup v2 controllers pidone could enable, or why it cannot manage cgroups.
    pub cgroups: Result<Vec<String>, String>,
}

/// What pidone's parent gave to pidone itself, never to a service: its sd_notify socket and the
/// sockets it passed (systemd's socket activation).
const PIDONES_OWN: [&str; 4] = [
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

impl LoadContext {
    /// The context of the running process. Variables whose name or value is not UTF-8 are
    /// skipped: they cannot be referenced from TOML, and services still inherit nothing else.
    pub fn from_process() -> LoadContext {
        LoadContext {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| !PIDONES_OWN.contains(&k.as_str()))
                .collect(),
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
            root: PathBuf::from("/"),
            cgroups: crate::os::cgroup::detect(),
        }
    }
}

/// Loads and validates the config files `sources`, in order.
///
/// Returns every problem found, sorted by file and line; environment problems come last.
pub fn load(sources: &[PathBuf], ctx: &LoadContext) -> Result<Config, Vec<ConfigError>> {
    load_edited(sources, ctx, None)
}

/// [`load`], as if the drop-in directory had `edit` made to it: how `pidone add` and `pidone
/// remove` check their change before they make it.
pub fn load_edited(
    sources: &[PathBuf],
    ctx: &LoadContext,
    edit: Option<&Edit>,
) -> Result<Config, Vec<ConfigError>> {
    let texts = sources.iter().map(|p| read(p)).collect();
    load_all(sources, texts, ctx, edit)
}

/// One config file's text, or the error that says why it cannot be read.
pub(super) fn read(path: &Path) -> Result<String, Box<ConfigError>> {
    let read = crate::io::files::read_text(path, limits::MAX_CONFIG_FILE_BYTES);
    read.map_err(|e| {
        Box::new(ConfigError {
            location: Location::File {
                path: path.to_path_buf(),
                line: None,
            },
            service: None,
            key: None,
            kind: ErrorKind::Read {
                path: path.to_path_buf(),
                error: e.to_string(),
            },
        })
    })
}

/// [`load`] of files already read: `texts[i]` is the text of `sources[i]`, or why it could not
/// be read. Public for the fuzz target, which feeds its input without a file.
#[doc(hidden)]
pub fn load_texts(
    sources: &[PathBuf],
    texts: Vec<Result<String, Box<ConfigError>>>,
    ctx: &LoadContext,
) -> Result<Config, Vec<ConfigError>> {
    load_all(sources, texts, ctx, None)
}

/// Parses one file's text (or takes the error of its reading) as source number `index`; `None`
/// when it could not be read or parsed, its errors reported.
pub(super) fn parse_text(
    index: usize,
    path: &Path,
    text: Result<String, Box<ConfigError>>,
    errors: &mut Vec<ConfigError>,
) -> Option<RawFile> {
    match text {
        Ok(text) => parse::parse_file(index, path, &text, errors),
        Err(e) => {
            errors.push(*e);
            None
        }
    }
}

/// [`load_texts`], the files of the drop-in directory added with `edit` made.
fn load_all(
    sources: &[PathBuf],
    texts: Vec<Result<String, Box<ConfigError>>>,
    ctx: &LoadContext,
    edit: Option<&Edit>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut sources = sources.to_vec();
    let mut files: Vec<Option<RawFile>> = (sources.iter().zip(texts).enumerate())
        .map(|(index, (path, text))| parse_text(index, path, text, &mut errors))
        .collect();
    let dropin_dir = dropin::extend(&mut sources, &mut files, edit, &mut errors);
    let sources = sources.as_slice();
    let mut raws: Vec<RawService> = Vec::new();
    let mut timeout_entries = Vec::new();
    let mut defaults = RawControls::default();
    // `[log]` keys: a file read later overrides one read before.
    let mut log = crate::config::LogSettings::default();
    let mut apis = Vec::new();
    let mut stack_env_files = Vec::new();
    let mut complete = true;
    #[cfg(feature = "s6")]
    let mut shutdown_scripts: Vec<Vec<String>> = Vec::new();
    for (index, file) in files.into_iter().enumerate() {
        match file {
            Some(file) => {
                timeout_entries.extend(file.timeouts.into_iter().map(|t| (index, t)));
                log.timestamps = file.log_timestamps.unwrap_or(log.timestamps);
                log.json = file.log_json.unwrap_or(log.json);
                apis.push((index, file.api));
                stack_env_files.extend(file.env_file.map(|(paths, line)| (index, paths, line)));
                raws.extend(file.services);
                #[cfg(feature = "s6")]
                shutdown_scripts.extend(file.shutdown_scripts.into_iter().flat_map(|(l, _)| l));
                if let Some((more, _)) = file.defaults {
                    merge_defaults(sources, &mut defaults, more, &mut errors);
                }
            }
            None => complete = false,
        }
    }
    let timeouts = merge_timeouts(sources, &timeout_entries, &mut errors);
    let mut api = super::api::resolve(sources, apis, &mut errors);
    api.dropin_dir = dropin_dir;
    for raw in &mut raws {
        raw.controls.fill(&defaults);
    }
    // Cross-service checks need every service: with a file missing they would only add noise.
    if complete {
        let mut loader = Loader {
            sources,
            ctx,
            timeouts,
            raws: &raws,
            errors: &mut errors,
            users: None,
            env_bytes: 0,
            stack_env: Default::default(),
        };
        loader.read_stack_env(&stack_env_files);
        let services = loader.run();
        if errors.is_empty() {
            let cgroups = ctx.cgroups.clone();
            return Ok(Config {
                timeouts,
                log,
                services,
                cgroups,
                api,
                #[cfg(feature = "s6")]
                shutdown_scripts,
            });
        }
    }
    Err(sorted(sources, errors))
}

/// Sorts errors by file (in source order) and line, keeping discovery order within a line, drops
/// exact duplicates (the same problem found once per instance), and keeps the first
/// [`limits::MAX_ERRORS`], then one line saying how many more there are.
fn sorted(sources: &[PathBuf], mut errors: Vec<ConfigError>) -> Vec<ConfigError> {
    errors.sort_by_key(|e| match &e.location {
        Location::None => (0, 0, 0),
        Location::File { path, line } => (
            1,
            sources.iter().position(|s| s == path).unwrap_or(usize::MAX),
            line.unwrap_or(0),
        ),
        Location::Env { .. } => (2, 0, 0),
    });
    // A set, not a search of what is kept: a file can make hundreds of thousands of errors
    // (every instance of every service), and the search took half an hour on one of them.
    let mut seen = std::collections::HashSet::with_capacity(errors.len());
    errors.retain(|e| seen.insert(format!("{e:?}")));
    if errors.len() > limits::MAX_ERRORS {
        let count = errors.len() - limits::MAX_ERRORS;
        errors.truncate(limits::MAX_ERRORS);
        errors.push(ConfigError {
            location: Location::None,
            service: None,
            key: None,
            kind: ErrorKind::MoreErrors { count },
        });
    }
    errors
}

/// Adds one file's `[defaults]` to those of the files before it; a key set in two files is an
/// error at the second.
fn merge_defaults(
    sources: &[PathBuf],
    defaults: &mut RawControls,
    more: RawControls,
    errors: &mut Vec<ConfigError>,
) {
    for (key, (file, line)) in &more.key_lines {
        let Some((first_file, first_line)) = defaults.at(key) else {
            continue;
        };
        let first = sources.get(first_file).cloned().unwrap_or_default();
        errors.push(ConfigError {
            location: Location::File {
                path: sources.get(*file).cloned().unwrap_or_default(),
                line: Some(*line),
            },
            service: None,
            key: Some(format!("defaults.{key}")),
            kind: ErrorKind::BadValue {
                message: format!("already set at {}:{first_line}", first.display()),
            },
        });
    }
    defaults.fill(&more);
}

/// Applies the `[timeouts]` entries of every file to the defaults; a key set in two places is
/// an error at the second.
fn merge_timeouts(
    sources: &[PathBuf],
    entries: &[(usize, RawTimeout)],
    errors: &mut Vec<ConfigError>,
) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    for (file, entry) in entries {
        let (file, line) = (*file, entry.line);
        let path = sources.get(file).cloned().unwrap_or_default();
        if let Some(&(first_file, first_line)) = seen.get(entry.key) {
            let first = sources.get(first_file).cloned().unwrap_or_default();
            errors.push(ConfigError {
                location: Location::File {
                    path,
                    line: Some(line),
                },
                service: None,
                key: Some(format!("timeouts.{}", entry.key)),
                kind: ErrorKind::BadValue {
                    message: format!("already set at {}:{first_line}", first.display()),
                },
            });
            continue;
        }
        seen.insert(entry.key, (file, line));
        if !entry.value.is_zero() {
            *(entry.slot)(&mut timeouts) = entry.value;
        }
    }
    timeouts
}
