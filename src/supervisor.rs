//! The main loop: one `poll()` over the signal self-pipe, the children's pidfds, the services'
//! output pipes and (when output is queued) pidone's own stdout/stderr, with the earliest deadline
//! as its timeout. Each turn: poll → drain signals → move output → reap → settle. Nothing wakes
//! pidone up when nothing is due.
//!
//! The supervisor owns the services (in start order, [`ServiceId`] = index) and the optional main
//! program. [`Supervisor::settle`] applies everything that follows from the current state, until
//! nothing changes: starts services whose dependencies are up, fails those whose dependencies
//! failed, fires due deadlines, starts the main program once every service is up, and during a
//! shutdown stops each service once everything that depends on it is down.
//!
//! Once every service and the main program are down, pidone stops what is left (orphans, the main
//! program's group): **Draining** sends SIGTERM and waits for the grace period, **Killing** sends
//! SIGKILL, repeated for late orphans, until pidone has no child at all. Then it exits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::config::{Config, Kind, Level, LogMode, ReadyMode, ServiceSpec, Timeouts};
use crate::control::{self, Answer, Request, Server};
use crate::graph::ServiceId;
use crate::health::Check;
use crate::logsink;
use crate::notify::Notifier;
use crate::output::{Output, ReadOutcome, Source, Stream};
use crate::probe::Run;
use crate::procfs;
use crate::reap::{self, Children, Exit};
use crate::service::{Action, Event, Policy, Service, State, Step, later};
use crate::signals::{self, Signals};
use crate::spawn::{self, Child, Launch};
use crate::sys;

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
    /// The `--config` paths, read again on reload.
    pub config_paths: Vec<std::path::PathBuf>,
}

/// One supervised service: its configuration, its state, its process.
struct Svc {
    spec: ServiceSpec,
    policy: Policy,
    rt: Service,
    child: Option<Child>,
    /// When the post_script is due (post_script_timeout after the service came up).
    post_at: Option<Instant>,
    /// The last lines of its output (prefix mode), oldest first, at most `log_lines`.
    log: VecDeque<String>,
    /// The user asked it (or something it depends on) down through the control socket: it is
    /// stopped once its dependents are down, and not restarted.
    held: bool,
    /// Start it again once it is down (a restart request).
    restart_requested: bool,
    /// Gone from the configuration at a reload, still stopping; forgotten at the next reload.
    removed: bool,
    /// The readiness channel of the current start (notify fd or sd_notify socket).
    notifier: Option<Notifier>,
    /// The current start waits for the notifier's readiness message.
    awaiting_notice: bool,
    /// What the process last said through sd_notify: `STATUS=` and `MAINPID=`.
    notify_status: Option<String>,
    main_pid: Option<i32>,
    /// The state of each of `spec.checks`, and its run in progress.
    checks: Vec<Check>,
    runs: Vec<Option<Run>>,
}

impl Svc {
    /// A service of a new configuration, as it is at `now`: PENDING, or STOPPED if disabled.
    fn new(spec: ServiceSpec, now: Instant) -> Svc {
        let policy = policy_of(&spec);
        let rt = Service::new(spec.enabled, &policy, now);
        Svc {
            spec,
            policy,
            rt,
            child: None,
            post_at: None,
            log: VecDeque::new(),
            held: false,
            restart_requested: false,
            removed: false,
            notifier: None,
            awaiting_notice: false,
            notify_status: None,
            main_pid: None,
            checks: Vec::new(),
            runs: Vec::new(),
        }
        .with_checks()
    }

    /// Fresh, idle check states for `spec.checks` (a new service, or a new spec at a reload).
    fn with_checks(mut self) -> Svc {
        let n = self.spec.checks.len();
        self.checks = vec![Check::new(); n];
        self.runs = (0..n).map(|_| None).collect();
        self
    }
}

/// The parts of a service's configuration its state machine reads.
fn policy_of(spec: &ServiceSpec) -> Policy {
    Policy {
        kind: spec.kind,
        restart: spec.restart,
        success_exit_codes: spec.success_exit_codes.clone(),
        restart_delay: spec.restart_delay,
        restart_delay_max: spec.restart_delay_max,
        max_restarts: spec.max_restarts,
        stop_signal: spec.stop_signal,
        stop_timeout: spec.stop_timeout,
        has_pre_script: spec.pre_script.is_some(),
        ready_after: match spec.ready {
            ReadyMode::After(d) => Some(d),
            _ => None,
        },
        waits_for_ready: matches!(spec.ready, ReadyMode::NotifyFd(_) | ReadyMode::SdNotify)
            || spec.checks.iter().any(|c| c.level == Level::Ready),
        start_timeout: spec.start_timeout,
        waiting_for: waiting_for(spec),
    }
}

/// What a start of `spec` waits for before it is up, as the reason of its STARTING state:
/// `waiting for READY=1 and check http`.
fn waiting_for(spec: &ServiceSpec) -> String {
    let mut what: Vec<String> = match spec.ready {
        ReadyMode::Exec => Vec::new(),
        ReadyMode::NotifyFd(n) => vec![format!("a newline on fd {n}")],
        ReadyMode::SdNotify => vec!["READY=1".to_string()],
        ReadyMode::After(d) => vec![format!("{} alive", crate::config::format_duration(d))],
    };
    what.extend(
        spec.checks
            .iter()
            .filter(|c| c.level == Level::Ready)
            .map(|c| format!("check {}", c.name)),
    );
    if what.is_empty() {
        String::new()
    } else {
        format!("waiting for {}", what.join(" and "))
    }
}

/// Who a reaped pid belonged to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Service(ServiceId, Step),
    PostScript(ServiceId),
    /// An exec check: the service and the check's position.
    Check(ServiceId, usize),
}

/// The end of pidone's life, once asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Services run and restart.
    Running,
    /// Stopping services in reverse dependency order; SIGKILL to all at `cap`.
    Stopping { cap: Instant },
    /// Everything configured is down: SIGTERM to what is left, SIGKILL at `kill_at`.
    Draining { kill_at: Instant },
    /// SIGKILL sent to what is left; exit when nothing is left, or at `give_up_at`.
    Killing { give_up_at: Instant },
}

/// What poll found ready, by position in the poll set.
#[derive(Debug, Clone, Copy)]
enum Ready {
    Signals,
    Pidfd,
    Source(usize),
    Sink(Stream),
    Listener,
    Conn(usize),
    /// A service's notifier.
    Notify(ServiceId),
    /// A check's run in progress.
    Probe(ServiceId, usize),
}

/// pidone as init and supervisor.
pub struct Supervisor {
    signals: Signals,
    options: Options,
    /// True when pidone is PID 1 of its namespace; else it is a child subreaper.
    pid1: bool,
    /// True when a configuration was loaded (even with no service): TERM then means shutdown.
    services_mode: bool,
    svcs: Vec<Svc>,
    /// For each service, the services that depend on it or are ordered after it.
    dependents: Vec<Vec<ServiceId>>,
    global_shutdown: Duration,
    post_script_timeout: Duration,
    output: Output,
    /// Each service's output pipes, tagged with the service.
    sources: Vec<(ServiceId, Source)>,
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
    /// Orphans reaped so far.
    orphans_reaped: u64,
    /// pidone's own log messages dropped and not yet reported: more than the capture holds in
    /// one turn, and while the stderr queue was full.
    own_lost: [u64; 2],
    /// The control socket (services mode only).
    server: Option<Server>,
    /// When pidone started, for uptimes, and the wall-clock time of that instant, so that every
    /// timestamp the API reports derives from one reading of the clock.
    started: Instant,
    started_wall: std::time::SystemTime,
}

impl Supervisor {
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
                        "control socket {}: {err}; running without it",
                        path.display()
                    );
                    None
                }
            }
        } else {
            None
        };
        let config = config.unwrap_or(Config {
            timeouts: Timeouts::default(),
            services: Vec::new(),
        });
        let dependents = config.dependents();
        let width = config.name_width();
        let svcs = config
            .services
            .into_iter()
            .map(|spec| Svc::new(spec, now))
            .collect();
        Ok(Supervisor {
            signals,
            options,
            pid1,
            services_mode,
            svcs,
            dependents,
            global_shutdown: config.timeouts.global_shutdown,
            post_script_timeout: config.timeouts.post_script,
            output: Output::new(width),
            sources: Vec::new(),
            procs: HashMap::new(),
            main_argv: None,
            main: None,
            main_group: None,
            main_exit: None,
            required_failure: None,
            phase: Phase::Running,
            termed: HashSet::new(),
            wake: None,
            orphans_reaped: 0,
            own_lost: [0; 2],
            server,
            started: now,
            started_wall: std::time::SystemTime::now(),
        })
    }

    /// Runs the services and the main program (if any) to their end, then everything they left
    /// behind to theirs; returns pidone's exit status.
    pub fn run(mut self, program: Option<Vec<OsString>>) -> i32 {
        if !self.services_mode {
            // Single-program mode: exec errors are reported as the shell does (127/126).
            let Some(argv) = program else { return 2 };
            if let Err(code) = self.start_main(&argv) {
                return code;
            }
        } else {
            self.main_argv = program;
        }
        // From here on pidone's own messages go through the output queue: never a blocking write.
        logsink::set_capture(true);
        loop {
            self.settle(Instant::now());
            if let Some(code) = self.finished() {
                for (_, src) in std::mem::take(&mut self.sources) {
                    self.output.finish(src);
                }
                self.queue_own_messages();
                self.output.flush_all();
                // What the flush itself had to say (a stream that stayed stuck): a stream it gave
                // up on takes nothing more, so this never waits twice.
                self.queue_own_messages();
                self.output.flush_all();
                logsink::set_capture(false);
                return code;
            }
            self.queue_own_messages();
            let ready = self.wait_for_events();
            for sig in self.signals.pending() {
                self.on_signal(sig);
            }
            // Exits first: a check's verdict or a notify fd's EOF that a crash caused in the same
            // turn must find the crash already recorded, not be taken for its cause.
            let mut ended = Vec::new();
            let children = reap::reap(|pid, exit| ended.push((pid, exit)));
            let now = Instant::now();
            for (pid, exit) in ended {
                self.on_exit(pid, exit, now);
            }
            self.on_reaped(children, now);
            self.on_ready(&ready);
        }
    }

    /// Moves pidone's captured log messages into the stderr queue, and reports those dropped.
    fn queue_own_messages(&mut self) {
        const WHY: [&str; 2] = [
            "more than 512 KiB of them in one turn of the loop",
            "stderr is not keeping up",
        ];
        let (bytes, overflow) = logsink::take();
        self.own_lost[0] += overflow;
        if !bytes.is_empty() && !self.output.own_lines(Stream::Stderr, &bytes) {
            self.own_lost[1] += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        for (lost, why) in self.own_lost.iter_mut().zip(WHY) {
            if *lost > 0 {
                let note = format!("pidone: warning: {lost} log messages dropped: {why}\n");
                if self.output.own_lines(Stream::Stderr, note.as_bytes()) {
                    *lost = 0;
                }
            }
        }
    }

    fn start_main(&mut self, argv: &[OsString]) -> Result<(), i32> {
        match spawn::spawn(argv, self.signals.saved()) {
            Ok(child) => {
                log::debug!(
                    "started {:?} as pid {}",
                    argv[0],
                    child.pid.as_raw_nonzero()
                );
                self.main_group = Some(child.pid);
                self.main = Some(child);
                Ok(())
            }
            Err(err) => {
                let name = argv
                    .first()
                    .map(|p| p.to_string_lossy())
                    .unwrap_or_default();
                log::error!("{name}: {}", spawn::exec_failure_reason(&err));
                Err(spawn::exec_failure_code(&err))
            }
        }
    }

    /// Sleeps in poll() until a signal, a child's exit, output to move, or the next deadline.
    fn wait_for_events(&self) -> Vec<Ready> {
        let timeout = self.wake.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        let signal_fd = self.signals.fd();
        let mut fds = vec![PollFd::new(&signal_fd, PollFlags::IN)];
        let mut what = vec![Ready::Signals];
        let pidfds = self
            .main
            .iter()
            .chain(self.svcs.iter().filter_map(|s| s.child.as_ref()));
        for fd in pidfds.filter_map(Child::pidfd) {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            what.push(Ready::Pidfd);
        }
        // Back-pressure: a stream whose queue is full stops reading its sources until it drains.
        for (i, (_, src)) in self.sources.iter().enumerate() {
            if !self.output.paused(src.stream()) {
                fds.push(PollFd::from_borrowed_fd(src.fd(), PollFlags::IN));
                what.push(Ready::Source(i));
            }
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.output.wants_write(stream) {
                fds.push(PollFd::from_borrowed_fd(
                    self.output.fd(stream),
                    PollFlags::OUT,
                ));
                what.push(Ready::Sink(stream));
            }
        }
        for (i, svc) in self.svcs.iter().enumerate() {
            if let Some(notifier) = &svc.notifier {
                fds.push(PollFd::from_borrowed_fd(notifier.fd(), PollFlags::IN));
                what.push(Ready::Notify(ServiceId(i)));
            }
            for (k, run) in svc.runs.iter().enumerate() {
                if let Some((fd, events)) = run.as_ref().and_then(Run::interest) {
                    fds.push(PollFd::from_borrowed_fd(fd, events));
                    what.push(Ready::Probe(ServiceId(i), k));
                }
            }
        }
        if let Some(server) = &self.server {
            if server.has_room() {
                fds.push(PollFd::from_borrowed_fd(server.fd(), PollFlags::IN));
                what.push(Ready::Listener);
            }
            for (i, conn) in server.conns.iter().enumerate() {
                let events = if conn.answering() {
                    PollFlags::OUT
                } else {
                    PollFlags::IN
                };
                fds.push(PollFd::from_borrowed_fd(conn.fd(), events));
                what.push(Ready::Conn(i));
            }
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => log::error!("poll: {err}"),
        }
        fds.iter()
            .zip(what)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, w)| w)
            .collect()
    }

    /// Moves output: reads ready service pipes (dropping those at EOF), writes queued lines.
    fn on_ready(&mut self, ready: &[Ready]) {
        let mut closed = Vec::new();
        for r in ready {
            match *r {
                Ready::Source(i) => {
                    let Some((id, src)) = self.sources.get_mut(i) else {
                        continue;
                    };
                    if self.output.read_from(src) == ReadOutcome::Eof {
                        closed.push(i);
                    }
                    let (id, lines) = (*id, src.take_lines());
                    self.record_lines(id, lines);
                }
                Ready::Sink(stream) => self.output.write_ready(stream),
                Ready::Listener => {
                    if let Some(server) = &mut self.server {
                        server.accept(Instant::now());
                    }
                }
                Ready::Conn(i) => self.serve(i),
                Ready::Notify(id) => self.on_notice(id, Instant::now()),
                Ready::Probe(id, k) => self.on_probe_ready(id, k, Instant::now()),
                Ready::Signals | Ready::Pidfd => {}
            }
        }
        for i in closed.into_iter().rev() {
            self.sources.swap_remove(i);
        }
        if let Some(server) = &mut self.server {
            server.conns.retain(|c| !c.is_closed());
        }
    }

    /// Moves one connection forward: reads its request and answers it, or writes its answer.
    fn serve(&mut self, i: usize) {
        let Some(conn) = self.server.as_mut().and_then(|s| s.conns.get_mut(i)) else {
            return;
        };
        if conn.answering() {
            conn.write();
            return;
        }
        if conn.following() {
            conn.drain_input();
            return;
        }
        let Some(request) = conn.read() else { return };
        let uid = conn.uid;
        let answer = if request.acts() && uid != 0 && uid != rustix::process::getuid().as_raw() {
            Answer::error(
                403,
                "permission denied: only root and pidone's own user may act; others may read",
            )
        } else if let Request::Logs {
            name,
            n,
            follow: true,
        } = &request
        {
            let room = self.server.as_ref().is_some_and(Server::may_follow);
            match self.lookup_one(name) {
                Ok(_) if !room => Answer::error(503, "too many clients follow logs; try later"),
                Ok(id) => {
                    // Field by field, so the log can be read while the connection is written.
                    let log = &self.svcs[id.0].log;
                    let skip = log.len().saturating_sub(*n);
                    let lines: Vec<&str> = log.iter().skip(skip).map(String::as_str).collect();
                    if let Some(conn) = self.server.as_mut().and_then(|s| s.conns.get_mut(i)) {
                        conn.stream(id.0, &lines);
                        conn.write();
                    }
                    return;
                }
                Err(answer) => answer,
            }
        } else {
            self.answer(request, Instant::now())
        };
        if let Some(conn) = self.server.as_mut().and_then(|s| s.conns.get_mut(i)) {
            conn.answer(&answer);
            conn.write();
        }
    }

    fn on_signal(&mut self, sig: i32) {
        if sig == libc::SIGCHLD {
            return; // Reaping follows every wakeup anyway.
        }
        let stopping = !matches!(self.phase, Phase::Running);
        if self.services_mode && (sig == libc::SIGTERM || sig == libc::SIGINT) {
            if stopping {
                log::warn!("second {}: killing everything now", signals::name(sig));
                self.kill_all(Instant::now());
            } else {
                log::info!("{}: shutting down", signals::name(sig));
                self.begin_shutdown(Instant::now());
            }
            return;
        }
        if self.services_mode && sig == libc::SIGHUP {
            match self.reload(Instant::now()) {
                Ok(_) => {}
                Err(errors) => {
                    log::error!("SIGHUP: configuration refused, the old one keeps running:");
                    for err in errors {
                        log::error!("  {err}");
                    }
                }
            }
            return;
        }
        match &self.main {
            Some(main) => {
                let sent = if self.options.group {
                    main.signal_group(sig)
                } else {
                    main.signal(sig)
                };
                match sent {
                    Ok(()) => log::debug!("forwarded {} to the child", signals::name(sig)),
                    Err(err) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
                    Err(err) => log::warn!("forwarding {}: {err}", signals::name(sig)),
                }
            }
            None if stopping && (sig == libc::SIGTERM || sig == libc::SIGINT) => {
                log::debug!(
                    "{} while stopping: killing what is left",
                    signals::name(sig)
                );
                self.kill_all(Instant::now());
            }
            None => log::debug!(
                "ignored {}: no program to forward it to",
                signals::name(sig)
            ),
        }
    }

    fn on_exit(&mut self, pid: Pid, exit: Exit, now: Instant) {
        if self.main.as_ref().is_some_and(|m| m.pid == pid) {
            log::debug!("main program {} ended: {exit}", pid.as_raw_nonzero());
            self.main = None;
            self.main_exit = Some(exit);
            self.begin_shutdown(now);
            return;
        }
        match self.procs.remove(&pid) {
            Some(Owner::Service(id, step)) => {
                let svc = &mut self.svcs[id.0];
                svc.child = None;
                // Nothing the service spawned survives it: its session's group goes too.
                kill_group(pid, libc::SIGKILL);
                let name = &svc.spec.name;
                log::debug!(
                    "{name}: {} {} ended: {exit}",
                    step_name(step),
                    pid.as_raw_nonzero()
                );
                self.apply(id, Event::Exited(step, exit), now);
            }
            Some(Owner::Check(id, k)) => {
                kill_group(pid, libc::SIGKILL);
                self.on_check_exit(id, k, pid, exit, now);
            }
            Some(Owner::PostScript(id)) => {
                kill_group(pid, libc::SIGKILL);
                let name = &self.svcs[id.0].spec.name;
                if exit == Exit::Code(0) {
                    log::debug!("{name}: post_script done");
                } else {
                    log::warn!("{name}: post_script failed: {exit}");
                }
            }
            None => {
                self.orphans_reaped += 1;
                log::trace!("reaped orphan {}: {exit}", pid.as_raw_nonzero());
            }
        }
    }

    /// Feeds `event` to service `id` and carries out the action it returns.
    fn apply(&mut self, id: ServiceId, event: Event, now: Instant) {
        let svc = &mut self.svcs[id.0];
        let before = svc.rt.state;
        let action = svc.rt.handle(&svc.policy, event, now);
        let after = svc.rt.state;
        if before != after {
            let reason = &svc.rt.reason;
            let sep = if reason.is_empty() { "" } else { ": " };
            log::info!(
                "{}: {} -> {}{sep}{reason}",
                svc.spec.name,
                before.as_str(),
                after.as_str()
            );
            if after == State::Running && svc.spec.post_script.is_some() {
                svc.post_at = Some(later(now, self.post_script_timeout));
            }
            match after {
                State::Running => self.on_up(id, now),
                State::Starting => {}
                _ => self.on_down(id),
            }
            let svc = &self.svcs[id.0];
            if after == State::Failed && svc.spec.required && self.required_failure.is_none() {
                // A failed start is 1 (documented), whatever an earlier run exited with.
                let code = match svc.rt.last_exit {
                    _ if svc.rt.start_failed => 1,
                    Some(exit) if exit != Exit::Code(0) => exit.code(),
                    _ => 1,
                };
                log::error!("required service {} failed: shutting down", svc.spec.name);
                self.required_failure = Some(code);
                self.begin_shutdown(now);
            }
        }
        match action {
            Action::Nothing => {}
            Action::Spawn(step) => self.spawn_step(id, step, now),
            Action::Signal(sig) => {
                if let Some(child) = &self.svcs[id.0].child {
                    kill_group(child.pid, sig);
                }
            }
        }
    }

    /// Starts a service's pre_script or main process and reports the outcome to its state machine.
    fn spawn_step(&mut self, id: ServiceId, step: Step, now: Instant) {
        let spec = &self.svcs[id.0].spec;
        let argv = match step {
            Step::PreScript => spec.pre_script.clone().unwrap_or_default(),
            Step::Main => spec.argv.clone(),
        };
        let longrun_main = step == Step::Main && spec.kind == Kind::Longrun;
        let handover = if longrun_main {
            self.prepare_notify(id)
        } else {
            Ok(Handover::default())
        };
        let event = match handover.and_then(|h| self.launch(id, &argv, h)) {
            Ok(child) => {
                let pid = child.pid;
                self.procs.insert(pid, Owner::Service(id, step));
                self.svcs[id.0].child = Some(child);
                Event::Spawned(step)
            }
            Err(err) => Event::SpawnFailed(step, spawn::exec_failure_reason(&err)),
        };
        self.apply(id, event, now);
        if longrun_main && self.svcs[id.0].rt.state == State::Starting {
            self.arm_checks(id, Level::Ready, now);
        }
    }

    /// Spawns `argv` as service `id` would run: its user, environment, directory and output.
    fn launch(&mut self, id: ServiceId, argv: &[String], handover: Handover) -> io::Result<Child> {
        let spec = &self.svcs[id.0].spec;
        let (stdout, stderr, sources) = match &spec.log {
            LogMode::Prefix => {
                let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let sources = [
                    self.output.source(&spec.name, Stream::Stdout, out_r),
                    self.output.source(&spec.name, Stream::Stderr, err_r),
                ];
                (Stdio::from(out_w), Stdio::from(err_w), Some(sources))
            }
            LogMode::Raw => (Stdio::inherit(), Stdio::inherit(), None),
            LogMode::Null => (Stdio::null(), Stdio::null(), None),
            LogMode::File(path) => {
                let file = crate::files::open_for_service(path, spec.user.as_ref())
                    .map_err(|e| io::Error::other(format!("log_file {}: {e}", path.display())))?;
                let copy = file.try_clone()?;
                (Stdio::from(file), Stdio::from(copy), None)
            }
        };
        let mut env = std::borrow::Cow::Borrowed(&spec.env);
        if let Some((key, value)) = handover.env {
            let env = env.to_mut();
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        let launch = Launch {
            argv,
            env: &env,
            workdir: spec.workdir.as_deref(),
            user: spec.user.as_ref(),
            stdout,
            stderr,
            notify_fd: handover.notify_fd,
        };
        let child = spawn::launch(launch, self.signals.saved())?;
        // The write ends went to the child (and are closed here with `launch`): the pipes reach
        // EOF when the service and everything it spawned are gone.
        self.sources
            .extend(sources.into_iter().flatten().map(|src| (id, src)));
        Ok(child)
    }

    fn run_post_script(&mut self, id: ServiceId) {
        let Some(argv) = self.svcs[id.0].spec.post_script.clone() else {
            return;
        };
        match self.launch(id, &argv, Handover::default()) {
            Ok(child) => {
                self.procs.insert(child.pid, Owner::PostScript(id));
            }
            Err(err) => log::warn!("{}: post_script: {err}", self.svcs[id.0].spec.name),
        }
    }

    /// Keeps the last [`Options::log_lines`] lines of each service for the logs endpoint, and
    /// hands them to the clients following it.
    fn record_lines(&mut self, id: ServiceId, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        if let Some(server) = &mut self.server {
            server.follow_lines(id.0, &lines);
        }
        let keep = self.options.log_lines;
        // A service forgotten by a reload may still have output in its pipes: no log for it.
        let Some(svc) = self.svcs.get_mut(id.0) else {
            return;
        };
        let log = &mut svc.log;
        log.extend(lines);
        while log.len() > keep {
            log.pop_front();
        }
    }

    /// Applies everything that follows from the current state, until nothing changes, and
    /// computes the next deadline.
    fn settle(&mut self, now: Instant) {
        loop {
            self.wake = None;
            let mut changed = false;
            for i in 0..self.svcs.len() {
                changed |= self.settle_one(ServiceId(i), now);
            }
            if !changed {
                break;
            }
        }
        if self.phase == Phase::Running && self.main.is_none() && self.main_exit.is_none() {
            self.maybe_start_main(now);
        }
        if self.phase == Phase::Running
            && self.services_mode
            && self.main_argv.is_none()
            && self.main.is_none()
            && !self.svcs.iter().any(|s| {
                s.rt.is_active()
                    || (s.rt.state == State::Pending && s.rt.want_up)
                    || (s.held && !s.removed)
            })
        {
            log::info!("no service left to run: exiting");
            self.begin_shutdown(now);
        }
        if let Phase::Stopping { cap } = self.phase {
            if now >= cap {
                log::warn!("global_shutdown_timeout reached: killing every service");
                self.kill_all(now);
            } else if self.main.is_none() && !self.svcs.iter().any(|s| s.rt.is_active()) {
                self.begin_draining(now);
            } else {
                self.wake_at(cap);
            }
        }
        match self.phase {
            Phase::Running | Phase::Stopping { .. } => {}
            Phase::Draining { kill_at } => self.wake_at(kill_at),
            Phase::Killing { give_up_at } => self.wake_at(give_up_at),
        }
        if let Some(at) = self.server.as_mut().and_then(|s| s.expire(now)) {
            self.wake_at(at);
        }
    }

    /// Settles one service; true when its state changed.
    fn settle_one(&mut self, id: ServiceId, now: Instant) -> bool {
        let before = (self.svcs[id.0].rt.state, self.svcs[id.0].rt.want_up);
        let shutting_down = !matches!(self.phase, Phase::Running);
        if let Some(at) = self.svcs[id.0].post_at
            && self.svcs[id.0].rt.state == State::Running
        {
            if now >= at {
                self.svcs[id.0].post_at = None;
                self.run_post_script(id);
            } else {
                self.wake_at(at);
            }
        }
        let svc = &self.svcs[id.0];
        match svc.rt.state {
            State::Pending if shutting_down || !svc.rt.want_up || svc.held => {
                self.apply(id, Event::Stop, now);
            }
            State::Pending => match start_time(&self.svcs, id) {
                Gate::Failed(dep) => self.apply(id, Event::DependencyFailed(dep), now),
                Gate::Waiting => {
                    let limit = svc.spec.dependency_wait_timeout;
                    let at = later(svc.rt.waiting_since, limit);
                    if now >= at {
                        self.apply(id, Event::DependencyTimeout(limit), now);
                    } else {
                        self.wake_at(at);
                    }
                }
                Gate::At(at) if now >= at => self.apply(id, Event::Start, now),
                Gate::At(at) => self.wake_at(at),
            },
            State::Starting | State::Running
                if ((shutting_down && self.main.is_none()) || svc.held)
                    && self.dependents_down(id) =>
            {
                self.apply(id, Event::Stop, now);
            }
            State::Stopped | State::Failed if svc.restart_requested && !shutting_down => {
                let svc = &mut self.svcs[id.0];
                svc.restart_requested = false;
                svc.held = false;
                // A restart by request counts like an automatic one.
                svc.rt.restarts += 1;
                self.apply(id, Event::Enable, now);
            }
            State::Stopping => match svc.rt.deadline {
                Some(at) if now >= at => {
                    log::warn!(
                        "{}: still running after stop_timeout: SIGKILL",
                        svc.spec.name
                    );
                    self.apply(id, Event::DeadlinePassed, now);
                }
                Some(at) => self.wake_at(at),
                None => {}
            },
            _ => {}
        }
        let svc = &self.svcs[id.0];
        if svc.rt.state == State::Starting {
            // Waiting for readiness: `ready.after` or `start_timeout`.
            match svc.rt.deadline {
                Some(at) if now >= at => self.apply(id, Event::DeadlinePassed, now),
                Some(at) => self.wake_at(at),
                None => {}
            }
        }
        if !self.svcs[id.0].checks.is_empty() {
            self.settle_checks(id, now);
        }
        let svc = &self.svcs[id.0];
        before != (svc.rt.state, svc.rt.want_up)
    }

    /// True when nothing that depends on service `id` (or is ordered after it) still runs.
    fn dependents_down(&self, id: ServiceId) -> bool {
        self.dependents[id.0]
            .iter()
            .all(|d| !self.svcs[d.0].rt.is_active())
    }

    /// Starts the main program once no service is on its way up (every enabled service up, or
    /// failed for good).
    fn maybe_start_main(&mut self, now: Instant) {
        if self.main_argv.is_none() {
            return;
        }
        let settling = self.svcs.iter().any(|s| {
            s.rt.want_up
                && (s.rt.state == State::Pending
                    || (s.rt.state == State::Starting && !s.rt.is_up(s.spec.kind)))
        });
        if settling {
            return;
        }
        let Some(argv) = self.main_argv.take() else {
            return;
        };
        if let Err(code) = self.start_main(&argv) {
            self.main_exit = Some(Exit::Code(code));
            self.begin_shutdown(now);
        }
    }

    fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Begins the ordered shutdown: the main program first, then services once their dependents
    /// are down.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::Stopping {
            cap: later(now, self.global_shutdown),
        };
        self.main_argv = None;
        self.stop_alive_checks();
        if let Some(main) = &self.main {
            let sent = if self.options.group {
                main.signal_group(libc::SIGTERM)
            } else {
                main.signal(libc::SIGTERM)
            };
            if let Err(err) = sent {
                log::debug!("SIGTERM to the main program: {err}");
            }
        }
    }

    /// Everything configured is down: SIGTERM to whatever is left.
    fn begin_draining(&mut self, now: Instant) {
        log::debug!("stopping what is left behind");
        self.phase = Phase::Draining {
            kill_at: later(now, self.options.grace),
        };
        self.signal_stragglers(libc::SIGTERM);
    }

    /// SIGKILL to every service, the main program and every straggler.
    fn kill_all(&mut self, now: Instant) {
        for svc in &self.svcs {
            if let Some(child) = &svc.child {
                kill_group(child.pid, libc::SIGKILL);
            }
        }
        if let Some(main) = &self.main {
            let _ = main.signal_group(libc::SIGKILL);
        }
        self.phase = Phase::Killing {
            give_up_at: later(now, self.options.grace),
        };
        self.signal_stragglers(libc::SIGKILL);
    }

    /// After a reap: keep signalling orphans that appeared since their parent died, and fire the
    /// grace deadline.
    fn on_reaped(&mut self, children: Children, now: Instant) {
        if children == Children::None {
            return;
        }
        match self.phase {
            Phase::Draining { kill_at } if now >= kill_at => {
                log::debug!("grace period over: SIGKILL to what is left");
                self.kill_all(now);
            }
            Phase::Draining { .. } => self.signal_stragglers(libc::SIGTERM),
            Phase::Killing { .. } => self.signal_stragglers(libc::SIGKILL),
            Phase::Running | Phase::Stopping { .. } => {}
        }
    }

    /// Sends `sig` to everything still running that pidone reaps. As PID 1 that is every process
    /// of the namespace; as a subreaper, the main program's process group and pidone's children.
    fn signal_stragglers(&mut self, sig: i32) {
        if self.pid1 {
            match sys::kill_everything(sig) {
                Ok(()) => {}
                Err(err) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
                Err(err) => log::warn!("kill(-1, {}): {err}", signals::name(sig)),
            }
            return;
        }
        if let Some(group) = self.main_group {
            kill_group(group, sig);
        }
        for pid in procfs::children_of(rustix::process::getpid()) {
            if sig == libc::SIGTERM && !self.termed.insert(pid) {
                continue;
            }
            if let Some(s) = sys::signal(sig) {
                match rustix::process::kill_process(pid, s) {
                    Ok(()) | Err(Errno::SRCH) => {}
                    Err(err) => {
                        log::warn!(
                            "kill({}, {}): {err}",
                            pid.as_raw_nonzero(),
                            signals::name(sig)
                        )
                    }
                }
            }
        }
    }

    /// pidone's exit status once nothing is left, else None.
    fn finished(&mut self) -> Option<i32> {
        let give_up = match self.phase {
            Phase::Running | Phase::Stopping { .. } => return None,
            Phase::Draining { .. } => false,
            Phase::Killing { give_up_at } => Instant::now() >= give_up_at,
        };
        if !give_up
            && reap::reap(|pid, exit| self.on_exit(pid, exit, Instant::now())) != Children::None
        {
            return None;
        }
        if give_up {
            log::warn!(
                "processes survived SIGKILL for {:?}; exiting anyway",
                self.options.grace
            );
        }
        log::debug!("{} orphans reaped", self.orphans_reaped);
        let code = if let Some(exit) = self.main_exit {
            exit.code()
        } else if let Some(code) = self.required_failure {
            code
        } else if self.svcs.iter().any(|s| s.rt.state == State::Failed) {
            1
        } else {
            0
        };
        Some(if self.options.map_exit.contains(&code) {
            0
        } else {
            code
        })
    }
}

mod api;
mod checks;
mod reload;

use checks::Handover;

/// When service `id` (PENDING) may start, from its dependencies and delays. A longrun dependency
/// counts once it is up, that is ready (RUNNING), never while it is still STARTING.
fn start_time(svcs: &[Svc], id: ServiceId) -> Gate {
    let svc = &svcs[id.0];
    // The moment the dependencies were satisfied (the latest dependency up + its wait_after),
    // then start_delay on top, and never before a restart backoff ends.
    let mut at = svc.rt.waiting_since;
    for dep in &svc.spec.depends_on {
        let d = &svcs[dep.0];
        if d.rt.state == State::Failed {
            return Gate::Failed(d.spec.name.clone());
        }
        let Some(up) = d.rt.up_at.filter(|_| d.rt.is_up(d.spec.kind)) else {
            return Gate::Waiting;
        };
        let extra = svc
            .spec
            .wait_after
            .iter()
            .find(|(w, _)| w == dep)
            .map_or(Duration::ZERO, |(_, delay)| *delay);
        at = at.max(later(up, extra));
    }
    for dep in &svc.spec.after {
        let d = &svcs[dep.0];
        let starting =
            d.rt.state == State::Starting || (d.rt.state == State::Pending && d.rt.want_up);
        if starting {
            return Gate::Waiting;
        }
    }
    let at = later(at, svc.spec.start_delay);
    Gate::At(svc.rt.deadline.map_or(at, |not_before| at.max(not_before)))
}

/// Whether a PENDING service may start.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    /// A dependency failed for good (its name).
    Failed(String),
    /// A dependency is not up yet.
    Waiting,
    /// It may start at this instant.
    At(Instant),
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::PreScript => "pre_script",
        Step::Main => "process",
    }
}

/// Sends `sig` to process group `group`; a group already gone is fine.
fn kill_group(group: Pid, sig: i32) {
    let Some(s) = sys::signal(sig) else { return };
    match rustix::process::kill_process_group(group, s) {
        Ok(()) | Err(Errno::SRCH) => {}
        Err(err) => log::warn!(
            "kill(-{}, {}): {err}",
            group.as_raw_nonzero(),
            signals::name(sig)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadContext;

    /// The services of configuration `text`, as the supervisor holds them at `now`.
    fn services(text: &str, now: Instant) -> Vec<Svc> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pidone-gate-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the config");
        let config = crate::config::load(std::slice::from_ref(&path), &LoadContext::from_process());
        let _ = std::fs::remove_file(&path);
        let config = config.expect("a valid config");
        config
            .services
            .into_iter()
            .map(|spec| Svc::new(spec, now))
            .collect()
    }

    fn handle(svc: &mut Svc, event: Event, now: Instant) {
        svc.rt.handle(&svc.policy, event, now);
    }

    const CONFIG: &str = r#"
[[services]]
name = "db"
command = ["/bin/true"]
ready = { notify_fd = 3 }
start_timeout = "10s"
restart = "never"

[[services]]
name = "web"
command = ["/bin/true"]
depends_on = "db"
wait_after = { db = 2 }
"#;

    #[test]
    fn dependents_wait_for_readiness_not_for_the_spawn() {
        let t0 = Instant::now();
        let mut svcs = services(CONFIG, t0);
        let (db, web) = (ServiceId(0), ServiceId(1));
        assert_eq!(start_time(&svcs, db), Gate::At(t0));
        handle(&mut svcs[db.0], Event::Start, t0);
        handle(&mut svcs[db.0], Event::Spawned(Step::Main), t0);
        assert_eq!(svcs[db.0].rt.state, State::Starting);
        assert_eq!(svcs[db.0].rt.reason, "waiting for a newline on fd 3");
        assert_eq!(
            start_time(&svcs, web),
            Gate::Waiting,
            "db runs but is not ready"
        );
        let t1 = t0 + Duration::from_millis(1500);
        handle(&mut svcs[db.0], Event::Ready, t1);
        assert_eq!(
            start_time(&svcs, web),
            Gate::At(t1 + Duration::from_secs(2)),
            "wait_after counts from readiness"
        );
    }

    #[test]
    fn the_starting_reason_says_what_it_waits_for() {
        let svcs = services(
            r#"
[[services]]
name = "a"
command = ["/bin/true"]
ready = { sd_notify = true }
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
[[services.checks]]
name = "deep"
http = "http://127.0.0.1:1/"
level = "ready"
[[services.checks]]
exec = ["/bin/true"]

[[services]]
name = "b"
command = ["/bin/true"]
ready = { after = "1500ms" }

[[services]]
name = "c"
command = ["/bin/true"]
"#,
            Instant::now(),
        );
        let reasons: Vec<String> = svcs.iter().map(|s| s.policy.waiting_for.clone()).collect();
        assert_eq!(
            reasons,
            [
                "waiting for READY=1 and check tcp and check deep",
                "waiting for 1.5s alive",
                "",
            ]
        );
    }

    #[test]
    fn a_dependency_that_never_gets_ready_fails_its_dependents() {
        let t0 = Instant::now();
        let mut svcs = services(CONFIG, t0);
        let (db, web) = (ServiceId(0), ServiceId(1));
        handle(&mut svcs[db.0], Event::Start, t0);
        handle(&mut svcs[db.0], Event::Spawned(Step::Main), t0);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(svcs[db.0].rt.deadline, Some(t1), "start_timeout");
        handle(&mut svcs[db.0], Event::DeadlinePassed, t1);
        assert_eq!(start_time(&svcs, web), Gate::Waiting, "db is stopping");
        handle(
            &mut svcs[db.0],
            Event::Exited(Step::Main, Exit::Signal(libc::SIGTERM)),
            t1,
        );
        assert_eq!(svcs[db.0].rt.state, State::Failed);
        assert_eq!(start_time(&svcs, web), Gate::Failed("db".into()));
    }
}
