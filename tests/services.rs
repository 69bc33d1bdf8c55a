//! Black-box tests of services mode: the real binary supervising small `/bin/sh` services from a
//! TOML file, run as a true PID 1 (`unshare --pid --fork --mount-proc`) and, for a few scenarios,
//! as a plain child of the test. Needs root and util-linux.
//!
//! Services write timestamps (`date +%s%N`, through the `stamp` script of [`Dir`]) and markers
//! into a fresh directory; the tests compare them with each other, never with absolute
//! thresholds, except "waited at least the configured delay". Where a timestamp is written by a
//! oneshot before it exits, anything started after that oneshot is up is strictly later: the
//! tests lean on that to turn "started after" into a comparison that cannot race.

mod common;
#[macro_use]
mod svc_common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use svc_common::{Dir, Mode, Pidone, cmdline, now_ns, run_plain};

const MS: u128 = 1_000_000;

in_both_modes!(
    shutdown_stops_services_in_reverse_dependency_order,
    service_ignoring_term_is_killed_after_stop_timeout,
    grandchildren_die_with_their_service,
    second_term_and_global_timeout_cut_a_slow_shutdown_short,
    main_program_starts_after_services_and_its_exit_code_wins,
    readiness_costs_no_wakeups_and_checks_wake_only_when_due,
);

as_pid1!(
    start_order_follows_dependencies_and_wait_after,
    independent_services_start_in_parallel,
    on_failure_restarts_with_doubling_delays_then_gives_up,
    required_service_failing_for_good_becomes_the_exit_code,
    user_nobody_drops_uid_gid_and_groups,
    env_precedence_and_expansion,
    instances_get_numbered_names_and_pidone_instance,
    prefixed_output_loses_no_line,
    slow_stdout_pushes_back_on_services_and_loses_no_line,
    unread_stderr_never_blocks_pidone_own_messages,
    pidone_exits_when_all_oneshots_are_done,
    go_overlay_services_toml_runs_unchanged,
    bad_config_is_refused_before_anything_starts,
);

/// A longrun body: stamps `NAME.up`, and on TERM stamps `NAME.stop` and exits 0. `on_term` runs
/// first in the handler (e.g. a slow shutdown).
fn trapping(name: &str, on_term: &str) -> String {
    format!(
        "[\"/bin/sh\", \"-c\", '''\
trap '{on_term} @D/stamp {name}.stop; kill $! 2>/dev/null; exit 0' TERM
@D/stamp {name}.up
sleep 1000 & wait
''']"
    )
}

/// Starts pidone on `config` (a file in `dir`) with extra arguments.
fn start(mode: Mode, dir: &Dir, config: &str, extra: &[&str]) -> Pidone {
    let mut args = vec!["--config", config];
    args.extend_from_slice(extra);
    Pidone::start(mode, dir, &args, &[])
}

fn ms(ns: u128) -> f64 {
    ns as f64 / MS as f64
}

/// Asserts `earlier < later` for two named timestamps of `dir`.
fn assert_before(dir: &Dir, earlier: &str, later: &str) {
    let (a, b) = (dir.stamp(earlier), dir.stamp(later));
    assert!(
        a < b,
        "{earlier} ({a}) should come before {later} ({b}), but is {:.1} ms later",
        ms(a - b)
    );
}

/// Asserts that `later` came at least `at_least_ms` after `earlier`.
fn assert_gap(dir: &Dir, earlier: &str, later: &str, at_least_ms: u128) {
    let (a, b) = (dir.stamp(earlier), dir.stamp(later));
    assert!(
        b >= a + at_least_ms * MS,
        "{later} should come at least {at_least_ms} ms after {earlier}, came {:.1} ms after",
        (b as f64 - a as f64) / MS as f64
    );
}

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
    let mut run = start(mode, &dir, &config, &[]);
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
    let mut run = start(mode, &dir, &config, &[]);
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
    let mut run = start(mode, &dir, &config, &[]);
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
        let mut run = start(mode, &dir, &config, &[]);
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
// Shutdown

fn shutdown_stops_services_in_reverse_dependency_order(mode: Mode) {
    let dir = Dir::new();
    // web takes a second to stop: app must wait for it, side (independent) must not.
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "db"
command = {db}

[[services]]
name = "app"
depends_on = "db"
command = {app}

[[services]]
name = "web"
depends_on = ["app"]
command = {web}

[[services]]
name = "side"
command = {side}
"#,
            db = trapping("db", ""),
            app = trapping("app", ""),
            web = trapping("web", "@D/stamp web.stopping; sleep 1;"),
            side = trapping("side", ""),
        ),
    );
    let mut run = start(mode, &dir, &config, &[]);
    run.wait_for("all four services to be up", |_| {
        ["db", "app", "web", "side"]
            .iter()
            .all(|n| dir.exists(&format!("{n}.up")))
    });
    run.signal("TERM");
    let outcome = run.wait();
    for name in ["db", "app", "web", "side"] {
        assert!(
            dir.exists(&format!("{name}.stop")),
            "{name} never got TERM; exit {:?}\nstderr:\n{}",
            outcome.status,
            outcome.stderr
        );
    }
    // A service gets TERM only once its dependents have exited, after their stop stamp.
    assert_before(&dir, "web.stop", "app.stop");
    assert_before(&dir, "app.stop", "db.stop");
    // Independent branches stop in parallel: side does not wait for web's slow exit.
    assert_before(&dir, "side.stop", "web.stop");
    assert_before(&dir, "side.stop", "app.stop");
}

fn service_ignoring_term_is_killed_after_stop_timeout(mode: Mode) {
    // stubborn depends on watcher, so it is stopped first; watcher gets TERM only after
    // stubborn is gone, and checks from inside that it really is.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[timeouts]
global_shutdown_timeout = "60s"

[[services]]
name = "watcher"
command = ["/bin/sh", "-c", '''
trap 'if kill -0 "$(cat @D/stubborn.pid)" 2>/dev/null; then echo alive; else echo dead; fi > @D/stubborn.state; @D/stamp watcher.stop; kill $! 2>/dev/null; exit 0' TERM
@D/stamp watcher.up
sleep 1000 & wait
''']

[[services]]
name = "stubborn"
depends_on = "watcher"
stop_timeout = "1500ms"
command = ["/bin/sh", "-c", '''
trap '' TERM
echo $$$$ > @D/stubborn.pid.tmp && mv @D/stubborn.pid.tmp @D/stubborn.pid
@D/stamp stubborn.up
while :; do sleep 0.1; done
''']
"#,
    );
    let mut run = start(mode, &dir, &config, &[]);
    run.wait_for("watcher and stubborn to be up", |_| {
        dir.exists("watcher.up") && dir.exists("stubborn.up") && dir.exists("stubborn.pid")
    });
    let term_sent = now_ns();
    run.signal("TERM");
    // The default service_shutdown_timeout (10 s) and this global one (60 s) are both beyond
    // DEADLINE: only stop_timeout can end this in time.
    let outcome = run.wait();
    assert_eq!(
        dir.read("stubborn.state").trim(),
        "dead",
        "stubborn was still alive when its dependency was stopped\nstderr:\n{}",
        outcome.stderr
    );
    let stopped = dir.stamp("watcher.stop");
    assert!(
        stopped >= term_sent + 1500 * MS,
        "stubborn was killed {:.0} ms after TERM, before its stop_timeout of 1500 ms",
        (stopped as f64 - term_sent as f64) / MS as f64
    );
}

fn second_term_and_global_timeout_cut_a_slow_shutdown_short(mode: Mode) {
    // A service that handles TERM by carrying on, with a stop_timeout beyond DEADLINE: only a
    // second TERM, or global_shutdown_timeout, can end pidone in time.
    for (global, second_term) in [("60s", true), ("1s", false)] {
        let dir = Dir::new();
        let config = dir.write(
            "pidone.toml",
            &format!(
                r#"
[timeouts]
global_shutdown_timeout = "{global}"

[[services]]
name = "slow"
stop_timeout = "60s"
command = ["/bin/sh", "-c", '''
trap '@D/stamp slow.term' TERM
@D/stamp slow.up
while :; do sleep 0.1; done
''']
"#
            ),
        );
        let mut run = start(mode, &dir, &config, &[]);
        run.wait_for("slow to be up", |_| dir.exists("slow.up"));
        let term_sent = Instant::now();
        run.signal("TERM");
        run.wait_for("slow to get TERM", |_| dir.exists("slow.term"));
        if second_term {
            run.signal("TERM");
        }
        run.wait();
        if !second_term {
            assert!(
                term_sent.elapsed() >= Duration::from_secs(1),
                "pidone gave up before global_shutdown_timeout (1 s): after {:?}",
                term_sent.elapsed()
            );
        }
    }
}

fn grandchildren_die_with_their_service(mode: Mode) {
    // parent starts a background child and a double-forked orphan (reparented to pidone but
    // still in parent's process group), then exits: both must die with it while pidone, kept
    // busy by keeper, goes on running.
    let dir = Dir::new();
    let tag = format!("gc{}", now_ns());
    let config = dir.write(
        "pidone.toml",
        &r#"
[[services]]
name = "keeper"
command = ["/bin/sleep", "1000"]

[[services]]
name = "parent"
restart = "never"
command = ["/bin/sh", "-c", '''
GC=@TAG-child /bin/sleep 1000 &
(GC=@TAG-orphan /bin/sleep 1000 &)
@D/stamp parent.up
while [ ! -e @D/release ]; do sleep 0.02; done
exit 0
''']
"#
        .replace("@TAG", &tag),
    );
    let mut run = start(mode, &dir, &config, &[]);
    let child = format!("{tag}-child");
    let orphan = format!("{tag}-orphan");
    run.wait_for("both grandchildren to run", |_| {
        !svc_common::pids_with_env("GC", &child).is_empty()
            && !svc_common::pids_with_env("GC", &orphan).is_empty()
    });
    fs::write(dir.join("release"), "").expect("write release");
    run.wait_for("the service's grandchildren to die", |_| {
        svc_common::pids_with_env("GC", &child).is_empty()
            && svc_common::pids_with_env("GC", &orphan).is_empty()
    });
    assert!(
        run.is_running(),
        "pidone exited, so this does not show the grandchildren died with their service"
    );
    run.signal("TERM");
    run.wait();
}

// ---------------------------------------------------------------------------------------------
// Users and environment

fn user_nobody_drops_uid_gid_and_groups(mode: Mode) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user in /etc/passwd")
        .split(':')
        .collect();
    let (uid, gid, home) = (entry[2], entry[3], entry[5]);
    let mut groups: BTreeSet<String> = BTreeSet::from([gid.to_owned()]);
    for line in fs::read_to_string("/etc/group").unwrap_or_default().lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 4 && fields[3].split(',').any(|m| m == "nobody") {
            groups.insert(fields[2].to_owned());
        }
    }

    let dir = Dir::new();
    let out = dir.join("out");
    fs::create_dir(&out).expect("mkdir out");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "unprivileged"
type = "oneshot"
user = "nobody"
workdir = "@D/out"
command = ["/bin/sh", "-c", '''
grep -E '^(Uid|Gid|Groups):' /proc/self/status > status
echo "USER=$USER HOME=$HOME LOGNAME=$LOGNAME PWD=$(pwd)" >> status
''']
"#,
    );
    let mut run = start(mode, &dir, &config, &[]);
    run.wait().assert_code(0, "one successful oneshot");
    let status = dir.read("out/status");
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} line in:\n{status}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(field("Uid"), [uid; 4], "real, effective, saved, fs uid");
    assert_eq!(field("Gid"), [gid; 4], "real, effective, saved, fs gid");
    assert_eq!(
        field("Groups").into_iter().collect::<BTreeSet<_>>(),
        groups,
        "supplementary groups: nobody's primary group and its /etc/group memberships only"
    );
    assert!(
        status.contains(&format!(
            "USER=nobody HOME={home} LOGNAME=nobody PWD={}/out",
            dir.s()
        )),
        "user environment or workdir wrong:\n{status}"
    );
}

fn env_precedence_and_expansion(mode: Mode) {
    let dir = Dir::new();
    fs::create_dir(dir.join("base")).expect("mkdir");
    dir.write(
        "base.env",
        "# a comment\n\
         \n\
         PB=file\n\
         PC=file\n\
         export PE=\"quoted value\"\n\
         PH=from-file\n\
         URL=http://x/#a\n",
    );
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "show"
type = "oneshot"
env_file = "@D/${BASE}.env"
workdir = "@D/${BASE}"
env = { PC = "env", PF = "${BASE}-x", PG = "${SVC_TEST_UNSET:-dflt}", PI = "${PH}" }
command = ["/bin/sh", "-c", '''
printf '%s\n' "PA=$PA" "PB=$PB" "PC=$PC" "PE=$PE" "PF=$PF" "PG=$PG" "PI=$PI" "URL=$URL" \
  "1=$1" "2=$2" "3=$3" "PWD=$(pwd)" > @D/env.out
''']
args = ["argv0", "${PC}", "${PF}", "${PB}"]
"#,
    );
    let mut run = Pidone::start(
        mode,
        &dir,
        &["--config", &config],
        &[
            ("PA", "pidone"),
            ("PB", "pidone"),
            ("PC", "pidone"),
            ("BASE", "base"),
        ],
    );
    let outcome = run.wait();
    outcome.assert_code(0, "one successful oneshot");
    let expected = format!(
        "PA=pidone\nPB=file\nPC=env\nPE=quoted value\nPF=base-x\nPG=dflt\nPI=from-file\n\
         URL=http://x/#a\n1=env\n2=base-x\n3=file\nPWD={}/base\n",
        dir.s()
    );
    assert_eq!(dir.read("env.out"), expected, "pidone env < env_file < env");
}

fn instances_get_numbered_names_and_pidone_instance(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "api"
instances = 3
env = { PORT = "300${PIDONE_INSTANCE}" }
command = ["/bin/sh", "-c", '''
echo "up $PIDONE_INSTANCE $PORT $1"
@D/stamp api-$PIDONE_INSTANCE.up
exec sleep 1000
''', "sh"]
args = ["--port=300${PIDONE_INSTANCE}"]

[[services]]
name = "proxy"
depends_on = "api"
wait_after = "1s"
command = ["/bin/sh", "-c", "@D/stamp proxy.up; exec sleep 1000"]
"#,
    );
    let validate = run_plain(&["validate", "--config", &config]);
    validate.assert_code(0, "validate a config with instances");
    let first = |name: &str| {
        validate
            .stdout
            .lines()
            .position(|l| words(l).any(|w| w == name))
            .unwrap_or_else(|| panic!("{name} not listed by validate:\n{}", validate.stdout))
    };
    for i in 1..=3 {
        assert!(
            first(&format!("api-{i}")) < first("proxy"),
            "validate: api-{i} should come before proxy:\n{}",
            validate.stdout
        );
    }

    let mut run = start(mode, &dir, &config, &[]);
    run.wait_for("proxy to start", |_| dir.exists("proxy.up"));
    run.wait_for("the three instances' output", |run| {
        let stdout = run.stdout();
        (1..=3).all(|i| {
            prefixed(&stdout)
                .contains(&(format!("api-{i}"), format!("up {i} 300{i} --port=300{i}")))
        })
    });
    for i in 1..=3 {
        assert_before(&dir, &format!("api-{i}.up"), "proxy.up");
    }
    assert!(!dir.exists("api-4.up") && !dir.exists("api-0.up"));
    run.signal("TERM");
    run.wait();
}

/// The words of a line, split on anything that cannot be in a service name.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .filter(|w| !w.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Output

/// Splits `[name] line` (the name possibly padded with spaces inside the brackets) into name
/// and line; `None` for anything else.
fn split_prefixed(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('[')?;
    let end = rest.find(']')?;
    let name = rest[..end].trim_matches(' ');
    if name.is_empty() || !words(name).eq([name]) {
        return None;
    }
    let text = rest[end + 1..].strip_prefix(' ')?;
    Some((name.to_owned(), text.to_owned()))
}

/// Every `[name] line` of `output`, in order.
fn prefixed(output: &str) -> Vec<(String, String)> {
    output.lines().filter_map(split_prefixed).collect()
}

/// Each service's lines from `output`; panics on any line that is not `[name] line`, except
/// pidone's own `pidone: ...` messages when `allow_own` is set.
fn lines_by_service(output: &str, allow_own: bool) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::<String, Vec<String>>::new();
    for (n, line) in output.lines().enumerate() {
        if allow_own && line.starts_with("pidone:") {
            continue;
        }
        let Some((name, text)) = split_prefixed(line) else {
            panic!(
                "output line {} is not `[name] text`: {:?}",
                n + 1,
                &line[..line.len().min(200)]
            );
        };
        by.entry(name).or_default().push(text);
    }
    by
}

/// Asserts `actual` is `expected`, except that a long line may arrive split into several
/// consecutive pieces (each then prefixed on its own line).
fn assert_same_lines(service: &str, actual: &[String], expected: &[String]) {
    let mut pieces = actual.iter();
    for (i, want) in expected.iter().enumerate() {
        let mut got = String::new();
        while got.len() < want.len() || got.is_empty() {
            let Some(piece) = pieces.next() else {
                panic!(
                    "{service}: output ends at line {} of {}: expected {:?}",
                    i + 1,
                    expected.len(),
                    &want[..want.len().min(100)]
                );
            };
            got.push_str(piece);
            if !want.starts_with(got.as_str()) || (piece.is_empty() && !want.is_empty()) {
                break;
            }
        }
        assert!(
            got == *want,
            "{service}: line {} differs: expected {:?} ({} bytes), got {:?} ({} bytes)",
            i + 1,
            &want[..want.len().min(100)],
            want.len(),
            &got[..got.len().min(100)],
            got.len()
        );
    }
    let extra: Vec<&String> = pieces.collect();
    assert!(
        extra.is_empty(),
        "{service}: unexpected extra lines {extra:?}"
    );
}

fn prefixed_output_loses_no_line(mode: Mode) {
    // 4 x 2,000 lines on stdout and 2,000 on stderr from five services at once, a 108,894-byte
    // line, and a last line without a newline: all must arrive, in order, each under its name.
    let dir = Dir::new();
    let mut config = String::new();
    for name in ["s1", "s2", "s3", "s4"] {
        config.push_str(&format!(
            "[[services]]\nname = \"{name}\"\ntype = \"oneshot\"\n\
             command = [\"/usr/bin/seq\", \"1\", \"2000\"]\n\n"
        ));
    }
    config.push_str(
        r#"
[[services]]
name = "longest-name-5"
type = "oneshot"
command = ["/bin/sh", "-c", "seq 1 2000 >&2"]

[[services]]
name = "big"
type = "oneshot"
command = ["/bin/sh", "-c", "seq -s ' ' 1 20000; printf 'tail-without-newline'"]
"#,
    );
    let config = dir.write("pidone.toml", &config);
    let mut run = start(mode, &dir, &config, &[]);
    let outcome = run.wait();
    outcome.assert_code(0, "six successful oneshots");

    let numbers: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
    let big_line = (1..=20000)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(big_line.len() >= 100_000);

    let stdout = lines_by_service(&outcome.stdout, false);
    let names: Vec<&String> = stdout.keys().collect();
    assert_eq!(names, ["big", "s1", "s2", "s3", "s4"], "services on stdout");
    for name in ["s1", "s2", "s3", "s4"] {
        assert_same_lines(name, &stdout[name], &numbers);
    }
    assert_same_lines(
        "big",
        &stdout["big"],
        &[big_line, "tail-without-newline".to_owned()],
    );
    let stderr = lines_by_service(&outcome.stderr, true);
    assert_eq!(
        stderr.keys().collect::<Vec<_>>(),
        ["longest-name-5"],
        "services on stderr"
    );
    assert_same_lines("longest-name-5", &stderr["longest-name-5"], &numbers);
}

fn slow_stdout_pushes_back_on_services_and_loses_no_line(mode: Mode) {
    // pidone's stdout is a pipe the test leaves unread until it is full and a service is
    // blocked writing to pidone: pidone must stop reading rather than buffer without bound or
    // drop lines, and must not block itself. Then everything must arrive.
    let dir = Dir::new();
    let mut config = String::new();
    for (name, count) in [("s1", 2000), ("s2", 2000), ("flood", 50_000)] {
        config.push_str(&format!(
            "[[services]]\nname = \"{name}\"\ntype = \"oneshot\"\n\
             command = [\"/usr/bin/seq\", \"1\", \"{count}\"]\n\n"
        ));
    }
    config.push_str(
        r#"
[[services]]
name = "big"
type = "oneshot"
command = ["/bin/sh", "-c", "seq -s ' ' 1 20000; seq -s ' ' 1 20000"]
"#,
    );
    let config = dir.write("pidone.toml", &config);
    let (mut run, pipe) = Pidone::start_piped(mode, &dir, &["--config", &config]);
    run.wait_for("pidone's stdout pipe to fill up", |_| {
        svc_common::pipe_pending(&pipe) >= 48 * 1024
    });
    let pidone = run.pid();
    let mut blocked = Vec::new();
    run.wait_for(
        "a service to block writing to pidone (back-pressure)",
        |run| {
            blocked = run
                .processes()
                .into_iter()
                .filter(|&p| p != pidone && svc_common::wchan(p).contains("pipe_write"))
                .map(cmdline)
                .collect();
            !blocked.is_empty()
        },
    );
    let pidone_wchan = svc_common::wchan(pidone);
    assert!(
        !pidone_wchan.contains("pipe_write"),
        "pidone itself is blocked writing to its stdout ({pidone_wchan})"
    );
    let reader = std::thread::spawn(move || {
        let mut pipe = pipe;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).expect("read pidone's stdout");
        text
    });
    let outcome = run.wait();
    outcome.assert_code(0, "four successful oneshots");
    let stdout = reader.join().expect("reader thread");

    let numbers = |n: u32| -> Vec<String> { (1..=n).map(|i| i.to_string()).collect() };
    let big_line = numbers(20000).join(" ");
    let by = lines_by_service(&stdout, false);
    assert_eq!(by.keys().collect::<Vec<_>>(), ["big", "flood", "s1", "s2"]);
    assert_same_lines("s1", &by["s1"], &numbers(2000));
    assert_same_lines("s2", &by["s2"], &numbers(2000));
    assert_same_lines("flood", &by["flood"], &numbers(50_000));
    assert_same_lines("big", &by["big"], &[big_line.clone(), big_line]);
    eprintln!("blocked while stdout was full: {blocked:?}");
}

fn unread_stderr_never_blocks_pidone_own_messages(mode: Mode) {
    // pidone logs every restart of a crash-looping service (-vv) to a stderr pipe nobody reads.
    // Once the pipe is full, pidone must keep supervising (the restarts go on) rather than block
    // in a write, drop what does not fit, and say so once stderr is read again.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "crasher"
command = ["/bin/sh", "-c", "echo x >> @D/runs; exit 1"]
restart_delay = "10ms"
restart_delay_max = "10ms"
"#,
    );
    let (mut run, pipe) = Pidone::start_stderr_piped(mode, &dir, &["-vv", "--config", &config]);
    run.wait_for("pidone's stderr pipe to fill up", |_| {
        svc_common::pipe_pending(&pipe) >= 56 * 1024
    });
    let runs = |dir: &Dir| dir.read("runs").lines().count();
    let before = runs(&dir);
    // About 240 bytes of messages per restart: 700 restarts overflow pidone's bounded queue.
    run.wait_for("the restarts to go on while stderr is full", |_| {
        runs(&dir) >= before + 700
    });
    let pidone = run.pid();
    let wchan = svc_common::wchan(pidone);
    assert!(
        !wchan.contains("pipe_write"),
        "pidone is blocked writing to its stderr ({wchan})"
    );
    let reader = std::thread::spawn(move || {
        let mut pipe = pipe;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).expect("read pidone's stderr");
        text
    });
    // With stderr read again, the note about what was dropped comes through.
    run.signal("TERM");
    run.wait().assert_code(
        0,
        "a crash-looping service stopped by a shutdown is not a failure",
    );
    let stderr = reader.join().expect("reader thread");
    assert!(
        stderr.contains("log messages dropped: stderr is not keeping up"),
        "the drop is reported: {}",
        svc_common::tail(&stderr)
    );
    assert!(
        stderr.lines().all(|l| l.starts_with("pidone: ")),
        "whole lines only: {}",
        svc_common::tail(&stderr)
    );
}

fn readiness_costs_no_wakeups_and_checks_wake_only_when_due(mode: Mode) {
    // Once its services are ready, pidone must sleep: a notify fd, ready.after and a ready check
    // that has passed cost nothing, and an alive check wakes pidone only when its next run is
    // due (here an hour away).
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "db"
command = ["/bin/sh", "-c", "echo ready >&3; exec /bin/sleep 1000"]
ready = { notify_fd = 3 }

[[services]]
name = "web"
command = ["/bin/sleep", "1001"]
depends_on = "db"
ready = { after = "200ms" }

[[services.checks]]
name = "once"
exec = ["/bin/sh", "-c", "echo x >> @D/ready.runs"]
level = "ready"
period = "100ms"

[[services.checks]]
name = "hourly"
exec = ["/bin/sh", "-c", "echo x >> @D/alive.runs"]
period = "1h"
"#,
    );
    let mut run = Pidone::start(mode, &dir, &["--config", &config], &[]);
    run.wait_for("web's alive check to run once (web is up)", |_| {
        dir.exists("alive.runs")
    });
    let pid = run.pid();
    // Wait for the start-up's last events to be handled: no context switch for 300 ms.
    let mut last = common::context_switches(pid);
    run.wait_for("pidone to go to sleep", |_| {
        std::thread::sleep(Duration::from_millis(300));
        let now = common::context_switches(pid);
        std::mem::replace(&mut last, now) == now
    });
    let before = common::context_switches(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = common::context_switches(pid);
    let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    assert_eq!(
        after, before,
        "{mode:?}: pidone woke up while nothing was due (now in syscall {syscall})"
    );
    assert_eq!(
        dir.read("ready.runs").lines().count(),
        1,
        "the ready check stopped once passed"
    );
    assert_eq!(dir.read("alive.runs").lines().count(), 1, "one run an hour");
    run.signal("TERM");
    run.wait().assert_code(0, "a clean shutdown");
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
    let mut run = start(mode, &dir, &config, &["--", "/bin/sh", "-c", &main]);
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
    let mut run = start(mode, &dir, &ok, &[]);
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
    let mut run = start(mode, &dir, &failing, &[]);
    run.wait().assert_code(1, "one oneshot failed");
    assert!(dir.exists("good.done") && dir.exists("bad.done"));
    assert!(
        !dir.exists("dependent.done"),
        "a dependent of a failed oneshot was started"
    );
}

// ---------------------------------------------------------------------------------------------
// go-overlay compatibility and config errors

fn go_overlay_services_toml_runs_unchanged(mode: Mode) {
    // The shipped example, as is: three `sleep 1000` longruns come up, TERM ends them.
    let example = format!("{}/examples/services.toml", env!("CARGO_MANIFEST_DIR"));
    run_plain(&["validate", "--config", &example]).assert_code(0, "validate the example");
    let dir = Dir::new();
    let mut run = start(mode, &dir, &example, &[]);
    run.wait_for("php-fpm, nginx and queue-worker to run", |run| {
        run.processes()
            .into_iter()
            .filter(|&p| cmdline(p) == "/bin/sleep 1000")
            .count()
            == 3
    });
    run.signal("TERM");
    run.wait();

    // A go-overlay file using its own forms (oneshot = true, a string depends_on, a
    // [services.wait_after] sub-table, pos_script, integer durations, programs without a
    // shell), with stand-ins that leave timestamps.
    let dir = Dir::new();
    dir.script("setup.sh", "#!/bin/sh\n@D/stamp setup.done\n");
    dir.script(
        "php-fpm.sh",
        "#!/bin/sh\ntrap '@D/stamp php.stop; kill $! 2>/dev/null; exit 0' TERM\n\
         echo \"$PHP_MEMORY_LIMIT $1\" > @D/php.args\n@D/stamp php.up\nsleep 1000 & wait\n",
    );
    dir.script(
        "nginx.sh",
        "#!/bin/sh\ntrap '@D/stamp nginx.stop; kill $! 2>/dev/null; exit 0' TERM\n\
         echo \"$1 $2\" > @D/nginx.args\n@D/stamp nginx.up\nsleep 1000 & wait\n",
    );
    dir.script("nginx-post.sh", "#!/bin/sh\n@D/stamp post.done\n");
    let config = dir.write(
        "services.toml",
        r#"[timeouts]
post_script_timeout = 1
service_shutdown_timeout = 5
global_shutdown_timeout = 15
dependency_wait_timeout = 60

[[services]]
name = "setup"
command = "@D/setup.sh"
oneshot = true

[[services]]
name = "php-fpm"
command = "@D/php-fpm.sh"
args = ["--nodaemonize"]
depends_on = "setup"
required = true
restart = "on-failure"
restart_delay = 2
max_restarts = 5
env = { PHP_MEMORY_LIMIT = "256M" }

[[services]]
name = "nginx"
command = "@D/nginx.sh"
args = ["-g", "daemon off;"]
depends_on = ["php-fpm", "setup"]
pos_script = "@D/nginx-post.sh"
required = true

[services.wait_after]
php-fpm = 1
"#,
    );
    let mut run = start(mode, &dir, &config, &[]);
    run.wait_for("nginx's pos_script to run", |_| dir.exists("post.done"));
    assert_before(&dir, "setup.done", "php.up");
    // nginx waits 1 s after php-fpm, which started after setup was done.
    assert_gap(&dir, "setup.done", "nginx.up", 1000);
    // pos_script runs post_script_timeout (1 s) after nginx is up.
    assert_gap(&dir, "setup.done", "post.done", 2000);
    assert_eq!(dir.read("php.args"), "256M --nodaemonize\n");
    assert_eq!(dir.read("nginx.args"), "-g daemon off;\n");
    run.signal("TERM");
    run.wait();
    assert_before(&dir, "nginx.stop", "php.stop");
}

fn bad_config_is_refused_before_anything_starts(mode: Mode) {
    let dir = Dir::new();
    // Line numbers matter: the errors must name them.
    let config = dir.write(
        "bad.toml",
        r#"[[services]]
name = "good"
type = "oneshot"
command = ["/bin/sh", "-c", "touch @D/started"]

[[services]]
name = "web"
command = ["/bin/sleep", "1000"]
restrat = "always"
depends_on = ["dbb"]
stop_timeout = "10x"
"#,
    );
    let expected = [(9, "restrat"), (10, "depends_on"), (11, "stop_timeout")];
    let check = |what: &str, outcome: &svc_common::Outcome| {
        outcome.assert_code(2, what);
        for (line, key) in expected {
            let place = format!("{config}:{line}");
            assert!(
                outcome
                    .stderr
                    .lines()
                    .any(|l| l.contains(&place) && l.contains("\"web\"") && l.contains(key)),
                "{what}: no error naming {place}, service \"web\" and key {key}:\n{}",
                outcome.stderr
            );
        }
        assert!(
            outcome.stderr.contains("did you mean \"restart\"") && outcome.stderr.contains("dbb"),
            "{what}: errors lack detail:\n{}",
            outcome.stderr
        );
    };
    check("validate", &run_plain(&["validate", "--config", &config]));
    let mut run = start(mode, &dir, &config, &[]);
    check("run", &run.wait());
    assert!(
        !dir.exists("started"),
        "a service was started from a config with errors"
    );

    // A config whose program does not exist is refused the same way.
    let missing = dir.write(
        "missing.toml",
        "[[services]]\nname = \"ghost\"\ncommand = \"/nonexistent/ghostd\"\n",
    );
    let outcome = start(mode, &dir, &missing, &[]).wait();
    outcome.assert_code(2, "a program that cannot be found");
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.contains(&format!("{missing}:3")) && l.contains("ghost")),
        "no error naming {missing}:3 and the service:\n{}",
        outcome.stderr
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

/// A real-time offset that leaves the real-time range (`RTMAX--5` once read as signal 69) is
/// refused at load, with file, line and key, not accepted and found unsendable at stop time.
#[test]
fn a_realtime_signal_out_of_range_is_refused_at_load() {
    let dir = Dir::new();
    let config = dir.write(
        "bad.toml",
        "[[services]]\nname = \"web\"\ncommand = [\"/bin/sleep\", \"1000\"]\nstop_signal = \"RTMAX--5\"\n",
    );
    let outcome = run_plain(&["validate", "--config", &config]);
    outcome.assert_code(2, "stop_signal = \"RTMAX--5\"");
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.contains(&format!("{config}:4")) && l.contains("stop_signal")),
        "no error naming {config}:4 and stop_signal:\n{}",
        outcome.stderr
    );
}
