//! When a dependency's condition (`depends_on = { db = "ready", migrate = "completed" }`) is
//! met, from the dependency's life: [`verdict`]. `settle::start_time` asks it for every
//! dependency of a service waiting to start; a condition is only a gate on the start (and each
//! restart): a dependency failing later does not stop a dependent that runs.

use std::time::Instant;

use super::Id;
use super::service::Service;
use crate::config::conditions::Condition;
use crate::config::{Kind, ServiceSpec};
use crate::core::graph::ServiceId;
use crate::core::service::State;

/// What a dependency's condition says of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Met since this instant (from which `wait_after` counts).
    Met(Instant),
    /// Not met yet.
    Waiting,
    /// Never to be met: the dependent fails ("dependency NAME failed").
    Failed,
}

/// Whether `dep` meets `condition`.
pub(super) fn verdict(condition: Condition, dep: &Service) -> Verdict {
    let life = &dep.life;
    let failed = life.state == State::Failed;
    match condition {
        Condition::Ready => match life.up_at.filter(|_| life.is_up(dep.spec.kind)) {
            _ if failed => Verdict::Failed,
            Some(up) => Verdict::Met(up),
            None => Verdict::Waiting,
        },
        Condition::Started => match (life.state, life.started_at) {
            (State::Failed, _) => Verdict::Failed,
            (State::Starting | State::Running, Some(at)) => Verdict::Met(at),
            // Done and fine: a oneshot that exited successfully, a longrun that exited cleanly
            // and stays down by its restart policy.
            (State::Stopped, Some(at)) if life.want_up => Verdict::Met(at),
            _ => Verdict::Waiting,
        },
        Condition::Completed => match (life.state, life.ended_at) {
            (State::Stopped | State::Failed, Some(at))
                if life.want_up && dep.spec.kind == Kind::Oneshot =>
            {
                Verdict::Met(at)
            }
            _ if failed => Verdict::Failed,
            _ => Verdict::Waiting,
        },
    }
}

/// The conditions of `spec`'s dependencies other than `ready`, as table ids (`at` gives a
/// configuration position's id).
pub(super) fn linked(
    spec: &ServiceSpec,
    at: impl Fn(&ServiceId) -> Option<Id>,
) -> Vec<(Id, Condition)> {
    (spec.depends_on.iter().zip(&spec.conditions))
        .filter(|(_, c)| **c != Condition::Ready)
        .filter_map(|(i, c)| Some((at(i)?, *c)))
        .collect()
}

impl Service {
    /// The condition this service waits for in its dependency `dep`.
    pub(super) fn condition_of(&self, dep: Id) -> Condition {
        (self.conditions.iter())
            .find(|(d, _)| *d == dep)
            .map_or(Condition::Ready, |(_, c)| *c)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::time::Duration;

    use super::super::testing::Rig;
    use crate::core::service::State;
    use crate::os::reap::Exit;

    /// A service named `name` (its argv ends with its name) with extra `lines`.
    fn service(name: &str, lines: &str) -> String {
        format!("[[services]]\nname = \"{name}\"\ncommand = [\"/bin/echo\", \"{name}\"]\n{lines}\n")
    }

    fn reason(rig: &Rig, name: &str) -> String {
        let svc = rig.sup.svcs.get(rig.id(name)).expect("in the table");
        svc.life.reason.clone()
    }

    /// migrate (a oneshot) ← web ("completed") and api ("ready", the array form).
    fn migrations() -> Rig {
        Rig::new(
            &[
                service("migrate", "type = \"oneshot\""),
                service("web", "depends_on = { migrate = \"completed\" }"),
                service("api", "depends_on = [\"migrate\"]"),
            ]
            .concat(),
        )
    }

    #[test]
    fn completed_starts_after_a_failed_oneshot_where_ready_fails() {
        let mut rig = migrations();
        assert_eq!(rig.state("web"), State::Pending, "migrate still runs");
        rig.exit("migrate", Exit::Code(3));
        assert_eq!(rig.state("migrate"), State::Failed);
        assert_eq!(rig.state("web"), State::Running);
        assert_eq!(rig.state("api"), State::Failed);
        assert_eq!(reason(&rig, "api"), "dependency migrate failed");
    }

    #[test]
    fn completed_and_ready_both_start_after_a_successful_oneshot() {
        let mut rig = migrations();
        rig.exit("migrate", Exit::Code(0));
        assert_eq!(rig.state("web"), State::Running);
        assert_eq!(rig.state("api"), State::Running);
    }

    #[test]
    fn completed_fails_when_the_oneshot_never_ran() {
        let mut rig = Rig::new(
            &[
                service("db", "restart = \"never\"\nready = { after = \"5s\" }"),
                service("migrate", "type = \"oneshot\"\ndepends_on = \"db\""),
                service("web", "depends_on = { migrate = \"completed\" }"),
            ]
            .concat(),
        );
        rig.exit("db", Exit::Code(1));
        assert_eq!(rig.state("migrate"), State::Failed);
        assert_eq!(rig.state("web"), State::Failed);
        assert_eq!(reason(&rig, "web"), "dependency migrate failed");
    }

    /// db takes 5 s to be ready; web asks only that it started, api that it is ready.
    fn slow_db(db: &str) -> Rig {
        Rig::new(
            &[
                service(
                    "db",
                    &format!("ready = {{ after = \"5s\" }}\nrestart = \"never\"\n{db}"),
                ),
                service("web", "[services.depends_on]\ndb = \"started\""),
                service("api", "depends_on = \"db\""),
            ]
            .concat(),
        )
    }

    #[test]
    fn started_starts_before_readiness() {
        let mut rig = slow_db("");
        assert_eq!(rig.state("db"), State::Starting);
        assert_eq!(rig.state("web"), State::Running);
        assert_eq!(rig.state("api"), State::Pending);
        rig.advance(Duration::from_secs(5));
        assert_eq!(rig.state("db"), State::Running);
        assert_eq!(rig.state("api"), State::Running);
    }

    #[test]
    fn started_fails_when_the_dependency_fails_before_its_spawn() {
        let mut rig = slow_db("pre_script = [\"/bin/echo\", \"pre\"]");
        assert_eq!(rig.state("db"), State::Starting);
        assert_eq!(
            rig.state("web"),
            State::Pending,
            "only db's pre_script runs"
        );
        rig.exit("db", Exit::Code(1));
        assert_eq!(rig.state("db"), State::Failed);
        assert_eq!(rig.state("web"), State::Failed);
        assert_eq!(reason(&rig, "web"), "dependency db failed");
    }

    #[test]
    fn started_waits_for_a_restart_then_counts_wait_after_from_the_spawn() {
        let mut rig = Rig::new(
            &[
                service("db", "restart_delay = \"2s\""),
                service(
                    "web",
                    "depends_on = { db = \"started\" }\nwait_after = { db = 3 }",
                ),
            ]
            .concat(),
        );
        rig.advance(Duration::from_secs(1));
        rig.exit("db", Exit::Code(1));
        assert_eq!(rig.state("db"), State::Pending, "restarting in 2s");
        rig.advance(Duration::from_secs(2));
        assert_eq!(rig.state("db"), State::Running);
        assert_eq!(rig.state("web"), State::Pending, "3 s after db's spawn");
        rig.advance(Duration::from_secs(3));
        assert_eq!(rig.state("web"), State::Running);
    }

    #[test]
    fn a_started_dependency_still_orders_the_shutdown() {
        let mut rig = slow_db("");
        rig.advance(Duration::from_secs(5));
        rig.sup.begin_shutdown(rig.now);
        rig.settle();
        assert_eq!(rig.signalled(libc::SIGTERM), ["web", "api"]);
        rig.exit("web", Exit::Signal(libc::SIGTERM));
        rig.exit("api", Exit::Signal(libc::SIGTERM));
        assert_eq!(rig.signalled(libc::SIGTERM), ["web", "api", "db"]);
    }
}
