//! What a piece of a service's line becomes on its way out: the line formatted for pidone's
//! console (`[name] text`, with its time, or a JSON object) and for the service's log file (the
//! text alone, with its time, or a JSON object), and the per-service [`ServiceLog`] that holds the
//! log file and counts what was written and dropped (status, the API, the metrics).

use std::time::{Instant, SystemTime};

use super::format::{self, STAMP_LEN, Style};
use super::logfile::LogFile;
use super::output::PIPE_BUF;

/// One service's output beyond the console: its log file, if any, and its counters. Kept across
/// the service's restarts (keyed by the service), so the counters are totals.
pub struct ServiceLog {
    /// The service's name, for JSON lines.
    pub name: String,
    pub file: Option<LogFile>,
    /// Whether the file takes JSON lines (`log_format`, or the global format).
    pub file_json: bool,
    pub counters: Counters,
}

/// What happened to a service's lines since pidone started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Lines read from the service (a line cut for length counts once).
    pub lines: u64,
    /// Their bytes, newlines not included.
    pub bytes: u64,
    /// Lines not written to the console: its writes failed for good, or the pipe of a service
    /// that had exited held more than fits while the console was stuck.
    pub dropped_console: u64,
    /// Lines not written to the log file (missing directory, no permission, disk full).
    pub dropped_file: u64,
}

impl ServiceLog {
    /// The counters, with the file's drops.
    pub fn counters(&self) -> Counters {
        Counters {
            dropped_file: self.file.as_ref().map_or(0, LogFile::dropped),
            ..self.counters
        }
    }
}

/// How the lines of one read look: computed once per read of a pipe, not per line.
pub struct Look {
    /// The time they were read, when a format shows it.
    stamp: Option<[u8; STAMP_LEN]>,
    /// `{"time":..,"service":..,"stream":..,"message":"`, when a format is JSON.
    head: Option<Vec<u8>>,
    style: Style,
    /// Where each JSON line is made, kept from line to line.
    line: Vec<u8>,
}

impl Look {
    /// The look of lines of `name` on `stream` (`stdout`, `stderr`) read now, for the console's
    /// `style` and a file taking JSON or not.
    pub fn new(style: Style, file_json: bool, name: &str, stream: &str) -> Look {
        let json = style.json || file_json;
        let stamp = (json || style.timestamps).then(|| format::stamp(SystemTime::now()));
        let head = match (json, &stamp) {
            (true, Some(stamp)) => Some(format::json_head(stamp, name, "stream", stream)),
            _ => None,
        };
        Look {
            stamp,
            head,
            style,
            line: Vec::new(),
        }
    }

    /// The text lines' time with its space, or nothing.
    fn text_stamp(&self) -> [&[u8]; 2] {
        match (self.style.timestamps, &self.stamp) {
            (true, Some(stamp)) => [stamp, b" "],
            _ => [b"", b""],
        }
    }

    /// Hands `emit` the console lines of `piece` (the end of a line when `ends`), each as the
    /// parts it is made of: one text line `[stamp ]prefix piece`, or JSON objects of at most
    /// [`PIPE_BUF`] bytes each. Nothing is allocated per line.
    pub fn console(
        &mut self,
        prefix: &[u8],
        piece: &[u8],
        ends: bool,
        emit: &mut dyn FnMut(&[&[u8]]),
    ) {
        match (&self.head, self.style.json) {
            (Some(head), true) => {
                format::json_lines(head, piece, !ends, PIPE_BUF, &mut self.line, &mut |l| {
                    emit(&[l])
                });
            }
            _ => {
                let [stamp, space] = self.text_stamp();
                emit(&[stamp, space, prefix, piece, b"\n"]);
            }
        }
    }

    /// Queues `piece` in `file`: `[stamp ]piece`, or JSON objects when `json`.
    pub fn file(&mut self, file: &mut LogFile, json: bool, piece: &[u8], ends: bool, now: Instant) {
        match (&self.head, json) {
            (Some(head), true) => {
                let line = &mut self.line;
                format::json_lines(head, piece, !ends, PIPE_BUF, line, &mut |l| {
                    file.push(&[l], now)
                });
            }
            _ => {
                let [stamp, space] = self.text_stamp();
                file.push(&[stamp, space, piece, b"\n"], now);
            }
        }
    }

    /// The room a text line's time takes ahead of the prefix.
    pub fn stamp_room(style: Style) -> usize {
        if style.timestamps { STAMP_LEN + 1 } else { 0 }
    }
}
