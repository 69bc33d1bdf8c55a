//! A pidone in services mode with a control socket, as the control, readiness and files tests
//! use it: started on a config written into its own [`Dir`], asked through the socket and
//! through the built-in client (`pidone --socket S VERB...`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::dir::Dir;
use super::http::{get, service_of};
use super::mode::{Mode, pidone};
use super::pidone::Pidone;
use super::process::{Outcome, cmdline};

/// Writes `config` (`@D` = the dir) and starts `pidone --socket S --config F [-- MAIN...]`, the
/// socket at `run/ctl.sock` in the dir (a directory of its own: a test may open the dir to
/// nobody, and pidone refuses a socket directory others may write to); returns once the socket
/// answers.
pub fn start_on(mode: Mode, dir: &Dir, config: &str, main: &[&str]) -> (Pidone, PathBuf) {
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
    let mut run = Pidone::start(mode, dir, &args, &[]);
    run.wait_for("the control socket to answer", |_| {
        get(&socket, "/v1/services").is_some_and(|(status, _)| status == 200)
    });
    (run, socket)
}

/// What a client command printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code and everything printed, stdout then stderr.
    pub fn code_text(self) -> (i32, String) {
        (self.code, self.stdout + &self.stderr)
    }
}

/// Runs `pidone --socket SOCKET ARGS...` (the client) to completion, as `prefix` (e.g. setpriv).
pub fn client_as(prefix: &[&str], socket: &Path, args: &[&str]) -> Out {
    let mut argv: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
    argv.push(pidone().to_string());
    argv.push("--socket".into());
    argv.push(socket.to_str().expect("UTF-8").into());
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .env_remove("PIDONE_SOCKET")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the client");
    Out::from(out)
}

impl From<std::process::Output> for Out {
    /// A finished command's code (-1 if a signal ended it) and output.
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A pidone on a config in its own dir. Dropping it kills the run (pidone before the directory
/// goes: fields drop in order).
pub struct Daemon {
    pub run: Pidone,
    pub socket: PathBuf,
    pub dir: Dir,
}

impl Daemon {
    /// Starts pidone on `config` in a fresh dir (see [`start_on`]).
    pub fn start(mode: Mode, config: &str) -> Daemon {
        Daemon::start_in(mode, Dir::new(), config)
    }

    /// Starts pidone on `config` in `dir` (see [`start_on`]).
    pub fn start_in(mode: Mode, dir: Dir, config: &str) -> Daemon {
        Daemon::start_main(mode, dir, config, &[])
    }

    /// Starts `pidone ... -- MAIN...` on `config` in `dir` (see [`start_on`]).
    pub fn start_main(mode: Mode, dir: Dir, config: &str, main: &[&str]) -> Daemon {
        let (run, socket) = start_on(mode, &dir, config, main);
        Daemon { run, socket, dir }
    }

    /// Runs the client `pidone --socket S ARGS...` to completion.
    pub fn client(&self, args: &[&str]) -> Out {
        client_as(&[], &self.socket, args)
    }

    /// Runs the client and asserts its exit code is 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.client(args);
        assert_eq!(out.code, 0, "pidone {args:?}: {out:?}");
        out
    }

    /// Every service object, in the daemon's order.
    pub fn services(&self) -> Vec<Value> {
        let (status, body) = get(&self.socket, "/v1/services").expect("an answer");
        assert_eq!(status, 200, "GET /v1/services: {body}");
        match serde_json::from_str(&body) {
            Ok(Value::Array(list)) => list,
            other => panic!("GET /v1/services is not a JSON array: {other:?}\n{body}"),
        }
    }

    pub fn service(&self, name: &str) -> Value {
        self.services()
            .into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| {
                panic!(
                    "no service {name} in GET /v1/services\nstderr:\n{}",
                    self.run.stderr()
                )
            })
    }

    pub fn state(&self, name: &str) -> String {
        self.service(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn pid(&self, name: &str) -> Option<i64> {
        self.service(name)["pid"].as_i64()
    }

    /// Waits (failing with pidone's output if pidone exits) until `name`'s object satisfies
    /// `condition`; returns that object.
    pub fn wait_service(
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

    /// Waits until `name` is in `state`; returns its object.
    pub fn wait_state(&mut self, name: &str, state: &str) -> Value {
        self.wait_service(name, &format!("state {state}"), |s| s["state"] == state)
    }

    /// Waits until `name` runs with a pid that wrote its line into `NAME.pids`.
    pub fn wait_running(&mut self, name: &str) -> i64 {
        self.wait_running_pid(name, None)
    }

    /// Waits until `name` runs with a pid other than `not` that it wrote into `NAME.pids`
    /// itself.
    pub fn wait_running_pid(&mut self, name: &str, not: Option<i64>) -> i64 {
        let svc = self.wait_service(name, "running with a new pid", |s| {
            s["state"] == "running" && s["pid"].as_i64().is_some() && s["pid"].as_i64() != not
        });
        let pid = svc["pid"].as_i64().expect("pid");
        let dir = &self.dir;
        self.run
            .wait_for(&format!("{name} to record pid {pid}"), |_| {
                dir.pids(name).contains(&pid)
            });
        pid
    }

    /// Waits until the crashing service `name` (see [`super::scripts::crasher`]) has run `more`
    /// more times than now: proof that supervision went on meanwhile.
    pub fn wait_crashes(&mut self, name: &str, more: usize) {
        let file = format!("{name}.runs");
        let target = self.dir.read(&file).lines().count() + more;
        let dir = &self.dir;
        self.run
            .wait_for(&format!("{name} to run {more} more times"), |_| {
                dir.read(&file).lines().count() >= target
            });
    }

    pub fn health(&self) -> (u16, String) {
        get(&self.socket, "/v1/health").expect("an answer from /v1/health")
    }

    pub fn metrics(&self) -> String {
        // docs/api.md documents /metrics; accept /v1/metrics too.
        let (status, body) = match get(&self.socket, "/metrics") {
            Some((404, _)) | None => get(&self.socket, "/v1/metrics"),
            answer => answer,
        }
        .expect("an answer from the metrics endpoint");
        assert_eq!(status, 200, "metrics: {body}");
        body
    }

    /// Live processes of the run whose command line is exactly `command`.
    pub fn processes_running(&self, command: &str) -> Vec<u32> {
        self.run
            .processes()
            .into_iter()
            .filter(|&p| cmdline(p) == command)
            .collect()
    }

    /// The stamp `name` of the dir.
    pub fn stamp(&self, name: &str) -> u128 {
        self.dir.stamp(name)
    }

    /// Ends the run with `pidone shutdown` (SIGTERM's graceful shutdown; a signal would need
    /// pidone's host pid, looked up by its executable, which a rebuild replaces) and returns how
    /// it exited.
    pub fn shutdown(&mut self) -> Outcome {
        let out = self.client(&["shutdown"]);
        assert_eq!(out.code, 0, "pidone shutdown: {out:?}");
        self.run.wait()
    }

    /// Shuts a clean run down and expects exit status 0.
    pub fn terminate(mut self) {
        self.shutdown().assert_code(0, "shutdown after a clean run");
    }
}
