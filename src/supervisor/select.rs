//! Resolving the words of a request (names, `@groups`, patterns: control/selector) to the
//! services they name, against the table as it is now. A word that names nothing is an error,
//! and the whole request with it: every word of a request is resolved before anything is done,
//! so a bad request changes nothing. A service a reload removed is no longer known, even while
//! it is still stopping.

use std::collections::HashSet;

use super::system::System;
use super::{Id, Service, Supervisor};
use crate::control::Answer;
use crate::control::selector::{self, Selector};
use crate::core::service::Intent;

/// The most groups an error names (a configuration may have thousands).
const GROUPS_SHOWN: usize = 100;

impl<S: System> Supervisor<S> {
    /// The services `word` names, in start order: the service of that name, every instance of a
    /// service with `instances`, a group's services or those matching a pattern. A 404 when it
    /// names none, a 400 for a malformed pattern.
    pub(super) fn select(&self, word: &str) -> Result<Vec<Id>, Answer> {
        let picked: Vec<Id> = match Selector::of(word) {
            Selector::Name(name) => {
                if let Ok(id) = self.lookup_one(name) {
                    return Ok(vec![id]);
                }
                let all = self.known().filter(|(_, s)| s.spec.instance.is_some());
                let ids: Vec<Id> = (all.filter(|(_, s)| s.spec.base_name == name))
                    .map(|(id, _)| id)
                    .collect();
                if ids.is_empty() {
                    // The error of an unknown name, as it has always been worded.
                    return self.lookup_one(name).map(|id| vec![id]);
                }
                ids
            }
            Selector::Group(group) => self.in_group(group)?,
            Selector::Pattern(pattern) => self.matching(pattern)?,
        };
        Ok(picked)
    }

    /// The services each of `words` names, word after word, each service once.
    pub(super) fn select_all(&self, words: &[String]) -> Result<Vec<Id>, Answer> {
        let mut ids: Vec<Id> = Vec::new();
        let mut seen: HashSet<Id> = HashSet::new();
        for word in words {
            for id in self.select(word)? {
                if seen.insert(id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// True when `word` is the name of one service: the answer is then that service, as it
    /// always was, rather than a list.
    pub(super) fn names_one(&self, word: &str) -> bool {
        matches!(Selector::of(word), Selector::Name(_)) && self.lookup_one(word).is_ok()
    }

    /// The services of `group`; a 404 naming the groups there are when it has none.
    pub(super) fn in_group(&self, group: &str) -> Result<Vec<Id>, Answer> {
        let ids: Vec<Id> = (self.known())
            .filter(|(_, s)| s.spec.groups.iter().any(|g| g == group))
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            return Ok(ids);
        }
        // The groups there are, each once, the first [`GROUPS_SHOWN`] of them.
        let mut groups: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut more = 0usize;
        for g in self.known().flat_map(|(_, s)| &s.spec.groups) {
            if seen.insert(g.as_str()) {
                match groups.len() < GROUPS_SHOWN {
                    true => groups.push(g),
                    false => more += 1,
                }
            }
        }
        let there = match (groups.is_empty(), more) {
            (true, _) => "no service has groups".to_string(),
            (false, 0) => format!("groups: {}", groups.join(", ")),
            (false, _) => format!("groups: {} and {more} more", groups.join(", ")),
        };
        Err(Answer::error(
            404,
            &format!("no service is in group {group:?}; {there}"),
        ))
    }

    /// The services whose names match `pattern`; a 404 when none does, a 400 for a malformed
    /// pattern.
    pub(super) fn matching(&self, pattern: &str) -> Result<Vec<Id>, Answer> {
        selector::check(pattern).map_err(|why| Answer::error(400, &why))?;
        let ids: Vec<Id> = (self.known())
            .filter(|(_, s)| selector::matches(pattern, &s.spec.name))
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            let known: Vec<&str> = self.known().map(|(_, s)| s.spec.name.as_str()).collect();
            let message = format!(
                "no service matches {pattern:?}; known: {}",
                known.join(", ")
            );
            return Err(Answer::error(404, &message));
        }
        Ok(ids)
    }

    /// The services in the table that are not being removed, in start order.
    fn known(&self) -> impl Iterator<Item = (Id, &Service)> {
        (self.svcs.iter()).filter(|(_, s)| s.life.intent != Intent::Remove)
    }
}

impl<S: System> Supervisor<S> {
    /// The services `GET /v1/services` lists: those `names` name (all when absent), then only
    /// those in `group` and matching `pattern`, each of which must name a service of its own.
    pub(super) fn listed(
        &self,
        names: Option<&[String]>,
        group: Option<&str>,
        pattern: Option<&str>,
    ) -> Result<Vec<Id>, Answer> {
        let mut ids: Vec<Id> = match names {
            // A service a reload removed shows only while it is still stopping.
            None => self.svcs.iter().map(|(id, _)| id).collect(),
            Some(words) => self.select_all(words)?,
        };
        if let Some(group) = group {
            let kept: HashSet<Id> = self.in_group(group)?.into_iter().collect();
            ids.retain(|id| kept.contains(id));
        }
        if let Some(pattern) = pattern {
            let kept: HashSet<Id> = self.matching(pattern)?.into_iter().collect();
            ids.retain(|id| kept.contains(id));
        }
        Ok(ids)
    }

    /// The one service `word` names, for what takes one alone (following its logs); a 400 when
    /// it names several.
    pub(super) fn select_single(&self, word: &str) -> Result<Id, Answer> {
        let ids = self.select(word)?;
        if let [id] = ids.as_slice() {
            return Ok(*id);
        }
        let names: Vec<&str> = (ids.iter())
            .filter_map(|id| self.svcs.get(*id).map(|s| s.spec.name.as_str()))
            .collect();
        let message = format!(
            "following logs takes one service; {word:?} names {} ({}): follow each, as `pidone logs -f` does",
            names.len(),
            names.join(", ")
        );
        Err(Answer::error(400, &message))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Rig;
    use super::*;
    use crate::control::{Request, Verb, wire};
    use crate::core::service::State;

    const STACK: &str = "\
[[services]]\nname = \"db\"\ncommand = [\"/bin/echo\", \"db\"]\ngroups = [\"backend\"]\n\
[[services]]\nname = \"worker\"\ncommand = [\"/bin/echo\", \"worker\"]\ngroups = [\"backend\"]\n\
[[services]]\nname = \"web\"\ncommand = [\"/bin/echo\", \"web-${PIDONE_INSTANCE}\"]\ninstances = 3\n\
groups = [\"frontend\"]\n\
[[services]]\nname = \"cron\"\ncommand = [\"/bin/echo\", \"cron\"]\n";

    fn names(rig: &Rig, word: &str) -> Result<Vec<String>, (u16, String)> {
        let name = |id: &Id| rig.sup.svcs.get(*id).map(|s| s.spec.name.clone());
        match rig.sup.select(word) {
            Ok(ids) => Ok(ids.iter().filter_map(name).collect()),
            Err(answer) => Err((answer.status, answer.body)),
        }
    }

    #[test]
    fn a_word_selects_a_name_instances_a_group_or_a_pattern() {
        let rig = Rig::new(STACK);
        let ok = |word| names(&rig, word).expect(word);
        assert_eq!(ok("db"), ["db"]);
        assert_eq!(ok("web-2"), ["web-2"]);
        assert_eq!(ok("web"), ["web-1", "web-2", "web-3"]);
        assert_eq!(ok("@backend"), ["db", "worker"]);
        assert_eq!(ok("web-*"), ["web-1", "web-2", "web-3"]);
        assert_eq!(ok("web-[!2]"), ["web-1", "web-3"]);
        assert_eq!(ok("?????"), ["web-1", "web-2", "web-3"]);
        assert_eq!(ok("*r*"), ["worker", "cron"]);
        assert!(rig.sup.names_one("db") && !rig.sup.names_one("web"));
        assert!(!rig.sup.names_one("@backend") && !rig.sup.names_one("d*"));
    }

    #[test]
    fn a_word_that_names_nothing_is_an_error_saying_what_there_is() {
        let rig = Rig::new(STACK);
        let err = |word| names(&rig, word).expect_err(word);
        assert_eq!(
            err("@nope"),
            (
                404,
                r#"{"error":"no service is in group \"nope\"; groups: backend, frontend"}"#.into()
            )
        );
        let known = "known: db, worker, web-1, web-2, web-3, cron";
        assert_eq!(
            err("api-*"),
            (
                404,
                format!(r#"{{"error":"no service matches \"api-*\"; {known}"}}"#)
            )
        );
        assert_eq!(
            err("nope"),
            (
                404,
                format!(r#"{{"error":"unknown service \"nope\"; {known}"}}"#)
            )
        );
        assert_eq!(err("web-[1").0, 400);
        let many = |from: usize, to: usize| {
            let names: Vec<String> = (from..to).map(|i| format!("\"g{i:03}\"")).collect();
            names.join(", ")
        };
        let crowded = Rig::new(&format!(
            "[[services]]\nname = \"a\"\ncommand = [\"/bin/echo\"]\ngroups = [{}]\n\
             [[services]]\nname = \"b\"\ncommand = [\"/bin/echo\"]\ngroups = [{}]\n",
            many(0, 64),
            many(60, 110)
        ));
        let (_, body) = names(&crowded, "@x").expect_err("no such group");
        assert!(
            body.contains("g000, g001") && body.contains(", g099 and 10 more\""),
            "{body}"
        );
        let bare = Rig::new("[[services]]\nname = \"a\"\ncommand = [\"/bin/echo\"]\n");
        let (_, body) = names(&bare, "@x").expect_err("no groups");
        assert!(body.contains("no service has groups"), "{body}");
    }

    #[test]
    fn acting_on_a_group_acts_on_each_or_on_none() {
        let mut rig = Rig::new(STACK);
        let all = ["db", "worker", "web-1", "web-2", "web-3", "cron"];
        let stop = |name: &str| Request::Act {
            name: name.to_string(),
            verb: Verb::Stop,
        };
        for word in ["@nope", "api-*", "web-[", "nope"] {
            let answer = rig.sup.answer(stop(word), rig.now);
            assert!(answer.status >= 400, "{word}: {answer:?}");
            rig.settle();
            assert!(all.iter().all(|s| rig.state(s) == State::Running), "{word}");
        }
        let answer = rig.sup.answer(stop("@backend"), rig.now);
        assert_eq!(answer.status, 200);
        let list = wire::read_services(&answer.body).expect("a list of services");
        let seen: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(seen, ["db", "worker"]);
        rig.settle();
        assert_eq!(rig.signalled(libc::SIGTERM), ["db", "worker"]);
        let web = ["web-1", "web-2", "web-3", "cron"];
        assert!(web.iter().all(|s| rig.state(s) == State::Running));
        // A service's own name still answers with that service alone.
        let answer = rig.sup.answer(stop("cron"), rig.now);
        assert_eq!(wire::read_service(&answer.body).expect("one").name, "cron");
    }

    #[test]
    fn a_signal_to_a_pattern_reaches_the_running_services_it_matches() {
        let mut rig = Rig::new(STACK);
        let signal = |name: &str| Request::Signal {
            name: name.to_string(),
            signal: libc::SIGHUP,
        };
        let answer = rig.sup.answer(signal("web-[12]"), rig.now);
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(rig.signalled(libc::SIGHUP), ["web-1", "web-2"]);
        let answer = rig.sup.answer(signal("@nope"), rig.now);
        assert_eq!(answer.status, 404);
        rig.sup.answer(
            Request::Act {
                name: "cron".into(),
                verb: Verb::Stop,
            },
            rig.now,
        );
        rig.exit("cron", crate::os::reap::Exit::Signal(libc::SIGTERM));
        let answer = rig.sup.answer(signal("cr*"), rig.now);
        assert_eq!(answer.status, 409, "{answer:?}");
        assert!(
            answer
                .body
                .contains("none of the services \\\"cr*\\\" names is running")
        );
        assert_eq!(rig.signalled(libc::SIGHUP).len(), 2);
    }

    #[test]
    fn the_list_is_narrowed_by_group_and_pattern() {
        let mut rig = Rig::new(STACK);
        let mut list = |names: Option<&[&str]>, group: Option<&str>, pattern: Option<&str>| {
            let request = Request::Services {
                names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
                group: group.map(String::from),
                pattern: pattern.map(String::from),
            };
            let answer = rig.sup.answer(request, rig.now);
            match wire::read_services(&answer.body) {
                Ok(list) => Ok(list.into_iter().map(|s| s.name).collect::<Vec<_>>()),
                Err(_) => Err(answer.status),
            }
        };
        assert_eq!(
            list(None, Some("backend"), None),
            Ok(vec!["db".into(), "worker".into()])
        );
        assert_eq!(list(None, None, Some("w*")).map(|l| l.len()), Ok(4));
        assert_eq!(
            list(None, Some("backend"), Some("w*")),
            Ok(vec!["worker".into()])
        );
        assert_eq!(
            list(Some(&["cron", "@backend", "db"]), None, None),
            Ok(vec!["cron".into(), "db".into(), "worker".into()])
        );
        assert_eq!(list(None, Some("nope"), None), Err(404));
        assert_eq!(list(None, None, Some("x*")), Err(404));
        assert_eq!(list(None, None, Some("[x")), Err(400));
        assert_eq!(list(Some(&["db", "@nope"]), None, None), Err(404));
    }

    #[test]
    fn logs_of_several_services_are_prefixed_and_following_takes_one() {
        let mut rig = Rig::new(STACK);
        for name in ["db", "worker", "web-1"] {
            let mut batch = crate::io::ring::Lines::default();
            batch.push(format!("hello from {name}").as_bytes());
            let id = rig.id(name);
            let svc = rig.sup.svcs.get_mut(id).expect("in the table");
            svc.log.push(&batch, usize::MAX);
        }
        let logs = |name: &str| Request::Logs {
            name: name.to_string(),
            n: 10,
            follow: false,
        };
        let answer = rig.sup.answer(logs("@backend"), rig.now);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "[db] hello from db\n[worker] hello from worker\n")
        );
        let answer = rig.sup.answer(logs("web-1"), rig.now);
        assert_eq!(answer.body, "hello from web-1\n");
        let err = rig.sup.select_single("@backend").expect_err("two services");
        assert!(err.body.contains("names 2 (db, worker)"), "{}", err.body);
        assert!(rig.sup.select_single("web-[2]").is_ok());
        assert_eq!(rig.sup.answer(logs("@nope"), rig.now).status, 404);

        // Past 4 MiB, the services after the first are named, not shown.
        for name in ["db", "worker"] {
            let mut batch = crate::io::ring::Lines::default();
            for i in 0..800 {
                batch.push(format!("{i:04}{}", "x".repeat(4000)).as_bytes());
            }
            let id = rig.id(name);
            let svc = rig.sup.svcs.get_mut(id).expect("in the table");
            svc.log.push(&batch, usize::MAX);
        }
        let many = Request::Logs {
            name: "@backend".to_string(),
            n: 1000,
            follow: false,
        };
        let answer = rig.sup.answer(many, rig.now);
        assert!(answer.body.starts_with("[db] hello from db\n[db] 0000x"));
        assert!(!answer.body.contains("[worker]"));
        assert!(
            answer.body.contains("\n[db] 0799x"),
            "db's last line is there"
        );
        assert!(
            answer
                .body
                .ends_with("pidone: not shown (4 MiB at most): worker\n")
        );
    }

    /// A service's groups change what `@group` names, not the service: a reload that changes
    /// them restarts nothing.
    #[test]
    fn a_reload_that_changes_groups_restarts_nothing() {
        let mut rig = Rig::new(STACK);
        let regrouped = STACK
            .replace("groups = [\"backend\"]", "groups = [\"data\"]")
            .replace("[\"frontend\"]", "[\"frontend\", \"data\"]");
        let summary = rig
            .sup
            .reconcile(super::super::testing::config(&regrouped), rig.now);
        rig.settle();
        assert!(summary.restarted.is_empty(), "{summary:?}");
        assert_eq!(summary.unchanged.len(), 6);
        assert_eq!(rig.signalled(libc::SIGTERM), Vec::<String>::new());
        let all = names(&rig, "@data").expect("the new group");
        assert_eq!(all, ["db", "worker", "web-1", "web-2", "web-3"]);
        assert_eq!(names(&rig, "@backend").expect_err("gone").0, 404);
    }
}
