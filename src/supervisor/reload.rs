//! Configuration reload (`POST /v1/reload`, SIGHUP): read the configuration again from the same
//! places; if it is invalid, keep running the old one and report every error; else reconcile:
//! start new services, stop removed ones, restart changed ones, leave unchanged ones alone.
//!
//! Services are indexed by [`ServiceId`] = position in start order, and the new configuration
//! has its own order, so a reload rebuilds the service list and renumbers everything that holds
//! an id: the processes (`procs`), the output pipes (`sources`) and the clients following logs.
//! A removed service that still runs stays at the end of the list, held down, until a later
//! reload finds it stopped.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::json;

use super::{Owner, Phase, Supervisor, Svc, policy_of};
use crate::config::{Config, ConfigError, ServiceSpec};
use crate::graph::ServiceId;
use crate::service::{Event, State};

/// What a reload changed, by service name.
#[derive(Debug, Default)]
pub(super) struct Summary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Summary {
    pub(super) fn to_json(&self) -> String {
        json!({
            "added": self.added,
            "removed": self.removed,
            "restarted": self.restarted,
            "unchanged": self.unchanged,
        })
        .to_string()
    }
}

/// A service's configuration with what does not change its meaning left out (where it is
/// written) and dependencies by name rather than by id.
fn fingerprint(spec: &ServiceSpec) -> ServiceSpec {
    ServiceSpec {
        file: Default::default(),
        line: 0,
        depends_on: Vec::new(),
        after: Vec::new(),
        wait_after: Vec::new(),
        ..spec.clone()
    }
}

/// The dependencies of `spec` as names, for comparing two configurations.
fn dependency_names(
    spec: &ServiceSpec,
    names: &[String],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let name = |id: &ServiceId| names.get(id.0).cloned().unwrap_or_default();
    (
        spec.depends_on.iter().map(name).collect(),
        spec.after.iter().map(name).collect(),
        spec.wait_after
            .iter()
            .map(|(id, d)| format!("{}+{d:?}", name(id)))
            .collect(),
    )
}

impl Supervisor {
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
        Ok(self.reconcile(config, now))
    }

    /// Replaces the service list with `config`'s, keeping the runtime of services that stay.
    fn reconcile(&mut self, config: Config, now: Instant) -> Summary {
        let mut summary = Summary::default();
        let old_names: Vec<String> = self.svcs.iter().map(|s| s.spec.name.clone()).collect();
        let new_names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
        let mut old: Vec<Option<Svc>> = std::mem::take(&mut self.svcs)
            .into_iter()
            .map(Some)
            .collect();
        let by_name: HashMap<&str, usize> = old_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // old index -> new index, for everything that holds an id.
        let mut renumber: Vec<Option<usize>> = vec![None; old.len()];
        let dependents = config.dependents();
        self.global_shutdown = config.timeouts.global_shutdown;
        self.post_script_timeout = config.timeouts.post_script;

        let mut to_restart = Vec::new();
        for (new_id, spec) in config.services.into_iter().enumerate() {
            // A service removed by an earlier reload and still stopping is not taken back: it
            // finishes stopping (below), and the name starts afresh.
            let previous = by_name
                .get(spec.name.as_str())
                .filter(|&&i| {
                    old.get(i)
                        .and_then(Option::as_ref)
                        .is_some_and(|s| !s.removed)
                })
                .and_then(|&i| old.get_mut(i).and_then(Option::take).map(|svc| (i, svc)));
            let Some((old_id, mut svc)) = previous else {
                summary.added.push(spec.name.clone());
                self.svcs.push(Svc::new(spec, now));
                continue;
            };
            renumber[old_id] = Some(new_id);
            let same = fingerprint(&svc.spec) == fingerprint(&spec)
                && dependency_names(&svc.spec, &old_names) == dependency_names(&spec, &new_names);
            if same {
                summary.unchanged.push(spec.name.clone());
            } else {
                summary.restarted.push(spec.name.clone());
                let was_wanted = svc.spec.enabled;
                svc.policy = policy_of(&spec);
                if !spec.enabled {
                    // Now disabled: bring it down and keep it there.
                    svc.held = true;
                    svc.restart_requested = false;
                } else if svc.rt.is_active() || svc.rt.state == State::Pending {
                    // Stopped (after its running dependents, which restart with it) and started
                    // again: the same walk as a restart request.
                    to_restart.push(ServiceId(new_id));
                } else if !was_wanted
                    || svc.rt.state == State::Failed
                    || svc.rt.state == State::Stopped
                {
                    // Down (disabled before, failed, or done): start it with its new settings.
                    svc.held = false;
                    svc.restart_requested = false;
                    svc.rt.handle(&svc.policy, Event::Enable, now);
                }
            }
            if !same {
                // The old checks' runs end here; the new spec's checks start idle.
                svc.cancel_checks(None);
                svc.spec = spec;
                svc = svc.with_checks();
            } else {
                svc.spec = spec;
            }
            self.svcs.push(svc);
        }
        // Services that are gone: stop those still running, forget the others.
        let mut dependents = dependents;
        for (old_id, slot) in old.into_iter().enumerate() {
            let Some(mut svc) = slot else { continue };
            if !svc.removed {
                summary.removed.push(svc.spec.name.clone());
            }
            if svc.rt.is_active() {
                svc.removed = true;
                svc.held = true;
                svc.restart_requested = false;
                // Its dependencies are ids of the old list: it needs none to stop.
                svc.spec.depends_on.clear();
                svc.spec.after.clear();
                svc.spec.wait_after.clear();
                renumber[old_id] = Some(self.svcs.len());
                dependents.push(Vec::new());
                self.svcs.push(svc);
            } else if svc.rt.state == State::Pending {
                svc.rt.handle(&svc.policy, Event::Stop, now);
            }
        }
        self.dependents = dependents;
        let map = |id: ServiceId| renumber.get(id.0).copied().flatten().map(ServiceId);
        self.procs = std::mem::take(&mut self.procs)
            .into_iter()
            .filter_map(|(pid, owner)| {
                let owner = match owner {
                    Owner::Service(id, step) => Owner::Service(map(id)?, step),
                    Owner::PostScript(id) => Owner::PostScript(map(id)?),
                    Owner::Check(id, k) => Owner::Check(map(id)?, k),
                };
                Some((pid, owner))
            })
            .collect();
        // The pipes of a forgotten service keep draining to the console, into no log.
        for (id, _) in &mut self.sources {
            *id = map(*id).unwrap_or(ServiceId(usize::MAX));
        }
        if let Some(server) = &mut self.server {
            server.renumber_followers(&|i| renumber.get(i).copied().flatten());
        }
        for id in to_restart {
            self.request_stop(id, true);
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
}
