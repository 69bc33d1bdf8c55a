//! `pidone add` and `pidone remove` (`POST /v1/services`, `DELETE /v1/services/{name}`): a
//! service written to, or deleted from, the drop-in directory (`[api] dropin_dir`), then applied
//! as a reload would apply it.
//!
//! Each first loads the whole configuration as if its change were made, with the loader a reload
//! uses ([`crate::config::dropin`]); only a valid result is written (atomically: a temporary file
//! renamed into place) and then run: a new service starts as its dependencies allow, a removed
//! one is stopped (its dependents first) and forgotten once down. A refusal changes nothing and
//! says why: the name is taken, there is no drop-in directory, the service is defined in another
//! file (which one), or every error of the loader.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::system::System;
use super::{Phase, Supervisor};
use crate::config::dropin::{self, Edit};
use crate::config::{Config, ConfigError};
use crate::control::Answer;
use crate::control::wire;
use crate::core::service::Intent;

/// A service's name, and the file and line it is defined at.
type Defined = (String, PathBuf, usize);

impl<S: System> Supervisor<S> {
    /// Adds the service `name`, whose drop-in file holds `text`.
    pub(super) fn add_service(&mut self, name: String, text: String, now: Instant) -> Answer {
        if self.phase != Phase::Running {
            return Answer::error(409, "pidone is shutting down");
        }
        if let Some((_, file, line)) = self.defined(&name).first() {
            let at = format!("{}:{line}", file.display());
            return Answer::error(409, &format!("a service {name} already exists ({at})"));
        }
        let edit = Edit::Add {
            name: name.clone(),
            text: text.clone(),
        };
        let config = match self.load_edited(&edit, &name, "added") {
            Ok(config) => config,
            Err(answer) => return answer,
        };
        let Some(dir) = config.api.dropin_dir.clone() else {
            return no_dropin_dir();
        };
        let path = dropin::file_of(&dir, &name);
        self.commit(
            config,
            &name,
            "added",
            &path,
            || dropin::write(&path, &text),
            now,
        )
    }

    /// Removes the service `name` (every instance), which `add_service` added, deleting its file.
    pub(super) fn remove_service(&mut self, name: &str, now: Instant) -> Answer {
        if self.phase != Phase::Running {
            return Answer::error(409, "pidone is shutting down");
        }
        let defined = self.defined(name);
        let Some((_, file, line)) = defined.first().cloned() else {
            return match self.lookup_one(name) {
                Err(answer) => answer,
                Ok(_) => Answer::error(404, &format!("unknown service {name:?}")),
            };
        };
        let edit = Edit::Remove { path: file.clone() };
        let config = match self.load_edited(&edit, name, "removed") {
            Ok(config) => config,
            Err(answer) => return answer,
        };
        let dir = config.api.dropin_dir.as_deref();
        if let Some(why) = self.kept(&defined, &file, dir) {
            let at = format!("{}:{line}", file.display());
            return Answer::error(409, &format!("{name} is defined in {at}, {why}"));
        }
        self.commit(
            config,
            name,
            "removed",
            &file,
            || dropin::delete(&file),
            now,
        )
    }

    /// Why the services `defined` in `file` cannot be removed by deleting it, if they cannot:
    /// there is no drop-in directory `dir`, the file is not in it, or it defines others too.
    fn kept(&self, defined: &[Defined], file: &Path, dir: Option<&Path>) -> Option<String> {
        let Some(dir) = dir else {
            return Some("and there is no drop-in directory ([api] dropin_dir)".to_string());
        };
        if !dropin::holds(dir, file) {
            return Some(format!(
                "not in the drop-in directory {}: pidone remove only removes what pidone add added; edit that file and reload",
                dir.display()
            ));
        }
        let others: Vec<&str> = (self.svcs.iter())
            .filter(|(_, s)| s.spec.file == file && s.life.intent != Intent::Remove)
            .map(|(_, s)| s.spec.name.as_str())
            .filter(|n| !defined.iter().any(|(d, ..)| d == n))
            .collect();
        let others = others.join(", ");
        (!others.is_empty()).then(|| format!("which also defines {others}: edit it and reload"))
    }

    /// Runs `config`, in which the service `name` is `done`, once `change` (the drop-in `file`
    /// written or deleted) is made: its `[api]` first (an address that cannot be bound refuses
    /// all of it), then the change, then the services, as a reload.
    fn commit(
        &mut self,
        config: Config,
        name: &str,
        done: &str,
        file: &Path,
        change: impl FnOnce() -> std::io::Result<()>,
        now: Instant,
    ) -> Answer {
        if let Err(err) = self.apply_api(config.api.clone()) {
            return refused(name, done, vec![err]);
        }
        if let Err(err) = change() {
            let message = format!("{name} not {done}: {}: {err}", file.display());
            return Answer::error(500, &message);
        }
        let what = format!("{name} {done} ({})", file.display());
        log::info!("{what}");
        let reload = self.adopt(config, &what, now);
        answer(file, reload)
    }

    /// The services called `name`, or instances of a service called so, that a reload did not
    /// remove: each with the file and line it is defined at.
    fn defined(&self, name: &str) -> Vec<Defined> {
        (self.svcs.iter())
            .filter(|(_, s)| s.life.intent != Intent::Remove)
            .filter(|(_, s)| s.spec.name == name || s.spec.base_name == name)
            .map(|(_, s)| (s.spec.name.clone(), s.spec.file.clone(), s.spec.line))
            .collect()
    }

    /// The configuration read again with `edit` made (`name` is to be `done`), or the refusal.
    fn load_edited(&self, edit: &Edit, name: &str, done: &str) -> Result<Config, Answer> {
        match crate::load_config_edited(&self.options.config_paths, Some(edit)) {
            Ok(Some(config)) => Ok(config),
            Ok(None) => Err(no_dropin_dir()),
            Err(errors) => Err(refused(
                name,
                done,
                errors.iter().map(ConfigError::to_string).collect(),
            )),
        }
    }
}

/// The refusal of a change that would make the configuration invalid, with every `errors`.
fn refused(name: &str, done: &str, errors: Vec<String>) -> Answer {
    let error = format!("{name} not {done}: the configuration would be invalid; nothing changed");
    let errors = Some(errors);
    Answer::of(400, &wire::Error { error, errors })
}

fn no_dropin_dir() -> Answer {
    Answer::error(
        409,
        "no drop-in directory: set [api] dropin_dir in the configuration to add and remove services",
    )
}

/// The answer to a change made: the file, and what its reload changed.
fn answer(file: &Path, reload: wire::Reloaded) -> Answer {
    let file = file.display().to_string();
    Answer::of(200, &wire::Registered { file, reload })
}
