//! pidone as a notifying service itself, when it was started with `$NOTIFY_SOCKET` in services
//! mode (its services never inherit it): `READY=1` once every enabled service is up and ready
//! and the main program (if any) started, `STATUS=` with a summary whenever it changes, and
//! `STOPPING=1` when the shutdown begins.

use super::system::System;
use super::{Phase, Supervisor};
use crate::core::service::State;

impl<S: System> Supervisor<S> {
    /// Tells pidone's parent what changed: ready (once), the summary, stopping (once).
    pub(super) fn tell_upstream(&mut self) {
        let Some(up) = &self.upstream else {
            return;
        };
        let running = self.phase == Phase::Running;
        let ready = running && self.main_argv.is_none() && !self.settling();
        let (mut n, mut ups, mut failed) = (0, 0, 0);
        for (_, s) in self.svcs.iter().filter(|(_, s)| s.spec.enabled) {
            n += 1;
            ups += usize::from(s.life.is_up(s.spec.kind));
            failed += usize::from(s.life.state == State::Failed);
        }
        let mut status = match self.phase {
            Phase::Running if ready => format!("{ups} of {n} services up"),
            Phase::Running => format!("starting: {ups} of {n} services up"),
            _ => "shutting down".to_string(),
        };
        if failed > 0 {
            status.push_str(&format!(", {failed} failed"));
        }
        let mut message = String::new();
        if ready && !self.told.ready {
            self.told.ready = true;
            message.push_str("READY=1\n");
        }
        if !running && !self.told.stopping {
            self.told.stopping = true;
            message.push_str("STOPPING=1\n");
        }
        if status != self.told.status {
            message.push_str(&format!("STATUS={status}\n"));
            self.told.status = status;
        }
        if !message.is_empty() {
            up.send(&message);
        }
    }
}

/// What pidone last told its parent.
#[derive(Debug, Default)]
pub(super) struct Told {
    ready: bool,
    stopping: bool,
    status: String,
}
