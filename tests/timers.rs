//! Black-box tests of timed oneshots: `@every 1s` jobs counted as they run, a job that overlaps
//! itself skipped, a failing job that keeps its schedule, status and metrics of the runs, and
//! `pidone start JOB` running a daily job now. Needs root and util-linux.

#[macro_use]
mod support;

use serde_json::Value;
use support::*;

in_both_modes!(every_second_jobs_run_skip_their_overlaps_and_report_failures);

as_pid1!(start_runs_a_daily_job_now);

fn timer(svc: &Value, key: &str) -> i64 {
    svc["timer"][key].as_i64().unwrap_or(-1)
}

/// Three jobs every second: `tick` (quick), `slow` (runs 2.5 s, so the runs due meanwhile are
/// skipped) and `bad` (exits 1 each time). Nothing else runs: pidone stays up for them.
fn every_second_jobs_run_skip_their_overlaps_and_report_failures(mode: Mode) {
    let config = r#"
[[services]]
name = "tick"
type = "oneshot"
schedule = "@every 1s"
command = ["/bin/sh", "-c", "echo run >> @D/tick.runs"]

[[services]]
name = "slow"
type = "oneshot"
schedule = "@every 1s"
command = ["/bin/sh", "-c", "echo start >> @D/slow.runs; sleep 2.5; echo end >> @D/slow.runs"]

[[services]]
name = "bad"
type = "oneshot"
schedule = "@every 1s"
command = ["/bin/sh", "-c", "exit 1"]

[[services]]
name = "web"
command = ["/bin/sleep", "1000"]
depends_on = "tick"
"#;
    let mut d = Daemon::start(mode, config);
    // Started at boot, not pending: its exec may still be in flight (start-up pipelining).
    let web = d.state("web");
    assert!(
        web == "running" || web == "starting",
        "web does not wait for its timed dependency: {web}"
    );
    assert!(!d.dir.exists("tick.runs"), "no run at boot");
    d.wait_state("web", "running");
    let tick = d.wait_service("tick", "3 runs", |s| timer(s, "runs") >= 3);
    assert_eq!(tick["timer"]["last_result"], "ok");
    assert!(tick["timer"]["next"].as_f64().is_some(), "{tick}");
    assert!(tick["timer"]["last_duration"].as_f64().is_some(), "{tick}");
    assert!(d.dir.read("tick.runs").lines().count() >= 3);
    let slow = d.wait_service("slow", "2 runs and a skipped one", |s| {
        timer(s, "runs") >= 2 && timer(s, "skipped") >= 1
    });
    assert_eq!(timer(&slow, "failures"), 0);
    // Never two at once: each start follows the end of the run before.
    let lines = d.dir.read("slow.runs");
    let order: Vec<&str> = lines.lines().collect();
    for pair in order.windows(2) {
        assert_ne!(pair, ["start", "start"], "overlapping runs: {lines}");
    }
    let bad = d.wait_service("bad", "2 failed runs", |s| timer(s, "failures") >= 2);
    assert_eq!(
        bad["timer"]["last_result"], "exited with exit code 1",
        "{bad}"
    );
    assert_eq!(d.health().0, 200, "a timed job is no health problem");
    let metrics = d.metrics();
    assert!(
        metrics.contains("pidone_timer_last_success_time_seconds{service=\"tick\"} "),
        "{metrics}"
    );
    assert!(!metrics.contains("pidone_timer_last_success_time_seconds{service=\"bad\"}"));
    assert!(metrics.contains("pidone_timer_skipped_total{service=\"slow\"} "));
    let status = d.ok(&["status", "tick"]).stdout;
    assert!(
        status.contains("last run") && status.contains("next run in"),
        "{status}"
    );
    d.terminate();
}

/// `pidone start JOB` runs a daily job now; the schedule stays.
fn start_runs_a_daily_job_now(mode: Mode) {
    let config = r#"
[[services]]
name = "daily"
type = "oneshot"
schedule = "@daily"
command = ["/bin/sh", "-c", "echo run >> @D/daily.runs"]
"#;
    let mut d = Daemon::start(mode, config);
    let before = d.service("daily");
    assert_eq!(before["state"], "stopped", "{before}");
    assert_eq!(before["reason"], "waiting for its schedule");
    d.ok(&["start", "daily"]);
    let after = d.wait_service("daily", "one run", |s| timer(s, "runs") == 1);
    assert_eq!(after["timer"]["last_result"], "ok");
    assert_eq!(d.dir.read("daily.runs"), "run\n");
    assert_eq!(
        after["timer"]["next"], before["timer"]["next"],
        "the schedule stays"
    );
    d.terminate();
}
