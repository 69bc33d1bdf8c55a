//! Black-box tests of readiness: a dependent starts only once its dependency is ready, whichever
//! way it gets ready (`ready = { notify_fd | sd_notify | after }`, a ready-level tcp or http check);
//! `start_timeout` and a notify fd closed early fail the start; health, `pidone wait` and the main
//! program wait for readiness; readiness costs pidone no wakeups; readiness and check keys are
//! validated. Each scenario runs pidone as a true PID 1 and as a plain child. Needs root,
//! util-linux and python3.
//!
//! Where a service must *not* be up yet, it is held back by a file the test creates (`NAME.go`),
//! so "still starting" is observed, not hoped for; the helper service also holds itself back
//! 1.5 s, the window in which a broken pidone would start its dependent too early. "Becomes ready,
//! then the dependent starts" is checked by comparing the dependency's stamp, written just before
//! it signals readiness, with the dependent's stamp, written once it runs.

#[macro_use]
mod support;

use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::*;

in_both_modes!(
    dependent_starts_after_notify_fd_newline,
    dependent_starts_after_sd_notify_ready,
    dependent_starts_after_ready_tcp_check_connects,
    dependent_starts_after_ready_http_check_gets_200,
    dependent_starts_after_ready_after_delay,
    start_timeout_and_a_closed_notify_fd_fail_the_start,
    extend_timeout_usec_pushes_start_timeout_back,
    health_wait_and_main_program_wait_for_readiness,
    readiness_costs_no_wakeups_and_checks_wake_only_when_due,
);

// ---------------------------------------------------------------------------------------------
// 1. A dependent starts only once its dependency is ready, whichever way it gets ready.

fn dependent_starts_after_notify_fd_newline(mode: Mode) {
    dependent_waits_for(mode, "notify_fd");
}

fn dependent_starts_after_sd_notify_ready(mode: Mode) {
    dependent_waits_for(mode, "sd_notify");
}

fn dependent_starts_after_ready_tcp_check_connects(mode: Mode) {
    dependent_waits_for(mode, "tcp");
}

fn dependent_starts_after_ready_http_check_gets_200(mode: Mode) {
    dependent_waits_for(mode, "http");
}

/// `db` (ready_service.py) gets ready `how`, 1.5 s after it started and only once the test
/// allows it; `app` depends on it. While `db` is held back, it must be "starting" and `app`
/// "pending" and not started; then `app` must start after `db`'s ready stamp.
fn dependent_waits_for(mode: Mode, how: &str) {
    let dir = Dir::new();
    let port = free_port();
    let script = ready_service();
    let (ready, args, checks) = match how {
        "notify_fd" => (
            "ready = { notify_fd = 3 }",
            "\"notify_fd\", \"3\"".to_string(),
            String::new(),
        ),
        "sd_notify" => (
            "ready = { sd_notify = true }",
            "\"sd_notify\"".to_string(),
            String::new(),
        ),
        "tcp" => (
            "",
            format!("\"tcp\", \"{port}\""),
            format!(
                r#"
[[services.checks]]
name = "port"
tcp = "127.0.0.1:{port}"
level = "ready"
period = "200ms"
timeout = "1s"
"#
            ),
        ),
        "http" => (
            "",
            format!("\"http\", \"{port}\""),
            format!(
                r#"
[[services.checks]]
name = "page"
http = "http://127.0.0.1:{port}/health"
level = "ready"
period = "200ms"
timeout = "1s"
"#
            ),
        ),
        other => panic!("unknown way {other}"),
    };
    let config = format!(
        r#"
[[services]]
name = "app"
depends_on = "db"
command = ["/bin/sh", "-c", "@D/stamp app.start; exec /bin/sleep 1000"]

[[services]]
name = "db"
command = ["python3", "{script}", "@D", "db", {args}]
start_timeout = "30s"
{ready}
{checks}"#
    );
    let mut d = Daemon::start_in(mode, dir, &config);

    // Held back by the missing db.go: db cannot be ready, so it must say "starting".
    let db = d.wait_state("db", "starting");
    let expected_ready = match how {
        "notify_fd" | "sd_notify" => how,
        _ => "exec",
    };
    assert_eq!(db["ready"], expected_ready, "db's ready mode: {db}");
    if how == "sd_notify" {
        d.wait_service("db", "STATUS= shown while starting", |s| {
            s["notify_status"] == "warming up" && s["state"] == "starting"
        });
    }
    let app = d.service("app");
    assert_eq!(app["state"], "pending", "app waits for db: {app}");
    assert!(
        !d.dir.exists("app.start"),
        "app started while db was starting"
    );
    d.dir.write("db.go", "");

    d.wait_state("app", "running");
    let (started, ready_at, app_start) = (
        d.stamp("db.started"),
        d.stamp("db.ready"),
        d.stamp("app.start"),
    );
    assert!(
        ready_at >= started + 1500 * MS,
        "the helper waits 1.5 s before getting ready"
    );
    assert!(
        app_start >= ready_at,
        "app started {:.1} ms before db got ready ({how})",
        (ready_at as f64 - app_start as f64) / MS as f64
    );

    let db = d.service("db");
    assert_eq!(db["state"], "running", "{db}");
    match how {
        "sd_notify" => {
            assert_eq!(db["notify_status"], "serving", "the last STATUS=: {db}");
            let address = d.dir.read("db.notify_socket");
            assert!(
                address.starts_with('@') && address.len() > 1,
                "NOTIFY_SOCKET is an abstract address: {address:?}"
            );
        }
        "notify_fd" => {
            assert!(
                db["notify_status"].is_null(),
                "no sd_notify, no status: {db}"
            );
            assert_eq!(db["checks"], Value::Array(vec![]), "{db}");
        }
        _ => {
            let name = if how == "tcp" { "port" } else { "page" };
            let check = check_of(&db, name);
            assert_eq!(check["kind"], how, "{db}");
            assert_eq!(check["level"], "ready", "{db}");
            assert_eq!(check["status"], "passing", "{db}");
            // Nobody listened (tcp) or the answer was 503 (http) for 1.5 s, every 200 ms.
            assert!(int(&check["failures"]) >= 1, "early runs failed: {check}");
            assert!(int(&check["runs"]) > int(&check["failures"]), "{check}");
            assert!(
                check["consecutive_successes"].as_i64() >= Some(1),
                "{check}"
            );
            assert_eq!(check["consecutive_failures"], 0, "{check}");
        }
    }
    d.terminate();
}

/// `ready = { after = "1500ms" }`: up once it stayed alive that long. db is spawned only after
/// the oneshot `init` stamped and exited, so its 1.5 s are over no earlier than `init.done` +
/// 1.5 s (db's own stamp would come a shell start-up later than its spawn).
fn dependent_starts_after_ready_after_delay(mode: Mode) {
    let config = r#"
[[services]]
name = "app"
depends_on = "db"
command = ["/bin/sh", "-c", "@D/stamp app.start; exec /bin/sleep 1000"]

[[services]]
name = "db"
depends_on = "init"
ready = { after = "1500ms" }
command = ["/bin/sh", "-c", "@D/stamp db.started; exec /bin/sleep 1000"]

[[services]]
name = "init"
type = "oneshot"
command = ["/bin/sh", "-c", "@D/stamp init.done"]
"#;
    let mut d = Daemon::start_in(mode, Dir::new(), config);
    // db is "starting" for 1.5 s: the test may be too slow to see it, the stamps below decide.
    let db = d.wait_service("db", "spawned", |s| s["pid"].is_i64());
    assert_eq!(db["ready"], "after", "{db}");
    if db["state"] == "starting" {
        assert_eq!(d.service("app")["state"], "pending", "app waits for db");
    }
    d.wait_state("app", "running");
    let (init, started, app_start) = (
        d.stamp("init.done"),
        d.stamp("db.started"),
        d.stamp("app.start"),
    );
    assert!(init < started, "db started after init was done");
    assert!(
        app_start >= init + 1500 * MS,
        "app started {:.1} ms after init, so before db's 1.5 s were over",
        (app_start as f64 - init as f64) / MS as f64
    );
    assert_eq!(d.service("db")["state"], "running");
    d.terminate();
}

// ---------------------------------------------------------------------------------------------
// 7. start_timeout, and a notify fd closed without a newline.

fn start_timeout_and_a_closed_notify_fd_fail_the_start(mode: Mode) {
    // mute never writes its fd; quitter closes it; retry never writes and may restart once;
    // keeper keeps pidone alive.
    let config = r#"
[[services]]
name = "mute"
ready = { notify_fd = 3 }
start_timeout = "1s"
restart = "never"
command = ["/bin/sh", "-c", "@D/stamp mute.start; exec /bin/sleep 1001"]

[[services]]
name = "quitter"
ready = { notify_fd = 3 }
restart = "never"
command = ["/bin/sh", "-c", "exec 3>&-; exec /bin/sleep 1002"]

[[services]]
name = "retry"
ready = { notify_fd = 3 }
start_timeout = "500ms"
restart = "on-failure"
restart_delay = "100ms"
max_restarts = 1
command = ["/bin/sh", "-c", "echo x >> @D/retry.runs; exec /bin/sleep 1003"]

[[services]]
name = "keeper"
command = ["/bin/sleep", "1000"]
"#;
    let mut d = Daemon::start_in(mode, Dir::new(), config);

    // quitter: EOF before a newline fails the start at once, well before the default 60 s.
    let quitter = d.wait_state("quitter", "failed");
    assert_eq!(quitter["ready"], "notify_fd", "{quitter}");
    assert!(
        quitter["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{quitter}"
    );

    let mute = d.wait_state("mute", "failed");
    assert!(
        mute["reason"]
            .as_str()
            .is_some_and(|r| mentions_timeout(r) || r.contains("1s")),
        "the reason names the timeout: {mute}"
    );
    let failed_at = (mute["since"].as_f64().expect("since") * 1e9) as u128;
    let started = d.stamp("mute.start");
    assert!(
        failed_at + 300 * MS >= started + 1000 * MS,
        "mute failed {:.0} ms after it started, before its 1 s start_timeout",
        (failed_at as f64 - started as f64) / MS as f64
    );

    let retry = d.wait_state("retry", "failed");
    assert_eq!(
        d.dir.read("retry.runs").lines().count(),
        2,
        "a timed-out start is a failed start: one restart, then failed for good: {retry}"
    );
    assert_eq!(retry["restarts"], 1, "{retry}");

    // Each was stopped, and nothing else was touched.
    for sleep in ["/bin/sleep 1001", "/bin/sleep 1002", "/bin/sleep 1003"] {
        let d = &d;
        wait_quietly(&format!("{sleep} to be gone"), || {
            d.processes_running(sleep).is_empty()
        });
    }
    assert_eq!(d.service("keeper")["state"], "running");
    assert!(d.run.is_running(), "pidone goes on with keeper");
    d.shutdown()
        .assert_code(1, "services failed, no main program");
}

/// Issue 11: sd_notify's `EXTEND_TIMEOUT_USEC=` (systemd's meaning) pushes a configured
/// start_timeout back, and status shows how long the start has taken. `patient` asks for 60 s
/// at once and gets ready only when the test allows it; `impatient`, started just after it with
/// the same start_timeout, times out first, so by then `patient`'s own deadline has passed too.
fn extend_timeout_usec_pushes_start_timeout_back(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        "patient.py",
        &r#"import os, socket, time
def notify(message):
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)
notify("EXTEND_TIMEOUT_USEC=60000000\nSTATUS=replaying")
while not os.path.exists("@D/go"):
    time.sleep(0.02)
notify("READY=1")
while True:
    time.sleep(1000)
"#
        .replace("@D", &dir.s()),
    );
    let config = r#"
[[services]]
name = "patient"
ready = { sd_notify = true }
start_timeout = "2s"
restart = "never"
command = ["python3", "@D/patient.py"]

[[services]]
name = "impatient"
ready = { sd_notify = true }
start_timeout = "2s"
restart = "never"
command = ["/bin/sleep", "1004"]
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    let impatient = d.wait_state("impatient", "failed");
    assert!(
        impatient["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not ready after")),
        "{impatient}"
    );
    let patient = d.service("patient");
    assert_eq!(
        patient["state"], "starting",
        "the extension held: {patient}"
    );
    assert!(
        patient["starting_for"].as_f64().is_some_and(|s| s >= 2.0),
        "starting_for counts from the start: {patient}"
    );
    let status = d.ok(&["status", "patient"]).stdout;
    assert!(status.contains("starting for "), "{status}");
    std::fs::write(d.dir.join("go"), "").expect("write go");
    let patient = d.wait_state("patient", "running");
    assert_eq!(patient["starting_for"], Value::Null, "{patient}");
    d.shutdown()
        .assert_code(1, "impatient failed, no main program");
}

// ---------------------------------------------------------------------------------------------
// 8. Health, `pidone wait` and the main program wait for readiness.

fn health_wait_and_main_program_wait_for_readiness(mode: Mode) {
    let dir = Dir::new();
    let script = ready_service();
    let config = format!(
        r#"
[[services]]
name = "slow"
ready = {{ notify_fd = 3 }}
command = ["python3", "{script}", "@D", "slow", "notify_fd", "3"]

[[services]]
name = "web"
command = ["/bin/sleep", "1000"]
"#
    );
    let main = format!("{}/stamp main.start; exec /bin/sleep 1003", dir.s());
    let mut d = Daemon::start_main(mode, dir, &config, &["/bin/sh", "-c", &main]);
    d.wait_state("slow", "starting");
    d.wait_state("web", "running");

    let (status, body) = d.health();
    assert_eq!(status, 503, "a starting service is not healthy: {body}");
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["healthy"], false, "{body}");
    assert!(
        health["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("slow")))),
        "a problem names slow: {body}"
    );
    let (code, out) = d.client(&["check"]).code_text();
    assert_eq!(code, 1, "pidone check while starting: {out}");
    let (code, out) = d.client(&["wait", "--timeout", "300ms"]).code_text();
    assert_eq!(code, 1, "pidone wait times out while slow starts: {out}");
    assert!(
        !d.dir.exists("main.start"),
        "the main program started before every service was ready"
    );

    d.dir.write("slow.go", "");
    let (code, out) = d.client(&["wait", "--timeout", "20s"]).code_text();
    assert_eq!(code, 0, "pidone wait once slow is ready: {out}");
    assert_eq!(d.service("slow")["state"], "running");
    let (status, body) = d.health();
    assert_eq!(status, 200, "{body}");
    let (ready_at, main_start) = (d.stamp("slow.ready"), d.stamp("main.start"));
    assert!(
        main_start >= ready_at,
        "the main program started {:.1} ms before slow was ready",
        (ready_at as f64 - main_start as f64) / MS as f64
    );
    d.shutdown()
        .assert_code(143, "the main program's status: killed by TERM");
}

// ---------------------------------------------------------------------------------------------
// The configuration

#[test]
fn readiness_and_check_keys_validate_and_a_check_needs_exactly_one_probe() {
    let dir = Dir::new();
    let good = dir.write(
        "good.toml",
        r#"
[[services]]
name = "a"
command = ["/bin/sleep", "1000"]
ready = { notify_fd = 3 }
start_timeout = "60s"

[[services.checks]]
name = "port"
tcp = "127.0.0.1:5432"
level = "ready"
initial_delay = "1s"
period = "10s"
timeout = "3s"
success_threshold = 2
failure_threshold = 3

[[services.checks]]
exec = ["/bin/true"]
on_failure = "stop"

[[services.checks]]
exec = "test -e /"
on_failure = "shutdown"

[[services.checks]]
http = "http://127.0.0.1:8080/healthz"
on_failure = "ignore"

[[services]]
name = "b"
command = ["/bin/sleep", "1000"]
ready = { sd_notify = true }

[[services]]
name = "c"
command = ["/bin/sleep", "1000"]
ready = { after = "2s" }

[[services]]
name = "d"
command = ["/bin/sleep", "1000"]
restart = "always"

[services.health_check]
endpoint = "http://127.0.0.1:8080/"
interval = 30
retries = 3
timeout = 5
start_delay = 10
"#,
    );
    run_plain(&["validate", "--config", &good]).assert_code(0, "every readiness key");

    for (what, check) in [
        (
            "two probes",
            "exec = [\"/bin/true\"]\ntcp = \"127.0.0.1:1\"",
        ),
        ("no probe", "period = \"1s\""),
        (
            "a bad level",
            "exec = [\"/bin/true\"]\nlevel = \"sometimes\"",
        ),
        (
            "a bad on_failure",
            "exec = [\"/bin/true\"]\non_failure = \"panic\"",
        ),
        (
            "on_failure on a ready check",
            "exec = [\"/bin/true\"]\nlevel = \"ready\"\non_failure = \"stop\"",
        ),
        ("https", "http = \"https://127.0.0.1:8443/\""),
    ] {
        let bad = dir.write(
            "bad.toml",
            &format!(
                "[[services]]\nname = \"a\"\ncommand = [\"/bin/sleep\", \"1\"]\n\n\
                 [[services.checks]]\n{check}\n"
            ),
        );
        let out = run_plain(&["validate", "--config", &bad]);
        out.assert_code(2, what);
        assert!(
            out.stderr.contains("service \"a\""),
            "{what}: the error names the service:\n{}",
            out.stderr
        );
    }
    let oneshot = dir.write(
        "oneshot.toml",
        "[[services]]\nname = \"a\"\ntype = \"oneshot\"\ncommand = [\"/bin/true\"]\n\
         ready = { notify_fd = 3 }\n",
    );
    let out = run_plain(&["validate", "--config", &oneshot]);
    out.assert_code(2, "ready on a oneshot");
    assert!(out.stderr.contains("ready"), "{}", out.stderr);
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
    let mut last = context_switches(pid);
    run.wait_for("pidone to go to sleep", |_| {
        std::thread::sleep(Duration::from_millis(300));
        let now = context_switches(pid);
        std::mem::replace(&mut last, now) == now
    });
    let before = context_switches(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = context_switches(pid);
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
