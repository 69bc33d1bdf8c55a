//! Black-box tests of the control socket's verbs through the built-in client (`pidone
//! status|start|stop|restart|signal|shutdown|reload`): a real pidone supervising small `/bin/sh`
//! services, each test with its own socket in its own temp dir; most run pidone as a plain child,
//! a few also as a true PID 1. Needs root and util-linux.
//!
//! Nothing sleeps a fixed time: every wait polls a condition against a deadline. "Did not happen"
//! is observed against a witness that did: a crashing service restarted every 100 ms is the clock.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use support::*;

in_both_modes!(
    restart_gives_a_new_pid_and_counts,
    signal_reaches_the_service,
    shutdown_makes_pidone_exit_0,
);

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// status

#[test]
fn status_lists_every_service_in_start_order_whatever_its_state() {
    // web comes first in the file but depends on db: the start order puts db first.
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "web"
depends_on = ["db"]
command = {web}

[[services]]
name = "db"
command = {db}

[[services]]
name = "broken"
restart = "never"
command = ["/bin/sh", "-c", "exit 3"]

[[services]]
name = "off"
enabled = false
command = ["/bin/sleep", "1000"]

[[services]]
name = "halted"
command = {halted}
"#,
            web = longrun("web"),
            db = longrun("db"),
            halted = longrun("halted"),
        ),
    );
    d.wait_running("web");
    d.wait_state("broken", "failed");
    d.ok(&["stop", "halted"]);

    let order = ["db", "web", "broken", "off", "halted"];
    let expected_states = [
        ("db", "running"),
        ("web", "running"),
        ("broken", "failed"),
        ("off", "stopped"),
        ("halted", "stopped"),
    ];

    let out = d.ok(&["status"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines
            .first()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME",
            "STATE",
            "PID",
            "UPTIME",
            "RESTARTS",
            "LAST-EXIT",
            "REASON"
        ]),
        "table header:\n{}",
        out.stdout
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        order,
        "rows in start order, every service:\n{}",
        out.stdout
    );
    for (row, (name, state)) in rows.iter().zip(expected_states) {
        assert_eq!(row[1], state, "{name}'s state:\n{}", out.stdout);
    }
    let broken = &rows[2];
    assert_eq!(
        broken[2], "-",
        "a failed service has no pid:\n{}",
        out.stdout
    );
    assert_eq!(broken[5], "3", "broken's last exit:\n{}", out.stdout);
    // The columns are aligned: every row's STATE starts where the header's does.
    let column = lines[0].find("STATE").expect("STATE in header");
    for line in &lines[1..] {
        assert!(
            line[column..].starts_with(|c: char| c.is_ascii_lowercase()) && {
                let before = &line[..column];
                before.ends_with("  ")
            },
            "STATE column not aligned in {line:?}:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour off a terminal:\n{}",
        out.stdout
    );

    // --json: the API's objects, same order, every field the issue lists.
    let out = d.ok(&["status", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not a JSON array ({e}):\n{}", out.stdout));
    assert_eq!(names(&list), order);
    for svc in &list {
        for key in [
            "name",
            "state",
            "reason",
            "pid",
            "since",
            "uptime",
            "restarts",
            "last_exit",
            "required",
            "enabled",
            "instance",
        ] {
            assert!(svc.get(key).is_some(), "no {key} in {svc}");
        }
    }
    for ((svc, (name, state)), _) in list.iter().zip(expected_states).zip(order) {
        assert_eq!(svc["state"], state, "{name}: {svc}");
    }
    assert_eq!(list[2]["last_exit"]["code"], 3, "{}", list[2]);
    assert!(list[2]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(list[3]["enabled"], false, "{}", list[3]);
    assert_eq!(list[3]["reason"], "disabled", "{}", list[3]);
    assert!(list[0]["pid"].as_i64().is_some() && list[0]["uptime"].as_f64().is_some());
    assert!(list[4]["pid"].is_null(), "halted has no pid: {}", list[4]);

    // Names select services.
    let out = d.ok(&["status", "--json", "halted", "db"]);
    let list: Vec<Value> = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        names(&list).into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["db".to_string(), "halted".to_string()])
    );
}

// ---------------------------------------------------------------------------------------------
// start, stop, restart

fn restart_gives_a_new_pid_and_counts(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n",
            longrun("web")
        ),
    );
    let old = d.wait_running("web");
    let restarts = d.service("web")["restarts"].as_u64().expect("restarts");
    d.ok(&["restart", "web"]);
    let new = d.wait_running("web");
    assert_ne!(old, new, "restart must start a new process");
    assert_eq!(
        d.dir.pids("web"),
        [old, new],
        "web ran exactly twice, with the pids pidone reported"
    );
    assert_eq!(
        d.dir.read("web.stops").lines().count(),
        1,
        "the old one got TERM"
    );
    let svc = d.service("web");
    assert_eq!(svc["restarts"].as_u64(), Some(restarts + 1), "{svc}");
    // The table says the same.
    let out = d.ok(&["status", "web"]);
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .expect("a row")
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[2], row[4]),
        (
            new.to_string().as_str(),
            (restarts + 1).to_string().as_str()
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn restart_returns_once_the_dependents_it_took_down_are_back() {
    // web is ready a second after it starts: a client that returned once db is up would find
    // web still starting.
    let d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "db"
command = {db}

[[services]]
name = "web"
depends_on = "db"
ready = {{ after = "1s" }}
command = {web}
"#,
            db = longrun("db"),
            web = longrun("web"),
        ),
    );
    let mut d = d;
    d.wait_running("web");
    let old = d.service("web")["pid"].clone();
    d.ok(&["restart", "db"]);
    let web = d.service("web");
    assert_eq!(web["state"], "running", "{web}");
    assert_ne!(web["pid"], old, "web was restarted too: {web}");
}

#[test]
fn stop_keeps_it_stopped_and_takes_running_dependents_down_first() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "db"
restart = "always"
restart_delay = "100ms"
command = {db}

[[services]]
name = "web"
depends_on = ["db"]
restart = "always"
restart_delay = "100ms"
command = {web}

[[services]]
name = "other"
command = {other}
{clock}"#,
            db = longrun("db"),
            web = longrun("web"),
            other = longrun("other"),
            clock = crasher("clock"),
        ),
    );
    d.wait_running("web");
    let other = d.wait_running("other");
    let out = d.ok(&["stop", "db"]);
    assert_eq!(d.state("db"), "stopped", "stop waits until done: {out:?}");
    d.wait_state("web", "stopped");
    let (web_stop, db_stop) = (d.dir.stamps("web.stops"), d.dir.stamps("db.stops"));
    assert!(
        web_stop.len() == 1 && db_stop.len() == 1 && web_stop[0] < db_stop[0],
        "web (dependent) must stop before db: web {web_stop:?}, db {db_stop:?}"
    );
    // A stop the user asked for is not undone by the restart policy: let the clock tick.
    d.wait_crashes("clock", 5);
    for name in ["db", "web"] {
        assert_eq!(d.state(name), "stopped", "{name} must stay stopped");
        assert!(d.pid(name).is_none(), "{name} has no process");
        assert_eq!(d.dir.pids(name).len(), 1, "{name} was started again");
    }
    assert_eq!(
        d.pid("other"),
        Some(other),
        "an unrelated service is left alone"
    );
    // Services the user stopped are down: not ready (issue #11), but pidone is live.
    let out = d.client(&["check"]);
    assert!(
        out.code == 1 && out.stdout.contains("db is stopped") && out.stdout.contains("web"),
        "stopped-by-request services are not ready: {out:?}"
    );
    d.ok(&["check", "--live"]);
}

#[test]
fn start_brings_its_dependencies_up_first() {
    // Nothing of the chain init -> db -> web is enabled. init is a oneshot: up only once it
    // exited, so whatever starts after it is strictly later than its stamp.
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            r#"
[[services]]
name = "web"
enabled = false
depends_on = ["db"]
command = {web}

[[services]]
name = "db"
enabled = false
depends_on = ["init"]
command = {db}

[[services]]
name = "init"
enabled = false
type = "oneshot"
command = ["/bin/sh", "-c", "date +%s%N >> @D/init.runs"]
{clock}"#,
            web = longrun("web"),
            db = longrun("db"),
            clock = crasher("clock"),
        ),
    );
    d.wait_crashes("clock", 1);
    for name in ["init", "db", "web"] {
        assert_eq!(d.state(name), "stopped", "{name} is disabled");
    }
    d.ok(&["start", "web"]);
    assert_eq!(d.state("web"), "running", "start waits until up");
    assert_eq!(d.state("db"), "running", "starting web brings db up");
    let db = d.wait_running("db");
    let web = d.wait_running("web");
    let runs = d.dir.stamps("init.runs");
    assert_eq!(runs.len(), 1, "starting web runs init: {runs:?}");
    let ups = d.dir.stamps("db.ups");
    assert!(
        runs[0] < ups[0],
        "db started only after init was done: init {runs:?}, db {ups:?}"
    );
    // db before web is not observable from outside: a longrun is up as soon as it is spawned,
    // and `since` is recomputed from the wall clock at each answer.

    // Stopping the dependent alone leaves its dependencies up; --no-wait still starts it.
    d.ok(&["stop", "web"]);
    assert_eq!(
        d.pid("db"),
        Some(db),
        "stopping a dependent leaves db alone"
    );
    d.ok(&["start", "--no-wait", "web"]);
    let again = d.wait_running("web");
    assert_ne!(again, web);
    assert_eq!(d.pid("db"), Some(db), "db, up, is not started again");
    assert_eq!(
        d.dir.stamps("init.runs").len(),
        1,
        "init, done, is not run again"
    );
}

fn signal_reaches_the_service(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n\n[[services]]\nname = \"idle\"\n\
             enabled = false\ncommand = [\"/bin/sleep\", \"1000\"]\n",
            longrun("web")
        ),
    );
    let pid = d.wait_running("web");
    d.ok(&["signal", "web", "USR1"]);
    let dir = &d.dir;
    d.run
        .wait_for("web to see USR1", |_| dir.stamps("web.usr1").len() == 1);
    d.ok(&["signal", "web", "SIGUSR1"]);
    let dir = &d.dir;
    d.run.wait_for("web to see the second USR1", |_| {
        dir.stamps("web.usr1").len() == 2
    });
    assert_eq!(
        d.pid("web"),
        Some(pid),
        "a trapped signal does not restart web"
    );
    assert!(
        d.dir.read("web.stops").is_empty(),
        "USR1 must not arrive as TERM"
    );
    // A service that is not running cannot be signalled.
    let out = d.client(&["signal", "idle", "HUP"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("idle"), "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// shutdown

fn shutdown_makes_pidone_exit_0(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n\n[[services]]\nname = \"db\"\n\
             command = {}\n",
            longrun("web"),
            longrun("db")
        ),
    );
    d.wait_running("web");
    d.wait_running("db");
    d.ok(&["shutdown"]);
    let outcome = d.run.wait();
    outcome.assert_code(0, "pidone shutdown");
    for name in ["web", "db"] {
        assert_eq!(
            d.dir.stamps(&format!("{name}.stops")).len(),
            1,
            "{name} was stopped with TERM"
        );
    }
    // And then there is nobody to talk to: the socket went with pidone.
    let out = d.client(&["status"]);
    assert_eq!(out.code, 4, "{out:?}");
    wait_until(DEADLINE, "nothing left", || d.run.processes().is_empty());
}

// ---------------------------------------------------------------------------------------------
// reload

/// `pidone reload` starts new services, stops removed ones, restarts exactly the changed one and
/// leaves the unchanged one alone (same pid); an invalid configuration is refused with its
/// errors while the running one goes on untouched. SIGHUP does the same as `reload`.
#[test]
fn reload_reconciles_exactly_and_refuses_a_bad_config() {
    let first = format!(
        "[[services]]\nname = \"keep\"\ncommand = {}\n\n[[services]]\nname = \"change\"\ncommand = {}\n\n\
         [[services]]\nname = \"drop\"\ncommand = {}\n",
        longrun("keep"),
        longrun("change"),
        longrun("drop")
    );
    let mut d = Daemon::start(Mode::Child, &first);
    let keep = d.wait_running("keep");
    let change = d.wait_running("change");
    let drop_pid = d.wait_running("drop");

    // `change` gets an extra environment variable: a changed service; `new` is added.
    let second = format!(
        "[[services]]\nname = \"new\"\ncommand = {}\n\n[[services]]\nname = \"keep\"\ncommand = {}\n\n\
         [[services]]\nname = \"change\"\ncommand = {}\nenv = {{ FLAVOUR = \"two\" }}\n",
        longrun("new"),
        longrun("keep"),
        longrun("change")
    );
    d.dir.write("pidone.toml", &second);
    let out = d.ok(&["reload"]);
    assert!(out.stdout.contains("added      new"), "{out:?}");
    assert!(out.stdout.contains("removed    drop"), "{out:?}");
    assert!(out.stdout.contains("restarted  change"), "{out:?}");
    assert!(out.stdout.contains("unchanged  keep"), "{out:?}");
    d.wait_running("new");
    let dir = &d.dir;
    d.run
        .wait_for("drop to be stopped", |_| !dir.read("drop.stops").is_empty());
    let socket = d.socket.clone();
    d.run.wait_for("drop to leave the list", |_| {
        service_of(&socket, "drop").is_none()
    });
    let dir = &d.dir;
    d.run
        .wait_for("change to run again", |_| dir.pids("change").len() == 2);
    let new_change = d.wait_running("change");
    assert_ne!(new_change, change, "change was restarted");
    assert_eq!(d.pid("keep"), Some(keep), "keep was left alone");
    assert!(d.dir.read("keep.stops").is_empty(), "keep never got TERM");
    assert!(!d.dir.pids("drop").is_empty() && drop_pid > 0);
    assert_eq!(
        names(&d.services()),
        ["new", "keep", "change"],
        "the new start order"
    );

    // A broken file: refused with its errors, nothing changes.
    d.dir.write(
        "pidone.toml",
        &format!("{second}\n[[services]]\nname = \"bad\"\ncomand = \"/bin/true\"\n"),
    );
    let out = d.client(&["reload"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("refused"), "{out:?}");
    assert!(
        out.stderr.contains("comand"),
        "every error is shown: {out:?}"
    );
    assert_eq!(d.pid("keep"), Some(keep));
    assert_eq!(d.pid("change"), Some(new_change));
    assert_eq!(names(&d.services()), ["new", "keep", "change"]);

    // SIGHUP reloads too: a service added to the file starts, the others stay as they are.
    d.dir.write(
        "pidone.toml",
        &format!(
            "{second}
[[services]]
name = \"late\"
command = {}
",
            longrun("late")
        ),
    );
    let pidone_pid = d.run.pid();
    let sent = Command::new("kill")
        .args(["-HUP", &pidone_pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    d.wait_running("late");
    assert_eq!(d.pid("keep"), Some(keep));
    assert_eq!(d.pid("change"), Some(new_change));
}
