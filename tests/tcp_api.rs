//! Black-box tests of the API on TCP (`[api] listen`, `--listen`), asked with curl: the public
//! paths without a token, 401 and 403 for the rest, tokens re-read on reload and never printed,
//! a bad token file or a taken port refused at start (exit 2) and at reload (old configuration
//! kept), and slow or garbage clients on the port while a crashing service keeps being restarted.
//! Needs root, util-linux (`unshare`) and curl.

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;

use support::*;

/// `curl -s URL` with `args` before it; returns the status code and the body.
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// `curl` with `Authorization: Bearer TOKEN`.
fn curl_as(token: &str, url: &str, args: &[&str]) -> (u16, String) {
    let header = format!("Authorization: Bearer {token}");
    let mut all = vec!["-H", &header];
    all.extend_from_slice(args);
    curl(url, &all)
}

/// A config serving the API on `port` with a full and a read token (files in the dir), a
/// longrun `web` and `extra` appended.
fn config(port: u16, extra: &str) -> String {
    format!(
        "[api]\nlisten = [\"127.0.0.1:{port}\"]\ntoken_file = \"@D/token\"\n\
         read_token_file = \"@D/read-token\"\n\n[[services]]\nname = \"web\"\ncommand = {}\n{extra}",
        longrun("web")
    )
}

/// A dir holding the two token files.
fn dir_with_tokens() -> Dir {
    let dir = Dir::new();
    dir.write("token", "full-s3cret-token\n");
    dir.write("read-token", "read-s3cret-token\n");
    dir
}

fn public_paths_need_no_token_and_the_rest_the_right_one(mode: Mode) {
    let port = free_port();
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, ""));
    d.wait_running("web");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    for path in ["/livez", "/readyz", "/metrics"] {
        let (code, body) = curl(&url(path), &[]);
        assert_eq!(code, 200, "GET {path} without a token: {body}");
    }
    assert!(curl(&url("/metrics"), &[]).1.contains("pidone_service_up"));
    let (code, body) = curl(&url("/v1/services"), &[]);
    assert_eq!(code, 401, "no token: {body}");
    let (code, _) = curl_as("full-s3cret-tokeN", &url("/v1/services"), &[]);
    assert_eq!(code, 401, "a wrong token");
    let (code, body) = curl_as("read-s3cret-token", &url("/v1/services"), &[]);
    assert_eq!(code, 200, "the read token may GET: {body}");
    assert!(body.contains("\"web\""), "{body}");
    let restart = url("/v1/services/web/restart");
    let (code, body) = curl_as("read-s3cret-token", &restart, &["-X", "POST"]);
    assert_eq!(code, 403, "the read token may not POST: {body}");
    let (code, body) = curl(&url("/livez"), &["-X", "POST"]);
    assert_eq!(code, 401, "a public path is public for GET only: {body}");
    let pid = d.pid("web");
    let (code, body) = curl_as("full-s3cret-token", &restart, &["-X", "POST"]);
    assert_eq!(code, 200, "the full token may act: {body}");
    d.wait_running_pid("web", pid);

    // Reload: the token files are read again, the old tokens stop working.
    d.dir.write("token", "new-full-token");
    d.ok(&["reload"]);
    let (code, _) = curl_as("full-s3cret-token", &url("/v1/services"), &[]);
    assert_eq!(code, 401, "the old token after a reload");
    let (code, _) = curl_as("new-full-token", &url("/v1/services"), &[]);
    assert_eq!(code, 200, "the new token after a reload");

    // `public = []`: nothing is public any more.
    let text = config(port, "").replace("[api]\n", "[api]\npublic = []\n");
    d.dir.write("pidone.toml", &text);
    d.ok(&["reload"]);
    assert_eq!(curl(&url("/livez"), &[]).0, 401);
    assert_eq!(curl_as("read-s3cret-token", &url("/livez"), &[]).0, 200);

    let printed = d.run.stdout() + &d.run.stderr();
    let status = d.ok(&["status", "--json"]).stdout;
    for token in ["s3cret", "new-full-token"] {
        assert!(!printed.contains(token), "a token in pidone's output");
        assert!(!status.contains(token), "a token in status");
    }
    d.terminate();
}

fn without_a_token_file_only_public_paths_are_served(mode: Mode) {
    let port = free_port();
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n",
            longrun("web")
        ),
    );
    let socket = dir.join("run/ctl.sock");
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--socket",
        socket.to_str().expect("UTF-8"),
        "--config",
        &config,
    ];
    let mut run = Pidone::start(
        mode,
        &dir,
        &[&args[..], &["--listen", &listen]].concat(),
        &[],
    );
    let url = |path: &str| format!("http://{listen}{path}");
    run.wait_for("/livez on TCP", |_| curl(&url("/livez"), &[]).0 == 200);
    assert_eq!(curl(&url("/metrics"), &[]).0, 200);
    let (code, body) = curl(&url("/v1/services"), &[]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("token_file"), "says why: {body}");
    let (code, _) = curl_as("anything", &url("/v1/services"), &[]);
    assert_eq!(code, 401);
    let (code, _) = curl(&url("/v1/shutdown"), &["-X", "POST"]);
    assert_eq!(code, 401);
    assert!(run.is_running());
}

fn a_bad_token_file_or_a_taken_port_is_refused_at_start(mode: Mode) {
    // A missing token file.
    let dir = dir_with_tokens();
    let port = free_port();
    let text = config(port, "").replace("@D/read-token", "@D/missing");
    let path = dir.write("pidone.toml", &text);
    let out = Pidone::start_config(mode, &dir, &path, &[]).wait();
    out.assert_code(2, "a missing read_token_file");
    assert!(out.stderr.contains("api.read_token_file"), "{}", out.stderr);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);

    // A token file that is not one word, without its text in the error.
    dir.write("read-token", "two words-s3cret\n");
    let path = dir.write("pidone.toml", &config(port, ""));
    let out = Pidone::start_config(mode, &dir, &path, &[]).wait();
    out.assert_code(2, "a token file holding two words");
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);

    // A port in use.
    dir.write("read-token", "read-s3cret-token\n");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let path = dir.write("pidone.toml", &config(port, ""));
    let out = Pidone::start_config(mode, &dir, &path, &[]).wait();
    out.assert_code(2, "a port in use");
    assert!(out.stderr.contains("api.listen"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    let listen = format!("127.0.0.1:{port}");
    let out = Pidone::start_config(mode, &dir, &path, &["--listen", &listen]).wait();
    out.assert_code(2, "--listen on a port in use");
    assert!(out.stderr.contains("--listen"), "{}", out.stderr);
}

fn a_bad_api_section_at_reload_keeps_the_old_one(mode: Mode) {
    let port = free_port();
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, ""));
    d.wait_running("web");
    let url = format!("http://127.0.0.1:{port}/v1/services");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other = taken.local_addr().expect("addr").port();
    let text = config(port, "").replace(
        &format!("\"127.0.0.1:{port}\"]"),
        &format!("\"127.0.0.1:{port}\", \"127.0.0.1:{other}\"]"),
    );
    d.dir.write("pidone.toml", &text);
    let (code, text) = d.client(&["reload"]).code_text();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("127.0.0.1:{other}")), "{text}");
    d.dir.write("token", "");
    d.dir.write("pidone.toml", &config(port, ""));
    let (code, text) = d.client(&["reload"]).code_text();
    assert_eq!(code, 1, "an empty token file: {text}");
    assert!(text.contains("api.token_file"), "{text}");
    let (code, _) = curl_as("full-s3cret-token", &url, &[]);
    assert_eq!(code, 200, "the old token still works");
    // Once free, the new address is served.
    drop(taken);
    d.dir.write("token", "full-s3cret-token");
    d.dir.write("pidone.toml", &text_with(port, other));
    d.ok(&["reload"]);
    let (code, _) = curl(&format!("http://127.0.0.1:{other}/livez"), &[]);
    assert_eq!(code, 200, "the added address");
    d.terminate();
}

/// [`config`] listening on two ports.
fn text_with(port: u16, other: u16) -> String {
    config(port, "").replace(
        &format!("\"127.0.0.1:{port}\"]"),
        &format!("\"127.0.0.1:{port}\", \"127.0.0.1:{other}\"]"),
    )
}

fn slow_and_garbage_clients_on_tcp_do_not_stall_supervision(mode: Mode) {
    let port = free_port();
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, &crasher("clock")));
    d.wait_running("web");
    let addr = format!("127.0.0.1:{port}");
    // Slowloris: many connections each sending a request one byte at a time, far beyond the
    // connection cap; and garbage on more.
    let mut slow: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    let garbage: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(&addr) else {
                    return Vec::new();
                };
                let bytes: Vec<u8> = (0..1u32 << 18).map(|n| (n * 7 + i) as u8).collect();
                let _ = stream.write_all(&bytes);
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                answer
            })
        })
        .collect();
    let restarts = d.service("clock")["restarts"].as_u64().expect("restarts");
    for byte in b"GET /v1/services HTTP/1.1\r\n" {
        for s in &mut slow {
            let _ = s.write_all(&[*byte]);
        }
        d.wait_crashes("clock", 1);
    }
    d.wait_crashes("clock", 3);
    for answer in garbage.into_iter().map(|g| g.join().expect("thread")) {
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 4"),
            "{text:.80}"
        );
    }
    let after = d.service("clock")["restarts"].as_u64().expect("restarts");
    assert!(
        after >= restarts + 5,
        "clock restarted {restarts} -> {after}"
    );
    d.run.wait_for("/livez on TCP", |_| {
        curl(&format!("http://{addr}/livez"), &[]).0 == 200
    });
    drop(slow);
    assert_eq!(d.state("web"), "running");
    d.terminate();
}

in_both_modes!(
    public_paths_need_no_token_and_the_rest_the_right_one,
    without_a_token_file_only_public_paths_are_served,
    a_bad_token_file_or_a_taken_port_is_refused_at_start,
    a_bad_api_section_at_reload_keeps_the_old_one,
    slow_and_garbage_clients_on_tcp_do_not_stall_supervision,
);

/// `pidone --url URL ARGS...` (the client) with `env`, to completion.
fn remote(url: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = Command::new(pidone())
        .args(["--url", url])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PIDONE_SOCKET")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the client");
    Out::from(out)
}

fn the_client_works_remotely_with_the_same_exit_codes(mode: Mode) {
    let port = free_port();
    let ticker = "[[services]]\nname = \"ticker\"\n\
                  command = [\"/bin/sh\", \"-c\", \"while :; do echo tick; sleep 0.1; done\"]\n";
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, ticker));
    d.wait_running("web");
    let url = format!("http://127.0.0.1:{port}");
    let (full, read) = (d.dir.join("token"), d.dir.join("read-token"));
    let (full, read) = (full.to_str().expect("UTF-8"), read.to_str().expect("UTF-8"));

    let out = remote(&url, &["--token-file", read, "status"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("web") && out.stdout.contains("running"),
        "{out:?}"
    );
    let out = remote(&url, &["check", "--live"], &[]);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, "live"),
        "public, no token"
    );
    assert_eq!(remote(&url, &["check"], &[]).code, 0, "/readyz is public");
    let (code, text) = remote(&url, &["status"], &[]).code_text();
    assert_eq!(code, 1, "no token: {text}");
    assert!(text.contains("token"), "{text}");
    let (code, text) = remote(&url, &["--token-file", read, "restart", "web"], &[]).code_text();
    assert_eq!(code, 1, "the read token may not restart: {text}");
    assert!(text.contains("read token"), "{text}");

    let pid = d.pid("web");
    let env = [("PIDONE_URL", url.as_str()), ("PIDONE_TOKEN_FILE", full)];
    let out = Command::new(pidone())
        .args(["restart", "web"])
        .envs(env)
        .output()
        .expect("client");
    assert!(out.status.success(), "restart by PIDONE_URL: {out:?}");
    assert_ne!(d.pid("web"), pid, "restarted (and waited for)");

    // logs -f over TCP: lines keep coming.
    let args = ["--url", &url, "--token-file", read];
    follow_lines(
        &[&args[..], &["logs", "-f", "-n", "1", "ticker"]].concat(),
        "tick",
        3,
    );

    // Nobody there: 3, as on the socket; a URL pidone cannot use: 2.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    assert_eq!(remote(&nobody, &["status"], &[]).code, 3);
    assert_eq!(remote("ftp://127.0.0.1:1", &["status"], &[]).code, 2);
    let missing = remote(&url, &["--token-file", "/nonexistent", "status"], &[]);
    assert_eq!(missing.code, 2, "{missing:?}");
    d.terminate();
}

in_both_modes!(the_client_works_remotely_with_the_same_exit_codes);

/// The JSON lines of `text`.
fn events_of(text: &str) -> Vec<serde_json::Value> {
    (text.lines())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn events_are_streamed_on_the_socket_and_on_tcp(mode: Mode) {
    let port = free_port();
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, &crasher("clock")));
    d.wait_running("web");
    d.wait_crashes("clock", 2);
    let kept = events_of(&d.ok(&["events", "--json"]).stdout);
    let seqs: Vec<u64> = kept.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), kept.len(), "every event has its number");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(
        kept.iter()
            .all(|e| e["time"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    let of = |kind: &str, name: &str| {
        let kept = &kept;
        kept.iter()
            .any(move |e| e["type"] == kind && e["service"] == name)
    };
    assert!(
        of("state", "web") && of("exit", "clock") && of("restart", "clock"),
        "{kept:?}"
    );
    let human = d.ok(&["events"]).stdout;
    assert!(human.contains("web: starting -> running"), "{human}");

    // ?since=SEQ replays what came after.
    let last = *seqs.last().expect("events");
    let url = format!("http://127.0.0.1:{port}/v1/events");
    let (code, body) = curl_as("read-s3cret-token", &format!("{url}?since={last}"), &[]);
    assert_eq!(code, 200);
    assert!(
        events_of(&body)
            .iter()
            .all(|e| e["seq"].as_u64() > Some(last)),
        "{body}"
    );
    assert_eq!(curl(&url, &[]).0, 401, "not a public path");

    // Following on TCP: new events as they happen, a reload and the shutdown among them.
    let mut follow = Command::new("curl")
        .args(["-sN", "-H", "Authorization: Bearer read-s3cret-token"])
        .arg(format!("{url}?follow=true&since={last}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut lines = std::io::BufReader::new(follow.stdout.take().expect("stdout"));
    let mut next = || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut lines, &mut line).expect("read");
        serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let mut seen = last;
    let mut wait_for = |kind: &str| loop {
        let event = next();
        let seq = event["seq"].as_u64().expect("seq");
        assert_eq!(seq, seen + 1, "no gap: {event}");
        seen = seq;
        if event["type"] == kind {
            return event;
        }
    };
    assert_eq!(wait_for("restart")["service"], "clock");
    d.ok(&["reload"]);
    let reload = wait_for("reload");
    assert!(
        reload["reload"]["unchanged"].as_array().is_some(),
        "{reload}"
    );
    d.client(&["shutdown"]);
    wait_for("shutdown");
    let _ = follow.kill();
    let _ = follow.wait();
    d.run.wait();
}

in_both_modes!(events_are_streamed_on_the_socket_and_on_tcp);

/// Prometheus' own parser (the Python client's), installed with pip when missing.
fn prometheus_parse(text: &str) -> serde_json::Value {
    let importable = || {
        Command::new(python())
            .args(["-c", "import prometheus_client"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !importable() {
        let pip = ["-m", "pip", "install", "--quiet", "--break-system-packages"];
        let _ = Command::new(python())
            .args(pip)
            .arg("prometheus_client")
            .status();
    }
    assert!(
        importable(),
        "prometheus_client: pip install prometheus_client"
    );
    let mut child = Command::new(python())
        .arg(helper("prom_parse.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("parse");
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the parser refused the metrics: {error}\n{text}"
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn metrics_are_valid_for_prometheus_and_count_what_processes_use(mode: Mode) {
    let port = free_port();
    let check = "[[services.checks]]\nname = \"up\"\nexec = \"true\"\nperiod = \"200ms\"\n";
    let extra = format!("{check}{}", crasher("clock"));
    let mut d = Daemon::start_in(mode, dir_with_tokens(), &config(port, &extra));
    d.wait_running("web");
    d.wait_service("web", "its check to pass", |s| {
        s["checks"][0]["status"] == "passing"
    });
    d.wait_crashes("clock", 1);
    let (code, text) = curl(&format!("http://127.0.0.1:{port}/metrics"), &[]);
    assert_eq!(code, 200);
    let families = prometheus_parse(&text);
    let family = |name: &str| {
        families
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in:\n{text}"))
            .clone()
    };
    let value = |name: &str, service: Option<&str>| -> f64 {
        let samples = family(name)["samples"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let sample = samples
            .iter()
            .find(|s| service.is_none_or(|n| s[1]["service"] == n));
        sample
            .and_then(|s| s[2].as_f64())
            .unwrap_or_else(|| panic!("{name} {service:?}"))
    };
    assert_eq!(family("pidone_service_cpu_seconds")["type"], "counter");
    assert!(value("pidone_service_cpu_seconds", Some("web")) >= 0.0);
    assert!(value("pidone_service_resident_memory_bytes", Some("web")) > 0.0);
    assert!(value("pidone_service_open_fds", Some("web")) >= 3.0);
    assert!(value("pidone_resident_memory_bytes", None) > 0.0);
    assert!(value("pidone_open_fds", None) >= 3.0);
    assert!(value("pidone_loop_wakeups", None) > 0.0);
    assert!(value("pidone_check_duration_seconds", Some("web")) >= 0.0);
    assert!(value("pidone_log_lines", Some("web")) >= 0.0);
    assert!(value("pidone_service_restarts", Some("clock")) >= 1.0);
    // The same text on the socket.
    assert!(d.metrics().contains("# TYPE pidone_service_open_fds gauge"));
    // The check's change of status is an event too.
    let events = events_of(&d.ok(&["events", "--json"]).stdout);
    let passed = |e: &&serde_json::Value| e["type"] == "check" && e["check"] == "up";
    let event = events.iter().find(passed).expect("a check event");
    assert_eq!(
        (&event["service"], &event["state"]),
        (&"web".into(), &"passing".into())
    );
    d.terminate();
}

in_both_modes!(metrics_are_valid_for_prometheus_and_count_what_processes_use);
