//! Black-box tests of `depends_on`'s conditions: a service that asks only that a oneshot
//! completed starts after it failed, where one that asks it to be up fails with it; a service
//! that asks only that a longrun started runs before that longrun is ready, and fails with it
//! when it fails for good before its spawn. pidone runs as a true PID 1 and as a plain child.
//! Needs root and util-linux.

#[macro_use]
mod support;

use support::*;

in_both_modes!(
    completed_starts_after_a_failed_oneshot_where_ready_fails,
    started_runs_before_the_dependency_is_ready,
);

as_pid1!(started_fails_when_the_dependency_fails_before_its_spawn);

fn completed_starts_after_a_failed_oneshot_where_ready_fails(mode: Mode) {
    let config = format!(
        r#"
[[services]]
name = "migrate"
type = "oneshot"
command = ["/bin/sh", "-c", "exit 3"]

[[services]]
name = "web"
depends_on = {{ migrate = "completed" }}
command = {web}

[[services]]
name = "api"
depends_on = ["migrate"]
command = {api}
"#,
        web = trapping("web", ""),
        api = trapping("api", ""),
    );
    let mut d = Daemon::start(mode, &config);
    let api = d.wait_state("api", "failed");
    assert_eq!(api["reason"], "dependency migrate failed", "{api}");
    d.wait_state("web", "running");
    assert_eq!(d.state("migrate"), "failed");
    assert!(!d.dir.exists("api.up"), "api never ran");
    d.shutdown()
        .assert_code(1, "shutdown with a failed oneshot and a failed dependent");
}

fn started_runs_before_the_dependency_is_ready(mode: Mode) {
    // db is ready (a newline on fd 3) only once web has started: with web asking db to be
    // ready, neither would ever run.
    let config = format!(
        r#"
[[services]]
name = "db"
ready = {{ notify_fd = 3 }}
command = ["/bin/sh", "-c", '''
while [ ! -e @D/web.up ]; do sleep 0.05; done
echo >&3
exec sleep 1000
''']

[[services]]
name = "web"
command = {web}

[services.depends_on]
db = "started"

[[services]]
name = "api"
depends_on = "db"
command = {api}
"#,
        web = trapping("web", ""),
        api = trapping("api", ""),
    );
    let mut d = Daemon::start(mode, &config);
    d.wait_state("api", "running");
    assert_eq!(d.state("db"), "running");
    assert_eq!(d.state("web"), "running");
    d.run.wait_for("api to start", |_| d.dir.exists("api.up"));
    assert_before(&d.dir, "web.up", "api.up");
    d.terminate();
}

fn started_fails_when_the_dependency_fails_before_its_spawn(mode: Mode) {
    let config = format!(
        r#"
[[services]]
name = "db"
restart = "never"
pre_script = ["/bin/sh", "-c", "exit 1"]
command = ["/bin/sleep", "1000"]

[[services]]
name = "web"
depends_on = {{ db = "started" }}
command = {web}
"#,
        web = trapping("web", ""),
    );
    // Nothing is left to run: pidone exits by itself, and some service failed.
    let dir = Dir::new();
    let config = dir.write("pidone.toml", &config);
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    let outcome = run.wait();
    outcome.assert_code(1, "a run whose services failed");
    let err = run.stderr();
    assert!(
        err.contains("web: pending -> failed: dependency db failed"),
        "{err}"
    );
    assert!(!dir.exists("web.up"), "web never ran");
}
