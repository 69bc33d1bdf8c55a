//! Black-box tests of health checks (`[[services.checks]]`: exec, tcp, http; ready and alive
//! levels) and go-overlay's `[services.health_check]`: a failing first probe does not poison
//! readiness, an alive check failing `failure_threshold` times in a row restarts (or stops, or
//! shuts down), a hung exec check is killed at its timeout, and alive checks do not act during a
//! graceful shutdown. Seen through the services' stamps, the control socket and the metrics. Each
//! scenario runs pidone as a true PID 1 and as a plain child. Needs root and util-linux.

#[macro_use]
mod support;

use serde_json::Value;
use support::*;

in_both_modes!(
    ready_check_failing_twice_then_passing_lets_dependents_start,
    alive_check_failing_three_times_in_a_row_restarts_the_service,
    hung_exec_check_is_killed_at_its_timeout_and_counts_as_a_failure,
    alive_check_on_failure_stop_fails_the_service_and_shutdown_ends_pidone,
    go_overlay_health_check_restarts_ignores_or_shuts_down,
    alive_checks_do_not_act_during_a_graceful_shutdown,
);

/// The value of the sample `name{labels}` in Prometheus text, whatever the labels' order.
fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{')?;
        if n != name {
            return None;
        }
        let rest = rest.strip_suffix('}')?;
        let all = labels
            .iter()
            .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
        if all { value.parse().ok() } else { None }
    })
}

// ---------------------------------------------------------------------------------------------
// 2. A failing first probe does not poison readiness (Horust's hang).

fn ready_check_failing_twice_then_passing_lets_dependents_start(mode: Mode) {
    // The probe appends a timestamp per run and fails its first two runs. failure_threshold = 1
    // turns the check "failing" at once: it must still recover.
    let config = r#"
[[services]]
name = "app"
depends_on = "db"
command = ["/bin/sh", "-c", "@D/stamp app.start; exec /bin/sleep 1000"]

[[services]]
name = "db"
command = ["/bin/sleep", "1000"]

[[services.checks]]
name = "probe"
exec = ["/bin/sh", "-c", "date +%s%N >> @D/probe.runs; [ $(wc -l < @D/probe.runs) -ge 3 ]"]
level = "ready"
period = "200ms"
timeout = "10s"
failure_threshold = 1
"#;
    let mut d = Daemon::start_in(mode, Dir::new(), config);
    d.wait_state("app", "running");
    let runs = d.dir.stamps("probe.runs");
    assert!(runs.len() >= 3, "the probe ran {} times", runs.len());
    let app_start = d.stamp("app.start");
    assert!(
        app_start >= runs[2],
        "app started before the first passing probe"
    );
    let db = d.service("db");
    assert_eq!(db["state"], "running", "{db}");
    let check = check_of(&db, "probe");
    assert_eq!(check["kind"], "exec", "{db}");
    assert_eq!(check["level"], "ready", "{db}");
    assert_eq!(check["status"], "passing", "{db}");
    assert_eq!(check["failures"], 2, "two failed runs: {check}");
    assert!(int(&check["runs"]) >= 3, "{check}");
    assert_eq!(
        check["consecutive_failures"], 0,
        "reset by the success: {check}"
    );
    d.terminate();
}

// ---------------------------------------------------------------------------------------------
// 3. An alive check failing failure_threshold (default 3) times in a row restarts the service.

fn alive_check_failing_three_times_in_a_row_restarts_the_service(mode: Mode) {
    let dir = Dir::new();
    // Passes unless `sick` exists. While sick, each run appends to probe.fails; the third
    // failing run waits for `third` before failing, so the test sees the streak at two.
    dir.script(
        "probe.sh",
        "#!/bin/sh\n\
         [ -e @D/sick ] || exit 0\n\
         echo x >> @D/probe.fails\n\
         if [ \"$(wc -l < @D/probe.fails)\" -eq 3 ]; then\n\
           while [ ! -e @D/third ]; do sleep 0.02; done\n\
         fi\n\
         exit 1\n",
    );
    let config = format!(
        r#"
[[services]]
name = "web"
restart_delay = "100ms"
command = {web}

[[services.checks]]
name = "probe"
exec = ["@D/probe.sh"]
period = "200ms"
timeout = "30s"
"#,
        web = pid_recorder("web", 1000)
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let first = d.wait_running_pid("web", None);
    d.wait_service("web", "probe passing", |s| {
        check_of(s, "probe")["status"] == "passing"
    });

    d.dir.write("sick", "");
    let dir = &d.dir;
    d.run.wait_for("the third failing run", |_| {
        dir.read("probe.fails").lines().count() == 3
    });
    // Two failures in a row so far, the third run is still going: not restarted yet.
    let web = d.service("web");
    let check = check_of(&web, "probe");
    assert_eq!(check["kind"], "exec", "{web}");
    assert_eq!(check["level"], "alive", "the default level: {web}");
    assert_eq!(check["consecutive_failures"], 2, "{check}");
    assert_eq!(check["consecutive_successes"], 0, "{check}");
    assert_eq!(check["failures"], 2, "{check}");
    assert!(
        int(&check["runs"]) >= 3,
        "at least one pass and two failures: {check}"
    );
    assert!(
        check["last"].is_string() || check["last"].is_null(),
        "{check}"
    );
    assert_eq!(
        (
            web["state"].as_str(),
            web["pid"].as_i64(),
            web["restarts"].as_i64()
        ),
        (Some("running"), Some(first), Some(0)),
        "two failures of three do nothing: {web}"
    );
    let metrics = d.metrics();
    let labels = [("service", "web"), ("check", "probe")];
    assert_eq!(
        metric(&metrics, "pidone_check_consecutive_failures", &labels),
        Some(2.0),
        "{metrics}"
    );

    // Healthy again for the next process, then the third failure.
    std::fs::remove_file(d.dir.join("sick")).expect("remove sick");
    d.dir.write("third", "");
    let second = d.wait_running_pid("web", Some(first));
    assert_eq!(d.dir.pids("web"), [first, second], "web ran exactly twice");
    let web = d.wait_service("web", "probe passing twice on the new process", |s| {
        s["pid"].as_i64() == Some(second)
            && check_of(s, "probe")["consecutive_successes"].as_i64() >= Some(2)
    });
    assert_eq!(web["restarts"], 1, "{web}");
    assert_eq!(web["state"], "running", "{web}");
    assert_eq!(check_of(&web, "probe")["consecutive_failures"], 0, "{web}");
    let metrics = d.metrics();
    assert_eq!(
        metric(&metrics, "pidone_check_up", &labels),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "pidone_check_consecutive_failures", &labels),
        Some(0.0),
        "{metrics}"
    );
    d.terminate();
}

// ---------------------------------------------------------------------------------------------
// 4. A hung exec check is killed at its timeout and counts as a failure.

fn hung_exec_check_is_killed_at_its_timeout_and_counts_as_a_failure(mode: Mode) {
    let dir = Dir::new();
    // Counts its runs, then hangs waiting for a child: the timeout must kill the check's whole
    // process group, not only the shell.
    dir.script(
        "hang.sh",
        "#!/bin/sh\necho x >> @D/hang.runs\n/bin/sleep 777 &\nwait\n",
    );
    let config = format!(
        r#"
[[services]]
name = "web"
command = {web}

[[services.checks]]
name = "hang"
exec = ["@D/hang.sh"]
period = "200ms"
timeout = "500ms"
failure_threshold = 2
on_failure = "ignore"
"#,
        web = pid_recorder("web", 1000)
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let web_pid = d.wait_running_pid("web", None);
    // The processes of a run: the shell running hang.sh and its sleep.
    let hung = |run: &Pidone| -> Vec<u32> {
        run.processes()
            .into_iter()
            .filter(|&p| {
                let command = cmdline(p);
                command == "/bin/sleep 777" || command.ends_with("/hang.sh")
            })
            .collect()
    };
    let mut first = Vec::new();
    d.run.wait_for("the first hung probe and its child", |run| {
        first = hung(run);
        first.len() == 2
    });
    // The run seen above is over (timed out) once one more failure than now is counted.
    let failures = int(&check_of(&d.service("web"), "hang")["failures"]);
    let web = d.wait_service("web", "the run seen to time out, two in a row", |s| {
        let check = check_of(s, "hang");
        int(&check["failures"]) > failures && int(&check["consecutive_failures"]) >= 2
    });
    let check = check_of(&web, "hang");
    assert_eq!(check["status"], "failing", "failure_threshold = 2: {check}");
    assert!(int(&check["failures"]) >= 2, "{check}");
    assert!(
        check["last"].as_str().is_some_and(mentions_timeout),
        "last says it timed out: {check}"
    );
    assert!(d.dir.read("hang.runs").lines().count() >= 2);
    let live = hung(&d.run);
    assert!(
        first.iter().all(|p| !live.contains(p)),
        "the first hung probe {first:?} is still alive after its timeout (live: {live:?})"
    );
    assert!(live.len() <= 2, "hung probes pile up: {live:?}");
    // on_failure = "ignore": the service stays as it was, but health says the check fails.
    assert_eq!(
        (
            web["state"].as_str(),
            web["pid"].as_i64(),
            web["restarts"].as_i64()
        ),
        (Some("running"), Some(web_pid), Some(0)),
        "{web}"
    );
    let (status, body) = d.health();
    assert_eq!(
        status, 503,
        "a failing alive check is a health problem: {body}"
    );
    assert!(body.contains("web") || body.contains("hang"), "{body}");
    let metrics = d.metrics();
    let labels = [("service", "web"), ("check", "hang")];
    assert_eq!(
        metric(&metrics, "pidone_check_up", &labels),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metric(&metrics, "pidone_check_consecutive_failures", &labels) >= Some(2.0),
        "{metrics}"
    );
    d.terminate();
}

/// `on_failure = "stop"` leaves the service FAILED (not restarted, whatever `restart` says);
/// `on_failure = "shutdown"` makes pidone shut down and exit 1.
fn alive_check_on_failure_stop_fails_the_service_and_shutdown_ends_pidone(mode: Mode) {
    let dir = Dir::new();
    dir.write("halt.ok", "");
    dir.write("ender.ok", "");
    let config = format!(
        r#"
[[services]]
name = "halt"
restart = "always"
restart_delay = "100ms"
command = {halt}

[[services.checks]]
exec = "test -f @D/halt.ok"
period = "200ms"
failure_threshold = 1
on_failure = "stop"

[[services]]
name = "ender"
command = {ender}

[[services.checks]]
exec = "test -f @D/ender.ok"
period = "200ms"
failure_threshold = 1
on_failure = "shutdown"
"#,
        halt = pid_recorder("halt", 1001),
        ender = pid_recorder("ender", 1002),
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    d.wait_running_pid("halt", None);
    d.wait_running_pid("ender", None);
    for name in ["halt", "ender"] {
        d.wait_service(name, "its check passing", |s| {
            check_of(s, "exec")["status"] == "passing"
        });
    }

    std::fs::remove_file(d.dir.join("halt.ok")).expect("remove halt.ok");
    let halt = d.wait_state("halt", "failed");
    assert!(
        halt["reason"].as_str().is_some_and(|r| r.contains("check")),
        "the reason names the check: {halt}"
    );
    let d_ref = &d;
    wait_quietly("halt's process to be gone", || {
        d_ref.processes_running("/bin/sleep 1001").is_empty()
    });
    // Not restarted: ender's check keeps running meanwhile and is the witness.
    let runs = int(&check_of(&d.service("ender"), "exec")["runs"]);
    d.wait_service("ender", "three more runs of its check", |s| {
        int(&check_of(s, "exec")["runs"]) >= runs + 3
    });
    let halt = d.service("halt");
    assert_eq!(
        (halt["state"].as_str(), halt["restarts"].as_i64()),
        (Some("failed"), Some(0)),
        "{halt}"
    );
    assert_eq!(d.dir.pids("halt").len(), 1, "halt ran once");
    assert_eq!(d.service("ender")["state"], "running");

    std::fs::remove_file(d.dir.join("ender.ok")).expect("remove ender.ok");
    let outcome = d.run.wait();
    outcome.assert_code(1, "on_failure = \"shutdown\"");
}

// ---------------------------------------------------------------------------------------------
// 6. go-overlay's [services.health_check] runs unchanged.

fn go_overlay_health_check_restarts_ignores_or_shuts_down(mode: Mode) {
    let dir = Dir::new();
    dir.write("web.ok", "");
    dir.write("vital.ok", "");
    let port = free_port();
    // web: restart = "always" → restarted. side: not required, restart = "never" → ignored.
    // vital: required, restart = "never" → pidone shuts down.
    let config = format!(
        r#"
[[services]]
name = "web"
command = {web}
restart = "always"
restart_delay = 1

[services.health_check]
command = "test -f @D/web.ok"
interval = 1
retries = 2
timeout = 1
start_delay = 1

[[services]]
name = "side"
command = {side}
restart = "never"

[services.health_check]
endpoint = "http://127.0.0.1:{port}/health"
interval = 1
retries = 2
start_delay = 1

[[services]]
name = "vital"
command = {vital}
required = true
restart = "never"

[services.health_check]
command = "test -f @D/vital.ok"
interval = 1
retries = 2
start_delay = 1
"#,
        web = pid_recorder("web", 1000),
        side = pid_recorder("side", 1001),
        vital = pid_recorder("vital", 1002),
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let web_first = d.wait_running_pid("web", None);
    let vital_pid = d.wait_running_pid("vital", None);
    let side_pid = d.wait_running_pid("side", None);
    let only_check = |s: &Value| s["checks"][0].clone();
    for name in ["web", "vital"] {
        let svc = d.wait_service(name, "health_check passing", |s| {
            only_check(s)["status"] == "passing"
        });
        let check = only_check(&svc);
        assert_eq!(check["kind"], "exec", "{svc}");
        assert_eq!(check["level"], "alive", "{svc}");
        assert_eq!(svc["checks"].as_array().map(Vec::len), Some(1), "{svc}");
    }

    std::fs::remove_file(d.dir.join("web.ok")).expect("remove web.ok");
    // Healthy again for the next process once this one is gone (restart_delay and start_delay
    // leave two seconds before its first check).
    d.wait_service("web", "restarting", |s| {
        s["pid"].as_i64() != Some(web_first)
    });
    d.dir.write("web.ok", "");
    let web_second = d.wait_running_pid("web", Some(web_first));
    assert_eq!(d.service("web")["restarts"], 1);
    assert_eq!(d.dir.pids("web"), [web_first, web_second]);
    let vital = d.service("vital");
    assert_eq!(vital["pid"].as_i64(), Some(vital_pid), "{vital}");

    let side = d.wait_service("side", "its endpoint check failing", |s| {
        only_check(s)["status"] == "failing"
    });
    let check = only_check(&side);
    assert_eq!(check["kind"], "http", "{side}");
    assert!(
        int(&check["consecutive_failures"]) >= 2,
        "retries = 2: {check}"
    );
    assert_eq!(
        (
            side["state"].as_str(),
            side["pid"].as_i64(),
            side["restarts"].as_i64()
        ),
        (Some("running"), Some(side_pid), Some(0)),
        "neither restartable nor required: ignored: {side}"
    );

    std::fs::remove_file(d.dir.join("vital.ok")).expect("remove vital.ok");
    let outcome = d.run.wait();
    assert_ne!(
        outcome.code(),
        0,
        "a required service failing its health check shuts pidone down with an error\nstderr:\n{}",
        outcome.stderr
    );
}

/// During a graceful shutdown a dependency stays up until its dependents are down, and its alive
/// check must not act meanwhile: here `web`'s TERM trap breaks `db`'s check and takes a while to
/// exit; `on_failure = "shutdown"` must not turn the clean shutdown into exit 1, nor stop `db`
/// before `web`.
fn alive_checks_do_not_act_during_a_graceful_shutdown(mode: Mode) {
    let dir = Dir::new();
    dir.write("db.ok", "");
    let config = r#"
[[services]]
name = "db"
command = ["/bin/sh", "-c", "trap '@D/stamp db.stopped; exit 0' TERM; @D/stamp db.up; while :; do sleep 0.05; done"]

[[services.checks]]
exec = "test -f @D/db.ok"
period = "50ms"
failure_threshold = 1
on_failure = "shutdown"

[[services]]
name = "web"
depends_on = "db"
command = ["/bin/sh", "-c", "trap 'rm -f @D/db.ok; sleep 0.5; @D/stamp web.stopped; exit 0' TERM; @D/stamp web.up; while :; do sleep 0.05; done"]
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    d.wait_state("web", "running");
    // Running means spawned: the shells must have set their traps before the shutdown.
    wait_until(DEADLINE, "db and web to set their traps", || {
        d.dir.exists("db.up") && d.dir.exists("web.up")
    });
    d.wait_service("db", "its check passing", |s| {
        check_of(s, "exec")["status"] == "passing"
    });
    d.shutdown()
        .assert_code(0, "a clean shutdown, whatever db's check saw");
    assert!(
        d.stamp("db.stopped") >= d.stamp("web.stopped"),
        "db stopped after web"
    );
}
