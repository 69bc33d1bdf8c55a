//! s6-overlay's contract with a container while it runs, for a configuration read from its
//! layouts: S6_CMD_WAIT_FOR_SERVICES_MAXTIME bounds the wait for the services before CMD starts
//! (one deadline of the loop, gone once everything is up; S6_BEHAVIOUR_IF_STAGE2_FAILS says
//! what running out of it does), CMD's exit code goes into the exit-code file, and the number in
//! that file at the end is the container's exit code. The files are [`crate::s6::Runtime`]'s.

use std::time::Instant;

use super::system::System;
use super::{Phase, Supervisor};
use crate::core::service::later;
use crate::s6::Runtime;

/// s6-rc's exit code when its wait times out: the container's, with
/// S6_BEHAVIOUR_IF_STAGE2_FAILS=2, as s6-overlay's stage 2 passes it on.
const TIMED_OUT: i32 = 2;

/// The s6-overlay runtime of a supervisor.
#[derive(Debug)]
pub(super) struct Overlay {
    runtime: Runtime,
    /// When the wait for the services runs out; none without a limit or once it is over.
    wait_until: Option<Instant>,
    /// The wait ran out: CMD no longer waits for the services.
    ran_out: bool,
}

impl<S: System> Supervisor<S> {
    /// Applies s6-overlay's runtime (`runtime`): the wait for the services counts from pidone's
    /// start, as s6-overlay's counts the cont-init.d scripts in.
    pub fn s6_overlay(&mut self, runtime: Runtime) {
        let wait_until = runtime.wait_max.map(|max| later(self.started, max));
        self.overlay = Some(Overlay {
            runtime,
            wait_until,
            ran_out: false,
        });
    }

    /// The wait for the services: over once nothing is on its way up; when it runs out first,
    /// CMD starts anyway (with a warning), or with S6_BEHAVIOUR_IF_STAGE2_FAILS=2 the container
    /// stops with s6-rc's code for a timeout.
    pub(super) fn settle_cmd_wait(&mut self, now: Instant) {
        // Without a wait under way, nothing to look at: the scan of the services is for it only.
        let Some(at) = self.overlay.as_ref().and_then(|o| o.wait_until) else {
            return;
        };
        let over = self.phase != Phase::Running || !self.settling();
        let Some(overlay) = self.overlay.as_mut() else {
            return;
        };
        if over {
            overlay.wait_until = None;
            return;
        }
        if now < at {
            return self.wake_at(at);
        }
        (overlay.wait_until, overlay.ran_out) = (None, true);
        let stop = overlay.runtime.stage2 >= 2;
        let waiting: Vec<&str> = (self.svcs.iter())
            .filter(|(_, s)| s.spec.timer.is_none() && s.life.want_up && !s.life.is_up(s.spec.kind))
            .map(|(_, s)| s.spec.name.as_str())
            .collect();
        let waiting = waiting.join(", ");
        if !stop {
            log::warn!("S6_CMD_WAIT_FOR_SERVICES_MAXTIME ran out, not up yet: {waiting}");
            return;
        }
        log::error!(
            "S6_CMD_WAIT_FOR_SERVICES_MAXTIME ran out, not up yet: {waiting}; \
             S6_BEHAVIOUR_IF_STAGE2_FAILS=2: stopping the container"
        );
        overlay.runtime.record(TIMED_OUT);
        self.required_failure.get_or_insert(TIMED_OUT);
        self.begin_shutdown(now);
    }

    /// True once the wait for the services ran out: CMD starts whatever is still coming up.
    pub(super) fn cmd_wait_ran_out(&self) -> bool {
        self.overlay.as_ref().is_some_and(|o| o.ran_out)
    }

    /// CMD ended with `code` (or could not be run): written into the exit-code file, where
    /// `finish` and cont-finish.d scripts may read it, or replace it.
    pub(super) fn record_main_exit(&self, code: i32) {
        if let Some(overlay) = &self.overlay {
            overlay.runtime.record(code);
        }
    }

    /// The container's exit code from the exit-code file, if it holds one.
    pub(super) fn overlay_exit_code(&self) -> Option<i32> {
        self.overlay.as_ref()?.runtime.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::Rig;
    use crate::core::service::State;
    use crate::s6::Runtime;

    /// A service ready 1 s after its start, under S6_CMD_WAIT_FOR_SERVICES_MAXTIME=5000.
    fn rig() -> Rig {
        let text = "[[services]]\nname = \"a\"\ncommand = [\"/bin/echo\", \"a\"]\n\
                    ready = { after = \"1s\" }\n";
        let mut rig = Rig::new(text);
        let root = std::env::temp_dir().join("pidone-overlay-unit-never-written");
        rig.sup.s6_overlay(Runtime::new(&root, 5000, 0));
        rig.settle();
        rig
    }

    #[test]
    fn the_wait_is_no_deadline_once_the_services_are_up() {
        let mut rig = rig();
        let start = rig.now;
        assert_eq!(
            rig.sup.wake,
            Some(start + Duration::from_secs(1)),
            "readiness"
        );
        rig.advance(Duration::from_secs(1));
        assert_eq!(rig.state("a"), State::Running);
        assert_eq!(rig.sup.wake, None, "nothing is due: nothing wakes pidone");
        assert!(!rig.sup.cmd_wait_ran_out());
    }

    #[test]
    fn the_wait_runs_out_at_its_deadline_and_only_then() {
        let mut rig = rig();
        let id = rig.id("a");
        // `a` never gets ready: its readiness deadline is pushed past the wait's.
        if let Some(svc) = rig.sup.svcs.get_mut(id) {
            svc.life.deadline = None;
        }
        rig.settle();
        let start = rig.sup.started;
        assert_eq!(rig.sup.wake, Some(start + Duration::from_secs(5)));
        rig.advance(Duration::from_millis(4999));
        assert!(!rig.sup.cmd_wait_ran_out());
        rig.now = start + Duration::from_secs(5);
        rig.settle();
        assert!(rig.sup.cmd_wait_ran_out());
        assert_eq!(rig.sup.wake, None);
    }
}
