//! On-demand services and socket activation: the `listen` sockets bound at start-up (kept open
//! across restarts, so connections wait in their backlog while the service is down), watched in
//! the poll set only while an on-demand service is down (the first connection starts it), the
//! on-demand dependencies a starting service brings up, and `idle_timeout`.

use std::time::Instant;

use super::system::System;
use super::{Id, Phase, Service, Supervisor};
use crate::core::service::{Event, Intent, State, later};

impl<S: System> Supervisor<S> {
    /// Binds the `listen` sockets of every enabled service; the error names the file, line,
    /// service and address (an address in use, a path that is not a socket).
    pub fn bind_sockets(&mut self) -> Result<(), String> {
        let ids: Vec<Id> = self.svcs.iter().map(|(id, _)| id).collect();
        ids.into_iter().try_for_each(|id| self.bind_one(id))
    }

    /// (Re)binds service `id`'s `listen` sockets.
    pub(super) fn bind_one(&mut self, id: Id) -> Result<(), String> {
        let Some(svc) = self.svcs.get_mut(id) else {
            return Ok(());
        };
        svc.sockets.clear();
        if !svc.spec.enabled {
            return Ok(());
        }
        for l in &svc.spec.listen {
            match crate::os::listen::bind(&l.addr) {
                Ok(fd) => svc.sockets.push(fd),
                Err(err) => {
                    let (file, name) = (svc.spec.file.display(), &svc.spec.name);
                    let at = format!("{file}:{}: service {name:?}: key \"listen\"", l.line);
                    svc.sockets.clear();
                    return Err(format!("{at}: {}: {err}", l.text));
                }
            }
        }
        Ok(())
    }

    /// True while the first connection to service `id`'s sockets is to start it.
    pub(super) fn watched(&self, svc: &Service) -> bool {
        svc.spec.on_demand
            && svc.spec.enabled
            && svc.life.state == State::Stopped
            && svc.life.intent == Intent::Run
            && self.phase == Phase::Running
    }

    /// A connection (or datagram) came to a down on-demand service's socket: it starts, and its
    /// sockets leave the poll set until it is down again.
    pub(super) fn on_connection(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get(id).filter(|s| self.watched(s)) else {
            return;
        };
        log::info!("{}: a connection came: starting", svc.spec.name);
        self.apply(id, Event::Release, now);
    }

    /// A service about to start brings up its on-demand dependencies that are down; true when
    /// it did.
    pub(super) fn start_on_demand_deps(&mut self, id: Id, now: Instant) -> bool {
        let deps = self
            .svcs
            .get(id)
            .map(|s| s.deps.clone())
            .unwrap_or_default();
        let mut released = false;
        for dep in deps {
            if self
                .svcs
                .get(dep)
                .is_some_and(|d| self.watched(d) && !d.life.want_up)
            {
                self.apply(dep, Event::Release, now);
                released = true;
            }
        }
        released
    }

    /// Stops an on-demand service that has been idle for its `idle_timeout` (once nothing that
    /// depends on it runs).
    pub(super) fn settle_idle(&mut self, id: Id, now: Instant) {
        let Some(svc) = self.svcs.get(id) else {
            return;
        };
        let (Some(idle), true, State::Running) =
            (svc.spec.idle_timeout, svc.spec.on_demand, svc.life.state)
        else {
            return;
        };
        let at = later(svc.active_at, idle);
        if now < at {
            self.wake_at(at);
            return;
        }
        if !self.dependents_idle(id) {
            return;
        }
        let idle = crate::config::format_duration(idle);
        log::info!("{}: idle for {idle}: stopping", svc.spec.name);
        self.apply(id, Event::Stop, now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::control::{Request, Verb};
    use crate::core::service::State;
    use crate::supervisor::testing::Rig;

    const CACHE: &str = "[[services]]\nname = \"cache\"\ncommand = [\"/bin/echo\", \"cache\"]\nstart = \"on-demand\"\nidle_timeout = \"5s\"\n";

    #[test]
    fn an_on_demand_service_waits_and_a_dependent_brings_it_up() {
        let rig = Rig::new(CACHE);
        assert_eq!(rig.state("cache"), State::Stopped);
        assert_eq!(rig.sup.wake, None, "nothing due");
        let web = "[[services]]\nname = \"web\"\ncommand = [\"/bin/echo\", \"web\"]\ndepends_on = \"cache\"\n";
        let rig = Rig::new(&format!("{CACHE}{web}"));
        assert_eq!(rig.state("cache"), State::Running);
        assert_eq!(rig.state("web"), State::Running);
    }

    #[test]
    fn idle_timeout_stops_it_once_quiet() {
        let mut rig = Rig::new(CACHE);
        let start = Request::Act {
            name: "cache".into(),
            verb: Verb::Start,
        };
        assert_eq!(rig.sup.answer(start, rig.now).status, 200);
        rig.settle();
        assert_eq!(rig.state("cache"), State::Running);
        rig.advance(Duration::from_secs(3));
        let mut busy = crate::io::ring::Lines::default();
        busy.push(b"busy");
        rig.sup.record_lines(rig.id("cache"), &busy, rig.now);
        rig.advance(Duration::from_secs(3));
        assert_eq!(rig.state("cache"), State::Running, "a line is activity");
        rig.advance(Duration::from_secs(2));
        assert_eq!(rig.signalled(libc::SIGTERM), ["cache"]);
    }
}
