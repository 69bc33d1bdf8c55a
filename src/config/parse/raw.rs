//! What parsing produces: each file's services and timeouts, typed, with the line of every key,
//! not yet checked against other services, other files or the outside world.

use std::collections::BTreeMap;
use std::time::Duration;

use super::controls::RawControls;
use crate::config::model::{
    Kind, Level, Listen, LogMode, OnFailure, Overlap, ReadyMode, Restart, Schedule, Timeouts,
};

/// What one file contributes.
#[derive(Debug, Default)]
pub struct RawFile {
    /// `[timeouts]` entries in file order. Zero values are kept; the merge applies defaults.
    pub timeouts: Vec<RawTimeout>,
    /// `[log]`'s `timestamps` and `format = "json"`, if set.
    pub log_timestamps: Option<bool>,
    pub log_json: Option<bool>,
    /// The `[[services]]` entries in file order; entries without a usable name are dropped
    /// (their error is already reported).
    pub services: Vec<RawService>,
    /// `[defaults]`, with the line of its header.
    pub defaults: Option<(RawControls, usize)>,
    /// `shutdown_scripts`, with the line of the key.
    #[cfg(feature = "s6")]
    pub shutdown_scripts: Option<(Vec<Vec<String>>, usize)>,
    /// `[api]`'s keys, each with its line.
    pub api: RawApi,
    /// The top-level `env_file` (one path or several), with the line of the key.
    pub env_file: Option<(Vec<String>, usize)>,
}

/// `[api]` as written: each key with its line.
#[derive(Debug, Default)]
pub struct RawApi {
    /// Each address with its text as written.
    pub listen: Option<(Vec<(std::net::SocketAddr, String)>, usize)>,
    pub public: Option<Vec<String>>,
    pub token_file: Option<(String, usize)>,
    pub read_token_file: Option<(String, usize)>,
    /// `dropin_dir`: where `pidone add` writes (the path as written, and its line).
    pub dropin_dir: Option<(String, usize)>,
    pub cert_file: Option<(String, usize)>,
    pub key_file: Option<(String, usize)>,
}

/// One `[timeouts]` entry.
#[derive(Debug)]
pub struct RawTimeout {
    pub key: &'static str,
    pub value: Duration,
    pub line: usize,
    /// The field of [`Timeouts`] it sets, so that the key is named only in its table.
    pub slot: fn(&mut Timeouts) -> &mut Duration,
}

/// `wait_after` as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum RawWaitAfter {
    /// Not set.
    #[default]
    None,
    /// One delay for every dependency (go-overlay's integer form).
    All(Duration),
    /// A delay per dependency name, with the line of each entry.
    Per(Vec<(String, Duration, usize)>),
}

/// One `[[services]]` entry, typed but not yet resolved against anything else.
#[derive(Debug, Clone, Default)]
pub struct RawService {
    /// Index of the file in the list of sources.
    pub file: usize,
    /// Line of the `[[services]]` header.
    pub line: usize,
    /// Line of each key present, for errors found later.
    pub key_lines: BTreeMap<&'static str, usize>,
    pub name: String,
    pub command: Option<Vec<String>>,
    pub args: Vec<String>,
    pub enabled: bool,
    pub required: bool,
    pub kind: Kind,
    pub restart: Option<Restart>,
    pub depends_on: Vec<(String, usize)>,
    /// The condition of each entry of `depends_on` (and whether it was spelt `"succeeded"`),
    /// from the table form; empty for the name and array forms (all `"ready"`).
    pub depends_when: Vec<(crate::config::conditions::Condition, bool)>,
    pub after: Vec<(String, usize)>,
    pub wait_after: RawWaitAfter,
    pub start_delay: Duration,
    pub dependency_wait_timeout: Option<Duration>,
    pub success_exit_codes: Option<Vec<i32>>,
    pub restart_delay: Option<Duration>,
    pub restart_delay_max: Option<Duration>,
    pub restart_reset: Option<Duration>,
    pub max_restarts: u32,
    pub stop_signal: Option<i32>,
    pub stop_timeout: Option<Duration>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub workdir: Option<String>,
    /// `env` entries: key, value (unexpanded), line.
    pub env: Vec<(String, String, usize)>,
    pub env_file: Option<String>,
    /// The script and whether it was written as a single string (a path) rather than an argv.
    pub pre_script: Option<(Vec<String>, bool)>,
    pub post_script: Option<(Vec<String>, bool)>,
    #[cfg(feature = "s6")]
    pub finish: Option<(Vec<String>, bool)>,
    #[cfg(feature = "s6")]
    pub finish_timeout: Option<Duration>,
    #[cfg(feature = "s6")]
    pub env_dir: Option<String>,
    pub log: Option<LogMode>,
    pub log_file: Option<String>,
    pub log_max_size: Option<u64>,
    pub log_keep: Option<u32>,
    pub log_json: Option<bool>,
    pub tty: bool,
    /// `log_to` with its line, and `log_to_stderr`.
    pub log_to: Option<(String, usize)>,
    pub log_to_stderr: bool,
    pub instances: Option<u32>,
    pub start_timeout: Option<Duration>,
    /// `ready` with the line of the key chosen inside it (for `ready.after`'s later check).
    pub ready: Option<(ReadyMode, usize)>,
    /// The `[[services.checks]]` entries in file order, then `health_check`'s check, if any.
    /// Entries with errors are left out (their errors are already reported).
    pub checks: Vec<RawCheck>,
    /// The process-control keys; `[defaults]` fills in what the service does not set.
    pub controls: RawControls,
    /// `schedule`, parsed, with its text.
    pub schedule: Option<(Schedule, String)>,
    pub timezone: Option<String>,
    pub jitter: Duration,
    pub overlap: Overlap,
    pub max_runtime: Option<Duration>,
    pub watchdog: Option<Duration>,
    pub on_demand: bool,
    pub idle_timeout: Option<Duration>,
    pub listen: Vec<Listen>,
    /// `groups`: the groups the service is in, each once, in the order written.
    pub groups: Vec<String>,
}

/// One check as written, named, its strings not yet `${VAR}`-expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCheck {
    /// The final name: as given, or derived from the probe kind.
    pub name: String,
    pub probe: RawProbe,
    /// How errors name the probe's key (`checks[2].tcp`, `health_check.endpoint`), and its line.
    pub probe_key: String,
    pub probe_line: usize,
    pub level: Level,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `None` for go-overlay's `health_check`, whose action follows from the resolved restart
    /// policy and `required`.
    pub on_failure: Option<OnFailure>,
}

/// A probe as written. Addresses are checked here when they contain no `$`, and again after
/// expansion.
#[derive(Debug, Clone, PartialEq)]
pub enum RawProbe {
    /// An argv (`exec = [...]`).
    Exec(Vec<String>),
    /// A shell command (`exec = "..."`, go-overlay's `command`), run as `[SHELL, "-c", text]`.
    Shell(String),
    Tcp(String),
    Http(String),
}

impl RawService {
    /// The line of `key` if it was written, else the header's line.
    pub fn line_of(&self, key: &str) -> usize {
        self.key_lines.get(key).copied().unwrap_or(self.line)
    }
}
