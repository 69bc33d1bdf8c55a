//! The supervisor's side of output: each service's last lines (for `pidone logs` and its
//! followers), and pidone's own messages moved into the non-blocking stderr queue.

use std::time::Instant;

use super::api::family;
use super::system::System;
use super::{Id, Supervisor};
use crate::io::logsink;
use crate::io::output::Stream;
use crate::io::ring::Lines;
use crate::io::sinks::Counters;

impl<S: System> Supervisor<S> {
    /// Keeps the last [`Options::log_lines`] lines of each service for the logs endpoint, and
    /// hands them to the clients following it.
    pub(super) fn record_lines(&mut self, id: Id, lines: &Lines, now: std::time::Instant) {
        if lines.is_empty() {
            return;
        }
        for server in self.servers.iter_mut().flatten() {
            server.follow_lines(id.key(), lines);
        }
        let keep = self.options.log_lines;
        // A service forgotten by a reload may still have output in its pipes: no log for it.
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        svc.active_at = now;
        svc.log.push(lines, keep);
    }

    /// The services whose log file is not being written, with why (health problems).
    pub(super) fn log_problems(&self) -> Vec<String> {
        (self.svcs.iter())
            .filter_map(|(id, s)| {
                let (_, error) = self.output.log_state(id.key())?;
                Some(format!("{}: {}", s.spec.name, error?))
            })
            .collect()
    }

    /// The metric families of the services' output (Prometheus text format).
    pub(super) fn log_metrics(&self, out: &mut String) {
        let counters: Vec<(String, Counters)> = (self.svcs.iter())
            .filter_map(|(id, s)| {
                let (c, _) = self.output.log_state(id.key())?;
                Some((format!("service=\"{}\"", s.spec.name), c))
            })
            .collect();
        let each = |f: fn(&Counters) -> u64| -> Vec<(String, String)> {
            (counters.iter())
                .map(|(labels, c)| (labels.clone(), f(c).to_string()))
                .collect()
        };
        let lines = "Lines the service wrote (read by pidone).";
        family(
            out,
            "pidone_log_lines_total",
            "counter",
            lines,
            &each(|c| c.lines),
        );
        let bytes = "Bytes of those lines, newlines not counted.";
        family(
            out,
            "pidone_log_bytes_total",
            "counter",
            bytes,
            &each(|c| c.bytes),
        );
        let dropped: Vec<(String, String)> = (counters.iter())
            .flat_map(|(labels, c)| {
                [("console", c.dropped_console), ("file", c.dropped_file)]
                    .map(|(to, n)| (format!("{labels},to=\"{to}\""), n.to_string()))
            })
            .collect();
        let why = "Lines dropped: the console failed for good or overflowed (to=console), the log file could not be written (to=file).";
        family(
            out,
            "pidone_log_dropped_lines_total",
            "counter",
            why,
            &dropped,
        );
        let failing = "1 while the service's log file cannot be written.";
        let errors: Vec<(String, String)> = (self.svcs.iter())
            .filter_map(|(id, s)| {
                let (_, error) = self.output.log_state(id.key())?;
                let labels = format!("service=\"{}\"", s.spec.name);
                Some((labels, u8::from(error.is_some()).to_string()))
            })
            .collect();
        family(out, "pidone_log_file_failing", "gauge", failing, &errors);
    }

    /// Moves pidone's captured log messages into the stderr queue, and reports those dropped.
    pub(super) fn queue_own_messages(&mut self, now: Instant) {
        const WHY: [&str; 2] = [
            "more than 512 KiB of them in one turn of the loop",
            "stderr is not keeping up",
        ];
        self.report_tallies(now);
        let (bytes, overflow) = logsink::take();
        self.own_lost[0] += overflow;
        if !bytes.is_empty() && !self.output.own_lines(Stream::Stderr, &bytes) {
            self.own_lost[1] += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        for (lost, why) in self.own_lost.iter_mut().zip(WHY) {
            if *lost > 0 {
                let text = format!("{lost} log messages dropped: {why}");
                let note = logsink::record(log::Level::Warn, &text);
                if self.output.own_lines(Stream::Stderr, &note) {
                    *lost = 0;
                }
            }
        }
    }

    /// Reports the sums of what is counted rather than logged one by one (see [`logsink::Tally`]), and
    /// asks to be woken when the next sum is due.
    fn report_tallies(&mut self, now: Instant) {
        let lost = self.output.take_lost(Stream::Stdout);
        if let Some(n) = self.lost_output.add(lost, now) {
            log::warn!("{n} lines of services' output for stdout discarded");
        }
        if let Some(n) = self.strangers.due(now) {
            log::warn!("ignored {n} more sd_notify messages not from their service");
        }
        if let Some(n) = self.unstarted.due(now) {
            log::warn!("{n} more check runs not started: pidone lacks processes or descriptors");
        }
        for server in self.servers.iter_mut().flatten() {
            if let Some(n) = server.dropped.due(now) {
                log::warn!("control socket: {n} more clients dropped over the output budget");
            }
        }
        let next = [
            self.lost_output.deadline(),
            self.strangers.deadline(),
            self.unstarted.deadline(),
        ];
        let dropped: Vec<_> = (self.servers.iter().flatten())
            .map(|s| s.dropped.deadline())
            .collect();
        for at in next.into_iter().chain(dropped).flatten() {
            self.wake_at(at);
        }
    }
}
