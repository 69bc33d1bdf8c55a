//! Single-program mode of the init-only build (`cargo build --no-default-features`, `make
//! init-only`): pidone as the init of one program, and nothing else. The full build runs this
//! mode through its supervisor, with no service; this is the same contract in a loop of its own,
//! so that the init-only binary carries no supervisor, configuration, checks or control socket:
//!
//! - the program runs in its own process group with the signal state pidone inherited, and gets
//!   every signal pidone may forward (`-g`: its whole group);
//! - every child is reaped, pidone's own and every orphan (as a child subreaper when not PID 1);
//! - once the program has exited, what it left behind gets SIGTERM, then SIGKILL after
//!   `--grace` (a TERM or INT to pidone then kills at once), and pidone exits with the
//!   program's status (`--map-exit`) when it has no child left.
//!
//! One thread, one `poll()`: the signalfd (`SIGCHLD` with the rest), and stderr while pidone's
//! own messages wait for it. Those are captured (see [`logsink`]) and written whole, only when poll
//! says stderr takes them, so a stderr nobody reads never blocks pidone; past [`QUEUE_LIMIT`]
//! they are dropped and counted. Everything the services need is refused ([`refuse`]).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::cli::{self, Args};
use crate::core::duration::later;
use crate::io::format::Style;
use crate::io::logsink;
use crate::os::reap::{self, Children, Exit};
use crate::os::signals::{self, Signals};
use crate::os::spawn::{self, Child};
use crate::os::{listen, procfs, sys};

/// Why the init-only build refuses a subcommand or option, after what was asked.
pub const INIT_ONLY: &str = "this pidone is the init-only build: no services, no control socket \
(build pidone with its default features for those)";

/// Said after `--help` by the init-only build.
pub const HELP_NOTE: &str = "
This is the init-only build: it runs one PROGRAM as above and nothing else (no configuration,
no services, no control socket, no import).
";

/// The most bytes of pidone's own messages waiting for stderr; more are dropped and counted.
pub const QUEUE_LIMIT: usize = 64 * 1024;

/// How long pidone waits at exit for stderr to take its last messages.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Refuses `what` (a subcommand or option of the services) with exit status 2.
pub fn refuse(what: &str) -> i32 {
    eprintln!("pidone {what}: {INIT_ONLY}");
    2
}

/// Runs `args.program` as init until it and everything it left behind are gone; returns
/// pidone's exit status.
pub fn run(args: Args, validate: bool) -> i32 {
    if let Some(code) = refused(&args, validate) {
        return code;
    }
    logsink::set_style(Style {
        timestamps: args.log_timestamps,
        json: args.log_json.unwrap_or(false),
    });
    let listen_pid = match listen::passed_sockets() {
        Ok(n) => n.is_some(),
        Err(err) => {
            eprintln!("pidone: {err}");
            return 2;
        }
    };
    let mut init = match Init::new(&args) {
        Ok(init) => init,
        Err(err) => {
            log::error!("cannot start: {err}");
            return 1;
        }
    };
    match init.start(&args.program, listen_pid) {
        Ok(()) => init.run(),
        Err(code) => code,
    }
}

/// The exit status of a command line the init-only build cannot run (after saying why), if so.
fn refused(args: &Args, validate: bool) -> Option<i32> {
    let asked = [
        (validate, "validate"),
        (!args.config.is_empty(), "--config"),
        (args.socket.is_some(), "--socket"),
        (
            std::env::var_os("PIDONE_CONFIG").is_some(),
            "($PIDONE_CONFIG)",
        ),
    ];
    if let Some((_, what)) = asked.iter().find(|(asked, _)| *asked) {
        return Some(refuse(what));
    }
    if args.program.is_empty() {
        eprintln!(
            "pidone: missing PROGRAM\n{}\ntry 'pidone --help' for more.",
            cli::USAGE
        );
        return Some(2);
    }
    None
}

/// The end of pidone's life, once the program has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The program runs.
    Running,
    /// SIGTERM sent to what is left; SIGKILL at `kill_at`.
    Draining { kill_at: Instant },
    /// SIGKILL sent to what is left; exit when nothing is left, or at `give_up_at`.
    Killing { give_up_at: Instant },
}

/// pidone as the init of one program.
struct Init {
    signals: Signals,
    /// True when pidone is PID 1 of its namespace; else it is a child subreaper.
    pid1: bool,
    /// `-g`: signals go to the program's whole process group.
    group: bool,
    grace: Duration,
    map_exit: Vec<i32>,
    main: Option<Child>,
    /// The program's process group (its pid), signalled with the stragglers.
    main_group: Option<Pid>,
    main_exit: Option<Exit>,
    phase: Phase,
    /// Stragglers already sent SIGTERM (subreaper mode), so a rescan does not repeat it; sorted.
    termed: Vec<Pid>,
    /// One reap call left children to collect: the next turn comes at once.
    more_to_reap: bool,
    orphans_reaped: u64,
    messages: Messages,
}

impl Init {
    /// Takes over signals and, when pidone is not PID 1, registers as child subreaper. Errors here
    /// are fatal: nothing runs yet.
    fn new(args: &Args) -> std::io::Result<Init> {
        let signals = Signals::install()?;
        let pid1 = rustix::process::getpid().is_init();
        if !pid1 {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
            log::debug!("not PID 1: registered as child subreaper, orphans come here");
        }
        Ok(Init {
            signals,
            pid1,
            group: args.group,
            grace: args.grace,
            map_exit: args.map_exit.clone(),
            main: None,
            main_group: None,
            main_exit: None,
            phase: Phase::Running,
            termed: Vec::new(),
            more_to_reap: false,
            orphans_reaped: 0,
            messages: Messages::default(),
        })
    }

    /// Starts the program; its exec error is pidone's exit status (127/126, as the shell's).
    fn start(&mut self, argv: &[OsString], listen_pid: bool) -> Result<(), i32> {
        match spawn::spawn(argv, self.signals.saved(), listen_pid) {
            Ok(child) => {
                let name = argv
                    .first()
                    .map(|p| p.to_string_lossy())
                    .unwrap_or_default();
                log::debug!("started {name} as pid {}", child.pid.as_raw_nonzero());
                self.main_group = Some(child.pid);
                self.main = Some(child);
                Ok(())
            }
            Err(err) => Err(spawn::exec_failed(argv, &err)),
        }
    }

    /// The loop, once the program runs, until pidone's exit status: finish? → poll → signals →
    /// reap → messages.
    fn run(mut self) -> i32 {
        // From here on pidone's own messages wait for stderr to take them: never a blocking write.
        logsink::set_capture(true);
        loop {
            let now = Instant::now();
            if let Some(code) = self.finished(now) {
                return self.end(code);
            }
            self.messages.take();
            self.wait_for_events();
            let now = Instant::now();
            for sig in self.signals.pending() {
                self.on_signal(sig, now);
            }
            self.reap(now);
            self.messages.write();
        }
    }

    /// Sleeps in poll() until a signal (the program's exit is a SIGCHLD), stderr taking
    /// messages, or the phase's deadline.
    fn wait_for_events(&self) {
        let deadline = match self.phase {
            Phase::Running => None,
            Phase::Draining { kill_at } => Some(kill_at),
            Phase::Killing { give_up_at } => Some(give_up_at),
        };
        let timeout = match self.more_to_reap {
            true => Some(Timespec::default()),
            false => deadline.map(|at| timespec(at.saturating_duration_since(Instant::now()))),
        };
        let signal_fd = self.signals.fd();
        let mut fds = vec![PollFd::new(&signal_fd, PollFlags::IN)];
        if self.messages.waiting() {
            fds.push(PollFd::from_borrowed_fd(
                rustix::stdio::stderr(),
                PollFlags::OUT,
            ));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => log::error!("poll: {err}"),
        }
    }

    fn on_signal(&mut self, sig: i32, now: Instant) {
        if sig == libc::SIGCHLD {
            return; // Reaping follows every wakeup anyway.
        }
        let stopping = self.phase != Phase::Running;
        if signals::forwarded(sig, self.signal_main(sig), stopping) {
            self.kill_all(now);
        }
    }

    /// Sends `sig` to the program, or its whole group with `-g`; None once it has exited.
    fn signal_main(&self, sig: i32) -> Option<std::io::Result<()>> {
        let main = self.main.as_ref()?;
        Some(match self.group {
            true => main.signal_group(sig),
            false => main.signal(sig),
        })
    }

    /// Reaps every child that ended, then signals what is left as the phase says.
    fn reap(&mut self, now: Instant) {
        let children = self.collect();
        self.on_reaped(children, now);
    }

    /// Reaps every child that ended: the program's exit is recorded, orphans are counted.
    fn collect(&mut self) -> Children {
        let mut ended = Vec::new();
        let children = reap::reap(|pid, exit| ended.push((pid, exit)));
        self.more_to_reap = children == Children::More;
        for (pid, exit) in ended {
            self.on_exit(pid, exit);
        }
        children
    }

    fn on_exit(&mut self, pid: Pid, exit: Exit) {
        if self.main.as_ref().is_some_and(|m| m.pid == pid) {
            log::debug!("main program {} ended: {exit}", pid.as_raw_nonzero());
            self.main = None;
            self.main_exit = Some(exit);
        } else {
            self.orphans_reaped += 1;
            log::trace!("reaped orphan {}: {exit}", pid.as_raw_nonzero());
        }
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
            Phase::Running => {}
        }
    }

    /// The program is gone: SIGTERM to whatever is left, SIGKILL after the grace period.
    fn begin_draining(&mut self, now: Instant) {
        log::debug!("stopping what is left behind");
        self.phase = Phase::Draining {
            kill_at: later(now, self.grace),
        };
        self.signal_stragglers(libc::SIGTERM);
    }

    /// SIGKILL to the program's group and every straggler; pidone gives up waiting for them
    /// after the grace period.
    fn kill_all(&mut self, now: Instant) {
        if let Some(main) = self.main.as_ref().map(|m| m.pid) {
            kill(main, true, libc::SIGKILL);
        }
        self.phase = Phase::Killing {
            give_up_at: later(now, self.grace),
        };
        self.signal_stragglers(libc::SIGKILL);
    }

    /// Sends `sig` to everything still running that pidone reaps. As PID 1 that is every process
    /// of the namespace; as a subreaper, the program's process group and pidone's children.
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
            kill(group, true, sig);
        }
        for pid in procfs::children_of(rustix::process::getpid()) {
            if sig == libc::SIGTERM {
                match self
                    .termed
                    .binary_search_by_key(&pid.as_raw_pid(), |p| p.as_raw_pid())
                {
                    Ok(_) => continue,
                    Err(at) => self.termed.insert(at, pid),
                }
            }
            kill(pid, false, sig);
        }
    }

    /// pidone's exit status once nothing is left, else None. Draining begins here, the turn
    /// after the program's exit was reaped.
    fn finished(&mut self, now: Instant) -> Option<i32> {
        if self.phase == Phase::Running && self.main.is_none() {
            self.begin_draining(now);
        }
        let give_up = match self.phase {
            Phase::Running => return None,
            Phase::Draining { .. } => false,
            Phase::Killing { give_up_at } => now >= give_up_at,
        };
        if !give_up && self.collect() != Children::None {
            return None;
        }
        if give_up {
            log::warn!("processes survived SIGKILL; exiting anyway");
        }
        log::debug!("{} orphans reaped", self.orphans_reaped);
        let code = self.main_exit.map_or(0, Exit::code);
        Some(match self.map_exit.contains(&code) {
            true => 0,
            false => code,
        })
    }

    /// The last of pidone: its last messages are written (waiting for stderr a bounded time);
    /// returns `code`.
    fn end(&mut self, code: i32) -> i32 {
        self.messages.take();
        logsink::set_capture(false);
        self.messages.flush(FLUSH_WAIT);
        code
    }
}

/// Sends `sig` to process `pid`, or with `group` to its process group; one already gone is fine.
fn kill(pid: Pid, group: bool, sig: i32) {
    let result = sys::signal(sig)
        .ok_or(Errno::INVAL)
        .and_then(|s| match group {
            true => rustix::process::kill_process_group(pid, s),
            false => rustix::process::kill_process(pid, s),
        });
    match result {
        Ok(()) | Err(Errno::SRCH) => {}
        Err(err) => log::warn!(
            "kill({}{}, {}): {err}",
            if group { "-" } else { "" },
            pid.as_raw_nonzero(),
            signals::name(sig)
        ),
    }
}

/// pidone's own messages on their way to stderr: whole lines, each write at most `PIPE_BUF`
/// bytes (atomic on a pipe, so never cut by the program's output), made only when poll says
/// stderr takes them. stderr stays blocking: its file description is shared with the program.
#[derive(Debug, Default)]
struct Messages {
    queue: Vec<u8>,
    /// Messages dropped and not yet reported.
    lost: u64,
}

impl Messages {
    /// Moves what was logged since the last call into the queue; what does not fit is counted,
    /// then reported by a line of its own once there is room.
    fn take(&mut self) {
        let (bytes, dropped) = logsink::take();
        self.lost += dropped;
        if self.queue.len() + bytes.len() <= QUEUE_LIMIT {
            self.queue.extend_from_slice(&bytes);
        } else {
            self.lost += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        if self.lost > 0 {
            let text = format!(
                "{} log messages dropped: stderr is not keeping up",
                self.lost
            );
            let note = logsink::record(log::Level::Warn, &text);
            if self.queue.len() + note.len() <= QUEUE_LIMIT {
                self.queue.extend_from_slice(&note);
                self.lost = 0;
            }
        }
    }

    fn waiting(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Writes what stderr takes now without blocking.
    fn write(&mut self) {
        while self.waiting() && writable(Duration::ZERO) {
            if !self.write_once() {
                return;
            }
        }
    }

    /// At exit: writes everything, waiting for stderr at most `within` in all.
    fn flush(&mut self, within: Duration) {
        let give_up_at = Instant::now() + within;
        while self.waiting() {
            let left = give_up_at.saturating_duration_since(Instant::now());
            if left.is_zero() || !writable(left) || !self.write_once() {
                return;
            }
        }
    }

    /// One write of whole lines (or `PIPE_BUF` bytes of a longer one); false when stderr failed
    /// for good (what is queued is then dropped) or would block.
    fn write_once(&mut self) -> bool {
        let head = self.queue.get(..libc::PIPE_BUF).unwrap_or(&self.queue);
        let len = match head.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            None => head.len(),
        };
        let chunk = self.queue.get(..len).unwrap_or_default();
        match rustix::io::write(rustix::stdio::stderr(), chunk) {
            Ok(n) => {
                self.queue.drain(..n.min(len));
                true
            }
            Err(Errno::INTR) => true,
            Err(Errno::AGAIN) => false,
            Err(_) => {
                // EPIPE, EBADF, EIO...: nobody will ever read these.
                self.queue.clear();
                false
            }
        }
    }
}

/// True when stderr takes a write (`PIPE_BUF` bytes on a pipe), or has failed, within `timeout`.
fn writable(timeout: Duration) -> bool {
    let timeout = timespec(timeout);
    let mut fds = [PollFd::from_borrowed_fd(
        rustix::stdio::stderr(),
        PollFlags::OUT,
    )];
    loop {
        match poll(&mut fds, Some(&timeout)) {
            // POLLERR or POLLHUP too: the write then fails for good, and the queue is dropped.
            Ok(n) => return n > 0,
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
