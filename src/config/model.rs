//! The validated configuration: [`Config`] and [`ServiceSpec`], plain data in start order that
//! the runtime reads and never looks a name up in again, with the types of their fields.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::graph::{self, ServiceId};
use crate::os::controls::Controls;
use crate::os::users::Credentials;

/// An environment: variable name to value. Sorted, so the child's environment is deterministic.
pub type Env = BTreeMap<String, String>;

/// How long a service must stay up before its restart delay and its count of restarts towards
/// `max_restarts` start again from the beginning, unless `restart_reset` says.
pub const DEFAULT_RESTART_RESET: Duration = Duration::from_secs(10);

/// The `PATH` used to find programs when neither pidone's environment nor the service sets one;
/// the same default Docker images get.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The global timeouts of `[timeouts]`.
    pub timeouts: Timeouts,
    /// How pidone writes lines (`[log]`).
    pub log: LogSettings,
    /// Every service, instances expanded, disabled ones included, in start order: each service
    /// comes after everything in its `depends_on` and `after`. A service's [`ServiceId`] is its
    /// index here; stopping in reverse index order respects every dependency.
    pub services: Vec<ServiceSpec>,
    /// The cgroup v2 controllers pidone can enable for services, or why it cannot manage
    /// cgroups (see [`crate::os::cgroup::detect`]).
    pub cgroups: Result<Vec<String>, String>,
    /// `shutdown_scripts`: programs run one by one, in order, once every service has stopped,
    /// within the shutdown budget (s6-overlay's `cont-finish.d`).
    #[cfg(feature = "s6")]
    pub shutdown_scripts: Vec<Vec<String>>,
    /// `[api]`: the HTTP endpoint on TCP.
    pub api: Api,
}

/// The paths served on TCP without a token unless `[api] public` says otherwise.
pub const DEFAULT_PUBLIC: [&str; 3] = ["/livez", "/readyz", "/metrics"];

/// `[api]`: pidone's API on TCP, beside the unix socket (which needs none of this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// `listen`: the addresses served, each with where and how it is written
    /// (`FILE:LINE: key "api.listen": 0.0.0.0:9100`), for errors.
    pub listen: Vec<(std::net::SocketAddr, String)>,
    /// `public`: the paths anyone may GET ([`DEFAULT_PUBLIC`] unless set; may be empty).
    pub public: Vec<String>,
    /// `token_file`'s token: any request.
    pub token: Option<Token>,
    /// `read_token_file`'s token: GET requests only.
    pub read_token: Option<Token>,
    /// `dropin_dir`: the directory `pidone add` writes services into and `pidone remove`
    /// deletes them from, read as one more source of the configuration (relative to the file
    /// that names it).
    pub dropin_dir: Option<PathBuf>,
    /// `cert_file` and `key_file`, read and checked: the TCP listeners speak HTTPS only.
    #[cfg(feature = "tls")]
    pub tls: Option<super::tls::Keys>,
}

impl Default for Api {
    fn default() -> Api {
        Api {
            listen: Vec::new(),
            public: DEFAULT_PUBLIC.map(String::from).to_vec(),
            token: None,
            read_token: None,
            dropin_dir: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// A bearer token, read from a file: it is never printed (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// `[timeouts]`. A key set to 0 keeps its default, as in go-overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `post_script_timeout` (default 7 s): how long after a service is up its post_script runs.
    pub post_script: Duration,
    /// `service_shutdown_timeout` (default 10 s): the default `stop_timeout` of every service.
    pub service_shutdown: Duration,
    /// `global_shutdown_timeout` (default 8 s): the budget of the whole shutdown, stragglers
    /// included; each stop gets at most what is left of it, then everything left gets SIGKILL.
    /// 8 s lets a default `docker stop` (SIGKILL after 10 s) find pidone gone: pidone exits at
    /// most 1 s after the budget, and a second is left for the engine's own delays.
    pub global_shutdown: Duration,
    /// `dependency_wait_timeout` (default 300 s): the default `dependency_wait_timeout` of every
    /// service.
    pub dependency_wait: Duration,
    /// `shutdown_script_timeout` (default 5 s, s6-overlay's `S6_KILL_FINISH_MAXTIME`): how long
    /// each of `shutdown_scripts` may run before it gets SIGKILL.
    pub shutdown_script: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            post_script: Duration::from_secs(7),
            service_shutdown: Duration::from_secs(10),
            global_shutdown: Duration::from_secs(8),
            dependency_wait: Duration::from_secs(300),
            shutdown_script: Duration::from_secs(5),
        }
    }
}

/// `[log]`: how every line pidone writes looks (the command line may add to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// `timestamps`: each line starts with its RFC 3339 UTC time, with milliseconds.
    pub timestamps: bool,
    /// `format = "json"`: each line is one JSON object.
    pub json: bool,
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
    /// Through a pipe to pidone, which appends each line to a file (`log_file`).
    File(FileLog),
}

/// `log_file` and its companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLog {
    /// Absolute; created if missing, at each start of the service.
    pub path: PathBuf,
    /// `log_max_size`: rotate before a line would take the file past this many bytes.
    pub max_size: Option<u64>,
    /// `log_keep`: rotated files kept, `path.1` (newest) to `path.N` (default 10).
    pub keep: u32,
    /// `log_format`: JSON lines in the file; `None` follows `[log] format`.
    pub json: Option<bool>,
    /// `log = "prefix"` too: the lines also go to pidone's stdout/stderr.
    pub console: bool,
}

/// Rotated files kept unless `log_keep` says.
pub const DEFAULT_LOG_KEEP: u32 = 10;

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
    /// The condition of each entry of `depends_on`, in the same order; empty when every one is
    /// `ready` (the array form).
    pub conditions: Vec<super::conditions::Condition>,
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
    /// How long the service must stay up for its restart delay and its count of restarts
    /// towards `max_restarts` to start again (`restart_reset`, default 10 s, at least 1 s).
    pub restart_reset: Duration,
    /// Restarts allowed before the service fails for good; 0 = unlimited.
    pub max_restarts: u32,
    /// The signal sent to stop the service (default SIGTERM).
    pub stop_signal: i32,
    /// How long after `stop_signal` the process group gets SIGKILL (default: the global
    /// `service_shutdown_timeout`); at shutdown, never past the budget.
    pub stop_timeout: Duration,
    /// `stop_timeout` was written, or `service_shutdown_timeout` set to other than its default:
    /// the shutdown budget's warning counts it (see `budget`).
    pub stop_timeout_set: bool,
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
    /// The argv of `finish`, run after each exit of the main process with two more arguments
    /// (s6's): the exit code and 0, or 256 and the signal; it exiting 125 keeps the service down.
    #[cfg(feature = "s6")]
    pub finish: Option<Vec<String>>,
    /// `finish` still running after this long gets SIGKILL (`finish_timeout`, default 5 s).
    #[cfg(feature = "s6")]
    pub finish_timeout: Duration,
    /// `env_dir`: a directory read at each start, one variable per file (its name), the file's
    /// content the value; an empty file unsets the variable (s6-envdir's convention).
    #[cfg(feature = "s6")]
    pub env_dir: Option<PathBuf>,
    /// Where output goes.
    pub log: LogMode,
    /// `tty = true`: stdout and stderr are one pseudo-terminal that pidone reads (its lines all
    /// go to stdout), so the program line-buffers and keeps its colours.
    pub tty: bool,
    /// `log_to`: the service whose stdin the main process's stdout goes to, through a pipe pidone
    /// holds across restarts of either side; and whether stderr goes there too
    /// (`log_to_stderr`). The logger starts before and stops after this service.
    pub log_to: Option<(String, bool)>,
    /// When a longrun is up (`ready`; default: once exec succeeded). Always `Exec` for a
    /// oneshot.
    pub ready: ReadyMode,
    /// How long a longrun may take from its spawn to being ready before the start counts as
    /// failed (`start_timeout`); None (the default): as long as it needs. The service may ask
    /// for more through sd_notify's `EXTEND_TIMEOUT_USEC=`.
    pub start_timeout: Option<Duration>,
    /// Its checks, in file order. Empty for a oneshot.
    pub checks: Vec<CheckSpec>,
    /// Resource limits, umask, capabilities and the rest (`[defaults]` filled in).
    pub controls: Controls,
    /// `description`: free text for status and the API.
    pub description: Option<String>,
    /// Variables whose value is read from a file at each start (`secrets`, and `*_FILE`
    /// variables with `env_from_files`): never kept in `env`, so never shown.
    pub secrets: Vec<Secret>,
    /// cgroup limits (interface file, value), written to the service's cgroup at each start;
    /// empty when pidone does not manage cgroups and the service made them optional.
    pub cgroup: Vec<(&'static str, String)>,
    /// The keys of the cgroup limits written but not applied (`memory_max, cpu_max`), pidone
    /// not managing cgroups or their controllers: the service said `cgroup_optional` (or is
    /// disabled). Empty when there are none; `validate` and status show them.
    pub cgroup_skipped: String,
    /// `watchdog`: a running longrun (with `ready = { sd_notify = true }`) must send
    /// `WATCHDOG=1` at least this often, or it is taken for hung.
    pub watchdog: Option<Duration>,
    /// `groups`: the groups the service is in (`@NAME` for the client and the API), each once;
    /// an instance is in its service's groups.
    pub groups: Vec<String>,
    /// `start = "on-demand"`: not started at boot, but by `pidone start`, by a dependent that
    /// starts, or by a connection to one of its `listen` sockets.
    pub on_demand: bool,
    /// An on-demand service idle this long is stopped (`idle_timeout`).
    pub idle_timeout: Option<Duration>,
    /// The sockets pidone binds at start-up and passes to the service as fds 3… (`listen`).
    pub listen: Vec<Listen>,
    /// A oneshot's `schedule` and what goes with it: run on that schedule, not at boot.
    pub timer: Option<Timer>,
    /// A oneshot's run still going after this long is stopped and counts as failed.
    pub max_runtime: Option<Duration>,
}

/// One variable set from a file's content at each start, one trailing newline removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub var: String,
    pub path: PathBuf,
}

/// One entry of `listen`: a socket pidone binds for the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: ListenAddr,
    /// As written (`tcp:0.0.0.0:8080`), for messages.
    pub text: String,
    /// The line of the `listen` key.
    pub line: usize,
}

/// What a `listen` socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP listening socket (IPv6 ones are IPv6-only, so `[::]` and `0.0.0.0` go together).
    Tcp(std::net::SocketAddr),
    Udp(std::net::SocketAddr),
    /// A stream socket at this path (a stale socket there is replaced; mode 0666).
    Unix(PathBuf),
}

/// When a timed oneshot runs (`schedule`, `timezone`, `jitter`, `overlap`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    pub schedule: Schedule,
    /// `schedule` as written, for status.
    pub text: String,
    /// The zone of a cron schedule: UTC, or `timezone` read from the image's zoneinfo.
    pub zone: crate::core::zone::Zone,
    /// Each run is put off by a random delay below this (0: none).
    pub jitter: Duration,
    pub overlap: Overlap,
}

/// What a schedule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Five cron fields or a shorthand, in `Timer::zone`.
    Cron(crate::core::schedule::Cron),
    /// `@every DURATION`: the first run that long after pidone starts, then one each period.
    Every(Duration),
}

/// What a run that comes due does while the previous one still runs (`overlap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// It is skipped (and logged).
    #[default]
    Skip,
    /// It runs once the previous one is over (at most one waits).
    Queue,
    /// The previous one is stopped, then it runs.
    Kill,
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

/// A name a service can have: valid, and not longer than names may be.
pub fn is_service_name(name: &str) -> bool {
    is_valid_name(name) && name.len() <= super::limits::MAX_NAME_LEN
}

/// `[A-Za-z0-9_.-]+`, for service and check names. go-overlay does not allow `.`; pidone does,
/// for names like `php8.2-fpm`.
pub(super) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
