//! Black-box tests of the files pidone opens because the configuration names them (log files,
//! env files), replaced by a service's user with something hostile: a symlink to a root-only
//! file, a FIFO. pidone runs as a true PID 1; the service as `nobody` where its user matters.
//! Needs root, util-linux (`unshare`) and `mkfifo`.

#[macro_use]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

as_pid1!(
    log_file_symlink_to_a_root_file_is_not_followed,
    log_file_is_opened_with_the_users_credentials,
    log_file_fifo_is_refused_without_freezing_pidone,
    env_file_fifo_at_reload_keeps_the_old_config,
);

/// Why service `name`'s log file is not written (`log.error`), or "" (for polling).
fn log_error(socket: &Path, name: &str) -> String {
    service_of(socket, name)
        .and_then(|s| s["log"]["error"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {path:?}");
}

/// `pidone status` answers, and then SIGTERM ends pidone within the deadline.
fn answers_then_stops(mut run: Pidone, socket: &Path) {
    let out = client_as(&[], socket, &["status"]);
    assert!(out.stdout.contains("NAME"), "status answers: {out:?}");
    run.signal("TERM");
    run.wait();
}

/// Runs a service as nobody that owns `@D/logs`, writes a line to its `log_file`, runs `swap`
/// (a shell snippet) once and exits, restarted every 100 ms. `@D/secret` is a root-only file
/// that must stay as it is. Returns once the log file of a later start was refused (the
/// service runs on), with pidone still running and the reason the service shows.
fn nobody_swaps(
    mode: Mode,
    dir: &Dir,
    log_file: &str,
    swap: &str,
    refused: &str,
) -> (Pidone, PathBuf, String) {
    let (mut run, socket) = start_on(
        mode,
        dir,
        &format!(
            r#"
[[services]]
name = "sneaky"
user = "nobody"
restart = "always"
restart_delay = "100ms"
log_file = "{log_file}"
command = ["/bin/sh", "-c", '''
echo appended
echo run >> @D/logs/runs
[ -e @D/logs/swapped ] || {{ {swap}; touch @D/logs/swapped; }}
exit 1
''']
"#
        ),
        &[],
    );
    // The reason settles once the swap is complete (a swap in two steps shows a missing file
    // for a moment), and pidone looks at the file again while lines arrive.
    run.wait_for(
        &format!("the log file of a start after the swap to be refused: {refused}"),
        |_| log_error(&socket, "sneaky").contains(refused),
    );
    assert_eq!(
        dir.read("secret"),
        "root only\n",
        "the root file is unchanged"
    );
    // pidone's own credentials are back (it inherited the test's).
    let ids = |pid: String| {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let keep = |l: &&str| ["Uid:", "Gid:", "Groups:"].iter().any(|k| l.starts_with(k));
        status.lines().filter(keep).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(ids(run.pid().to_string()), ids("self".into()));
    let why = log_error(&socket, "sneaky");
    (run, socket, why)
}

/// A directory owned by nobody, for `nobody_swaps`, and `@D/secret`, root's and mode 0600.
fn nobody_dir(dir: &Dir, name: &str) {
    let path = dir.join(name);
    fs::create_dir_all(&path).expect("mkdir");
    let status = Command::new("chown")
        .args(["nobody", path.to_str().expect("UTF-8")])
        .status()
        .expect("run chown");
    assert!(status.success(), "chown nobody {name}");
}

fn root_secret(dir: &Dir, name: &str) {
    let secret = dir.write(name, "root only\n");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod secret");
}

/// The log file replaced by a symlink to a root-only file: the next start must not open that
/// file as root for the service.
fn log_file_symlink_to_a_root_file_is_not_followed(mode: Mode) {
    let dir = Dir::new();
    nobody_dir(&dir, "logs");
    root_secret(&dir, "secret");
    // Renamed over the file in one step: pidone recreates a log file removed under it.
    let swap = "ln -s @D/secret @D/logs/link; mv -f @D/logs/link @D/logs/out.log";
    let refused = "out.log: is a symbolic link";
    let (run, socket, why) = nobody_swaps(mode, &dir, "@D/logs/out.log", swap, refused);
    assert!(why.contains("out.log: is a symbolic link"), "{why}");
    answers_then_stops(run, &socket);
}

/// A directory on the log file's path replaced by a symlink into a root-only directory: the
/// open is checked against the service's user, who cannot enter it.
fn log_file_is_opened_with_the_users_credentials(mode: Mode) {
    let dir = Dir::new();
    nobody_dir(&dir, "logs/sub");
    nobody_dir(&dir, "logs");
    fs::create_dir(dir.join("private")).expect("mkdir private");
    fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o700)).expect("chmod");
    root_secret(&dir, "private/out.log");
    fs::hard_link(dir.join("private/out.log"), dir.join("secret")).expect("link secret");
    let swap = "rm -rf @D/logs/sub; ln -s @D/private @D/logs/sub";
    let refused = "out.log: Permission denied";
    let (run, socket, why) = nobody_swaps(mode, &dir, "@D/logs/sub/out.log", swap, refused);
    assert!(why.contains("out.log: Permission denied"), "{why}");
    answers_then_stops(run, &socket);
}

/// A FIFO in place of a log file: opening it would block PID 1 for ever; it is refused with the
/// reason instead (the service runs, its lines dropped), and pidone goes on answering and
/// stopping.
fn log_file_fifo_is_refused_without_freezing_pidone(mode: Mode) {
    let dir = Dir::new();
    mkfifo(&dir.join("out.fifo"));
    let (mut run, socket) = start_on(
        mode,
        &dir,
        r#"
[[services]]
name = "piped"
log_file = "@D/out.fifo"
command = ["/bin/sleep", "1000"]
"#,
        &[],
    );
    run.wait_for("the log file to be refused with its reason", |_| {
        log_error(&socket, "piped").contains("out.fifo: not a regular file")
    });
    answers_then_stops(run, &socket);
}

/// An env file turned into a FIFO, then SIGHUP: the reload is refused with the reason, the old
/// configuration keeps running, pidone answers and stops.
fn env_file_fifo_at_reload_keeps_the_old_config(mode: Mode) {
    let dir = Dir::new();
    dir.write("web.env", "A=1\n");
    let (mut run, socket) = start_on(
        mode,
        &dir,
        r#"
[[services]]
name = "web"
env_file = "@D/web.env"
command = ["/bin/sleep", "1000"]
"#,
        &[],
    );
    let pid = |socket: &Path| service_of(socket, "web").and_then(|s| s["pid"].as_i64());
    run.wait_for("web to run", |_| pid(&socket).is_some());
    let before = pid(&socket);
    mkfifo(&dir.join("web.env"));
    run.signal("HUP");
    run.wait_for("the reload to be refused", |run| {
        run.stderr()
            .contains("web.env: not a regular file (a fifo)")
    });
    assert_eq!(pid(&socket), before, "the old configuration keeps running");
    answers_then_stops(run, &socket);
}
