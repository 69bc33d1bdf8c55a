//! The glue, unit-tested over the fake system and a fake clock: shutdown order, requests on
//! services with dependents, reloads while checks and notify channels are in flight, and tokens
//! that outlive their service.

#![allow(clippy::indexing_slicing)]

use std::time::Duration;

use super::Phase;
use super::testing::{Rig, config};
use crate::control::{Request, Verb};
use crate::core::service::{Intent, State};
use crate::os::reap::Exit;

const TERM: i32 = libc::SIGTERM;

/// A longrun named `name` (its argv ends with its name, which is how [`Rig::signalled`] tells
/// the processes apart) with extra `lines`.
fn longrun(name: &str, lines: &str) -> String {
    format!("[[services]]\nname = \"{name}\"\ncommand = [\"/bin/echo\", \"{name}\"]\n{lines}\n")
}

fn act(rig: &mut Rig, name: &str, verb: Verb) {
    let request = Request::Act {
        name: name.to_string(),
        verb,
    };
    let answer = rig.sup.answer(request, rig.now);
    assert_eq!(answer.status, 200, "{verb:?} {name}: {}", answer.body);
    rig.settle();
}

/// go-overlay's stack: postgres ← migrate (oneshot, done) ← web.
fn stack() -> Rig {
    let text = [
        longrun("postgres", ""),
        longrun("migrate", "type = \"oneshot\"\ndepends_on = \"postgres\""),
        longrun("web", "depends_on = \"migrate\""),
    ]
    .concat();
    let mut rig = Rig::new(&text);
    assert_eq!(rig.state("postgres"), State::Running);
    rig.exit("migrate", Exit::Code(0));
    assert_eq!(rig.state("migrate"), State::Stopped);
    assert_eq!(rig.state("web"), State::Running);
    rig
}

#[test]
fn shutdown_stops_web_before_postgres_through_the_done_oneshot() {
    let mut rig = stack();
    rig.sup.begin_shutdown(rig.now);
    rig.settle();
    assert_eq!(rig.signalled(TERM), ["web"], "postgres waits for web");
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(rig.signalled(TERM), ["web", "postgres"]);
}

#[test]
fn stop_postgres_stops_web_first_and_keeps_both_down() {
    let mut rig = stack();
    act(&mut rig, "postgres", Verb::Stop);
    assert_eq!(rig.signalled(TERM), ["web"], "postgres waits for web");
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(rig.signalled(TERM), ["web", "postgres"]);
    rig.exit("postgres", Exit::Signal(TERM));
    rig.advance(Duration::from_secs(60));
    assert_eq!(rig.state("postgres"), State::Stopped);
    assert_eq!(rig.state("web"), State::Stopped);
}

#[test]
fn shutdown_waits_through_a_stopped_middle_service_and_after() {
    // b depends on a; c is only ordered after b. b is stopped by request (c with it), then c is
    // started again alone: at shutdown, a must still wait for c, through the stopped b.
    let text = [
        longrun("a", ""),
        longrun("b", "depends_on = \"a\""),
        longrun("c", "after = \"b\""),
    ]
    .concat();
    let mut rig = Rig::new(&text);
    act(&mut rig, "b", Verb::Stop);
    rig.exit("c", Exit::Signal(TERM));
    rig.exit("b", Exit::Signal(TERM));
    act(&mut rig, "c", Verb::Start);
    assert_eq!(rig.state("b"), State::Stopped);
    assert_eq!(rig.state("c"), State::Running);
    rig.sup.begin_shutdown(rig.now);
    rig.settle();
    assert_eq!(rig.signalled(TERM), ["c", "b", "c"], "a waits for c");
    rig.exit("c", Exit::Signal(TERM));
    assert_eq!(rig.signalled(TERM), ["c", "b", "c", "a"]);
}

#[test]
fn restart_takes_dependents_down_first_and_brings_everything_back() {
    let text = [longrun("db", ""), longrun("web", "depends_on = \"db\"")].concat();
    let mut rig = Rig::new(&text);
    let (db, web) = (rig.pid("db"), rig.pid("web"));
    act(&mut rig, "db", Verb::Restart);
    assert_eq!(rig.signalled(TERM), ["web"]);
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(rig.signalled(TERM), ["web", "db"]);
    rig.exit("db", Exit::Signal(TERM));
    assert_eq!(rig.state("db"), State::Running);
    assert_eq!(rig.state("web"), State::Running);
    assert_ne!(rig.pid("db"), db);
    assert_ne!(rig.pid("web"), web);
    for name in ["db", "web"] {
        let svc = rig.sup.svcs.get(rig.id(name)).expect("in the table");
        assert_eq!(svc.life.restarts, 1, "{name}: a requested restart counts");
        assert_eq!(svc.life.intent, Intent::Run);
    }
}

#[test]
fn start_brings_up_the_dependencies_that_are_down() {
    let text = [longrun("db", ""), longrun("web", "depends_on = \"db\"")].concat();
    let mut rig = Rig::new(&text);
    act(&mut rig, "db", Verb::Stop);
    rig.exit("web", Exit::Signal(TERM));
    rig.exit("db", Exit::Signal(TERM));
    act(&mut rig, "web", Verb::Start);
    assert_eq!(rig.state("db"), State::Running);
    assert_eq!(rig.state("web"), State::Running);
}

#[test]
fn reload_keeps_ids_channels_and_runs_of_what_stays() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    let checked = format!(
        "ready = {{ notify_fd = 3 }}\n[[services.checks]]\ntcp = \"127.0.0.1:{port}\"\nlevel = \"ready\"\nperiod = \"1s\""
    );
    let before = [
        longrun("gone", ""),
        longrun("kept", &checked),
        longrun("changed", ""),
    ]
    .concat();
    let mut rig = Rig::new(&before);
    let kept = rig.id("kept");
    let has_channels = |rig: &Rig| {
        let svc = rig.sup.svcs.get(kept).expect("kept stays");
        svc.notifier.is_some() && svc.runs.iter().all(Option::is_some)
    };
    assert!(
        has_channels(&rig),
        "a notify fd open and the check connecting"
    );
    let after = [
        longrun("added-with-a-longer-name", ""),
        longrun("kept", &checked),
        longrun("changed", "stop_timeout = \"3s\""),
    ]
    .concat();
    let summary = rig.sup.reconcile(config(&after), rig.now);
    rig.settle();
    assert_eq!(summary.added, ["added-with-a-longer-name"]);
    assert_eq!(summary.removed, ["gone"]);
    assert_eq!(summary.restarted, ["changed"]);
    assert_eq!(summary.unchanged, ["kept"]);
    assert_eq!(rig.id("kept"), kept, "an id survives a reload");
    assert!(has_channels(&rig), "nothing of kept was touched");
    let mut termed = rig.signalled(TERM);
    termed.sort();
    assert_eq!(termed, ["changed", "gone"]);
    // kept's output lines up with the longer name a reload added.
    let width = "added-with-a-longer-name".len();
    let kept_prefix = format!("[{:<width$}] ", "kept");
    let prefixes: Vec<&[u8]> = (rig.sup.sources.iter())
        .filter(|(id, _)| *id == kept)
        .map(|(_, src)| src.prefix())
        .collect();
    assert_eq!(prefixes, [kept_prefix.as_bytes(); 2], "stdout and stderr");
    let gone = rig.id("gone");
    rig.exit("gone", Exit::Signal(TERM));
    assert!(rig.sup.svcs.get(gone).is_none(), "forgotten once down");
    rig.exit("changed", Exit::Signal(TERM));
    assert_eq!(rig.state("changed"), State::Running);
    assert_eq!(rig.state("added-with-a-longer-name"), State::Running);
}

#[test]
fn reload_reports_dependents_restarted_with_a_changed_dependency() {
    let text = |timeout: &str| {
        [
            longrun("db", &format!("stop_timeout = \"{timeout}\"")),
            longrun("web", "depends_on = \"db\""),
            longrun("side", ""),
        ]
        .concat()
    };
    let mut rig = Rig::new(&text("1s"));
    let summary = rig.sup.reconcile(config(&text("2s")), rig.now);
    assert_eq!(summary.restarted, ["db", "web"]);
    assert_eq!(summary.unchanged, ["side"]);
}

#[test]
fn a_token_of_a_forgotten_service_reaches_nothing() {
    let check = "[[services.checks]]\nexec = [\"/bin/echo\", \"probe\"]\nlevel = \"ready\"\nperiod = \"1s\"";
    let stay = longrun("stay", "");
    let mut rig = Rig::new(&[longrun("old", check), stay.clone()].concat());
    let old = rig.id("old");
    rig.sup.reconcile(config(&stay), rig.now);
    rig.exit("old", Exit::Signal(TERM));
    assert!(rig.sup.svcs.get(old).is_none());
    // The new service takes the old one's slot, and its exec check is running.
    rig.sup
        .reconcile(config(&[longrun("new", check), stay].concat()), rig.now);
    rig.settle();
    let new = rig.id("new");
    assert_eq!(new.slot(), old.slot(), "the slot was reused");
    assert_ne!(new, old);
    let running = |rig: &Rig| rig.sup.svcs.get(new).is_some_and(|s| s.runs[0].is_some());
    assert!(running(&rig));
    rig.sup.on_probe_ready(old, 0, rig.now);
    rig.sup.on_notice(old, rig.now);
    assert!(running(&rig), "the old token did not touch the new run");
    let new_svc = rig.sup.svcs.get(new).expect("new");
    assert_eq!(new_svc.checks[0].runs, 0, "no verdict was recorded");
}

#[test]
fn thousands_of_services_start_in_slices_with_the_loop_between() {
    let text: String = (0..200).map(|i| longrun(&format!("s{i}"), "")).collect();
    // Their execs in flight (none done): the next slice is forked all the same.
    let mut rig = Rig::holding(&text);
    let started = |rig: &Rig| rig.sup.sys.started.len();
    assert_eq!(started(&rig), super::STARTS_PER_TURN);
    assert!(
        rig.sup.wake.is_some_and(|at| at <= rig.now),
        "the next turn comes at once"
    );
    rig.settle();
    assert_eq!(started(&rig), 2 * super::STARTS_PER_TURN);
    for _ in 0..2 {
        rig.settle();
    }
    assert_eq!(started(&rig), 200);
    assert!(rig.sup.wake.is_none(), "then pidone sleeps");
}

// Found by review: a dependent restarted along came back before its dependency stopped.

#[test]
fn restart_with_two_dependents_restarts_db_once_both_are_down() {
    let text = [
        longrun("db", ""),
        longrun("web", "depends_on = \"db\""),
        longrun("worker", "depends_on = \"db\""),
    ]
    .concat();
    let mut rig = Rig::new(&text);
    let db = rig.pid("db");
    act(&mut rig, "db", Verb::Restart);
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(
        rig.state("web"),
        State::Stopped,
        "web waits for db's restart"
    );
    rig.exit("worker", Exit::Signal(TERM));
    rig.exit("db", Exit::Signal(TERM));
    assert_ne!(rig.pid("db"), db);
    for name in ["db", "web", "worker"] {
        assert_eq!(rig.state(name), State::Running, "{name}");
    }
}

#[test]
fn reload_of_db_with_two_dependents_applies_it() {
    let text = |t: &str| {
        [
            longrun("db", &format!("stop_timeout = \"{t}\"")),
            longrun("web", "depends_on = \"db\""),
            longrun("worker", "depends_on = \"db\""),
        ]
        .concat()
    };
    let mut rig = Rig::new(&text("1s"));
    let db = rig.pid("db");
    rig.sup.reconcile(config(&text("2s")), rig.now);
    rig.settle();
    rig.exit("web", Exit::Signal(TERM));
    rig.exit("worker", Exit::Signal(TERM));
    rig.exit("db", Exit::Signal(TERM));
    assert_ne!(rig.pid("db"), db);
    assert_eq!(rig.state("web"), State::Running);
}

#[test]
fn restart_through_a_done_oneshot_runs_it_again_before_web() {
    let mut rig = stack();
    act(&mut rig, "postgres", Verb::Restart);
    assert_eq!(rig.signalled(TERM), ["web"]);
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(rig.state("postgres"), State::Stopping);
    assert_ne!(rig.state("web"), State::Running, "web waits for postgres");
    rig.exit("postgres", Exit::Signal(TERM));
    assert_eq!(rig.state("postgres"), State::Running);
    assert_eq!(
        rig.state("migrate"),
        State::Starting,
        "the migration runs again"
    );
    assert_ne!(
        rig.state("web"),
        State::Running,
        "web waits for the migration"
    );
    rig.exit("migrate", Exit::Code(0));
    assert_eq!(rig.state("web"), State::Running);
}

#[test]
fn start_while_a_failed_start_stops_counts_one_restart_and_keeps_the_backoff() {
    let lines = "ready = { notify_fd = 3 }\nstart_timeout = \"5s\"\n\
                 restart_delay = \"10s\"\nrestart_delay_max = \"10s\"";
    let mut rig = Rig::new(&longrun("db", lines));
    rig.advance(Duration::from_secs(5));
    assert_eq!(rig.state("db"), State::Stopping);
    act(&mut rig, "db", Verb::Start);
    rig.exit("db", Exit::Signal(TERM));
    let svc = rig.sup.svcs.get(rig.id("db")).expect("db");
    assert_eq!(svc.life.restarts, 1);
    assert_eq!(rig.state("db"), State::Pending, "its backoff still runs");
}

#[test]
fn removed_services_stop_dependents_first() {
    let text = [
        longrun("db", ""),
        longrun("web", "depends_on = \"db\""),
        longrun("side", ""),
    ]
    .concat();
    let mut rig = Rig::new(&text);
    rig.sup.reconcile(config(&longrun("side", "")), rig.now);
    rig.settle();
    assert_eq!(rig.signalled(TERM), ["web"], "db waits for web");
    rig.exit("web", Exit::Signal(TERM));
    assert_eq!(rig.signalled(TERM), ["web", "db"]);
}

#[test]
fn reload_disabling_a_service_stops_it_and_leaves_what_only_starts_after_it() {
    let text = |e: &str| [longrun("db", e), longrun("web", "after = \"db\"")].concat();
    let mut rig = Rig::new(&text(""));
    rig.sup.reconcile(config(&text("enabled = false")), rig.now);
    rig.settle();
    assert_eq!(rig.signalled(TERM), ["db"]);
    rig.exit("db", Exit::Signal(TERM));
    assert_eq!(rig.state("db"), State::Stopped);
    assert_eq!(rig.state("web"), State::Running);
}

const KILL: i32 = libc::SIGKILL;

/// a ← b ← c, each ignoring its stop signal, on the defaults (stop_timeout 10 s).
fn chain_of_three() -> Rig {
    let text = [
        longrun("a", "restart = \"never\""),
        longrun("b", "depends_on = \"a\""),
        longrun("c", "depends_on = \"b\"\nrestart = \"always\""),
    ]
    .concat();
    Rig::new(&text)
}

/// Issue 11: three default stop timeouts (30 s) in a chain outlasted `docker stop`'s 10 s. The
/// whole shutdown is one budget (8 s by default): c's stop is cut to it, then everything left is
/// killed, and the services killed end stopped (not failed, not restarted), so pidone exits 0.
#[test]
fn the_shutdown_budget_cuts_a_chain_of_stops_and_kills_what_is_left() {
    let mut rig = chain_of_three();
    let t0 = rig.now;
    rig.sup.begin_shutdown(t0);
    rig.settle();
    assert_eq!(rig.signalled(TERM), ["c"]);
    rig.advance(Duration::from_millis(7999));
    assert!(rig.signalled(KILL).is_empty(), "within the budget");
    rig.advance(Duration::from_millis(1));
    let mut killed = rig.signalled(KILL);
    killed.sort();
    assert_eq!(killed, ["a", "b", "c"], "the budget is spent at 8 s");
    assert_eq!(rig.signalled(TERM), ["c"], "no time left to stop b and a");
    let Phase::Killing { give_up_at } = rig.sup.phase else {
        panic!("not killing: {:?}", rig.sup.phase);
    };
    assert_eq!(
        give_up_at,
        t0 + Duration::from_secs(9),
        "KILL_WAIT after it"
    );
    for name in ["c", "b", "a"] {
        rig.exit(name, Exit::Signal(KILL));
        let svc = rig.sup.svcs.get(rig.id(name)).expect("in the table");
        assert_eq!(
            svc.life.state,
            State::Stopped,
            "{name}: {}",
            svc.life.reason
        );
        assert_eq!(svc.life.reason, "killed: the shutdown budget is spent");
    }
    assert_eq!(rig.sup.finished(rig.now), Some(0));
}

/// The stragglers' grace (`--grace`, 5 s here) comes out of the budget too: a service that took
/// 7 s to stop leaves them 1 s.
#[test]
fn the_stragglers_grace_comes_out_of_the_budget() {
    let mut rig = Rig::new(&longrun("slow", ""));
    let t0 = rig.now;
    rig.sup.begin_shutdown(t0);
    rig.advance(Duration::from_secs(7));
    rig.exit("slow", Exit::Signal(TERM));
    assert_eq!(
        rig.sup.phase,
        Phase::Draining {
            kill_at: t0 + Duration::from_secs(8)
        }
    );
    // With time left, the grace is whole.
    let mut rig = Rig::new(&longrun("quick", ""));
    let t0 = rig.now;
    rig.sup.begin_shutdown(t0);
    rig.exit("quick", Exit::Signal(TERM));
    assert_eq!(
        rig.sup.phase,
        Phase::Draining {
            kill_at: t0 + Duration::from_secs(5)
        }
    );
}

/// Sends `message` to service `name`'s sd_notify socket, as the service would.
fn notify(rig: &mut Rig, name: &str, message: &str) {
    use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
    let id = rig.id(name);
    let svc = rig.sup.svcs.get(id).expect("in the table");
    let Some(crate::io::notify::Notifier::Socket { address, .. }) = &svc.notifier else {
        panic!("{name} has no sd_notify socket open");
    };
    let name = address.trim_start_matches('@');
    let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).expect("an address");
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("a socket");
    rustix::net::sendto(&fd, message.as_bytes(), SendFlags::empty(), &addr).expect("sendto");
    rig.sup.on_notice(id, rig.now);
    rig.settle();
}

#[test]
fn a_missed_watchdog_restarts_the_service_and_stopping_keeps_its_socket() {
    let mut rig = Rig::new(&longrun(
        "dog",
        "ready = { sd_notify = true }\nwatchdog = \"10s\"",
    ));
    notify(&mut rig, "dog", "READY=1");
    assert_eq!(rig.state("dog"), State::Running);
    assert_eq!(rig.sup.wake, Some(rig.now + Duration::from_secs(10)));
    rig.advance(Duration::from_secs(9));
    notify(&mut rig, "dog", "WATCHDOG=1\nRELOADING=1");
    let said = |rig: &Rig| rig.sup.svcs.get(rig.id("dog")).and_then(|s| s.notify_state);
    assert_eq!(said(&rig), Some("reloading"));
    notify(&mut rig, "dog", "READY=1");
    assert_eq!(said(&rig), None, "READY=1 ends the reload");
    rig.advance(Duration::from_secs(9));
    assert_eq!(
        rig.signalled(TERM),
        Vec::<String>::new(),
        "the ping pushed it back"
    );
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.signalled(TERM), ["dog"]);
    assert_eq!(rig.state("dog"), State::Stopping);
    // The socket stays open while it stops: STOPPING=1 is heard.
    notify(&mut rig, "dog", "STOPPING=1");
    assert_eq!(said(&rig), Some("stopping"));
    rig.exit("dog", Exit::Signal(TERM));
    let svc = rig.sup.svcs.get(rig.id("dog")).expect("in the table");
    assert!(svc.notifier.is_none(), "closed once the process exited");
    assert_eq!(svc.notify_state, None, "what it said went with it");
    assert_eq!(svc.life.state, State::Pending, "restarted");
    assert!(
        svc.life
            .reason
            .starts_with("watchdog: no WATCHDOG=1 within 10s"),
        "{}",
        svc.life.reason
    );
}

// Start-up pipelining (issue #17): a service's exec is known from its report, read by the loop.

#[test]
fn a_service_is_spawned_when_its_exec_report_ends_and_others_fork_meanwhile() {
    let text = [
        longrun("db", ""),
        longrun("cache", ""),
        longrun("web", "depends_on = \"db\""),
    ]
    .concat();
    let mut rig = Rig::holding(&text);
    // Both independent services are forked, neither known to have exec'd.
    assert_eq!(rig.sup.sys.started.len(), 2);
    for name in ["db", "cache"] {
        assert_eq!(rig.state(name), State::Starting);
        assert!(rig.exec_pending(name) && rig.pid(name).is_some());
    }
    rig.exec("db", None);
    assert_eq!(rig.state("db"), State::Running);
    assert!(!rig.exec_pending("db"));
    assert_eq!(
        rig.state("web"),
        State::Starting,
        "web starts once db is up"
    );
    assert_eq!(rig.state("cache"), State::Starting);
    assert!(rig.exec_pending("cache"));
}

#[test]
fn a_failed_exec_is_a_failed_start_and_its_exit_is_nobodys() {
    let mut rig = Rig::holding(&longrun("web", "restart = \"never\""));
    let pid = rig.pid("web").expect("forked");
    rig.exec("web", Some(libc::ENOENT));
    assert_eq!(rig.state("web"), State::Failed);
    let id = rig.id("web");
    let svc = rig.sup.svcs.get(id).expect("web");
    assert_eq!(svc.life.reason, "start failed: not found");
    assert!(svc.child.is_none());
    // The failed child's exit (127) is reaped later: neither the service's nor an orphan.
    rig.sup.on_exit(pid, Exit::Code(127), rig.now);
    assert_eq!(rig.sup.orphans_reaped, 0);
    assert_eq!(rig.state("web"), State::Failed);
}

#[test]
fn a_child_reaped_before_its_report_is_read_gets_its_report_first() {
    let text = [
        longrun("killed", "restart = \"never\""),
        longrun("denied", "restart = \"never\""),
    ]
    .concat();
    let mut rig = Rig::holding(&text);
    // Killed before exec: no errno, so it was spawned, then it ended.
    rig.exit("killed", Exit::Signal(libc::SIGKILL));
    assert_eq!(rig.state("killed"), State::Failed);
    let id = rig.id("killed");
    let reason = &rig.sup.svcs.get(id).expect("killed").life.reason;
    assert_eq!(reason, "exited with signal KILL");
    // The report says EACCES and the child exits 127: a failed start, the exit swallowed.
    let pid = rig.pid("denied").expect("forked");
    let held = rig.sup.sys.held.iter().find(|(p, _)| *p == pid);
    let (_, writer) = held.expect("held");
    rustix::io::write(writer, &libc::EACCES.to_ne_bytes()).expect("write");
    rig.exit("denied", Exit::Code(127));
    let id = rig.id("denied");
    let reason = &rig.sup.svcs.get(id).expect("denied").life.reason;
    assert_eq!(
        reason,
        "start failed: permission denied (not executable, or a directory)"
    );
    assert_eq!(rig.sup.orphans_reaped, 0);
}

#[test]
fn a_shutdown_reads_the_execs_in_flight_before_it_stops_them() {
    let text = [longrun("a", ""), longrun("b", "")].concat();
    let mut rig = Rig::holding(&text);
    // Both have exec'd, and the loop has not read their reports yet.
    rig.sup.sys.held.clear();
    assert!(rig.exec_pending("a") && rig.exec_pending("b"));
    rig.sup.begin_shutdown(rig.now);
    rig.settle();
    let mut termed = rig.signalled(TERM);
    termed.sort();
    assert_eq!(termed, ["a", "b"]);
    assert_eq!(rig.state("a"), State::Stopping);
    assert!(!rig.exec_pending("a") && !rig.exec_pending("b"));
}

#[test]
fn a_kill_does_not_wait_for_an_exec_in_flight() {
    let mut rig = Rig::holding(&longrun("stuck", ""));
    let pid = rig.pid("stuck").expect("forked");
    rig.sup.kill_all(rig.now, "killed: test");
    // SIGKILL to the child first (which ends its report), then to its group.
    let kills: Vec<_> = (rig.sup.sys.sent.iter())
        .filter(|(p, s)| *p == pid && *s == libc::SIGKILL)
        .collect();
    assert_eq!(kills.len(), 2, "{:?}", rig.sup.sys.sent);
    assert_eq!(rig.state("stuck"), State::Stopping);
}

#[test]
fn a_reload_reads_the_execs_in_flight_under_the_old_settings_first() {
    let mut rig = Rig::holding(&longrun("web", ""));
    rig.sup.sys.held.clear();
    assert!(rig.exec_pending("web"));
    // The new settings wait for readiness; the start under way was made under the old ones.
    let changed = longrun("web", "ready = { after = \"1h\" }");
    rig.sup.reconcile(config(&changed), rig.now);
    assert!(!rig.exec_pending("web"));
    let id = rig.id("web");
    let svc = rig.sup.svcs.get(id).expect("web");
    assert_eq!(
        svc.life.state,
        State::Running,
        "spawned under the old policy"
    );
}
