//! Configuration reload (`POST /v1/reload`, SIGHUP): read the configuration again from the same
//! places; if it is invalid, keep running the old one and report every error; else reconcile:
//! start new services, stop removed ones, restart changed ones, leave unchanged ones alone.
//!
//! Services keep their stable [`Id`] across a reload: the table gains the new services and its
//! start order becomes the new configuration's; nothing that holds an id (processes, output
//! pipes, poll tokens, log followers) is rewritten. A removed service is asked down
//! ([`Event::Remove`]), stays listed while it stops, and is forgotten once down.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::system::System;
use super::{Id, Phase, Service, Supervisor, link, policy_of};
use crate::config::{Config, ConfigError, ServiceSpec};
use crate::core::graph::ServiceId;
use crate::core::service::{Event, Intent, State};

/// What a reload changed, by service name: the body of a successful `POST /v1/reload`.
pub(super) type Summary = crate::control::wire::Reloaded;

/// A service's configuration with what does not change its meaning left out (where it is
/// written) and dependencies by name rather than by id.
fn fingerprint(spec: &ServiceSpec) -> ServiceSpec {
    ServiceSpec {
        file: Default::default(),
        line: 0,
        depends_on: Vec::new(),
        after: Vec::new(),
        wait_after: Vec::new(),
        // A service's groups name it; they change nothing it runs with.
        groups: Vec::new(),
        ..spec.clone()
    }
}

/// The dependencies of a configuration's `spec` as names (`names` by position), for comparing
/// two configurations.
fn dependency_names(spec: &ServiceSpec, names: &[String]) -> Names {
    let name = |id: &ServiceId| names.get(id.index()).cloned().unwrap_or_default();
    names_of(&spec.depends_on, &spec.after, &spec.wait_after, name)
}

/// `depends_on`, `after` and `wait_after` by name.
type Names = (Vec<String>, Vec<String>, Vec<String>);

/// Dependencies held as ids of any kind, by the names `name` gives them.
fn names_of<I>(
    depends_on: &[I],
    after: &[I],
    wait_after: &[(I, Duration)],
    name: impl Fn(&I) -> String,
) -> Names {
    (
        depends_on.iter().map(&name).collect(),
        after.iter().map(&name).collect(),
        (wait_after.iter())
            .map(|(id, d)| format!("{}+{d:?}", name(id)))
            .collect(),
    )
}

impl<S: System> Supervisor<S> {
    /// Reads the configuration again and reconciles; `Err` holds every problem of an invalid
    /// configuration, in which case nothing changed.
    pub(super) fn reload(&mut self, now: Instant) -> Result<Summary, Vec<String>> {
        if self.phase != Phase::Running {
            return Err(vec!["pidone is shutting down".to_string()]);
        }
        let config = match crate::load_config(&self.options.config_paths) {
            Ok(Some(config)) => config,
            Ok(None) => return Err(vec!["no configuration found any more".to_string()]),
            Err(errors) => return Err(errors.iter().map(ConfigError::to_string).collect()),
        };
        self.apply_api(config.api.clone()).map_err(|e| vec![e])?;
        Ok(self.adopt(config, "configuration reloaded", now))
    }

    /// Runs `config` from `now` on (its `[api]` already applied): reconciles, and records what
    /// changed as a `reload` event whose message starts with `what`.
    pub(super) fn adopt(&mut self, config: Config, what: &str, now: Instant) -> Summary {
        let summary = self.reconcile(config, now);
        let message = format!(
            "{what}: {} added, {} removed, {} restarted",
            summary.added.len(),
            summary.removed.len(),
            summary.restarted.len()
        );
        let mut event = crate::control::wire::Event::new("reload", None, message);
        event.reload = Some(summary.clone());
        self.emit(event, now);
        summary
    }

    /// The table's dependencies of service `id`, by name.
    fn current_dependency_names(&self, id: Id) -> Names {
        let Some(svc) = self.svcs.get(id) else {
            return Names::default();
        };
        let name = |id: &Id| {
            self.svcs
                .get(*id)
                .map_or_else(String::new, |s| s.spec.name.clone())
        };
        names_of(&svc.deps, &svc.after, &svc.wait_after, name)
    }

    /// Brings the table to `config`: new services are added, removed ones are asked down (and
    /// forgotten once down), changed ones restart with their running dependents, unchanged ones
    /// are left alone. No id changes.
    pub(super) fn reconcile(&mut self, mut config: Config, now: Instant) -> Summary {
        let mut summary = Summary::default();
        // Execs in flight are known first: each was started under the old settings (`execs`).
        let in_flight: Vec<Id> = (self.svcs.iter())
            .filter(|(_, s)| s.exec.is_some())
            .map(|(id, _)| id)
            .collect();
        for id in in_flight {
            self.settle_exec(id, now);
        }
        self.global_shutdown = config.timeouts.global_shutdown;
        self.post_script_timeout = config.timeouts.post_script;
        #[cfg(feature = "s6")]
        {
            self.shutdown_script_timeout = config.timeouts.shutdown_script;
            self.shutdown_scripts = std::mem::take(&mut config.shutdown_scripts).into();
        }
        let dependents = config.dependents();
        let new_names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        let by_name: HashMap<String, Id> = (self.svcs.iter())
            .filter(|(_, s)| s.life.intent != Intent::Remove)
            .map(|(id, s)| (s.spec.name.clone(), id))
            .collect();
        let mut ids = Vec::with_capacity(new_names.len());
        let mut changed = Vec::new();
        let mut cancelled = Vec::new();
        let mut rebind = Vec::new();
        for spec in std::mem::take(&mut config.services) {
            let Some(&id) = by_name.get(&spec.name) else {
                summary.added.push(spec.name.clone());
                let id = self.svcs.insert(Service::new(spec, now));
                rebind.push(id);
                ids.push(id);
                continue;
            };
            ids.push(id);
            let same = self.svcs.get(id).is_some_and(|svc| {
                fingerprint(&svc.spec) == fingerprint(&spec)
                    && self.current_dependency_names(id) == dependency_names(&spec, &new_names)
            });
            if let Some(svc) = self.svcs.get_mut(id) {
                if same {
                    summary.unchanged.push(spec.name.clone());
                    svc.spec = spec;
                } else {
                    summary.restarted.push(spec.name.clone());
                    if svc.spec.listen != spec.listen || svc.spec.enabled != spec.enabled {
                        rebind.push(id);
                    }
                    // The old checks' runs end here; the new spec's checks start idle.
                    cancelled.extend(svc.cancel_checks(None));
                    svc.policy = policy_of(&spec);
                    svc.spec = spec;
                    svc.reset_checks();
                    changed.push(id);
                }
            }
        }
        for group in cancelled {
            self.kill_group(group, libc::SIGKILL);
        }
        // New or changed `listen` sockets; one that cannot be bound leaves its service without.
        for id in rebind {
            if let Err(err) = self.bind_one(id) {
                log::error!("{err}");
            }
        }
        // Services that are gone: asked down, forgotten once down (`forget_removed`).
        let kept: HashSet<Id> = ids.iter().copied().collect();
        let gone: Vec<Id> = (self.svcs.order().iter().copied())
            .filter(|id| !kept.contains(id))
            .collect();
        for &id in &gone {
            let Some(svc) = self.svcs.get_mut(id) else {
                continue;
            };
            if svc.life.intent != Intent::Remove {
                summary.removed.push(svc.spec.name.clone());
            }
            // It waits for nothing to start, and to stop only for its dependents that are
            // removed too (the others are gone or restart).
            svc.deps.clear();
            svc.after.clear();
            svc.wait_after.clear();
            svc.dependents.retain(|d| gone.contains(d));
            self.apply(id, Event::Remove, now);
        }
        self.svcs.reorder(ids.clone());
        link(&mut self.svcs, &ids, &dependents);
        self.relabel_output();
        let mut restarted: HashSet<Id> = HashSet::new();
        for id in changed {
            let Some(svc) = self.svcs.get(id) else {
                continue;
            };
            if !svc.spec.enabled {
                // Now disabled: bring it down and keep it there.
                self.apply(id, Event::Hold, now);
            } else if svc.spec.timer.is_some() && !svc.life.is_active() {
                // A timed job waits for its new schedule, from now.
                if let Some(svc) = self.svcs.get_mut(id) {
                    svc.timed.rearm();
                }
            } else if svc.life.is_active() || svc.life.state == State::Pending {
                // Stopped (after its running dependents, which restart with it) and started
                // again: the same walk as a restart request.
                restarted.extend(self.request_stop(id, true, now));
            } else {
                // Down (disabled before, failed, or done): start it with its new settings.
                self.apply(id, Event::Release, now);
            }
        }
        // Unchanged services restarted because a dependency changed are restarted too.
        summary.unchanged.retain(|name| {
            let id = by_name.get(name);
            !id.is_some_and(|id| restarted.contains(id))
        });
        for id in restarted {
            let name = self.svcs.get(id).map(|s| s.spec.name.clone());
            if let Some(name) = name.filter(|n| !summary.restarted.contains(n)) {
                summary.restarted.push(name);
            }
        }
        log::info!(
            "configuration reloaded: {} added, {} removed, {} restarted, {} unchanged",
            summary.added.len(),
            summary.removed.len(),
            summary.restarted.len(),
            summary.unchanged.len()
        );
        summary
    }

    /// Pads the output prefixes to the longest name of the services now in the table.
    fn relabel_output(&mut self) {
        let width = (self.svcs.iter())
            .map(|(_, s)| s.spec.name.len())
            .max()
            .unwrap_or(0);
        self.output.set_width(width);
        for (id, src) in &mut self.sources {
            if let Some(svc) = self.svcs.get(*id) {
                self.output.reprefix(src, &svc.spec.name);
            }
        }
    }
}
