//! Black-box tests of `/v1/health` and `/metrics`: 503 naming a failed (or required and failed)
//! service, 200 once all are up, and metrics that parse as Prometheus text. pidone runs as a plain
//! child. Needs root.

#[macro_use]
mod support;

use std::io::Read;

use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------------------------
// health and metrics

#[test]
fn health_is_503_naming_a_failed_service_and_200_when_all_are_up() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "web"
command = {web}

[[services]]
name = "flaky"
restart = "never"
command = ["/bin/sh", "-c", "while [ ! -e @D/die ]; do sleep 0.01; done; exit 3"]

[[services]]
name = "once"
type = "oneshot"
command = ["/bin/true"]
"#,
            web = longrun("web"),
        ),
    );
    let out = d.client(&["wait", "--timeout", "20s"]);
    assert_eq!(out.code, 0, "wait until every service is up: {out:?}");
    let (status, body) = get(&d.socket, "/v1/health").expect("an answer");
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["healthy"], true, "{body}");
    let out = d.ok(&["check"]);
    assert_eq!(out.stdout.trim(), "healthy");

    d.dir.write("die", "");
    d.wait_state("flaky", "failed");
    let (status, body) = get(&d.socket, "/v1/health").expect("an answer");
    assert_eq!(status, 503, "{body}");
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["healthy"], false, "{body}");
    let problems = health["problems"].as_array().expect("problems");
    assert!(
        problems.len() == 1 && problems[0].as_str().is_some_and(|p| p.contains("flaky")),
        "exactly one problem, naming flaky: {body}"
    );
    let out = d.client(&["check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("flaky"), "check says why: {out:?}");
    let reason = d.service("flaky")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains('3'),
        "the reason gives the exit code: {reason:?}"
    );
    assert!(
        d.run.is_running(),
        "a non-required failure does not stop pidone"
    );

    // Started again, it is up again, and so is health.
    std::fs::remove_file(d.dir.join("die")).expect("remove trigger");
    d.ok(&["start", "flaky"]);
    let socket = d.socket.clone();
    d.run.wait_for("health to be 200 again", |_| {
        get(&socket, "/v1/health").is_some_and(|(status, _)| status == 200)
    });
}

/// A metric's name, its labels and its value.
type Sample = (String, Vec<(String, String)>, f64);

/// One sample line of the Prometheus text format: `name{labels} value`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let (series, value) = line.rsplit_once(' ').ok_or("no value")?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, Some(rest.strip_suffix('}').ok_or("unclosed {")?)),
        None => (series, None),
    };
    let valid_name = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid_name {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut pairs = Vec::new();
    for pair in labels
        .into_iter()
        .flat_map(|l| l.split(','))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').ok_or("label without =")?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or("unquoted label value")?;
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {k:?}"));
        }
        pairs.push((k.to_string(), v.to_string()));
    }
    Ok((name.to_string(), pairs, value))
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "web"
command = {web}

[[services]]
name = "broken"
restart = "never"
command = ["/bin/sh", "-c", "exit 3"]
{clock}"#,
            web = longrun("web"),
            clock = crasher("clock"),
        ),
    );
    d.wait_running("web");
    d.wait_state("broken", "failed");
    d.wait_crashes("clock", 2);
    let mut stream = send_get(&d.socket, "/metrics");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let raw = String::from_utf8(raw).expect("metrics are UTF-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let mut samples = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert!(
                    words.len() == 3
                        && ["counter", "gauge", "histogram", "summary", "untyped"]
                            .contains(&words[2]),
                    "bad TYPE line {line:?}"
                );
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|e| panic!("{line:?}: {e}\n{body}"));
        samples.push(sample);
    }
    let value = |name: &str, service: Option<&str>| -> f64 {
        samples
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && service.is_none_or(|s| labels.iter().any(|(k, v)| k == "service" && v == s))
            })
            .unwrap_or_else(|| panic!("no {name} for {service:?} in\n{body}"))
            .2
    };
    assert_eq!(value("pidone_service_up", Some("web")), 1.0);
    assert_eq!(value("pidone_service_up", Some("broken")), 0.0);
    assert_eq!(value("pidone_service_last_exit_code", Some("broken")), 3.0);
    assert!(value("pidone_service_restarts_total", Some("clock")) >= 1.0);
    assert_eq!(value("pidone_service_restarts_total", Some("web")), 0.0);
    assert!(value("pidone_uptime_seconds", None) >= 0.0);
    assert!(value("pidone_orphans_reaped_total", None) >= 0.0);
    // Exactly one current state per service.
    for service in ["web", "broken", "clock"] {
        let current: Vec<&str> = samples
            .iter()
            .filter(|(n, labels, v)| {
                n == "pidone_service_state"
                    && *v == 1.0
                    && labels.iter().any(|(k, s)| k == "service" && s == service)
            })
            .filter_map(|(_, labels, _)| {
                labels
                    .iter()
                    .find(|(k, _)| k == "state")
                    .map(|(_, s)| s.as_str())
            })
            .collect();
        assert_eq!(current.len(), 1, "{service}: {current:?}\n{body}");
    }
}

/// A required service failing for good turns health to 503 naming it (while pidone shuts down
/// around it, slowed here by a service that takes its time to stop).
#[test]
fn health_is_503_when_a_required_service_fails() {
    let mut d = Daemon::start(
        Mode::Child,
        r#"
[timeouts]
service_shutdown_timeout = "20s"

[[services]]
name = "slow"
command = ["/bin/sh", "-c", "trap 'while [ ! -e @D/release ]; do sleep 0.05; done; exit 0' TERM; while :; do sleep 0.05; done"]

[[services]]
name = "vital"
required = true
restart = "never"
command = ["/bin/sh", "-c", "while [ ! -e @D/crash ]; do sleep 0.05; done; exit 4"]
"#,
    );
    // Health is 200 once both are up (either may still be starting when the other runs).
    d.wait_state("slow", "running");
    d.wait_state("vital", "running");
    assert_eq!(get(&d.socket, "/v1/health").map(|(s, _)| s), Some(200));
    d.dir.write("crash", "");
    let socket = d.socket.clone();
    d.run.wait_for("health to turn 503", |_| {
        get(&socket, "/v1/health").is_some_and(|(status, _)| status == 503)
    });
    let (_, body) = get(&d.socket, "/v1/health").expect("an answer while stopping");
    assert!(body.contains("required service vital failed"), "{body}");
    let out = d.client(&["check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("vital"), "{out:?}");
    // Failed for good: not live either.
    let (status, body) = get(&d.socket, "/livez").expect("an answer from /livez");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("required service vital failed"), "{body}");
    let out = d.client(&["check", "--live"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("vital"), "{out:?}");
    d.dir.write("release", "");
}

// ---------------------------------------------------------------------------------------------
// liveness and readiness

/// Asserts what `/livez`, `/readyz`, `/v1/health`, `check --live` and `check` (`--ready`) say:
/// `live` and `ready` as expected, and a not-ready answer naming `why`.
fn assert_live_ready(d: &Daemon, live: bool, ready: bool, why: &str) {
    let code = |ok: bool| if ok { 200 } else { 503 };
    let (status, body) = get(&d.socket, "/livez").expect("an answer from /livez");
    assert_eq!(status, code(live), "/livez: {body}");
    for path in ["/readyz", "/v1/health"] {
        let (status, body) = get(&d.socket, path).expect("an answer");
        assert_eq!(status, code(ready), "{path}: {body}");
        assert!(ready || body.contains(why), "{path} names {why:?}: {body}");
    }
    let out = d.client(&["check", "--live"]);
    assert_eq!(out.code, i32::from(!live), "check --live: {out:?}");
    for args in [&["check"][..], &["check", "--ready"]] {
        let out = d.client(args);
        assert_eq!(out.code, i32::from(!ready), "{args:?}: {out:?}");
        assert!(ready || out.stdout.contains(why), "{args:?}: {out:?}");
    }
}

/// `pidone stop web` leaves web down: the pod must not get traffic (not ready), and pidone is
/// fine (live). Health used to say 200 with web stopped.
#[test]
fn a_service_stopped_on_request_is_not_ready_but_pidone_is_live() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n",
            longrun("web")
        ),
    );
    d.wait_running("web");
    assert_live_ready(&d, true, true, "");
    d.ok(&["stop", "web"]);
    assert_live_ready(&d, true, false, "web is stopped");
    d.ok(&["start", "web"]);
    assert_live_ready(&d, true, true, "");
}

/// A service waiting out its restart backoff is not ready, but a liveness probe must not
/// restart the pod for it.
#[test]
fn a_service_in_backoff_is_not_ready_but_pidone_is_live() {
    let mut d = Daemon::start(
        Mode::Child,
        r#"
[[services]]
name = "flaky"
restart_delay = "1h"
command = ["/bin/sh", "-c", "exit 3"]
"#,
    );
    d.wait_service("flaky", "in backoff", |s| {
        s["last_exit"]["code"] == 3 && s["state"] == "pending"
    });
    assert_live_ready(&d, true, false, "flaky is pending");
}

/// An alive-level check failing past its threshold makes pidone not live (and not ready).
#[test]
fn a_failing_alive_check_makes_pidone_not_live() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "web"
command = {}
[[services.checks]]
name = "probe"
exec = ["/bin/sh", "-c", "test ! -e @D/sick"]
period = "10ms"
failure_threshold = 2
on_failure = "ignore"
"#,
            longrun("web")
        ),
    );
    d.wait_running("web");
    d.wait_service("web", "its check passing", |s| {
        s["checks"][0]["status"] == "passing"
    });
    assert_live_ready(&d, true, true, "");
    d.dir.write("sick", "");
    d.wait_service("web", "its check failing", |s| {
        s["checks"][0]["status"] == "failing"
    });
    assert_live_ready(&d, false, false, "check probe is failing");
    let out = d.client(&["check", "--live"]);
    assert!(
        out.stdout.contains("web: check probe is failing"),
        "{out:?}"
    );
}
