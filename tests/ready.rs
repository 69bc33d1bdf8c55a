//! Black-box tests of readiness and health checks: `ready = { notify_fd | sd_notify | after }`,
//! `start_timeout`, `[[services.checks]]` (exec, tcp, http; ready and alive levels) and
//! go-overlay's `[services.health_check]`, seen through what the services stamp into their
//! directory and what the control socket says. Each scenario runs pidone as a true PID 1
//! (`unshare --pid --fork --mount-proc`) and as a plain child. Needs root, util-linux and python3.
//!
//! The tests never sleep a fixed time: every wait polls a condition against a deadline. Where a
//! service must *not* be up yet, it is held back by a file the test creates (`NAME.go`), so
//! "still starting" is observed, not hoped for; the helper service also holds itself back 1.5 s,
//! the window in which a broken pidone would start its dependent too early. "Becomes ready, then
//! the dependent starts" is checked by comparing the dependency's stamp, written just before it
//! signals readiness, with the dependent's stamp, written once it runs. "Did not block" is
//! observed against a witness: a crashing service restarted every 100 ms is the clock.

#[macro_use]
mod svc_common;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use svc_common::{DEADLINE, Dir, Mode, Pidone, cmdline, get, pidone, run_plain, service_of};

const MS: u128 = 1_000_000;

in_both_modes!(
    dependent_starts_after_notify_fd_newline,
    dependent_starts_after_sd_notify_ready,
    dependent_starts_after_ready_tcp_check_connects,
    dependent_starts_after_ready_http_check_gets_200,
    dependent_starts_after_ready_after_delay,
    ready_check_failing_twice_then_passing_lets_dependents_start,
    alive_check_failing_three_times_in_a_row_restarts_the_service,
    hung_exec_check_is_killed_at_its_timeout_and_counts_as_a_failure,
    alive_check_on_failure_stop_fails_the_service_and_shutdown_ends_pidone,
    never_connecting_check_blocks_neither_supervision_nor_the_api,
    go_overlay_health_check_restarts_ignores_or_shuts_down,
    start_timeout_and_a_closed_notify_fd_fail_the_start,
    health_wait_and_main_program_wait_for_readiness,
    sd_notify_hears_the_service_after_it_drops_root_but_no_stranger,
    alive_checks_do_not_act_during_a_graceful_shutdown,
    reloads_never_hand_one_services_probe_result_to_another,
    status_and_check_escape_control_characters_of_a_service,
);

as_pid1!(
    sd_notify_from_outside_the_namespace_and_floods_are_ignored_in_sums,
    a_check_pidone_cannot_fork_does_not_count_against_the_service,
);

// ---------------------------------------------------------------------------------------------
// Helpers

/// `tests/helpers/ready_service.py`: becomes ready 1.5 s after it started and once
/// `NAME.go` exists, stamping `NAME.started` and `NAME.ready` (see the script).
fn ready_service() -> String {
    format!(
        "{}/tests/helpers/ready_service.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A port on 127.0.0.1 that nobody listened on a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A service that crashes at once, restarted every 100 ms forever: the tests' clock (its
/// `restarts` in the API).
fn crasher(name: &str) -> String {
    format!(
        r#"
[[services]]
name = "{name}"
restart = "always"
restart_delay = "100ms"
restart_delay_max = "100ms"
command = ["/bin/sh", "-c", "exit 1"]
"#
    )
}

/// Whether an error text talks about a timeout.
fn mentions_timeout(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["timed out", "timeout", "time out"]
        .iter()
        .any(|w| text.contains(w))
}

/// The check called `check` of a service object (`Null` if there is none).
fn check_of(service: &Value, check: &str) -> Value {
    service["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == check))
        .cloned()
        .unwrap_or(Value::Null)
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(-1)
}

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

/// A pidone on a config written into its own dir, with its socket at `run/ctl.sock` there (a
/// directory of its own: a test may open the dir to nobody, and pidone refuses a socket directory
/// others may write to). Dropping it kills the run (pidone before the directory goes: fields drop
/// in order).
struct Daemon {
    run: Pidone,
    socket: PathBuf,
    dir: Dir,
}

impl Daemon {
    /// Writes `config` (`@D` = the dir) and starts `pidone --config F [-- MAIN...]`; returns once
    /// the socket answers.
    fn start(mode: Mode, dir: Dir, config: &str, main: &[&str]) -> Daemon {
        let config = dir.write("pidone.toml", config);
        let socket = dir.join("run/ctl.sock");
        let mut args = vec![
            "--socket",
            socket.to_str().expect("UTF-8"),
            "--config",
            &config,
        ];
        if !main.is_empty() {
            args.push("--");
            args.extend_from_slice(main);
        }
        let mut run = Pidone::start(mode, &dir, &args, &[]);
        run.wait_for("the control socket to answer", |_| {
            get(&socket, "/v1/services").is_some_and(|(status, _)| status == 200)
        });
        Daemon { run, socket, dir }
    }

    fn service(&self, name: &str) -> Value {
        service_of(&self.socket, name).unwrap_or_else(|| {
            panic!(
                "no service {name} in GET /v1/services\nstderr:\n{}",
                self.run.stderr()
            )
        })
    }

    /// Waits (failing with pidone's output if pidone exits) until `name`'s object satisfies
    /// `condition`; returns that object.
    fn wait_service(
        &mut self,
        name: &str,
        what: &str,
        condition: impl Fn(&Value) -> bool,
    ) -> Value {
        let socket = self.socket.clone();
        let mut seen = Value::Null;
        let what = format!("{name}: {what}");
        self.run
            .wait_for(&what, |_| match service_of(&socket, name) {
                Some(s) if condition(&s) => {
                    seen = s;
                    true
                }
                _ => false,
            });
        seen
    }

    fn wait_state(&mut self, name: &str, state: &str) -> Value {
        self.wait_service(name, &format!("state {state}"), |s| s["state"] == state)
    }

    /// Waits until `name` runs with a pid that it wrote into `NAME.pids` itself.
    fn wait_running_pid(&mut self, name: &str, not: Option<i64>) -> i64 {
        let svc = self.wait_service(name, "running with a new pid", |s| {
            s["state"] == "running" && s["pid"].as_i64().is_some() && s["pid"].as_i64() != not
        });
        let pid = svc["pid"].as_i64().expect("pid");
        let dir = &self.dir;
        self.run
            .wait_for(&format!("{name} to record pid {pid}"), |_| {
                pids(dir, name).contains(&pid)
            });
        pid
    }

    fn health(&self) -> (u16, String) {
        get(&self.socket, "/v1/health").expect("an answer from /v1/health")
    }

    fn metrics(&self) -> String {
        // docs/api.md documents /metrics; accept /v1/metrics too.
        let (status, body) = match get(&self.socket, "/metrics") {
            Some((404, _)) | None => get(&self.socket, "/v1/metrics"),
            answer => answer,
        }
        .expect("an answer from the metrics endpoint");
        assert_eq!(status, 200, "metrics: {body}");
        body
    }

    /// Runs the client `pidone --socket S ARGS...` to completion: exit code and stdout.
    fn client(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(pidone())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .env_remove("PIDONE_SOCKET")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run the client");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Live processes of the run whose command line is exactly `command`.
    fn processes_running(&self, command: &str) -> Vec<u32> {
        self.run
            .processes()
            .into_iter()
            .filter(|&p| cmdline(p) == command)
            .collect()
    }

    /// The stamp `name` of the dir.
    fn stamp(&self, name: &str) -> u128 {
        self.dir.stamp(name)
    }

    /// Ends the run with `pidone shutdown` (SIGTERM's graceful shutdown; a signal would need
    /// pidone's host pid, looked up by its executable, which a rebuild replaces) and returns how
    /// it exited.
    fn shutdown(&mut self) -> svc_common::Outcome {
        let (code, out) = self.client(&["shutdown"]);
        assert_eq!(code, 0, "pidone shutdown: {out}");
        self.run.wait()
    }

    /// Shuts a clean run down and expects exit status 0.
    fn terminate(mut self) {
        self.shutdown().assert_code(0, "shutdown after a clean run");
    }
}

fn pids(dir: &Dir, name: &str) -> Vec<i64> {
    dir.read(&format!("{name}.pids"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A longrun that appends its pid to `NAME.pids` (`$$$$`: pidone expands `$$` to `$`), then
/// sleeps for `sleep` seconds (distinct numbers tell the services' processes apart).
fn pid_recorder(name: &str, sleep: u32) -> String {
    format!(r#"["/bin/sh", "-c", "echo $$$$ >> @D/{name}.pids; exec /bin/sleep {sleep}"]"#)
}

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
    let mut d = Daemon::start(mode, dir, &config, &[]);

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
    let mut d = Daemon::start(mode, Dir::new(), config, &[]);
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
    let mut d = Daemon::start(mode, Dir::new(), config, &[]);
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
    let mut d = Daemon::start(mode, dir, &config, &[]);
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
    assert_eq!(
        pids(&d.dir, "web"),
        [first, second],
        "web ran exactly twice"
    );
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
    let mut d = Daemon::start(mode, dir, &config, &[]);
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
    let mut d = Daemon::start(mode, dir, &config, &[]);
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
    assert_eq!(pids(&d.dir, "halt").len(), 1, "halt ran once");
    assert_eq!(d.service("ender")["state"], "running");

    std::fs::remove_file(d.dir.join("ender.ok")).expect("remove ender.ok");
    let outcome = d.run.wait();
    outcome.assert_code(1, "on_failure = \"shutdown\"");
}

// ---------------------------------------------------------------------------------------------
// 5. A check that never connects blocks nothing.

/// A TCP port on 127.0.0.1 where connecting hangs: a listener with a backlog of 0 that never
/// accepts, its one queue slot taken by a connection of ours, so the kernel drops further SYNs.
struct Blackhole {
    port: u16,
    _listener: TcpListener,
    _filler: Vec<TcpStream>,
}

impl Blackhole {
    fn new() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        // SAFETY: listen(2) on a socket this function owns; it changes only its backlog.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0)");
        let address = listener.local_addr().expect("address");
        let mut filler = Vec::new();
        for _ in 0..4 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
                Ok(stream) => filler.push(stream),
                Err(_) => {
                    return Blackhole {
                        port: address.port(),
                        _listener: listener,
                        _filler: filler,
                    };
                }
            }
        }
        panic!("connecting to a full listen queue does not hang here: the test cannot work");
    }
}

fn never_connecting_check_blocks_neither_supervision_nor_the_api(mode: Mode) {
    let hole = Blackhole::new();
    let port = hole.port;
    // stuck's ready check would hang for 30 s, steady's alive check for 1 s at a time.
    let config = format!(
        r#"{clock}
[[services]]
name = "stuck"
command = ["/bin/sleep", "1000"]
start_timeout = "60s"

[[services.checks]]
name = "hole"
tcp = "127.0.0.1:{port}"
level = "ready"
period = "200ms"
timeout = "30s"

[[services]]
name = "steady"
command = ["/bin/sleep", "1001"]

[[services.checks]]
name = "hole"
tcp = "127.0.0.1:{port}"
period = "200ms"
timeout = "1s"
on_failure = "ignore"
"#,
        clock = crasher("clock")
    );
    let mut d = Daemon::start(mode, Dir::new(), &config, &[]);
    let clock = d.wait_service("clock", "a first restart", |s| int(&s["restarts"]) >= 1);
    let before = int(&clock["restarts"]);
    // Each poll is an API request; a blocked loop would answer none for 30 s.
    d.wait_service("clock", "five more restarts", |s| {
        int(&s["restarts"]) >= before + 5
    });
    let stuck = d.service("stuck");
    assert_eq!(stuck["state"], "starting", "{stuck}");
    assert_ne!(check_of(&stuck, "hole")["status"], "passing", "{stuck}");

    // The connect really hangs (it is not refused): steady's check times out.
    let steady = d.wait_service("steady", "its check to time out", |s| {
        int(&check_of(s, "hole")["failures"]) >= 1
    });
    let check = check_of(&steady, "hole");
    assert_eq!(check["kind"], "tcp", "{steady}");
    assert!(
        check["last"].as_str().is_some_and(mentions_timeout),
        "last says it timed out: {check}"
    );
    let clock = d.service("clock");
    let before = int(&clock["restarts"]);
    d.wait_service("clock", "three more restarts", |s| {
        int(&s["restarts"]) >= before + 3
    });
    assert_eq!(d.service("stuck")["state"], "starting");
    assert_eq!(d.service("steady")["state"], "running");
    let (code, out) = d.client(&["status"]);
    assert_eq!(code, 0, "{out}");
    drop(hole);
}

/// Regression (services were numbered by position): a SIGHUP handled between poll() and the
/// dispatch of its results renumbered the services, so a refused probe's readiness reached the
/// run of another service whose connect still hung, which then read SO_ERROR = 0 and passed
/// ("connected"). Ten services whose exec checks fail every 10 ms (each run's end is a poll
/// result) come and go with every reload, shifting the ten whose checks hang; none of those may
/// ever pass.
fn reloads_never_hand_one_services_probe_result_to_another(mode: Mode) {
    let hole = Blackhole::new();
    let hung: String = (0..10)
        .map(|i| {
            format!(
                "[[services]]\nname = \"hung{i}\"\ncommand = [\"/bin/sleep\", \"100{i}\"]\nstart_timeout = \"1h\"\n\
                 [[services.checks]]\ntcp = \"127.0.0.1:{}\"\nlevel = \"ready\"\nperiod = \"10ms\"\ntimeout = \"1h\"\n\n",
                hole.port
            )
        })
        .collect();
    let failing: String = (0..10)
        .map(|i| {
            format!(
                "[[services]]\nname = \"failing{i}\"\ncommand = [\"/bin/sleep\", \"200{i}\"]\nstart_timeout = \"1h\"\n\
                 [[services.checks]]\nexec = [\"/bin/false\"]\nlevel = \"ready\"\nperiod = \"10ms\"\ntimeout = \"1h\"\n\n"
            )
        })
        .collect();
    let with = format!("{failing}{hung}");
    let mut d = Daemon::start(mode, Dir::new(), &hung, &[]);
    let file = d.dir.join("pidone.toml");
    for round in 0..50 {
        let (config, present) = if round % 2 == 0 {
            (&with, true)
        } else {
            (&hung, false)
        };
        std::fs::write(&file, config).expect("write the config");
        d.run.signal("HUP");
        let socket = d.socket.clone();
        d.run.wait_for("the reload to take effect", |_| {
            service_of(&socket, "failing0").is_some() == present
        });
    }
    for i in 0..10 {
        let svc = d.service(&format!("hung{i}"));
        assert_eq!(svc["state"], "starting", "{svc}");
        let check = check_of(&svc, "tcp");
        assert_ne!(check["status"], "passing", "{svc}");
        assert_eq!(int(&check["consecutive_successes"]), 0, "{svc}");
    }
    drop(hole);
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
    let mut d = Daemon::start(mode, dir, &config, &[]);
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
    assert_eq!(pids(&d.dir, "web"), [web_first, web_second]);
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
    let mut d = Daemon::start(mode, Dir::new(), config, &[]);

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

/// [`svc_common::wait_until`] with the standard deadline.
fn wait_quietly(what: &str, condition: impl FnMut() -> bool) {
    svc_common::wait_until(DEADLINE, what, condition);
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
    let mut d = Daemon::start(mode, dir, &config, &["/bin/sh", "-c", &main]);
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
    let (code, out) = d.client(&["check"]);
    assert_eq!(code, 1, "pidone check while starting: {out}");
    let (code, out) = d.client(&["wait", "--timeout", "300ms"]);
    assert_eq!(code, 1, "pidone wait times out while slow starts: {out}");
    assert!(
        !d.dir.exists("main.start"),
        "the main program started before every service was ready"
    );

    d.dir.write("slow.go", "");
    let (code, out) = d.client(&["wait", "--timeout", "20s"]);
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

/// sd_notify credentials: a service started as root that dropped to nobody (same session) is
/// heard; a process of another service, running as nobody, sending READY=1 to a root service's
/// socket is not.
fn sd_notify_hears_the_service_after_it_drops_root_but_no_stranger(mode: Mode) {
    let dir = Dir::new();
    // nobody writes its markers into the directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the dir");
    // send.py TARGET MARKER: sends READY=1 to TARGET's socket ("env": $NOTIFY_SOCKET, else a
    // file holding an address), then writes MARKER and sleeps.
    dir.write(
        "send.py",
        r#"import os, socket, sys, time
target, marker = sys.argv[1], sys.argv[2]
if target == "env":
    address = os.environ["NOTIFY_SOCKET"]
else:
    while not os.path.exists(target):
        time.sleep(0.02)
    address = open(target).read().strip()
if address.startswith("@"):
    address = "\0" + address[1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", address)
open(marker + ".tmp", "w").close()
os.rename(marker + ".tmp", marker)
time.sleep(1000)
"#,
    );
    let config = r#"
[[services]]
name = "victim"
command = ["/bin/sh", "-c", "echo \"$NOTIFY_SOCKET\" > @D/victim.tmp; mv @D/victim.tmp @D/victim.socket; exec /bin/sleep 1000"]
ready = { sd_notify = true }

[[services]]
name = "stranger"
user = "nobody"
command = ["/usr/bin/python3", "@D/send.py", "@D/victim.socket", "@D/stranger.sent"]

[[services]]
name = "dropper"
ready = { sd_notify = true }
command = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "@D/send.py", "env", "@D/dropper.sent"]
"#;
    let mut d = Daemon::start(mode, dir, config, &[]);
    d.wait_state("dropper", "running");
    d.run.wait_for("the stranger's READY=1 to be sent", |_| {
        d.dir.exists("stranger.sent")
    });
    // The datagram is queued before the marker exists: the next answer reflects it.
    let victim = d.service("victim");
    assert_eq!(
        victim["state"], "starting",
        "a stranger made it ready: {victim}"
    );
    d.run
        .wait_for("pidone to say it ignored the stranger", |run| {
            run.stderr().contains(": not the service's")
        });
    d.terminate();
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
command = ["/bin/sh", "-c", "trap '@D/stamp db.stopped; exit 0' TERM; while :; do sleep 0.05; done"]

[[services.checks]]
exec = "test -f @D/db.ok"
period = "50ms"
failure_threshold = 1
on_failure = "shutdown"

[[services]]
name = "web"
depends_on = "db"
command = ["/bin/sh", "-c", "trap 'rm -f @D/db.ok; sleep 0.5; @D/stamp web.stopped; exit 0' TERM; while :; do sleep 0.05; done"]
"#;
    let mut d = Daemon::start(mode, dir, config, &[]);
    d.wait_state("web", "running");
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

/// An sd_notify datagram from outside pidone's PID namespace (the test itself, root: pid 0 in
/// its credentials) is ignored; then a stranger's flood of datagrams gives a few log lines with
/// counts, not one line each.
fn sd_notify_from_outside_the_namespace_and_floods_are_ignored_in_sums(mode: Mode) {
    const FLOOD: u64 = 20_000;
    let dir = Dir::new();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the dir");
    dir.write(
        "flood.py",
        r#"import os, socket, sys, time
target, go, marker, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
while not os.path.exists(go):
    time.sleep(0.02)
address = "\0" + open(target).read().strip()[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"READY=1", address)
open(marker + ".tmp", "w").close()
os.rename(marker + ".tmp", marker)
time.sleep(1000)
"#,
    );
    let config = format!(
        r#"
[[services]]
name = "victim"
command = ["/bin/sh", "-c", "echo \"$NOTIFY_SOCKET\" > @D/victim.tmp; mv @D/victim.tmp @D/victim.socket; exec /bin/sleep 1000"]
ready = {{ sd_notify = true }}

[[services]]
name = "stranger"
user = "nobody"
command = ["/usr/bin/python3", "@D/flood.py", "@D/victim.socket", "@D/go", "@D/sent", "{FLOOD}"]
"#
    );
    let mut d = Daemon::start(mode, dir, &config, &[]);
    d.run
        .wait_for("the victim's socket", |_| d.dir.exists("victim.socket"));
    let address = d.dir.read("victim.socket");
    let name = address.trim().trim_start_matches('@');
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name,
        )
        .expect("address");
    let sock = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    sock.send_to_addr(b"READY=1", &addr)
        .expect("send from outside");
    d.run
        .wait_for("pidone to ignore a sender outside its namespace", |run| {
            run.stderr()
                .contains("outside pidone's PID namespace: not the service's")
        });
    d.dir.write("go", "");
    d.run
        .wait_for("the flood to be sent", |_| d.dir.exists("sent"));
    let sums = |text: &str| -> Vec<u64> {
        text.lines()
            .filter(|l| l.contains("sd_notify messag"))
            .filter_map(|l| l.split("ignored ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    };
    d.run
        .wait_for("every ignored datagram to be counted", |run| {
            sums(&run.stderr()).iter().sum::<u64>() == FLOOD + 1
        });
    let lines = sums(&d.run.stderr()).len();
    assert!(lines <= 10, "{lines} log lines for {FLOOD} datagrams");
    assert_eq!(d.service("victim")["state"], "starting");
    d.terminate();
}

/// What a service says reaches the terminal as text: an sd_notify STATUS= and an exec check's
/// output holding escape codes are printed escaped by `pidone status` and `pidone check`.
fn status_and_check_escape_control_characters_of_a_service(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        "esc.py",
        r#"import os, socket, time
address = "\0" + os.environ["NOTIFY_SOCKET"][1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1\nSTATUS=\x1b[31mred\x1b]0;title\x07", address)
time.sleep(1000)
"#,
    );
    let config = r#"
[[services]]
name = "esc"
ready = { sd_notify = true }
command = ["/usr/bin/python3", "@D/esc.py"]

[[services.checks]]
exec = "printf '\\033[2Jcleared'; exit 1"
period = "50ms"
failure_threshold = 1
on_failure = "ignore"
"#;
    let mut d = Daemon::start(mode, dir, config, &[]);
    d.wait_service("esc", "its status said and its check failing", |s| {
        s["notify_status"].is_string() && check_of(s, "exec")["status"] == "failing"
    });
    let (_, status) = d.client(&["status"]);
    assert!(!status.contains('\u{1b}'), "raw escape in: {status:?}");
    assert!(
        status.contains(r"\u{1b}[31mred\u{1b}]0;title\u{7}"),
        "{status:?}"
    );
    let (code, check) = d.client(&["check"]);
    assert_ne!(code, 0, "{check}");
    assert!(!check.contains('\u{1b}'), "raw escape in: {check:?}");
    assert!(check.contains(r"\u{1b}[2Jcleared"), "{check:?}");
    d.terminate();
}

/// Moves a process into a fresh pids cgroup (v1) whose limit the test sets; puts what is left
/// back into the root cgroup and removes it when dropped.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(pid: u32) -> Option<PidsCgroup> {
        let root = PathBuf::from("/sys/fs/cgroup/pids");
        let path = root.join(format!("pidone-test-{}-{pid}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let group = PidsCgroup(path);
        std::fs::write(group.0.join("cgroup.procs"), pid.to_string()).ok()?;
        Some(group)
    }

    fn limit(&self, max: &str) {
        std::fs::write(self.0.join("pids.max"), max).expect("write pids.max");
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write("/sys/fs/cgroup/pids/cgroup.procs", pid);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// pidone's own failure to start a probe (fork fails with EAGAIN under a pids limit) is said in
/// the check's last output and the log, and counts neither as a failure nor as a run: the
/// healthy service is not restarted, and the check passes again once pidone can fork.
fn a_check_pidone_cannot_fork_does_not_count_against_the_service(mode: Mode) {
    let dir = Dir::new();
    let config = r#"
[[services]]
name = "web"
command = ["/bin/sleep", "1000"]

[[services.checks]]
exec = "true"
period = "50ms"
failure_threshold = 1
on_failure = "restart"
"#;
    let mut d = Daemon::start(mode, dir, config, &[]);
    let up = d.wait_service("web", "its check passing", |s| {
        check_of(s, "exec")["status"] == "passing"
    });
    let Some(cgroup) = PidsCgroup::new(d.run.pid()) else {
        eprintln!("skipped: no pids cgroup to limit pidone's forks");
        return;
    };
    // pidone alone in its cgroup: no fork succeeds.
    cgroup.limit("1");
    d.run.wait_for("runs not started, in a sum", |run| {
        run.stderr().contains("more check runs not started")
    });
    let web = d.service("web");
    cgroup.limit("max");
    let exec = check_of(&web, "exec");
    assert!(
        exec["last"].as_str().is_some_and(|l| l.contains("not run")),
        "{exec}"
    );
    assert_eq!(exec["consecutive_failures"], 0, "{exec}");
    assert_eq!(exec["failures"], 0, "{exec}");
    assert_eq!(
        (web["pid"].clone(), web["restarts"].clone()),
        (up["pid"].clone(), up["restarts"].clone())
    );
    let runs = int(&exec["runs"]);
    d.wait_service("web", "its check running again", |s| {
        int(&check_of(s, "exec")["runs"]) > runs
    });
    drop(cgroup);
    d.terminate();
}
