//! The service configuration: TOML files in, a validated [`Config`] out, or every problem found.
//!
//! Loading runs in stages, each working on the output of the one before, and none stopping at
//! the first error:
//!
//! 1. [`resolve_sources`] picks the files (`--config`, `$PIDONE_CONFIG`, `/etc/pidone.toml` +
//!    `/etc/pidone.d/*.toml`, `/services.toml`).
//! 2. `parse` walks each file's TOML into typed `RawService`s, keeping the line of every key.
//! 3. [`load`] checks names, expands `instances`, applies the environment selection
//!    (`select`), resolves dependency names to [`ServiceId`]s, orders the graph
//!    ([`crate::core::graph`]), and finally resolves each service against the outside world: its
//!    environment (`env_file`, `env`, `${VAR}` via `expand`), its user ([`crate::os::users`]) and
//!    its program on `PATH`.
//!
//! Checks that depend on the outside world (program, user, env_file, undefined variables) are
//! skipped for disabled services, as go-overlay does: an image may ship a config for services
//! whose programs it does not contain, and turn them off from the environment.
//!
//! The result is plain data in start order; the runtime never looks a name up again.

pub mod envfile;
mod error;
mod expand;
pub mod limits;
mod parse;
mod select;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::core::graph::ServiceId;
pub use crate::os::users::Credentials;
pub use error::{ConfigError, ErrorKind, Location, edit_distance, suggest};
pub use parse::{parse_duration, parse_signal};
pub use select::env_token;

use crate::core::graph;
use crate::os::users::{UserDb, UserError};
use parse::{RawProbe, RawService, RawWaitAfter};

/// An environment: variable name to value. Sorted, so the child's environment is deterministic.
pub type Env = BTreeMap<String, String>;

/// How long a longrun may take from its spawn to being ready, unless `start_timeout` says.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `PATH` used to find programs when neither pidone's environment nor the service sets one;
/// the same default Docker images get.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything outside the config files that loading depends on, so tests can supply their own.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// pidone's own environment: inherited by every service, and the source of `${VAR}` values
    /// and of the `PIDONE_*` / `GO_OVERLAY_*` selection variables.
    pub env: Env,
    /// pidone's effective uid: a service with `user` needs it to be 0.
    pub euid: u32,
    /// The directory holding the image's `etc/passwd` and `etc/group`: `/` in production. Programs,
    /// scripts and env files are looked up on the real file system regardless.
    pub root: PathBuf,
}

impl LoadContext {
    /// The context of the running process. Variables whose name or value is not UTF-8 are
    /// skipped: they cannot be referenced from TOML, and services still inherit nothing else.
    pub fn from_process() -> LoadContext {
        LoadContext {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            euid: rustix::process::geteuid().as_raw(),
            root: PathBuf::from("/"),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The global timeouts of `[timeouts]`.
    pub timeouts: Timeouts,
    /// Every service, instances expanded, disabled ones included, in start order: each service
    /// comes after everything in its `depends_on` and `after`. A service's [`ServiceId`] is its
    /// index here; stopping in reverse index order respects every dependency.
    pub services: Vec<ServiceSpec>,
}

/// `[timeouts]`. A key set to 0 keeps its default, as in go-overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `post_script_timeout` (default 7 s): how long after a service is up its post_script runs.
    pub post_script: Duration,
    /// `service_shutdown_timeout` (default 10 s): the default `stop_timeout` of every service.
    pub service_shutdown: Duration,
    /// `global_shutdown_timeout` (default 30 s): the cap on the whole shutdown, after which every
    /// process group gets SIGKILL.
    pub global_shutdown: Duration,
    /// `dependency_wait_timeout` (default 300 s): the default `dependency_wait_timeout` of every
    /// service.
    pub dependency_wait: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            post_script: Duration::from_secs(7),
            service_shutdown: Duration::from_secs(10),
            global_shutdown: Duration::from_secs(30),
            dependency_wait: Duration::from_secs(300),
        }
    }
}

/// What kind of process a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Runs until stopped; up once ready (see [`ReadyMode`]).
    #[default]
    Longrun,
    /// Runs to completion; up once it has exited with a success code.
    Oneshot,
}

/// When a service that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// After every exit that was not requested.
    Always,
    /// After an exit with a code not in `success_exit_codes`, or a death by signal.
    OnFailure,
    /// Never: the exit is final.
    Never,
}

/// Where a service's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogMode {
    /// Through a pipe to pidone, which prints each line as `[name] line` (the default).
    #[default]
    Prefix,
    /// pidone's own stdout and stderr, inherited unchanged.
    Raw,
    /// `/dev/null`.
    Null,
    /// Appended to this file (`log_file`), created if missing.
    File(PathBuf),
}

/// When a longrun counts as up (`ready = { ... }`). Ready-level checks, if any, must also pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadyMode {
    /// Once exec succeeded (the default).
    #[default]
    Exec,
    /// Once the service wrote a newline to this fd, 3 or more (s6, dinit); EOF first fails the
    /// start.
    NotifyFd(i32),
    /// Once it sent `READY=1` to `$NOTIFY_SOCKET` (systemd's protocol).
    SdNotify,
    /// Once it stayed alive this long (supervisord's startsecs).
    After(Duration),
}

impl ReadyMode {
    /// The key of `ready` that chose it (`exec` for the default).
    pub fn kind(self) -> &'static str {
        match self {
            ReadyMode::Exec => "exec",
            ReadyMode::NotifyFd(_) => "notify_fd",
            ReadyMode::SdNotify => "sd_notify",
            ReadyMode::After(_) => "after",
        }
    }
}

/// What a check's result decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// Gates readiness: must pass once (`success_threshold` times in a row) before the service
    /// is up; it stops running once it has.
    Ready,
    /// Runs while the service is up; `failure_threshold` failures in a row trigger `on_failure`.
    #[default]
    Alive,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ready => "ready",
            Level::Alive => "alive",
        }
    }
}

/// What an alive-level check failing `failure_threshold` times in a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Stop the service and start it again (with the restart backoff, counted in max_restarts),
    /// whatever its restart policy.
    #[default]
    Restart,
    /// Stop the service and leave it FAILED.
    Stop,
    /// Shut pidone down (exit status 1).
    Shutdown,
    /// Only report it.
    Ignore,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Runs this argv (program resolved like `command`) with the service's user, environment
    /// and directory; exit 0 is success.
    Exec(Vec<String>),
    /// Connects to host:port (non-blocking); success once the connection is established.
    Tcp {
        /// An IP literal (IPv6 without its brackets), `localhost`, or a name to look up in
        /// `/etc/hosts` at probe time: never through DNS, which could block PID 1.
        host: String,
        port: u16,
    },
    /// Plain HTTP/1.1 GET; a 2xx or 3xx status is success.
    Http {
        /// As for `Tcp`. The `Host` header needs brackets around an IPv6 address.
        host: String,
        port: u16,
        /// Starts with `/`; includes the query string if any.
        path: String,
    },
}

/// `host` as it stands before `:port` in an address or a Host header: an IPv6 literal in brackets.
pub fn bracketed(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Exec(_) => "exec",
            Probe::Tcp { .. } => "tcp",
            Probe::Http { .. } => "http",
        }
    }
}

/// One `[[services.checks]]` entry (or go-overlay's `[services.health_check]`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// `name`, or by default the probe kind (`exec`, `tcp`, `http`; `kind-N` for the N-th
    /// check when the kind is taken); `health_check` for go-overlay's table. Unique per service.
    pub name: String,
    pub probe: Probe,
    pub level: Level,
    /// Before the first run, counted from the spawn (ready level) or from the service being up
    /// (alive level). Default 0.
    pub initial_delay: Duration,
    /// Between the end of one run and the start of the next. Default 10 s.
    pub period: Duration,
    /// A run still going after this long is a failure (an exec check is killed). Default 3 s.
    pub timeout: Duration,
    /// Successes in a row that make the check pass. Default 1.
    pub success_threshold: u32,
    /// Failures in a row that make the check fail. Default 3.
    pub failure_threshold: u32,
    /// Alive level only (ready-level checks never trigger anything).
    pub on_failure: OnFailure,
}

/// One service (or one instance of a service with `instances`), fully resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The name used everywhere at runtime: `name`, or `name-i` for instance `i`.
    pub name: String,
    /// The `name` key as written; equal to `name` without instances. Dependencies on it mean
    /// all instances.
    pub base_name: String,
    /// The instance number (1-based) with `instances`, else `None`.
    pub instance: Option<u32>,
    /// The config file the service is defined in.
    pub file: PathBuf,
    /// The line of its `[[services]]` header.
    pub line: usize,
    /// Program and arguments, `${VAR}` expanded. `argv[0]` is the program resolved to a path
    /// (found on `PATH`, or made absolute), so it can be passed to `execve` as it is.
    pub argv: Vec<String>,
    /// Longrun or oneshot (`type`, or go-overlay's `oneshot = true`).
    pub kind: Kind,
    /// Whether the service starts; false from `enabled = false` or the environment selection.
    /// Disabled services are kept so that status can show them.
    pub enabled: bool,
    /// If true, the service failing for good shuts pidone down with its exit status.
    pub required: bool,
    /// Services that must be up before this one starts; a dependency failing for good fails
    /// this one. Never contains a disabled service when this one is enabled.
    pub depends_on: Vec<ServiceId>,
    /// Services this one waits for if they are starting, without failing with them.
    pub after: Vec<ServiceId>,
    /// Extra delays after a dependency is up, for the dependencies that have one. The service
    /// starts at the latest of (dependency up + delay) over all its dependencies.
    pub wait_after: Vec<(ServiceId, Duration)>,
    /// Delay between the dependencies being satisfied and the start (`start_delay`, default 0).
    pub start_delay: Duration,
    /// How long to wait for the dependencies before failing (default: the global
    /// `dependency_wait_timeout`).
    pub dependency_wait_timeout: Duration,
    /// The restart policy (default `OnFailure` for a longrun, `Never` for a oneshot).
    pub restart: Restart,
    /// Exit codes that count as success (default `[0]`).
    pub success_exit_codes: Vec<i32>,
    /// The first restart delay (default 1 s; 0 also means 1 s, as in go-overlay).
    pub restart_delay: Duration,
    /// The cap of the doubling restart delay (default 30 s, or `restart_delay` if larger).
    pub restart_delay_max: Duration,
    /// Restarts allowed before the service fails for good; 0 = unlimited.
    pub max_restarts: u32,
    /// The signal sent to stop the service (default SIGTERM).
    pub stop_signal: i32,
    /// How long after `stop_signal` the process group gets SIGKILL (default: the global
    /// `service_shutdown_timeout`).
    pub stop_timeout: Duration,
    /// The credentials to switch to, if `user` is set.
    pub user: Option<Credentials>,
    /// The directory to start in, if `workdir` is set (absolute; may not exist yet at load).
    pub workdir: Option<PathBuf>,
    /// The complete environment of the child, sorted by name: pidone's environment, then
    /// HOME/USER/LOGNAME of `user`, then `env_file`, then `env`, then `PIDONE_INSTANCE`.
    pub env: Vec<(String, String)>,
    /// The argv of `pre_script`, run with the service's user, env and workdir once the
    /// dependencies are up and before the program; failure fails the start.
    pub pre_script: Option<Vec<String>>,
    /// The argv of `post_script` / `pos_script`, run `post_script_timeout` after the service is
    /// up; failure is only logged.
    pub post_script: Option<Vec<String>>,
    /// Where output goes.
    pub log: LogMode,
    /// When a longrun is up (`ready`; default: once exec succeeded). Always `Exec` for a
    /// oneshot.
    pub ready: ReadyMode,
    /// How long a longrun may take from its spawn to being ready before the start counts as
    /// failed (`start_timeout`, default 60 s).
    pub start_timeout: Duration,
    /// Its checks, in file order. Empty for a oneshot.
    pub checks: Vec<CheckSpec>,
}

impl Config {
    /// The service called `name` (an instance name like `api-2`, or a plain name).
    pub fn find(&self, name: &str) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.name == name)
            .map(ServiceId)
    }

    /// The length of the longest service name, to which prefixes and tables are padded; never
    /// more than 255, so that no format width can overflow whatever the names.
    pub fn name_width(&self) -> usize {
        self.services
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .min(255)
    }

    /// For each service, the services that must stop before it does: those naming it in
    /// `depends_on` or `after`.
    pub fn dependents(&self) -> Vec<Vec<ServiceId>> {
        let edges: Vec<Vec<ServiceId>> = self
            .services
            .iter()
            .map(|s| s.depends_on.iter().chain(&s.after).copied().collect())
            .collect();
        graph::dependents(&edges)
    }
}

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
fn expand_source(path: &Path) -> io::Result<Vec<PathBuf>> {
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

/// Loads and validates the config files `sources`, in order.
///
/// Returns every problem found, sorted by file and line; environment problems come last.
pub fn load(sources: &[PathBuf], ctx: &LoadContext) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut raws: Vec<RawService> = Vec::new();
    let mut timeout_entries = Vec::new();
    let mut complete = true;
    for (index, path) in sources.iter().enumerate() {
        let text = match crate::io::files::read_text(path, limits::MAX_CONFIG_FILE_BYTES) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ConfigError {
                    location: Location::File {
                        path: path.clone(),
                        line: None,
                    },
                    service: None,
                    key: None,
                    kind: ErrorKind::Read {
                        path: path.clone(),
                        error: e.to_string(),
                    },
                });
                complete = false;
                continue;
            }
        };
        match parse::parse_file(index, path, &text, &mut errors) {
            Some(file) => {
                timeout_entries.extend(file.timeouts.into_iter().map(|(k, d, l)| (index, k, d, l)));
                raws.extend(file.services);
            }
            None => complete = false,
        }
    }
    let timeouts = merge_timeouts(sources, &timeout_entries, &mut errors);
    // Cross-service checks need every service: with a file missing they would only add noise.
    if complete {
        let mut loader = Loader {
            sources,
            ctx,
            timeouts,
            raws: &raws,
            errors: &mut errors,
            users: None,
        };
        let services = loader.run();
        if errors.is_empty() {
            return Ok(Config { timeouts, services });
        }
    }
    Err(sorted(sources, errors))
}

/// Sorts errors by file (in source order) and line, keeping discovery order within a line, and
/// drops exact duplicates (the same problem found once per instance).
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
    let mut unique: Vec<ConfigError> = Vec::with_capacity(errors.len());
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    unique
}

fn merge_timeouts(
    sources: &[PathBuf],
    entries: &[(usize, &'static str, Duration, usize)],
    errors: &mut Vec<ConfigError>,
) -> Timeouts {
    let mut timeouts = Timeouts::default();
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    for &(file, key, value, line) in entries {
        let path = sources.get(file).cloned().unwrap_or_default();
        if let Some(&(first_file, first_line)) = seen.get(key) {
            let first = sources.get(first_file).cloned().unwrap_or_default();
            errors.push(ConfigError {
                location: Location::File {
                    path,
                    line: Some(line),
                },
                service: None,
                key: Some(format!("timeouts.{key}")),
                kind: ErrorKind::BadValue {
                    message: format!("already set at {}:{first_line}", first.display()),
                },
            });
            continue;
        }
        seen.insert(key, (file, line));
        if value.is_zero() {
            continue;
        }
        match key {
            "post_script_timeout" => timeouts.post_script = value,
            "service_shutdown_timeout" => timeouts.service_shutdown = value,
            "global_shutdown_timeout" => timeouts.global_shutdown = value,
            _ => timeouts.dependency_wait = value,
        }
    }
    timeouts
}

/// One service or instance during loading.
struct Unit {
    /// Index into the raw services.
    raw: usize,
    instance: Option<u32>,
    name: String,
    enabled: bool,
}

/// The parts of a service resolved against the outside world.
#[derive(Default)]
struct Resolved {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    user: Option<Credentials>,
    workdir: Option<PathBuf>,
    pre_script: Option<Vec<String>>,
    post_script: Option<Vec<String>>,
    log: LogMode,
    checks: Vec<CheckSpec>,
}

/// Problems found while resolving a service against the outside world, reported only if the
/// service is enabled: line, key, what.
type Soft = Vec<(usize, Option<String>, ErrorKind)>;

/// The outcome of looking a program up.
enum Lookup {
    Found(PathBuf),
    NotExecutable(PathBuf),
    Missing(String),
}

struct Loader<'a> {
    sources: &'a [PathBuf],
    ctx: &'a LoadContext,
    timeouts: Timeouts,
    raws: &'a [RawService],
    errors: &'a mut Vec<ConfigError>,
    /// The image's user database, read on first use; `Err` once reading failed.
    users: Option<Result<UserDb, String>>,
}

impl Loader<'_> {
    fn error(&mut self, raw: &RawService, line: usize, key: Option<&str>, kind: ErrorKind) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.sources.get(raw.file).cloned().unwrap_or_default(),
                line: Some(line),
            },
            service: Some(raw.name.clone()),
            key: key.map(str::to_owned),
            kind,
        });
    }

    /// Runs the cross-service stages. The services are meaningful only if no error was added.
    fn run(&mut self) -> Vec<ServiceSpec> {
        let raws = self.raws;
        let (mut units, raw_units, by_name) = self.expand_names();
        self.select(&mut units, &by_name);

        let n = units.len();
        let mut depends: Vec<Vec<ServiceId>> = vec![Vec::new(); n];
        let mut after: Vec<Vec<ServiceId>> = vec![Vec::new(); n];
        let mut waits: Vec<Vec<(ServiceId, Duration)>> = vec![Vec::new(); n];
        for (ri, raw) in raws.iter().enumerate() {
            let mine = raw_units[ri].clone();
            if mine.is_empty() {
                continue;
            }
            let (d, a, w) = self.resolve_dependencies(raw, &mine, &units, &by_name);
            for u in mine {
                depends[u] = d.clone();
                after[u] = a.clone();
                waits[u] = w.clone();
            }
            let delay = raw.restart_delay.filter(|d| !d.is_zero());
            if let (Some(max), Some(delay)) = (raw.restart_delay_max, delay)
                && max < delay
            {
                self.error(
                    raw,
                    raw.line_of("restart_delay_max"),
                    Some("restart_delay_max"),
                    ErrorKind::BadValue {
                        message: format!(
                            "{} is shorter than restart_delay ({})",
                            format_duration(max),
                            format_duration(delay)
                        ),
                    },
                );
            }
            if raw.kind == Kind::Oneshot && raw.restart == Some(Restart::Always) {
                self.error(
                    raw,
                    raw.line_of("restart"),
                    Some("restart"),
                    ErrorKind::OneshotRestartAlways,
                );
            }
        }

        let edges: Vec<Vec<ServiceId>> = (0..n)
            .map(|u| depends[u].iter().chain(&after[u]).copied().collect())
            .collect();
        let order = match graph::start_order(&edges) {
            Ok(order) => order,
            Err(cycles) => {
                for cycle in cycles {
                    self.report_cycle(&cycle, &units, &depends);
                }
                (0..n).map(ServiceId).collect()
            }
        };

        let mut resolved: Vec<Resolved> = Vec::with_capacity(n);
        for unit in &units {
            let raw = &raws[unit.raw];
            resolved.push(self.resolve_unit(raw, unit));
        }

        let mut new_id = vec![ServiceId(0); n];
        for (position, old) in order.iter().enumerate() {
            new_id[old.0] = ServiceId(position);
        }
        let remap = |ids: &[ServiceId]| ids.iter().map(|i| new_id[i.0]).collect::<Vec<_>>();
        let mut services = Vec::with_capacity(n);
        for old in order {
            let unit = &units[old.0];
            let raw = &raws[unit.raw];
            let r = std::mem::take(&mut resolved[old.0]);
            services.push(
                self.spec(
                    raw,
                    unit,
                    r,
                    remap(&depends[old.0]),
                    remap(&after[old.0]),
                    waits[old.0]
                        .iter()
                        .map(|&(id, d)| (new_id[id.0], d))
                        .collect(),
                ),
            );
        }
        services
    }

    /// Validates names, expands instances, and indexes every name a dependency can use.
    #[allow(clippy::type_complexity)]
    fn expand_names(&mut self) -> (Vec<Unit>, Vec<Range<usize>>, HashMap<String, Vec<usize>>) {
        let raws = self.raws;
        let mut units: Vec<Unit> = Vec::new();
        let mut raw_units: Vec<Range<usize>> = Vec::with_capacity(raws.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut defined_at: HashMap<String, String> = HashMap::new();
        let mut full = false;
        for (ri, raw) in raws.iter().enumerate() {
            let here = format!(
                "{}:{}",
                self.sources
                    .get(raw.file)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                raw.line_of("name")
            );
            let refused =
                limits::too_long("name", raw.name.len(), limits::MAX_NAME_LEN).or_else(|| {
                    (!is_valid_name(&raw.name)).then(|| ErrorKind::InvalidName {
                        name: raw.name.clone(),
                    })
                });
            if let Some(kind) = refused {
                self.error(raw, raw.line_of("name"), Some("name"), kind);
                raw_units.push(0..0);
                continue;
            }
            // Past the limit, one error for the service that crosses it and none after it.
            let total = units.len() + raw.instances.map_or(1, |n| n as usize);
            if let Some(kind) = limits::too_many("services", total, limits::MAX_SERVICES) {
                let key = if raw.instances.is_some() {
                    "instances"
                } else {
                    "name"
                };
                if !full {
                    self.error(raw, raw.line_of(key), Some(key), kind);
                }
                full = true;
                raw_units.push(0..0);
                continue;
            }
            let instances: Vec<(Option<u32>, String)> = match raw.instances {
                None => vec![(None, raw.name.clone())],
                Some(count) => (1..=count)
                    .map(|i| (Some(i), format!("{}-{i}", raw.name)))
                    .collect(),
            };
            let mut claimed: Vec<&str> = vec![raw.name.as_str()];
            if raw.instances.is_some() {
                claimed.extend(instances.iter().map(|(_, n)| n.as_str()));
            }
            if let Some((name, first)) = claimed
                .iter()
                .find_map(|n| defined_at.get(*n).map(|f| (*n, f.clone())))
            {
                self.error(
                    raw,
                    raw.line_of("name"),
                    Some("name"),
                    ErrorKind::DuplicateName {
                        name: name.to_owned(),
                        first,
                    },
                );
                raw_units.push(0..0);
                continue;
            }
            for name in claimed {
                defined_at.insert(name.to_owned(), here.clone());
            }
            let start = units.len();
            for (instance, name) in instances {
                if instance.is_some() {
                    by_name.insert(name.clone(), vec![units.len()]);
                }
                units.push(Unit {
                    raw: ri,
                    instance,
                    name,
                    enabled: raw.enabled,
                });
            }
            by_name.insert(raw.name.clone(), (start..units.len()).collect());
            raw_units.push(start..units.len());
        }
        (units, raw_units, by_name)
    }

    /// Applies `PIDONE_ONLY_SERVICES` & co.
    fn select(&mut self, units: &mut [Unit], by_name: &HashMap<String, Vec<usize>>) {
        let env = &self.ctx.env;
        let only = select::only_list(env);
        for unit in units.iter_mut() {
            let raw = &self.raws[unit.raw];
            let names: Vec<&str> = if unit.instance.is_some() {
                vec![raw.name.as_str(), unit.name.as_str()]
            } else {
                vec![unit.name.as_str()]
            };
            match select::is_enabled(raw.enabled, &names, only.as_ref(), env) {
                Ok(enabled) => unit.enabled = enabled,
                Err(errors) => self.errors.extend(errors),
            }
        }
        if let Some(only) = &only {
            for name in &only.names {
                if !by_name.keys().any(|k| k.to_ascii_lowercase() == *name) {
                    self.errors.push(ConfigError {
                        location: Location::Env {
                            var: only.var.to_owned(),
                        },
                        service: None,
                        key: None,
                        kind: ErrorKind::UnknownService {
                            name: name.clone(),
                            suggestion: suggest(name, by_name.keys().map(String::as_str)),
                        },
                    });
                }
            }
        }
    }

    /// Resolves `depends_on`, `after` and `wait_after` of one raw service to unit indices.
    #[allow(clippy::type_complexity)]
    fn resolve_dependencies(
        &mut self,
        raw: &RawService,
        mine: &Range<usize>,
        units: &[Unit],
        by_name: &HashMap<String, Vec<usize>>,
    ) -> (Vec<ServiceId>, Vec<ServiceId>, Vec<(ServiceId, Duration)>) {
        let any_enabled = mine.clone().any(|u| units[u].enabled);
        let mut depends = Vec::new();
        let mut after = Vec::new();
        for (key, list) in [("depends_on", &raw.depends_on), ("after", &raw.after)] {
            for (name, line) in list {
                let Some(targets) = by_name.get(name) else {
                    self.error(
                        raw,
                        *line,
                        Some(key),
                        ErrorKind::UnknownService {
                            name: name.clone(),
                            suggestion: suggest(name, by_name.keys().map(String::as_str)),
                        },
                    );
                    continue;
                };
                if key == "depends_on" && any_enabled {
                    for &t in targets {
                        if !units[t].enabled {
                            self.error(
                                raw,
                                *line,
                                Some(key),
                                ErrorKind::DisabledDependency {
                                    name: units[t].name.clone(),
                                },
                            );
                        }
                    }
                }
                let out = if key == "depends_on" {
                    &mut depends
                } else {
                    &mut after
                };
                for &t in targets {
                    if !out.contains(&ServiceId(t)) {
                        out.push(ServiceId(t));
                    }
                }
            }
        }
        let mut waits: Vec<(ServiceId, Duration)> = Vec::new();
        let mut add_wait = |id: ServiceId, d: Duration| {
            if d.is_zero() {
                return;
            }
            match waits.iter_mut().find(|(w, _)| *w == id) {
                Some(entry) => entry.1 = entry.1.max(d),
                None => waits.push((id, d)),
            }
        };
        match &raw.wait_after {
            RawWaitAfter::None => {}
            RawWaitAfter::All(d) => {
                for &id in &depends {
                    add_wait(id, *d);
                }
            }
            RawWaitAfter::Per(entries) => {
                for (name, d, line) in entries {
                    if !raw.depends_on.iter().any(|(n, _)| n == name) {
                        self.error(
                            raw,
                            *line,
                            Some("wait_after"),
                            ErrorKind::WaitAfterNotDependency { name: name.clone() },
                        );
                        continue;
                    }
                    for &t in by_name.get(name).map(Vec::as_slice).unwrap_or_default() {
                        add_wait(ServiceId(t), *d);
                    }
                }
            }
        }
        (depends, after, waits)
    }

    fn report_cycle(&mut self, cycle: &[ServiceId], units: &[Unit], depends: &[Vec<ServiceId>]) {
        let (Some(&first), Some(&second)) = (cycle.first(), cycle.get(1)) else {
            return;
        };
        let raw = &self.raws[units[first.0].raw];
        let key = if depends[first.0].contains(&second) {
            "depends_on"
        } else {
            "after"
        };
        let path = graph::format_cycle(cycle, |id| units[id.0].name.as_str());
        self.error(raw, raw.line_of(key), Some(key), ErrorKind::Cycle { path });
    }

    /// Resolves user, environment, paths and programs of one unit. Problems here are reported
    /// only for enabled units (see the module documentation).
    fn resolve_unit(&mut self, raw: &RawService, unit: &Unit) -> Resolved {
        let mut soft: Soft = Vec::new();
        let dir = self
            .sources
            .get(raw.file)
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let user = raw
            .user
            .as_deref()
            .and_then(|spec| self.resolve_user(raw, spec, &mut soft));
        let env = service_env(raw, unit, user.as_ref(), &self.ctx.env, &dir, &mut soft);

        let expand_at = |text: &str, (line, key): (usize, &str), soft: &mut Soft| {
            expand::expand(text, |n| env.get(n).map(String::as_str))
                .map_err(|kind| soft.push((line, Some(key.to_owned()), kind)))
                .ok()
        };
        let expand_one = |text: &str, key: &'static str, soft: &mut Soft| {
            expand_at(text, (raw.line_of(key), key), soft).unwrap_or_default()
        };
        // Expands an argv. A program that expands to nothing is refused like one written empty
        // (`what` names it); one whose expansion failed is already reported.
        let expand_argv = |list: &[String], what: &str, at: (usize, &str), soft: &mut Soft| {
            let argv: Vec<Option<String>> = list.iter().map(|x| expand_at(x, at, soft)).collect();
            if let (Some(Some(program)), Some(written)) = (argv.first(), list.first())
                && program.is_empty()
            {
                let kind = parse::empty_after(what, written, program);
                soft.push((at.0, Some(at.1.to_owned()), kind));
            }
            argv.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<String>>()
        };
        let workdir = raw
            .workdir
            .as_deref()
            .map(|w| dir.join(expand_one(w, "workdir", &mut soft)));
        let log = match (&raw.log, &raw.log_file) {
            (_, Some(file)) => LogMode::File(dir.join(expand_one(file, "log_file", &mut soft))),
            (Some(mode), None) => mode.clone(),
            (None, None) => LogMode::Prefix,
        };
        let command = raw.command.as_deref().unwrap_or_default();
        let mut argv = expand_argv(
            command,
            "program",
            (raw.line_of("command"), "command"),
            &mut soft,
        );
        argv.extend(
            raw.args
                .iter()
                .map(|item| expand_one(item, "args", &mut soft)),
        );
        let post_key = if raw.key_lines.contains_key("post_script") {
            "post_script"
        } else {
            "pos_script"
        };
        let mut scripts = [
            ("pre_script", &raw.pre_script),
            (post_key, &raw.post_script),
        ]
        .map(|(key, script)| {
            script.as_ref().map(|(list, single)| {
                let argv = expand_argv(list, "script", (raw.line_of(key), key), &mut soft);
                (key, argv, *single)
            })
        });

        let path_var = env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
        let base = workdir.as_deref().unwrap_or(&dir);
        let at = |key: &'static str| (raw.line_of(key), key);
        resolve_program(&mut argv, false, at("command"), path_var, base, &mut soft);
        for (key, argv, single) in scripts.iter_mut().flatten() {
            resolve_program(argv, *single, at(key), path_var, base, &mut soft);
        }
        let [pre_script, post_script] = scripts.map(|s| s.map(|(_, argv, _)| argv));

        let mut checks = Vec::with_capacity(raw.checks.len());
        for c in &raw.checks {
            let at = (c.probe_line, c.probe_key.as_str());
            let probe = match &c.probe {
                RawProbe::Exec(list) => {
                    let mut argv = expand_argv(list, "program", at, &mut soft);
                    resolve_program(&mut argv, false, at, path_var, base, &mut soft);
                    Probe::Exec(argv)
                }
                RawProbe::Shell(text) => {
                    let command = expand_at(text, at, &mut soft);
                    if let Some(blank) = command.as_deref().filter(|c| c.trim().is_empty()) {
                        let kind = parse::empty_after("command", text, blank);
                        soft.push((at.0, Some(at.1.to_owned()), kind));
                    }
                    let command = command.unwrap_or_default();
                    let mut argv = vec![parse::SHELL.to_owned(), "-c".to_owned(), command];
                    resolve_program(&mut argv, false, at, path_var, base, &mut soft);
                    Probe::Exec(argv)
                }
                RawProbe::Tcp(text) | RawProbe::Http(text) => {
                    let Some(text) = expand_at(text, at, &mut soft) else {
                        continue;
                    };
                    let parsed = match c.probe {
                        RawProbe::Tcp(_) => parse::tcp_probe(&text),
                        _ => parse::http_probe(&text),
                    };
                    match parsed {
                        Ok(probe) => probe,
                        Err(kind) => {
                            soft.push((at.0, Some(at.1.to_owned()), kind));
                            continue;
                        }
                    }
                }
            };
            checks.push(CheckSpec {
                name: c.name.clone(),
                probe,
                level: c.level,
                initial_delay: c.initial_delay,
                period: c.period,
                timeout: c.timeout,
                success_threshold: c.success_threshold,
                failure_threshold: c.failure_threshold,
                on_failure: c.on_failure.unwrap_or_else(|| health_check_action(raw)),
            });
        }

        if unit.enabled {
            for (line, key, kind) in soft {
                self.error(raw, line, key.as_deref(), kind);
            }
        }
        Resolved {
            argv,
            env: env.into_iter().collect(),
            user,
            workdir,
            pre_script,
            post_script,
            log,
            checks,
        }
    }

    /// Resolves `user` (and `group`) against the image's user database.
    fn resolve_user(
        &mut self,
        raw: &RawService,
        spec: &str,
        soft: &mut Soft,
    ) -> Option<Credentials> {
        if raw.group.is_some() && spec.contains(':') {
            self.error(
                raw,
                raw.line_of("group"),
                Some("group"),
                ErrorKind::Conflict {
                    other: "user = \"user:group\"".into(),
                },
            );
        }
        if self.ctx.euid != 0 {
            let euid = self.ctx.euid;
            soft.push((
                raw.line_of("user"),
                Some("user".into()),
                ErrorKind::UserNeedsRoot { euid },
            ));
        }
        let passwd = self.ctx.root.join("etc/passwd");
        let db = match self.user_db() {
            Ok(db) => db,
            Err(error) => {
                let kind = ErrorKind::Read {
                    path: passwd,
                    error,
                };
                soft.push((raw.line_of("user"), Some("user".into()), kind));
                return None;
            }
        };
        match db.resolve(spec, raw.group.as_deref()) {
            Ok(credentials) => Some(credentials),
            Err(e) => {
                let key = match e {
                    UserError::UnknownGroup { .. }
                        if raw.group.is_some() && !spec.contains(':') =>
                    {
                        "group"
                    }
                    _ => "user",
                };
                let kind = ErrorKind::User {
                    message: e.to_string(),
                };
                soft.push((raw.line_of(key), Some(key.into()), kind));
                None
            }
        }
    }

    /// The image's user database, read once.
    fn user_db(&mut self) -> Result<&UserDb, String> {
        if self.users.is_none() {
            self.users = Some(UserDb::load(&self.ctx.root).map_err(|e| e.to_string()));
        }
        match &self.users {
            Some(Ok(db)) => Ok(db),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not loaded".into()),
        }
    }

    fn spec(
        &self,
        raw: &RawService,
        unit: &Unit,
        r: Resolved,
        depends_on: Vec<ServiceId>,
        after: Vec<ServiceId>,
        wait_after: Vec<(ServiceId, Duration)>,
    ) -> ServiceSpec {
        let restart_delay = raw
            .restart_delay
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let restart_delay_max = raw
            .restart_delay_max
            .unwrap_or_else(|| restart_delay.max(Duration::from_secs(30)));
        ServiceSpec {
            name: unit.name.clone(),
            base_name: raw.name.clone(),
            instance: unit.instance,
            file: self.sources.get(raw.file).cloned().unwrap_or_default(),
            line: raw.line,
            argv: r.argv,
            kind: raw.kind,
            enabled: unit.enabled,
            required: raw.required,
            depends_on,
            after,
            wait_after,
            start_delay: raw.start_delay,
            dependency_wait_timeout: raw
                .dependency_wait_timeout
                .unwrap_or(self.timeouts.dependency_wait),
            restart: restart_policy(raw),
            success_exit_codes: raw.success_exit_codes.clone().unwrap_or_else(|| vec![0]),
            restart_delay,
            restart_delay_max,
            max_restarts: raw.max_restarts,
            stop_signal: raw.stop_signal.unwrap_or(libc::SIGTERM),
            stop_timeout: raw.stop_timeout.unwrap_or(self.timeouts.service_shutdown),
            user: r.user,
            workdir: r.workdir,
            env: r.env,
            pre_script: r.pre_script,
            post_script: r.post_script,
            log: r.log,
            ready: match raw.kind {
                Kind::Longrun => raw.ready.map_or(ReadyMode::Exec, |(mode, _)| mode),
                Kind::Oneshot => ReadyMode::Exec,
            },
            start_timeout: raw.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT),
            checks: r.checks,
        }
    }
}

/// What go-overlay's `health_check` does once `retries` runs failed (its
/// `handleUnhealthyService`): restart a service that restarts, else shut down for a required
/// one, else nothing. The restart policy is pidone's resolved one (`on-failure` by default).
fn health_check_action(raw: &RawService) -> OnFailure {
    match restart_policy(raw) {
        Restart::Always | Restart::OnFailure => OnFailure::Restart,
        Restart::Never if raw.required => OnFailure::Shutdown,
        Restart::Never => OnFailure::Ignore,
    }
}

/// `restart`, or the default of the service's kind.
fn restart_policy(raw: &RawService) -> Restart {
    raw.restart.unwrap_or(match raw.kind {
        Kind::Longrun => Restart::OnFailure,
        Kind::Oneshot => Restart::Never,
    })
}

/// `[A-Za-z0-9_.-]+`, for service and check names. go-overlay does not allow `.`; pidone does,
/// for names like `php8.2-fpm`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Finds a program the way `execvp` would, but at load time: a name with a `/` is a path
/// (relative ones are taken from `base`), anything else is searched on `path_var`. Empty and
/// relative `PATH` entries are skipped, since they would depend on the working directory.
fn find_program(program: &str, path_var: &str, base: &Path) -> Lookup {
    if program.contains('/') {
        let path = base.join(program);
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Lookup::Found(path),
            Ok(_) => Lookup::NotExecutable(path),
            Err(e) => Lookup::Missing(match e.kind() {
                io::ErrorKind::NotFound => "does not exist".into(),
                _ => format!("cannot be checked: {e}"),
            }),
        };
    }
    for entry in path_var.split(':').filter(|e| e.starts_with('/')) {
        let candidate = Path::new(entry).join(program);
        if let Ok(m) = std::fs::metadata(&candidate)
            && m.is_file()
            && m.permissions().mode() & 0o111 != 0
        {
            return Lookup::Found(candidate);
        }
    }
    let hint = if program.contains(char::is_whitespace) {
        " (a string command is one program path, run without a shell; use an array for arguments)"
    } else {
        ""
    };
    Lookup::Missing(format!("not found on PATH {path_var:?}{hint}"))
}

/// Builds a service's environment: pidone's, then the user's HOME/USER/LOGNAME, then
/// `env_file`, then `env` (expanded against what came before), then `PIDONE_INSTANCE`.
fn service_env(
    raw: &RawService,
    unit: &Unit,
    user: Option<&Credentials>,
    base: &Env,
    dir: &Path,
    soft: &mut Soft,
) -> Env {
    let mut env = base.clone();
    if let Some(c) = user {
        env.insert("HOME".into(), c.home.display().to_string());
        env.insert("USER".into(), c.name.clone());
        env.insert("LOGNAME".into(), c.name.clone());
    }
    if let Some(i) = unit.instance {
        env.insert("PIDONE_INSTANCE".into(), i.to_string());
    }
    if let Some(text) = &raw.env_file {
        let line = raw.line_of("env_file");
        let vars = expand::expand(text, |n| env.get(n).map(String::as_str))
            .map_err(|kind| vec![kind])
            .and_then(|p| env_file(&dir.join(p)));
        match vars {
            Ok(vars) => env.extend(vars),
            Err(kinds) => soft.extend(
                kinds
                    .into_iter()
                    .map(|k| (line, Some("env_file".into()), k)),
            ),
        }
    }
    let mut table = Vec::with_capacity(raw.env.len());
    for (name, value, line) in &raw.env {
        match expand::expand(value, |n| env.get(n).map(String::as_str)) {
            Ok(v) => table.push((name.clone(), v)),
            Err(kind) => soft.push((*line, Some("env".into()), kind)),
        }
    }
    env.extend(table);
    // Set last so that PIDONE_INSTANCE is always the instance number, whatever env says.
    if let Some(i) = unit.instance {
        env.insert("PIDONE_INSTANCE".into(), i.to_string());
    }
    env
}

/// The variables of an env file, or every problem with it.
fn env_file(path: &Path) -> Result<Vec<(String, String)>, Vec<ErrorKind>> {
    let text = crate::io::files::read_text(path, limits::MAX_ENV_FILE_BYTES).map_err(|e| {
        let error = e.to_string();
        vec![ErrorKind::Read {
            path: path.to_owned(),
            error,
        }]
    })?;
    let vars = crate::config::envfile::parse(&text).map_err(|problems| {
        let kind = |p: crate::config::envfile::EnvFileError| ErrorKind::EnvFile {
            path: path.to_owned(),
            message: p.to_string(),
        };
        problems.into_iter().map(kind).collect::<Vec<_>>()
    })?;
    match limits::too_many("variables", vars.len(), limits::MAX_ENV_VARS) {
        Some(kind) => Err(vec![kind]),
        None => Ok(vars),
    }
}

/// Replaces `argv[0]` with the path of the program it names; problems are reported for `key`
/// at `line`. With `shell_fallback` (a script given as one string), a file that exists but is
/// not executable runs through `bash` (or `sh`) from the service's PATH, as go-overlay does. An
/// empty program (an expansion that already failed) is left alone.
fn resolve_program(
    argv: &mut Vec<String>,
    shell_fallback: bool,
    (line, key): (usize, &str),
    path_var: &str,
    base: &Path,
    soft: &mut Soft,
) {
    let Some(program) = argv.first().cloned().filter(|p| !p.is_empty()) else {
        return;
    };
    let not_found = |program: String, reason: String| {
        (
            line,
            Some(key.to_owned()),
            ErrorKind::ProgramNotFound { program, reason },
        )
    };
    match find_program(&program, path_var, base) {
        Lookup::Found(path) => {
            if let Some(first) = argv.first_mut() {
                *first = path.display().to_string();
            }
        }
        Lookup::NotExecutable(path) if shell_fallback => {
            let shell =
                ["bash", "sh"]
                    .iter()
                    .find_map(|sh| match find_program(sh, path_var, base) {
                        Lookup::Found(p) => Some(p),
                        _ => None,
                    });
            match shell {
                Some(sh) => *argv = vec![sh.display().to_string(), path.display().to_string()],
                None => soft.push(not_found(
                    path.display().to_string(),
                    "is not executable, and no sh was found on PATH to run it".into(),
                )),
            }
        }
        Lookup::NotExecutable(path) => soft.push(not_found(
            path.display().to_string(),
            "is not an executable file".into(),
        )),
        Lookup::Missing(reason) => soft.push(not_found(program, reason)),
    }
}

/// A human summary for `pidone validate`: the services in start order, one per line with their
/// dependencies and readiness, followed by one indented line per check.
pub fn describe(config: &Config) -> String {
    let width = config.name_width();
    let name_of = |id: &ServiceId| config.services.get(id.0).map_or("?", |s| s.name.as_str());
    let mut out = String::new();
    let enabled = config.services.iter().filter(|s| s.enabled).count();
    let _ = writeln!(
        out,
        "{} services ({} enabled), in start order:",
        config.services.len(),
        enabled
    );
    for (i, s) in config.services.iter().enumerate() {
        let _ = write!(
            out,
            "{:>3}. {:<width$}  {}",
            i + 1,
            s.name,
            match s.kind {
                Kind::Longrun => "longrun",
                Kind::Oneshot => "oneshot",
            }
        );
        if !s.enabled {
            out.push_str("  disabled");
        }
        if s.required {
            out.push_str("  required");
        }
        if !s.depends_on.is_empty() {
            let deps: Vec<String> = s
                .depends_on
                .iter()
                .map(|id| match s.wait_after.iter().find(|(w, _)| w == id) {
                    Some((_, d)) => format!("{} (+{})", name_of(id), format_duration(*d)),
                    None => name_of(id).to_owned(),
                })
                .collect();
            let _ = write!(out, "  depends on: {}", deps.join(", "));
        }
        if !s.after.is_empty() {
            let names: Vec<&str> = s.after.iter().map(name_of).collect();
            let _ = write!(out, "  after: {}", names.join(", "));
        }
        match s.ready {
            ReadyMode::Exec => {}
            ReadyMode::NotifyFd(fd) => {
                let _ = write!(out, "  ready: notify_fd {fd}");
            }
            ReadyMode::SdNotify => out.push_str("  ready: sd_notify"),
            ReadyMode::After(d) => {
                let _ = write!(out, "  ready: after {}", format_duration(d));
            }
        }
        if s.kind == Kind::Longrun && s.start_timeout != DEFAULT_START_TIMEOUT {
            let _ = write!(out, "  start_timeout: {}", format_duration(s.start_timeout));
        }
        out.push('\n');
        for c in &s.checks {
            let what = match (c.level, c.on_failure) {
                (Level::Ready, _) => "ready",
                (Level::Alive, OnFailure::Restart) => "alive, on failure: restart",
                (Level::Alive, OnFailure::Stop) => "alive, on failure: stop",
                (Level::Alive, OnFailure::Shutdown) => "alive, on failure: shutdown",
                (Level::Alive, OnFailure::Ignore) => "alive, on failure: ignore",
            };
            let _ = writeln!(
                out,
                "     check {} ({what}): {} every {}",
                c.name,
                describe_probe(&c.probe),
                format_duration(c.period)
            );
        }
    }
    out
}

/// A probe as `validate` shows it: `exec ARGV`, `tcp HOST:PORT`, `GET URL`.
fn describe_probe(probe: &Probe) -> String {
    match probe {
        Probe::Exec(argv) => {
            let words: Vec<String> = argv
                .iter()
                .map(|a| {
                    if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                        format!("{a:?}")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            format!("exec {}", words.join(" "))
        }
        Probe::Tcp { host: h, port } => format!("tcp {}:{port}", bracketed(h)),
        Probe::Http {
            host: h,
            port,
            path,
        } => format!("GET http://{}:{port}{path}", bracketed(h)),
    }
}

/// Formats a duration for messages, exactly: whole seconds as `"10s"`; under a second in the
/// largest unit that shows it whole (`"500ms"`, `"250µs"`, `"1ns"`); anything else as decimal
/// seconds (`"1.5s"`, `"2.000001s"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", d.as_secs());
    }
    if d.as_secs() == 0 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
