//! Black-box tests of s6-overlay images under pidone: the layouts of s6-overlay's README (an
//! s6-rc.d longrun depending on a oneshot, a services.d service with `finish` and `log/run`,
//! cont-init.d and cont-finish.d, CMD and its exit code), `finish` exiting 125, the container
//! environment, S6_BEHAVIOUR_IF_STAGE2_FAILS=2, and every kind of bad input refused by path.
//! Each test builds an image root in its own directory and points `PIDONE_S6_ROOT` at it, so
//! the machine's `/etc` is never read. pidone runs as a true PID 1 and as a plain child.

#![cfg(feature = "s6")]

#[macro_use]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::*;

in_both_modes!(
    the_readme_examples_run_unchanged,
    finish_exiting_125_keeps_the_service_down,
    a_failing_cont_init_stops_the_container_with_stage2_behaviour_2,
    keep_env_gives_services_pidones_environment,
    bad_layouts_are_refused_by_path_before_anything_starts,
    cmd_wait_maxtime_bounds_the_wait_for_services,
    cmd_wait_maxtime_with_stage2_behaviour_2_stops_the_container_with_2,
    a_finish_script_sets_the_exit_code_and_halts_the_container,
    the_exit_code_file_decides_the_code_of_a_stopped_container,
);

/// Writes `text` at `rel` under the test's image root `dir/root`, creating directories; `@D`
/// becomes the test directory, `@R` the root. Executable when `exec`.
fn put(dir: &Dir, rel: &str, text: &str, exec: bool) {
    let path = dir.join("root").join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let text = text
        .replace("@R", &format!("{}/root", dir.s()))
        .replace("@D", &dir.s());
    fs::write(&path, text).expect("write");
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// pidone with the image root of `dir`, `args` after it, `env` added.
fn start(mode: Mode, dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Pidone {
    let root = format!("{}/root", dir.s());
    let mut all = vec![("PIDONE_S6_ROOT", root.as_str())];
    all.extend_from_slice(env);
    Pidone::start(mode, dir, args, &all)
}

/// The README's pieces: a v3 longrun `myapp` (ready through its notification-fd) depending on
/// the oneshot `init-db` (whose `up` is one command line) and on s6-overlay's `base`, a v2 `web` with `finish` and a `log/run`, one
/// cont-init.d script that adds a variable to the container environment, one cont-finish.d
/// script.
fn readme_layout(dir: &Dir) {
    let rc = "etc/s6-overlay/s6-rc.d";
    put(dir, &format!("{rc}/user/type"), "bundle\n", false);
    put(dir, &format!("{rc}/user/contents.d/myapp"), "", false);
    put(dir, &format!("{rc}/myapp/type"), "longrun\n", false);
    put(
        dir,
        &format!("{rc}/myapp/dependencies.d/init-db"),
        "",
        false,
    );
    put(dir, &format!("{rc}/myapp/dependencies.d/base"), "", false);
    put(
        dir,
        &format!("{rc}/myapp/run"),
        "#!/bin/sh\n@D/stamp myapp.up\necho \"myapp says $GREETING\"\necho >&3\nexec sleep 100 3>&-\n",
        true,
    );
    put(dir, &format!("{rc}/myapp/notification-fd"), "3\n", false);
    put(dir, &format!("{rc}/init-db/type"), "oneshot\n", false);
    put(
        dir,
        &format!("{rc}/init-db/up"),
        "# the usual one-liner\n@R/scripts/init-db \"first arg\" second\n",
        false,
    );
    put(
        dir,
        "scripts/init-db",
        "#!/bin/sh\n@D/stamp initdb\necho \"$1|$2\" > @D/initdb.args\n",
        true,
    );
    put(
        dir,
        "etc/services.d/web/run",
        "#!/bin/sh\necho \"web says $GREETING\"\nexec sleep 100\n",
        true,
    );
    put(
        dir,
        "etc/services.d/web/finish",
        "#!/bin/sh\necho \"$1 $2\" > @D/finish.args\n",
        true,
    );
    put(
        dir,
        "etc/services.d/web/log/run",
        "#!/bin/sh\nwhile read line; do echo \"logged: $line\"; done\n",
        true,
    );
    put(
        dir,
        "etc/cont-init.d/10-greet",
        "#!/bin/sh\n@D/stamp init\nprintf hello > @R/run/s6/container_environment/GREETING\n",
        true,
    );
    put(
        dir,
        "etc/cont-finish.d/10-bye",
        "#!/bin/sh\necho \"finish said: $(cat @D/finish.args)\" > @D/bye\n",
        true,
    );
}

fn the_readme_examples_run_unchanged(mode: Mode) {
    let dir = Dir::new();
    readme_layout(&dir);
    // CMD: started once every service is up; its exit code is the container's.
    let cmd = format!("test -e {}/myapp.up && exit 7", dir.s());
    let mut run = start(mode, &dir, &["--", "/bin/sh", "-c", &cmd], &[]);
    let out = run.wait();
    out.assert_code(7, "CMD's exit code");
    assert_before(&dir, "init", "initdb");
    assert_before(&dir, "initdb", "myapp.up");
    assert_eq!(dir.read("initdb.args"), "first arg|second\n");
    let lines = prefixed(&out.stdout);
    let said = |name: &str, text: &str| lines.iter().any(|(n, l)| n == name && l == text);
    assert!(said("myapp", "myapp says hello"), "{}", out.stdout);
    // web's stdout went to its logger (the variable from cont-init.d on the way).
    assert!(said("web-log", "logged: web says hello"), "{}", out.stdout);
    // web was stopped by SIGTERM: finish got 256 and 15, before cont-finish.d ran.
    assert_eq!(dir.read("finish.args"), "256 15\n");
    assert_eq!(dir.read("bye"), "finish said: 256 15\n");
}

fn finish_exiting_125_keeps_the_service_down(mode: Mode) {
    let dir = Dir::new();
    put(
        &dir,
        "etc/services.d/crash/run",
        "#!/bin/sh\necho run >> @D/runs\nexit 3\n",
        true,
    );
    put(
        &dir,
        "etc/services.d/crash/finish",
        "#!/bin/sh\necho \"$1 $2\" >> @D/finish.log\nexit 125\n",
        true,
    );
    // Nothing left to run once `crash` stays down: pidone ends on its own.
    let mut run = start(mode, &dir, &[], &[]);
    let out = run.wait();
    assert_eq!(dir.read("runs"), "run\n", "{}", out.stderr);
    assert_eq!(dir.read("finish.log"), "3 0\n");
    assert!(out.stderr.contains("finish exited 125"), "{}", out.stderr);
}

fn a_failing_cont_init_stops_the_container_with_stage2_behaviour_2(mode: Mode) {
    let dir = Dir::new();
    put(&dir, "etc/cont-init.d/10-fail", "#!/bin/sh\nexit 4\n", true);
    put(
        &dir,
        "etc/services.d/app/run",
        "#!/bin/sh\n@D/stamp app\nexec sleep 100\n",
        true,
    );
    let env = [("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2")];
    let mut run = start(mode, &dir, &["--", "/bin/sleep", "100"], &env);
    let out = run.wait();
    out.assert_code(4, "the failed cont-init script's code");
    assert!(!dir.exists("app"), "app started after a failed cont-init");
}

fn keep_env_gives_services_pidones_environment(mode: Mode) {
    let dir = Dir::new();
    put(
        &dir,
        "etc/cont-init.d/10-set",
        "#!/bin/sh\nprintf changed > @R/run/s6/container_environment/COLOR\n",
        true,
    );
    put(
        &dir,
        "etc/services.d/show/run",
        "#!/bin/sh\necho \"$COLOR\" > @D/color\n",
        true,
    );
    put(&dir, "etc/services.d/show/type", "oneshot\n", false);
    let env = [("COLOR", "original"), ("S6_KEEP_ENV", "1")];
    start(mode, &dir, &[], &env).wait();
    assert_eq!(dir.read("color"), "original\n");
    // Without S6_KEEP_ENV the cont-init script's value wins.
    start(mode, &dir, &[], &[("COLOR", "original")]).wait();
    assert_eq!(dir.read("color"), "changed\n");
}

fn bad_layouts_are_refused_by_path_before_anything_starts(mode: Mode) {
    let rc = "etc/s6-overlay/s6-rc.d";
    let run = "#!/bin/sh\n@D/stamp started\nexec sleep 100\n";
    type Case = (&'static str, fn(&Dir), &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            "run not executable",
            |d| put(d, "etc/services.d/a/run", "#!/bin/sh\n", false),
            "etc/services.d/a/run",
            "not an executable file",
        ),
        (
            "unknown type",
            |d| put(d, "etc/s6-overlay/s6-rc.d/a/type", "daemon\n", false),
            "s6-rc.d/a/type",
            "unknown type \"daemon\"",
        ),
        (
            "missing dependency",
            |d| {
                put(
                    d,
                    "etc/services.d/a/dependencies",
                    "# needs\nghost\n",
                    false,
                )
            },
            "etc/services.d/a/dependencies",
            "no service named \"ghost\"",
        ),
        (
            "cycle",
            |d| {
                put(d, "etc/services.d/a/dependencies", "b\n", false);
                put(d, "etc/services.d/b/run", "#!/bin/sh\n", true);
                put(d, "etc/services.d/b/dependencies.d/a", "", false);
            },
            "etc/services.d/a",
            "dependency cycle: a -> b -> a",
        ),
        (
            "notification-fd not a number",
            |d| put(d, "etc/services.d/a/notification-fd", "three\n", false),
            "etc/services.d/a/notification-fd",
            "\"three\" is not a number",
        ),
        (
            "execline without execlineb",
            |d| {
                put(d, "etc/s6-overlay/s6-rc.d/o/type", "oneshot\n", false);
                put(
                    d,
                    "etc/s6-overlay/s6-rc.d/o/up",
                    "foreground { true }\ntrue\n",
                    false,
                );
            },
            "s6-rc.d/o/up",
            "execlineb is not in this image",
        ),
        (
            "execline shebang without execlineb",
            |d| {
                let text = "#!/command/execlineb -P\nnginx -g \"daemon off;\"\n";
                put(d, "etc/services.d/a/run", text, true);
            },
            "etc/services.d/a/run",
            "#!/command/execlineb: execline is not in this image",
        ),
        (
            "defined twice",
            |d| {
                put(d, "etc/s6-overlay/s6-rc.d/a/type", "longrun\n", false);
                put(d, "etc/s6-overlay/s6-rc.d/a/run", "#!/bin/sh\n", true);
            },
            "etc/services.d/a: service \"a\" is also defined at",
            "s6-rc.d/a",
        ),
    ];
    for (what, make, path, message) in cases {
        let dir = Dir::new();
        put(&dir, "etc/services.d/a/run", run, true);
        put(&dir, &format!("{rc}/user/type"), "bundle\n", false);
        make(&dir);
        let out = start(mode, &dir, &["--", "/bin/sleep", "100"], &[]).wait();
        out.assert_code(2, what);
        let err = &out.stderr;
        assert!(
            err.contains(path) && err.contains(message),
            "{what}:\n{err}"
        );
        assert!(err.contains("nothing was started"), "{what}:\n{err}");
        assert!(!dir.exists("started"), "{what}: a service started");
    }
}

/// A services.d service that never says it is ready (its notification-fd stays silent).
fn never_ready(dir: &Dir) {
    put(
        dir,
        "etc/services.d/slow/run",
        "#!/bin/sh\nexec sleep 100\n",
        true,
    );
    put(dir, "etc/services.d/slow/notification-fd", "3\n", false);
}

/// The wait runs out: CMD starts anyway (its code goes into the exit-code file, where a
/// cont-finish.d script reads it, and is the container's).
fn cmd_wait_maxtime_bounds_the_wait_for_services(mode: Mode) {
    let dir = Dir::new();
    never_ready(&dir);
    put(
        &dir,
        "etc/cont-finish.d/10-read",
        "#!/bin/sh\ncat @R/run/s6-linux-init-container-results/exitcode > @D/final\n",
        true,
    );
    let env = [("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "300")];
    let cmd = ["--", "/bin/sh", "-c", "exit 5"];
    let out = start(mode, &dir, &cmd, &env).wait();
    out.assert_code(5, "CMD started after the wait ran out");
    assert!(
        out.stderr
            .contains("S6_CMD_WAIT_FOR_SERVICES_MAXTIME ran out, not up yet: slow"),
        "{}",
        out.stderr
    );
    assert_eq!(dir.read("final"), "5\n");
}

/// With S6_BEHAVIOUR_IF_STAGE2_FAILS=2 the container stops instead, with s6-rc's code for a
/// timeout, and CMD never runs.
fn cmd_wait_maxtime_with_stage2_behaviour_2_stops_the_container_with_2(mode: Mode) {
    let dir = Dir::new();
    never_ready(&dir);
    let env = [
        ("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "300"),
        ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2"),
    ];
    let cmd = format!("touch {}/cmd", dir.s());
    let out = start(mode, &dir, &["--", "/bin/sh", "-c", &cmd], &env).wait();
    out.assert_code(2, "the wait ran out");
    assert!(!dir.exists("cmd"), "CMD ran: {}", out.stderr);
    assert!(
        out.stderr.contains("stopping the container"),
        "{}",
        out.stderr
    );
}

/// s6-overlay's README: a `finish` writes the container's exit code, then calls v3's `halt`,
/// which pidone made at boot (no `--install-s6-commands`: `/run` is often a tmpfs).
fn a_finish_script_sets_the_exit_code_and_halts_the_container(mode: Mode) {
    let dir = Dir::new();
    put(
        &dir,
        "etc/services.d/myapp/run",
        "#!/bin/sh\nexit 3\n",
        true,
    );
    put(
        &dir,
        "etc/services.d/myapp/finish",
        "#!/bin/sh\necho \"$1\" > /run/s6-linux-init-container-results/exitcode\n\
         exec /run/s6/basedir/bin/halt\n"
            .replace("/run", "@R/run")
            .as_str(),
        true,
    );
    let out = start(mode, &dir, &[], &[]).wait();
    out.assert_code(3, "the code the finish script wrote");
    let halt = dir.join("root/run/s6/basedir/bin/halt");
    assert_eq!(fs::read_link(&halt).ok(), Some(pidone().into()), "{halt:?}");
}

/// Stopped from outside (SIGTERM, as `docker stop`): the code a `finish` wrote is the
/// container's. An exit-code file left by an earlier run is emptied at boot.
fn the_exit_code_file_decides_the_code_of_a_stopped_container(mode: Mode) {
    let dir = Dir::new();
    put(
        &dir,
        "run/s6-linux-init-container-results/exitcode",
        "9\n",
        false,
    );
    put(
        &dir,
        "etc/services.d/web/run",
        "#!/bin/sh\ncat @R/run/s6-linux-init-container-results/exitcode > @D/seen\n\
         @D/stamp web\nexec sleep 100\n",
        true,
    );
    put(
        &dir,
        "etc/services.d/web/finish",
        "#!/bin/sh\nif test \"$1\" -eq 256; then e=$((128 + $2)); else e=$1; fi\n\
         echo $e > @R/run/s6-linux-init-container-results/exitcode\n",
        true,
    );
    let mut run = start(mode, &dir, &[], &[]);
    run.wait_for("web to start", |_| dir.exists("web"));
    run.signal("TERM");
    let out = run.wait();
    out.assert_code(143, "web's finish wrote 128 + SIGTERM");
    assert_eq!(dir.read("seen"), "", "the stale code was not emptied");
}

#[test]
fn unknown_files_are_ignored_with_one_warning_each() {
    let dir = Dir::new();
    put(&dir, "etc/services.d/a/run", "#!/bin/sh\n", true);
    put(&dir, "etc/services.d/a/README", "notes\n", false);
    let root = format!("{}/root", dir.s());
    let out = run_plain_env(&["validate"], &[("PIDONE_S6_ROOT", &root)]);
    out.assert_code(0, "an unknown file is no error");
    let warning = "etc/services.d/a/README: not a file pidone reads: ignored";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
}

/// `validate` names where each service was read; `validate --toml` prints TOML that loads as
/// the same services; `--config` may name the s6-rc.d directory itself.
#[test]
fn validate_shows_origins_and_prints_equivalent_toml() {
    let dir = Dir::new();
    readme_layout(&dir);
    let root = format!("{}/root", dir.s());
    let env = [("PIDONE_S6_ROOT", root.as_str())];
    let out = run_plain_env(&["validate"], &env);
    out.assert_code(0, "validate");
    let myapp = out
        .stdout
        .lines()
        .find(|l| l.contains(" myapp "))
        .unwrap_or("");
    assert!(myapp.contains("depends on: init-db"), "{}", out.stdout);
    assert!(
        myapp.ends_with(&format!("from {root}/etc/s6-overlay/s6-rc.d/myapp")),
        "{myapp}"
    );
    let toml = run_plain_env(&["validate", "--toml"], &env);
    toml.assert_code(0, "validate --toml");
    let file = dir.write("equivalent.toml", &toml.stdout);
    let again = run_plain_env(&["validate", "--config", &file], &[]);
    again.assert_code(0, "the printed TOML loads");
    assert_eq!(
        again.stdout.lines().count(),
        out.stdout.lines().count(),
        "{}",
        again.stdout
    );
    let rc = format!("{root}/etc/s6-overlay/s6-rc.d");
    let only_rc = run_plain_env(&["validate", "--config", &rc], &env);
    only_rc.assert_code(0, "--config s6-rc.d");
    assert!(only_rc.stdout.contains(" myapp "), "{}", only_rc.stdout);
    assert!(!only_rc.stdout.contains(" web "), "{}", only_rc.stdout);
}
