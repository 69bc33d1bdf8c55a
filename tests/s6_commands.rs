//! Black-box tests of s6-overlay's helper commands served by pidone under their names
//! (docs/s6-overlay-commands.md): symlinks named `s6-svc`, `s6-svstat`, `s6-rc`, `halt`,
//! `s6-svscanctl` control a pidone supervising services, as PID 1 and as a plain child;
//! `with-contenv` (also as a script's interpreter) and `s6-setuidgid` exec what follows;
//! `--install-s6-commands` makes the links. Needs root and util-linux, and the `s6-commands`
//! feature (`cargo test --features s6-commands --test s6_commands`).
#![cfg(feature = "s6-commands")]

#[macro_use]
mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

use support::*;

in_both_modes!(
    s6_svc_svstat_and_rc_control_a_service,
    s6_svc_o_runs_a_service_once,
    s6_rc_exits_2_when_its_wait_times_out,
    halt_from_a_service_stops_pidone_with_0,
    s6_svscanctl_t_stops_pidone_with_0,
);

/// A directory `bin/` in `dir` with a symlink to pidone named after each helper command.
fn links(dir: &Dir) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    for name in [
        "with-contenv",
        "s6-setuidgid",
        "halt",
        "s6-svscanctl",
        "s6-svc",
        "s6-svstat",
        "s6-rc",
    ] {
        symlink(pidone(), bin.join(name)).expect("symlink");
    }
    bin.to_str().expect("UTF-8").to_string()
}

/// Runs `BIN/TOOL ARGS...` with `env` added (and no inherited `PIDONE_SOCKET`).
fn tool(bin: &str, name: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let out = Command::new(format!("{bin}/{name}"))
        .args(args)
        .env_remove("PIDONE_SOCKET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the tool");
    Out::from(out)
}

/// pidone supervising `web` (a [`longrun`] restarted always), the links in its dir, and its
/// socket's path.
fn web_daemon(mode: Mode) -> (Daemon, String, String) {
    let dir = Dir::new();
    let bin = links(&dir);
    let config = format!(
        "[[services]]\nname = \"web\"\nrestart = \"always\"\ncommand = {}\n",
        longrun("web")
    );
    let d = Daemon::start_in(mode, dir, &config);
    let socket = d.socket.to_str().expect("UTF-8").to_string();
    (d, bin, socket)
}

fn s6_svc_svstat_and_rc_control_a_service(mode: Mode) {
    let (mut d, bin, socket) = web_daemon(mode);
    let env = [("PIDONE_SOCKET", socket.as_str())];
    let run = |name: &str, args: &[&str]| tool(&bin, name, args, &env);
    let first = d.wait_running("web");

    let out = run("s6-svstat", &["/run/service/web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!("up (pid {first}) ")),
        "{out:?}"
    );
    let out = run("s6-svstat", &["-o", "up,pid", "/var/run/s6/services/web/"]);
    assert_eq!(out.stdout, format!("true {first}\n"), "{out:?}");

    // -r returns at once; the service comes back with a new process.
    assert_eq!(run("s6-svc", &["-r", "/run/service/web"]).code, 0);
    let second = d.wait_running_pid("web", Some(first));

    // -t sends TERM: the service's trap records it.
    assert_eq!(run("s6-svc", &["-t", "/run/service/web"]).code, 0);
    d.run
        .wait_for("web to get TERM", |_| d.dir.exists("web.stops"));
    let third = d.wait_running_pid("web", Some(second));

    // -wd waits until the service is down: no waiting of our own.
    let out = run("s6-svc", &["-wd", "-d", "/run/service/web"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(d.state("web"), "stopped");
    let out = run("s6-svstat", &["-u", "-p", "/run/service/web"]);
    assert_eq!(out.stdout, "false -1\n", "{out:?}");
    assert_eq!(run("s6-svc", &["-u", "/run/service/web"]).code, 0);
    let fourth = d.wait_running_pid("web", Some(third));

    // s6-rc waits for its transitions.
    assert_eq!(run("s6-rc", &["-d", "change", "web"]).code, 0);
    assert_eq!(d.state("web"), "stopped");
    assert_eq!(run("s6-rc", &["-u", "change", "web"]).code, 0);
    assert_eq!(d.state("web"), "running");
    assert_ne!(d.pid("web"), Some(fourth));

    // Each tool's code for a service pidone does not have, and for wrong usage.
    assert_eq!(run("s6-svc", &["-u", "/run/service/nosuch"]).code, 100);
    assert_eq!(run("s6-svstat", &["/run/service/nosuch"]).code, 1);
    assert_eq!(run("s6-rc", &["-u", "change", "nosuch"]).code, 3);
    for (name, args) in [
        ("s6-svc", &["-Z", "/run/service/web"][..]),
        ("s6-svc", &["-u"][..]),
        ("s6-svstat", &[][..]),
        ("s6-rc", &["-u", "frobnicate", "web"][..]),
        ("halt", &["now"][..]),
    ] {
        let out = run(name, args);
        assert_eq!(out.code, 100, "{name} {args:?}: {out:?}");
        assert!(out.stderr.starts_with("usage: "), "{out:?}");
    }
    assert_eq!(d.state("web"), "running");

    // Without pidone to talk to: s6's "system call failed".
    let gone = [("PIDONE_SOCKET", "/nonexistent/pidone.sock")];
    assert_eq!(tool(&bin, "s6-svc", &["-u", "web"], &gone).code, 111);
}

/// `-o` (`-uO`) and `-O`: the service is not restarted when its process ends; `-u` undoes it.
fn s6_svc_o_runs_a_service_once(mode: Mode) {
    let (mut d, bin, socket) = web_daemon(mode);
    let env = [("PIDONE_SOCKET", socket.as_str())];
    let run = |name: &str, args: &[&str]| tool(&bin, name, args, &env);
    let first = d.wait_running("web");
    assert_eq!(run("s6-svc", &["-O", "/run/service/web"]).code, 0);
    assert_eq!(d.state("web"), "running", "-O does not stop it");
    assert_eq!(run("s6-svc", &["-k", "/run/service/web"]).code, 0);
    d.wait_state("web", "stopped");
    assert_eq!(d.dir.pids("web"), [first], "web was restarted");
    // -o on a stopped service starts it, once.
    let out = run("s6-svc", &["-wu", "-o", "/run/service/web"]);
    assert_eq!(out.code, 0, "{out:?}");
    let second = d.wait_running_pid("web", Some(first));
    assert_eq!(run("s6-svc", &["-k", "/run/service/web"]).code, 0);
    d.wait_state("web", "stopped");
    assert_eq!(d.dir.pids("web"), [first, second]);
    // -u: up, and restarted again after each exit.
    assert_eq!(run("s6-svc", &["-u", "/run/service/web"]).code, 0);
    let third = d.wait_running_pid("web", Some(second));
    assert_eq!(run("s6-svc", &["-k", "/run/service/web"]).code, 0);
    d.wait_running_pid("web", Some(third));
}

/// s6-rc's code 2 when the transition is not done within `-t`: here a service that never
/// says it is ready.
fn s6_rc_exits_2_when_its_wait_times_out(mode: Mode) {
    let dir = Dir::new();
    let bin = links(&dir);
    let config = format!(
        "[[services]]\nname = \"web\"\ncommand = {}\n\n\
         [[services]]\nname = \"mute\"\nenabled = false\nready = {{ notify_fd = 3 }}\n\
         command = [\"/bin/sleep\", \"100\"]\n",
        longrun("web")
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    d.wait_running("web");
    let socket = d.socket.to_str().expect("UTF-8").to_string();
    let env = [("PIDONE_SOCKET", socket.as_str())];
    let out = tool(&bin, "s6-rc", &["-t", "300", "-u", "change", "mute"], &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(d.state("mute"), "starting");
    // s6-svc's -T: 1, as s6-svc's documentation says.
    let out = tool(&bin, "s6-svc", &["-T", "300", "-wU", "-r", "mute"], &env);
    assert_eq!(out.code, 1, "{out:?}");
}

/// `stopper` calls `halt` once `web` has set its TERM trap (it writes `web.ups` after): without
/// that wait, a fast halt could TERM `web` before its trap is set.
fn halt_from_a_service_stops_pidone_with_0(mode: Mode) {
    let dir = Dir::new();
    let bin = links(&dir);
    let config = dir.write(
        "pidone.toml",
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n\n\
             [[services]]\nname = \"stopper\"\ntype = \"oneshot\"\ndepends_on = \"web\"\n\
             command = [\"/bin/sh\", \"-c\", \"until [ -e @D/web.ups ]; do sleep 0.01; done; exec {bin}/halt\"]\n",
            longrun("web")
        ),
    );
    let socket = dir.join("run/ctl.sock");
    let socket = socket.to_str().expect("UTF-8");
    let env = [("PIDONE_SOCKET", socket)];
    let mut run = Pidone::start(mode, &dir, &["--config", &config], &env);
    let outcome = run.wait();
    outcome.assert_code(0, "halt from a service");
    assert!(dir.exists("web.stops"), "web was not stopped: {outcome:?}");
}

fn s6_svscanctl_t_stops_pidone_with_0(mode: Mode) {
    let (mut d, bin, socket) = web_daemon(mode);
    d.wait_running("web");
    let env = [("PIDONE_SOCKET", socket.as_str())];
    let out = tool(&bin, "s6-svscanctl", &["-t", "/var/run/s6/services"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    d.run.wait().assert_code(0, "s6-svscanctl -t");
    assert!(d.dir.exists("web.stops"));
}

/// The environment a `/bin/sh` sees, as `FOO|MULTI|EMPTY|OTHER|PATH`.
const SHOW: &str =
    r#"printf '%s|%s|%s|%s|%s' "$FOO" "$MULTI" "${EMPTY-unset}" "${OTHER-unset}" "$PATH""#;

/// A container_environment directory as pidone (or s6-overlay) writes it.
fn envdir(dir: &Dir) -> String {
    fs::create_dir_all(dir.join("env")).expect("mkdir env");
    dir.write("env/FOO", "bar\n");
    dir.write("env/MULTI", "a\nb");
    dir.write("env/EMPTY", "");
    dir.write("env/.hidden", "x");
    dir.join("env").to_str().expect("UTF-8").to_string()
}

#[test]
fn with_contenv_runs_a_program_with_the_container_environment() {
    let dir = Dir::new();
    let bin = links(&dir);
    let env = envdir(&dir);
    let base = [
        ("PIDONE_S6_ENVDIR", env.as_str()),
        ("PATH", "/usr/bin:/bin"),
        ("OTHER", "x"),
        ("EMPTY", "y"),
    ];
    // Only PATH is kept; each file sets a variable, less one final newline; empty unsets.
    let out = tool(&bin, "with-contenv", &["sh", "-c", SHOW], &base);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "bar|a\nb|unset|unset|/usr/bin:/bin");

    // S6_KEEP_ENV=1: the environment as it is.
    let keep = [&base[..], &[("S6_KEEP_ENV", "1")]].concat();
    let out = tool(&bin, "with-contenv", &["sh", "-c", SHOW], &keep);
    assert_eq!(out.stdout, "||y|x|/usr/bin:/bin", "{out:?}");

    // No directory (pidone not started on an s6 layout): unchanged too.
    let none = [("PIDONE_S6_ENVDIR", "/nonexistent"), ("OTHER", "x")];
    let out = tool(&bin, "with-contenv", &["sh", "-c", "echo $OTHER"], &none);
    assert_eq!(out.stdout, "x\n", "{out:?}");

    // As a script's interpreter: the kernel runs `with-contenv sh SCRIPT`.
    let script = dir.script("script", &format!("#!{bin}/with-contenv sh\n{SHOW}\n"));
    let out = Command::new(&script).envs(base).output().expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bar|a\nb|unset|unset|/usr/bin:/bin"
    );

    // PROG is found on the container's PATH, not the caller's.
    fs::create_dir_all(dir.join("tools/env")).expect("mkdir");
    dir.script("tools/hello", "#!/bin/sh\necho hello\n");
    dir.write("tools/env/PATH", &format!("{}/tools\n", dir.s()));
    let tools_env = dir.join("tools/env");
    let tools = [("PIDONE_S6_ENVDIR", tools_env.to_str().expect("UTF-8"))];
    let out = tool(&bin, "with-contenv", &["hello"], &tools);
    assert_eq!(out.stdout, "hello\n", "{out:?}");

    assert_eq!(tool(&bin, "with-contenv", &[], &base).code, 100);
    let out = tool(&bin, "with-contenv", &["/nonexistent/prog"], &base);
    assert_eq!(out.code, 127, "{out:?}");
}

/// The `Uid:` and `Gid:` lines of /proc/self/status, and the `Groups:` one.
const IDS: &str = "grep -E '^(Uid|Gid|Groups):' /proc/self/status";

#[test]
fn s6_setuidgid_runs_a_program_as_another_user() {
    let dir = Dir::new();
    let bin = links(&dir);
    let passwd = fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let nobody = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user");
    let fields: Vec<&str> = nobody.split(':').collect();
    let (uid, gid) = (fields[2], fields[3]);
    let out = tool(&bin, "s6-setuidgid", &["nobody", "sh", "-c", IDS], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let seen: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(seen[0], ["Uid:", uid, uid, uid, uid], "{out:?}");
    assert_eq!(seen[1], ["Gid:", gid, gid, gid, gid], "{out:?}");
    assert_eq!(seen[2][0], "Groups:", "{out:?}");
    assert!(seen[2][1..].contains(&gid), "the user's groups: {out:?}");

    let out = tool(&bin, "s6-setuidgid", &["1234:5678", "sh", "-c", IDS], &[]);
    assert!(out.stdout.contains("Uid:\t1234\t1234"), "{out:?}");
    assert!(out.stdout.contains("Gid:\t5678\t5678"), "{out:?}");

    assert_eq!(
        tool(&bin, "s6-setuidgid", &["nosuchuser", "true"], &[]).code,
        1
    );
    assert_eq!(tool(&bin, "s6-setuidgid", &["nobody"], &[]).code, 100);
}

#[test]
fn install_links_the_commands_where_s6_overlay_has_them() {
    let dir = Dir::new();
    let root = dir.join("root");
    fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
    fs::write(root.join("usr/bin/s6-svc"), "#!/bin/sh\n").expect("a file already there");
    let root_s = root.to_str().expect("UTF-8");
    run_plain(&["--install-s6-commands", root_s]).assert_code(0, "install");
    for link in [
        "command/with-contenv",
        "command/s6-svc",
        "usr/bin/with-contenv",
        "usr/bin/s6-setuidgid",
        "package/admin/s6-overlay/command/with-contenv",
        "run/s6/basedir/bin/halt",
    ] {
        let target = fs::read_link(root.join(link)).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert_eq!(target, Path::new(pidone()), "{link}");
    }
    assert!(!root.join("usr/bin/s6-svc").is_symlink(), "a file is kept");
    // Run again: the links are replaced, and they work.
    run_plain(&["--install-s6-commands", root_s]).assert_code(0, "install again");
    let out = tool(
        &format!("{root_s}/command"),
        "with-contenv",
        &["echo", "hi"],
        &[],
    );
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert_eq!(run_plain(&["--install-s6-commands", "a", "b"]).code(), 2);
}
