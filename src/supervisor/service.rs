//! One supervised service as the supervisor holds it ([`Service`]): its configuration, its state
//! machine, its process, its readiness channel and checks, and its dependencies as table ids.
//! [`link`] resolves a configuration's positions into those ids.

use std::time::{Duration, Instant};

use super::Id;
use super::table::Table;
use super::timer::Timed;
use crate::config::{Config, Level, ReadyMode, ServiceSpec};
use crate::core::health::Check;
use crate::core::service::{Life, Policy, Step};
use crate::io::notify::Notifier;
use crate::io::probe::Run;
use crate::io::ring::LineRing;
use crate::os::fork::ExecReport;
use crate::os::spawn::Child;

/// One supervised service: its configuration, its state, its process.
pub(super) struct Service {
    pub(super) spec: ServiceSpec,
    pub(super) policy: Policy,
    pub(super) life: Life,
    pub(super) child: Option<Child>,
    /// The exec report of `child` while it has not been read: the step forked, not yet known
    /// to have exec'd (`execs`).
    pub(super) exec: Option<(Step, ExecReport)>,
    /// When the post_script is due (post_script_timeout after the service came up).
    pub(super) post_at: Option<Instant>,
    /// Its `finish` running: the pid, and when it gets SIGKILL.
    #[cfg(feature = "s6")]
    pub(super) finish_by: Option<(rustix::process::Pid, Instant)>,
    /// The last lines of its output (prefix mode), oldest first, at most `log_lines`.
    pub(super) log: LineRing,
    /// Its dependencies (`depends_on`), the services it starts after (`after`) and the extra
    /// waits of `wait_after`, as table ids.
    pub(super) deps: Vec<Id>,
    pub(super) after: Vec<Id>,
    pub(super) wait_after: Vec<(Id, Duration)>,
    /// The conditions of its dependencies other than `ready` (see `conditions`).
    pub(super) conditions: Vec<(Id, crate::config::conditions::Condition)>,
    /// The services that depend on it or are ordered after it.
    pub(super) dependents: Vec<Id>,
    /// The readiness channel of the current start (notify fd or sd_notify socket).
    pub(super) notifier: Option<Notifier>,
    /// The current start waits for the notifier's readiness message.
    pub(super) awaiting_notice: bool,
    /// What the process last said through sd_notify: `STATUS=` and `MAINPID=`.
    pub(super) notify_status: Option<String>,
    pub(super) main_pid: Option<i32>,
    /// What it last said of itself through sd_notify: `reloading` (until `READY=1`) or
    /// `stopping`.
    pub(super) notify_state: Option<&'static str>,
    /// When its next `WATCHDOG=1` is due (`watchdog`, while it runs).
    pub(super) watchdog_at: Option<Instant>,
    /// The state of each of `spec.checks`, and its run in progress.
    pub(super) checks: Vec<Check>,
    pub(super) runs: Vec<Option<Run>>,
    /// The OOM kills of its cgroup, followed while the main process runs (cgroups managed only).
    pub(super) oom: crate::os::cgroup::OomWatch,
    /// How many of its processes the OOM killer killed.
    pub(super) oom_kills: u64,
    /// A timed oneshot's next run and past runs.
    pub(super) timed: Timed,
    /// Its `listen` sockets, bound at start-up and kept across its restarts.
    pub(super) sockets: Vec<std::os::fd::OwnedFd>,
    /// When it last showed activity (came up, wrote a line, sent an sd_notify message), for
    /// `idle_timeout`.
    pub(super) active_at: Instant,
    /// Asked to run once (s6-svc's `-O`): not restarted when its process next ends.
    pub(super) once: bool,
}

impl Service {
    /// A service of a new configuration, as it is at `now`: PENDING, or STOPPED if disabled.
    pub(super) fn new(spec: ServiceSpec, now: Instant) -> Service {
        let policy = policy_of(&spec);
        let life = Life::new(spec.enabled, &policy, now);
        let mut svc = Service {
            spec,
            policy,
            life,
            child: None,
            exec: None,
            post_at: None,
            #[cfg(feature = "s6")]
            finish_by: None,
            log: LineRing::default(),
            deps: Vec::new(),
            after: Vec::new(),
            wait_after: Vec::new(),
            conditions: Vec::new(),
            dependents: Vec::new(),
            notifier: None,
            awaiting_notice: false,
            notify_status: None,
            main_pid: None,
            notify_state: None,
            watchdog_at: None,
            checks: Vec::new(),
            runs: Vec::new(),
            oom: Default::default(),
            oom_kills: 0,
            timed: Timed::default(),
            sockets: Vec::new(),
            active_at: now,
            once: false,
        };
        svc.reset_checks();
        svc
    }

    /// Looks at the OOM kills in its cgroup since the last look: counts them, and warns of
    /// them but of one when `main_killed` (a SIGKILL of the main process: its reason will say
    /// it). Returns whether the OOM killer killed since the main process started, and
    /// `main_killed`: then it killed the main process.
    pub(super) fn look_at_oom_kills(&mut self, main_killed: bool) -> bool {
        let new = self.oom.news();
        let main = main_killed && self.oom.since_start();
        self.oom_kills += new;
        if new > u64::from(main) {
            let name = &self.spec.name;
            log::warn!("a process of {name} was killed by the OOM killer");
        }
        main
    }

    /// Fresh, idle check states for `spec.checks` (a new service, or a new spec at a reload).
    pub(super) fn reset_checks(&mut self) {
        let n = self.spec.checks.len();
        self.checks = vec![Check::new(); n];
        self.runs = (0..n).map(|_| None).collect();
    }
}

/// The parts of a service's configuration its state machine reads.
pub(super) fn policy_of(spec: &ServiceSpec) -> Policy {
    Policy {
        kind: spec.kind,
        restart: spec.restart,
        success_exit_codes: spec.success_exit_codes.clone(),
        restart_delay: spec.restart_delay,
        restart_delay_max: spec.restart_delay_max,
        restart_reset: spec.restart_reset,
        max_restarts: spec.max_restarts,
        stop_signal: spec.stop_signal,
        stop_timeout: spec.stop_timeout,
        has_pre_script: spec.pre_script.is_some(),
        ready_after: match spec.ready {
            ReadyMode::After(d) => Some(d),
            _ => None,
        },
        waits_for_ready: matches!(spec.ready, ReadyMode::NotifyFd(_) | ReadyMode::SdNotify)
            || spec.checks.iter().any(|c| c.level == Level::Ready),
        start_timeout: spec.start_timeout,
        waiting_for: waiting_for(spec),
        scheduled: spec.timer.is_some(),
        on_demand: spec.on_demand,
    }
}

/// What a start of `spec` waits for before it is up, as the reason of its STARTING state:
/// `waiting for READY=1 and check http`.
pub(super) fn waiting_for(spec: &ServiceSpec) -> String {
    let mut what: Vec<String> = match spec.ready {
        ReadyMode::Exec => Vec::new(),
        ReadyMode::NotifyFd(n) => vec![format!("a newline on fd {n}")],
        ReadyMode::SdNotify => vec!["READY=1".to_string()],
        ReadyMode::After(d) => vec![format!("{} alive", crate::config::format_duration(d))],
    };
    what.extend(
        spec.checks
            .iter()
            .filter(|c| c.level == Level::Ready)
            .map(|c| format!("check {}", c.name)),
    );
    if what.is_empty() {
        String::new()
    } else {
        format!("waiting for {}", what.join(" and "))
    }
}

/// The services of `config` (taken out of it) in a new table, as they are at `now`, linked;
/// and their ids in the configuration's order.
pub(super) fn table_of(config: &mut Config, now: Instant) -> (Table<Service>, Vec<Id>) {
    let dependents = config.dependents();
    let mut svcs = Table::default();
    let ids: Vec<Id> = std::mem::take(&mut config.services)
        .into_iter()
        .map(|spec| svcs.insert(Service::new(spec, now)))
        .collect();
    link(&mut svcs, &ids, &dependents);
    (svcs, ids)
}

/// Resolves the dependencies of the services `ids` (one per service of a configuration, in its
/// order) from the configuration's positions into table ids, and records each one's dependents
/// (`dependents` as [`Config::dependents`] gives them, by position).
pub(super) fn link(
    svcs: &mut Table<Service>,
    ids: &[Id],
    dependents: &[Vec<crate::core::graph::ServiceId>],
) {
    let at = |i: &crate::core::graph::ServiceId| ids.get(i.index()).copied();
    for (&id, theirs) in ids.iter().zip(dependents) {
        let Some(svc) = svcs.get_mut(id) else {
            continue;
        };
        svc.deps = svc.spec.depends_on.iter().filter_map(at).collect();
        svc.after = svc.spec.after.iter().filter_map(at).collect();
        svc.wait_after = (svc.spec.wait_after.iter())
            .filter_map(|(i, d)| Some((at(i)?, *d)))
            .collect();
        svc.conditions = super::conditions::linked(&svc.spec, at);
        svc.dependents = theirs.iter().filter_map(at).collect();
    }
}
