//! Tests of loading whole configs: every key, every go-overlay form, every error message, split
//! by concern; this file holds their shared helpers.

mod bounds;
mod checks;
mod conditions;
mod controls;
mod dropins;
mod errors;
mod groups;
mod loading;
mod sources;
mod stackenv;
mod timers;

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A scratch directory, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pidone-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    fn executable(&self, name: &str) -> PathBuf {
        let path = self.write(name, "#!/bin/sh\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn ctx(&self, env: &[(&str, &str)]) -> LoadContext {
        let mut vars: Env = [("PATH", "/usr/bin:/bin")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        LoadContext {
            env: vars,
            euid: 0,
            egid: 0,
            cgroups: Err("no cgroups in unit tests".into()),
            root: self.dir.clone(),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load_one(text: &str) -> Result<Config, Vec<ConfigError>> {
    let s = Scratch::new();
    let path = s.write("pidone.toml", text);
    load(&[path], &s.ctx(&[]))
}

fn ok(text: &str) -> Config {
    match load_one(text) {
        Ok(c) => c,
        Err(errors) => panic!("unexpected errors: {}", render(&errors)),
    }
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `text` and returns the error messages with the scratch path replaced by `F`.
fn errs(text: &str) -> Vec<String> {
    errs_with(text, &[])
}

fn errs_with(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let s = Scratch::new();
    let path = s.write("pidone.toml", text);
    match load(std::slice::from_ref(&path), &s.ctx(env)) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors
            .iter()
            .map(|e| e.to_string().replace(&path.display().to_string(), "F"))
            .collect(),
    }
}

fn names(config: &Config) -> Vec<&str> {
    config.services.iter().map(|s| s.name.as_str()).collect()
}

fn get<'a>(config: &'a Config, name: &str) -> &'a ServiceSpec {
    let id = config.find(name).expect("service exists");
    &config.services[id.0]
}

fn dep_names<'a>(config: &'a Config, ids: &[ServiceId]) -> Vec<&'a str> {
    ids.iter()
        .map(|id| config.services[id.0].name.as_str())
        .collect()
}

fn env_of<'a>(spec: &'a ServiceSpec, key: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
