//! The output multiplexer: services' stdout and stderr, read from pipes, written to pidone's own
//! stdout and stderr one whole line at a time as `[name] line`.
//!
//! # Format
//! Each line is written as `[` + the service name left-aligned and right-padded with spaces to the
//! width of the longest service name + `] ` + the line, the same as go-overlay's
//! `fmt.Sprintf("[%-*s] %s", width, name, line)`. Unlike go-overlay, empty lines are kept and a
//! trailing `\r` is not removed (go-overlay read from a terminal, pidone reads plain pipes), and
//! each line stays on the stream it was written to instead of all going to stdout.
//!
//! With `[log] timestamps` each line starts with its time, and with `format = "json"` each is
//! one JSON object instead (see `format`). A source of a service with a `log_file` also hands
//! its lines to that service's [`LogFile`] (see `sinks` for how each line is formatted there),
//! and to the console only with `log = "prefix"`: a source writing to its file alone is never
//! paused. Each service's lines, bytes and drops are counted ([`Output::log_state`]).
//!
//! # Guarantees, and how they are kept
//! - **Lines never interleave.** Every formatted line is at most [`PIPE_BUF`] bytes, and each
//!   `write()` carries whole lines totalling at most [`PIPE_BUF`] bytes, which POSIX makes atomic
//!   on a pipe: a line can never be cut by another writer's output. Longer lines are split into
//!   several prefixed lines (between UTF-8 characters when the bytes look like UTF-8). A stream
//!   that is a regular file takes writes of up to 256 KiB, without the readiness
//!   check: a write to a file is never cut by another's, and never waits for a reader.
//! - **pidone never blocks in a write.** pidone's stdout and stderr stay blocking (their file
//!   description is shared with other processes, so `O_NONBLOCK` there would change their
//!   behaviour too). Instead, a write happens only when `poll()` has just reported `POLLOUT`,
//!   which on a pipe means at least [`PIPE_BUF`] bytes are free; [`Output::write_ready`] repeats
//!   that check itself with a zero timeout, so a stale `revents` (fd 1 and fd 2 may be the same
//!   pipe) cannot make it block.
//! - **What a read brings goes out in the same turn.** The lines of one read of a pipe are
//!   formatted into one buffer (`direct`) and written at once, one write per batch, when the
//!   stream's queue is empty (nothing can overtake what waits) and the readiness check above
//!   passes; what a write did not take, and every line after it, is queued. A service writing
//!   flat out to a console that keeps up costs one read and one write per turn, as `cat`.
//! - **No line is dropped.** Lines wait in a per-stream queue. Once a queue holds more than
//!   [`HIGH_WATER`] bytes, [`Output::paused`] tells the loop to stop reading the services' pipes
//!   of that stream, until the queue is back under [`LOW_WATER`]: services then block in their
//!   own writes (back-pressure), and pidone's memory stays bounded. The only service lines ever
//!   discarded are those for a stream whose write failed for good (`EPIPE`, `EBADF`, ...), which
//!   is logged once, those still queued when [`Output::flush_all`] gives up at exit, and those
//!   of a pipe that ended while paused beyond [`SPILL_LIMIT`] (below). All but the last at exit
//!   are counted ([`Output::take_lost`]) for the caller to report.
//! - **A paused pipe still ends.** The loop polls a paused source for no event, which still
//!   reports `POLLHUP` once its service is gone; [`Output::read_ended`] then moves what the pipe
//!   holds into the queue (past [`HIGH_WATER`], up to [`SPILL_LIMIT`]) and the pipe is closed,
//!   so a crash-looping service cannot pile up descriptors while nobody reads pidone's stdout.
//!   pidone's own messages ([`Output::own_lines`]) cannot be paused like a service: they are
//!   dropped (and counted by the caller) while a queue holds more than [`OWN_LIMIT`] bytes.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::Errno;

use super::direct::Batch;
use super::format::Style;
use super::logfile::{LogFile, Rotation};
use super::ring::Lines;
use super::sinks::{Counters, Look, ServiceLog};
use crate::os::users::Credentials;

/// The size up to which a write to a pipe is atomic on Linux, and the least free space a pipe
/// has when `poll()` reports it writable. No formatted line, prefix and newline included, is
/// longer, and no single write carries more.
pub const PIPE_BUF: usize = 4096;

/// Queued bytes of one stream above which reading from that stream's sources pauses.
pub const HIGH_WATER: usize = 64 * 1024;

/// Queued bytes of one stream at or below which reading resumes after a pause. Lower than
/// [`HIGH_WATER`] so that the loop does not flip between reading and pausing on every line.
pub const LOW_WATER: usize = 16 * 1024;

/// The longest part of a service name shown in a prefix. Names are not otherwise limited, and a
/// prefix must leave room for text within [`PIPE_BUF`].
const MAX_NAME: usize = 256;

/// The most bytes queued on a stream before pidone's own messages are dropped.
pub const OWN_LIMIT: usize = 2 * HIGH_WATER;

/// The most bytes queued on a stream before the lines of a pipe that ended while paused are
/// dropped (and counted) instead.
pub const SPILL_LIMIT: usize = 4 * HIGH_WATER;

/// The most bytes in one write to a regular file (pidone's stdout redirected to one): a write to
/// a file is never split by another writer's, and never waits for a reader, so neither the
/// [`PIPE_BUF`] bound nor the readiness check applies; larger writes save system calls.
const FILE_BATCH: usize = 256 * 1024;

/// Bytes read from a source per `read()` call: as much as a pipe holds by default, so that a
/// service writing flat out costs one read per 64 KiB, as `cat` would.
const READ_CHUNK: usize = 64 * 1024;

/// `read()` calls per [`Output::read_from`], so that one chatty service cannot keep the loop
/// from serving the others.
const READS_PER_CALL: usize = 2;

/// `write()` calls per [`Output::write_ready`]; each is preceded by its own readiness check.
const WRITES_PER_CALL: usize = 16;

/// How long [`Output::flush_all`] waits for a stuck stdout or stderr at exit.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes read from a source at exit by [`Output::finish`], so that a writer that is still alive
/// (a grandchild holding the pipe) cannot keep pidone from exiting.
const FINISH_BUDGET: usize = 1024 * 1024;

/// Which of pidone's own output streams a line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// pidone's stdout (fd 1).
    Stdout,
    /// pidone's stderr (fd 2).
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`, as JSON lines name the stream.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A service's `log_file` as the supervisor configures it.
pub struct FileSpec {
    pub path: PathBuf,
    pub user: Option<Credentials>,
    pub rotation: Option<Rotation>,
    /// JSON lines (`log_format = "json"`, or the global format).
    pub json: bool,
}

/// What [`Output::read_from`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The pipe is still open: keep polling it for `POLLIN` (unless [`Output::paused`]).
    Open,
    /// Every writer has closed the pipe (or reading failed for good); the last partial line has
    /// been queued. Drop the [`Source`] and stop polling it.
    Eof,
}

/// Reads what a non-blocking pipe holds, in chunks handed to `take`, at most 16 reads of 16 KiB
/// per call so that a flooding writer cannot hold the loop. `Ok(Eof)` once every writer closed
/// it; `Ok(Open)` when it is empty for now or the budget is spent; `Err` when reading failed for
/// good (the caller drops the pipe as at EOF). For pipes read whole: notify fds, check output.
pub fn read_available(
    fd: BorrowedFd<'_>,
    mut take: impl FnMut(&[u8]),
) -> Result<ReadOutcome, Errno> {
    let mut chunk = [0u8; 16 * 1024];
    for _ in 0..16 {
        match rustix::io::read(fd, &mut chunk) {
            Ok(0) => return Ok(ReadOutcome::Eof),
            Ok(n) => take(chunk.get(..n).unwrap_or_default()),
            Err(Errno::AGAIN) => return Ok(ReadOutcome::Open),
            Err(Errno::INTR) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(ReadOutcome::Open)
}

/// What reading a source does once its stream's queue is over [`HIGH_WATER`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Stops: the bytes stay in the pipe (back-pressure).
    Wait,
    /// Reads on (at exit, bounded by [`FINISH_BUDGET`]).
    Read,
    /// Reads on, and drops the lines (counted) once the queue is over [`SPILL_LIMIT`].
    Drop,
}

/// The read end of one service's stdout or stderr pipe, with the prefix of its lines and the
/// bytes of a line not yet complete.
pub struct Source {
    fd: OwnedFd,
    stream: Stream,
    /// `[name  ] `, formatted once.
    prefix: Vec<u8>,
    /// The longest text that fits in one formatted line after this prefix.
    max_text: usize,
    /// Bytes read but not yet queued: the start of a line whose newline has not arrived yet.
    /// Never longer than `max_text` between calls.
    partial: Vec<u8>,
    /// The service's [`ServiceLog`] (its file and counters), if it has one.
    key: Option<u64>,
    /// Whether its lines go to pidone's console (false: to its log file only).
    console: bool,
}

impl Source {
    /// The `[name] ` this source's lines get.
    #[cfg(test)]
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The pipe's read end, to poll for `POLLIN`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The stream this source's lines go to, to ask [`Output::paused`] before polling it.
    pub fn stream(&self) -> Stream {
        self.stream
    }
}

/// Where a queue's lines are written: pidone's own fd 1 or 2, or (in tests) a pipe.
enum Target {
    Std(BorrowedFd<'static>),
    Owned(OwnedFd),
}

impl Target {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Target::Std(fd) => *fd,
            Target::Owned(fd) => fd.as_fd(),
        }
    }
}

/// The formatted lines waiting for one of pidone's output streams.
struct Queue {
    name: &'static str,
    target: Target,
    /// The formatted lines, each ending in its newline, one after the other in one buffer (one
    /// allocation, not one per line): `buf[start..]` is still to be written. Only a short write
    /// (a regular file, a terminal) can leave a line half written; its rest goes out first.
    buf: Vec<u8>,
    start: usize,
    paused: bool,
    /// Writing failed for good; lines for this stream are discarded from now on.
    dead: bool,
    /// Services' lines discarded since [`Output::take_lost`] last ran.
    lost: u64,
    /// The target is a regular file: writes of up to [`FILE_BATCH`] bytes, without a poll.
    file: bool,
}

impl Queue {
    fn new(name: &'static str, target: Target) -> Queue {
        let file = rustix::fs::fstat(target.fd())
            .is_ok_and(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_file());
        Queue {
            file,
            name,
            target,
            buf: Vec::new(),
            start: 0,
            paused: false,
            dead: false,
            lost: 0,
        }
    }

    /// Queues one formatted line, the concatenation of `parts` (the last ending in the
    /// newline). False when the stream is dead (the line is counted as lost).
    fn push_parts(&mut self, parts: &[&[u8]]) -> bool {
        if self.dead {
            self.lost += 1;
            return false;
        }
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.paused |= self.queued() > HIGH_WATER;
        true
    }

    /// Queues `prefix`, `text` and a newline.
    fn push(&mut self, prefix: &[u8], text: &[u8]) -> bool {
        self.push_parts(&[prefix, text, b"\n"])
    }

    /// The most bytes one write carries: whole lines within [`PIPE_BUF`] (atomic on a pipe),
    /// or [`FILE_BATCH`] to a regular file.
    fn batch(&self) -> usize {
        if self.file { FILE_BATCH } else { PIPE_BUF }
    }

    /// Bytes queued and not yet written.
    fn queued(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The lines queued and not yet (wholly) written.
    fn lines_left(&self) -> u64 {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        rest.iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// Forgets everything queued, giving the buffer's room back.
    fn clear(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }

    /// Whether a write would not block now. Asked right before each write because the caller's
    /// `revents` may be stale.
    fn writable(&self) -> bool {
        if self.file {
            return true;
        }
        let mut fds = [PollFd::from_borrowed_fd(self.target.fd(), PollFlags::OUT)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&zero)) {
            // POLLERR, POLLHUP or POLLNVAL without POLLOUT also let the write go ahead: it then
            // fails at once with the error that explains them (EPIPE, EBADF), never blocks.
            Ok(n) => n > 0 && !fds[0].revents().is_empty(),
            Err(_) => false,
        }
    }

    /// Writes as much as the target takes without blocking, one atomic write at a time.
    fn write_ready(&mut self) {
        for _ in 0..WRITES_PER_CALL {
            if self.dead || self.queued() == 0 || !self.writable() {
                return;
            }
            let rest = self.buf.get(self.start..).unwrap_or_default();
            let batch = self.batch();
            // Whole lines only, up to the last newline that fits (a line is at most PIPE_BUF
            // bytes, so one always does).
            let cut = match rest.get(..batch) {
                None => rest.len(),
                Some(window) => window
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(batch, |i| i + 1),
            };
            match rustix::io::write(self.target.fd(), rest.get(..cut).unwrap_or_default()) {
                Ok(0) => return,
                Ok(n) => self.consume(n),
                // Someone else made the shared description non-blocking, or a signal arrived:
                // the loop polls again and we retry then.
                Err(Errno::AGAIN) | Err(Errno::INTR) => return,
                Err(err) => {
                    log::warn!(
                        "cannot write to {}: {err}; discarding services' output for it",
                        self.name
                    );
                    self.dead = true;
                    self.paused = false;
                    self.lost += self.lines_left();
                    self.clear();
                    return;
                }
            }
        }
    }

    /// Forgets the first `n` written bytes of the queue.
    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.queued() <= LOW_WATER {
            self.paused = false;
        }
        if self.start == self.buf.len() {
            // Drained: a queue that held more than a busy stream's usual turn (a stuck stream's
            // spill) gives that room back; the usual room is kept for the next turn.
            if self.buf.capacity() > 2 * HIGH_WATER {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.start = 0;
        } else if self.start > HIGH_WATER {
            // What was written goes, so that the buffer does not grow with what went through it.
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// The multiplexer: one queue for pidone's stdout, one for its stderr, fed by [`Source`]s and
/// drained when the loop sees the streams writable. Driven entirely by the caller's poll loop;
/// it never blocks, except in [`Output::flush_all`] at exit.
pub struct Output {
    width: usize,
    out: Queue,
    err: Queue,
    /// How every line looks (timestamps, JSON).
    style: Style,
    /// Each service's log file and counters, by the supervisor's key for the service.
    logs: HashMap<u64, ServiceLog>,
    /// Where sources are read into (see [`Output::read_budget`]); empty until the first read.
    scratch: Vec<u8>,
    /// The lines of the last read of a source, without prefix, for the supervisor's ring of the
    /// service ([`Output::take_lines`]). Kept with its room from read to read.
    tap: Lines,
    /// Where the lines of a read are formatted to be written at once; kept from read to read.
    batch: Batch,
}

impl Output {
    /// A multiplexer writing to pidone's own stdout and stderr; `width` is the length of the
    /// longest service name, to which every name is padded.
    pub fn new(width: usize) -> Output {
        Output::with_targets(
            width,
            Target::Std(rustix::stdio::stdout()),
            Target::Std(rustix::stdio::stderr()),
        )
    }

    /// Like [`Output::new`], but writing to `out` and `err` instead of fd 1 and fd 2 (for tests).
    pub fn with_fds(width: usize, out: OwnedFd, err: OwnedFd) -> Output {
        Output::with_targets(width, Target::Owned(out), Target::Owned(err))
    }

    fn with_targets(width: usize, out: Target, err: Target) -> Output {
        Output {
            width: width.min(MAX_NAME),
            out: Queue::new("stdout", out),
            err: Queue::new("stderr", err),
            style: Style::default(),
            logs: HashMap::new(),
            scratch: Vec::new(),
            tap: Lines::default(),
            batch: Batch::default(),
        }
    }

    /// How every line looks.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Sets how every line looks from now on; sources made before keep their line length.
    pub fn set_style(&mut self, style: Style) {
        self.style = style;
    }

    /// Gives the service of `key` (called `name`) its log file, or none; a file it already had
    /// keeps its counters and, for the same path, its descriptor.
    pub fn configure_log(&mut self, key: u64, name: &str, file: Option<FileSpec>) {
        let log = self.logs.entry(key).or_insert_with(|| ServiceLog {
            name: name.to_owned(),
            file: None,
            file_json: false,
            counters: Counters::default(),
        });
        log.file_json = file.as_ref().is_some_and(|f| f.json);
        match (file, &mut log.file) {
            (None, slot) => *slot = None,
            (Some(f), Some(open)) => open.configure(&f.path, f.user, f.rotation),
            (Some(f), slot) => *slot = Some(LogFile::new(f.path, f.user, f.rotation)),
        }
    }

    /// Opens the log file of `key` again, as at each start of its service.
    pub fn reopen_log(&mut self, key: u64) {
        if let Some(file) = self.logs.get_mut(&key).and_then(|l| l.file.as_mut()) {
            file.open();
        }
    }

    /// Forgets the service of `key` (removed by a reload); its pipes still read are written to
    /// the console only.
    pub fn forget_log(&mut self, key: u64) {
        self.logs.remove(&key);
    }

    /// The counters of the service of `key`, and why its log file is not written, if it is not.
    pub fn log_state(&self, key: u64) -> Option<(Counters, Option<&str>)> {
        let log = self.logs.get(&key)?;
        let error = log.file.as_ref().and_then(LogFile::error);
        Some((log.counters(), error))
    }

    /// Wraps the read end of a service's pipe whose lines go to `stream` prefixed with `name`,
    /// and makes it non-blocking (only pidone holds a read end, so this changes nothing for the
    /// service). The caller should have created the pipe close-on-exec.
    pub fn source(&self, name: &str, stream: Stream, fd: OwnedFd) -> Source {
        self.source_of(None, name, stream, fd, true)
    }

    /// Like [`Output::source`], for the service of `key`: its lines are counted and written to
    /// its log file too, and to the console only when `console`.
    pub fn source_of(
        &self,
        key: Option<u64>,
        name: &str,
        stream: Stream,
        fd: OwnedFd,
        console: bool,
    ) -> Source {
        // A pipe that stays blocking would only make read_from block on a spurious wakeup; the
        // failure is logged and the source still works.
        let nonblocking = fcntl_getfl(&fd).and_then(|f| fcntl_setfl(&fd, f | OFlags::NONBLOCK));
        if let Err(err) = nonblocking {
            log::warn!("{name}: cannot make its output pipe non-blocking: {err}");
        }
        let prefix = self.prefix(name);
        Source {
            fd,
            stream,
            max_text: PIPE_BUF - prefix.len() - 1 - Look::stamp_room(self.style),
            prefix,
            partial: Vec::new(),
            key,
            console,
        }
    }

    /// Pads names to `width` from now on: a reload changed the longest name. Sources made
    /// before take the new width through [`Output::reprefix`].
    pub fn set_width(&mut self, width: usize) {
        self.width = width.min(MAX_NAME);
    }

    /// Gives `src` (of service `name`) the prefix of the current width, unless the start of a
    /// line it holds would no longer fit one formatted line (it keeps its old prefix then).
    pub fn reprefix(&self, src: &mut Source, name: &str) {
        let prefix = self.prefix(name);
        let max_text = PIPE_BUF.saturating_sub(prefix.len() + 1 + Look::stamp_room(self.style));
        if src.partial.len() <= max_text {
            src.prefix = prefix;
            src.max_text = max_text;
        }
    }

    /// `[name  ] `: the name (cut to [`MAX_NAME`] bytes) right-padded to the width.
    fn prefix(&self, name: &str) -> Vec<u8> {
        let mut end = name.len().min(MAX_NAME);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let shown = name.get(..end).unwrap_or_default();
        format!("[{shown:<width$}] ", width = self.width).into_bytes()
    }

    fn queue(&self, stream: Stream) -> &Queue {
        match stream {
            Stream::Stdout => &self.out,
            Stream::Stderr => &self.err,
        }
    }

    fn queue_mut(&mut self, stream: Stream) -> &mut Queue {
        match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        }
    }

    /// Reads what `src` has available, at most a few reads' worth, and queues its complete
    /// lines. Reads nothing while `src`'s stream is [paused](Output::paused): the pipe's data
    /// stays where it is. On end of file, queues the last partial line with a newline added.
    pub fn read_from(&mut self, src: &mut Source) -> ReadOutcome {
        self.read_budget(src, READS_PER_CALL, WhenFull::Wait)
    }

    /// Poll reported the end (`POLLHUP`, `POLLERR`) of `src` while its stream is paused: reads
    /// what the pipe still holds (up to a bound) past the pause, queueing it while the queue holds
    /// at most [`SPILL_LIMIT`] bytes and counting the lines dropped beyond. `Eof` once the pipe is
    /// empty: the caller drops the source, and with it the descriptor.
    pub fn read_ended(&mut self, src: &mut Source) -> ReadOutcome {
        self.read_budget(src, FINISH_BUDGET / READ_CHUNK, WhenFull::Drop)
    }

    fn read_budget(&mut self, src: &mut Source, reads: usize, full: WhenFull) -> ReadOutcome {
        self.tap.clear();
        // The partial line, then each read right after it, in one buffer kept from call to
        // call: bytes are read where their lines are cut, not copied there first.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(READ_CHUNK + PIPE_BUF, 0);
        let mut outcome = ReadOutcome::Open;
        for _ in 0..reads {
            if full == WhenFull::Wait && self.holds_back(src) {
                break;
            }
            // The partial line is never longer than a formatted line: it fits ahead of a read.
            let held = src.partial.len().min(PIPE_BUF);
            for (to, from) in buf.iter_mut().zip(&src.partial) {
                *to = *from;
            }
            let room = buf.get_mut(held..held + READ_CHUNK).unwrap_or_default();
            match rustix::io::read(&src.fd, room) {
                Ok(0) => outcome = ReadOutcome::Eof,
                Ok(n)
                    if full == WhenFull::Drop
                        && src.console
                        && self.queued(src.stream) > SPILL_LIMIT =>
                {
                    let data = buf.get(held..held + n).unwrap_or_default();
                    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
                    self.queue_mut(src.stream).lost += lines;
                    if let Some(log) = src.key.and_then(|k| self.logs.get_mut(&k)) {
                        log.counters.dropped_console += lines;
                    }
                    // The line begun before cannot be completed any more.
                    src.partial.clear();
                }
                Ok(n) => {
                    let data = buf.get(..held + n).unwrap_or_default();
                    let used = self.deliver(src, data, false);
                    src.partial.clear();
                    src.partial
                        .extend_from_slice(data.get(used..).unwrap_or_default());
                    // A short read emptied the pipe: another would most likely find nothing
                    // (EAGAIN), a system call for naught; poll tells when there is more.
                    if full == WhenFull::Wait && n < READ_CHUNK {
                        break;
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => {}
                // A terminal's master once every process closed the other side (`tty = true`).
                Err(Errno::IO) => outcome = ReadOutcome::Eof,
                Err(err) => {
                    log::warn!("cannot read a service's output: {err}");
                    outcome = ReadOutcome::Eof;
                }
            }
            if outcome == ReadOutcome::Eof {
                break;
            }
        }
        self.scratch = buf;
        if outcome == ReadOutcome::Eof {
            self.end(src);
        }
        outcome
    }

    /// Takes the lines the last read of a source queued (the last call of [`Output::read_from`]
    /// or [`Output::read_ended`]), for the ring of its service; [`Output::give_back`] them after.
    pub fn take_lines(&mut self) -> Lines {
        std::mem::take(&mut self.tap)
    }

    /// Takes back what [`Output::take_lines`] gave, to reuse its room for the next read: what
    /// one call reads, at most [`FINISH_BUDGET`] bytes (a spill; 128 KiB otherwise).
    pub fn give_back(&mut self, lines: Lines) {
        self.tap = lines;
    }

    /// Delivers what is left of `src`'s last line, if anything.
    fn end(&mut self, src: &mut Source) {
        // Nothing left delivers nothing.
        let rest = std::mem::take(&mut src.partial);
        self.deliver(src, &rest, true);
    }

    /// Delivers the complete lines at the start of `data` (all of it when `last`), read from
    /// `src`, to the console, the service's log file and its tap; returns how many bytes it took.
    fn deliver(&mut self, src: &mut Source, data: &[u8], last: bool) -> usize {
        let queue = match src.stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let mut log = src.key.and_then(|k| self.logs.get_mut(&k));
        if self.style == Style::default() && log.as_ref().is_none_or(|l| l.file.is_none()) {
            // The common case, as fast as it was: plain prefixed lines, nothing else to write.
            let (prefix, tap) = (&src.prefix, &mut self.tap);
            let counters = log.map(|l| &mut l.counters);
            let batch = Some(&mut self.batch);
            return plain_lines(
                queue,
                batch,
                prefix,
                src.max_text,
                data,
                last,
                tap,
                counters,
            );
        }
        let (file_json, name) = log.as_ref().map_or((false, ""), |l| (l.file_json, &l.name));
        let mut look = Look::new(self.style, file_json, name, src.stream.name());
        let now = Instant::now();
        let console = src.console;
        // Console lines (with their time, or JSON) are written in this turn too, as above.
        let mut out = Out::new(queue, console.then_some(&mut self.batch));
        let start = split_lines(data, src.max_text, last, &mut |piece, ends| {
            self.tap.push(piece);
            let mut dropped = 0;
            if console {
                look.console(&src.prefix, piece, ends, &mut |line| {
                    dropped += u64::from(!out.line(line));
                });
            }
            if let Some(log) = log.as_mut() {
                log.counters.lines += u64::from(ends);
                log.counters.bytes += piece.len() as u64;
                log.counters.dropped_console += dropped.min(1);
                if let Some(file) = log.file.as_mut() {
                    look.file(file, log.file_json, piece, ends, now);
                }
            }
        });
        out.flush();
        if let Some(file) = log.and_then(|l| l.file.as_mut()) {
            file.flush(now);
        }
        start
    }

    /// For exit: reads what `src` still holds (ignoring back-pressure, up to a bound), queues
    /// its last partial line, and closes it. Call for every source before [`Output::flush_all`].
    pub fn finish(&mut self, mut src: Source) {
        if self.read_budget(&mut src, FINISH_BUDGET / READ_CHUNK, WhenFull::Read)
            == ReadOutcome::Open
        {
            self.end(&mut src);
        }
    }

    /// Queues pidone's own `text` as lines of `name` on `stream`, formatted like a service's.
    /// A final newline is optional; a missing one is added.
    pub fn line(&mut self, name: &str, stream: Stream, text: &str) {
        let prefix = self.prefix(name);
        let max_text = PIPE_BUF - prefix.len() - 1;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let queue = self.queue_mut(stream);
        let bytes = text.as_bytes();
        let start = queue_lines(queue, &prefix, max_text, bytes, &mut Lines::default());
        queue.push(&prefix, bytes.get(start..).unwrap_or_default());
    }

    /// Queues pidone's own messages (text ending in a newline, several lines allowed) on
    /// `stream`, unprefixed. Returns false, queueing nothing, while the queue holds more than
    /// [`OWN_LIMIT`] bytes: a stream nobody reads must not grow pidone's memory.
    pub fn own_lines(&mut self, stream: Stream, text: &[u8]) -> bool {
        let queue = self.queue_mut(stream);
        if queue.queued() > OWN_LIMIT {
            return false;
        }
        let start = queue_lines(queue, b"", PIPE_BUF - 1, text, &mut Lines::default());
        if let Some(rest) = text.get(start..).filter(|r| !r.is_empty()) {
            queue.push(b"", rest);
        }
        true
    }

    /// Whether reading `src` must pause: its lines go to the console, which is
    /// [paused](Output::paused). A source writing only to a log file never waits.
    pub fn holds_back(&self, src: &Source) -> bool {
        src.console && self.paused(src.stream)
    }

    /// Whether reading from `stream`'s sources must pause: its queue went over [`HIGH_WATER`]
    /// and has not yet drained to [`LOW_WATER`]. The loop does not poll those sources for
    /// `POLLIN` meanwhile.
    pub fn paused(&self, stream: Stream) -> bool {
        self.queue(stream).paused
    }

    /// Whether `stream` has lines to write: the loop polls [`Output::fd`] for `POLLOUT` then.
    pub fn wants_write(&self, stream: Stream) -> bool {
        let queue = self.queue(stream);
        !queue.dead && queue.queued() > 0
    }

    /// The descriptor `stream` is written to, to poll for `POLLOUT`.
    pub fn fd(&self, stream: Stream) -> BorrowedFd<'_> {
        self.queue(stream).target.fd()
    }

    /// Services' lines of `stream` discarded since the last call: its writes failed for good, or
    /// a pipe that ended while paused held more than fits.
    pub fn take_lost(&mut self, stream: Stream) -> u64 {
        std::mem::take(&mut self.queue_mut(stream).lost)
    }

    /// Bytes queued for `stream` and not yet written.
    pub fn queued(&self, stream: Stream) -> usize {
        self.queue(stream).queued()
    }

    /// Writes queued lines to `stream` as long as that cannot block; call when poll reported
    /// any event for [`Output::fd`]. Safe to call at any time: it checks readiness itself.
    pub fn write_ready(&mut self, stream: Stream) {
        let queue = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        queue.write_ready();
    }

    /// For exit: writes everything queued, blocking in `poll()` for at most 2 seconds in all;
    /// what a stuck stream still holds then is discarded, with a warning.
    pub fn flush_all(&mut self) {
        self.flush_within(FLUSH_TIMEOUT);
    }

    fn flush_within(&mut self, limit: Duration) {
        let give_up_at = Instant::now() + limit;
        loop {
            let streams: Vec<Stream> = [Stream::Stdout, Stream::Stderr]
                .into_iter()
                .filter(|&s| self.wants_write(s))
                .collect();
            if streams.is_empty() {
                return;
            }
            let left = give_up_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for s in streams {
                    let queue = self.queue_mut(s);
                    log::warn!(
                        "{} is stuck; {} lines of services' output lost at exit",
                        queue.name,
                        queue.lines_left()
                    );
                    queue.clear();
                    // Nothing more is queued for it: a later flush must not wait again.
                    queue.dead = true;
                }
                return;
            }
            let timeout = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds: Vec<PollFd<'_>> = streams
                .iter()
                .map(|&s| PollFd::from_borrowed_fd(self.fd(s), PollFlags::OUT))
                .collect();
            // Only the waiting matters: write_ready checks each stream again.
            let _ = poll(&mut fds, Some(&timeout));
            drop(fds);
            for s in streams {
                self.write_ready(s);
            }
        }
    }
}

/// Queues every complete line at the start of `bytes`, and splits off pieces of `max_text`
/// bytes from a line longer than that; returns how many bytes were consumed. What remains is a
/// line not yet complete, at most `max_text` bytes long.
fn queue_lines(
    queue: &mut Queue,
    prefix: &[u8],
    max_text: usize,
    bytes: &[u8],
    tap: &mut Lines,
) -> usize {
    plain_lines(queue, None, prefix, max_text, bytes, false, tap, None)
}

/// [`queue_lines`], with what remains too when `last`, and a service's counters. With a
/// `batch`, the lines are written at once while the queue holds nothing (see [`Out`]).
#[allow(clippy::too_many_arguments)]
fn plain_lines(
    queue: &mut Queue,
    batch: Option<&mut Batch>,
    prefix: &[u8],
    max_text: usize,
    bytes: &[u8],
    last: bool,
    tap: &mut Lines,
    counters: Option<&mut Counters>,
) -> usize {
    let mut out = Out::new(queue, batch);
    let mut count = Counters::default();
    // Lines that end in their own newline go out with it, and to the tap in runs: one copy per
    // run, not per line (a piece of a longer line, which gets a newline of its own, ends a run).
    // The loop is split_lines's, written out: every line of every service passes here.
    let (mut at, mut run) = (0, 0);
    while let Some(rest) = bytes.get(at..) {
        // A newline right after max_text bytes still ends a line that fits.
        let window = rest.get(..max_text + 1).unwrap_or(rest);
        let (piece, ends) = match newline(window) {
            Some(i) => {
                let line = rest.get(..=i).unwrap_or_default();
                tap.count(line.len());
                count.dropped_console += u64::from(!out.line(&[prefix, line]));
                (count.lines, count.bytes) = (count.lines + 1, count.bytes + i as u64);
                at += i + 1;
                continue;
            }
            None if rest.len() > max_text => (rest.get(..split_point(rest, max_text)), false),
            None if last && !rest.is_empty() => (Some(rest), true),
            None => break,
        };
        let piece = piece.unwrap_or_default();
        tap.push_run(bytes.get(run..at).unwrap_or_default());
        tap.push(piece);
        count.dropped_console += u64::from(!out.line(&[prefix, piece, b"\n"]));
        count.lines += u64::from(ends);
        count.bytes += piece.len() as u64;
        at += piece.len();
        run = at;
    }
    tap.push_run(bytes.get(run..at).unwrap_or_default());
    out.flush();
    if let Some(c) = counters {
        c.lines += count.lines;
        c.bytes += count.bytes;
        c.dropped_console += count.dropped_console;
    }
    at
}

/// Where the formatted lines of one read go: gathered in a [`Batch`] and written in the turn
/// that read them, one write per batch, while the queue holds nothing (so nothing can overtake
/// what waits) and the target takes whole batches; once a write fell short or could not happen,
/// or when the queue held lines to begin with, queued a batch at a time. Without a batch (a
/// message of pidone's own), queued a line at a time.
struct Out<'q> {
    queue: &'q mut Queue,
    batch: Option<&'q mut Batch>,
    /// False: every batch is queued.
    direct: bool,
}

impl<'q> Out<'q> {
    fn new(queue: &'q mut Queue, mut batch: Option<&'q mut Batch>) -> Out<'q> {
        if let Some(b) = batch.as_mut() {
            b.start(queue.batch());
        }
        let direct = queue.queued() == 0;
        Out {
            queue,
            batch,
            direct,
        }
    }

    /// Writes or queues one formatted line, the concatenation of `parts`; false when its
    /// stream is dead (the line is counted as lost, as [`Queue::push_parts`] does).
    fn line(&mut self, parts: &[&[u8]]) -> bool {
        let Some(batch) = self.batch.as_mut() else {
            return self.queue.push_parts(parts);
        };
        if self.queue.dead {
            self.queue.lost += 1;
            return false;
        }
        if batch.add(parts) {
            return true;
        }
        self.flush();
        if self.batch.as_mut().is_some_and(|b| b.add(parts)) {
            return true;
        }
        // Not even an empty batch takes it (no formatted line is that long): queued, and so
        // is every line after it, so that none overtakes it.
        self.direct = false;
        self.queue.push_parts(parts)
    }

    /// Writes the batch if it can without blocking, and queues what the write did not take:
    /// from then on, every batch is queued.
    fn flush(&mut self) {
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        let bytes = batch.bytes();
        if bytes.is_empty() {
            return;
        }
        let mut written = 0;
        if self.direct && self.queue.writable() {
            match rustix::io::write(self.queue.target.fd(), bytes) {
                Ok(n) => written = n,
                // Full (EAGAIN), interrupted, or failed: the queue's own write tries again
                // and, for a failure, reports it and counts the lines lost.
                Err(_) => self.direct = false,
            }
        }
        if let Some(rest) = bytes.get(written..).filter(|r| !r.is_empty()) {
            self.direct = false;
            self.queue.push_parts(&[rest]);
        }
        batch.clear();
    }
}

/// Hands `each` every complete line at the start of `bytes` (without its newline; `true`: it
/// ends a line) and the pieces of `max_text` bytes split off a longer line (`false`); with
/// `last`, what remains too, as a line's end. Returns how many bytes were consumed: what
/// remains is a line not yet complete, at most `max_text` bytes long.
fn split_lines(
    bytes: &[u8],
    max_text: usize,
    last: bool,
    each: &mut dyn FnMut(&[u8], bool),
) -> usize {
    let mut start = 0;
    while let Some(rest) = bytes.get(start..) {
        // A newline right after max_text bytes still ends a line that fits.
        let window = rest.get(..rest.len().min(max_text + 1)).unwrap_or(rest);
        if let Some(i) = newline(window) {
            each(rest.get(..i).unwrap_or_default(), true);
            start += i + 1;
        } else if rest.len() > max_text {
            let cut = split_point(rest, max_text);
            each(rest.get(..cut).unwrap_or_default(), false);
            start += cut;
        } else {
            if last && !rest.is_empty() {
                each(rest, true);
                start = bytes.len();
            }
            break;
        }
    }
    start
}

/// Where the first newline of `bytes` is. Every byte of every service's output passes here, so
/// it is `memchr`'s search (sixteen or thirty-two bytes at a time), not a byte-by-byte loop.
pub fn newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Where to cut `bytes` (longer than `max`) to at most `max` bytes: before a UTF-8 character
/// rather than inside it, so that each piece of a long line stays valid text; exactly at `max`
/// when the bytes there are not UTF-8.
fn split_point(bytes: &[u8], max: usize) -> usize {
    let continuation = |i: usize| bytes.get(i).is_some_and(|b| b & 0xC0 == 0x80);
    // A UTF-8 character is at most 4 bytes: at most 3 continuation bytes to back over.
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && !continuation(i))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_finds_the_first_newline_wherever_it_is() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes = vec![b'x'; len];
                // Bytes next to a newline's value, which a sloppy bit trick would take for one.
                bytes.iter_mut().step_by(3).for_each(|b| *b = 0x0b);
                if at < len {
                    bytes[at] = b'\n';
                    bytes
                        .iter_mut()
                        .skip(at + 1)
                        .step_by(2)
                        .for_each(|b| *b = b'\n');
                }
                let want = (at < len).then_some(at);
                assert_eq!(newline(&bytes), want, "{bytes:?}");
            }
        }
        assert_eq!(newline(b"\x8a\x0a"), Some(1));
    }

    #[test]
    fn a_drained_queue_gives_its_room_back() {
        let (_r, w) = rustix::pipe::pipe().expect("a pipe");
        let mut q = Queue::new("stdout", Target::Owned(w));
        for _ in 0..20_000 {
            q.push(b"[x] ", b"line");
        }
        assert!(q.buf.capacity() > 2 * HIGH_WATER);
        q.consume(q.queued());
        assert_eq!(q.queued(), 0);
        assert_eq!(q.buf.capacity(), 0, "one buffer, given back whole");
    }
    use rustix::pipe::{PipeFlags, pipe_with};

    /// A pipe whose read end is non-blocking, as the test reads it without a poll.
    fn pipe_pair() -> (OwnedFd, OwnedFd) {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC).expect("pipe");
        fcntl_setfl(&r, OFlags::NONBLOCK).expect("nonblock");
        (r, w)
    }

    /// Everything the read end holds now.
    fn drain(fd: &OwnedFd, into: &mut Vec<u8>) {
        let mut buf = [0u8; 65536];
        loop {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) | Err(Errno::AGAIN) => return,
                Ok(n) => into.extend_from_slice(&buf[..n]),
                Err(err) => panic!("read: {err}"),
            }
        }
    }

    fn write_all(fd: &OwnedFd, mut data: &[u8]) {
        while !data.is_empty() {
            let n = rustix::io::write(fd, data).expect("write");
            data = &data[n..];
        }
    }

    struct Harness {
        output: Output,
        out_r: OwnedFd,
        err_r: OwnedFd,
        out: Vec<u8>,
        err: Vec<u8>,
    }

    impl Harness {
        fn new(width: usize) -> Harness {
            let (out_r, out_w) = pipe_pair();
            let (err_r, err_w) = pipe_pair();
            Harness {
                output: Output::with_fds(width, out_w, err_w),
                out_r,
                err_r,
                out: Vec::new(),
                err: Vec::new(),
            }
        }

        /// Moves everything queued to the test's buffers.
        fn pump(&mut self) {
            loop {
                self.output.write_ready(Stream::Stdout);
                self.output.write_ready(Stream::Stderr);
                drain(&self.out_r, &mut self.out);
                drain(&self.err_r, &mut self.err);
                if !self.output.wants_write(Stream::Stdout)
                    && !self.output.wants_write(Stream::Stderr)
                {
                    return;
                }
            }
        }
    }

    fn lines(bytes: &[u8]) -> Vec<&[u8]> {
        assert!(bytes.is_empty() || bytes.ends_with(b"\n"), "unterminated");
        bytes.split_inclusive(|&b| b == b'\n').collect()
    }

    #[test]
    fn names_are_padded_to_the_longest_and_streams_kept() {
        let mut h = Harness::new(5);
        let (r, w) = pipe_pair();
        let mut web = h.output.source("web", Stream::Stdout, r);
        let (r2, w2) = pipe_pair();
        let mut db = h.output.source("db-01", Stream::Stderr, r2);
        write_all(&w, b"hello\n\nworld\n");
        write_all(&w2, b"ready\n");
        assert_eq!(h.output.read_from(&mut web), ReadOutcome::Open);
        assert_eq!(h.output.read_from(&mut db), ReadOutcome::Open);
        h.output.line("pidone", Stream::Stderr, "note\n");
        h.pump();
        assert_eq!(h.out, b"[web  ] hello\n[web  ] \n[web  ] world\n");
        assert_eq!(h.err, b"[db-01] ready\n[pidone] note\n");
    }

    #[test]
    fn partial_line_is_flushed_at_eof() {
        let mut h = Harness::new(3);
        let (r, w) = pipe_pair();
        let mut src = h.output.source("a", Stream::Stdout, r);
        write_all(&w, b"one\ntwo");
        assert_eq!(h.output.read_from(&mut src), ReadOutcome::Open);
        h.pump();
        assert_eq!(h.out, b"[a  ] one\n");
        drop(w);
        assert_eq!(h.output.read_from(&mut src), ReadOutcome::Eof);
        h.pump();
        assert_eq!(h.out, b"[a  ] one\n[a  ] two\n");
    }

    #[test]
    fn finish_flushes_a_partial_line_of_an_open_pipe() {
        let mut h = Harness::new(1);
        let (r, w) = pipe_pair();
        let src = h.output.source("a", Stream::Stdout, r);
        write_all(&w, b"x\nunfinished");
        h.output.finish(src);
        h.output.flush_all();
        drain(&h.out_r, &mut h.out);
        assert_eq!(h.out, b"[a] x\n[a] unfinished\n");
    }

    #[test]
    fn long_line_is_split_into_atomic_lines_without_losing_a_byte() {
        let mut h = Harness::new(4);
        let (r, w) = pipe_pair();
        fcntl_setfl(&w, OFlags::NONBLOCK).expect("nonblock");
        let mut src = h.output.source("big", Stream::Stdout, r);
        let text: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = text.clone();
        input.push(b'\n');
        let mut fed = 0;
        while fed < input.len() {
            match rustix::io::write(&w, &input[fed..]) {
                Ok(n) => fed += n,
                Err(Errno::AGAIN) => {}
                Err(err) => panic!("write: {err}"),
            }
            while h.output.read_from(&mut src) == ReadOutcome::Open && h.output.queued_any() {
                h.pump();
            }
        }
        h.output.read_from(&mut src);
        h.pump();
        let mut joined = Vec::new();
        for line in lines(&h.out) {
            assert!(line.len() <= PIPE_BUF, "line of {} bytes", line.len());
            let body = line.strip_prefix(b"[big ] ").expect("prefix");
            joined.extend_from_slice(&body[..body.len() - 1]);
        }
        assert_eq!(joined, text);
        assert!(lines(&h.out).len() >= 100_000 / PIPE_BUF);
    }

    #[test]
    fn a_long_line_is_not_split_inside_a_utf8_character() {
        let mut h = Harness::new(1);
        let text = "é".repeat(5000);
        h.output.line("u", Stream::Stdout, &text);
        h.pump();
        let mut joined = String::new();
        for line in lines(&h.out) {
            assert!(line.len() <= PIPE_BUF);
            let body = std::str::from_utf8(line).expect("valid UTF-8 in each piece");
            joined.push_str(
                body.strip_prefix("[u] ")
                    .expect("prefix")
                    .trim_end_matches('\n'),
            );
        }
        assert_eq!(joined, text);
    }

    impl Output {
        fn queued_any(&self) -> bool {
            self.queued(Stream::Stdout) > 0 || self.queued(Stream::Stderr) > 0
        }
    }

    #[test]
    fn lines_of_many_sources_arrive_whole_and_in_order() {
        const SOURCES: usize = 5;
        const LINES: usize = 10_000 / SOURCES;
        let mut h = Harness::new(2);
        let mut writers = Vec::new();
        let mut sources = Vec::new();
        let mut inputs = Vec::new();
        for s in 0..SOURCES {
            let (r, w) = pipe_pair();
            sources.push(Some(h.output.source(&format!("s{s}"), Stream::Stdout, r)));
            writers.push(Some(w));
            let mut input = Vec::new();
            for i in 0..LINES {
                // Lengths vary so that lines straddle the writes below.
                input.extend_from_slice(
                    format!("s{s} line {i} {}\n", "x".repeat(i % 50)).as_bytes(),
                );
            }
            inputs.push((input, 0usize));
        }
        while sources.iter().any(Option::is_some) {
            for s in 0..SOURCES {
                let (input, fed) = &mut inputs[s];
                if let Some(w) = &writers[s] {
                    let end = (*fed + 37).min(input.len());
                    write_all(w, &input[*fed..end]);
                    *fed = end;
                    if *fed == input.len() {
                        writers[s] = None;
                    }
                }
                if let Some(src) = &mut sources[s] {
                    if h.output.read_from(src) == ReadOutcome::Eof {
                        sources[s] = None;
                    }
                }
            }
            h.pump();
        }
        let mut next = [0usize; SOURCES];
        for line in lines(&h.out) {
            let text = std::str::from_utf8(line).expect("utf8");
            let (prefix, body) = text.split_at(5);
            let s: usize = prefix[2..3].parse().expect("source");
            assert_eq!(prefix, format!("[s{s}] "));
            let expected = format!("s{s} line {} {}\n", next[s], "x".repeat(next[s] % 50));
            assert_eq!(body, expected);
            next[s] += 1;
        }
        assert_eq!(next, [LINES; SOURCES]);
    }

    #[test]
    fn a_stuck_stdout_pauses_reading_then_loses_nothing() {
        let mut h = Harness::new(1);
        let (r, w) = pipe_pair();
        fcntl_setfl(&w, OFlags::NONBLOCK).expect("nonblock");
        let mut writer = Some(w);
        let mut src = h.output.source("p", Stream::Stdout, r);
        let mut input = Vec::new();
        for i in 0..40_000 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut fed = 0;
        // Feeds the service's pipe as far as it takes without blocking; closes it when done.
        let feed = |writer: &mut Option<OwnedFd>, fed: &mut usize| -> usize {
            let Some(w) = writer else { return 0 };
            let n = match rustix::io::write(&*w, &input[*fed..]) {
                Ok(n) => n,
                Err(Errno::AGAIN) => 0,
                Err(err) => panic!("write: {err}"),
            };
            *fed += n;
            if *fed == input.len() {
                *writer = None;
            }
            n
        };
        // Nobody reads pidone's stdout: run until the service's own pipe is full too.
        loop {
            let wrote = feed(&mut writer, &mut fed);
            if !h.output.paused(Stream::Stdout) {
                h.output.read_from(&mut src);
            }
            h.output.write_ready(Stream::Stdout);
            assert!(h.output.queued(Stream::Stdout) <= HIGH_WATER + 2 * READ_CHUNK);
            if wrote == 0 && h.output.paused(Stream::Stdout) {
                break;
            }
        }
        assert!(writer.is_some(), "the service is held back");
        // The reader of pidone's stdout comes back.
        loop {
            feed(&mut writer, &mut fed);
            h.output.write_ready(Stream::Stdout);
            drain(&h.out_r, &mut h.out);
            if !h.output.paused(Stream::Stdout) && h.output.read_from(&mut src) == ReadOutcome::Eof
            {
                break;
            }
        }
        h.pump();
        let expected: Vec<u8> = input
            .split_inclusive(|&b| b == b'\n')
            .flat_map(|l| [b"[p] ".as_slice(), l].concat())
            .collect();
        assert_eq!(h.out.len(), expected.len());
        assert!(h.out == expected);
    }

    #[test]
    fn a_closed_stdout_is_given_up_without_panic_or_spin() {
        let mut h = Harness::new(1);
        h.output.line("a", Stream::Stdout, "lost");
        h.output.line("a", Stream::Stderr, "kept");
        // Closing the only reader makes the next write fail with EPIPE (SIGPIPE is ignored by
        // Rust programs, and by pidone).
        let (other, _) = pipe_pair();
        drop(std::mem::replace(&mut h.out_r, other));
        h.output.write_ready(Stream::Stdout);
        assert!(
            !h.output.wants_write(Stream::Stdout),
            "nothing left to poll for"
        );
        for _ in 0..100_000 {
            h.output.line("a", Stream::Stdout, "more");
        }
        assert!(!h.output.paused(Stream::Stdout));
        assert_eq!(h.output.queued(Stream::Stdout), 0);
        h.output.flush_all();
        drain(&h.err_r, &mut h.err);
        assert_eq!(h.err, b"[a] kept\n");
    }

    #[test]
    fn lines_discarded_on_a_closed_stdout_are_counted() {
        let mut h = Harness::new(1);
        h.output.line("a", Stream::Stdout, "queued");
        let (other, _) = pipe_pair();
        drop(std::mem::replace(&mut h.out_r, other));
        h.output.write_ready(Stream::Stdout);
        let (r, w) = pipe_pair();
        let mut src = h.output.source("a", Stream::Stdout, r);
        write_all(&w, b"one\ntwo\n");
        h.output.read_from(&mut src);
        assert_eq!(h.output.take_lost(Stream::Stdout), 3);
        assert_eq!(h.output.take_lost(Stream::Stdout), 0, "taken once");
        assert_eq!(h.output.take_lost(Stream::Stderr), 0);
    }

    #[test]
    fn a_pipe_ending_while_paused_is_read_within_a_bound_and_closed() {
        let mut h = Harness::new(1);
        let fill = "f".repeat(1000);
        while !h.output.paused(Stream::Stdout) {
            h.output.line("a", Stream::Stdout, &fill);
        }
        fn ended(output: &mut Output, lines: usize) {
            let (r, w) = pipe_pair();
            let mut src = output.source("b", Stream::Stdout, r);
            let text: String = (0..lines).map(|i| format!("line {i:05}\n")).collect();
            write_all(&w, text.as_bytes());
            drop(w);
            assert_eq!(output.read_from(&mut src), ReadOutcome::Open, "paused");
            assert_eq!(output.read_ended(&mut src), ReadOutcome::Eof);
        }
        // 5000 lines of 11 bytes: queued past the pause.
        ended(&mut h.output, 5000);
        assert!(h.output.queued(Stream::Stdout) > HIGH_WATER + 5000 * 11);
        assert_eq!(h.output.take_lost(Stream::Stdout), 0);
        // Again and again, as a crash-looping service would: the queue stays bounded.
        for _ in 0..10 {
            ended(&mut h.output, 5000);
        }
        assert!(h.output.queued(Stream::Stdout) <= SPILL_LIMIT + READ_CHUNK + PIPE_BUF);
        let lost = h.output.take_lost(Stream::Stdout);
        assert!(lost > 30_000, "{lost} lines counted");
        h.pump();
        let got = lines(&h.out)
            .iter()
            .filter(|l| l.starts_with(b"[b] "))
            .count();
        assert_eq!(got as u64 + lost, 55_000, "each line written or counted");
    }

    #[test]
    fn what_a_read_brings_is_written_in_the_same_call() {
        let mut h = Harness::new(1);
        let (r, w) = pipe_pair();
        let mut src = h.output.source("a", Stream::Stdout, r);
        // A line cut across two reads: its start waits, its end completes it.
        write_all(&w, b"one\ntw");
        h.output.read_from(&mut src);
        drain(&h.out_r, &mut h.out);
        assert_eq!(h.out, b"[a] one\n", "written without a write_ready");
        write_all(&w, b"o\nthree\n");
        h.output.read_from(&mut src);
        drain(&h.out_r, &mut h.out);
        assert_eq!(h.out, b"[a] one\n[a] two\n[a] three\n");
        assert!(!h.output.wants_write(Stream::Stdout), "nothing queued");
        let lines = h.output.take_lines();
        assert_eq!(
            lines.bytes(),
            b"two\nthree\n",
            "the ring gets the same lines"
        );
    }

    /// The read end of a pipe that holds one page, its write end non-blocking.
    fn small_pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = pipe_pair();
        rustix::pipe::fcntl_setpipe_size(&w, 4096).expect("pipe size");
        fcntl_setfl(&w, OFlags::NONBLOCK).expect("nonblock");
        (r, w)
    }

    #[test]
    fn a_write_that_falls_short_queues_the_rest_in_order() {
        // A pipe of one page taking batches as large as a file's: the first write stops inside
        // a line, the rest waits in the queue, and later lines queue behind it.
        let (out_r, out_w) = small_pipe();
        let (err_r, err_w) = pipe_pair();
        let mut h = Harness {
            output: Output::with_fds(1, out_w, err_w),
            out_r,
            err_r,
            out: Vec::new(),
            err: Vec::new(),
        };
        h.output.out.file = true;
        let (r, w) = pipe_pair();
        let mut src = h.output.source("a", Stream::Stdout, r);
        let text: String = (0..2000).map(|i| format!("line {i:04}\n")).collect();
        write_all(&w, text.as_bytes());
        h.output.read_from(&mut src);
        assert!(h.output.wants_write(Stream::Stdout), "the rest is queued");
        let queued = h.output.queued(Stream::Stdout);
        assert_eq!(
            queued,
            2000 * 14 - 4096,
            "4096 bytes written, cut inside a line"
        );
        write_all(&w, b"after\n");
        h.output.read_from(&mut src);
        assert_eq!(
            h.output.queued(Stream::Stdout),
            queued + 10,
            "queued behind"
        );
        drop(w);
        assert_eq!(h.output.read_from(&mut src), ReadOutcome::Eof);
        h.pump();
        let expected: String = text.lines().map(|l| format!("[a] {l}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&h.out), expected + "[a] after\n");
    }

    #[test]
    fn a_full_console_pipe_holds_lines_back_whole_and_in_order() {
        // Both streams on small pipes nobody reads for a while: each write is whole lines
        // within PIPE_BUF (atomic), what does not fit waits, and the two streams stay apart.
        let (out_r, out_w) = small_pipe();
        let (err_r, err_w) = small_pipe();
        let mut h = Harness {
            output: Output::with_fds(1, out_w, err_w),
            out_r,
            err_r,
            out: Vec::new(),
            err: Vec::new(),
        };
        let (r1, w1) = pipe_pair();
        let (r2, w2) = pipe_pair();
        let mut o = h.output.source("o", Stream::Stdout, r1);
        let mut e = h.output.source("e", Stream::Stderr, r2);
        let mut want = (String::new(), String::new());
        for round in 0..50 {
            let a: String = (0..40).map(|i| format!("out {round} {i}\n")).collect();
            let b: String = (0..40).map(|i| format!("err {round} {i}\n")).collect();
            write_all(&w1, a.as_bytes());
            write_all(&w2, b.as_bytes());
            want.0 += &a.lines().map(|l| format!("[o] {l}\n")).collect::<String>();
            want.1 += &b.lines().map(|l| format!("[e] {l}\n")).collect::<String>();
            h.output.read_from(&mut o);
            h.output.read_from(&mut e);
            if round % 7 == 6 {
                h.pump();
            }
        }
        h.pump();
        for (got, want) in [(&h.out, &want.0), (&h.err, &want.1)] {
            assert_eq!(String::from_utf8_lossy(got), *want);
        }
    }

    #[test]
    fn flush_gives_up_on_a_stuck_stdout() {
        let mut h = Harness::new(1);
        let big = "y".repeat(1000);
        for _ in 0..200 {
            h.output.line("a", Stream::Stdout, &big);
        }
        let start = Instant::now();
        h.output.flush_within(Duration::from_millis(50));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(!h.output.wants_write(Stream::Stdout));
    }
}
