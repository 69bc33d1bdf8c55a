//! `pidone import`: real-world-shaped supervisord, Procfile and process-compose files (written
//! for these tests from each tool's documented options) through the real binaries, `pidone`
//! running its companion `pidone-import`; every produced file must pass `pidone validate`.

#[macro_use]
mod support;

use support::*;

/// Runs `pidone import FORMAT FILE [extra]` on `text`; asserts the exit code and returns
/// (stdout, stderr). When a file was printed, asserts `pidone validate` accepts it.
fn import(format: &str, text: &str, extra: &[&str], code: i32) -> (String, String) {
    import_beside(&[], format, text, extra, code)
}

/// [`import`] with `files` (name, text) written beside the source first (a `.env`).
fn import_beside(
    files: &[(&str, &str)],
    format: &str,
    text: &str,
    extra: &[&str],
    code: i32,
) -> (String, String) {
    let dir = Dir::new();
    for (name, text) in files {
        dir.write(name, text);
    }
    let file = dir.write("source", text);
    let mut args = vec!["import", format, &file];
    args.extend(extra);
    let out = run_plain(&args);
    out.assert_code(code, &format!("pidone import {format}"));
    if code < 2 {
        let toml = dir.write("imported.toml", &out.stdout);
        let valid = run_plain(&["validate", "--config", &toml]);
        valid.assert_code(0, &format!("pidone validate of:\n{}", out.stdout));
    }
    (out.stdout, out.stderr)
}

fn has(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "missing {w:?} in:\n{text}");
    }
}

const DOCKER_SUPERVISORD: &str = "\
[supervisord]
nodaemon=true
user=root
logfile=/dev/null
logfile_maxbytes=0
pidfile=/run/supervisord.pid

[unix_http_server]
file=/run/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///run/supervisor.sock

[program:php-fpm]
command=/bin/sleep 1000 ; php-fpm -F in the real image
priority=5
autostart=true
autorestart=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0

[program:nginx]
command=/bin/sleep 1000
priority=10
stopsignal=QUIT
stopwaitsecs=5
stopasgroup=true
killasgroup=true
startsecs=3
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
redirect_stderr=true
";

#[test]
fn supervisord_docker_image_carries_over_whole() {
    let (out, err) = import("supervisord", DOCKER_SUPERVISORD, &[], 0);
    has(
        &out,
        &[
            "name = \"php-fpm\"",
            "command = [\"/bin/sleep\", \"1000\"]",
            "restart = \"always\"",
            "log = \"raw\"",
            "stop_signal = \"QUIT\"",
            "stop_timeout = \"5s\"",
            "ready = { after = \"3s\" }",
            "after = [\"php-fpm\"]",
            "# note (",
            "[supervisord] nodaemon",
            "[unix_http_server]",
            "pidone always signals the service's whole process group",
        ],
    );
    assert!(!out.contains("NOT CARRIED OVER"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn supervisord_queue_workers_numprocs_env_and_rotation() {
    let text = "\
[supervisord]
environment=APP_ENV=\"production\",TZ=UTC

[program:queue]
process_name=%(program_name)s_%(process_num)02d
command=/bin/sh -c \"echo %(program_name)s %(process_num)s $HOME\"
numprocs=3
numprocs_start=1
autostart=true
autorestart=unexpected
exitcodes=0,2
startretries=10
stopwaitsecs=3600
environment=QUEUE=\"%(ENV_HOME)s\",WORKER=\"%(process_num)s\"
stdout_logfile=/tmp/queue-%(process_num)s.log
redirect_stderr=true
umask=002
";
    let (out, err) = import("supervisord", text, &[], 1);
    has(
        &out,
        &[
            "name = \"queue_01\"",
            "name = \"queue_03\"",
            "command = [\"/bin/sh\", \"-c\", \"echo queue 2 $$HOME\"]",
            "restart = \"on-failure\"",
            "success_exit_codes = [0, 2]",
            "max_restarts = 10",
            "stop_timeout = \"3600s\"",
            "env = { APP_ENV = \"production\", TZ = \"UTC\", QUEUE = \"${HOME}\", WORKER = \"3\" }",
            "log_file = \"/tmp/queue-1.log\"",
            "# NOT CARRIED OVER (",
        ],
    );
    has(
        &err,
        &[
            "source:17: umask=002",
            "source:15: stdout_logfile_maxbytes=50MB (rotation)",
        ],
    );
    assert_eq!(
        err.matches("umask=002").count(),
        1,
        "one line per setting:\n{err}"
    );
    // --lossy: the same file, accepted.
    import("supervisord", text, &["--lossy"], 0);
}

#[test]
fn supervisord_includes_groups_and_unknown_options() {
    let dir = Dir::new();
    std::fs::create_dir(dir.join("conf.d")).unwrap();
    dir.write("conf.d/web.conf", "[program:web]\ncommand=/bin/sleep 1\ndirectory=%(here)s\nautostart=false\nfrobnicate=yes\n");
    dir.write(
        "conf.d/skipped.ini",
        "[program:not_included]\ncommand=/bin/sleep 1\n",
    );
    let main = dir.write(
        "supervisord.conf",
        "[include]\nfiles = conf.d/*.conf\n\n[group:backend]\nprograms=web\n\n[eventlistener:mem]\ncommand=/bin/true\n",
    );
    let out = run_plain(&["import", "supervisord", &main]);
    out.assert_code(1, "unknown option and event listener");
    has(
        &out.stdout,
        &[
            "name = \"web\"",
            &format!("workdir = \"{}/conf.d\"", dir.s()),
            "enabled = false",
            "groups = [\"backend\"]",
        ],
    );
    assert!(!out.stdout.contains("not_included"), "{}", out.stdout);
    // A [group:x] is carried over as pidone's groups: nothing about it is lost.
    assert!(!out.stderr.contains("group"), "{}", out.stderr);
    has(
        &out.stderr,
        &[
            "conf.d/web.conf:5: unknown option \"frobnicate\"",
            "supervisord.conf:7: [eventlistener:mem]",
        ],
    );
}

#[test]
fn supervisord_bad_input_names_file_and_line() {
    let (_, err) = import(
        "supervisord",
        "[program:a]\ncommand=/bin/true\nthis is not an option\n",
        &[],
        2,
    );
    has(&err, &["source:3: expected 'key = value'"]);
    let (_, err) = import(
        "supervisord",
        "[program:a]\ncommand=/bin/sh -c 'unclosed\n",
        &[],
        2,
    );
    has(&err, &["source:2: command: no closing single quote"]);
    let (_, err) = import(
        "supervisord",
        "[program:a]\ncommand=/bin/true\nnumprocs=2\n",
        &[],
        2,
    );
    has(&err, &["process_name must contain %(process_num)s"]);
    let (_, err) = import("supervisord", "[program:a]\ncommand=%(nope)s\n", &[], 2);
    has(&err, &["source:2: command: unknown expansion '%(nope)s'"]);
    let (_, err) = import(
        "supervisord",
        "[program:a]\nautorestart=sometimes\ncommand=/bin/true\n",
        &[],
        2,
    );
    has(
        &err,
        &["source:2: autorestart: not true, false or unexpected"],
    );
}

#[test]
fn procfile_rails_app() {
    let text = "\
# Procfile for a Rails app
web: bundle exec puma -C config/puma.rb -p ${PORT:-3000}
worker: bundle exec sidekiq -q default -q mailers

release: bin/rails db:migrate
";
    let (out, err) = import("procfile", text, &[], 0);
    has(
        &out,
        &[
            "name = \"web\"",
            "command = [\"/bin/sh\", \"-c\", \"bundle exec puma -C config/puma.rb -p $${PORT:-3000}\"]",
            "restart = \"always\"",
            "env = { PORT = \"5000\" }",
            "env = { PORT = \"5100\" }",
            "Heroku runs 'release' once per deploy",
        ],
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn procfile_bad_lines() {
    let (_, err) = import("procfile", "web: ok\n\njust a command\n", &[], 2);
    has(&err, &["source:3: expected 'name: command'"]);
    let (_, err) = import("procfile", "web: a\nweb: b\n", &[], 2);
    has(&err, &["source:2: process type \"web\" is defined twice"]);
    let (_, err) = import("procfile", "we b: a\n", &[], 2);
    has(&err, &["source:1: bad process type"]);
}

const COMPOSE_STACK: &str = r#"version: "0.5"
log_level: debug
environment:
  - "APP_ENV=dev"

processes:
  migrate:
    description: database migrations
    command: "echo migrating ${DB_URL}"
    availability:
      restart: "no"

  postgres:
    command: |
      exec sleep 1000
    readiness_probe:
      exec:
        command: "true"
      initial_delay_seconds: 1
      period_seconds: 2
      timeout_seconds: 3
      failure_threshold: 5
    shutdown:
      signal: 2
      timeout_seconds: 6

  api:
    command: >-
      sleep
      1000
    working_dir: /tmp
    environment:
      - "PORT=8080"
    depends_on:
      postgres:
        condition: process_healthy
      migrate:
        condition: process_completed_successfully
    availability:
      restart: on_failure
      backoff_seconds: 2
      max_restarts: 5
    liveness_probe:
      http_get:
        host: 127.0.0.1
        port: 8080
        path: /health
      period_seconds: 5
    replicas: 2
    disabled: false
"#;

#[test]
fn process_compose_stack_with_probes_and_conditions() {
    let (out, err) = import("process-compose", COMPOSE_STACK, &[], 0);
    has(
        &out,
        &[
            "name = \"migrate\"\ntype = \"oneshot\"\ncommand = [\"bash\", \"-c\", \"echo migrating ${DB_URL:-}\"]\nrestart = \"never\"",
            "command = [\"bash\", \"-c\", \"exec sleep 1000\\n\"]",
            "stop_signal = 2\nstop_timeout = \"6s\"",
            "exec = [\"bash\", \"-c\", \"true\"]\ninitial_delay = \"1s\"\nperiod = \"2s\"\ntimeout = \"3s\"\nfailure_threshold = 5\nname = \"readiness\"\nlevel = \"ready\"",
            "name = \"readiness-alive\"\non_failure = \"stop\"",
            "command = [\"bash\", \"-c\", \"sleep 1000\"]",
            "restart_delay = \"2s\"\nrestart_delay_max = \"2s\"\nmax_restarts = 5\nrestart = \"on-failure\"",
            "depends_on = [\"postgres\", \"migrate\"]",
            "instances = 2",
            "env = { APP_ENV = \"dev\", PORT = \"8080\" }",
            "http = \"http://127.0.0.1:8080/health\"\nperiod = \"5s\"\ntimeout = \"1s\"\nname = \"liveness\"\non_failure = \"restart\"",
            "/source:1): version: a setting of process-compose itself",
        ],
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn process_compose_tests_runner_with_what_pidone_lacks() {
    let text = r#"processes:
  tests:
    command: "go test ./..."
    availability:
      exit_on_end: true
    depends_on:
      redis: process_healthy
      seed:
        condition: process_log_ready
  redis:
    command: "sleep 1000"
    is_daemon: true
    namespace: cache
    shutdown:
      command: "redis-cli shutdown"
    readiness_probe:
      http_get:
        scheme: https
        port: 6380
  seed:
    command: "echo ready"
    ready_log_line: "ready"
    is_tty: true
"#;
    let (out, err) = import("process-compose", text, &[], 1);
    has(
        &out,
        &[
            "required = true",
            "depends_on = [\"redis\"]",
            "after = [\"seed\"]",
            "groups = [\"cache\"]",
        ],
    );
    assert!(!err.contains("namespace"), "a namespace is a group: {err}");
    has(
        &err,
        &[
            "source:5: exit_on_end",
            "source:8: depends_on seed: process_log_ready",
            "source:12: is_daemon",
            "source:15: shutdown.command",
            "source:17: readiness_probe.http_get: scheme https",
            "source:22: ready_log_line",
            "source:23: is_tty",
        ],
    );
}

const COMPOSE_CONDITIONS: &str = r#"processes:
  db:
    command: "exec sleep 1000"
    readiness_probe:
      exec:
        command: "true"
  migrate:
    command: "echo migrating; exit 3"
  seed:
    command: "echo seeding"
  web:
    command: "exec sleep 1000"
    depends_on:
      db:
        condition: process_started
      migrate:
        condition: process_completed
      seed: process_completed_successfully
  worker:
    command: "exec sleep 1000"
    depends_on:
      db: process_healthy
"#;

#[test]
fn process_compose_conditions_carry_over_with_the_dotenv() {
    let dotenv = "# the stack's\nDB_URL=postgres://db/app\nexport MODE='dev'\n";
    let (out, err) = import_beside(
        &[(".env", dotenv)],
        "process-compose",
        COMPOSE_CONDITIONS,
        &[],
        0,
    );
    has(
        &out,
        &[
            "env_file = \"/",
            "/.env\"\n",
            "name = \"migrate\"\ntype = \"oneshot\"",
            "name = \"seed\"\ntype = \"oneshot\"",
            "depends_on = { db = \"started\", migrate = \"completed\", seed = \"succeeded\" }",
            "depends_on = [\"db\"]",
            "/.env:1): the .env process-compose loads for every process",
        ],
    );
    assert!(!out.contains("after ="), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn process_compose_dotenv_disabled_or_refused() {
    let disabled = format!("is_dotenv_disabled: true\n{COMPOSE_CONDITIONS}");
    let (out, _) = import_beside(&[(".env", "A=1\n")], "process-compose", &disabled, &[], 0);
    assert!(!out.contains("env_file"), "{out}");
    let (out, err) = import_beside(
        &[(".env", "A=1\nnot a pair\n")],
        "process-compose",
        COMPOSE_CONDITIONS,
        &[],
        1,
    );
    assert!(!out.contains("env_file ="), "{out}");
    has(
        &err,
        &["/.env:2: line 2: expected KEY=VALUE: pidone would refuse this .env"],
    );
}

#[test]
fn procfile_takes_foremans_dotenv() {
    let (out, err) = import_beside(
        &[(".env", "RAILS_ENV=production\n")],
        "procfile",
        "web: bundle exec puma\n",
        &[],
        0,
    );
    has(
        &out,
        &["env_file = \"/", "the .env foreman loads for every process"],
    );
    assert!(err.is_empty(), "{err}");
}

#[test]
fn process_compose_bad_yaml_names_the_line() {
    let cases = [
        (
            "processes:\n  a: &anchor\n    command: x\n",
            "source:2: anchors and aliases",
        ),
        (
            "processes:\n  a:\n    command: \"x\n      y\"\n",
            "source:3: a quoted scalar without its closing quote",
        ),
        (
            "processes:\n  a:\n    command: x\n    depends_on:\n      b:\n        condition: process_started\n",
            "source:5: depends_on: unknown process \"b\"",
        ),
        (
            "processes:\n  a:\n    command: x\n    availability:\n      restart: sometimes\n",
            "source:5: availability.restart: unknown policy",
        ),
        ("processes: {}\n", "'processes' is empty"),
    ];
    for (text, want) in cases {
        let (_, err) = import("process-compose", text, &[], 2);
        has(&err, &[want]);
    }
}

#[test]
fn import_without_its_companion_says_so() {
    let dir = Dir::new();
    let copy = dir.join("pidone");
    let cp = std::process::Command::new("cp")
        .arg(pidone())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    let out = std::process::Command::new(&copy)
        .args(["import", "procfile", "Procfile"])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    has(&err, &["pidone-import not found in", "nor on PATH"]);
}

#[test]
fn usage_errors() {
    let (_, err) = import("inittab", "x", &[], 2);
    has(&err, &["unknown format"]);
}

/// Issue 18: `[group:x] programs = ...` becomes `groups = ["x"]` on each member (every process of
/// a `numprocs` program too), a name pidone cannot take made into one it can, with a note.
#[test]
fn supervisord_groups_become_pidone_groups() {
    let text = "[group:backend]\nprograms=db,worker\n\n[group:all apps]\nprograms=worker\n\n\
                [program:db]\ncommand=/bin/sleep 1000\n\n\
                [program:worker]\ncommand=/bin/sleep 1000\nnumprocs=2\n\
                process_name=%(program_name)s-%(process_num)s\n\n\
                [program:alone]\ncommand=/bin/sleep 1000\n";
    let (out, err) = import("supervisord", text, &[], 0);
    let after = |name: &str| {
        let at = out.find(&format!("name = \"{name}\"")).expect(name);
        out[at..]
            .split("[[services]]")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(after("db").contains("groups = [\"backend\"]"), "{out}");
    let worker = if out.contains("name = \"worker\"") {
        "worker"
    } else {
        "worker-0"
    };
    assert!(
        after(worker).contains("groups = [\"backend\", \"all-apps\"]"),
        "{out}"
    );
    assert!(!after("alone").contains("groups"), "{out}");
    has(
        &out,
        &["supervisord group \"all apps\" becomes group \"all-apps\""],
    );
    assert!(err.is_empty(), "nothing lost: {err}");
}
