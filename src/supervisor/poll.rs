//! The poll set: what pidone waits on in one `poll()` (the signal pipe, pidfds, output pipes and
//! streams, exec reports, notifiers, probes, the control socket) and the dispatch of what poll
//! found ready.
//! Tokens name services by stable [`Id`]: one whose service is gone finds nothing.

use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

use super::system::{Real, System};
use super::{Id, Supervisor};
use crate::control::{Conn, TurnQuota};
use crate::io::output::{ReadOutcome, Stream};
use crate::io::probe::Run;
use crate::os::spawn::Child;

impl Supervisor<Real> {
    /// Sleeps in poll() until a signal, a child's exit, output to move, or the next deadline.
    pub(super) fn wait_for_events(&self) -> Vec<Ready> {
        let timeout = self.wake.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        let signal_fd = self.sys.signals.fd();
        let mut fds = vec![PollFd::new(&signal_fd, PollFlags::IN)];
        let mut what = vec![Ready::Signals];
        let pidfds = self
            .main
            .iter()
            .chain(self.svcs.iter().filter_map(|(_, s)| s.child.as_ref()));
        for fd in pidfds.filter_map(Child::pidfd) {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
            what.push(Ready::Pidfd);
        }
        // Back-pressure: a stream whose queue is full stops reading its sources until it drains;
        // polled for no event, they still report their end (POLLHUP), to be closed.
        for (i, (_, src)) in self.sources.iter().enumerate() {
            if self.output.holds_back(src) {
                fds.push(PollFd::from_borrowed_fd(src.fd(), PollFlags::empty()));
                what.push(Ready::Ended(i));
            } else {
                fds.push(PollFd::from_borrowed_fd(src.fd(), PollFlags::IN));
                what.push(Ready::Source(i));
            }
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.output.wants_write(stream) {
                fds.push(PollFd::from_borrowed_fd(
                    self.output.fd(stream),
                    PollFlags::OUT,
                ));
                what.push(Ready::Sink(stream));
            }
        }
        for (id, svc) in self.svcs.iter() {
            if let Some((_, report)) = &svc.exec {
                fds.push(PollFd::from_borrowed_fd(report.fd(), PollFlags::IN));
                what.push(Ready::Exec(id));
            }
            if self.watched(svc) {
                for fd in &svc.sockets {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    what.push(Ready::Socket(id));
                }
            }
            if let Some(fd) = svc.oom.fd() {
                fds.push(PollFd::from_borrowed_fd(fd, PollFlags::PRI));
                what.push(Ready::OomEvents(id));
            }
            if let Some(notifier) = &svc.notifier {
                fds.push(PollFd::from_borrowed_fd(notifier.fd(), PollFlags::IN));
                what.push(Ready::Notify(id));
            }
            for (k, run) in svc.runs.iter().enumerate() {
                if let Some((fd, events)) = run.as_ref().and_then(Run::interest) {
                    fds.push(PollFd::from_borrowed_fd(fd, events));
                    what.push(Ready::Probe(id, k));
                }
            }
        }
        for (s, server) in self.servers.iter().enumerate() {
            let Some(server) = server else { continue };
            for (i, conn) in server.conns.iter().enumerate() {
                let events = if conn.answering() {
                    PollFlags::OUT
                } else if conn.flushing() {
                    PollFlags::IN | PollFlags::OUT
                } else {
                    PollFlags::IN
                };
                fds.push(PollFd::from_borrowed_fd(conn.fd(), events));
                what.push(Ready::Conn(s, i));
            }
            // After the connections: requests that arrived are read before an idle connection
            // gives way to a newcomer.
            if server.has_room(Instant::now()) {
                for fd in server.fds() {
                    fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
                    what.push(Ready::Listener(s));
                }
            }
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(err) => log::error!("poll: {err}"),
        }
        fds.iter()
            .zip(what)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(_, w)| w)
            .collect()
    }
}

impl<S: System> Supervisor<S> {
    /// Moves output: reads ready service pipes (dropping those at EOF), writes queued lines.
    pub(super) fn on_ready(&mut self, ready: &[Ready], now: Instant) {
        let mut closed = Vec::new();
        let mut quota = TurnQuota::default();
        for r in ready {
            match *r {
                Ready::Source(i) | Ready::Ended(i) => {
                    let Some((id, src)) = self.sources.get_mut(i) else {
                        continue;
                    };
                    let outcome = match r {
                        Ready::Ended(_) => self.output.read_ended(src),
                        _ => self.output.read_from(src),
                    };
                    if outcome == ReadOutcome::Eof {
                        closed.push(i);
                    }
                    let (id, lines) = (*id, self.output.take_lines());
                    self.record_lines(id, &lines, now);
                    self.output.give_back(lines);
                }
                Ready::Sink(stream) => self.output.write_ready(stream),
                Ready::Listener(s) => {
                    if let Some(server) = self.servers.get_mut(s).and_then(Option::as_mut) {
                        server.accept(now);
                    }
                }
                Ready::Conn(s, i) => {
                    let fresh = self.conn_mut(s, i).is_some_and(|c| c.idle());
                    if fresh && !quota.admits() {
                        continue; // Still readable: the next turn reads it.
                    }
                    let began = Instant::now();
                    self.serve(s, i, now);
                    if fresh {
                        let held = self.conn_mut(s, i).map_or(0, |c| c.held());
                        quota.served(held, began.elapsed());
                    }
                    if let Some(server) = self.servers.get_mut(s).and_then(Option::as_mut) {
                        server.keep_budget();
                    }
                }
                Ready::Exec(id) => self.settle_exec(id, now),
                Ready::Notify(id) => self.on_notice(id, now),
                Ready::Socket(id) => self.on_connection(id, now),
                Ready::Probe(id, k) => self.on_probe_ready(id, k, now),
                Ready::OomEvents(id) => {
                    if let Some(svc) = self.svcs.get_mut(id) {
                        svc.look_at_oom_kills(false);
                    }
                }
                Ready::Signals | Ready::Pidfd => {}
            }
        }
        for i in closed.into_iter().rev() {
            self.sources.swap_remove(i);
        }
        for server in self.servers.iter_mut().flatten() {
            server.conns.retain(|c| !c.is_closed());
        }
    }

    /// Connection `i` of server `s`, if there is one.
    pub(super) fn conn_mut(&mut self, s: usize, i: usize) -> Option<&mut Conn> {
        let server = self.servers.get_mut(s).and_then(Option::as_mut)?;
        server.conns.get_mut(i)
    }
}

/// What poll found ready, by position in the poll set.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ready {
    Signals,
    Pidfd,
    Source(usize),
    /// A source of a paused stream, polled for no event: its pipe ended (POLLHUP, POLLERR).
    Ended(usize),
    Sink(Stream),
    /// A listening socket of server `s` (the control socket or the TCP endpoint).
    Listener(usize),
    /// Connection `i` of server `s`.
    Conn(usize, usize),
    /// A service's exec report: its child exec'd, or says why it could not.
    Exec(Id),
    /// A service's notifier.
    Notify(Id),
    /// A check's run in progress.
    Probe(Id, usize),
    /// A `listen` socket of a down on-demand service.
    Socket(Id),
    /// A service cgroup's `memory.events` changed (`POLLPRI`).
    OomEvents(Id),
}

impl Ready {
    /// True for a turn that only moved output: something was ready (not a deadline, which may
    /// be the shutdown's), and all of it the services' pipes or pidone's own stdout and stderr.
    pub(super) fn output_only(ready: &[Ready]) -> bool {
        !ready.is_empty()
            && (ready.iter())
                .all(|r| matches!(r, Ready::Source(_) | Ready::Ended(_) | Ready::Sink(_)))
    }
}
