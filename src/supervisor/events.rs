//! The event stream (`GET /v1/events`): every state change, restart, exit, change of a check's
//! status, reload and shutdown, numbered and dated as it happens; the last [`KEPT`] are kept in a
//! ring for `?since=SEQ`, and each goes at once to the connections following the stream (within
//! the servers' output budget, as log followers: a client that does not read is dropped, pidone
//! never grows).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Instant, UNIX_EPOCH};

use super::Supervisor;
use super::system::System;
use crate::control::{self, wire};

/// Events kept for `?since=SEQ` (a few hundred bytes each: at most a few hundred KiB).
pub const KEPT: usize = 1000;

/// The last events, and the number of the last one.
#[derive(Debug, Default)]
pub(super) struct Events {
    ring: VecDeque<(u64, String)>,
    last: u64,
}

impl<S: System> Supervisor<S> {
    /// Numbers and dates `event`, keeps it and sends it to every follower.
    pub(super) fn emit(&mut self, mut event: wire::Event, now: Instant) {
        self.events.last += 1;
        event.seq = self.events.last;
        let stamp = crate::io::format::stamp(UNIX_EPOCH + self.since_epoch(now));
        event.time = String::from_utf8_lossy(&stamp).into_owned();
        // Cannot fail: a wire struct of strings and numbers.
        let line = serde_json::to_string(&event).unwrap_or_default();
        let mut batch = crate::io::ring::Lines::default();
        batch.push(line.as_bytes());
        for server in self.servers.iter_mut().flatten() {
            server.follow_lines(control::EVENTS, &batch);
        }
        if self.events.ring.len() >= KEPT {
            self.events.ring.pop_front();
        }
        self.events.ring.push_back((event.seq, line));
    }

    /// `head`, then the events kept after `since` (all kept without it), one line each. When
    /// some after `since` are no longer kept, a first line of `"type":"lost"` says how many.
    pub(super) fn events_text(&self, head: &str, since: Option<u64>) -> String {
        let mut text = head.to_string();
        let first = self
            .events
            .ring
            .front()
            .map_or(self.events.last + 1, |e| e.0);
        if let Some(lost) = since
            .and_then(|s| first.checked_sub(s + 1))
            .filter(|n| *n > 0)
        {
            let _ = writeln!(
                text,
                "{{\"lost\":{lost},\"message\":\"{lost} events are no longer kept\",\"type\":\"lost\"}}"
            );
        }
        let after = since.unwrap_or(0);
        let kept = self.events.ring.iter().filter(|e| e.0 > after);
        for (_, line) in kept {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Rig;
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_events_and_says_what_it_lost() {
        let mut rig = Rig::new("[[services]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n");
        let base = rig.sup.events.last;
        for i in 0..KEPT + 5 {
            let event = wire::Event::new("shutdown", None, format!("n{i}"));
            rig.sup.emit(event, rig.now);
        }
        assert_eq!(rig.sup.events.ring.len(), KEPT);
        let last = rig.sup.events.last;
        let text = rig.sup.events_text("", Some(last - 2));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains(&format!("\"seq\":{}", last - 1)),
            "{}",
            lines[0]
        );
        let text = rig.sup.events_text("", Some(base));
        let first = text.lines().next().expect("a line");
        assert!(first.contains("\"type\":\"lost\""), "{first}");
        assert!(first.contains(&format!("\"lost\":{}", 5)), "{first}");
        assert_eq!(rig.sup.events_text("", None).lines().count(), KEPT);
        assert_eq!(rig.sup.events_text("", Some(last)), "");
    }
}
