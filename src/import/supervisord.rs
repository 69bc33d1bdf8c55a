//! `pidone import supervisord FILE`: supervisord's INI files (with their `[include]`s) into pidone
//! services. Each `[program:x]` option is mapped, noted as meaningless under pidone, or noted as
//! lost; see docs/migration.md for the table.

use std::path::{Path, PathBuf};

use crate::ini::{self, Entry, Section};
use crate::out::{Doc, Place, Service, Value};
use crate::pyformat::{self, Target, Vars};
use crate::words;

/// How deep `[include]`s may nest: deeper is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A section and the directory of its file (`%(here)s`).
struct Located {
    section: Section,
    here: String,
}

pub fn import(path: &Path) -> Result<Doc, String> {
    let mut sections = Vec::new();
    load(path, 0, &mut sections)?;
    let mut doc = Doc {
        source: path.display().to_string(),
        format: "supervisord",
        ..Doc::default()
    };
    let global_env = global_sections(&sections, &mut doc)?;
    let groups = groups(&sections);
    let mut programs = Vec::new();
    for located in &sections {
        if let Some(name) = located.section.name.strip_prefix("program:") {
            let ctx = Program {
                name: name.trim(),
                located,
                groups: groups
                    .iter()
                    .filter(|(_, members)| members.iter().any(|m| m == name.trim()))
                    .map(|(g, _)| g.as_str())
                    .collect(),
                global_env: &global_env,
            };
            programs.extend(ctx.services()?);
        }
    }
    order_by_priority(&mut programs);
    doc.services = programs.into_iter().map(|(s, _)| s).collect();
    Ok(doc)
}

/// Reads `path` and, in place of each `[include]`, the files it names.
fn load(path: &Path, depth: usize, out: &mut Vec<Located>) -> Result<(), String> {
    let file = path.display().to_string();
    if depth > MAX_INCLUDE_DEPTH {
        return Err(format!(
            "{file}: [include]s nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let here = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
    for section in ini::parse(&file, &text)? {
        if section.name != "include" {
            out.push(Located {
                section,
                here: here.display().to_string(),
            });
            continue;
        }
        let Some(files) = section.get("files") else {
            return Err(format!("{}: [include] without 'files'", section.place));
        };
        for pattern in files.value.split_whitespace() {
            let place = format!("{file}:{}", files.line);
            for found in glob(&dir, pattern).map_err(|e| format!("{place}: {e}"))? {
                load(&found, depth + 1, out)?;
            }
        }
    }
    Ok(())
}

/// The files matching `pattern` (wildcards `*`, `?` in its last component only), sorted.
fn glob(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        dir.join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = full
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    if parent.to_string_lossy().contains(['*', '?', '[']) {
        return Err(format!(
            "include pattern {pattern:?}: wildcards are supported in the file name only"
        ));
    }
    if !name.contains(['*', '?']) {
        return Ok(if full.exists() {
            vec![full]
        } else {
            Vec::new()
        });
    }
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(&parent) {
        Ok(entries) => entries,
        Err(_) => return Ok(found),
    };
    for entry in entries.flatten() {
        let candidate = entry.file_name().to_string_lossy().into_owned();
        if !candidate.starts_with('.') && wildcard(&name, &candidate) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// `*` and `?` matching, as a shell does for one file name.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Notes the sections that are not programs; returns `[supervisord] environment`.
fn global_sections(sections: &[Located], doc: &mut Doc) -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::new();
    for Located { section, .. } in sections {
        let name = section.name.as_str();
        let place = &section.place;
        let kind = name.split(':').next().unwrap_or(name);
        match kind {
            "program" | "group" => {}
            "supervisord" => env = supervisord_section(section, doc)?,
            "unix_http_server" | "inet_http_server" | "supervisorctl" | "rpcinterface" => doc.note(
                place,
                false,
                format!("[{name}]: supervisord's control interface; pidone has its own control socket and API (docs/api.md)"),
            ),
            "eventlistener" => doc.note(place, true, format!("[{name}]: pidone has no event listeners")),
            "fcgi-program" => doc.note(place, true, format!("[{name}]: pidone does not open sockets for FastCGI programs")),
            _ => doc.note(place, true, format!("[{name}]: unknown section")),
        }
    }
    Ok(env)
}

/// `[supervisord]`: only `environment` carries over (into every program); the daemon's own
/// settings mean nothing under pidone.
fn supervisord_section(section: &Section, doc: &mut Doc) -> Result<Vec<(String, String)>, String> {
    const MEANINGLESS: &[&str] = &[
        "nodaemon",
        "pidfile",
        "logfile",
        "logfile_maxbytes",
        "logfile_backups",
        "loglevel",
        "minfds",
        "minprocs",
        "nocleanup",
        "childlogdir",
        "identifier",
        "strip_ansi",
        "silent",
        "directory",
    ];
    let mut env = Vec::new();
    for entry in &section.entries {
        let place = Place {
            file: section.place.file.clone(),
            line: entry.line,
        };
        let key = entry.key.as_str();
        if key == "environment" {
            let no_vars = Vars { pairs: &[] };
            let text = pyformat::expand(&entry.value, &no_vars, Target::Expanding)
                .map_err(|e| format!("{place}: {}", e.unwrap_or_default()))?;
            env = environment(&text).map_err(|e| format!("{place}: environment: {e}"))?;
        } else if MEANINGLESS.contains(&key) {
            doc.note(
                &place,
                false,
                format!("[supervisord] {key}: a setting of the supervisord daemon itself"),
            );
        } else if key == "user" {
            doc.note(&place, false, "[supervisord] user: run pidone as that user (docker --user), or set user on each service");
        } else if key == "umask" {
            doc.note(&place, true, "[supervisord] umask: pidone sets no umask; its children keep the one pidone was started with");
        } else {
            doc.note(&place, true, format!("[supervisord] {key}: unknown option"));
        }
    }
    Ok(env)
}

/// Each `[group:x]` and its programs.
fn groups(sections: &[Located]) -> Vec<(String, Vec<String>)> {
    sections
        .iter()
        .filter_map(|l| {
            let name = l.section.name.strip_prefix("group:")?;
            let programs = l.section.get("programs")?;
            let members = programs
                .value
                .split(',')
                .map(|p| p.trim().to_owned())
                .collect();
            Some((name.trim().to_owned(), members))
        })
        .collect()
}

/// `environment = A="1",B=2`: comma-separated `KEY=value` pairs, values possibly quoted.
pub fn environment(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            return Err(format!("expected KEY=value, found {rest:?}"));
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, tail) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &after[1..];
                let Some(end) = body.find(q) else {
                    return Err(format!("no closing quote in the value of {key}"));
                };
                (body[..end].to_owned(), &body[end + 1..])
            }
            _ => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        if key.is_empty() {
            return Err("a variable without a name".into());
        }
        pairs.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(pairs)
}

/// One `[program:x]` section and what it needs from the others.
struct Program<'a> {
    name: &'a str,
    located: &'a Located,
    groups: Vec<&'a str>,
    global_env: &'a [(String, String)],
}

impl Program<'_> {
    fn section(&self) -> &Section {
        &self.located.section
    }

    fn place(&self, entry: Option<&Entry>) -> Place {
        let line = entry.map_or(self.section().place.line, |e| e.line);
        Place {
            file: self.section().place.file.clone(),
            line,
        }
    }

    fn raw(&self, key: &str) -> Option<&Entry> {
        self.section().get(key)
    }

    fn number(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.raw(key) {
            None => Ok(default),
            Some(e) => e.value.trim().parse().map_err(|_| {
                format!(
                    "{}: {key}: not an integer: {:?}",
                    self.place(Some(e)),
                    e.value
                )
            }),
        }
    }

    /// The services of this program: one, or `numprocs` of them.
    fn services(&self) -> Result<Vec<(Service, i64)>, String> {
        if self.raw("command").is_none() {
            return Err(format!(
                "{}: [program:{}] has no command",
                self.section().place,
                self.name
            ));
        }
        let numprocs = self.number("numprocs", 1)?;
        let start = self.number("numprocs_start", 0)?;
        let priority = self.number("priority", 999)?;
        let pattern = self
            .raw("process_name")
            .map_or("%(program_name)s", |e| e.value.as_str());
        if numprocs < 1 {
            return Err(format!(
                "{}: numprocs must be at least 1",
                self.place(self.raw("numprocs"))
            ));
        }
        if numprocs > 1 && !pattern.contains("%(process_num)") {
            return Err(format!(
                "{}: process_name must contain %(process_num)s when numprocs > 1",
                self.place(self.raw("process_name").or(self.raw("numprocs")))
            ));
        }
        let mut out = Vec::new();
        for num in start..start + numprocs {
            out.push((self.service(num, numprocs)?, priority));
        }
        Ok(out)
    }

    fn service(&self, num: i64, numprocs: i64) -> Result<Service, String> {
        let group = self.groups.first().copied().unwrap_or(self.name);
        let pairs = [
            ("program_name", self.name.to_owned()),
            ("group_name", group.to_owned()),
            ("process_num", num.to_string()),
            ("numprocs", numprocs.to_string()),
            ("here", self.located.here.clone()),
        ];
        let vars = Vars { pairs: &pairs };
        let pattern_entry = self.raw("process_name");
        let pattern = pattern_entry.map_or("%(program_name)s", |e| e.value.as_str());
        let raw_name = pyformat::expand(pattern, &vars, Target::Plain).map_err(|e| {
            format!(
                "{}: process_name: {}",
                self.place(pattern_entry),
                e.unwrap_or_else(|| "%(ENV_..)s in a name".into())
            )
        })?;
        let Some(name) = words::service_name(&raw_name) else {
            return Err(format!(
                "{}: process_name {raw_name:?} gives no usable name",
                self.place(pattern_entry)
            ));
        };
        let mut s = Service::new(&name);
        if name != raw_name {
            s.note(
                &self.place(pattern_entry),
                false,
                format!("renamed from {raw_name:?}: pidone names are [A-Za-z0-9_.-]"),
            );
        }
        Mapper {
            p: self,
            vars,
            s: &mut s,
        }
        .map_all()?;
        Ok(s)
    }
}

/// Maps the options of one process into its service.
struct Mapper<'a, 'b> {
    p: &'a Program<'a>,
    vars: Vars<'b>,
    s: &'a mut Service,
}

/// Options handled elsewhere (names, counts, logs as a whole).
const STRUCTURAL: &[&str] = &["process_name", "numprocs", "numprocs_start", "priority"];

const LOG_KEYS: &[&str] = &[
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
];

impl Mapper<'_, '_> {
    fn expand(&self, e: &Entry, target: Target) -> Result<Option<String>, String> {
        match pyformat::expand(&e.value, &self.vars, target) {
            Ok(text) => Ok(Some(text)),
            Err(Some(reason)) => Err(format!("{}: {}: {reason}", self.p.place(Some(e)), e.key)),
            Err(None) => Ok(None),
        }
    }

    /// Expands for a key pidone expands itself (`ENV_X` becomes `${X}`).
    fn text(&self, e: &Entry) -> Result<String, String> {
        pyformat::expand(&e.value, &self.vars, Target::Expanding).map_err(|r| {
            format!(
                "{}: {}: {}",
                self.p.place(Some(e)),
                e.key,
                r.unwrap_or_default()
            )
        })
    }

    fn lost(&mut self, e: &Entry, text: String) {
        let place = self.p.place(Some(e));
        self.s.note(&place, true, text);
    }

    fn ignored(&mut self, e: &Entry, text: String) {
        let place = self.p.place(Some(e));
        self.s.note(&place, false, text);
    }

    fn map_all(mut self) -> Result<(), String> {
        for e in &self.p.section().entries {
            if STRUCTURAL.contains(&e.key.as_str()) || LOG_KEYS.contains(&e.key.as_str()) {
                continue;
            }
            self.option(e)?;
        }
        self.environment()?;
        self.logs()?;
        self.groups();
        Ok(())
    }

    /// `[group:x] programs = ...`: `groups = ["x"]` on each member (supervisorctl's `x:*` is
    /// pidone's `@x`), the name made a valid one when it is not.
    fn groups(&mut self) {
        let place = &self.p.section().place;
        let mut kept: Vec<String> = Vec::new();
        for &group in &self.p.groups {
            match words::service_name(group) {
                Some(new) if new == group => kept.push(new),
                Some(new) => {
                    let text = format!("supervisord group {group:?} becomes group {new:?}");
                    self.s.note(place, false, text);
                    kept.push(new);
                }
                None => {
                    let text = format!("supervisord group {group:?} gives no usable group name");
                    self.s.note(place, true, text);
                }
            }
        }
        if !kept.is_empty() {
            self.s.set("groups", Value::strs(&kept));
        }
    }

    fn option(&mut self, e: &Entry) -> Result<(), String> {
        let v = e.value.trim();
        let bad = |what: &str| format!("{}: {}: {what}: {v:?}", self.p.place(Some(e)), e.key);
        match e.key.as_str() {
            "command" => {
                let text = self.text(e)?;
                let argv = words::split(&text).map_err(|r| bad(&r))?;
                if argv.is_empty() {
                    return Err(bad("an empty command"));
                }
                self.s.set("command", Value::strs(&argv));
            }
            "environment" => {}
            "directory" => {
                let dir = self.text(e)?;
                self.s.set("workdir", Value::Str(dir));
            }
            "user" => match self.expand(e, Target::Plain)? {
                Some(user) => self.s.set("user", Value::Str(user)),
                None => self.lost(
                    e,
                    "user: %(ENV_..)s in user (pidone does not expand variables there)".into(),
                ),
            },
            "autostart" => {
                if !boolean(v).ok_or_else(|| bad("not a boolean"))? {
                    self.s.set("enabled", Value::Bool(false));
                    self.ignored(
                        e,
                        "autostart=false: the service is disabled; start it with pidone start"
                            .into(),
                    );
                }
            }
            "autorestart" => {
                let restart = match v.to_ascii_lowercase().as_str() {
                    "unexpected" => "on-failure",
                    other => match boolean(other) {
                        Some(true) => "always",
                        Some(false) => "never",
                        None => return Err(bad("not true, false or unexpected")),
                    },
                };
                self.s.set("restart", Value::str(restart));
            }
            "exitcodes" => {
                let mut codes = Vec::new();
                for code in v.split(',') {
                    codes.push(Value::Int(
                        code.trim()
                            .parse()
                            .map_err(|_| bad("not a list of exit codes"))?,
                    ));
                }
                self.s.set("success_exit_codes", Value::List(codes));
            }
            "startsecs" => {
                let secs: u64 = v.parse().map_err(|_| bad("not a number of seconds"))?;
                if secs > 0 {
                    self.s.set(
                        "ready",
                        Value::Table(vec![("after".into(), Value::Str(format!("{secs}s")))]),
                    );
                }
            }
            "startretries" => {
                let n: i64 = v.parse().map_err(|_| bad("not an integer"))?;
                self.s.set("max_restarts", Value::Int(n));
            }
            "stopsignal" => self
                .s
                .set("stop_signal", Value::str(v.to_ascii_uppercase())),
            "stopwaitsecs" => {
                let secs: u64 = v.parse().map_err(|_| bad("not a number of seconds"))?;
                self.s.set("stop_timeout", Value::Str(format!("{secs}s")));
            }
            "stopasgroup" | "killasgroup" => self.ignored(
                e,
                format!(
                    "{}: pidone always signals the service's whole process group",
                    e.key
                ),
            ),
            "umask" => self.lost(e, format!("umask={v}: pidone sets no umask per service")),
            "serverurl" => self.ignored(
                e,
                "serverurl: for supervisorctl inside the program; use pidone's control socket"
                    .into(),
            ),
            "stdout_capture_maxbytes"
            | "stderr_capture_maxbytes"
            | "stdout_events_enabled"
            | "stderr_events_enabled" => {
                if !matches!(v, "0" | "false" | "0KB" | "0MB") {
                    self.lost(e, format!("{}: pidone has no event listeners", e.key));
                }
            }
            "stdout_syslog" | "stderr_syslog" => {
                if boolean(v) != Some(false) {
                    self.lost(e, format!("{}: pidone does not write to syslog", e.key));
                }
            }
            other => self.lost(e, format!("unknown option {other:?}")),
        }
        Ok(())
    }

    /// `[supervisord] environment`, then the program's own, into `env`.
    fn environment(&mut self) -> Result<(), String> {
        let mut env: Vec<(String, String)> = self.p.global_env.to_vec();
        if let Some(e) = self.p.raw("environment") {
            let text = self.text(e)?;
            for (k, v) in environment(&text)
                .map_err(|r| format!("{}: environment: {r}", self.p.place(Some(e))))?
            {
                env.retain(|(old, _)| *old != k);
                env.push((k, v));
            }
        }
        if !env.is_empty() {
            self.s.set(
                "env",
                Value::Table(env.into_iter().map(|(k, v)| (k, Value::Str(v))).collect()),
            );
        }
        Ok(())
    }

    fn logs(&mut self) -> Result<(), String> {
        crate::supervisord_logs::map(self.p.section(), &self.vars, self.s)
    }
}

/// supervisord's booleans.
pub fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// supervisord starts lower `priority` first and stops it last: each service comes `after` the
/// services of the next lower priority present.
fn order_by_priority(services: &mut [(Service, i64)]) {
    let mut levels: Vec<i64> = services.iter().map(|(_, p)| *p).collect();
    levels.sort_unstable();
    levels.dedup();
    for i in 0..services.len() {
        let p = services[i].1;
        let Some(pos) = levels.iter().position(|l| *l == p) else {
            continue;
        };
        let Some(prev) = pos.checked_sub(1).and_then(|i| levels.get(i)) else {
            continue;
        };
        let before: Vec<Value> = services
            .iter()
            .filter(|(_, q)| q == prev)
            .map(|(s, _)| Value::str(&s.name))
            .collect();
        services[i].0.set("after", Value::List(before));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_pairs_with_quotes_and_commas() {
        let env = environment("A=\"x, y\",B=2, C='z'").unwrap();
        assert_eq!(env[0], ("A".into(), "x, y".into()));
        assert_eq!(env[1], ("B".into(), "2".into()));
        assert!(environment("A=\"x").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.conf", "web.conf"));
        assert!(!wildcard("*.conf", "web.ini"));
        assert!(wildcard("w?b*", "web.ini"));
    }
}
