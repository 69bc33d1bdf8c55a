//! pidone as init and supervisor: one thread, one `poll()` loop. [`Supervisor::run`] is the
//! loop; one turn is settle (and maybe finish) → poll → signals → reap → what poll found ready.
//! Timers are deadlines that set poll's timeout: nothing wakes pidone up when nothing is due.
//!
//! Where things are:
//! - `table`: the services by stable [`Id`] (slot + generation) and their start order;
//! - `service`: one service as held here ([`Service`]: its spec, its [`Life`](crate::core::service::Life),
//!   its process and channels) and [`link`], which resolves dependencies to ids;
//! - `transition`: [`Supervisor::apply`], the one place a service's state changes (and is
//!   logged), and `on_exit`, which turns a reaped pid into its owner's event;
//! - `settle`: what follows from the state, until nothing changes: gates, stop order, deadlines;
//! - `launch`: starting a service's processes; `checks`: readiness channels and check runs;
//! - `poll`: the poll set and the dispatch of its results; `init`: the main program, signals,
//!   the end (stopping, draining, killing) and the exit status;
//! - `api`: answers to the control socket; `reload`: reconciling a new configuration;
//!   `dropin`: `pidone add` and `pidone remove`, a reload with a drop-in file written or deleted;
//!   `logs`: the services' last lines and pidone's own messages; `pipelines`: `log_to`'s pipes;
//! - `system`: the seam every process operation goes through ([`system::Real`], or the unit
//!   tests' fake in `testing`).
//!
//! Once every service and the main program are down, pidone stops what is left (orphans, the main
//! program's group): **Draining** sends SIGTERM and waits for the grace period, **Killing** sends
//! SIGKILL, repeated for late orphans, until pidone has no child at all. Then it exits.
//!
//! In services mode the whole shutdown is one budget, `global_shutdown_timeout`, counted from its
//! start: the stops, the grace of the stragglers, all of it. When it is spent, every service and
//! straggler left gets SIGKILL, and pidone exits at most [`KILL_WAIT`] later.

mod activation;
mod api;
mod checks;
mod conditions;
mod dropin;
mod endpoint;
mod events;
mod execs;
#[cfg(feature = "s6")]
mod hooks;
mod init;
mod launch;
mod logs;
#[cfg(feature = "s6")]
mod overlay;
mod pipelines;
mod poll;
mod reload;
mod select;
mod selected;
mod service;
mod settle;
mod system;
mod table;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod timer;
mod transition;
mod upstream;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Pid;

use crate::config::{Config, Timeouts};
use crate::control::{self, Server};
use crate::core::service::Step;
use crate::io::logsink::{self, Tally};
use crate::io::output::{Output, Source};
use crate::os::reap::{Children, Exit};
use crate::os::signals::Signals;

use crate::os::spawn::Child;
use system::{Real, System};

use poll::Ready;
use service::{Service, link, policy_of};
use table::{Id, Table};

/// The most services started in one turn of the loop: a configuration of thousands starts in
/// slices, with signals, exits and the control socket heard between them.
const STARTS_PER_TURN: usize = 64;

/// The control socket's place in [`Supervisor::servers`].
const SOCKET: usize = 0;
/// The TCP endpoint's.
const TCP: usize = 1;

/// How long, once the shutdown budget is spent and everything got SIGKILL, pidone waits for the
/// killed processes to be reaped before it exits anyway (a process in uninterruptible sleep can
/// outlive SIGKILL for a while; a normal one is gone within milliseconds).
pub const KILL_WAIT: Duration = Duration::from_secs(1);

/// The knobs of the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Forward signals to the whole process group of the main program.
    pub group: bool,
    /// Time given to stragglers between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Exit codes reported as 0.
    pub map_exit: Vec<i32>,
    /// Lines of output kept per service for the logs endpoint.
    pub log_lines: usize,
    /// How every line pidone writes looks.
    pub log_style: crate::io::format::Style,
    /// The `--config` paths, read again on reload.
    pub config_paths: Vec<std::path::PathBuf>,
    /// How many sockets pidone's parent passed to it (`LISTEN_FDS`), for the main program.
    pub passed_sockets: Option<i32>,
    /// `--listen`: the API's TCP addresses, in place of `[api] listen`, each with how it was
    /// given (`--listen 0.0.0.0:9100`), for errors.
    pub listen: Vec<(std::net::SocketAddr, String)>,
}

/// Who a reaped pid belonged to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Service(Id, Step),
    PostScript(Id),
    /// An exec check: the service and the check's position.
    Check(Id, usize),
    /// A service's `finish`, with the exit of the main process it runs for.
    #[cfg(feature = "s6")]
    Finish(Id, Exit),
    /// The running one of `shutdown_scripts`.
    #[cfg(feature = "s6")]
    ShutdownScript,
    /// A service's child whose exec failed (the failure already reported): its exit (127) says
    /// nothing more.
    FailedExec,
}

/// The end of pidone's life, once asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Services run and restart.
    Running,
    /// Stopping services in reverse dependency order; SIGKILL to all at `cap`, the end of the
    /// shutdown budget.
    Stopping { cap: Instant },
    /// Everything configured is down: SIGTERM to what is left, SIGKILL at `kill_at`.
    Draining { kill_at: Instant },
    /// SIGKILL sent to what is left; exit when nothing is left, or at `give_up_at`.
    Killing { give_up_at: Instant },
}

/// pidone as init and supervisor, over the system `S` ([`Real`], or a fake in unit tests).
pub struct Supervisor<S: System = Real> {
    sys: S,
    options: Options,
    /// True when pidone is PID 1 of its namespace; else it is a child subreaper.
    pid1: bool,
    /// True when a configuration was loaded (even with no service): TERM then means shutdown.
    services_mode: bool,
    /// The services' cgroups, when pidone manages cgroup v2.
    cgroups: Option<crate::os::cgroup::Tree>,
    /// Why pidone does not manage cgroups, when it does not: `pidone does not manage cgroups:
    /// WHY`, as status shows it.
    cgroups_why: Option<String>,
    /// Every service, by stable id, in start order.
    svcs: Table<Service>,
    global_shutdown: Duration,
    /// The end of the shutdown budget, once a shutdown began in services mode.
    budget_end: Option<Instant>,
    post_script_timeout: Duration,
    /// The `shutdown_scripts` not yet run, their time limit, and the one running (its pid and
    /// when it gets SIGKILL).
    #[cfg(feature = "s6")]
    shutdown_scripts: std::collections::VecDeque<Vec<String>>,
    #[cfg(feature = "s6")]
    shutdown_script_timeout: Duration,
    #[cfg(feature = "s6")]
    shutdown_script: Option<(Pid, Instant)>,
    output: Output,
    /// Each service's output pipes, tagged with the service.
    sources: Vec<(Id, Source)>,
    /// The pipes of `log_to`, by logger name (a few at most: a list).
    pipelines: Vec<(String, pipelines::Pipeline)>,
    procs: HashMap<Pid, Owner>,
    main_argv: Option<Vec<OsString>>,
    main: Option<Child>,
    /// The main program's process group (its pid), signalled with the stragglers.
    main_group: Option<Pid>,
    main_exit: Option<Exit>,
    /// The exit status a required service's failure imposes.
    required_failure: Option<i32>,
    phase: Phase,
    /// Stragglers already sent SIGTERM (subreaper mode), so a rescan does not repeat it.
    termed: HashSet<Pid>,
    /// The earliest deadline found by the last settle.
    wake: Option<Instant>,
    /// Children were left to reap at the end of the last call (its bound): the next turn
    /// comes at once.
    more_to_reap: bool,
    /// Services started in this turn: past [`STARTS_PER_TURN`], the next starts wait for the
    /// next turn, which comes at once.
    starts: usize,
    /// Orphans reaped so far.
    orphans_reaped: u64,
    /// Turns of the loop so far (each poll() that returned), for the metrics.
    wakeups: u64,
    /// pidone's own log messages dropped and not yet reported: more than the capture holds in
    /// one turn, and while the stderr queue was full.
    own_lost: [u64; 2],
    /// Services' lines discarded on a stdout that failed for good (or overflowing), to report.
    lost_output: Tally,
    /// sd_notify datagrams ignored (not from their service), to report.
    strangers: Tally,
    /// Check runs pidone could not start (no process or descriptor left), to report.
    unstarted: Tally,
    /// The control socket ([`SOCKET`]) and the TCP endpoint ([`TCP`]), services mode only.
    servers: [Option<Server>; 2],
    /// The last events, for `GET /v1/events`.
    events: events::Events,
    /// When pidone started, for uptimes, and the wall-clock time of that instant, so that every
    /// timestamp the API reports derives from one reading of the clock.
    started: Instant,
    started_wall: std::time::SystemTime,
    /// pidone's own sd_notify channel (`$NOTIFY_SOCKET` given to pidone, services mode), and
    /// what it last said there.
    upstream: Option<crate::io::notify::Upstream>,
    told: upstream::Told,
    /// s6-overlay's runtime, for a configuration read from its layouts.
    #[cfg(feature = "s6")]
    overlay: Option<overlay::Overlay>,
}

impl Supervisor<Real> {
    /// Takes over signals and, when pidone is not PID 1, registers as child subreaper. Errors here
    /// are fatal: nothing runs yet.
    pub fn new(
        options: Options,
        config: Option<Config>,
        socket: Option<&Path>,
    ) -> io::Result<Supervisor> {
        let signals = Signals::install()?;
        let pid1 = rustix::process::getpid().is_init();
        if !pid1 {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
            log::debug!("not PID 1: registered as child subreaper, orphans come here");
        }
        let now = Instant::now();
        let services_mode = config.is_some();
        // Without its control socket pidone still supervises: a read-only image or a socket
        // already served by another pidone costs the API, never the services.
        let server = if services_mode {
            let path = control::socket_path(socket);
            match Server::bind(&path) {
                Ok(server) => {
                    log::debug!("control socket at {}", path.display());
                    Some(server)
                }
                Err(err) => {
                    log::error!(
                        "control socket {}: {err}; running without it (mount a tmpfs at /run)",
                        path.display()
                    );
                    None
                }
            }
        } else {
            None
        };
        let cgroups = match config.as_ref().map(|c| &c.cgroups) {
            Some(Ok(available)) => {
                let wanted = ["cpu", "memory", "pids"];
                let enable: Vec<String> = (available.iter())
                    .filter(|c| wanted.contains(&c.as_str()))
                    .cloned()
                    .collect();
                crate::os::cgroup::Tree::set_up(&enable).map_err(|e| {
                    log::error!("setting up cgroups: {e}; running without them");
                    e.to_string()
                })
            }
            Some(Err(why)) => Err(why.clone()),
            None => Err(String::new()),
        };
        let config = config.unwrap_or(Config {
            timeouts: Timeouts::default(),
            log: Default::default(),
            services: Vec::new(),
            cgroups: Err("single-program mode".into()),
            api: Default::default(),
            #[cfg(feature = "s6")]
            shutdown_scripts: Vec::new(),
        });
        let real = Real {
            signals,
            listen_pid: options.passed_sockets.is_some(),
        };
        let mut supervisor = Supervisor::with_system(real, options, config, now);
        supervisor.pid1 = pid1;
        supervisor.services_mode = services_mode;
        if let Some(slot) = supervisor.servers.get_mut(SOCKET) {
            *slot = server;
        }
        (supervisor.cgroups, supervisor.cgroups_why) = match cgroups {
            Ok(tree) => (Some(tree), None),
            Err(why) => (None, Some(unmanaged(&why))),
        };
        if services_mode {
            supervisor.upstream = take_notify_socket();
        }
        Ok(supervisor)
    }

    /// Runs the services and the main program (if any) to their end, then everything they left
    /// behind to theirs; returns pidone's exit status. One turn of the loop: settle (and maybe
    /// finish) → poll → signals → reap → what poll found ready.
    pub fn run(mut self, program: Option<Vec<OsString>>) -> i32 {
        if let Err(code) = self.begin(program) {
            return code;
        }
        // From here on pidone's own messages go through the output queue: never a blocking write.
        logsink::set_capture(true);
        loop {
            let now = Instant::now();
            self.settle(now);
            if let Some(code) = self.finished(now) {
                return self.end(code);
            }
            self.queue_own_messages(now);
            let ready = self.wait_for_events();
            self.wakeups += 1;
            let now = Instant::now();
            if ready.iter().any(|r| matches!(r, Ready::Signals)) {
                for sig in self.sys.signals.pending() {
                    self.on_signal(sig, now);
                }
            }
            // Exits first: a check's verdict or a notify fd's EOF that a crash caused in the same
            // turn must find the crash already recorded, not be taken for its cause. A turn that
            // only moved output (the services' pipes, pidone's stdout: the turns of a flood of
            // logs) has no such verdict to order, and its exits come with SIGCHLD in a turn of
            // their own: it skips the wait4 that would find nothing. Not while draining or
            // killing, whose deadlines and stragglers are dealt with after each reap.
            let quiet = matches!(self.phase, Phase::Running | Phase::Stopping { .. });
            if self.more_to_reap || !quiet || !Ready::output_only(&ready) {
                self.reap(now);
            }
            self.on_ready(&ready, now);
        }
    }
}

/// Takes `$NOTIFY_SOCKET` out of pidone's environment (the main program does not inherit it
/// either) and opens the channel to it.
fn take_notify_socket() -> Option<crate::io::notify::Upstream> {
    let address = std::env::var("NOTIFY_SOCKET").ok()?;
    // SAFETY: pidone has one thread, and nothing reads the environment concurrently.
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    match crate::io::notify::Upstream::new(&address) {
        Ok(up) => Some(up),
        Err(err) => {
            log::warn!("NOTIFY_SOCKET={address}: {err}; not notifying");
            None
        }
    }
}

impl<S: System> Supervisor<S> {
    /// A supervisor of `config`'s services over `sys`, as it is at `now`: no signal taken over,
    /// no control socket, not PID 1, in services mode (the constructor of the unit tests).
    fn with_system(sys: S, options: Options, mut config: Config, now: Instant) -> Supervisor<S> {
        let width = config.name_width();
        let (svcs, _) = service::table_of(&mut config, now);
        let mut output = Output::new(width);
        output.set_style(options.log_style);
        Supervisor {
            sys,
            options,
            pid1: false,
            services_mode: true,
            svcs,
            global_shutdown: config.timeouts.global_shutdown,
            budget_end: None,
            post_script_timeout: config.timeouts.post_script,
            #[cfg(feature = "s6")]
            shutdown_scripts: std::mem::take(&mut config.shutdown_scripts).into(),
            #[cfg(feature = "s6")]
            shutdown_script_timeout: config.timeouts.shutdown_script,
            #[cfg(feature = "s6")]
            shutdown_script: None,
            output,
            sources: Vec::new(),
            pipelines: Vec::new(),
            procs: HashMap::new(),
            main_argv: None,
            main: None,
            main_group: None,
            main_exit: None,
            required_failure: None,
            phase: Phase::Running,
            termed: HashSet::new(),
            wake: None,
            more_to_reap: false,
            starts: 0,
            orphans_reaped: 0,
            wakeups: 0,
            own_lost: [0; 2],
            lost_output: Tally::default(),
            strangers: Tally::default(),
            unstarted: Tally::default(),
            servers: [None, None],
            events: Default::default(),
            cgroups: None,
            cgroups_why: config.cgroups.as_ref().err().map(|why| unmanaged(why)),
            started: now,
            started_wall: std::time::SystemTime::now(),
            upstream: None,
            told: upstream::Told::default(),
            #[cfg(feature = "s6")]
            overlay: None,
        }
    }

    /// Starts the main program in single-program mode (its exec error is pidone's exit status,
    /// 127/126 as the shell's); in services mode, keeps it for when the services are up.
    fn begin(&mut self, program: Option<Vec<OsString>>) -> Result<(), i32> {
        if self.services_mode {
            self.main_argv = program;
            return Ok(());
        }
        let Some(argv) = program else { return Err(2) };
        self.start_main(&argv)
    }

    /// Reaps every child that ended and hands each exit to its owner.
    fn reap(&mut self, now: Instant) {
        let mut ended = Vec::new();
        let children = self.sys.reap(&mut |pid, exit| ended.push((pid, exit)));
        self.more_to_reap = children == Children::More;
        for (pid, exit) in ended {
            self.on_exit(pid, exit, now);
        }
        self.on_reaped(children, now);
    }

    /// The last of pidone: the services' pipes are read to their end and every queued line is
    /// written out (never waiting twice for a stuck stream); returns `code`.
    fn end(&mut self, code: i32) -> i32 {
        for (_, src) in std::mem::take(&mut self.sources) {
            self.output.finish(src);
        }
        self.queue_own_messages(Instant::now());
        self.output.flush_all();
        // What the flush itself had to say (a stream that stayed stuck): a stream it gave up on
        // takes nothing more, so this never waits twice.
        self.queue_own_messages(Instant::now());
        self.output.flush_all();
        logsink::set_capture(false);
        code
    }
}

/// Why pidone does not manage cgroups, as status says it.
fn unmanaged(why: &str) -> String {
    format!("pidone does not manage cgroups: {why}")
}
