//! Readiness and checks: `ready`, `start_timeout`, `[[services.checks]]`, go-overlay's
//! `health_check`, and their errors.

use super::*;

/// A check with every field at its default, for `probe`.
fn check(name: &str, probe: Probe) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        probe,
        level: Level::Alive,
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        success_threshold: 1,
        failure_threshold: 3,
        on_failure: OnFailure::Restart,
    }
}

fn tcp(host: &str, port: u16) -> Probe {
    Probe::Tcp {
        host: host.into(),
        port,
    }
}

fn http(host: &str, port: u16, path: &str) -> Probe {
    Probe::Http {
        host: host.into(),
        port,
        path: path.into(),
    }
}

fn exec(argv: &[&str]) -> Probe {
    Probe::Exec(argv.iter().map(|a| (*a).to_owned()).collect())
}

#[test]
fn ready_modes_and_start_timeout() {
    let c = ok(r#"
[[services]]
name = "fd"
command = "true"
ready = { notify_fd = 3 }
[[services]]
name = "sd"
command = "true"
start_timeout = "2m"
[services.ready]
sd_notify = true
[[services]]
name = "after"
command = "true"
start_timeout = 5
ready = { after = "4500ms" }
[[services]]
name = "exec"
command = "true"
ready = { sd_notify = false }
[[services]]
name = "fd-max"
command = "true"
ready.notify_fd = 1023
"#);
    assert_eq!(get(&c, "fd").ready, ReadyMode::NotifyFd(3));
    assert_eq!(get(&c, "fd").start_timeout, None, "no default (issue 11)");
    assert_eq!(get(&c, "sd").ready, ReadyMode::SdNotify);
    assert_eq!(get(&c, "sd").start_timeout, Some(Duration::from_secs(120)));
    assert_eq!(
        get(&c, "after").ready,
        ReadyMode::After(Duration::from_millis(4500))
    );
    assert_eq!(get(&c, "after").start_timeout, Some(Duration::from_secs(5)));
    assert_eq!(get(&c, "exec").ready, ReadyMode::Exec);
    assert_eq!(get(&c, "fd-max").ready, ReadyMode::NotifyFd(1023));
}

#[test]
fn ready_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
ready = "notify"
start_timeout = 0
[[services]]
name = "b"
command = "true"
ready = {}
[[services]]
name = "c"
command = "true"
ready = { notify_fd = 3, sd_notify = true }
[[services]]
name = "d"
command = "true"
[services.ready]
notfy_fd = 3
[[services]]
name = "e"
command = "true"
ready = { notify_fd = 2 }
[[services]]
name = "f"
command = "true"
ready = { notify_fd = 1024 }
[[services]]
name = "g"
command = "true"
ready = { after = 0 }
[[services]]
name = "h"
command = "true"
ready = { after = 60 }
[[services]]
name = "i"
command = "true"
start_timeout = "10s"
ready = { after = "15s" }
[[services]]
name = "j"
command = "true"
ready = { sd_notify = "yes" }
"#
        ),
        vec![
            "F:4: service \"a\": key \"ready\": expected a table: { notify_fd = N }, { sd_notify = true } or { after = DURATION }, found string",
            "F:5: service \"a\": key \"start_timeout\": start_timeout must be longer than 0",
            "F:9: service \"b\": key \"ready\": empty: set one of notify_fd, sd_notify or after",
            "F:13: service \"c\": key \"ready.sd_notify\": cannot be used together with \"ready.notify_fd\"",
            "F:18: service \"d\": unknown key \"ready.notfy_fd\" (did you mean \"ready.notify_fd\"?)",
            "F:22: service \"e\": key \"ready.notify_fd\": fd 2 is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)",
            "F:26: service \"f\": key \"ready.notify_fd\": fd 1024 is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)",
            "F:30: service \"g\": key \"ready.after\": after must be longer than 0",
            "F:39: service \"i\": key \"ready.after\": 15s must be shorter than start_timeout (10s)",
            "F:43: service \"j\": key \"ready.sd_notify\": expected true or false, found string",
        ]
    );
}

#[test]
fn every_check_form_and_key() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"

[[services.checks]]
exec = "test -e /tmp/ready"

[[services.checks]]
name = "argv"
exec = ["true", "--flag"]
level = "ready"
initial_delay = "500ms"
period = 2
timeout = "1s"
success_threshold = 2
failure_threshold = 5

[[services.checks]]
tcp = "127.0.0.1:5432"
on_failure = "stop"

[[services.checks]]
name = "v6"
tcp = "[::1]:6379"
on_failure = "shutdown"

[[services.checks]]
name = "local"
tcp = "localhost:80"
on_failure = "ignore"

[[services.checks]]
http = "http://127.0.0.1:8080/health?verbose=1#top"
on_failure = "restart"

[[services.checks]]
name = "plain"
http = "HTTP://localhost"

[[services.checks]]
name = "query"
http = "http://[::1]:81?q"
"#);
    let a = get(&c, "a");
    assert_eq!(
        a.checks,
        vec![
            check("exec", exec(&["/bin/sh", "-c", "test -e /tmp/ready"])),
            CheckSpec {
                level: Level::Ready,
                initial_delay: Duration::from_millis(500),
                period: Duration::from_secs(2),
                timeout: Duration::from_secs(1),
                success_threshold: 2,
                failure_threshold: 5,
                ..check("argv", exec(&["/usr/bin/true", "--flag"]))
            },
            CheckSpec {
                on_failure: OnFailure::Stop,
                ..check("tcp", tcp("127.0.0.1", 5432))
            },
            CheckSpec {
                on_failure: OnFailure::Shutdown,
                ..check("v6", tcp("::1", 6379))
            },
            CheckSpec {
                on_failure: OnFailure::Ignore,
                ..check("local", tcp("localhost", 80))
            },
            check("http", http("127.0.0.1", 8080, "/health?verbose=1")),
            check("plain", http("localhost", 80, "/")),
            check("query", http("::1", 81, "/?q")),
        ]
    );
    assert_eq!(a.ready, ReadyMode::Exec);
}

#[test]
fn checks_may_be_an_inline_array() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
checks = [{ tcp = "127.0.0.1:1" }, { tcp = "127.0.0.1:2", level = "ready" }]
"#);
    assert_eq!(
        get(&c, "a").checks,
        vec![
            check("tcp", tcp("127.0.0.1", 1)),
            CheckSpec {
                level: Level::Ready,
                ..check("tcp-2", tcp("127.0.0.1", 2))
            },
        ]
    );
}

#[test]
fn default_check_names_avoid_taken_ones() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
[[services.checks]]
exec = "true"
[[services.checks]]
name = "exec"
tcp = "127.0.0.1:1"
[[services.checks]]
tcp = "127.0.0.1:2"
[[services.checks]]
tcp = "127.0.0.1:3"
[[services.checks]]
http = "http://127.0.0.1:4/"
"#);
    let names: Vec<&str> = get(&c, "a")
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["exec-1", "exec", "tcp", "tcp-4", "http"]);
}

#[test]
fn check_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "https://127.0.0.1/health"
[[services.checks]]
http = "ftp://127.0.0.1/"
[[services.checks]]
http = "127.0.0.1/health"
[[services.checks]]
tcp = "127.0.0.1:0"
[[services.checks]]
tcp = "127.0.0.1:70000"
[[services.checks]]
tcp = "127.0.0.1:pg"
[[services.checks]]
tcp = "127.0.0.1"
[[services.checks]]
tcp = "::1:80"
[[services.checks]]
tcp = ":80"
[[services.checks]]
http = "http://user@host/"
[[services.checks]]
http = "http://host/a b"
[[services.checks]]
tcp = "[::g]:1"
[[services.checks]]
exec = ""
[[services.checks]]
exec = []
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].http\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
            "F:7: service \"a\": key \"checks[2].http\": bad URL \"ftp://127.0.0.1/\": only http:// is supported",
            "F:9: service \"a\": key \"checks[3].http\": bad URL \"127.0.0.1/health\": expected http://HOST[:PORT][/PATH]",
            "F:11: service \"a\": key \"checks[4].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:13: service \"a\": key \"checks[5].tcp\": bad address \"127.0.0.1:70000\": port 70000 is out of range (1 to 65535)",
            "F:15: service \"a\": key \"checks[6].tcp\": bad address \"127.0.0.1:pg\": bad port \"pg\"",
            "F:17: service \"a\": key \"checks[7].tcp\": bad address \"127.0.0.1\": expected HOST:PORT (an IPv6 address as [::1]:PORT)",
            "F:19: service \"a\": key \"checks[8].tcp\": bad address \"::1:80\": an IPv6 address needs brackets, like [::1]:8080",
            "F:21: service \"a\": key \"checks[9].tcp\": bad address \":80\": the host is empty",
            "F:23: service \"a\": key \"checks[10].http\": bad URL \"http://user@host/\": user info (user@host) is not supported",
            "F:25: service \"a\": key \"checks[11].http\": bad URL \"http://host/a b\": the path must not contain spaces or control characters (percent-encode them)",
            "F:27: service \"a\": key \"checks[12].tcp\": bad address \"[::g]:1\": \"::g\" is not an IPv6 address",
            "F:29: service \"a\": key \"checks[13].exec\": the command must not be empty",
            "F:31: service \"a\": key \"checks[14].exec\": the program must not be empty",
        ]
    );
}

#[test]
fn check_key_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
name = "ping"
exec = "true"
tcp = "127.0.0.1:1"
perod = 3
[[services.checks]]
name = "ping"
period = 0
timeout = "0"
success_threshold = 0
failure_threshold = 0
level = "live"
on_failure = "explode"
[[services.checks]]
name = "bad name"
level = "ready"
on_failure = "restart"
tcp = "127.0.0.1:1"
[[services.checks]]
initial_delay = "soon"
"#
        ),
        vec![
            "F:7: service \"a\": key \"checks[1].tcp\": cannot be used together with \"checks[1].exec\"",
            "F:8: service \"a\": unknown key \"checks[1].perod\" (did you mean \"checks[1].period\"?)",
            "F:10: service \"a\": key \"checks[2].name\": duplicate check name \"ping\" (also used by checks[1])",
            "F:11: service \"a\": key \"checks[2].period\": period must be at least 10ms",
            "F:12: service \"a\": key \"checks[2].timeout\": timeout must be at least 1ms",
            "F:13: service \"a\": key \"checks[2].success_threshold\": success_threshold must be at least 1",
            "F:14: service \"a\": key \"checks[2].failure_threshold\": failure_threshold must be at least 1",
            "F:15: service \"a\": key \"checks[2].level\": unknown level \"live\": use \"ready\" or \"alive\"",
            "F:16: service \"a\": key \"checks[2].on_failure\": unknown on_failure \"explode\": use \"restart\", \"stop\", \"shutdown\" or \"ignore\"",
            "F:18: service \"a\": key \"checks[3].name\": invalid check name \"bad name\": use only letters, digits, '_', '.' and '-'",
            "F:20: service \"a\": key \"checks[3].on_failure\": a ready check only gates readiness and its failures never act (start_timeout does): remove on_failure, or use level = \"alive\"",
            "F:23: service \"a\": key \"checks[4].initial_delay\": bad duration \"soon\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
        ]
    );
}

#[test]
fn check_shape_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
checks = { tcp = "127.0.0.1:1" }
[[services]]
name = "b"
command = "true"
checks = ["tcp"]
[[services]]
name = "c"
command = "true"
[[services.checks]]
period = 5
[[services]]
name = "d"
command = "true"
[[services.checks]]
name = "health_check"
tcp = "127.0.0.1:1"
[services.health_check]
command = "true"
"#
        ),
        vec![
            "F:4: service \"a\": key \"checks\": expected an array of tables ([[services.checks]]), found table",
            "F:8: service \"b\": key \"checks[1]\": expected a table, found string",
            "F:12: service \"c\": key \"checks[1]\": no probe: set one of exec, tcp or http",
            "F:18: service \"d\": key \"checks[1].name\": duplicate check name \"health_check\" (also used by health_check)",
        ]
    );
}

#[test]
fn checks_expand_variables_and_find_programs_like_command() {
    let s = Scratch::new();
    s.executable("bin/probe");
    let path = s.write(
        "p.toml",
        &r#"
[[services]]
name = "api"
command = "true"
instances = 2
env = { PATH = "DIR/bin:/usr/bin:/bin", PORT = "300${PIDONE_INSTANCE}" }
[[services.checks]]
exec = ["probe", "--port=${PORT}"]
[[services.checks]]
exec = "curl -f http://127.0.0.1:${PORT}/ $HOME"
[[services.checks]]
tcp = "127.0.0.1:${PORT}"
[[services.checks]]
http = "http://${HOST:-localhost}:${PORT}/health"
"#
        .replace("DIR", &s.dir.display().to_string()),
    );
    let c = load(&[path], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    let probe = s.dir.join("bin/probe").display().to_string();
    for i in 1..=2 {
        let port = 3000 + i;
        assert_eq!(
            get(&c, &format!("api-{i}")).checks,
            vec![
                check(
                    "exec",
                    Probe::Exec(vec![probe.clone(), format!("--port={port}")])
                ),
                check(
                    "exec-2",
                    Probe::Exec(vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        format!("curl -f http://127.0.0.1:{port}/ $HOME"),
                    ])
                ),
                check("tcp", tcp("127.0.0.1", port)),
                check("http", http("localhost", port, "/health")),
            ]
        );
    }
}

#[test]
fn check_problems_found_after_expansion() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
exec = ["no-such-program-xyz"]
[[services.checks]]
exec = ["/nonexistent/probe"]
[[services.checks]]
tcp = "${NO_HOST}:80"
[[services.checks]]
tcp = "127.0.0.1:${PORT:-0}"
[[services.checks]]
http = "${SCHEME:-https}://127.0.0.1/"
[[services]]
name = "off"
command = "true"
enabled = false
[[services.checks]]
exec = ["no-such-program-xyz"]
[[services.checks]]
tcp = "${NO_HOST}:80"
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].exec\": program \"no-such-program-xyz\" not found on PATH \"/usr/bin:/bin\"",
            "F:7: service \"a\": key \"checks[2].exec\": program \"/nonexistent/probe\" does not exist",
            "F:9: service \"a\": key \"checks[3].tcp\": undefined variable ${NO_HOST} (set it, or give a default: ${NO_HOST:-value})",
            "F:11: service \"a\": key \"checks[4].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:13: service \"a\": key \"checks[5].http\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
        ]
    );
}

#[test]
fn go_overlay_health_check_maps_to_one_alive_check() {
    let c = ok(r#"
[[services]]
name = "web"
command = "true"
[services.health_check]
endpoint = "http://localhost:8080/health"

[[services]]
name = "worker"
command = "true"
[services.health_check]
command = "pgrep worker"
interval = 5
retries = 2
timeout = "1s"
start_delay = 0

[[services]]
name = "both"
command = "true"
health_check = { endpoint = "http://127.0.0.1/", command = "false" }

[[services]]
name = "neither"
command = "true"
health_check = { interval = 3, endpoint = "", command = "" }

[[services]]
name = "zeros"
command = "true"
health_check = { command = "true", interval = 0, retries = 0, timeout = 0, start_delay = "2s" }

[[services]]
name = "mixed"
command = "true"
health_check = { command = "true" }
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
"#);
    let go = |probe: Probe| CheckSpec {
        initial_delay: Duration::from_secs(10),
        period: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        ..check("health_check", probe)
    };
    assert_eq!(
        get(&c, "web").checks,
        vec![go(http("localhost", 8080, "/health"))]
    );
    assert_eq!(
        get(&c, "worker").checks,
        vec![CheckSpec {
            period: Duration::from_secs(5),
            failure_threshold: 2,
            timeout: Duration::from_secs(1),
            ..go(exec(&["/bin/sh", "-c", "pgrep worker"]))
        }]
    );
    assert_eq!(get(&c, "both").checks, vec![go(http("127.0.0.1", 80, "/"))]);
    assert!(get(&c, "neither").checks.is_empty());
    assert_eq!(
        get(&c, "zeros").checks,
        vec![CheckSpec {
            initial_delay: Duration::from_secs(2),
            ..go(exec(&["/bin/sh", "-c", "true"]))
        }]
    );
    assert_eq!(
        get(&c, "mixed").checks,
        vec![
            CheckSpec {
                level: Level::Ready,
                ..check("tcp", tcp("127.0.0.1", 1))
            },
            go(exec(&["/bin/sh", "-c", "true"])),
        ]
    );
}

#[test]
fn go_overlay_health_check_acts_like_handle_unhealthy_service() {
    let c = ok(r#"
[[services]]
name = "default"
command = "true"
health_check = { command = "true" }
[[services]]
name = "always"
command = "true"
restart = "always"
health_check = { command = "true" }
[[services]]
name = "on-failure"
command = "true"
restart = "on-failure"
required = true
health_check = { command = "true" }
[[services]]
name = "required"
command = "true"
restart = "never"
required = true
health_check = { command = "true" }
[[services]]
name = "optional"
command = "true"
restart = "never"
health_check = { command = "true" }
"#);
    let action = |name: &str| get(&c, name).checks[0].on_failure;
    assert_eq!(action("default"), OnFailure::Restart);
    assert_eq!(action("always"), OnFailure::Restart);
    assert_eq!(action("on-failure"), OnFailure::Restart);
    assert_eq!(action("required"), OnFailure::Shutdown);
    assert_eq!(action("optional"), OnFailure::Ignore);
}

#[test]
fn health_check_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
health_check = "http://localhost/"
[[services]]
name = "b"
command = "true"
[services.health_check]
endpoint = "https://localhost/health"
intervall = 5
retries = -1
timeout = "soon"
command = ["true"]
"#
        ),
        vec![
            "F:4: service \"a\": key \"health_check\": expected a table ([services.health_check]), found string",
            "F:9: service \"b\": key \"health_check.endpoint\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
            "F:10: service \"b\": unknown key \"health_check.intervall\" (did you mean \"health_check.interval\"?)",
            "F:11: service \"b\": key \"health_check.retries\": -1 is not a count (expected 0 to 4294967295)",
            "F:12: service \"b\": key \"health_check.timeout\": bad duration \"soon\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
            "F:13: service \"b\": key \"health_check.command\": expected a string, found array",
        ]
    );
}

#[test]
fn a_ready_check_initial_delay_must_be_shorter_than_start_timeout() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
initial_delay = 60
[[services]]
name = "b"
command = "true"
start_timeout = "10s"
[[services.checks]]
initial_delay = "15s"
level = "ready"
exec = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
initial_delay = "2m"
[[services]]
name = "c"
command = "true"
start_timeout = 5
checks = [{ tcp = "127.0.0.1:1", level = "ready", initial_delay = "4999ms" }]
"#
        ),
        vec![
            "F:13: service \"b\": key \"checks[1].initial_delay\": 15s must be shorter than start_timeout (10s)",
        ]
    );
}

#[test]
fn a_program_or_shell_command_that_expands_to_nothing_is_refused() {
    assert_eq!(
        errs_with(
            r#"[[services]]
name = "a"
command = "${E}"
[[services]]
name = "b"
command = ["${E}", "x"]
pre_script = "${E}"
post_script = ["${E:-}"]
[[services]]
name = "c"
command = "true"
[[services.checks]]
exec = ["${E}", "x"]
[[services.checks]]
exec = "${E}"
[[services.checks]]
exec = " ${E} "
[[services.checks]]
exec = "${NOPE}"
[services.health_check]
command = "${E}"
[[services]]
name = "off"
command = "${E}"
enabled = false
[[services.checks]]
exec = "${E}"
"#,
            &[("E", "")]
        ),
        vec![
            "F:3: service \"a\": key \"command\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:6: service \"b\": key \"command\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:7: service \"b\": key \"pre_script\": the script must not be empty: \"${E}\" expands to \"\"",
            "F:8: service \"b\": key \"post_script\": the script must not be empty: \"${E:-}\" expands to \"\"",
            "F:13: service \"c\": key \"checks[1].exec\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:15: service \"c\": key \"checks[2].exec\": the command must not be empty: \"${E}\" expands to \"\"",
            "F:17: service \"c\": key \"checks[3].exec\": the command must not be empty: \" ${E} \" expands to \"  \"",
            "F:19: service \"c\": key \"checks[4].exec\": undefined variable ${NOPE} (set it, or give a default: ${NOPE:-value})",
            "F:21: service \"c\": key \"health_check.command\": the command must not be empty: \"${E}\" expands to \"\"",
        ]
    );
}

#[test]
fn nul_bytes_in_arguments_and_paths_are_refused() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = ["/bin/echo", "a\u0000b"]
args = ["\u0000"]
pre_script = "/bin/x\u0000"
post_script = ["/bin/true", "x", "\u0000"]
workdir = "/tmp\u0000"
env = { X = "a\u0000" }
[[services.checks]]
exec = ["/bin/echo", "a\u0000b"]
[[services.checks]]
exec = "echo \u0000"
[services.health_check]
command = "true\u0000"
[[services]]
name = "b"
command = "/bin/echo\u0000"
"#
        ),
        vec![
            "F:3: service \"a\": key \"command\": item 2 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:4: service \"a\": key \"args\": item 1 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:5: service \"a\": key \"pre_script\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:6: service \"a\": key \"post_script\": item 3 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:7: service \"a\": key \"workdir\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:8: service \"a\": key \"env\": value of X contains a NUL byte",
            "F:10: service \"a\": key \"checks[1].exec\": item 2 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:12: service \"a\": key \"checks[2].exec\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:14: service \"a\": key \"health_check.command\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:17: service \"b\": key \"command\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
        ]
    );
}

#[test]
fn conflicts_blame_the_key_written_second() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
exec = "true"
[[services]]
name = "b"
command = "true"
ready = { sd_notify = true, after = 5 }
[[services]]
name = "c"
command = "true"
[services.ready]
sd_notify = true
notify_fd = 3
[[services]]
name = "d"
command = "true"
post_script = "/bin/true"
pos_script = "/bin/true"
[[services]]
name = "e"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:0"
http = "http://127.0.0.1/"
"#
        ),
        vec![
            "F:6: service \"a\": key \"checks[1].exec\": cannot be used together with \"checks[1].tcp\"",
            "F:10: service \"b\": key \"ready.after\": cannot be used together with \"ready.sd_notify\"",
            "F:16: service \"c\": key \"ready.notify_fd\": cannot be used together with \"ready.sd_notify\"",
            "F:21: service \"d\": key \"pos_script\": cannot be used together with \"post_script\"",
            "F:26: service \"e\": key \"checks[1].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:27: service \"e\": key \"checks[1].http\": cannot be used together with \"checks[1].tcp\"",
        ]
    );
}

#[test]
fn check_periods_and_timeouts_have_a_floor() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
period = 1e-9
timeout = 0.0005
[[services.checks]]
tcp = "127.0.0.1:1"
period = "9ms"
[services.health_check]
command = "true"
interval = 0.001
timeout = 1e-9
[[services]]
name = "b"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
period = "10ms"
timeout = "1ms"
[services.health_check]
command = "true"
interval = 0.01
timeout = 0.001
"#
        ),
        vec![
            "F:6: service \"a\": key \"checks[1].period\": period must be at least 10ms",
            "F:7: service \"a\": key \"checks[1].timeout\": timeout must be at least 1ms",
            "F:10: service \"a\": key \"checks[2].period\": period must be at least 10ms",
            "F:13: service \"a\": key \"health_check.interval\": interval must be at least 10ms",
            "F:14: service \"a\": key \"health_check.timeout\": timeout must be at least 1ms",
        ]
    );
}

#[test]
fn durations_are_shown_exactly() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(10), "10s"),
        (Duration::from_secs(120), "120s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_millis(4250), "4.25s"),
        (Duration::from_micros(250), "250µs"),
        (Duration::from_micros(1500), "1500µs"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::new(2, 1_000), "2.000001s"),
    ];
    for (d, text) in cases {
        assert_eq!(format_duration(d), text, "{d:?}");
    }
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
start_timeout = 1.2
ready = { after = "1500ms" }
[[services]]
name = "b"
command = "true"
start_timeout = 0.0000005
ready = { after = 0.0000005 }
"#
        ),
        vec![
            "F:5: service \"a\": key \"ready.after\": 1.5s must be shorter than start_timeout (1.2s)",
            "F:10: service \"b\": key \"ready.after\": 500ns must be shorter than start_timeout (500ns)",
        ]
    );
}

#[test]
fn http_paths_must_be_sendable_as_written() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/caf\u00e9"
[[services.checks]]
http = "http://127.0.0.1/?q=100%"
[[services.checks]]
http = "http://127.0.0.1/a%2"
[[services.checks]]
http = "http://127.0.0.1/a%zz/b"
[services.health_check]
endpoint = "http://127.0.0.1/?q=\u00fc"
[[services]]
name = "b"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/a%2Fb?x=%e2%82%ac#frag%"
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].http\": bad URL \"http://127.0.0.1/café\": the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
            "F:7: service \"a\": key \"checks[2].http\": bad URL \"http://127.0.0.1/?q=100%\": bad percent escape \"%\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:9: service \"a\": key \"checks[3].http\": bad URL \"http://127.0.0.1/a%2\": bad percent escape \"%2\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:11: service \"a\": key \"checks[4].http\": bad URL \"http://127.0.0.1/a%zz/b\": bad percent escape \"%zz\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:13: service \"a\": key \"health_check.endpoint\": bad URL \"http://127.0.0.1/?q=ü\": the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
        ]
    );
}

#[test]
fn an_http_fragment_is_not_sent() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/a%2Fb?x=%e2%82%ac#frag%"
"#);
    assert_eq!(
        get(&c, "a").checks,
        vec![check("http", http("127.0.0.1", 80, "/a%2Fb?x=%e2%82%ac"))]
    );
}

#[test]
fn a_oneshot_has_no_readiness_or_checks() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
type = "oneshot"
ready = { notify_fd = 3 }
start_timeout = 5
[[services]]
name = "b"
command = "true"
oneshot = true
[[services.checks]]
tcp = "127.0.0.1:1"
[[services]]
name = "c"
command = "true"
oneshot = true
[services.health_check]
command = "true"
"#
        ),
        vec![
            "F:5: service \"a\": key \"ready\": a oneshot is up when it exits successfully; ready/checks do not apply",
            "F:6: service \"a\": key \"start_timeout\": a oneshot is up when it exits successfully; start_timeout does not apply",
            "F:11: service \"b\": key \"checks\": a oneshot is up when it exits successfully; ready/checks do not apply",
            "F:17: service \"c\": key \"health_check\": a oneshot is up when it exits successfully; ready/checks do not apply",
        ]
    );
}

#[test]
fn describe_shows_readiness_and_checks() {
    let c = ok(r#"
[[services]]
name = "db"
command = "true"
ready = { notify_fd = 3 }
start_timeout = 30
[[services.checks]]
name = "ping"
exec = ["true", "a b"]
on_failure = "shutdown"
[[services]]
name = "web"
command = "true"
depends_on = "db"
ready = { after = 2 }
[[services.checks]]
http = "http://[::1]:8080/health"
level = "ready"
period = "500ms"
[[services.checks]]
tcp = "127.0.0.1:8080"
"#);
    assert_eq!(
        describe(&c),
        "\
2 services (2 enabled), in start order:
  1. db   longrun  ready: notify_fd 3  start_timeout: 30s
     check ping (alive, on failure: shutdown): exec /usr/bin/true \"a b\" every 10s
  2. web  longrun  depends on: db  ready: after 2s
     check http (ready): GET http://[::1]:8080/health every 500ms
     check tcp (alive, on failure: restart): tcp 127.0.0.1:8080 every 10s
cgroup v2: not managed: no cgroups in unit tests
"
    );
}
