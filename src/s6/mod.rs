//! s6-overlay images run unchanged: where their layouts are ([`find`]), the S6_* variables
//! ([`Vars`]), and [`load`], which reads the layouts (`layout`, `execline`), turns them into
//! pidone's TOML (`toml`) and loads that like any configuration, each service then naming the
//! directory it was read from. `contenv` writes pidone's environment where s6-overlay's
//! `with-contenv` and cont-init.d scripts expect it. docs/s6-overlay.md says what maps to what.
//!
//! The root (`/` in production) comes from `PIDONE_S6_ROOT` when set: for tests and chroots,
//! so that nothing under the real `/etc` is read and nothing under the real `/run` is written.

#[cfg(feature = "s6-commands")]
pub mod commands;
mod contenv;
mod execline;
pub mod layout;
mod runtime;
mod toml;

pub use runtime::Runtime;

use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigError, Env, ErrorKind, LoadContext, Location};

/// Where pidone found an s6 layout.
#[derive(Debug, Clone)]
pub struct Found {
    /// The image's root: cont-init.d, cont-finish.d and `/run/s6` are under it.
    pub root: PathBuf,
    /// The s6-rc source directory and the services.d directory, when present.
    pub rc: Option<PathBuf>,
    pub sd: Option<PathBuf>,
}

/// What loading an s6 layout gives besides the configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The equivalent TOML (`pidone validate --toml`).
    toml: String,
    /// The container environment directory to fill at boot with pidone's environment (none
    /// with S6_KEEP_ENV=1).
    contenv: Option<(PathBuf, Env)>,
    /// The image's root, and what the supervisor applies while it runs.
    root: PathBuf,
    runtime: Runtime,
}

impl Loaded {
    pub fn toml(&self) -> &str {
        &self.toml
    }

    /// What the supervisor applies while it runs (S6_CMD_WAIT_FOR_SERVICES_MAXTIME, the
    /// exit-code file).
    pub fn runtime(&self) -> Runtime {
        self.runtime.clone()
    }

    /// At boot, before anything runs: writes pidone's environment into the container
    /// environment directory (emptied first), empties the exit-code file and links `halt`
    /// ([`Runtime::boot`]). Logged, never fatal: services then get pidone's environment.
    pub fn boot(&self) {
        self.runtime.boot(&self.root);
        if let Some((dir, env)) = &self.contenv
            && let Err(err) = contenv::write(dir, env)
        {
            log::warn!(
                "{}: {err}; services get pidone's environment",
                dir.display()
            );
        }
    }
}

/// The configuration of the s6-overlay layout `cli` names or, when `cli` is empty, of the
/// image's; `None` when there is no such layout.
#[allow(clippy::type_complexity)]
pub fn try_load(
    cli: &[PathBuf],
    ctx: &LoadContext,
) -> Option<Result<(Config, Loaded), Vec<ConfigError>>> {
    Some(load(&find(cli, &ctx.env)?, ctx))
}

/// The S6_* variables pidone reads (the others are accepted and ignored: docs/s6-overlay.md).
#[derive(Debug, Clone, Copy)]
pub struct Vars {
    /// S6_BEHAVIOUR_IF_STAGE2_FAILS: 2 stops the container when a cont-init script or a
    /// oneshot fails.
    pub stage2: u64,
    /// S6_SERVICES_GRACETIME, S6_KILL_GRACETIME, S6_KILL_FINISH_MAXTIME, in milliseconds.
    pub services_grace: u64,
    pub kill_grace: u64,
    pub finish_max: u64,
    /// S6_KEEP_ENV=1: services get pidone's environment, not the container environment's.
    pub keep_env: bool,
    /// S6_CMD_WAIT_FOR_SERVICES_MAXTIME, in milliseconds: 0 waits forever.
    pub cmd_wait: u64,
}

impl Vars {
    /// The variables of `env`, with s6-overlay's defaults; a value that is not a number is an
    /// error naming the variable.
    pub fn from_env(env: &Env) -> Result<Vars, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut get = |var: &str, default: u64| match env.get(var) {
            None => default,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                errors.push(ConfigError {
                    location: Location::Env { var: var.into() },
                    service: None,
                    key: None,
                    kind: ErrorKind::BadValue {
                        message: format!("{v:?} is not a number"),
                    },
                });
                default
            }),
        };
        let vars = Vars {
            stage2: get("S6_BEHAVIOUR_IF_STAGE2_FAILS", 0),
            services_grace: get("S6_SERVICES_GRACETIME", 3000),
            kill_grace: get("S6_KILL_GRACETIME", 3000),
            finish_max: get("S6_KILL_FINISH_MAXTIME", 5000),
            keep_env: get("S6_KEEP_ENV", 0) != 0,
            cmd_wait: get("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", 0),
        };
        match errors.is_empty() {
            true => Ok(vars),
            false => Err(errors),
        }
    }
}

/// The layout `--config` names, when it names one directory that is one: an image root (with
/// `etc/s6-overlay/s6-rc.d` or `etc/services.d`), an s6-rc source directory (`user/` or a
/// `type` file in a subdirectory) or a services.d directory (a `run` file in a subdirectory).
/// Without `--config`, the image's own layout, if any (the caller looks for TOML first).
pub fn find(cli: &[PathBuf], env: &Env) -> Option<Found> {
    let root = PathBuf::from(env.get("PIDONE_S6_ROOT").map_or("/", |r| r.as_str()));
    let [dir] = cli else {
        return cli.is_empty().then(|| in_root(root)).flatten();
    };
    if !dir.is_dir() {
        return None;
    }
    if let Some(found) = in_root(dir.clone()) {
        return Some(found);
    }
    let subs = layout::entries(dir);
    let has = |file: &str| subs.iter().any(|(_, p)| p.join(file).is_file());
    let found = |rc, sd| Found { root, rc, sd };
    if dir.join("user").is_dir() || has("type") {
        Some(found(Some(dir.clone()), None))
    } else if has("run") {
        Some(found(None, Some(dir.clone())))
    } else {
        None
    }
}

/// The layouts of the image at `root`, if it has any.
fn in_root(root: PathBuf) -> Option<Found> {
    let dir = |p: &str| Some(root.join(p)).filter(|d| d.is_dir());
    let (rc, sd) = (dir("etc/s6-overlay/s6-rc.d"), dir("etc/services.d"));
    let scripts = dir("etc/cont-init.d").or(dir("etc/cont-finish.d"));
    (rc.is_some() || sd.is_some() || scripts.is_some()).then_some(Found { root, rc, sd })
}

/// Reads the layout `found` and loads it as the configuration.
fn load(found: &Found, ctx: &LoadContext) -> Result<(Config, Loaded), Vec<ConfigError>> {
    let vars = Vars::from_env(&ctx.env)?;
    let root = &found.root;
    let (init, finish) = (root.join("etc/cont-init.d"), root.join("etc/cont-finish.d"));
    let execlineb = execlineb(root, &ctx.env);
    let (rc, sd) = (found.rc.as_deref(), found.sd.as_deref());
    let read = layout::read(root, rc, sd, [&init, &finish], execlineb)?;
    let env_dir = (!vars.keep_env).then(|| root.join("run/s6/container_environment"));
    let text = toml::emit(&read, &vars, env_dir.as_deref());
    // Errors of the loader name the service's directory (or cont-init.d script), not this text.
    let source = root.join("etc (s6-overlay layout; see pidone validate --toml)");
    let origin = |name: &str| -> Option<PathBuf> {
        let svc = read.services.iter().find(|s| s.name == name);
        let init = name.strip_prefix("cont-init-");
        let init = init.and_then(|n| read.cont_init.iter().find(|p| p.ends_with(n)));
        svc.map(|s| s.dir.clone()).or(init.cloned())
    };
    let loaded = config::load_texts(std::slice::from_ref(&source), vec![Ok(text.clone())], ctx);
    match loaded {
        Ok(mut config) => {
            for spec in &mut config.services {
                if let Some(dir) = origin(&spec.name) {
                    (spec.file, spec.line) = (dir, 0);
                }
            }
            let contenv = env_dir.map(|d| (d, ctx.env.clone()));
            let runtime = Runtime::new(root, vars.cmd_wait, vars.stage2);
            let root = root.clone();
            Ok((
                config,
                Loaded {
                    toml: text,
                    contenv,
                    root,
                    runtime,
                },
            ))
        }
        Err(mut errors) => {
            for e in &mut errors {
                if let Some(path) = e.service.as_deref().and_then(origin) {
                    e.location = Location::File { path, line: None };
                }
            }
            Err(errors)
        }
    }
}

/// `execlineb` in the image: s6-overlay's `/command`, or a directory of `PATH`.
fn execlineb(root: &Path, env: &Env) -> Option<PathBuf> {
    let path = env.get("PATH").map_or(config::DEFAULT_PATH, |p| p.as_str());
    std::iter::once("/command")
        .chain(path.split(':'))
        .map(|dir| root.join(dir.trim_start_matches('/')).join("execlineb"))
        .find(|p| p.is_file())
}
