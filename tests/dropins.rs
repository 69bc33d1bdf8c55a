//! Black-box tests of `pidone add` and `pidone remove` (issue #18): a service registered at run
//! time is written to the drop-in directory (`[api] dropin_dir`), runs, survives a reload and a
//! restart of pidone, and `remove` stops it and deletes its file; a taken name, an invalid
//! option, a service of another file, no drop-in directory and a read-only token are refused and
//! change nothing. Needs root and util-linux (`unshare`).

#[macro_use]
mod support;

use std::process::Command;

use support::*;

in_both_modes!(
    add_runs_a_service_and_remove_stops_it_and_deletes_its_file,
    refusals_change_nothing_and_say_why,
    a_reload_and_a_restart_of_pidone_keep_what_was_added,
    remotely_the_full_token_may_add_and_remove_and_the_read_token_not,
);
as_pid1!(without_a_dropin_dir_add_says_so);

/// A config whose drop-in directory is `DIR/drop.d` (with more `[api]` keys `api`), with a
/// longrun `db`.
fn config(api: &str) -> String {
    format!(
        "[api]\ndropin_dir = \"drop.d\"\n{api}\n[[services]]\nname = \"db\"\ncommand = {}\n",
        longrun("db")
    )
}

/// An environment value no quoting can take lightly.
const AWKWARD: &str = "say \"hi\" \\ back\\\\slash\nsecond line\ttab é ✓ 🦀 $HOME ${HOME} $$";

/// `add web`'s arguments: a longrun recording its pid in `web.pids` and `$A` in `web.env`, then
/// sleeping as `sleep 1001` (its own command line among the run's processes).
fn add_web(dir: &Dir) -> Vec<String> {
    let script = format!(
        "printf %s \"$A\" > {d}/web.env; echo $$ >> {d}/web.pids; exec sleep 1001",
        d = dir.s()
    );
    let args = [
        "add",
        "web",
        "--env",
        &format!("A={AWKWARD}"),
        "--depends-on",
        "db",
    ];
    let command = ["--", "/bin/sh", "-c", &script];
    args.iter().chain(&command).map(|s| s.to_string()).collect()
}

/// The files of the drop-in directory, sorted (hidden ones too).
fn dropins(dir: &Dir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("drop.d"))
        .map(|entries| {
            (entries.flatten())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The names of the services listed, in order.
fn listed(d: &Daemon) -> Vec<String> {
    (d.services().iter())
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn add_runs_a_service_and_remove_stops_it_and_deletes_its_file(mode: Mode) {
    let mut d = Daemon::start(mode, &config(""));
    d.wait_running("db");
    let args = add_web(&d.dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = d.ok(&args);
    let file = d.dir.join("drop.d/web.toml");
    assert_eq!(out.stdout.trim(), format!("added web ({})", file.display()));
    // `add` waited until web was up: its pid is the one it recorded.
    assert_eq!(d.state("web"), "running");
    let pid = d.wait_running("web");
    assert_eq!(d.pid("web"), Some(pid));
    assert_eq!(d.dir.read("web.env"), AWKWARD, "the value, unchanged");
    assert_eq!(dropins(&d.dir), ["web.toml"]);
    assert_eq!(d.processes_running("sleep 1001").len(), 1);
    let status = d.ok(&["status"]).stdout;
    assert!(
        status.contains("web") && status.contains("running"),
        "{status}"
    );

    let out = d.ok(&["remove", "web"]);
    let expected = format!("removed web ({} deleted)", file.display());
    assert_eq!(out.stdout.trim(), expected);
    // `remove` waited until web was down and forgotten.
    assert_eq!(listed(&d), ["db"]);
    assert!(d.processes_running("sleep 1001").is_empty(), "web stopped");
    assert_eq!(dropins(&d.dir), Vec::<String>::new(), "its file deleted");
    assert_eq!(d.state("db"), "running");
    d.terminate();
}

fn refusals_change_nothing_and_say_why(mode: Mode) {
    let mut d = Daemon::start(mode, &config(""));
    let db = d.wait_running("db");
    let main = d.dir.join("pidone.toml");
    d.ok(&["add", "web", "--no-wait", "--", "/bin/sleep", "1001"]);
    let before = (listed(&d), dropins(&d.dir));
    assert_eq!(before.1, ["web.toml"]);
    let refused = |args: &[&str]| {
        let (code, text) = d.client(args).code_text();
        assert_eq!(code, 1, "{args:?}: {text}");
        assert_eq!(
            (listed(&d), dropins(&d.dir)),
            before,
            "{args:?} changed something"
        );
        text
    };

    // A name taken, in the main file or by another drop-in.
    let text = refused(&["add", "db", "--", "/bin/true"]);
    let at = format!("a service db already exists ({}:", main.display());
    assert!(text.contains(&at), "{text}");
    let text = refused(&["add", "web", "--", "/bin/true"]);
    assert!(text.contains("a service web already exists"), "{text}");
    // Options that make the configuration invalid: the loader's message, at the file it would be.
    let text = refused(&["add", "job", "--restart", "sometimes", "--", "/bin/true"]);
    let job = d.dir.join("drop.d/job.toml");
    assert!(
        text.contains("job not added: the configuration would be invalid"),
        "{text}"
    );
    let at = format!("{}:5: service \"job\": key \"restart\": ", job.display());
    assert!(text.contains(&at), "{text}");
    let text = refused(&["add", "job", "--depends-on", "nosuch", "--", "/bin/true"]);
    assert!(text.contains("unknown service \"nosuch\""), "{text}");
    let text = refused(&["add", "job", "--", "/nonexistent/program"]);
    assert!(text.contains("/nonexistent/program"), "{text}");
    let text = refused(&["add", "job", "--user", "no-such-user", "--", "/bin/true"]);
    assert!(text.contains("no-such-user"), "{text}");
    // A service of another file, and one that is not there.
    let text = refused(&["remove", "db"]);
    let at = format!("db is defined in {}:", main.display());
    assert!(
        text.contains(&at) && text.contains("not in the drop-in directory"),
        "{text}"
    );
    let text = refused(&["remove", "nosuch"]);
    assert!(text.contains("unknown service \"nosuch\""), "{text}");
    // Removing what another service depends on.
    d.ok(&[
        "add",
        "needs-web",
        "--depends-on",
        "web",
        "--",
        "/bin/sleep",
        "1002",
    ]);
    let before_dependent = (listed(&d), dropins(&d.dir));
    let (code, text) = d.client(&["remove", "web"]).code_text();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("web not removed") && text.contains("needs-web"),
        "{text}"
    );
    assert_eq!((listed(&d), dropins(&d.dir)), before_dependent);
    assert_eq!(d.pid("db"), Some(db), "db was never touched");
    d.terminate();
}

fn a_reload_and_a_restart_of_pidone_keep_what_was_added(mode: Mode) {
    let mut d = Daemon::start(mode, &config(""));
    d.wait_running("db");
    let args = add_web(&d.dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
    let pid = d.wait_running("web");
    let out = d.ok(&["reload"]);
    assert!(out.stdout.contains("unchanged  db, web"), "{out:?}");
    assert_eq!(d.pid("web"), Some(pid), "left alone by the reload");
    let validate = Command::new(pidone())
        .args(["validate", "--config"])
        .arg(d.dir.join("pidone.toml"))
        .output()
        .expect("run validate");
    let text = String::from_utf8_lossy(&validate.stdout);
    assert!(validate.status.success() && text.contains("web"), "{text}");

    d.shutdown().assert_code(0, "the first run");
    let Daemon { dir, .. } = d;
    // What the first run's web wrote (in a PID namespace, the second's pid may be the same).
    std::fs::remove_file(dir.join("web.env")).expect("web.env");
    std::fs::remove_file(dir.join("web.pids")).expect("web.pids");
    let mut d = Daemon::start_in(mode, dir, &config(""));
    d.wait_running("web");
    assert_eq!(d.dir.read("web.env"), AWKWARD);
    d.ok(&["remove", "web"]);
    d.terminate();
}

/// `pidone --url URL --token-file TOKEN ARGS...`, to completion.
fn remote(url: &str, token: &str, args: &[&str]) -> Out {
    let out = Command::new(pidone())
        .args(["--url", url, "--token-file", token])
        .args(args)
        .env_remove("PIDONE_SOCKET")
        .output()
        .expect("run the client");
    Out::from(out)
}

fn remotely_the_full_token_may_add_and_remove_and_the_read_token_not(mode: Mode) {
    let port = free_port();
    let dir = Dir::new();
    let full = dir.write("token", "full-s3cret\n");
    let read = dir.write("read-token", "read-s3cret\n");
    let api = format!(
        "listen = [\"127.0.0.1:{port}\"]\ntoken_file = \"token\"\nread_token_file = \"read-token\"\n"
    );
    let mut d = Daemon::start_in(mode, dir, &config(&api));
    d.wait_running("db");
    let url = format!("http://127.0.0.1:{port}");
    let add = ["add", "web", "--", "/bin/sleep", "1001"];
    let (code, text) = remote(&url, &read, &add).code_text();
    assert_eq!(code, 1, "the read token may not add: {text}");
    assert!(text.contains("read token"), "{text}");
    assert_eq!(dropins(&d.dir), Vec::<String>::new());
    assert_eq!(listed(&d), ["db"]);

    let out = remote(&url, &full, &add);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(d.state("web"), "running");
    assert_eq!(dropins(&d.dir), ["web.toml"]);
    let (code, text) = remote(&url, &read, &["remove", "web"]).code_text();
    assert_eq!(code, 1, "the read token may not remove: {text}");
    assert_eq!(d.state("web"), "running");
    let out = remote(&url, &full, &["remove", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(listed(&d), ["db"]);
    assert_eq!(dropins(&d.dir), Vec::<String>::new());
    d.terminate();
}

fn without_a_dropin_dir_add_says_so(mode: Mode) {
    let config = format!("[[services]]\nname = \"db\"\ncommand = {}\n", longrun("db"));
    let mut d = Daemon::start(mode, &config);
    d.wait_running("db");
    let (code, text) = d
        .client(&["add", "web", "--", "/bin/sleep", "1001"])
        .code_text();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no drop-in directory: set [api] dropin_dir"),
        "{text}"
    );
    let (code, text) = d.client(&["remove", "db"]).code_text();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no drop-in directory ([api] dropin_dir)"),
        "{text}"
    );
    assert_eq!(listed(&d), ["db"]);
    d.terminate();
}
