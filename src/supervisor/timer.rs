//! Timed oneshots (`schedule`): each one's next run is one deadline of the loop
//! ([`Supervisor::settle_timer`]), so nothing wakes pidone between runs; a run that comes due
//! while the previous one goes on is skipped, queued or stops it (`overlap`); each run is
//! recorded as it ends ([`Supervisor::record_run`]) for status and metrics. `max_runtime` stops
//! a oneshot's run that hangs ([`Supervisor::settle_max_runtime`]).
//!
//! Wall-clock times come from one reading of the clock when pidone started, carried on by the
//! monotonic clock (as every timestamp of the API is).

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use super::system::System;
use super::{Id, Phase, Supervisor};
use crate::config::{Overlap, Schedule, format_duration};
use crate::core::service::{Event, Intent, State, later};

/// A timed oneshot's runs, as the supervisor keeps them.
#[derive(Debug, Default)]
pub(super) struct Timed {
    /// When the next run is due, jitter included; None until armed (and while the job is held,
    /// disabled or pidone is stopping: no deadline then).
    pub(super) next: Option<Instant>,
    /// When that run is due before jitter: the base of the one after it.
    due: Option<Instant>,
    /// A run came due while one was going on (`overlap = "queue"` or `"kill"`).
    queued: bool,
    /// When the run going on started.
    started: Option<Instant>,
    /// The last run that ended.
    pub(super) last: Option<LastRun>,
    /// When the last successful run ended.
    pub(super) last_success: Option<Instant>,
    pub(super) runs: u64,
    pub(super) failures: u64,
    pub(super) skipped: u64,
}

impl Timed {
    /// Forgets the next run: the next settle computes it again from now (a new schedule).
    pub(super) fn rearm(&mut self) {
        self.next = None;
        self.due = None;
    }

    /// A run of job `name` came due while the previous one still goes on: `overlap` says what
    /// follows.
    fn due_while_busy(&mut self, overlap: Overlap, name: &str) -> Fire {
        match overlap {
            Overlap::Skip => {
                self.skipped += 1;
                log::warn!("{name}: still running: the run due now is skipped");
                Fire::Nothing
            }
            Overlap::Queue => {
                self.queued = true;
                log::info!("{name}: still running: the run due now waits for it");
                Fire::Nothing
            }
            Overlap::Kill => {
                self.queued = true;
                log::warn!("{name}: still running: stopped for the run due now");
                Fire::Stop
            }
        }
    }
}

/// How a run went.
#[derive(Debug, Clone)]
pub(super) struct LastRun {
    pub(super) started: Instant,
    pub(super) took: Duration,
    /// `ok`, or why it failed.
    pub(super) result: String,
}

/// What a timer asks of its job.
enum Fire {
    Nothing,
    Run,
    Stop,
}

impl<S: System> Supervisor<S> {
    /// Runs a timed job that is due (or queued), and sets the loop's deadline to its next run.
    pub(super) fn settle_timer(&mut self, id: Id, now: Instant) {
        let wall = self.since_epoch(now);
        let running = self.phase == Phase::Running;
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        let Some(timer) = &svc.spec.timer else {
            return;
        };
        let t = &mut svc.timed;
        if !running || !svc.spec.enabled || svc.life.intent != Intent::Run {
            t.rearm();
            t.queued = false;
            return;
        }
        let busy = svc.life.is_active() || (svc.life.state == State::Pending && svc.life.want_up);
        let name = &svc.spec.name;
        let mut fire = Fire::Nothing;
        if t.queued && !busy {
            t.queued = false;
            fire = Fire::Run;
        }
        let (mut next, mut due) = match (t.next, t.due) {
            (Some(next), Some(due)) => (next, due),
            _ => arm(timer, id, now, wall, now),
        };
        if now >= next {
            // Due: the one after counts from this one's time (`due`, before jitter).
            let due_wall = wall.saturating_sub(now.saturating_duration_since(due));
            (next, due) = arm(timer, id, due, due_wall, now);
            // A queued run starting now is this one too.
            if !matches!(fire, Fire::Run) {
                fire = match busy {
                    true => t.due_while_busy(timer.overlap, name),
                    false => Fire::Run,
                };
            }
        }
        (t.next, t.due) = (Some(next), Some(due));
        if let Some(next) = t.next {
            self.wake_at(next);
        }
        match fire {
            Fire::Nothing => {}
            Fire::Run => self.apply(id, Event::Release, now),
            Fire::Stop => self.apply(id, Event::Stop, now),
        }
    }

    /// Stops a oneshot's run that has gone on longer than its `max_runtime`.
    pub(super) fn settle_max_runtime(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get(id) else {
            return;
        };
        let (Some(max), State::Starting) = (svc.spec.max_runtime, svc.life.state) else {
            return;
        };
        let at = later(svc.life.since, max);
        if now < at {
            self.wake_at(at);
            return;
        }
        let why = format!("still running after max_runtime {}", format_duration(max));
        log::warn!("{}: {why}: stopping it", svc.spec.name);
        self.apply(id, Event::Overran(why), now);
    }

    /// Records the start and the end of a timed job's run, from its state change.
    pub(super) fn record_run(&mut self, id: Id, before: State, after: State, now: Instant) {
        let Some(svc) = self.svcs.get_mut(id) else {
            return;
        };
        if svc.spec.timer.is_none() {
            return;
        }
        let t = &mut svc.timed;
        if after == State::Starting {
            t.started = Some(now);
            return;
        }
        let ended = matches!(before, State::Starting | State::Stopping)
            && matches!(after, State::Stopped | State::Failed | State::Pending);
        if !ended {
            return;
        }
        let Some(started) = t.started.take() else {
            return;
        };
        let ok = svc.life.is_up(svc.spec.kind);
        t.runs += 1;
        let result = if ok {
            t.last_success = Some(now);
            "ok".to_string()
        } else {
            t.failures += 1;
            svc.life.reason.clone()
        };
        let took = now.saturating_duration_since(started);
        log::info!(
            "{}: run done in {}: {result}",
            svc.spec.name,
            format_duration(took)
        );
        t.last = Some(LastRun {
            started,
            took,
            result,
        });
    }
}

/// The next run of `timer` after `base` (whose wall-clock time is `wall`): its time with its
/// jitter, and its time without; after `now` (a loop late by more than a period gets the next
/// run from now, not a burst of runs).
fn arm(
    timer: &crate::config::Timer,
    id: Id,
    base: Instant,
    wall: Duration,
    now: Instant,
) -> (Instant, Instant) {
    let after = |base: Instant, wall: Duration| match timer.schedule {
        Schedule::Every(period) => later(base, period),
        Schedule::Cron(cron) => {
            let secs = i64::try_from(wall.as_secs()).unwrap_or(i64::MAX);
            let at = cron
                .next(secs, &timer.zone)
                .and_then(|s| u64::try_from(s).ok());
            // None: not within years; a century away is never.
            let at = at.map_or(Duration::MAX, Duration::from_secs);
            later(base, at.saturating_sub(wall))
        }
    };
    let mut due = after(base, wall);
    if due <= now {
        due = after(now, wall + now.saturating_duration_since(base));
    }
    (later(due, jitter(timer.jitter, id, due)), due)
}

/// A random delay below `max` for the run of job `id` due at `due` (std's randomly keyed
/// hasher: no extra crate, a new key per call).
fn jitter(max: Duration, id: Id, due: Instant) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let r = std::collections::hash_map::RandomState::new().hash_one((id.key(), due));
    Duration::from_nanos(r % nanos)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::time::Duration;

    use crate::control::{Request, Verb};
    use crate::core::service::State;
    use crate::os::reap::Exit;
    use crate::supervisor::testing::Rig;

    const TERM: i32 = libc::SIGTERM;

    /// A job `name` run `@every 10s` with extra `lines`, and a longrun `web` that depends on it.
    fn job(lines: &str) -> Rig {
        Rig::new(&format!(
            "[[services]]\nname = \"job\"\ncommand = [\"/bin/echo\", \"job\"]\ntype = \"oneshot\"\nschedule = \"@every 10s\"\n{lines}\n\
             [[services]]\nname = \"web\"\ncommand = [\"/bin/echo\", \"web\"]\ndepends_on = \"job\"\n"
        ))
    }

    fn runs(rig: &Rig) -> usize {
        rig.sup
            .sys
            .started
            .iter()
            .filter(|(argv, _)| argv.ends_with(&["job".to_string()]))
            .count()
    }

    fn timed(rig: &Rig) -> &super::Timed {
        &rig.sup.svcs.get(rig.id("job")).expect("in the table").timed
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_timed_job_runs_on_its_schedule_and_is_no_gate() {
        let mut rig = job("");
        assert_eq!(runs(&rig), 0, "not at boot");
        assert_eq!(
            rig.state("web"),
            State::Running,
            "web does not wait for the job"
        );
        let first = rig.now + 10 * SEC;
        assert_eq!(rig.sup.wake, Some(first), "one deadline: the next run");
        rig.advance(10 * SEC - Duration::from_millis(1));
        assert_eq!(runs(&rig), 0);
        rig.advance(Duration::from_millis(1));
        assert_eq!((runs(&rig), rig.state("job")), (1, State::Starting));
        rig.advance(2 * SEC);
        rig.exit("job", Exit::Code(0));
        assert_eq!(rig.state("job"), State::Stopped);
        let t = timed(&rig);
        assert_eq!((t.runs, t.failures), (1, 0));
        assert_eq!(
            t.last.as_ref().map(|r| (r.took, r.result.as_str())),
            Some((2 * SEC, "ok"))
        );
        assert_eq!(
            t.next,
            Some(first + 10 * SEC),
            "counted from the due time, not the end"
        );
        assert_eq!(rig.sup.wake, t.next);
        // A failed run is recorded and the schedule goes on.
        rig.advance(8 * SEC);
        rig.exit("job", Exit::Code(3));
        assert_eq!(rig.state("job"), State::Failed);
        assert_eq!(timed(&rig).failures, 1);
        assert_eq!(rig.state("web"), State::Running);
        rig.advance(10 * SEC);
        assert_eq!((runs(&rig), rig.state("job")), (3, State::Starting));
    }

    #[test]
    fn overlap_skip_queue_and_kill() {
        let mut rig = job("");
        rig.advance(10 * SEC);
        rig.advance(10 * SEC);
        assert_eq!(
            (runs(&rig), timed(&rig).skipped),
            (1, 1),
            "skip is the default"
        );
        let mut rig = job("overlap = \"queue\"");
        rig.advance(10 * SEC);
        rig.advance(10 * SEC);
        rig.advance(10 * SEC);
        assert_eq!(runs(&rig), 1, "still the first run");
        rig.exit("job", Exit::Code(0));
        assert_eq!(
            (runs(&rig), rig.state("job")),
            (2, State::Starting),
            "one queued run"
        );
        rig.exit("job", Exit::Code(0));
        assert_eq!(runs(&rig), 2, "only one waits");
        let mut rig = job("overlap = \"kill\"");
        rig.advance(10 * SEC);
        rig.advance(10 * SEC);
        assert_eq!(rig.signalled(TERM), ["job"]);
        rig.exit("job", Exit::Signal(TERM));
        assert_eq!((runs(&rig), rig.state("job")), (2, State::Starting));
    }

    #[test]
    fn max_runtime_stops_a_hung_run_and_the_next_still_comes() {
        let mut rig = job("max_runtime = \"3s\"");
        rig.advance(10 * SEC);
        assert_eq!(rig.sup.wake, Some(rig.now + 3 * SEC));
        rig.advance(3 * SEC);
        assert_eq!(rig.signalled(TERM), ["job"]);
        rig.exit("job", Exit::Signal(TERM));
        assert_eq!(rig.state("job"), State::Failed);
        let t = timed(&rig);
        let result = t
            .last
            .as_ref()
            .map(|r| r.result.clone())
            .unwrap_or_default();
        assert_eq!(result, "still running after max_runtime 3s");
        rig.advance(7 * SEC);
        assert_eq!(runs(&rig), 2);
    }

    #[test]
    fn start_runs_it_now_and_stop_holds_the_schedule() {
        let mut rig = job("");
        let answer = |rig: &mut Rig, verb| {
            let request = Request::Act {
                name: "job".into(),
                verb,
            };
            let status = rig.sup.answer(request, rig.now).status;
            rig.settle();
            status
        };
        assert_eq!(answer(&mut rig, Verb::Start), 200);
        assert_eq!((runs(&rig), rig.state("job")), (1, State::Starting));
        rig.exit("job", Exit::Code(0));
        assert_eq!(answer(&mut rig, Verb::Stop), 200);
        assert_eq!(timed(&rig).next, None, "held: no deadline");
        rig.advance(60 * SEC);
        assert_eq!(runs(&rig), 1);
    }

    #[test]
    fn a_disabled_timed_job_sets_no_deadline() {
        let rig = Rig::new(
            "[[services]]\nname = \"job\"\ncommand = \"/bin/true\"\ntype = \"oneshot\"\nschedule = \"@daily\"\nenabled = false\n\
             [[services]]\nname = \"web\"\ncommand = \"/bin/true\"\n",
        );
        assert_eq!(rig.sup.wake, None);
    }
}
