//! One service resolved against the outside world: its user and groups in the image's user
//! database, its environment (pidone's, the user's, `env_file`, `env`, `${VAR}` expansion), its
//! directories and programs found on `PATH`, its checks' probes. Problems here are "soft":
//! reported only for an enabled service, since an image may ship services it turns off.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::ErrorKind;
use super::model::{CheckSpec, DEFAULT_PATH, Env, LogMode, OnFailure, Probe, Restart};
use super::parse::{self, RawProbe, RawService};
use super::resolve::{Loader, Unit, restart_policy};
use super::{expand, limits};
use crate::os::users::{Credentials, UserDb, UserError};

/// The parts of a service resolved against the outside world.
#[derive(Default)]
pub(super) struct Resolved {
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) user: Option<Credentials>,
    pub(super) workdir: Option<PathBuf>,
    pub(super) pre_script: Option<Vec<String>>,
    pub(super) post_script: Option<Vec<String>>,
    pub(super) log: LogMode,
    pub(super) checks: Vec<CheckSpec>,
}

/// Problems found while resolving a service against the outside world, reported only if the
/// service is enabled: line, key, what.
type Soft = Vec<(usize, Option<String>, ErrorKind)>;

/// The outcome of looking a program up.
enum Lookup {
    Found(PathBuf),
    NotExecutable(PathBuf),
    Missing(String),
}

impl Loader<'_> {
    /// Resolves user, environment, paths and programs of one unit. Problems here are reported
    /// only for enabled units (see the module documentation).
    pub(super) fn resolve_unit(&mut self, raw: &RawService, unit: &Unit) -> Resolved {
        let mut soft: Soft = Vec::new();
        let dir = self
            .sources
            .get(raw.file)
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let user = raw
            .user
            .as_deref()
            .and_then(|spec| self.resolve_user(raw, spec, &mut soft));
        let env = service_env(raw, unit, user.as_ref(), &self.ctx.env, &dir, &mut soft);

        let expand_at = |text: &str, (line, key): (usize, &str), soft: &mut Soft| {
            expand::expand(text, |n| env.get(n).map(String::as_str))
                .map_err(|kind| soft.push((line, Some(key.to_owned()), kind)))
                .ok()
        };
        let expand_one = |text: &str, key: &'static str, soft: &mut Soft| {
            expand_at(text, (raw.line_of(key), key), soft).unwrap_or_default()
        };
        // Expands an argv. A program that expands to nothing is refused like one written empty
        // (`what` names it); one whose expansion failed is already reported.
        let expand_argv = |list: &[String], what: &str, at: (usize, &str), soft: &mut Soft| {
            let argv: Vec<Option<String>> = list.iter().map(|x| expand_at(x, at, soft)).collect();
            if let (Some(Some(program)), Some(written)) = (argv.first(), list.first())
                && program.is_empty()
            {
                let kind = parse::empty_after(what, written, program);
                soft.push((at.0, Some(at.1.to_owned()), kind));
            }
            argv.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<String>>()
        };
        let workdir = raw
            .workdir
            .as_deref()
            .map(|w| dir.join(expand_one(w, "workdir", &mut soft)));
        let log = match (&raw.log, &raw.log_file) {
            (_, Some(file)) => LogMode::File(dir.join(expand_one(file, "log_file", &mut soft))),
            (Some(mode), None) => mode.clone(),
            (None, None) => LogMode::Prefix,
        };
        let command = raw.command.as_deref().unwrap_or_default();
        let mut argv = expand_argv(
            command,
            "program",
            (raw.line_of("command"), "command"),
            &mut soft,
        );
        argv.extend(
            raw.args
                .iter()
                .map(|item| expand_one(item, "args", &mut soft)),
        );
        let post_key = if raw.key_lines.contains_key("post_script") {
            "post_script"
        } else {
            "pos_script"
        };
        let mut scripts = [
            ("pre_script", &raw.pre_script),
            (post_key, &raw.post_script),
        ]
        .map(|(key, script)| {
            script.as_ref().map(|(list, single)| {
                let argv = expand_argv(list, "script", (raw.line_of(key), key), &mut soft);
                (key, argv, *single)
            })
        });

        let path_var = env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
        let base = workdir.as_deref().unwrap_or(&dir);
        let at = |key: &'static str| (raw.line_of(key), key);
        resolve_program(&mut argv, false, at("command"), path_var, base, &mut soft);
        for (key, argv, single) in scripts.iter_mut().flatten() {
            resolve_program(argv, *single, at(key), path_var, base, &mut soft);
        }
        let [pre_script, post_script] = scripts.map(|s| s.map(|(_, argv, _)| argv));

        let mut checks = Vec::with_capacity(raw.checks.len());
        for c in &raw.checks {
            let at = (c.probe_line, c.probe_key.as_str());
            let probe = match &c.probe {
                RawProbe::Exec(list) => {
                    let mut argv = expand_argv(list, "program", at, &mut soft);
                    resolve_program(&mut argv, false, at, path_var, base, &mut soft);
                    Probe::Exec(argv)
                }
                RawProbe::Shell(text) => {
                    let command = expand_at(text, at, &mut soft);
                    if let Some(blank) = command.as_deref().filter(|c| c.trim().is_empty()) {
                        let kind = parse::empty_after("command", text, blank);
                        soft.push((at.0, Some(at.1.to_owned()), kind));
                    }
                    let command = command.unwrap_or_default();
                    let mut argv = vec![parse::SHELL.to_owned(), "-c".to_owned(), command];
                    resolve_program(&mut argv, false, at, path_var, base, &mut soft);
                    Probe::Exec(argv)
                }
                RawProbe::Tcp(text) | RawProbe::Http(text) => {
                    let Some(text) = expand_at(text, at, &mut soft) else {
                        continue;
                    };
                    let parsed = match c.probe {
                        RawProbe::Tcp(_) => parse::tcp_probe(&text),
                        _ => parse::http_probe(&text),
                    };
                    match parsed {
                        Ok(probe) => probe,
                        Err(kind) => {
                            soft.push((at.0, Some(at.1.to_owned()), kind));
                            continue;
                        }
                    }
                }
            };
            checks.push(CheckSpec {
                name: c.name.clone(),
                probe,
                level: c.level,
                initial_delay: c.initial_delay,
                period: c.period,
                timeout: c.timeout,
                success_threshold: c.success_threshold,
                failure_threshold: c.failure_threshold,
                on_failure: c.on_failure.unwrap_or_else(|| health_check_action(raw)),
            });
        }

        if unit.enabled {
            for (line, key, kind) in soft {
                self.error(raw, line, key.as_deref(), kind);
            }
        }
        Resolved {
            argv,
            env: env.into_iter().collect(),
            user,
            workdir,
            pre_script,
            post_script,
            log,
            checks,
        }
    }

    /// Resolves `user` (and `group`) against the image's user database.
    fn resolve_user(
        &mut self,
        raw: &RawService,
        spec: &str,
        soft: &mut Soft,
    ) -> Option<Credentials> {
        if raw.group.is_some() && spec.contains(':') {
            self.error(
                raw,
                raw.line_of("group"),
                Some("group"),
                ErrorKind::Conflict {
                    other: "user = \"user:group\"".into(),
                },
            );
        }
        if self.ctx.euid != 0 {
            let euid = self.ctx.euid;
            soft.push((
                raw.line_of("user"),
                Some("user".into()),
                ErrorKind::UserNeedsRoot { euid },
            ));
        }
        let passwd = self.ctx.root.join("etc/passwd");
        let db = match self.user_db() {
            Ok(db) => db,
            Err(error) => {
                let kind = ErrorKind::Read {
                    path: passwd,
                    error,
                };
                soft.push((raw.line_of("user"), Some("user".into()), kind));
                return None;
            }
        };
        match db.resolve(spec, raw.group.as_deref()) {
            Ok(credentials) => Some(credentials),
            Err(e) => {
                let key = match e {
                    UserError::UnknownGroup { .. }
                        if raw.group.is_some() && !spec.contains(':') =>
                    {
                        "group"
                    }
                    _ => "user",
                };
                let kind = ErrorKind::User {
                    message: e.to_string(),
                };
                soft.push((raw.line_of(key), Some(key.into()), kind));
                None
            }
        }
    }

    /// The image's user database, read once.
    fn user_db(&mut self) -> Result<&UserDb, String> {
        if self.users.is_none() {
            self.users = Some(UserDb::load(&self.ctx.root).map_err(|e| e.to_string()));
        }
        match &self.users {
            Some(Ok(db)) => Ok(db),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not loaded".into()),
        }
    }
}

/// What go-overlay's `health_check` does once `retries` runs failed (its
/// `handleUnhealthyService`): restart a service that restarts, else shut down for a required
/// one, else nothing. The restart policy is pidone's resolved one (`on-failure` by default).
fn health_check_action(raw: &RawService) -> OnFailure {
    match restart_policy(raw) {
        Restart::Always | Restart::OnFailure => OnFailure::Restart,
        Restart::Never if raw.required => OnFailure::Shutdown,
        Restart::Never => OnFailure::Ignore,
    }
}

/// Finds a program the way `execvp` would, but at load time: a name with a `/` is a path
/// (relative ones are taken from `base`), anything else is searched on `path_var`. Empty and
/// relative `PATH` entries are skipped, since they would depend on the working directory.
fn find_program(program: &str, path_var: &str, base: &Path) -> Lookup {
    if program.contains('/') {
        let path = base.join(program);
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Lookup::Found(path),
            Ok(_) => Lookup::NotExecutable(path),
            Err(e) => Lookup::Missing(match e.kind() {
                io::ErrorKind::NotFound => "does not exist".into(),
                _ => format!("cannot be checked: {e}"),
            }),
        };
    }
    for entry in path_var.split(':').filter(|e| e.starts_with('/')) {
        let candidate = Path::new(entry).join(program);
        if let Ok(m) = std::fs::metadata(&candidate)
            && m.is_file()
            && m.permissions().mode() & 0o111 != 0
        {
            return Lookup::Found(candidate);
        }
    }
    let hint = if program.contains(char::is_whitespace) {
        " (a string command is one program path, run without a shell; use an array for arguments)"
    } else {
        ""
    };
    Lookup::Missing(format!("not found on PATH {path_var:?}{hint}"))
}

/// Builds a service's environment: pidone's, then the user's HOME/USER/LOGNAME, then
/// `env_file`, then `env` (expanded against what came before), then `PIDONE_INSTANCE`.
fn service_env(
    raw: &RawService,
    unit: &Unit,
    user: Option<&Credentials>,
    base: &Env,
    dir: &Path,
    soft: &mut Soft,
) -> Env {
    let mut env = base.clone();
    if let Some(c) = user {
        env.insert("HOME".into(), c.home.display().to_string());
        env.insert("USER".into(), c.name.clone());
        env.insert("LOGNAME".into(), c.name.clone());
    }
    if let Some(i) = unit.instance {
        env.insert("PIDONE_INSTANCE".into(), i.to_string());
    }
    if let Some(text) = &raw.env_file {
        let line = raw.line_of("env_file");
        let vars = expand::expand(text, |n| env.get(n).map(String::as_str))
            .map_err(|kind| vec![kind])
            .and_then(|p| env_file(&dir.join(p)));
        match vars {
            Ok(vars) => env.extend(vars),
            Err(kinds) => soft.extend(
                kinds
                    .into_iter()
                    .map(|k| (line, Some("env_file".into()), k)),
            ),
        }
    }
    let mut table = Vec::with_capacity(raw.env.len());
    for (name, value, line) in &raw.env {
        match expand::expand(value, |n| env.get(n).map(String::as_str)) {
            Ok(v) => table.push((name.clone(), v)),
            Err(kind) => soft.push((*line, Some("env".into()), kind)),
        }
    }
    env.extend(table);
    // Set last so that PIDONE_INSTANCE is always the instance number, whatever env says.
    if let Some(i) = unit.instance {
        env.insert("PIDONE_INSTANCE".into(), i.to_string());
    }
    env
}

/// The variables of an env file, or every problem with it.
fn env_file(path: &Path) -> Result<Vec<(String, String)>, Vec<ErrorKind>> {
    let text = crate::io::files::read_text(path, limits::MAX_ENV_FILE_BYTES).map_err(|e| {
        let error = e.to_string();
        vec![ErrorKind::Read {
            path: path.to_owned(),
            error,
        }]
    })?;
    let vars = crate::config::envfile::parse(&text).map_err(|problems| {
        let kind = |p: crate::config::envfile::EnvFileError| ErrorKind::EnvFile {
            path: path.to_owned(),
            message: p.to_string(),
        };
        problems.into_iter().map(kind).collect::<Vec<_>>()
    })?;
    match limits::too_many("variables", vars.len(), limits::MAX_ENV_VARS) {
        Some(kind) => Err(vec![kind]),
        None => Ok(vars),
    }
}

/// Replaces `argv[0]` with the path of the program it names; problems are reported for `key`
/// at `line`. With `shell_fallback` (a script given as one string), a file that exists but is
/// not executable runs through `bash` (or `sh`) from the service's PATH, as go-overlay does. An
/// empty program (an expansion that already failed) is left alone.
fn resolve_program(
    argv: &mut Vec<String>,
    shell_fallback: bool,
    (line, key): (usize, &str),
    path_var: &str,
    base: &Path,
    soft: &mut Soft,
) {
    let Some(program) = argv.first().cloned().filter(|p| !p.is_empty()) else {
        return;
    };
    let not_found = |program: String, reason: String| {
        (
            line,
            Some(key.to_owned()),
            ErrorKind::ProgramNotFound { program, reason },
        )
    };
    match find_program(&program, path_var, base) {
        Lookup::Found(path) => {
            if let Some(first) = argv.first_mut() {
                *first = path.display().to_string();
            }
        }
        Lookup::NotExecutable(path) if shell_fallback => {
            let shell =
                ["bash", "sh"]
                    .iter()
                    .find_map(|sh| match find_program(sh, path_var, base) {
                        Lookup::Found(p) => Some(p),
                        _ => None,
                    });
            match shell {
                Some(sh) => *argv = vec![sh.display().to_string(), path.display().to_string()],
                None => soft.push(not_found(
                    path.display().to_string(),
                    "is not executable, and no sh was found on PATH to run it".into(),
                )),
            }
        }
        Lookup::NotExecutable(path) => soft.push(not_found(
            path.display().to_string(),
            "is not an executable file".into(),
        )),
        Lookup::Missing(reason) => soft.push(not_found(program, reason)),
    }
}
