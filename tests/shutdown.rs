//! Black-box tests of how services stop: reverse dependency order (also through a finished
//! oneshot), `stop_timeout` and the kill that follows, a second TERM and the global timeout, and
//! grandchildren dying with their service. pidone runs as a true PID 1 and as a plain child. Needs
//! root and util-linux. Order is read from timestamps the services write as they get TERM.

#[macro_use]
mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::*;

in_both_modes!(
    shutdown_stops_services_in_reverse_dependency_order,
    stop_order_passes_through_a_finished_oneshot,
    service_ignoring_term_is_killed_after_stop_timeout,
    grandchildren_die_with_their_service,
    second_term_and_global_timeout_cut_a_slow_shutdown_short,
    a_chain_ignoring_term_fits_in_docker_stops_window,
);

// Only a true PID 1: as a plain child, `kill 1` would reach the machine's init.
as_pid1!(a_term_from_inside_the_container_shuts_pidone_down);

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
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
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

/// go-overlay's most common stack: `postgres` ← `migrate` (oneshot, done) ← `web`. The done
/// oneshot passes the dependency on: `web` must be down before `postgres` gets TERM, both at
/// shutdown and for `pidone stop postgres`.
fn stop_order_passes_through_a_finished_oneshot(mode: Mode) {
    for by_request in [false, true] {
        let dir = Dir::new();
        let config = dir.write(
            "pidone.toml",
            &format!(
                r#"
[[services]]
name = "postgres"
command = {postgres}

[[services]]
name = "migrate"
type = "oneshot"
depends_on = "postgres"
command = ["/bin/true"]

[[services]]
name = "web"
depends_on = "migrate"
command = {web}
"#,
                postgres = trapping("postgres", ""),
                web = trapping("web", "sleep 0.5;"),
            ),
        );
        let socket = dir.join("ctl.sock");
        let socket = socket.to_str().expect("UTF-8");
        let mut run = Pidone::start_config(mode, &dir, &config, &["--socket", socket]);
        run.wait_for("postgres and web to be up", |_| {
            dir.exists("postgres.up") && dir.exists("web.up")
        });
        if by_request {
            let out = run_plain(&["--socket", socket, "stop", "postgres"]);
            out.assert_code(0, "pidone stop postgres");
            assert!(dir.exists("web.stop"), "web was stopped too");
            run.signal("TERM");
        } else {
            run.signal("TERM");
        }
        let outcome = run.wait();
        assert!(
            dir.exists("postgres.stop") && dir.exists("web.stop"),
            "both got TERM; stderr:\n{}",
            outcome.stderr
        );
        assert_before(&dir, "web.stop", "postgres.stop");
    }
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
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
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
        let mut run = Pidone::start_config(mode, &dir, &config, &[]);
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

/// Issue 11: a chain of three services that ignore TERM, on the default stop_timeout (10 s each),
/// took 30 s and more, so `docker stop` (SIGKILL after 10 s) killed pidone in the middle of its
/// shutdown. The shutdown budget (8 s by default) ends it within Docker's window, with exit 0.
fn a_chain_ignoring_term_fits_in_docker_stops_window(mode: Mode) {
    let dir = Dir::new();
    let deaf = |name: &str| {
        format!(
            "[\"/bin/sh\", \"-c\", '''
trap '@D/stamp {name}.term' TERM
@D/stamp {name}.up
while :; do sleep 0.1; done
''']"
        )
    };
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "a"
command = {a}

[[services]]
name = "b"
depends_on = "a"
command = {b}

[[services]]
name = "c"
depends_on = "b"
command = {c}
"#,
            a = deaf("a"),
            b = deaf("b"),
            c = deaf("c"),
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait_for("the three services to be up", |_| {
        ["a", "b", "c"]
            .iter()
            .all(|n| dir.exists(&format!("{n}.up")))
    });
    run.signal("TERM");
    // Docker's default window: SIGKILL 10 s after SIGTERM.
    let outcome = run.wait_timeout(Duration::from_secs(10));
    outcome.assert_code(0, "services killed by the budget are stopped, not failed");
    assert!(
        dir.exists("c.term"),
        "c, the last dependent, got TERM first"
    );
    assert!(
        outcome.stderr.contains("shutdown budget"),
        "the log says why: {}",
        outcome.stderr
    );
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
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    let child = format!("{tag}-child");
    let orphan = format!("{tag}-orphan");
    run.wait_for("both grandchildren to run", |_| {
        !pids_with_env("GC", &child).is_empty() && !pids_with_env("GC", &orphan).is_empty()
    });
    fs::write(dir.join("release"), "").expect("write release");
    run.wait_for("the service's grandchildren to die", |_| {
        pids_with_env("GC", &child).is_empty() && pids_with_env("GC", &orphan).is_empty()
    });
    assert!(
        run.is_running(),
        "pidone exited, so this does not show the grandchildren died with their service"
    );
    run.signal("TERM");
    run.wait();
}

fn a_term_from_inside_the_container_shuts_pidone_down(mode: Mode) {
    // The kernel drops a signal sent to a namespace's init from inside it when the init has it at
    // its default action; pidone blocks what it reads from its signalfd, and a blocked signal is
    // queued instead.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "app"
command = {app}

[[services]]
name = "admin"
restart = "never"
command = ["/bin/sh", "-c", "while [ ! -e @D/go ]; do sleep 0.02; done; kill -TERM 1; sleep 1000"]
"#,
            app = trapping("app", ""),
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait_for("app to be up", |_| dir.exists("app.up"));
    fs::write(dir.join("go"), "").expect("write go");
    let outcome = run.wait();
    assert_eq!(outcome.code(), 0, "stderr:\n{}", outcome.stderr);
    assert!(dir.exists("app.stop"), "app was not stopped gracefully");
}

/// Issue 11: `pidone validate` warns, without refusing the configuration, when the stop timeouts
/// of a dependency chain cannot fit in the shutdown budget.
#[test]
fn validate_warns_when_a_chain_of_stops_cannot_fit_the_budget() {
    let dir = Dir::new();
    let chain = |web: &str| {
        dir.write(
            &format!("chain-{web}.toml"),
            &format!(
                "[[services]]\nname = \"db\"\ncommand = [\"/bin/true\"]\nstop_timeout = \"6s\"\n\n\
                 [[services]]\nname = \"web\"\ncommand = [\"/bin/true\"]\ndepends_on = \"db\"\n\
                 stop_timeout = \"{web}\"\n"
            ),
        )
    };
    let out = run_plain(&["validate", "--config", &chain("5s")]);
    out.assert_code(0, "a warning, not an error");
    assert!(
        out.stderr.contains(
            "pidone: warning: shutdown budget: web (5s), then db (6s) stop one after the other: \
             11s in all, over global_shutdown_timeout (8s)"
        ),
        "{}",
        out.stderr
    );
    let out = run_plain(&["validate", "--config", &chain("2s")]);
    out.assert_code(0, "6 s + 2 s fit in 8 s");
    assert_eq!(out.stderr, "", "no warning when the chain fits");
}
