//! Resolution across services: names checked and instances expanded, the environment selection
//! applied, dependency names turned into [`ServiceId`]s, the graph ordered, and each unit turned
//! into its [`ServiceSpec`] (`outside` resolves what a unit needs from the world).

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::conditions::Condition;
use super::describe::format_duration;
use super::error::{ConfigError, ErrorKind, Location, suggest};
use super::load::LoadContext;
use super::model::{
    DEFAULT_RESTART_RESET, Kind, ReadyMode, Restart, ServiceSpec, Timeouts, Timer, is_valid_name,
};
use super::outside::Resolved;
use super::parse::{RawService, RawWaitAfter};
use super::{limits, select};
use crate::core::graph::{self, ServiceId};
use crate::core::zone::Zone;
use crate::os::users::UserDb;

/// One service or instance during loading.
pub(super) struct Unit {
    /// Index into the raw services.
    pub(super) raw: usize,
    pub(super) instance: Option<u32>,
    pub(super) name: String,
    pub(super) enabled: bool,
}

/// The names taken so far while units are named.
#[derive(Default)]
struct Names {
    /// Each name, with the `file:line` that defines it.
    defined_at: HashMap<String, String>,
    /// Whether the service limit was reached (and reported).
    full: bool,
}

/// Each unit's dependencies, as unit indices before the start order renumbers them.
struct Links {
    depends: Vec<Vec<ServiceId>>,
    /// The condition of each of `depends`, empty when all are `ready`.
    conditions: Vec<Vec<Condition>>,
    after: Vec<Vec<ServiceId>>,
    waits: Vec<Vec<(ServiceId, Duration)>>,
}

pub(super) struct Loader<'a> {
    pub(super) sources: &'a [PathBuf],
    pub(super) ctx: &'a LoadContext,
    pub(super) timeouts: Timeouts,
    pub(super) raws: &'a [RawService],
    pub(super) errors: &'a mut Vec<ConfigError>,
    /// The image's user database, read on first use; `Err` once reading failed.
    pub(super) users: Option<Result<UserDb, String>>,
    /// Bytes of the environments of the units resolved so far (see
    /// [`limits::MAX_ENVIRONMENT_BYTES`]).
    pub(super) env_bytes: usize,
    /// The variables of the top-level `env_file`s, which every service gets over pidone's
    /// environment (see `stackenv`).
    pub(super) stack_env: super::model::Env,
}

impl Loader<'_> {
    pub(super) fn error(
        &mut self,
        raw: &RawService,
        line: usize,
        key: Option<&str>,
        kind: ErrorKind,
    ) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.sources.get(raw.file).cloned().unwrap_or_default(),
                line: Some(line),
            },
            service: Some(raw.name.clone()),
            key: key.map(str::to_owned),
            kind,
        });
    }

    /// Runs the cross-service stages. The services are meaningful only if no error was added.
    pub(super) fn run(&mut self) -> Vec<ServiceSpec> {
        let raws = self.raws;
        let (mut units, raw_units, by_name) = self.expand_names();
        self.select(&mut units, &by_name);
        let links = self.link(&units, &raw_units, &by_name);
        let order = self.order(&units, &raw_units, &links);
        let resolved: Vec<Resolved> = units
            .iter()
            .map(|unit| self.resolve_unit(&raws[unit.raw], unit))
            .collect();
        self.specs(&units, links, resolved, order)
    }

    /// Resolves every raw service's dependencies for each of its units, and checks its restart
    /// keys.
    fn link(
        &mut self,
        units: &[Unit],
        raw_units: &[Range<usize>],
        by_name: &HashMap<String, Vec<usize>>,
    ) -> Links {
        let n = units.len();
        let mut links = Links {
            depends: vec![Vec::new(); n],
            conditions: vec![Vec::new(); n],
            after: vec![Vec::new(); n],
            waits: vec![Vec::new(); n],
        };
        // Dependencies once instances are expanded, until the limit is passed (then `None`).
        let mut edges = Some(0);
        // For each unit, the last raw service that listed it (depends_on, after).
        let mut seen = (vec![usize::MAX; n], vec![usize::MAX; n]);
        for (ri, (raw, mine)) in self.raws.iter().zip(raw_units).enumerate() {
            if mine.is_empty() {
                continue;
            }
            self.check_restart(raw);
            let (at, links_so_far) = ((ri, mine), (&mut seen, &mut edges));
            let Some((d, a, w, c)) =
                self.resolve_dependencies(raw, at, units, by_name, links_so_far)
            else {
                continue;
            };
            for u in mine.clone() {
                links.depends[u] = d.clone();
                links.conditions[u] = c.clone();
                links.after[u] = a.clone();
                links.waits[u] = w.clone();
            }
        }
        links
    }

    /// `restart_delay_max` not below `restart_delay`; no `restart = "always"` for a oneshot.
    fn check_restart(&mut self, raw: &RawService) {
        let delay = raw.restart_delay.filter(|d| !d.is_zero());
        if let (Some(max), Some(delay)) = (raw.restart_delay_max, delay)
            && max < delay
        {
            let message = format!(
                "{} is shorter than restart_delay ({})",
                format_duration(max),
                format_duration(delay)
            );
            let line = raw.line_of("restart_delay_max");
            let kind = ErrorKind::BadValue { message };
            self.error(raw, line, Some("restart_delay_max"), kind);
        }
        if raw.kind == Kind::Oneshot && raw.restart == Some(Restart::Always) {
            let kind = ErrorKind::OneshotRestartAlways;
            self.error(raw, raw.line_of("restart"), Some("restart"), kind);
        }
    }

    /// The closest service name to `name`, unless [`limits::MAX_ERRORS`] errors are already
    /// collected: each suggestion compares with every name (thousands, with `instances`), and
    /// past the bound the error may not even be shown.
    fn suggest(&self, name: &str, by_name: &HashMap<String, Vec<usize>>) -> Option<String> {
        if self.errors.len() >= limits::MAX_ERRORS {
            return None;
        }
        suggest(name, by_name.keys().map(String::as_str))
    }

    /// A `depends_on` entry (`name` at `line`) must not name a disabled service: one error for
    /// the entry, counting the disabled instances of a service that has them.
    fn check_enabled(
        &mut self,
        raw: &RawService,
        (name, line): (&str, usize),
        targets: &[usize],
        units: &[Unit],
    ) {
        let off = targets.iter().filter(|&&t| !units[t].enabled).count();
        let whole = match targets {
            [t] => units[*t].name != name,
            _ => true,
        };
        let kind = match (off, targets.first()) {
            (0, _) | (_, None) => return,
            (_, Some(&t)) if !whole => ErrorKind::DisabledDependency {
                name: units[t].name.clone(),
                instances: None,
            },
            _ => ErrorKind::DisabledDependency {
                name: name.to_owned(),
                instances: Some((off, targets.len())),
            },
        };
        self.error(raw, line, Some("depends_on"), kind);
    }

    /// The start order; with a cycle (reported), file order.
    fn order(
        &mut self,
        units: &[Unit],
        raw_units: &[Range<usize>],
        links: &Links,
    ) -> Vec<ServiceId> {
        let edges: Vec<Vec<ServiceId>> = links
            .depends
            .iter()
            .zip(&links.after)
            .map(|(d, a)| d.iter().chain(a).copied().collect())
            .collect();
        if let Some(order) = graph::start_order(&edges) {
            return order;
        }
        self.report_cycles(units, raw_units, links);
        (0..units.len()).map(ServiceId).collect()
    }

    /// Reports the dependency cycles once per service, not per instance: they are looked for
    /// among the configured services, each standing for all its units (which share their
    /// dependencies). A unit is on a cycle exactly when its service is, and a service with 600
    /// instances depending on itself would otherwise make a cycle for nearly every pair of them.
    fn report_cycles(&mut self, units: &[Unit], raw_units: &[Range<usize>], links: &Links) {
        // Duplicates are harmless to `find_cycles`, and the expanded limit bounds them.
        let to_raws = |ids: &[ServiceId]| -> Vec<ServiceId> {
            ids.iter().map(|t| ServiceId(units[t.0].raw)).collect()
        };
        let (mut depends, mut edges) = (Vec::new(), Vec::new());
        for mine in raw_units {
            let (d, a) = match mine.clone().next() {
                Some(u) => (to_raws(&links.depends[u]), to_raws(&links.after[u])),
                None => (Vec::new(), Vec::new()),
            };
            edges.push(d.iter().chain(&a).copied().collect::<Vec<_>>());
            depends.push(d);
        }
        for cycle in graph::find_cycles(&edges, limits::MAX_ERRORS) {
            self.report_cycle(&cycle, raw_units, &depends);
        }
    }

    /// The specs in start `order`, every id renumbered to its position there.
    fn specs(
        &self,
        units: &[Unit],
        links: Links,
        mut resolved: Vec<Resolved>,
        order: Vec<ServiceId>,
    ) -> Vec<ServiceSpec> {
        let mut new_id = vec![ServiceId(0); units.len()];
        for (position, old) in order.iter().enumerate() {
            new_id[old.0] = ServiceId(position);
        }
        let remap = |ids: &[ServiceId]| ids.iter().map(|i| new_id[i.0]).collect::<Vec<_>>();
        let mut services = Vec::with_capacity(units.len());
        for old in order {
            let unit = &units[old.0];
            let raw = &self.raws[unit.raw];
            let r = std::mem::take(&mut resolved[old.0]);
            let waits = links.waits[old.0].iter().map(|&(id, d)| (new_id[id.0], d));
            let (depends, after) = (remap(&links.depends[old.0]), remap(&links.after[old.0]));
            let mut spec = self.spec(raw, unit, r, depends, after, waits.collect());
            spec.conditions = links.conditions[old.0].clone();
            services.push(spec);
        }
        services
    }

    /// Validates names, expands instances, and indexes every name a dependency can use.
    #[allow(clippy::type_complexity)]
    fn expand_names(&mut self) -> (Vec<Unit>, Vec<Range<usize>>, HashMap<String, Vec<usize>>) {
        let raws = self.raws;
        let mut units: Vec<Unit> = Vec::new();
        let mut raw_units: Vec<Range<usize>> = Vec::with_capacity(raws.len());
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut names = Names::default();
        for (ri, raw) in raws.iter().enumerate() {
            let Some(instances) = self.unit_names(raw, units.len(), &mut names) else {
                raw_units.push(0..0);
                continue;
            };
            let start = units.len();
            for (instance, name) in instances {
                if instance.is_some() {
                    by_name.insert(name.clone(), vec![units.len()]);
                }
                units.push(Unit {
                    raw: ri,
                    instance,
                    name,
                    enabled: raw.enabled,
                });
            }
            by_name.insert(raw.name.clone(), (start..units.len()).collect());
            raw_units.push(start..units.len());
        }
        (units, raw_units, by_name)
    }

    /// The names of `raw`'s units (with their instance numbers), claimed in `names`; `None` after
    /// reporting why it has none: a bad name, the service limit (`so_far` units before it), or a
    /// name already taken.
    fn unit_names(
        &mut self,
        raw: &RawService,
        so_far: usize,
        names: &mut Names,
    ) -> Option<Vec<(Option<u32>, String)>> {
        let refused =
            limits::too_long("name", raw.name.len(), limits::MAX_NAME_LEN).or_else(|| {
                (!is_valid_name(&raw.name)).then(|| ErrorKind::InvalidName {
                    name: raw.name.clone(),
                })
            });
        if let Some(kind) = refused {
            self.error(raw, raw.line_of("name"), Some("name"), kind);
            return None;
        }
        // Past the limit, one error for the service that crosses it and none after it.
        let total = so_far + raw.instances.map_or(1, |n| n as usize);
        if let Some(kind) = limits::too_many("services", total, limits::MAX_SERVICES) {
            let key = match raw.instances {
                Some(_) => "instances",
                None => "name",
            };
            if !names.full {
                self.error(raw, raw.line_of(key), Some(key), kind);
            }
            names.full = true;
            return None;
        }
        let instances: Vec<(Option<u32>, String)> = match raw.instances {
            None => vec![(None, raw.name.clone())],
            Some(count) => (1..=count)
                .map(|i| (Some(i), format!("{}-{i}", raw.name)))
                .collect(),
        };
        let mut claimed: Vec<&str> = vec![raw.name.as_str()];
        if raw.instances.is_some() {
            claimed.extend(instances.iter().map(|(_, n)| n.as_str()));
        }
        if let Some((name, first)) = claimed
            .iter()
            .find_map(|n| names.defined_at.get(*n).map(|f| (*n, f.clone())))
        {
            let name = name.to_owned();
            let kind = ErrorKind::DuplicateName { name, first };
            self.error(raw, raw.line_of("name"), Some("name"), kind);
            return None;
        }
        let file = self.sources.get(raw.file).map(|p| p.display().to_string());
        let here = format!("{}:{}", file.unwrap_or_default(), raw.line_of("name"));
        for name in claimed {
            names.defined_at.insert(name.to_owned(), here.clone());
        }
        Some(instances)
    }

    /// Applies `PIDONE_ONLY_SERVICES` & co.
    fn select(&mut self, units: &mut [Unit], by_name: &HashMap<String, Vec<usize>>) {
        let env = &self.ctx.env;
        let only = select::only_list(env);
        for unit in units.iter_mut() {
            let raw = &self.raws[unit.raw];
            let names: Vec<&str> = if unit.instance.is_some() {
                vec![raw.name.as_str(), unit.name.as_str()]
            } else {
                vec![unit.name.as_str()]
            };
            match select::is_enabled(raw.enabled, &names, only.as_ref(), env) {
                Ok(enabled) => unit.enabled = enabled,
                Err(errors) => self.errors.extend(errors),
            }
        }
        if let Some(only) = &only {
            for name in &only.names {
                if !by_name.keys().any(|k| k.to_ascii_lowercase() == *name) {
                    self.errors.push(ConfigError {
                        location: Location::Env {
                            var: only.var.to_owned(),
                        },
                        service: None,
                        key: None,
                        kind: ErrorKind::UnknownService {
                            name: name.clone(),
                            suggestion: self.suggest(name, by_name),
                        },
                    });
                }
            }
        }
    }

    /// Resolves `depends_on`, `after` and `wait_after` of one raw service to unit indices.
    /// `edges` counts the dependencies of every unit so far; `None` (and nothing resolved)
    /// once they pass [`limits::MAX_EXPANDED_DEPENDENCIES`], reported at the entry that does.
    #[allow(clippy::type_complexity)]
    fn resolve_dependencies(
        &mut self,
        raw: &RawService,
        (ri, mine): (usize, &Range<usize>),
        units: &[Unit],
        by_name: &HashMap<String, Vec<usize>>,
        (seen, edges): (&mut (Vec<usize>, Vec<usize>), &mut Option<usize>),
    ) -> Option<(
        Vec<ServiceId>,
        Vec<ServiceId>,
        Vec<(ServiceId, Duration)>,
        Vec<Condition>,
    )> {
        let any_enabled = mine.clone().any(|u| units[u].enabled);
        let (mut depends, mut after) = (Vec::new(), Vec::new());
        let mut conditions = Vec::new();
        // A logger (`log_to`) starts before its producer and stops after it, as with `after`.
        let logger: Vec<(String, usize)> = raw.log_to.iter().cloned().collect();
        for (key, list) in [
            ("depends_on", &raw.depends_on),
            ("after", &raw.after),
            ("log_to", &logger),
        ] {
            for (entry, (name, line)) in list.iter().enumerate() {
                let Some(targets) = by_name.get(name) else {
                    let kind = ErrorKind::UnknownService {
                        name: name.clone(),
                        suggestion: self.suggest(name, by_name),
                    };
                    self.error(raw, *line, Some(key), kind);
                    continue;
                };
                let more = targets.len().saturating_mul(mine.len());
                let total = edges.map(|e| e.saturating_add(more));
                *edges = total.filter(|&t| t <= limits::MAX_EXPANDED_DEPENDENCIES);
                if edges.is_none() {
                    let max = limits::MAX_EXPANDED_DEPENDENCIES;
                    let what = "dependencies once instances are expanded";
                    if let Some(kind) = total.and_then(|t| limits::too_many(what, t, max)) {
                        self.error(raw, *line, Some(key), kind);
                    }
                    return None;
                }
                if key == "log_to" && (targets.len() != 1 || mine.contains(&targets[0])) {
                    let message = match targets.len() {
                        1 => "a service cannot be its own logger".to_owned(),
                        n => format!("{name} has {n} instances: name one, like {name}-1"),
                    };
                    self.error(raw, *line, Some(key), ErrorKind::BadValue { message });
                    continue;
                }
                if key == "depends_on" && any_enabled {
                    self.check_enabled(raw, (name, *line), targets, units);
                }
                let condition = match key {
                    "depends_on" => self.check_condition(raw, entry, (name, *line), targets, units),
                    _ => Condition::Ready,
                };
                let (out, seen) = if key == "depends_on" {
                    (&mut depends, &mut seen.0)
                } else {
                    (&mut after, &mut seen.1)
                };
                // Marks, not a search of the list: every instance of a few services makes
                // thousands of targets.
                for &t in targets {
                    if let Some(by) = seen.get_mut(t)
                        && *by != ri
                    {
                        *by = ri;
                        out.push(ServiceId(t));
                        if key == "depends_on" {
                            conditions.push(condition);
                        }
                    }
                }
            }
        }
        if conditions.iter().all(|c| *c == Condition::Ready) {
            conditions = Vec::new();
        }
        let waits = self.resolve_waits(raw, &depends, by_name);
        Some((depends, after, waits, conditions))
    }

    /// `wait_after`: the delay after each dependency is up, the longest where two apply.
    fn resolve_waits(
        &mut self,
        raw: &RawService,
        depends: &[ServiceId],
        by_name: &HashMap<String, Vec<usize>>,
    ) -> Vec<(ServiceId, Duration)> {
        let mut waits: Vec<(ServiceId, Duration)> = Vec::new();
        let mut add_wait = |id: ServiceId, d: Duration| {
            if d.is_zero() {
                return;
            }
            match waits.iter_mut().find(|(w, _)| *w == id) {
                Some(entry) => entry.1 = entry.1.max(d),
                None => waits.push((id, d)),
            }
        };
        match &raw.wait_after {
            RawWaitAfter::None => {}
            // `depends` has each unit once: no search (thousands, with `instances`).
            RawWaitAfter::All(d) if d.is_zero() => {}
            RawWaitAfter::All(d) => waits.extend(depends.iter().map(|&id| (id, *d))),
            RawWaitAfter::Per(entries) => {
                for (name, d, line) in entries {
                    if !raw.depends_on.iter().any(|(n, _)| n == name) {
                        self.error(
                            raw,
                            *line,
                            Some("wait_after"),
                            ErrorKind::WaitAfterNotDependency { name: name.clone() },
                        );
                        continue;
                    }
                    for &t in by_name.get(name).map(Vec::as_slice).unwrap_or_default() {
                        add_wait(ServiceId(t), *d);
                    }
                }
            }
        }
        waits
    }

    /// One cycle of services (indices into the raw services), at the first one's key.
    fn report_cycle(
        &mut self,
        cycle: &[ServiceId],
        raw_units: &[Range<usize>],
        depends: &[Vec<ServiceId>],
    ) {
        let raws = self.raws;
        let (Some(&first), Some(&second)) = (cycle.first(), cycle.get(1)) else {
            return;
        };
        let raw = &raws[first.0];
        let key = if depends[first.0].contains(&second) {
            "depends_on"
        } else {
            "after"
        };
        let mut path = graph::format_cycle(cycle, |id| raws[id.0].name.as_str());
        // The service the error is about: the one its user reads first.
        if raw.instances.is_some() {
            let count = raw_units[first.0].len();
            path = format!("{path} ({} has {count} instances)", raw.name);
        }
        self.error(raw, raw.line_of(key), Some(key), ErrorKind::Cycle { path });
    }

    fn spec(
        &self,
        raw: &RawService,
        unit: &Unit,
        r: Resolved,
        depends_on: Vec<ServiceId>,
        after: Vec<ServiceId>,
        wait_after: Vec<(ServiceId, Duration)>,
    ) -> ServiceSpec {
        let restart_delay = raw
            .restart_delay
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let restart_delay_max = raw
            .restart_delay_max
            .unwrap_or_else(|| restart_delay.max(Duration::from_secs(30)));
        ServiceSpec {
            name: unit.name.clone(),
            base_name: raw.name.clone(),
            instance: unit.instance,
            file: self.sources.get(raw.file).cloned().unwrap_or_default(),
            line: raw.line,
            argv: r.argv,
            kind: raw.kind,
            enabled: unit.enabled,
            required: raw.required,
            depends_on,
            conditions: Vec::new(),
            after,
            wait_after,
            start_delay: raw.start_delay,
            dependency_wait_timeout: raw
                .dependency_wait_timeout
                .unwrap_or(self.timeouts.dependency_wait),
            restart: restart_policy(raw),
            success_exit_codes: raw.success_exit_codes.clone().unwrap_or_else(|| vec![0]),
            restart_delay,
            restart_delay_max,
            restart_reset: raw.restart_reset.unwrap_or(DEFAULT_RESTART_RESET),
            max_restarts: raw.max_restarts,
            stop_signal: raw.stop_signal.unwrap_or(libc::SIGTERM),
            stop_timeout: raw.stop_timeout.unwrap_or(self.timeouts.service_shutdown),
            stop_timeout_set: raw.stop_timeout.is_some()
                || self.timeouts.service_shutdown != Timeouts::default().service_shutdown,
            user: r.user,
            workdir: r.workdir,
            env: r.env,
            pre_script: r.pre_script,
            post_script: r.post_script,
            #[cfg(feature = "s6")]
            finish: r.finish,
            #[cfg(feature = "s6")]
            finish_timeout: raw.finish_timeout.unwrap_or(Duration::from_secs(5)),
            #[cfg(feature = "s6")]
            env_dir: r.env_dir,
            log: r.log,
            tty: raw.tty,
            log_to: raw
                .log_to
                .as_ref()
                .map(|(name, _)| (name.clone(), raw.log_to_stderr)),
            ready: match raw.kind {
                Kind::Longrun => raw.ready.map_or(ReadyMode::Exec, |(mode, _)| mode),
                Kind::Oneshot => ReadyMode::Exec,
            },
            start_timeout: raw.start_timeout,
            checks: r.checks,
            controls: r.controls,
            description: raw.controls.description.clone(),
            secrets: r.secrets,
            cgroup: r.cgroup,
            cgroup_skipped: r.cgroup_skipped,
            timer: raw.schedule.as_ref().map(|(schedule, text)| Timer {
                schedule: *schedule,
                text: text.clone(),
                zone: r.zone.unwrap_or_else(Zone::utc),
                jitter: raw.jitter,
                overlap: raw.overlap,
            }),
            max_runtime: raw.max_runtime,
            watchdog: raw.watchdog,
            on_demand: raw.on_demand,
            idle_timeout: raw.idle_timeout,
            listen: raw.listen.clone(),
            groups: raw.groups.clone(),
        }
    }
}

/// `restart`, or the default of the service's kind.
pub(super) fn restart_policy(raw: &RawService) -> Restart {
    raw.restart.unwrap_or(match raw.kind {
        Kind::Longrun => Restart::OnFailure,
        Kind::Oneshot => Restart::Never,
    })
}
