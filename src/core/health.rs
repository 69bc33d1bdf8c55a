//! The schedule and verdict of one check, as pure code with time passed in (tested with a fake
//! clock). The supervisor runs the probes ([`crate::io::probe`]) when [`Check::due`] says so and
//! reports each outcome to [`Check::finish`], which applies the thresholds.
//!
//! Counters are consecutive: a success resets the failures and a failure resets the successes,
//! so one bad probe early on never poisons the check for good. The status changes only at a
//! threshold: `success_threshold` successes in a row make it passing, `failure_threshold`
//! failures in a row make it failing, and [`Verdict`] reports exactly those changes.

use std::time::Instant;

use crate::config::CheckSpec;
use crate::core::service::later;

/// Where a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not enough runs yet to say (or armed again after a restart).
    Unknown,
    Passing,
    Failing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Passing => "passing",
            Status::Failing => "failing",
        }
    }
}

/// A change of status caused by one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    /// It just became passing.
    Passed,
    /// It just became failing.
    Failed,
}

/// The runtime record of one check.
#[derive(Debug, Clone)]
pub struct Check {
    pub status: Status,
    /// Successes in a row.
    pub successes: u32,
    /// Failures in a row.
    pub failures: u32,
    /// Runs finished since pidone started.
    pub runs: u64,
    /// Runs that failed since pidone started.
    pub failed_runs: u64,
    /// The last run's output or error, for humans.
    pub last: Option<String>,
    /// How long the last finished run took.
    pub took: Option<std::time::Duration>,
    /// When the run in progress began.
    began: Option<Instant>,
    /// The next run is due at this instant; None while one runs or while the check is idle.
    next_at: Option<Instant>,
    /// The run in progress counts as a failure at this instant.
    timeout_at: Option<Instant>,
}

impl Check {
    /// An idle check.
    pub fn new() -> Check {
        Check {
            status: Status::Unknown,
            successes: 0,
            failures: 0,
            runs: 0,
            failed_runs: 0,
            last: None,
            took: None,
            began: None,
            next_at: None,
            timeout_at: None,
        }
    }

    /// Starts the schedule afresh (a new process to watch): first run `initial_delay` from now,
    /// status unknown, counters of the previous process gone.
    pub fn arm(&mut self, spec: &CheckSpec, now: Instant) {
        self.status = Status::Unknown;
        self.successes = 0;
        self.failures = 0;
        self.timeout_at = None;
        self.next_at = Some(later(now, spec.initial_delay));
    }

    /// No more runs (the service is down, or a ready check has passed). The status stays.
    pub fn disarm(&mut self) {
        self.next_at = None;
        self.timeout_at = None;
    }

    /// True when a run is due now.
    pub fn due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|at| now >= at)
    }

    /// True while a run is in progress.
    pub fn running(&self) -> bool {
        self.timeout_at.is_some()
    }

    /// True when the run in progress has outlived its timeout.
    pub fn timed_out(&self, now: Instant) -> bool {
        self.timeout_at.is_some_and(|at| now >= at)
    }

    /// A run begins now.
    pub fn begin(&mut self, spec: &CheckSpec, now: Instant) {
        self.next_at = None;
        self.timeout_at = Some(later(now, spec.timeout));
        self.began = Some(now);
    }

    /// The run in progress ended with `ok` (`last` says how); the next one is due a period
    /// from now. Returns the change of status, if any.
    pub fn finish(&mut self, spec: &CheckSpec, ok: bool, last: String, now: Instant) -> Verdict {
        self.timeout_at = None;
        self.next_at = Some(later(now, spec.period));
        self.took = self
            .began
            .take()
            .map(|at| now.saturating_duration_since(at));
        self.runs += 1;
        self.last = Some(last);
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= spec.success_threshold && self.status != Status::Passing {
                self.status = Status::Passing;
                return Verdict::Passed;
            }
        } else {
            self.failed_runs += 1;
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= spec.failure_threshold && self.status != Status::Failing {
                self.status = Status::Failing;
                return Verdict::Failed;
            }
        }
        Verdict::Unchanged
    }

    /// pidone itself could not run the probe due now (`why`: no process or descriptor left): the
    /// run does not count, for or against the service; the next one is due a period from now.
    pub fn skip(&mut self, spec: &CheckSpec, why: String, now: Instant) {
        self.timeout_at = None;
        self.next_at = Some(later(now, spec.period));
        self.last = Some(why);
    }

    /// The next instant the check needs attention: its next run or its run's timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout_at.or(self.next_at)
    }
}

impl Default for Check {
    fn default() -> Check {
        Check::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Level, OnFailure, Probe};
    use std::time::Duration;

    fn spec() -> CheckSpec {
        CheckSpec {
            name: "tcp".into(),
            probe: Probe::Tcp {
                host: "127.0.0.1".into(),
                port: 80,
            },
            level: Level::Alive,
            initial_delay: Duration::from_secs(5),
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            success_threshold: 2,
            failure_threshold: 3,
            on_failure: OnFailure::Restart,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// One run at `now`, finished at once.
    fn run(c: &mut Check, s: &CheckSpec, ok: bool, now: Instant) -> Verdict {
        assert!(c.due(now), "a run is due at {now:?}");
        c.begin(s, now);
        c.finish(s, ok, String::new(), now)
    }

    #[test]
    fn the_first_run_waits_for_the_initial_delay_then_one_per_period() {
        let s = spec();
        let t0 = Instant::now();
        let mut c = Check::new();
        assert_eq!(c.deadline(), None, "an idle check never wakes pidone");
        c.arm(&s, t0);
        assert!(!c.due(t0 + secs(4)));
        assert_eq!(c.deadline(), Some(t0 + secs(5)));
        run(&mut c, &s, true, t0 + secs(5));
        assert!(!c.due(t0 + secs(14)));
        assert_eq!(c.deadline(), Some(t0 + secs(15)));
    }

    #[test]
    fn a_run_records_how_long_it_took() {
        let s = spec();
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        c.begin(&s, t0 + secs(5));
        c.finish(
            &s,
            true,
            String::new(),
            t0 + secs(5) + Duration::from_millis(250),
        );
        assert_eq!(c.took, Some(Duration::from_millis(250)));
    }

    #[test]
    fn thresholds_count_in_a_row_and_a_success_resets_the_failures() {
        let s = spec();
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        let mut now = t0 + secs(5);
        let mut step = |c: &mut Check, ok| {
            let v = run(c, &s, ok, now);
            now += secs(10);
            v
        };
        assert_eq!(step(&mut c, false), Verdict::Unchanged);
        assert_eq!(step(&mut c, false), Verdict::Unchanged);
        // One success in between: the streak of failures starts again (Horust's bug).
        assert_eq!(step(&mut c, true), Verdict::Unchanged);
        assert_eq!((c.failures, c.successes), (0, 1));
        assert_eq!(c.status, Status::Unknown);
        assert_eq!(step(&mut c, false), Verdict::Unchanged);
        assert_eq!(step(&mut c, false), Verdict::Unchanged);
        assert_eq!(step(&mut c, false), Verdict::Failed);
        assert_eq!(c.status, Status::Failing);
        // Still failing: no second verdict.
        assert_eq!(step(&mut c, false), Verdict::Unchanged);
        assert_eq!(step(&mut c, true), Verdict::Unchanged);
        assert_eq!(step(&mut c, true), Verdict::Passed);
        assert_eq!(c.status, Status::Passing);
        assert_eq!((c.runs, c.failed_runs), (9, 6));
    }

    #[test]
    fn a_first_failure_then_success_passes() {
        let s = CheckSpec {
            success_threshold: 1,
            ..spec()
        };
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        assert_eq!(run(&mut c, &s, false, t0 + secs(5)), Verdict::Unchanged);
        assert_eq!(run(&mut c, &s, true, t0 + secs(15)), Verdict::Passed);
    }

    #[test]
    fn a_run_times_out_at_its_timeout_and_the_next_waits_a_period() {
        let s = spec();
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        let start = t0 + secs(5);
        c.begin(&s, start);
        assert!(c.running());
        assert!(
            !c.due(start + secs(100)),
            "no second run while one is in progress"
        );
        assert_eq!(c.deadline(), Some(start + secs(3)));
        assert!(!c.timed_out(start + secs(2)));
        assert!(c.timed_out(start + secs(3)));
        c.finish(&s, false, "timed out".into(), start + secs(3));
        assert_eq!(c.failures, 1);
        assert_eq!(c.last.as_deref(), Some("timed out"));
        assert_eq!(c.deadline(), Some(start + secs(13)));
    }

    #[test]
    fn a_probe_pidone_could_not_run_does_not_count() {
        let s = CheckSpec {
            failure_threshold: 1,
            ..spec()
        };
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        let start = t0 + secs(5);
        c.begin(&s, start);
        c.skip(&s, "not run: fork: EAGAIN".into(), start);
        assert_eq!(
            (c.status, c.failures, c.runs, c.failed_runs),
            (Status::Unknown, 0, 0, 0)
        );
        assert_eq!(c.last.as_deref(), Some("not run: fork: EAGAIN"));
        assert!(!c.running());
        assert_eq!(
            c.deadline(),
            Some(start + secs(10)),
            "tried again a period later"
        );
        assert_eq!(run(&mut c, &s, true, start + secs(10)), Verdict::Unchanged);
        assert_eq!(c.successes, 1, "the streak is the probes that ran");
    }

    #[test]
    fn arming_again_forgets_the_previous_process() {
        let s = CheckSpec {
            failure_threshold: 1,
            ..spec()
        };
        let t0 = Instant::now();
        let mut c = Check::new();
        c.arm(&s, t0);
        assert_eq!(run(&mut c, &s, false, t0 + secs(5)), Verdict::Failed);
        c.disarm();
        assert_eq!(c.deadline(), None);
        assert_eq!(c.status, Status::Failing, "the status stays for the API");
        c.arm(&s, t0 + secs(30));
        assert_eq!((c.status, c.failures), (Status::Unknown, 0));
        assert_eq!(c.runs, 1, "totals are kept");
        assert_eq!(c.deadline(), Some(t0 + secs(35)));
    }
}
