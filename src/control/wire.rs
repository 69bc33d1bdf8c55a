//! The JSON of the control API, shared by the daemon and the client: the daemon serializes these
//! structs, the client deserializes the same ones, so the two cannot drift apart. docs/api.md
//! describes the JSON; the field names and their optionality here are that contract.
//!
//! Fields are declared in alphabetical order: serialized, the keys come out in the order pidone
//! has always sent them. A client reading an answer from another pidone version takes a missing
//! field as its default and ignores fields it does not know. Fields the client never reads are
//! `skip_deserializing` (left at their default): each field read costs the static binary about
//! a kilobyte of derived code. `pidone status --json` prints the daemon's body as it came.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One service (`GET /v1/services`, and the answer to start, stop, restart and signal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// The dependents that a stop or restart took down with the service: only in the answers
    /// to start, stop and restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub along: Option<Vec<String>>,
    pub checks: Vec<Check>,
    /// The service's `description`, if it has one.
    pub description: Option<String>,
    #[serde(skip_deserializing)]
    pub enabled: bool,
    #[serde(skip_deserializing)]
    pub instance: Option<u32>,
    pub last_exit: Option<LastExit>,
    /// What became of the service's output (its lines go through pidone: prefix or log_file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Log>,
    /// The last `MAINPID=` the service sent through sd_notify.
    #[serde(skip_deserializing)]
    pub main_pid: Option<i32>,
    pub name: String,
    /// What the service last said of itself through sd_notify: `reloading` (`RELOADING=1`,
    /// until `READY=1`) or `stopping` (`STOPPING=1`); else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify_state: Option<String>,
    /// The last `STATUS=` the service sent through sd_notify.
    pub notify_status: Option<String>,
    pub pid: Option<i32>,
    /// How the service says it is ready: `exec`, `notify_fd`, `sd_notify`, `after`.
    #[serde(skip_deserializing)]
    pub ready: String,
    pub reason: String,
    #[serde(skip_deserializing)]
    pub required: bool,
    pub restarts: u32,
    /// Unix time of the last state change.
    pub since: f64,
    /// Seconds since the current start began (starting services only): a slow start is visible
    /// as such, there being no default `start_timeout`. The client reads `since` instead.
    #[serde(skip_deserializing)]
    pub starting_for: Option<f64>,
    /// `pending`, `starting`, `running`, `stopping`, `stopped` or `failed`.
    pub state: String,
    /// A timed job's schedule, next run and last run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer: Option<Timer>,
    /// `longrun` or `oneshot`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the service came up (running longruns only).
    pub uptime: Option<f64>,
}

/// A service's output since pidone started: lines and bytes read, lines dropped by where they
/// were going, and why its log file is not being written, while it is not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    #[serde(skip_deserializing)]
    pub bytes: u64,
    #[serde(skip_deserializing)]
    pub dropped_console: u64,
    #[serde(skip_deserializing)]
    pub dropped_file: u64,
    /// Shown by `pidone status` in the REASON column.
    pub error: Option<String>,
    #[serde(skip_deserializing)]
    pub lines: u64,
}

/// A timed job (`schedule`): its next run and its last one. Times are unix times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timer {
    /// Failed runs since pidone started.
    #[serde(skip_deserializing)]
    pub failures: u64,
    /// How long the last run took, in seconds.
    pub last_duration: Option<f64>,
    /// `ok`, or why the last run failed.
    pub last_result: Option<String>,
    /// When the last run started.
    pub last_run: Option<f64>,
    /// When the last successful run ended.
    #[serde(skip_deserializing)]
    pub last_success: Option<f64>,
    /// When the next run is due (jitter included); null while none is (held, disabled, or
    /// pidone stopping).
    pub next: Option<f64>,
    /// Runs since pidone started (those by `pidone start` too).
    #[serde(skip_deserializing)]
    pub runs: u64,
    /// The schedule as written.
    #[serde(skip_deserializing)]
    pub schedule: String,
    /// Runs skipped because the previous one was still going (`overlap = "skip"`).
    #[serde(skip_deserializing)]
    pub skipped: u64,
}

/// How a service last ended: `{"code": N}`, or `{"code": 128+N, "signal": "NAME"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastExit {
    pub code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// One check of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Check {
    pub consecutive_failures: u32,
    #[serde(skip_deserializing)]
    pub consecutive_successes: u32,
    /// Failed runs in all.
    #[serde(skip_deserializing)]
    pub failures: u64,
    /// `exec`, `tcp` or `http`.
    #[serde(skip_deserializing)]
    pub kind: String,
    /// The last run's result.
    #[serde(skip_deserializing)]
    pub last: Option<String>,
    /// `ready` or `alive`.
    #[serde(skip_deserializing)]
    pub level: String,
    pub name: String,
    #[serde(skip_deserializing)]
    pub runs: u64,
    /// `unknown`, `passing` or `failing`.
    pub status: String,
}

/// `GET /v1/health`: 200 when healthy, else 503 with the problems.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub healthy: bool,
    pub problems: Vec<String>,
}

/// What a reload changed, by service name (`POST /v1/reload`, 200).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Every error answer: `{"error": "..."}`; a refused reload adds `errors`, every problem of the
/// configuration. `error` is required: a body without it is not one of pidone's errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

/// The body of `POST /v1/services/{name}/signal` as the client sends it (the daemon also takes
/// a number).
#[derive(Debug, Serialize)]
pub struct Signal<'a> {
    pub signal: &'a str,
}

/// Reads an answer's `body` into one of these structs. Through a `Value`: parsed straight from
/// text, each struct would bring its own copy of the JSON parser into the static binary; this
/// way they share the one that reads request bodies.
pub fn read<T: DeserializeOwned>(body: &str) -> serde_json::Result<T> {
    serde_json::from_value(serde_json::from_slice(body.as_bytes())?)
}

/// The answer to `POST /v1/shutdown`.
pub const SHUTTING_DOWN: &str = r#"{"shutting_down":true}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_has_exactly_the_documented_keys() {
        let svc = Service {
            last_exit: Some(LastExit {
                code: 143,
                signal: Some("TERM".to_string()),
            }),
            checks: vec![Check::default()],
            ..Service::default()
        };
        let value = serde_json::to_value(&svc).expect("serializes");
        // A `Value` sorts its keys, as the `json!` objects pidone used to send did: the bytes
        // are the same.
        let text = serde_json::to_string(&svc).expect("serializes");
        assert_eq!(text, value.to_string());
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let documented = [
            "checks",
            "description",
            "enabled",
            "instance",
            "last_exit",
            "main_pid",
            "name",
            "notify_status",
            "pid",
            "ready",
            "reason",
            "required",
            "restarts",
            "since",
            "starting_for",
            "state",
            "type",
            "uptime",
        ];
        assert_eq!(keys, documented);
        let check: Vec<&str> = value["checks"][0]
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let documented = [
            "consecutive_failures",
            "consecutive_successes",
            "failures",
            "kind",
            "last",
            "level",
            "name",
            "runs",
            "status",
        ];
        assert_eq!(check, documented);
        assert_eq!(
            value["last_exit"],
            serde_json::json!({"code": 143, "signal": "TERM"})
        );
        let exited = LastExit {
            code: 3,
            signal: None,
        };
        assert_eq!(
            serde_json::to_string(&exited).expect("serializes"),
            r#"{"code":3}"#
        );
        let along = Service {
            along: Some(vec!["web".to_string()]),
            ..svc
        };
        let text = serde_json::to_string(&along).expect("serializes");
        assert!(text.starts_with(r#"{"along":["web"],"checks":"#), "{text}");
    }

    #[test]
    fn errors_carry_errors_only_from_a_refused_reload() {
        let plain = Error {
            error: "no".to_string(),
            errors: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).expect("serializes"),
            r#"{"error":"no"}"#
        );
        let reload = Error {
            error: "refused".to_string(),
            errors: Some(vec!["x".to_string()]),
        };
        let text = serde_json::to_string(&reload).expect("serializes");
        assert_eq!(text, r#"{"error":"refused","errors":["x"]}"#);
        assert!(serde_json::from_str::<Error>(r#"{"errors":[]}"#).is_err());
    }
}

/// One event of `GET /v1/events`, a line of its own: a service's state change (`state`), a
/// restart (`restart`), a process's exit (`exit`), a check's change of status (`check`), a
/// reload (`reload`) and the shutdown (`shutdown`). Only serialized: the client prints a line
/// as it came (`--json`) or its `time` and `message`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The check, for `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// How the process ended, for `exit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<LastExit>,
    /// The state before, for `state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'static str>,
    /// The event for a human: what the client prints.
    pub message: String,
    /// What a reload changed, for `reload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload: Option<Reloaded>,
    /// The restarts so far, for `restart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Counts events from 1 since pidone started: `?since=SEQ` asks for those after it.
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The state after, for `state`; the check's status (`passing`, `failing`), for `check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl Event {
    /// An event of `kind` saying `message`; the supervisor numbers and dates it.
    pub fn new(kind: &'static str, service: Option<&str>, message: String) -> Event {
        Event {
            check: None,
            exit: None,
            from: None,
            message,
            reload: None,
            restarts: None,
            seq: 0,
            service: service.map(str::to_string),
            state: None,
            time: String::new(),
            kind,
        }
    }
}
