//! One service resolved against the outside world: its user and groups in the image's user
//! database, its environment (pidone's, the user's, `env_file`, `env`, `${VAR}` expansion), its
//! directories and programs found on `PATH`, its checks' probes. Problems here are "soft":
//! reported only for an enabled service, since an image may ship services it turns off.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::ErrorKind;
use super::model::{
    CheckSpec, DEFAULT_LOG_KEEP, DEFAULT_PATH, Env, FileLog, ListenAddr, LogMode, OnFailure, Probe,
    Restart, Secret,
};
use super::parse::{self, RawCheck, RawProbe, RawService};
use super::resolve::{Loader, Unit, restart_policy};
use super::{expand, limits};
use crate::core::zone::Zone;
use crate::os::controls::Controls;
use crate::os::users::{Credentials, UserDb, UserError};

/// Where an image keeps its time zones (the `tzdata` package), under the root of the load.
const ZONEINFO: &str = "usr/share/zoneinfo";

/// Reads zone `name` from the image's zoneinfo; the error names the file.
fn read_zone(root: &Path, name: &str) -> Result<Zone, String> {
    let path = root.join(ZONEINFO).join(name);
    let bytes = std::fs::read(&path).map_err(|err| {
        let hint = match err.kind() {
            io::ErrorKind::NotFound => " (is the tzdata package installed in the image?)",
            _ => "",
        };
        format!("cannot read {}: {err}{hint}", path.display())
    })?;
    Zone::parse(&bytes).map_err(|err| format!("{}: {err}", path.display()))
}

/// The parts of a service resolved against the outside world.
#[derive(Default)]
pub(super) struct Resolved {
    pub(super) argv: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) user: Option<Credentials>,
    pub(super) workdir: Option<PathBuf>,
    pub(super) pre_script: Option<Vec<String>>,
    pub(super) post_script: Option<Vec<String>>,
    #[cfg(feature = "s6")]
    pub(super) finish: Option<Vec<String>>,
    #[cfg(feature = "s6")]
    pub(super) env_dir: Option<PathBuf>,
    pub(super) log: LogMode,
    pub(super) checks: Vec<CheckSpec>,
    pub(super) controls: Controls,
    pub(super) secrets: Vec<Secret>,
    pub(super) cgroup: Vec<(&'static str, String)>,
    /// The keys of the cgroup limits dropped (see `ServiceSpec::cgroup_skipped`).
    pub(super) cgroup_skipped: String,
    /// `timezone`, read from the image's zoneinfo.
    pub(super) zone: Option<Zone>,
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

/// Expands a service's strings against its environment and finds its programs, collecting the
/// problems as soft ones.
struct Expander<'a> {
    raw: &'a RawService,
    env: &'a Env,
    soft: Soft,
}

impl Expander<'_> {
    /// Where `key` is written, for errors.
    fn at(&self, key: &'static str) -> (usize, &'static str) {
        (self.raw.line_of(key), key)
    }

    fn push(&mut self, (line, key): (usize, &str), kind: ErrorKind) {
        self.soft.push((line, Some(key.to_owned()), kind));
    }

    /// `text` with `${VAR}` expanded, or `None` after reporting why not.
    fn expand(&mut self, text: &str, at: (usize, &str)) -> Option<String> {
        let env = self.env;
        expand::expand(text, |n| env.get(n).map(String::as_str))
            .map_err(|kind| self.push(at, kind))
            .ok()
    }

    /// One string of `key`, expanded (empty after an error, which is reported).
    fn one(&mut self, text: &str, key: &'static str) -> String {
        self.expand(text, self.at(key)).unwrap_or_default()
    }

    /// Expands an argv. A program that expands to nothing is refused like one written empty
    /// (`what` names it); one whose expansion failed is already reported.
    fn argv(&mut self, list: &[String], what: &str, at: (usize, &str)) -> Vec<String> {
        let argv: Vec<Option<String>> = list.iter().map(|x| self.expand(x, at)).collect();
        if let (Some(Some(program)), Some(written)) = (argv.first(), list.first())
            && program.is_empty()
        {
            self.push(at, parse::empty_after(what, written, program));
        }
        argv.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// Finds `argv[0]` on the service's `PATH` (see [`resolve_program`]).
    fn program(&mut self, argv: &mut Vec<String>, shell: bool, at: (usize, &str), base: &Path) {
        let path_var = self.env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
        resolve_program(argv, shell, at, path_var, base, &mut self.soft);
    }

    /// One check with its probe expanded and its program found; `None` if its address is
    /// unusable (reported).
    fn check(&mut self, c: &RawCheck, base: &Path) -> Option<CheckSpec> {
        let at = (c.probe_line, c.probe_key.as_str());
        let probe = match &c.probe {
            RawProbe::Exec(list) => {
                let mut argv = self.argv(list, "program", at);
                self.program(&mut argv, false, at, base);
                Probe::Exec(argv)
            }
            RawProbe::Shell(text) => {
                let command = self.expand(text, at);
                if let Some(blank) = command.as_deref().filter(|c| c.trim().is_empty()) {
                    self.push(at, parse::empty_after("command", text, blank));
                }
                let command = command.unwrap_or_default();
                let mut argv = vec![parse::SHELL.to_owned(), "-c".to_owned(), command];
                self.program(&mut argv, false, at, base);
                Probe::Exec(argv)
            }
            RawProbe::Tcp(text) | RawProbe::Http(text) => {
                let text = self.expand(text, at)?;
                let parsed = match c.probe {
                    RawProbe::Tcp(_) => parse::tcp_probe(&text),
                    _ => parse::http_probe(&text),
                };
                parsed.map_err(|kind| self.push(at, kind)).ok()?
            }
        };
        Some(CheckSpec {
            name: c.name.clone(),
            probe,
            level: c.level,
            initial_delay: c.initial_delay,
            period: c.period,
            timeout: c.timeout,
            success_threshold: c.success_threshold,
            failure_threshold: c.failure_threshold,
            on_failure: c
                .on_failure
                .unwrap_or_else(|| health_check_action(self.raw)),
        })
    }
}

impl Loader<'_> {
    /// Resolves user, environment, paths and programs of one unit. Problems here are reported
    /// only for enabled units (see the module documentation).
    pub(super) fn resolve_unit(&mut self, raw: &RawService, unit: &Unit) -> Resolved {
        // Past the limit (reported), the rest is not read: the config is refused anyway.
        if self.env_bytes > limits::MAX_ENVIRONMENT_BYTES {
            return Resolved::default();
        }
        let mut soft: Soft = Vec::new();
        let dir = self.dir_of(raw.file);
        let user = raw
            .user
            .as_deref()
            .and_then(|spec| self.resolve_user(raw, spec, &mut soft));
        let mut base = self.base_env(&raw.controls);
        // The top-level env_file, over pidone's environment (see `stackenv`).
        base.extend(self.stack_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let env = service_env(raw, unit, user.as_ref(), base, &dir, &mut soft);
        self.count_env(raw, &env);
        let (controls, secrets, hidden) = self.resolve_controls(raw, unit, &env);
        let (cgroup, cgroup_skipped) = self.resolve_cgroup(raw, unit);
        // Already that user and group (`docker run --user`, Kubernetes' runAsUser): nothing to
        // switch, and without root `setgroups` would fail. HOME and USER are set all the same.
        let (euid, egid) = (self.ctx.euid, self.ctx.egid);
        let user = user.filter(|c| euid == 0 || (c.uid, c.gid) != (euid, egid));
        let mut x = Expander {
            raw,
            env: &env,
            soft,
        };
        let workdir = raw
            .workdir
            .as_deref()
            .map(|w| dir.join(x.one(w, "workdir")));
        let log = match (&raw.log, &raw.log_file) {
            (_, Some(file)) => LogMode::File(FileLog {
                path: dir.join(x.one(file, "log_file")),
                max_size: raw.log_max_size,
                keep: raw.log_keep.unwrap_or(DEFAULT_LOG_KEEP),
                json: raw.log_json,
                console: raw.log.is_some(),
            }),
            (Some(mode), None) => mode.clone(),
            (None, None) => LogMode::Prefix,
        };
        let base = workdir.as_deref().unwrap_or(&dir);
        let command = raw.command.as_deref().unwrap_or_default();
        let mut argv = x.argv(command, "program", x.at("command"));
        argv.extend(raw.args.iter().map(|item| x.one(item, "args")));
        x.program(&mut argv, false, x.at("command"), base);
        let post_key = match raw.key_lines.contains_key("post_script") {
            true => "post_script",
            false => "pos_script",
        };
        let [pre_script, post_script, _finish @ ..] = [
            ("pre_script", &raw.pre_script),
            (post_key, &raw.post_script),
            #[cfg(feature = "s6")]
            ("finish", &raw.finish),
        ]
        .map(|(key, script)| {
            let (list, single) = script.as_ref()?;
            let mut argv = x.argv(list, "script", x.at(key));
            x.program(&mut argv, *single, x.at(key), base);
            Some(argv)
        });
        #[cfg(feature = "s6")]
        let [finish] = _finish;
        #[cfg(feature = "s6")]
        let env_dir = (raw.env_dir.as_deref()).map(|d| dir.join(x.one(d, "env_dir")));
        let checks = raw.checks.iter().filter_map(|c| x.check(c, base)).collect();
        let zone = raw.timezone.as_deref().and_then(|name| {
            read_zone(&self.ctx.root, name)
                .map_err(|message| x.push(x.at("timezone"), ErrorKind::BadValue { message }))
                .ok()
        });
        for l in &raw.listen {
            if let ListenAddr::Unix(path) = &l.addr
                && let Ok(meta) = std::fs::symlink_metadata(path)
                && !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type())
            {
                let message = format!("{}: {} exists and is not a socket", l.text, path.display());
                x.push(x.at("listen"), ErrorKind::BadValue { message });
            }
        }
        if unit.enabled {
            for (line, key, kind) in x.soft {
                self.error(raw, line, key.as_deref(), kind);
            }
        }
        Resolved {
            argv,
            env: env
                .into_iter()
                .filter(|(k, _)| !hidden.contains(k))
                .collect(),
            user,
            workdir,
            pre_script,
            post_script,
            #[cfg(feature = "s6")]
            finish,
            #[cfg(feature = "s6")]
            env_dir,
            log,
            checks,
            controls,
            secrets,
            cgroup,
            cgroup_skipped,
            zone,
        }
    }

    /// Adds a unit's environment to the bytes of all of them, reporting the unit that takes
    /// them past [`limits::MAX_ENVIRONMENT_BYTES`] (at its `env_file`, else its `env`).
    fn count_env(&mut self, raw: &RawService, env: &Env) {
        let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
        let before = self.env_bytes;
        self.env_bytes = before.saturating_add(bytes);
        let max = limits::MAX_ENVIRONMENT_BYTES;
        if before <= max
            && let Some(kind) = limits::too_long("environment of all services", self.env_bytes, max)
        {
            let key = match raw.env_file {
                Some(_) => "env_file",
                None => "env",
            };
            self.error(raw, raw.line_of(key), Some(key), kind);
        }
    }

    /// The directory of source `file`, against which its relative paths are taken.
    pub(super) fn dir_of(&self, file: usize) -> PathBuf {
        self.sources
            .get(file)
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
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
        let (euid, egid) = (self.ctx.euid, self.ctx.egid);
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
            Ok(c) => {
                if euid != 0 && (c.uid, c.gid) != (euid, egid) {
                    let kind = ErrorKind::UserNeedsRoot {
                        user: spec.to_owned(),
                        uid: c.uid,
                        gid: c.gid,
                        euid,
                        egid,
                        running: db.name_of(euid).map(str::to_owned),
                    };
                    soft.push((raw.line_of("user"), Some("user".into()), kind));
                }
                Some(c)
            }
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

/// Builds a service's environment: `base` (pidone's, or what `inherit_env = false` keeps),
/// then the user's HOME/USER/LOGNAME, then `env_file`, then `env` (expanded against what came
/// before), then `PIDONE_INSTANCE`.
fn service_env(
    raw: &RawService,
    unit: &Unit,
    user: Option<&Credentials>,
    base: Env,
    dir: &Path,
    soft: &mut Soft,
) -> Env {
    let mut env = base;
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
pub(super) fn env_file(path: &Path) -> Result<Vec<(String, String)>, Vec<ErrorKind>> {
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
