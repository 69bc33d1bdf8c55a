//! `pidone import process-compose FILE`: process-compose's YAML into pidone services: commands
//! under the file's shell, `depends_on` conditions, probes as checks, `availability` as the
//! restart policy. See docs/migration.md for the table.

use std::path::Path;

use crate::out::{Doc, Place, Service, Value};
use crate::words;
use crate::yaml::{self, Kind, Node};

pub fn import(path: &Path) -> Result<Doc, String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let root = yaml::parse(&file, &text)?;
    let mut doc = Doc {
        source: file.clone(),
        format: "process-compose",
        ..Doc::default()
    };
    let at = |n: &Node| Place {
        file: file.clone(),
        line: n.line,
    };
    let Kind::Map(top) = &root.kind else {
        return Err(format!(
            "{file}:{}: the file must be a mapping with 'processes'",
            root.line
        ));
    };
    let mut dotenv = true;
    let mut g = Globals {
        shell: vec!["bash".into(), "-c".into()],
        env: Vec::new(),
        expand: true,
    };
    for (key, node) in top {
        match key.as_str() {
            "processes" => {}
            "version" | "is_strict" | "log_level" | "log_length" | "log_location" | "log_configuration" | "disable_env_expansion" => {
                doc.note(&at(node), false, format!("{key}: a setting of process-compose itself"));
            }
            "ordered_shutdown" => doc.note(&at(node), false, "ordered_shutdown: pidone always stops services in the reverse order of their dependencies"),
            "shell" => g.shell = shell(&file, node)?,
            "is_dotenv_disabled" => dotenv = !matches!(node.scalar(), Some("true" | "yes" | "on")),
            "environment" => g.env = environment(&file, node, true)?,
            _ => doc.note(&at(node), true, format!("{key}: not supported (unknown or process-compose specific)")),
        }
    }
    if let Some(n) = root.get("disable_env_expansion") {
        g.expand = !matches!(n.scalar(), Some("true" | "yes" | "on"));
        g.env = environment(
            &file,
            root.get("environment").unwrap_or(&Node {
                line: 0,
                kind: Kind::Null,
            }),
            g.expand,
        )?;
    }
    let Some(Node {
        kind: Kind::Map(processes),
        line,
    }) = root.get("processes")
    else {
        return Err(format!("{file}: no 'processes' mapping"));
    };
    if processes.is_empty() {
        return Err(format!("{file}:{line}: 'processes' is empty"));
    }
    if dotenv {
        crate::dotenv::carry_over(&mut doc, path, "process-compose");
    }
    let names = names(&file, processes)?;
    let oneshots = completed_dependencies(processes);
    for (name, node) in processes {
        let mut p = Process {
            file: &file,
            g: &g,
            names: &names,
            oneshot: oneshots.contains(name),
            s: Service::new(&new_name(&names, name)),
        };
        if p.s.name != *name {
            p.s.note(
                &at(node),
                false,
                format!("renamed from {name:?}: pidone names are [A-Za-z0-9_.-]"),
            );
        }
        p.map(node)?;
        doc.services.push(p.s);
    }
    Ok(doc)
}

struct Globals {
    shell: Vec<String>,
    env: Vec<(String, Value)>,
    /// Whether process-compose expanded `$VAR` in the file (not `disable_env_expansion`).
    expand: bool,
}

/// process-compose names and their pidone names.
fn names(file: &str, processes: &[(String, Node)]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, node) in processes {
        let Some(new) = words::service_name(name) else {
            return Err(format!(
                "{file}:{}: process name {name:?} gives no usable pidone name",
                node.line
            ));
        };
        if out.iter().any(|(_, n)| *n == new) {
            return Err(format!(
                "{file}:{}: process {name:?} becomes {new:?}, which another process is already called",
                node.line
            ));
        }
        out.push((name.clone(), new));
    }
    Ok(out)
}

fn new_name(names: &[(String, String)], name: &str) -> String {
    names
        .iter()
        .find(|(old, _)| old == name)
        .map_or_else(|| name.to_owned(), |(_, n)| n.clone())
}

/// Processes some other process waits to have completed: they run to completion, so they become
/// oneshots.
fn completed_dependencies(processes: &[(String, Node)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, node) in processes {
        let Some(Node {
            kind: Kind::Map(deps),
            ..
        }) = node.get("depends_on")
        else {
            continue;
        };
        for (dep, cond) in deps {
            let cond = cond
                .get("condition")
                .and_then(Node::scalar)
                .or(cond.scalar())
                .unwrap_or("");
            if cond.starts_with("process_completed") {
                out.push(dep.clone());
            }
        }
    }
    out
}

fn shell(file: &str, node: &Node) -> Result<Vec<String>, String> {
    let cmd = node.get("shell_command").and_then(Node::scalar);
    let arg = node.get("shell_argument").and_then(Node::scalar);
    match (cmd, arg) {
        (Some(c), Some(a)) => Ok(vec![c.to_owned(), a.to_owned()]),
        (Some(c), None) => Ok(vec![c.to_owned(), "-c".into()]),
        _ => Err(format!("{file}:{}: shell needs shell_command", node.line)),
    }
}

/// `environment: ["K=V", ...]` (or a mapping) into `env` pairs.
fn environment(file: &str, node: &Node, expand: bool) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    let value = |v: &str| {
        Value::Str(if expand {
            words::env_refs(v)
        } else {
            words::literal(v)
        })
    };
    match &node.kind {
        Kind::Null => {}
        Kind::Seq(items) => {
            for item in items {
                let Some((k, v)) = item.scalar().and_then(|s| s.split_once('=')) else {
                    return Err(format!(
                        "{file}:{}: environment: expected \"KEY=value\"",
                        item.line
                    ));
                };
                out.push((k.trim().to_owned(), value(v)));
            }
        }
        Kind::Map(pairs) => {
            for (k, v) in pairs {
                out.push((k.clone(), value(v.scalar().unwrap_or(""))));
            }
        }
        Kind::Scalar(_) => {
            return Err(format!(
                "{file}:{}: environment: expected a list of \"KEY=value\"",
                node.line
            ));
        }
    }
    Ok(out)
}

/// One process being mapped.
struct Process<'a> {
    file: &'a str,
    g: &'a Globals,
    names: &'a [(String, String)],
    oneshot: bool,
    s: Service,
}

impl Process<'_> {
    fn at(&self, n: &Node) -> Place {
        Place {
            file: self.file.to_owned(),
            line: n.line,
        }
    }

    fn err(&self, n: &Node, what: &str) -> String {
        format!("{}:{}: {what}", self.file, n.line)
    }

    fn text(&self, v: &str) -> String {
        if self.g.expand {
            words::env_refs(v)
        } else {
            words::literal(v)
        }
    }

    fn scalar<'n>(&self, n: &'n Node, key: &str) -> Result<&'n str, String> {
        n.scalar()
            .ok_or_else(|| self.err(n, &format!("{key}: expected a single value")))
    }

    fn number(&self, n: &Node, key: &str) -> Result<i64, String> {
        let v = self.scalar(n, key)?;
        v.parse()
            .map_err(|_| self.err(n, &format!("{key}: not an integer: {v:?}")))
    }

    fn boolean(&self, n: &Node, key: &str) -> Result<bool, String> {
        match self.scalar(n, key)? {
            "true" | "yes" | "on" => Ok(true),
            "false" | "no" | "off" => Ok(false),
            v => Err(self.err(n, &format!("{key}: not a boolean: {v:?}"))),
        }
    }

    fn map(&mut self, node: &Node) -> Result<(), String> {
        let Kind::Map(keys) = &node.kind else {
            return Err(self.err(node, "a process must be a mapping"));
        };
        if self.oneshot {
            self.s.set("type", Value::str("oneshot"));
        }
        self.command(node)?;
        let mut restart = "never";
        if let Some(a) = node.get("availability") {
            restart = self.availability(a)?;
        }
        self.s.set("restart", Value::str(restart));
        let mut env = self.g.env.clone();
        for (key, v) in keys {
            match key.as_str() {
                "command" | "entrypoint" | "availability" => {}
                "description" => self.s.note(
                    &self.at(v),
                    false,
                    format!("description: {}", v.scalar().unwrap_or("")),
                ),
                "depends_on" => self.depends_on(v)?,
                "environment" => {
                    for (k, val) in environment(self.file, v, self.g.expand)? {
                        env.retain(|(old, _)| *old != k);
                        env.push((k, val));
                    }
                }
                "working_dir" => {
                    let dir = self.text(self.scalar(v, key)?);
                    self.s.set("workdir", Value::Str(dir));
                }
                "log_location" => {
                    let file = self.text(self.scalar(v, key)?);
                    self.s.set("log_file", Value::Str(file));
                }
                "replicas" => {
                    let n = self.number(v, key)?;
                    if n > 1 {
                        self.s.set("instances", Value::Int(n));
                        self.s.note(&self.at(v), false, format!("replicas: {n} instances named {0}-1 ... {0}-{n}, numbered by PIDONE_INSTANCE from 1 (process-compose's PC_REPLICA_NUM counts from 0)", self.s.name));
                    }
                }
                "disabled" => {
                    if self.boolean(v, key)? {
                        self.s.set("enabled", Value::Bool(false));
                    }
                }
                "shutdown" => self.shutdown(v)?,
                "readiness_probe" | "liveness_probe" => self.probe(key, v, restart)?,
                // A namespace is a group of processes (`process-compose project stop -n NS`):
                // pidone's `groups`, acted on as `@NS`.
                "namespace" => {
                    let ns = self.scalar(v, key)?;
                    match words::service_name(ns) {
                        _ if ns == "default" => {}
                        Some(group) if group == ns => {
                            self.s.set("groups", Value::strs(&[group]));
                        }
                        _ => self.s.note(
                            &self.at(v),
                            true,
                            format!("namespace {ns:?}: not a usable group name"),
                        ),
                    }
                }
                "is_daemon" => {
                    if self.boolean(v, key)? {
                        self.s.note(&self.at(v), true, "is_daemon: pidone supervises processes that stay in the foreground; run the program without its daemon option");
                    }
                }
                "is_tty" | "is_foreground" | "is_interactive" | "is_elevated"
                | "ready_log_line" | "vars" => {
                    self.s
                        .note(&self.at(v), true, format!("{key}: not supported by pidone"));
                }
                _ => self
                    .s
                    .note(&self.at(v), true, format!("{key}: unknown option")),
            }
        }
        if !env.is_empty() {
            self.s.set("env", Value::Table(env));
        }
        Ok(())
    }

    /// `command` under the file's shell, or `entrypoint` (an argv) followed by `command`.
    fn command(&mut self, node: &Node) -> Result<(), String> {
        let cmd = match node.get("command") {
            Some(n) => Some(self.text(self.scalar(n, "command")?)),
            None => None,
        };
        if cmd.as_deref().is_some_and(|c| c.contains("{{")) {
            self.s.note(
                &self.at(node),
                true,
                "command: {{ }} templates (vars) are not expanded by pidone",
            );
        }
        let argv = match (node.get("entrypoint"), cmd) {
            (
                Some(Node {
                    kind: Kind::Seq(items),
                    ..
                }),
                cmd,
            ) => {
                let mut argv: Vec<String> = items
                    .iter()
                    .filter_map(Node::scalar)
                    .map(|s| self.text(s))
                    .collect();
                argv.extend(cmd);
                argv
            }
            (Some(n), _) => return Err(self.err(n, "entrypoint: expected a list")),
            (None, Some(cmd)) => {
                let mut argv = self.g.shell.clone();
                argv.push(cmd);
                argv
            }
            (None, None) => return Err(self.err(node, "the process has no command")),
        };
        if argv.is_empty() {
            return Err(self.err(node, "an empty command"));
        }
        self.s.set("command", Value::strs(&argv));
        Ok(())
    }

    /// Returns the pidone restart policy.
    fn availability(&mut self, a: &Node) -> Result<&'static str, String> {
        let mut restart = "never";
        let Kind::Map(keys) = &a.kind else {
            return Err(self.err(a, "availability: expected a mapping"));
        };
        for (key, v) in keys {
            match key.as_str() {
                "restart" => {
                    restart = match self.scalar(v, key)? {
                        "no" => "never",
                        "always" => "always",
                        "on_failure" => "on-failure",
                        "exit_on_failure" => {
                            self.s.set("required", Value::Bool(true));
                            "never"
                        }
                        other => return Err(self.err(v, &format!("availability.restart: unknown policy {other:?} (no, always, on_failure, exit_on_failure)"))),
                    };
                }
                "backoff_seconds" => {
                    let n = self.number(v, key)?;
                    if n > 0 {
                        self.s.set("restart_delay", Value::Str(format!("{n}s")));
                        self.s.set("restart_delay_max", Value::Str(format!("{n}s")));
                    }
                }
                "max_restarts" => {
                    let n = self.number(v, key)?;
                    self.s.set("max_restarts", Value::Int(n));
                }
                "exit_on_end" => {
                    if self.boolean(v, key)? {
                        self.s.set("required", Value::Bool(true));
                        self.s.note(&self.at(v), true, "exit_on_end: pidone shuts down when a required service fails for good, not when it ends successfully; to stop everything when it ends, run it as pidone's main program (pidone --config F -- COMMAND)");
                    }
                }
                _ => self.s.note(
                    &self.at(v),
                    true,
                    format!("availability.{key}: not supported"),
                ),
            }
        }
        if self.oneshot && restart == "always" {
            self.s.note(&self.at(a), true, "availability.restart always: others wait for this process to complete, so it is a oneshot, which cannot restart always; it restarts on failure");
            restart = "on-failure";
        }
        Ok(restart)
    }

    fn depends_on(&mut self, node: &Node) -> Result<(), String> {
        let Kind::Map(deps) = &node.kind else {
            return Err(self.err(
                node,
                "depends_on: expected a mapping of process: {condition: ...}",
            ));
        };
        // Each dependency with its pidone condition: an array when all are "ready".
        let mut table: Vec<(String, &str)> = Vec::new();
        for (dep, cond_node) in deps {
            if !self.names.iter().any(|(old, _)| old == dep) {
                return Err(self.err(cond_node, &format!("depends_on: unknown process {dep:?}")));
            }
            // `dep: {condition: c}`, the short `dep: c`, or `dep:` alone (process_started).
            let cond = cond_node
                .get("condition")
                .or(Some(cond_node))
                .and_then(Node::scalar)
                .unwrap_or("process_started");
            let name = new_name(self.names, dep);
            match cond {
                "process_healthy" => table.push((name, "ready")),
                "process_completed_successfully" => table.push((name, "succeeded")),
                "process_started" => table.push((name, "started")),
                "process_completed" => table.push((name, "completed")),
                "process_log_ready" => {
                    self.s.push("after", Value::Str(name));
                    self.s.note(
                        &self.at(cond_node),
                        true,
                        format!(
                            "depends_on {dep}: {cond}: written as after (ordering only): pidone has no log-line readiness"
                        ),
                    );
                }
                other => {
                    return Err(self.err(
                        cond_node,
                        &format!("depends_on {dep}: unknown condition {other:?}"),
                    ));
                }
            }
        }
        if table
            .iter()
            .all(|(_, c)| matches!(*c, "ready" | "succeeded"))
        {
            let names: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
            if !names.is_empty() {
                self.s.set("depends_on", Value::strs(&names));
            }
        } else {
            let conditions = table.into_iter().map(|(n, c)| (n, Value::str(c)));
            self.s.set("depends_on", Value::Table(conditions.collect()));
        }
        Ok(())
    }

    fn shutdown(&mut self, node: &Node) -> Result<(), String> {
        let Kind::Map(keys) = &node.kind else {
            return Err(self.err(node, "shutdown: expected a mapping"));
        };
        for (key, v) in keys {
            match key.as_str() {
                "signal" => {
                    let n = self.number(v, "shutdown.signal")?;
                    self.s.set("stop_signal", Value::Int(n));
                }
                "timeout_seconds" => {
                    let n = self.number(v, key)?;
                    self.s.set("stop_timeout", Value::Str(format!("{n}s")));
                }
                "command" => self.s.note(&self.at(v), true, "shutdown.command: pidone stops a service with its stop_signal, never with a command"),
                "parent_only" => {
                    if self.boolean(v, key)? {
                        self.s.note(&self.at(v), true, "shutdown.parent_only: pidone always signals the service's whole process group");
                    }
                }
                _ => self.s.note(&self.at(v), true, format!("shutdown.{key}: unknown option")),
            }
        }
        Ok(())
    }

    fn probe(&mut self, kind: &str, node: &Node, restart: &str) -> Result<(), String> {
        if self.oneshot {
            self.s.note(
                &self.at(node),
                true,
                format!(
                    "{kind}: a oneshot (others wait for it to complete) has no checks in pidone"
                ),
            );
            return Ok(());
        }
        let mut check: Vec<(String, Value)> = Vec::new();
        let Kind::Map(keys) = &node.kind else {
            return Err(self.err(node, &format!("{kind}: expected a mapping")));
        };
        for (key, v) in keys {
            let secs = |p: &Self| p.number(v, key).map(|n| Value::Str(format!("{n}s")));
            match key.as_str() {
                "exec" => {
                    let Some(cmd) = v.get("command").and_then(Node::scalar) else {
                        return Err(self.err(v, &format!("{kind}.exec: no command")));
                    };
                    let mut argv = self.g.shell.clone();
                    argv.push(self.text(cmd));
                    check.insert(0, ("exec".into(), Value::strs(&argv)));
                    if let Some(wd) = v.get("working_dir") {
                        self.s.note(&self.at(wd), true, format!("{kind}.exec.working_dir: pidone runs exec checks in the service's workdir"));
                    }
                }
                "http_get" => check.insert(0, ("http".into(), self.http(kind, v)?)),
                "initial_delay_seconds" => check.push(("initial_delay".into(), secs(self)?)),
                "period_seconds" => check.push(("period".into(), secs(self)?)),
                "timeout_seconds" => check.push(("timeout".into(), secs(self)?)),
                "success_threshold" | "failure_threshold" => {
                    check.push((key.clone(), Value::Int(self.number(v, key)?.max(1))))
                }
                _ => self
                    .s
                    .note(&self.at(v), true, format!("{kind}.{key}: unknown option")),
            }
        }
        if !check
            .first()
            .is_some_and(|(k, _)| k == "exec" || k == "http")
        {
            return Err(self.err(node, &format!("{kind}: needs exec or http_get")));
        }
        // process-compose's defaults where pidone's differ.
        for (key, default) in [("period", "10s"), ("timeout", "1s")] {
            if !check.iter().any(|(k, _)| k == key) {
                check.push((key.into(), Value::str(default)));
            }
        }
        let on_failure = if restart == "never" {
            "stop"
        } else {
            "restart"
        };
        let mut alive = check.clone();
        if kind == "readiness_probe" {
            check.push(("name".into(), Value::str("readiness")));
            check.push(("level".into(), Value::str("ready")));
            self.s.checks.push(check);
            alive.retain(|(k, _)| k != "initial_delay");
            alive.push(("name".into(), Value::str("readiness-alive")));
        } else {
            alive.push(("name".into(), Value::str("liveness")));
        }
        alive.push(("on_failure".into(), Value::str(on_failure)));
        self.s.checks.push(alive);
        Ok(())
    }

    fn http(&mut self, kind: &str, v: &Node) -> Result<Value, String> {
        let get = |k: &str| v.get(k).and_then(Node::scalar);
        let host = get("host").unwrap_or("127.0.0.1");
        let scheme = get("scheme").unwrap_or("http").to_ascii_lowercase();
        let path = get("path").unwrap_or("/");
        let Some(port) = get("port") else {
            return Err(self.err(v, &format!("{kind}.http_get: no port")));
        };
        if scheme != "http" {
            self.s.note(&self.at(v), true, format!("{kind}.http_get: scheme {scheme}: pidone probes plain HTTP only (use an exec check with curl for TLS); written as http"));
        }
        for extra in ["headers", "status_code"] {
            if let Some(n) = v.get(extra) {
                self.s.note(&self.at(n), true, format!("{kind}.http_get.{extra}: pidone sends a plain GET and takes any 2xx or 3xx status as success"));
            }
        }
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Value::Str(
            self.text(&format!("http://{host}:{port}{path}")),
        ))
    }
}
