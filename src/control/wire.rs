//! The JSON of the control API, shared by the daemon and the client: the daemon serializes these
//! structs, the client deserializes the same ones, so the two cannot drift apart. docs/api.md
//! describes the JSON; the field names and their optionality here are that contract.
//!
//! Fields are declared in alphabetical order: serialized, the keys come out in the order pidone
//! has always sent them. A client reading an answer from another pidone version takes a missing
//! field as its default and ignores fields it does not know. `pidone status --json` prints the
//! daemon's body as it came.
//!
//! The client reads these structs by hand ([`FromJson`]), not by a derived `Deserialize`: it
//! reads a few fields of a [`Service`], and the derived code for them cost the static binary
//! 21 KB. Only the fields the client reads are read (the others are left at their default), each
//! as serde would read it: a field of the wrong type is the same error.

use serde::Deserialize;
use serde::Serialize;
use serde::de::{DeserializeOwned, Unexpected};
use serde_json::{Map, Value};

/// One service (`GET /v1/services`, and the answer to start, stop, restart and signal).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    /// The dependents that a stop or restart took down with the service: only in the answers
    /// to start, stop and restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub along: Option<Vec<String>>,
    /// The service's cgroup limits that pidone does not apply (`cgroup_optional`) and why:
    /// `memory_max not applied: pidone does not manage cgroups: …`; else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_skipped: Option<String>,
    pub checks: Vec<Check>,
    /// The service's `description`, if it has one.
    pub description: Option<String>,
    pub enabled: bool,
    /// The service's `groups`; absent when it is in none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub instance: Option<u32>,
    pub last_exit: Option<LastExit>,
    /// What became of the service's output (its lines go through pidone: prefix or log_file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Log>,
    /// The last `MAINPID=` the service sent through sd_notify.
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
    pub ready: String,
    pub reason: String,
    pub required: bool,
    pub restarts: u32,
    /// Unix time of the last state change.
    pub since: f64,
    /// Seconds since the current start began (starting services only): a slow start is visible
    /// as such, there being no default `start_timeout`. The client reads `since` instead.
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Log {
    pub bytes: u64,
    pub dropped_console: u64,
    pub dropped_file: u64,
    /// Shown by `pidone status` in the REASON column.
    pub error: Option<String>,
    pub lines: u64,
}

/// A timed job (`schedule`): its next run and its last one. Times are unix times.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timer {
    /// Failed runs since pidone started.
    pub failures: u64,
    /// How long the last run took, in seconds.
    pub last_duration: Option<f64>,
    /// `ok`, or why the last run failed.
    pub last_result: Option<String>,
    /// When the last run started.
    pub last_run: Option<f64>,
    /// When the last successful run ended.
    pub last_success: Option<f64>,
    /// When the next run is due (jitter included); null while none is (held, disabled, or
    /// pidone stopping).
    pub next: Option<f64>,
    /// Runs since pidone started (those by `pidone start` too).
    pub runs: u64,
    /// The schedule as written.
    pub schedule: String,
    /// Runs skipped because the previous one was still going (`overlap = "skip"`).
    pub skipped: u64,
}

/// How a service last ended: `{"code": N}`, or `{"code": 128+N, "signal": "NAME"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LastExit {
    pub code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// One check of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Check {
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    /// Failed runs in all.
    pub failures: u64,
    /// `exec`, `tcp` or `http`.
    pub kind: String,
    /// The last run's result.
    pub last: Option<String>,
    /// `ready` or `alive`.
    pub level: String,
    pub name: String,
    pub runs: u64,
    /// `unknown`, `passing` or `failing`.
    pub status: String,
}

/// `GET /v1/health`: 200 when healthy, else 503 with the problems.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Health {
    pub healthy: bool,
    pub problems: Vec<String>,
}

/// What a reload changed, by service name (`POST /v1/reload`, 200).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
}

/// The answer to `POST /v1/services` and `DELETE /v1/services/{name}`: the drop-in file written
/// or deleted, and what the reload that applied it changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Registered {
    pub file: String,
    pub reload: Reloaded,
}

/// Every error answer: `{"error": "..."}`; a refused reload adds `errors`, every problem of the
/// configuration. `error` is required: a body without it is not one of pidone's errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Error {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

/// The body of `POST /v1/services/{name}/signal` as the client sends it (the daemon also takes
/// a number).
#[derive(Debug, Serialize)]
pub struct Signal<'a> {
    pub signal: &'a str,
}

/// What the client reads from the daemon's JSON, by hand (see the module's comment).
pub trait FromJson: Sized {
    fn from_json(value: &Value) -> serde_json::Result<Self>;
}

/// Reads an answer's `body` into one of these structs, through a `Value`: the one JSON parser
/// that reads request bodies reads answers too.
pub fn read<T: FromJson>(body: &str) -> serde_json::Result<T> {
    T::from_json(&serde_json::from_slice(body.as_bytes())?)
}

impl FromJson for Health {
    fn from_json(value: &Value) -> serde_json::Result<Health> {
        let f = Fields::of(value, "struct Health")?;
        Ok(Health {
            healthy: f.get("healthy")?,
            problems: f.get("problems")?,
        })
    }
}

impl FromJson for Reloaded {
    fn from_json(value: &Value) -> serde_json::Result<Reloaded> {
        let f = Fields::of(value, "struct Reloaded")?;
        Ok(Reloaded {
            added: f.get("added")?,
            removed: f.get("removed")?,
            restarted: f.get("restarted")?,
            unchanged: f.get("unchanged")?,
        })
    }
}

impl FromJson for Registered {
    fn from_json(value: &Value) -> serde_json::Result<Registered> {
        let f = Fields::of(value, "struct Registered")?;
        Ok(Registered {
            file: f.get("file")?,
            reload: (f.optional("reload", Reloaded::from_json)?).unwrap_or_default(),
        })
    }
}

impl FromJson for Error {
    /// `error` is required (see the type).
    fn from_json(value: &Value) -> serde_json::Result<Error> {
        let f = Fields::of(value, "struct Error")?;
        let Some(error) = f.0.get("error") else {
            return Err(serde::de::Error::missing_field("error"));
        };
        Ok(Error {
            error: String::deserialize(error)?,
            errors: f.get("errors")?,
        })
    }
}

/// Reads an answer's `body` that is one service (the answer to start, stop and restart).
pub fn read_service(body: &str) -> serde_json::Result<Service> {
    read(body)
}

/// Reads an answer's `body` that is a list of services (`GET /v1/services`).
pub fn read_services(body: &str) -> serde_json::Result<Vec<Service>> {
    let value: Value = serde_json::from_slice(body.as_bytes())?;
    let Value::Array(items) = &value else {
        return Err(invalid(&value, "a sequence"));
    };
    items.iter().map(Service::from_json).collect()
}

impl FromJson for Service {
    /// The fields of one service the client reads (see the module's comment).
    fn from_json(value: &Value) -> serde_json::Result<Service> {
        let f = Fields::of(value, "struct Service")?;
        Ok(Service {
            along: f.get("along")?,
            cgroup_skipped: f.get("cgroup_skipped")?,
            checks: f.list("checks", Check::from_json)?,
            description: f.get("description")?,
            groups: f.get("groups")?,
            last_exit: f.optional("last_exit", |v| {
                let f = Fields::of(v, "struct LastExit")?;
                Ok(LastExit {
                    code: f.get("code")?,
                    signal: f.get("signal")?,
                })
            })?,
            log: f.optional("log", |v| {
                let f = Fields::of(v, "struct Log")?;
                Ok(Log {
                    error: f.get("error")?,
                    ..Log::default()
                })
            })?,
            name: f.get("name")?,
            notify_state: f.get("notify_state")?,
            notify_status: f.get("notify_status")?,
            pid: f.get("pid")?,
            reason: f.get("reason")?,
            restarts: f.get("restarts")?,
            since: f.get("since")?,
            state: f.get("state")?,
            timer: f.optional("timer", |v| {
                let f = Fields::of(v, "struct Timer")?;
                Ok(Timer {
                    last_duration: f.get("last_duration")?,
                    last_result: f.get("last_result")?,
                    last_run: f.get("last_run")?,
                    next: f.get("next")?,
                    ..Timer::default()
                })
            })?,
            kind: f.get("type")?,
            uptime: f.get("uptime")?,
            ..Service::default()
        })
    }
}

impl Check {
    fn from_json(value: &Value) -> serde_json::Result<Check> {
        let f = Fields::of(value, "struct Check")?;
        Ok(Check {
            consecutive_failures: f.get("consecutive_failures")?,
            name: f.get("name")?,
            status: f.get("status")?,
            ..Check::default()
        })
    }
}

/// The keys of one JSON object, each read as `#[serde(default)]` reads a field: a missing key is
/// the default, any other value is deserialized (so `null` is `None`, or an error for a field
/// that is not an `Option`).
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn of(value: &'a Value, expected: &str) -> serde_json::Result<Fields<'a>> {
        match value {
            Value::Object(map) => Ok(Fields(map)),
            other => Err(invalid(other, expected)),
        }
    }

    fn get<T: DeserializeOwned + Default>(&self, key: &str) -> serde_json::Result<T> {
        self.0
            .get(key)
            .map_or_else(|| Ok(T::default()), T::deserialize)
    }

    /// An `Option` of a struct read by `read`: missing or `null` is `None`.
    fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Value) -> serde_json::Result<T>,
    ) -> serde_json::Result<Option<T>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => read(value).map(Some),
        }
    }

    /// A list of structs read by `read`: missing is empty.
    fn list<T>(
        &self,
        key: &str,
        read: fn(&Value) -> serde_json::Result<T>,
    ) -> serde_json::Result<Vec<T>> {
        match self.0.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(read).collect(),
            Some(other) => Err(invalid(other, "a sequence")),
        }
    }
}

/// serde's "invalid type" error for `value` where `expected` was expected.
fn invalid(value: &Value, expected: &str) -> serde_json::Error {
    let unexpected = match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    };
    serde::de::Error::invalid_type(unexpected, &expected)
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

    /// The hand reader refuses what the derived `Deserialize` refused, with serde's words.
    #[test]
    fn a_field_of_the_wrong_type_is_refused_as_serde_refused_it() {
        let err = |body: &str| read_service(body).expect_err(body).to_string();
        assert_eq!(
            err(r#"{"restarts":"x"}"#),
            "invalid type: string \"x\", expected u32"
        );
        assert_eq!(
            err(r#"{"name":null}"#),
            "invalid type: null, expected a string"
        );
        assert_eq!(
            err(r#"{"last_exit":1}"#),
            "invalid type: integer `1`, expected struct LastExit"
        );
        assert_eq!(
            err(r#"{"checks":{}}"#),
            "invalid type: map, expected a sequence"
        );
        // (The derived code took an array as the fields in order: the daemon never sends one.)
        assert_eq!(err("[]"), "invalid type: sequence, expected struct Service");
        let list = read_services(r#"{"name":"db"}"#).expect_err("not a list");
        assert_eq!(list.to_string(), "invalid type: map, expected a sequence");
        let read = read_service(r#"{"pid":null,"last_exit":null,"timer":{"next":1.5}}"#);
        let read = read.expect("nulls are None");
        assert_eq!((read.pid, read.last_exit), (None, None));
        assert_eq!(read.timer.and_then(|t| t.next), Some(1.5));
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
        let missing = read::<Error>(r#"{"errors":[]}"#).expect_err("no error");
        assert_eq!(missing.to_string(), "missing field `error`");
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
