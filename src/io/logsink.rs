//! Where pidone's own log messages go. Before the loop runs (start-up errors, the client,
//! `validate`) they are written to stderr at once. While the loop runs they are captured here
//! and handed to the output multiplexer each turn ([`take`]), so that a stderr nobody reads can
//! never block PID 1, and pidone's lines interleave whole with the services' own.
//!
//! The capture buffer is bounded: beyond [`LIMIT`] bytes in one turn of the loop (thousands of
//! services changing state at once), messages are counted and dropped.
//!
//! A message that anyone can cause at will (a datagram from a stranger, a line lost on a dead
//! stdout) goes through a [`Tally`]: the first is logged, the rest summed up at most once per
//! [`Tally::PERIOD`].

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;
#[cfg(feature = "services")]
use std::time::{Duration, Instant};

use super::format::{self, Style};
#[cfg(feature = "services")]
use super::output::PIPE_BUF;
/// The init-only build has no output multiplexer: the same bound, from the C library.
#[cfg(not(feature = "services"))]
use libc::PIPE_BUF;

/// How pidone's own lines look ([`set_style`]): bit 0 timestamps, bit 1 JSON.
static STYLE: AtomicU8 = AtomicU8::new(0);

/// Makes pidone's own lines look like `style` from now on (`[log]`, `--log-timestamps`,
/// `--log-format`).
pub fn set_style(style: Style) {
    STYLE.store(
        u8::from(style.timestamps) | u8::from(style.json) << 1,
        Ordering::Relaxed,
    );
}

fn style() -> Style {
    let bits = STYLE.load(Ordering::Relaxed);
    Style {
        timestamps: bits & 1 != 0,
        json: bits & 2 != 0,
    }
}

/// One of pidone's own messages as a line (or, in JSON, lines of at most 4096 bytes):
/// `pidone: warning: text`, with its time first when timestamps are on, or
/// `{"time":..,"service":"pidone","level":"warn","message":"text"}`.
pub fn record(level: log::Level, text: &str) -> Vec<u8> {
    let style = style();
    let mut out = Vec::new();
    let stamp = (style.json || style.timestamps).then(|| format::stamp(SystemTime::now()));
    if let (true, Some(stamp)) = (style.json, &stamp) {
        let name = level.as_str().to_ascii_lowercase();
        let head = format::json_head(stamp, "pidone", "level", &name);
        let line = &mut Vec::new();
        format::json_lines(&head, text.as_bytes(), false, PIPE_BUF, line, &mut |l| {
            out.extend_from_slice(l)
        });
        return out;
    }
    if let Some(stamp) = stamp {
        out.extend_from_slice(&stamp);
        out.push(b' ');
    }
    let line = match level {
        log::Level::Error | log::Level::Info => format!("pidone: {text}\n"),
        log::Level::Warn => format!("pidone: warning: {text}\n"),
        level => format!("pidone: [{level}] {text}\n"),
    };
    out.extend_from_slice(line.as_bytes());
    out
}

/// The most captured bytes held between two turns of the loop.
pub const LIMIT: usize = 512 * 1024;

struct Capture {
    on: bool,
    bytes: Vec<u8>,
    dropped: u64,
}

static CAPTURE: Mutex<Capture> = Mutex::new(Capture {
    on: false,
    bytes: Vec::new(),
    dropped: 0,
});

fn capture() -> std::sync::MutexGuard<'static, Capture> {
    // pidone has one thread and aborts on panic: the lock is never poisoned, and if it were,
    // its data is still consistent (plain bytes).
    CAPTURE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts (true) or ends (false) capturing. Ending it writes nothing: [`take`] what is left
/// first.
pub fn set_capture(on: bool) {
    capture().on = on;
}

/// The messages captured since the last call (whole lines), and how many were dropped.
pub fn take() -> (Vec<u8>, u64) {
    let mut c = capture();
    let dropped = std::mem::take(&mut c.dropped);
    (std::mem::take(&mut c.bytes), dropped)
}

/// For a panic hook: what was captured and not yet queued, without waiting for the lock (the
/// panic may have happened while it was held).
pub fn take_for_panic() -> Vec<u8> {
    match CAPTURE.try_lock() {
        Ok(mut c) => {
            c.on = false;
            std::mem::take(&mut c.bytes)
        }
        Err(_) => Vec::new(),
    }
}

/// Counts repeated events and says when to report them: the first at once, then the sum of the
/// others at most once per [`Tally::PERIOD`]. A deadline, not a timer: [`Tally::deadline`] is
/// only set while a sum waits to be reported, so a quiet tally never wakes the loop.
#[cfg(feature = "services")]
#[derive(Debug, Default)]
pub struct Tally {
    count: u64,
    quiet_until: Option<Instant>,
}

#[cfg(feature = "services")]
impl Tally {
    /// The least time between two reports.
    pub const PERIOD: Duration = Duration::from_secs(5);

    /// Counts `n` more events; returns the number to report now, if it is time.
    pub fn add(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.count = self.count.saturating_add(n);
        self.due(now)
    }

    /// The number to report now, if any is waiting and the quiet period is over.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self.count == 0 || self.quiet_until.is_some_and(|q| now < q) {
            return None;
        }
        self.quiet_until = Some(crate::core::service::later(now, Self::PERIOD));
        Some(std::mem::take(&mut self.count))
    }

    /// When [`Tally::due`] will have something to report; None when nothing waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.quiet_until.filter(|_| self.count > 0)
    }
}

/// The logger's output: one formatted record per `write_all`.
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut c = capture();
        if !c.on {
            drop(c);
            return io::stderr().write(buf);
        }
        if c.bytes.len() + buf.len() <= LIMIT {
            c.bytes.extend_from_slice(buf);
        } else {
            c.dropped += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// pidone's logger: `pidone: ...` lines into [`Writer`], at the level asked for.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self::record(record.level(), &record.args().to_string());
        // One write per record, so that a record is captured or dropped whole.
        let _ = Writer.write_all(&line);
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs pidone's logger: warnings and errors, unless `-v` (`verbose` 1: debug, 2: trace) or
/// `PIDONE_LOG` (`env`) asks for more or less.
pub fn init(verbose: u8, env: Option<&str>) {
    let level = match verbose {
        0 => env.map_or(log::LevelFilter::Warn, level_of),
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    // Fails only when a logger is already installed, which cannot happen: run is called once.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The level `PIDONE_LOG` asks for: a level name (`off`, `error`, `warn`, `info`, `debug`,
/// `trace`), or env_logger-style directives (`warn,pidone::supervisor=debug`), of which the most
/// verbose level counts (pidone is one crate: the module part selects nothing). Anything else
/// leaves the default, warnings.
pub fn level_of(text: &str) -> log::LevelFilter {
    text.split(',')
        .filter_map(|directive| {
            let level = directive.rsplit('=').next().unwrap_or(directive);
            level.trim().parse::<log::LevelFilter>().ok()
        })
        .max()
        .unwrap_or(log::LevelFilter::Warn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidone_log_takes_a_level_or_directives() {
        use log::LevelFilter::*;
        assert_eq!(level_of("debug"), Debug);
        assert_eq!(level_of("OFF"), Off);
        assert_eq!(level_of("warn,pidone::supervisor=trace"), Trace);
        assert_eq!(level_of("pidone=info"), Info);
        assert_eq!(level_of("loud"), Warn);
        assert_eq!(level_of(""), Warn);
    }

    #[test]
    fn captured_messages_are_bounded_and_counted() {
        set_capture(true);
        let _ = take();
        let mut w = Writer;
        w.write_all(b"pidone: one\n").expect("write");
        let big = vec![b'x'; LIMIT];
        w.write_all(&big).expect("write");
        w.write_all(b"pidone: two\n").expect("write");
        let (bytes, dropped) = take();
        set_capture(false);
        assert_eq!(bytes, b"pidone: one\npidone: two\n");
        assert_eq!(dropped, 1);
        assert_eq!(take(), (Vec::new(), 0));
    }

    #[test]
    fn a_tally_reports_the_first_at_once_then_one_sum_per_period() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        assert_eq!(t.deadline(), None);
        assert_eq!(t.add(1, t0), Some(1));
        assert_eq!(t.deadline(), None, "nothing waits: no wake-up");
        assert_eq!(t.add(1, t0), None);
        assert_eq!(t.add(5, t0 + Duration::from_secs(1)), None);
        assert_eq!(t.deadline(), Some(t0 + Tally::PERIOD));
        assert_eq!(t.due(t0 + Duration::from_secs(4)), None);
        assert_eq!(t.due(t0 + Tally::PERIOD), Some(6));
        assert_eq!(t.deadline(), None);
        assert_eq!(
            t.add(2, t0 + Tally::PERIOD),
            None,
            "quiet again for a period"
        );
        assert_eq!(t.due(t0 + 2 * Tally::PERIOD), Some(2));
        assert_eq!(
            t.add(3, t0 + 4 * Tally::PERIOD),
            Some(3),
            "after a quiet period"
        );
    }
}
