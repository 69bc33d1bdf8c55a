//! Black-box tests of groups and name patterns (issue 18): `groups = [...]` on services, and the
//! client and the API taking `@group`, glob patterns and a service's name for all its instances
//! wherever they take a name (start, stop, restart, signal, status, logs), and
//! `GET /v1/services?group=&match=`. A word that names nothing is an error that changes nothing.
//! A real pidone supervising small `/bin/sh` services, asked through the unix socket with the
//! built-in client and raw HTTP, and once on TCP. Needs root and util-linux.

#[macro_use]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;
use support::*;

in_both_modes!(the_client_acts_on_groups_patterns_and_instances);

/// db and worker in `backend`, web's two instances in `frontend` (and worker in both), cron in
/// none.
fn stack() -> String {
    format!(
        r#"
[[services]]
name = "db"
groups = ["backend"]
command = {db}

[[services]]
name = "worker"
groups = ["backend", "frontend"]
command = {worker}

[[services]]
name = "web"
instances = 2
groups = "frontend"
command = {web}

[[services]]
name = "cron"
command = {cron}
"#,
        db = longrun("db"),
        worker = longrun("worker"),
        web = longrun("web-${PIDONE_INSTANCE}"),
        cron = longrun("cron"),
    )
}

const ALL: [&str; 5] = ["db", "worker", "web-1", "web-2", "cron"];

fn started(mode: Mode) -> Daemon {
    let mut d = Daemon::start(mode, &stack());
    for name in ALL {
        d.wait_running(name);
    }
    d
}

/// Each service's state and pid.
fn snapshot(d: &Daemon) -> Vec<(String, Value, Value)> {
    (d.services().into_iter())
        .map(|s| (s["name"].to_string(), s["state"].clone(), s["pid"].clone()))
        .collect()
}

fn the_client_acts_on_groups_patterns_and_instances(mode: Mode) {
    let mut d = started(mode);
    let pids: Vec<i64> = ALL.iter().map(|n| d.pid(n).expect("a pid")).collect();

    d.ok(&["stop", "@backend"]);
    for name in ["db", "worker"] {
        assert_eq!(d.state(name), "stopped", "{name} after stop @backend");
    }
    for name in ["web-1", "web-2", "cron"] {
        assert_eq!(d.state(name), "running", "{name} after stop @backend");
    }
    d.ok(&["start", "@backend"]);
    for name in ["db", "worker"] {
        assert_eq!(d.state(name), "running", "{name} after start @backend");
    }

    // The client waits until each instance runs again with a new process.
    d.ok(&["restart", "web-*"]);
    for (name, old) in [("web-1", pids[2]), ("web-2", pids[3])] {
        let pid = d.pid(name).expect("running");
        assert_ne!(pid, old, "{name} restarted");
    }
    assert_eq!(d.pid("cron"), Some(pids[4]), "cron left alone");

    // The name of a service with instances names them all.
    d.ok(&["stop", "web"]);
    assert_eq!(
        (d.state("web-1"), d.state("web-2")),
        ("stopped".into(), "stopped".into())
    );
    d.ok(&["start", "web-[12]"]);
    assert_eq!(
        (d.state("web-1"), d.state("web-2")),
        ("running".into(), "running".into())
    );

    let out = d.ok(&["status", "@frontend"]);
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert!(rows[0].contains("GROUPS"), "{}", out.stdout);
    let names: Vec<&str> = (rows[1..].iter())
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert_eq!(names, ["worker", "web-1", "web-2"], "{}", out.stdout);
    assert!(rows[1].contains("backend,frontend"), "{}", out.stdout);
    let out = d.ok(&["status", "--json", "?????", "db"]);
    let list: Vec<Value> = serde_json::from_str(&out.stdout).expect("JSON");
    let seen: Vec<(&str, Value)> = (list.iter())
        .map(|s| (s["name"].as_str().unwrap_or_default(), s["groups"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("web-1", serde_json::json!(["frontend"])),
            ("web-2", serde_json::json!(["frontend"])),
            ("db", serde_json::json!(["backend"])),
        ]
    );

    d.ok(&["signal", "@backend", "USR1"]);
    for name in ["db", "worker"] {
        let dir = &d.dir;
        d.run.wait_for(&format!("{name} to get USR1"), |_| {
            !dir.read(&format!("{name}.usr1")).is_empty()
        });
    }
    assert!(!d.dir.exists("cron.usr1"), "cron got no signal");
    d.terminate();
}

/// Words that name nothing, malformed patterns: refused with a clear message, and nothing is
/// done, not even for the other words of the same command.
#[test]
fn a_word_that_names_nothing_changes_nothing() {
    let d = started(Mode::Child);
    let before = snapshot(&d);
    let refused = [
        (
            vec!["stop", "@nope"],
            "no service is in group \"nope\"; groups: backend, frontend",
        ),
        (
            vec!["stop", "db", "api-*"],
            "no service matches \"api-*\"; known: db, worker, web-1, web-2, cron",
        ),
        (
            vec!["restart", "@backend", "nope"],
            "unknown service \"nope\"",
        ),
        (
            vec!["start", "web-[1"],
            "bad pattern \"web-[1\": '[' without its ']'",
        ),
        (vec!["signal", "zz*", "HUP"], "no service matches \"zz*\""),
        (vec!["status", "@nope"], "no service is in group \"nope\""),
        (vec!["logs", "@nope"], "no service is in group \"nope\""),
    ];
    for (args, message) in refused {
        let out = d.client(&args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(snapshot(&d), before, "{args:?} changed something");
    }
    // A literal name behaves as it always did.
    let out = d.client(&["stop", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unknown service \"nope\"; known: db"),
        "{}",
        out.stderr
    );
    d.terminate();
}

/// `GET /v1/services?group=&match=`, and the acting paths with a group or a pattern,
/// percent-encoded, answered with the list of services they acted on.
#[test]
fn the_api_filters_and_acts_on_groups_and_patterns() {
    let d = started(Mode::Child);
    let listed = |target: &str| -> (u16, Vec<String>) {
        let (status, body) = get(&d.socket, target).expect("an answer");
        let list: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let names = list
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_string());
        (status, names.collect())
    };
    assert_eq!(
        listed("/v1/services?group=backend"),
        (200, vec!["db".into(), "worker".into()])
    );
    assert_eq!(
        listed("/v1/services?match=web-*"),
        (200, vec!["web-1".into(), "web-2".into()])
    );
    assert_eq!(
        listed("/v1/services?group=frontend&match=w%3Fr*"),
        (200, vec!["worker".into()])
    );
    assert_eq!(
        listed("/v1/services?names=cron,%40backend"),
        (200, vec!["cron".into(), "db".into(), "worker".into()])
    );
    let (status, body) = get(&d.socket, "/v1/services?group=nope").expect("an answer");
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&d.socket, "/v1/services?match=x*").expect("an answer");
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&d.socket, "/v1/services?match=web-%5B").expect("an answer");
    assert_eq!(status, 400, "{body}");

    let before = snapshot(&d);
    let post = |target: &str| {
        let request = format!("POST {target} HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        exchange(&d.socket, request.as_bytes()).expect("an answer")
    };
    let (status, body) = post("/v1/services/%40nope/stop");
    assert_eq!(status, 404, "{body}");
    assert_eq!(snapshot(&d), before, "a refused stop changed something");
    let (status, body) = post("/v1/services/web-%3F/stop");
    assert_eq!(status, 200, "{body}");
    let list: Vec<Value> = serde_json::from_str(&body).expect("a list");
    let names: Vec<&str> = list.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["web-1", "web-2"]);
    // A name answers with the service alone, as it always did.
    let (status, body) = post("/v1/services/cron/stop");
    assert_eq!(status, 200, "{body}");
    let cron: Value = serde_json::from_str(&body).expect("an object");
    assert_eq!(cron["name"], "cron");
    let (status, body) =
        get(&d.socket, "/v1/services/%40backend/logs?follow=true").expect("an answer");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("takes one service"), "{body}");
    d.terminate();
}

/// `pidone logs @group` prints each service's lines prefixed with its name; with `-f` it follows
/// them all at once.
#[test]
fn logs_of_a_group_are_merged_and_followed() {
    let talker = |name: &str| {
        format!(
            r#"["/bin/sh", "-c", "echo hello from {name}; while [ ! -e @D/{name}.more ]; do sleep 0.05; done; echo more from {name}; exec sleep 1000"]"#
        )
    };
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"a\"\ngroups = [\"talk\"]\ncommand = {}\n\
             [[services]]\nname = \"b\"\ngroups = [\"talk\"]\ncommand = {}\n\
             [[services]]\nname = \"quiet\"\ncommand = {}\n",
            talker("a"),
            talker("b"),
            talker("quiet")
        ),
    );
    let socket = d.socket.clone();
    d.run.wait_for("a and b to say hello", |_| {
        let lines = |name: &str| {
            let target = format!("/v1/services/{name}/logs");
            get(&socket, &target).is_some_and(|(_, body)| body.contains("hello"))
        };
        lines("a") && lines("b")
    });
    let out = d.ok(&["logs", "@talk"]);
    assert_eq!(out.stdout, "[a] hello from a\n[b] hello from b\n");

    let mut follower = Command::new(pidone())
        .args([
            "--socket",
            d.socket.to_str().expect("UTF-8"),
            "logs",
            "-f",
            "-n",
            "1",
            "@talk",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the follower");
    let stdout = follower.stdout.take().expect("its stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<String>| match rx.recv_timeout(DEADLINE) {
        Ok(line) => seen.push(line),
        Err(err) => panic!("the follower said no more ({err}); so far: {seen:?}"),
    };
    while seen.len() < 2 {
        next(&mut seen);
    }
    seen.sort();
    assert_eq!(seen, ["[a] hello from a", "[b] hello from b"]);
    for name in ["a", "b", "quiet"] {
        d.dir.write(&format!("{name}.more"), "");
    }
    let mut more = Vec::new();
    while more.len() < 2 {
        next(&mut more);
    }
    more.sort();
    assert_eq!(more, ["[a] more from a", "[b] more from b"]);
    let _ = follower.kill();
    let _ = follower.wait();
    d.terminate();
}

/// On TCP, with the full token, the client's `--url` takes groups and patterns as the socket
/// does.
#[test]
fn groups_work_remotely_with_the_full_token() {
    let port = free_port();
    let dir = Dir::new();
    dir.write("token", "full-s3cret-token\n");
    let config = format!(
        "[api]\nlisten = [\"127.0.0.1:{port}\"]\ntoken_file = \"@D/token\"\n{}",
        stack()
    );
    let mut d = Daemon::start_in(Mode::Child, dir, &config);
    for name in ALL {
        d.wait_running(name);
    }
    let remote = |args: &[&str]| -> Out {
        let url = format!("http://127.0.0.1:{port}");
        let token = d.dir.join("token");
        let out = Command::new(pidone())
            .args([
                "--url",
                &url,
                "--token-file",
                token.to_str().expect("UTF-8"),
            ])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run the client");
        Out::from(out)
    };
    let out = remote(&["stop", "@backend"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        (d.state("db"), d.state("worker")),
        ("stopped".into(), "stopped".into())
    );
    let out = remote(&["status", "web-?"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    let out = remote(&["restart", "@nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("no service is in group \"nope\""),
        "{}",
        out.stderr
    );
    d.terminate();
}
