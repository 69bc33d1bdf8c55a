//! A service's process controls against the world: the environment it starts from
//! (`inherit_env`, `env_allow`), its secret files (readable now, unless a `pre_script` may
//! create them), `*_FILE` variables turned into secrets (`env_from_files`), and resource limits
//! that an unprivileged pidone could not raise. Problems are reported only for enabled services,
//! as in `outside`, at the file and line of the key (which may be in `[defaults]`).

use std::io;
use std::path::Path;

use super::error::{ConfigError, ErrorKind, Location};
use super::limits;
use super::model::{DEFAULT_PATH, Env, Secret};
use super::parse::{At, RawControls, RawService};
use super::resolve::{Loader, Unit};
use crate::os::controls::{Controls, resource_name};

/// Reads a secret: a regular file of at most [`limits::MAX_VALUE_LEN`] bytes of text without
/// NUL, one trailing newline removed.
pub fn read_secret(path: &Path) -> io::Result<String> {
    let mut text = crate::io::files::read_text(path, limits::MAX_VALUE_LEN as u64)?;
    if text.contains('\0') {
        return Err(io::Error::other("contains a NUL byte"));
    }
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

impl Loader<'_> {
    /// The environment a service starts from: pidone's whole one, or with `inherit_env = false`
    /// only the variables `env_allow` names, and `PATH` (the default one unless allowed).
    pub(super) fn base_env(&self, c: &RawControls) -> Env {
        if c.inherit_env != Some(false) {
            return self.ctx.env.clone();
        }
        let mut env = Env::new();
        for name in c.env_allow.as_deref().unwrap_or_default() {
            if let Some(value) = self.ctx.env.get(name) {
                env.insert(name.clone(), value.clone());
            }
        }
        if !env.contains_key("PATH") {
            env.insert("PATH".into(), DEFAULT_PATH.into());
        }
        env
    }

    /// The controls and secrets of one unit. With `env_from_files`, each `NAME_FILE` variable of
    /// `env` becomes the secret `NAME`; those variables are returned last, to leave `env`.
    pub(super) fn resolve_controls(
        &mut self,
        raw: &RawService,
        unit: &Unit,
        env: &Env,
    ) -> (Controls, Vec<Secret>, Vec<String>) {
        let c = &raw.controls;
        let mut problems: Vec<(At, String, ErrorKind)> = Vec::new();
        if c.env_allow.is_some() && c.inherit_env != Some(false) {
            let at = c.at("env_allow").unwrap_or_default();
            let message = "env_allow needs inherit_env = false".into();
            self.error_at(raw, at, "env_allow", ErrorKind::BadValue { message });
        }
        let mut secrets = Vec::new();
        let mut hidden = Vec::new();
        for (var, path, at) in &c.secrets {
            let path = self.dir_of(at.0).join(path);
            secrets.push((var.clone(), path, *at, "secrets"));
        }
        if let Some(only) = &c.env_from_files {
            let at = c.at("env_from_files").unwrap_or_default();
            let files: Vec<(String, String)> = (env.iter())
                .filter_map(|(k, v)| Some((k.strip_suffix("_FILE")?.to_owned(), v.clone())))
                .filter(|(name, _)| !name.is_empty())
                .filter(|(name, _)| only.as_ref().is_none_or(|o| o.contains(name)))
                .collect();
            for (name, path) in files {
                hidden.push(format!("{name}_FILE"));
                if env.contains_key(&name) {
                    let message = format!("{name} and {name}_FILE are both set");
                    problems.push((at, "env_from_files".into(), ErrorKind::BadValue { message }));
                }
                let path = self.dir_of(raw.file).join(path);
                secrets.push((name, path, at, "env_from_files"));
            }
        }
        // A pre_script may create the files: then they are read only at the start.
        if raw.pre_script.is_none() {
            for (var, path, at, key) in &secrets {
                if let Err(e) = read_secret(path) {
                    let kind = ErrorKind::Read {
                        path: path.clone(),
                        error: e.to_string(),
                    };
                    problems.push((*at, format!("{key}.{var}"), kind));
                }
            }
        }
        self.check_hard_limits(c, &mut problems);
        if unit.enabled {
            for (at, key, kind) in problems {
                self.error_at(raw, at, &key, kind);
            }
        }
        let controls = Controls {
            rlimits: c.rlimits.iter().map(|(l, _)| *l).collect(),
            nice: c.nice,
            oom_score_adj: c.oom_score_adj,
            umask: c.umask,
            capabilities: c.capabilities,
            no_new_privs: c.no_new_privs.unwrap_or(false),
        };
        let secrets = secrets
            .into_iter()
            .map(|(var, path, _, _)| Secret { var, path });
        (controls, secrets.collect(), hidden)
    }

    /// The cgroup limits of one unit that pidone can apply, and the keys of those it cannot (no
    /// cgroup v2, or no such controller) as `memory_max, cpu_max`: an error unless
    /// `cgroup_optional`, which drops them (as a disabled service's are dropped: its errors are
    /// not reported).
    pub(super) fn resolve_cgroup(
        &mut self,
        raw: &RawService,
        unit: &Unit,
    ) -> (Vec<(&'static str, String)>, String) {
        let c = &raw.controls;
        let (mut kept, mut skipped) = (Vec::new(), String::new());
        for (file, value, at) in &c.cgroup {
            let controller = file.split('.').next().unwrap_or_default();
            let missing = match &self.ctx.cgroups {
                Err(why) => Some(format!("pidone does not manage cgroups: {why}")),
                Ok(list) if !list.iter().any(|c| c == controller) => Some(format!(
                    "the cgroup controller {controller:?} is not available"
                )),
                Ok(_) => None,
            };
            let key = file.replace('.', "_");
            match missing {
                None => kept.push((*file, value.clone())),
                Some(why) if unit.enabled && c.cgroup_optional != Some(true) => {
                    let message = format!("{why} (cgroup_optional = true runs without it)");
                    self.error_at(raw, *at, &key, ErrorKind::BadValue { message });
                }
                Some(_) if skipped.is_empty() => skipped = key,
                Some(_) => skipped = skipped + ", " + &key,
            }
        }
        (kept, skipped)
    }

    /// Without root, a hard limit cannot be raised: one above pidone's own is refused.
    fn check_hard_limits(&self, c: &RawControls, problems: &mut Vec<(At, String, ErrorKind)>) {
        if self.ctx.euid == 0 {
            return;
        }
        for (limit, at) in &c.rlimits {
            let ours = rustix::process::getrlimit(limit.resource).maximum;
            if limit.hard.unwrap_or(u64::MAX) <= ours.unwrap_or(u64::MAX) {
                continue;
            }
            let show = |v: Option<u64>| v.map_or("unlimited".into(), |n| n.to_string());
            let message = format!(
                "{} is above pidone's hard limit ({}); raising it needs root",
                show(limit.hard),
                show(ours)
            );
            let key = format!(
                "rlimits.{}",
                resource_name(limit.resource).to_ascii_lowercase()
            );
            problems.push((*at, key, ErrorKind::BadValue { message }));
        }
    }

    /// Reports `kind` for `key` of `raw`'s at `at`, a place in any file.
    fn error_at(&mut self, raw: &RawService, (file, line): At, key: &str, kind: ErrorKind) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.sources.get(file).cloned().unwrap_or_default(),
                line: Some(line),
            },
            service: Some(raw.name.clone()),
            key: Some(key.to_owned()),
            kind,
        });
    }
}
