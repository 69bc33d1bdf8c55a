//! The supervisor's side of output: each service's last lines (for `pidone logs` and its
//! followers), and pidone's own messages moved into the non-blocking stderr queue.

use super::system::System;
use super::{Id, Supervisor};
use crate::logsink;
use crate::output::Stream;

impl<S: System> Supervisor<S> {
    /// Keeps the last [`Options::log_lines`] lines of each service for the logs endpoint, and
    /// hands them to the clients following it.
    pub(super) fn record_lines(&mut self, id: Id, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        if let Some(server) = &mut self.server {
            server.follow_lines(id.key(), &lines);
        }
        let keep = self.options.log_lines;
        // A service forgotten by a reload may still have output in its pipes: no log for it.
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let log = &mut svc.log;
        log.extend(lines);
        while log.len() > keep {
            log.pop_front();
        }
    }

    /// Moves pidone's captured log messages into the stderr queue, and reports those dropped.
    pub(super) fn queue_own_messages(&mut self) {
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
}
