//! Black-box tests of how services start and come back: start order by `depends_on` and
//! `wait_after`, parallel starts, restarts with doubling delays, a required service failing for
//! good, the main program and oneshots ending pidone, and `validate`'s order. pidone runs as a true
//! PID 1 and, for some scenarios, as a plain child. Needs root and util-linux.
//!
//! Services write timestamps (`date +%s%N`, through the `stamp` script of [`Dir`]) into a fresh
//! directory; the tests compare them with each other, never with absolute thresholds, except
//! "waited at least the configured delay". Where a timestamp is written by a oneshot before it
//! exits, anything started after that oneshot is up is strictly later: the tests lean on that to
//! turn "started after" into a comparison that cannot race.

#[macro_use]
mod support;

use support::*;

in_both_modes!(main_program_starts_after_services_and_its_exit_code_wins);

as_pid1!(
    start_order_follows_dependencies_and_wait_after,
    independent_services_start_in_parallel,
    on_failure_restarts_with_doubling_delays_then_gives_up,
    required_service_failing_for_good_becomes_the_exit_code,
    pidone_exits_when_all_oneshots_are_done,
);

// ---------------------------------------------------------------------------------------------
// Start order

fn start_order_follows_dependencies_and_wait_after(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "web"
depends_on = ["init", "migrate"]
wait_after = {{ init = "1500ms" }}
command = {web}

[[services]]
name = "migrate"
type = "oneshot"
depends_on = ["db"]
wait_after = "1s"
command = ["/bin/sh", "-c", "@D/stamp migrate.done"]

[[services]]
name = "db"
depends_on = "init"
command = {db}

[[services]]
name = "init"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp init.done"]
"#,
            web = trapping("web", ""),
            db = trapping("db", ""),
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait_for("web to start", |_| dir.exists("web.up"));
    // init is up once it exited, after writing its stamp: everything after it is strictly later.
    assert_before(&dir, "init.done", "db.up");
    // migrate waits 1 s after db is up, and db started after init was up.
    assert_gap(&dir, "init.done", "migrate.done", 1000);
    assert_before(&dir, "migrate.done", "web.up");
    // web waits for migrate and 1.5 s after init: the latest of the two.
    assert_gap(&dir, "init.done", "web.up", 1500);
    run.signal("TERM");
    run.wait();
}

fn independent_services_start_in_parallel(mode: Mode) {
    // Three oneshots that each wait (up to 15 s) until all three have started: if pidone ran
    // them one after the other, each would give up and fail.
    let dir = Dir::new();
    let barrier = |name: &str| {
        format!(
            r#"
[[services]]
name = "{name}"
type = "oneshot"
command = ["/bin/sh", "-c", '''
@D/stamp {name}.started
i=0
while [ $i -lt 1500 ]; do
  if [ -e @D/a.started ] && [ -e @D/b.started ] && [ -e @D/c.started ]; then
    @D/stamp {name}.saw-all; exit 0
  fi
  sleep 0.01; i=$((i+1))
done
exit 1
''']
"#
        )
    };
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"{}{}{}
[[services]]
name = "last"
type = "oneshot"
depends_on = ["a", "b", "c"]
command = ["/bin/sh", "-c", "@D/stamp last.done"]
"#,
            barrier("a"),
            barrier("b"),
            barrier("c")
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    let outcome = run.wait();
    for name in ["a", "b", "c"] {
        assert!(
            dir.exists(&format!("{name}.saw-all")),
            "{name} never saw the three services running together: not started in parallel\n\
             stderr:\n{}",
            outcome.stderr
        );
        assert_before(&dir, &format!("{name}.saw-all"), "last.done");
    }
    outcome.assert_code(0, "three parallel oneshots and a dependent, all successful");
}

// ---------------------------------------------------------------------------------------------
// Restarts and failures

fn on_failure_restarts_with_doubling_delays_then_gives_up(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "flaky"
command = ["/bin/sh", "-c", "date +%s%N >> @D/flaky.starts; exit 1"]
restart = "on-failure"
restart_delay = "200ms"
restart_delay_max = "10s"
max_restarts = 4

[[services]]
name = "fine"
command = ["/bin/sh", "-c", "date +%s%N >> @D/fine.starts; exit 0"]
restart = "on-failure"
restart_delay = "200ms"
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    // Nothing is left once flaky failed for good and fine exited successfully.
    let outcome = run.wait();
    let starts = dir.stamps("flaky.starts");
    assert_eq!(
        starts.len(),
        5,
        "max_restarts = 4: one start and four restarts, then failed for good\nstderr:\n{}",
        outcome.stderr
    );
    assert_eq!(
        dir.stamps("fine.starts").len(),
        1,
        "on-failure must not restart a service that exited 0"
    );
    outcome.assert_code(1, "a service failed for good (not required)");
    // Each stamp is written before that run exits, and the next run starts a full delay after
    // the exit: each gap is at least the delay, 200 ms doubling.
    let gaps: Vec<u128> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let shown: Vec<String> = gaps.iter().map(|g| format!("{:.0} ms", ms(*g))).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let delay = (200 * MS) << i;
        assert!(
            *gap >= delay,
            "restart {} came after {:.0} ms, before its delay of {} ms; gaps: {shown:?}",
            i + 1,
            ms(*gap),
            delay / MS
        );
    }
    // And they grow: the fourth gap (1.6 s delay) is well over twice the first (0.2 s).
    assert!(
        gaps[3] > 2 * gaps[0] && gaps[2] > gaps[0],
        "restart delays do not grow: {shown:?}"
    );
}

fn required_service_failing_for_good_becomes_the_exit_code(mode: Mode) {
    // An exit code, and a death by signal after one restart (128 + 9).
    for (script, extra, expected) in [
        ("exit 3", r#"restart = "never""#, 3),
        (
            "date +%s%N >> @D/db.starts; kill -9 $$$$",
            "max_restarts = 1\nrestart_delay = \"100ms\"",
            137,
        ),
    ] {
        let dir = Dir::new();
        let config = dir.write(
            "pidone.toml",
            &format!(
                r#"
[[services]]
name = "web"
command = {web}

[[services]]
name = "db"
required = true
{extra}
command = ["/bin/sh", "-c", '''
while [ ! -e @D/web.up ]; do sleep 0.02; done
{script}
''']
"#,
                web = trapping("web", ""),
            ),
        );
        let mut run = Pidone::start_config(mode, &dir, &config, &[]);
        let outcome = run.wait();
        outcome.assert_code(
            expected,
            &format!("required db fails for good with `{script}`"),
        );
        assert!(
            dir.exists("web.stop"),
            "web was not stopped with TERM when the required service failed\nstderr:\n{}",
            outcome.stderr
        );
        if expected == 137 {
            assert_eq!(dir.stamps("db.starts").len(), 2, "one restart, then failed");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The main program and pidone's own exit

fn main_program_starts_after_services_and_its_exit_code_wins(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "init"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp init.done"]

[[services]]
name = "db"
depends_on = "init"
wait_after = "1s"
command = {db}
"#,
            db = trapping("db", ""),
        ),
    );
    // The main program waits for db's TERM trap to be set before it exits and shuts db down.
    let main = format!(
        "{0}/stamp main.start; while [ ! -e {0}/db.up ]; do sleep 0.02; done; exit 7",
        dir.s()
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &["--", "/bin/sh", "-c", &main]);
    let outcome = run.wait();
    outcome.assert_code(7, "the main program exits 7");
    // db is up 1 s after init is done; the main program only after that.
    assert_gap(&dir, "init.done", "main.start", 1000);
    // Its exit shut the services down.
    assert_before(&dir, "main.start", "db.stop");
}

fn pidone_exits_when_all_oneshots_are_done(mode: Mode) {
    let dir = Dir::new();
    let ok = dir.write(
        "ok.toml",
        r#"
[[services]]
name = "a"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp a.done"]

[[services]]
name = "b"
oneshot = true
depends_on = "a"
command = ["/bin/sh", "-c", "@D/stamp b.done"]

[[services]]
name = "c"
type = "oneshot"
after = ["a"]
command = ["/bin/sh", "-c", "@D/stamp c.done"]

[[services]]
name = "brief"
restart = "never"
command = ["/bin/sh", "-c", "@D/stamp brief.done"]
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &ok, &[]);
    run.wait()
        .assert_code(0, "all oneshots succeeded, the longrun exited 0");
    assert_before(&dir, "a.done", "b.done");
    assert_before(&dir, "a.done", "c.done");
    assert!(dir.exists("brief.done"));

    let dir = Dir::new();
    let failing = dir.write(
        "failing.toml",
        r#"
[[services]]
name = "good"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp good.done"]

[[services]]
name = "bad"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp bad.done; exit 5"]

[[services]]
name = "dependent"
type = "oneshot"
depends_on = "bad"
command = ["/bin/sh", "-c", "@D/stamp dependent.done"]
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &failing, &[]);
    run.wait().assert_code(1, "one oneshot failed");
    assert!(dir.exists("good.done") && dir.exists("bad.done"));
    assert!(
        !dir.exists("dependent.done"),
        "a dependent of a failed oneshot was started"
    );
}

#[test]
fn validate_prints_services_in_start_order() {
    let example = format!("{}/examples/pidone.toml", env!("CARGO_MANIFEST_DIR"));
    let outcome = run_plain(&["validate", "--config", &example]);
    outcome.assert_code(0, "validate examples/pidone.toml");
    let first = |name: &str| {
        outcome
            .stdout
            .lines()
            .position(|l| words(l).any(|w| w == name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", outcome.stdout))
    };
    let order = ["db", "migrate", "api-1", "api-2", "api-3", "proxy"];
    for pair in order.windows(2) {
        if pair[0].starts_with("api-") && pair[1].starts_with("api-") {
            continue; // instances are independent of each other
        }
        assert!(
            first(pair[0]) < first(pair[1]),
            "{} should be listed before {}:\n{}",
            pair[0],
            pair[1],
            outcome.stdout
        );
    }
}
