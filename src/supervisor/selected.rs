//! Requests on every service a word selects (`@backend`, `web-*`): start, stop, restart, signal
//! and logs. The word is resolved first (supervisor/select), so a word that names nothing changes
//! nothing; then each service is acted on in start order. The answer is the list of the services
//! (a word that is one service's name gets that service alone, as it always did: supervisor/api).

use std::time::Instant;

use super::api::log_text;
use super::system::System;
use super::{Id, Supervisor};
use crate::control::wire;
use crate::control::{Answer, MAX_LOGS, Verb};

impl<S: System> Supervisor<S> {
    /// Start, stop or restart `ids` (each with what that takes: dependencies started first,
    /// dependents taken down), then describe each with the dependents it took along.
    pub(super) fn act_on(&mut self, ids: &[Id], verb: Verb, now: Instant) -> Vec<wire::Service> {
        let mut asked: Vec<(Id, Vec<Id>)> = Vec::with_capacity(ids.len());
        for &id in ids {
            let along = match verb {
                Verb::Start => {
                    self.request_start(id, now);
                    Vec::new()
                }
                Verb::Stop => self.request_stop(id, false, now),
                Verb::Restart => self.request_stop(id, true, now),
                Verb::Once => {
                    if let Some(svc) = self.svcs.get_mut(id) {
                        svc.once = true;
                    }
                    Vec::new()
                }
            };
            asked.push((id, along));
        }
        let mut list = Vec::with_capacity(asked.len());
        for (id, along) in asked {
            let Some(mut service) = self.describe(id, now) else {
                continue;
            };
            // The dependents taken down with it, for a client that waits for them too.
            let names = (along.iter())
                .filter(|&&a| a != id)
                .filter_map(|a| self.svcs.get(*a).map(|s| s.spec.name.clone()));
            service.along = Some(names.collect());
            list.push(service);
        }
        list
    }

    /// Sends `signal` to the running ones of the services `word` selected (`ids`); a 409 when
    /// none is running, or naming those the signal could not reach (the others got it). The
    /// answer is the list of the services, or the service alone when `word` is its name.
    pub(super) fn signal_all(
        &mut self,
        word: &str,
        ids: &[Id],
        signal: i32,
        now: Instant,
    ) -> Answer {
        let mut sent = 0;
        let mut failed: Vec<String> = Vec::new();
        for &id in ids {
            // A child still on its way to exec is signalled once it is there (or not at all).
            self.settle_exec(id, now);
            let Some(svc) = self.svcs.get(id) else {
                continue;
            };
            let Some(child) = svc.child.as_ref() else {
                continue;
            };
            match self.sys.signal(child, signal) {
                Ok(()) => sent += 1,
                Err(err) => failed.push(format!("{}: {err}", svc.spec.name)),
            }
        }
        if !failed.is_empty() {
            return Answer::error(409, &failed.join("; "));
        }
        let one = self.names_one(word);
        if sent == 0 {
            let message = match one {
                true => format!("{word} is not running"),
                false => format!("none of the services {word:?} names is running"),
            };
            return Answer::error(409, &message);
        }
        let list: Vec<wire::Service> = (ids.iter())
            .filter_map(|id| self.describe(*id, now))
            .collect();
        match one {
            true => Answer::of(200, &list.first()),
            false => Answer::of(200, &list),
        }
    }

    /// The last `n` lines of each of `ids`, service after service, each line prefixed with
    /// `[name] ` when `prefix` (not for a service asked by its name); the services after the
    /// first that do not fit within [`MAX_LOGS`] bytes are named in a last line.
    pub(super) fn logs_of(&self, ids: &[Id], n: usize, prefix: bool) -> Answer {
        let mut body = String::new();
        let mut left_out: Vec<&str> = Vec::new();
        for id in ids {
            let Some(svc) = self.svcs.get(*id) else {
                continue;
            };
            let text = log_text("", &svc.log, n);
            if !prefix {
                body.push_str(&text);
                continue;
            }
            let head = format!("[{}] ", svc.spec.name);
            let size = text.len() + text.lines().count() * head.len();
            if !left_out.is_empty() || (!body.is_empty() && body.len() + size > MAX_LOGS) {
                left_out.push(&svc.spec.name);
                continue;
            }
            for line in text.lines() {
                body.push_str(&head);
                body.push_str(line);
                body.push('\n');
            }
        }
        if !left_out.is_empty() {
            let names = left_out.join(", ");
            body.push_str(&format!("pidone: not shown (4 MiB at most): {names}\n"));
        }
        Answer {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}
