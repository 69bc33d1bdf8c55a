//! Configuration errors: where (file and line, or environment variable), which service, which
//! key, and what is wrong.
//!
//! A loaded config either is valid or comes with every problem found, so a user fixes them all in
//! one round. `Display` prints one line per error in the usual compiler shape:
//! `/etc/pidone.toml:12: service "web": key "depends_on": unknown service "dbb" (did you mean "db"?)`.

use std::fmt;
use std::path::PathBuf;

/// Where a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A config file; `line` is 1-based, or `None` when the problem concerns the whole file.
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable of pidone, e.g. `PIDONE_ENABLE_WEB`.
    Env { var: String },
    /// Nowhere in particular (e.g. a `--config` directory that cannot be read is named in the
    /// message itself).
    None,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}: ", path.display()),
            Location::File { path, line: None } => write!(f, "{}: ", path.display()),
            Location::Env { var } => write!(f, "environment variable {var}: "),
            Location::None => Ok(()),
        }
    }
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is.
    pub location: Location,
    /// The service it concerns, by its configured (base) name, if any.
    pub service: Option<String>,
    /// The key it concerns (`"depends_on"`, `"timeouts.global_shutdown_timeout"`), if any.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What can be wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file or directory could not be read.
    Read { path: PathBuf, error: String },
    /// The TOML itself is malformed.
    Syntax { message: String },
    /// A key pidone does not know.
    UnknownKey {
        key: String,
        suggestion: Option<String>,
    },
    /// A value of the wrong TOML type.
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A value of the right type that is not allowed (an unknown restart policy, a negative
    /// count, an unknown signal name, ...). `message` says which values are.
    BadValue { message: String },
    /// A duration that cannot be parsed.
    BadDuration { value: String },
    /// A key that must be present is missing.
    Missing,
    /// Two keys that cannot be used together.
    Conflict { other: String },
    /// A service name outside `[A-Za-z0-9_.-]+`.
    InvalidName { name: String },
    /// A service name used twice; `first` is where it was first defined.
    DuplicateName { name: String, first: String },
    /// A dependency or selection naming a service that does not exist.
    UnknownService {
        name: String,
        suggestion: Option<String>,
    },
    /// An enabled service depending on a disabled one. For a dependency on a service with
    /// `instances`, `instances` is how many of them are disabled and how many there are: one
    /// error for the service, not one per instance.
    DisabledDependency {
        name: String,
        instances: Option<(usize, usize)>,
    },
    /// A dependency cycle, already rendered as `a -> b -> a`.
    Cycle { path: String },
    /// A `wait_after` entry for a service that is not in `depends_on`.
    WaitAfterNotDependency { name: String },
    /// A oneshot with `restart = "always"`, which would run it forever.
    OneshotRestartAlways,
    /// `ready`, `checks`, `health_check` or `start_timeout` (named by `key`) on a oneshot.
    NotForOneshot { key: &'static str },
    /// A user or group that cannot be resolved.
    User { message: String },
    /// `user` names someone other than pidone's own user and group, and pidone does not run as
    /// root, so it could not switch. `running` is the name of pidone's uid, if the image has one.
    UserNeedsRoot {
        user: String,
        uid: u32,
        gid: u32,
        euid: u32,
        egid: u32,
        running: Option<String>,
    },
    /// A program or script that cannot be found or is not executable.
    ProgramNotFound { program: String, reason: String },
    /// `${VAR}` without a default, and VAR is not set.
    UndefinedVariable { name: String },
    /// A malformed `${...}`.
    BadExpansion { message: String },
    /// A problem in an `env_file`, with the line in that file.
    EnvFile { path: PathBuf, message: String },
    /// The last line of a list cut at [`super::limits::MAX_ERRORS`]: how many were left out.
    MoreErrors { count: usize },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(service) = &self.service {
            write!(f, "service {service:?}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key {key:?}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ErrorKind::Syntax { message } => write!(f, "TOML syntax error: {message}"),
            ErrorKind::UnknownKey { key, suggestion } => {
                write!(f, "unknown key {key:?}")?;
                did_you_mean(f, suggestion)
            }
            ErrorKind::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::BadValue { message } => write!(f, "{message}"),
            ErrorKind::BadDuration { value } => write!(
                f,
                "bad duration {value:?}: use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\""
            ),
            ErrorKind::Missing => write!(f, "missing"),
            ErrorKind::Conflict { other } => write!(f, "cannot be used together with {other:?}"),
            ErrorKind::InvalidName { name } => write!(
                f,
                "invalid service name {name:?}: use only letters, digits, '_', '.' and '-'"
            ),
            ErrorKind::DuplicateName { name, first } => {
                write!(
                    f,
                    "duplicate service name {name:?} (first defined at {first})"
                )
            }
            ErrorKind::UnknownService { name, suggestion } => {
                write!(f, "unknown service {name:?}")?;
                did_you_mean(f, suggestion)
            }
            ErrorKind::DisabledDependency { name, instances } => {
                write!(f, "depends on disabled service {name:?}")?;
                match instances {
                    Some((off, all)) if off == all => write!(f, " ({all} instances)"),
                    Some((off, all)) => write!(f, " ({off} of its {all} instances)"),
                    None => Ok(()),
                }
            }
            ErrorKind::Cycle { path } => write!(f, "dependency cycle: {path}"),
            ErrorKind::WaitAfterNotDependency { name } => {
                write!(f, "{name:?} is not in depends_on")
            }
            ErrorKind::OneshotRestartAlways => write!(
                f,
                "a oneshot cannot use restart = \"always\" (use \"on-failure\" or \"never\")"
            ),
            ErrorKind::NotForOneshot { key } => {
                let what = match *key {
                    "start_timeout" => "start_timeout does not apply",
                    _ => "ready/checks do not apply",
                };
                write!(f, "a oneshot is up when it exits successfully; {what}")
            }
            ErrorKind::User { message } => write!(f, "{message}"),
            ErrorKind::UserNeedsRoot {
                user,
                uid,
                gid,
                euid,
                egid,
                running,
            } => {
                write!(
                    f,
                    "switching to user {user:?} (uid {uid}, gid {gid}) needs root, "
                )?;
                match running {
                    Some(name) => write!(f, "but pidone runs as {name:?} (uid {euid}, gid {egid})"),
                    None => write!(f, "but pidone runs as uid {euid}, gid {egid}"),
                }
            }
            ErrorKind::ProgramNotFound { program, reason } => {
                write!(f, "program {program:?} {reason}")
            }
            ErrorKind::UndefinedVariable { name } => write!(
                f,
                "undefined variable ${{{name}}} (set it, or give a default: ${{{name}:-value}})"
            ),
            ErrorKind::BadExpansion { message } => write!(f, "{message}"),
            ErrorKind::EnvFile { path, message } => {
                write!(f, "env_file {}: {message}", path.display())
            }
            ErrorKind::MoreErrors { count } => write!(f, "and {count} more errors"),
        }
    }
}

/// How many problems `errors` stands for: each error is one, and the closing "and N more
/// errors" line of a cut list is N.
pub fn problem_count(errors: &[ConfigError]) -> usize {
    errors
        .iter()
        .map(|e| match e.kind {
            ErrorKind::MoreErrors { count } => count,
            _ => 1,
        })
        .sum()
}

fn did_you_mean(f: &mut fmt::Formatter<'_>, suggestion: &Option<String>) -> fmt::Result {
    match suggestion {
        Some(s) => write!(f, " (did you mean {s:?}?)"),
        None => Ok(()),
    }
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
///
/// "Close enough" is an edit distance (with transpositions) of at most a third of the word's
/// length, and at least 1, so `depnds_on` finds `depends_on` but `foo` does not find `log`.
/// Failing that, a candidate that starts with a word of four or more characters is offered, so
/// a truncated `global_shutdown` finds `global_shutdown_timeout`.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let length = word.chars().count();
    let limit = (length / 3).max(1);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    // The distance is at least the difference in length: a candidate too long or too short is
    // skipped without filling its table (a 64 KiB key against every key name, otherwise).
    let close = candidates
        .iter()
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c);
    let prefixed = || {
        candidates
            .iter()
            .copied()
            .filter(|c| length >= 4 && c.starts_with(word))
            .min_by_key(|c| c.len())
    };
    close.or_else(prefixed).map(str::to_owned)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost 1.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let cell = |row: &[usize], k: usize| row.get(k).copied().unwrap_or(usize::MAX - 1);
    // Rows i-1 (`prev`) and i-2 (`before`) of the table while row i is built; row 0 is the
    // distance from "" to each prefix of b.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let left = row.last().copied().unwrap_or(usize::MAX - 1);
            let mut best = (cell(&prev, j + 1) + 1)
                .min(left + 1)
                .min(cell(&prev, j) + usize::from(ca != cb));
            let swapped = i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca);
            if swapped {
                best = best.min(cell(&before, j - 1) + 1);
            }
            row.push(best);
        }
        before = std::mem::replace(&mut prev, row);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("dbb", "db"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggest_finds_close_words_only() {
        let keys = ["depends_on", "restart", "log", "log_file"];
        assert_eq!(suggest("depnds_on", keys), Some("depends_on".to_owned()));
        assert_eq!(suggest("restrat", keys), Some("restart".to_owned()));
        assert_eq!(suggest("foo", keys), None);
        assert_eq!(suggest("lg", keys), Some("log".to_owned()));
        assert_eq!(suggest("depends", keys), Some("depends_on".to_owned()));
        assert_eq!(suggest("res", keys), None);
    }

    #[test]
    fn display_names_file_line_service_and_key() {
        let e = ConfigError {
            location: Location::File {
                path: "/etc/pidone.toml".into(),
                line: Some(12),
            },
            service: Some("web".into()),
            key: Some("depends_on".into()),
            kind: ErrorKind::UnknownService {
                name: "dbb".into(),
                suggestion: Some("db".into()),
            },
        };
        assert_eq!(
            e.to_string(),
            "/etc/pidone.toml:12: service \"web\": key \"depends_on\": unknown service \"dbb\" (did you mean \"db\"?)"
        );
    }

    #[test]
    fn display_of_an_environment_error() {
        let e = ConfigError {
            location: Location::Env {
                var: "PIDONE_ENABLE_WEB".into(),
            },
            service: None,
            key: None,
            kind: ErrorKind::BadValue {
                message: "\"maybe\" is not a boolean".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "environment variable PIDONE_ENABLE_WEB: \"maybe\" is not a boolean"
        );
    }
}
