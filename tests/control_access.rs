//! Black-box tests of who may use the control socket and whose socket the client trusts: a
//! non-root peer may read but not act, unknown service names are refused naming the known ones, no
//! daemon exits 3 naming the socket, a server run by another user and a squatted fallback socket
//! directory are refused. Needs root and util-linux (`setpriv`, `unshare`).

#[macro_use]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------------------------
// who may act, unknown names, no daemon

const NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

#[test]
fn a_non_root_peer_cannot_act() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n{}",
            longrun("web"),
            crasher("clock")
        ),
    );
    let pid = d.wait_running("web");
    let mode = std::fs::metadata(&d.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is 0600");

    // With the default mode nobody cannot even connect.
    for args in [&["stop", "web"][..], &["restart", "web"], &["shutdown"]] {
        let out = client_as(&NOBODY, &d.socket, args);
        assert!(
            out.code == 3 || out.code == 1,
            "nobody {args:?} must be refused: {out:?}"
        );
    }
    // Opened up, nobody may read but still not act: peer credentials decide.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = client_as(&NOBODY, &d.socket, &["status", "--json"]);
    assert_eq!(out.code, 0, "nobody may read: {out:?}");
    for args in [
        &["stop", "web"][..],
        &["restart", "web"],
        &["signal", "web", "TERM"],
        &["shutdown"],
    ] {
        let out = client_as(&NOBODY, &d.socket, args);
        assert_eq!(out.code, 1, "nobody {args:?} must be refused: {out:?}");
        assert!(
            out.stderr.to_lowercase().contains("permission"),
            "nobody {args:?}: {out:?}"
        );
    }
    d.wait_crashes("clock", 3);
    assert!(d.run.is_running(), "pidone must not have shut down");
    assert_eq!(d.pid("web"), Some(pid), "web is untouched");
    assert_eq!(d.state("web"), "running");
    assert!(d.dir.read("web.stops").is_empty(), "web never got TERM");
}

#[test]
fn unknown_service_is_refused_naming_the_known_ones() {
    let d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n\n[[services]]\nname = \"db\"\n\
             command = {}\n",
            longrun("web"),
            longrun("db")
        ),
    );
    for args in [
        &["stop", "nosuch"][..],
        &["start", "nosuch"],
        &["restart", "nosuch"],
        &["signal", "nosuch", "HUP"],
        &["status", "nosuch"],
        &["status", "web", "nosuch"],
    ] {
        let out = d.client(args);
        assert_eq!(out.code, 1, "pidone {args:?}: {out:?}");
        for word in ["nosuch", "web", "db"] {
            assert!(
                out.stderr.contains(word),
                "pidone {args:?} names {word}: {out:?}"
            );
        }
    }
    let (status, body) = get(&d.socket, "/v1/services?names=nosuch").expect("an answer");
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("known")),
        "{body}"
    );
    // Usage errors are 2, not 1.
    let out = d.client(&["signal", "web"]);
    assert_eq!(out.code, 2, "{out:?}");
}

/// No socket file at all (pidone could not create one: a read-only image) is exit 4 and says so,
/// apart from unhealthy (1) and unreachable (3); a missing directory is the same.
#[test]
fn status_without_a_socket_exits_4_and_a_stale_socket_3_naming_the_path() {
    let dir = Dir::new();
    for socket in [dir.join("nobody-home.sock"), dir.join("no-dir/pidone.sock")] {
        for args in [&["status"][..], &["check"], &["check", "--live"]] {
            let out = client_as(&[], &socket, args);
            assert_eq!(out.code, 4, "{args:?}: {out:?}");
            let says = format!("no control socket at {}", socket.display());
            assert!(out.stderr.contains(&says), "{args:?}: {out:?}");
        }
    }
    let socket = dir.join("nobody-home.sock");

    // Through $PIDONE_SOCKET, a stale socket file nobody listens on is unreachable: 3.
    drop(UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let out = Command::new(pidone())
        .arg("check")
        .env("PIDONE_SOCKET", &socket)
        .output()
        .expect("run the client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(socket.to_str().unwrap()), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// who serves the socket (issue #19 item 3)

/// A pidone started outside the harness (as nobody, or in a mount namespace of its own), its
/// output in `DIR/out` and `DIR/err`. Dropping it SIGKILLs every process of its run.
struct Outside {
    child: std::process::Child,
    tag: String,
}

impl Outside {
    fn spawn(mut command: Command, dir: &Dir) -> Outside {
        let tag = format!("outside{}x{}", std::process::id(), now_ns());
        let file = |name| std::fs::File::create(dir.join(name)).expect("output file");
        let child = command
            .env(TAG_VAR, &tag)
            .env_remove("PIDONE_SOCKET")
            .env_remove("XDG_RUNTIME_DIR")
            .stdin(Stdio::null())
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .expect("spawn pidone");
        Outside { child, tag }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        for pid in pids_with_env(TAG_VAR, &self.tag) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket served by another user (a squatter who bound the path first) gets nothing from the
/// client: it checks the server's uid before sending, exits 3 and says why. Here the squatter is
/// a real pidone run as nobody, which would obey a `shutdown`; nobody's own client may talk to it.
#[test]
fn the_client_refuses_a_server_run_by_another_user() {
    let dir = Dir::new();
    let own = dir.join("nobody");
    std::fs::create_dir(&own).expect("mkdir");
    std::os::unix::fs::chown(&own, Some(65534), Some(65534)).expect("chown");
    let socket = own.join("ctl.sock");
    let config = dir.write(
        "pidone.toml",
        "[[services]]\nname = \"web\"\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let mut command = Command::new(NOBODY[0]);
    command
        .args(&NOBODY[1..])
        .arg(pidone())
        .arg("--socket")
        .arg(&socket);
    command.args(["--config", &config]);
    let mut squatter = Outside::spawn(command, &dir);
    wait_until(DEADLINE, "nobody's pidone to answer", || {
        get(&socket, "/v1/services").is_some_and(|(status, _)| status == 200)
    });
    for args in [&["status"][..], &["shutdown"], &["logs", "-f", "web"]] {
        let out = client_as(&[], &socket, args);
        assert_eq!(out.code, 3, "root's {args:?} must be refused: {out:?}");
        let why = format!(
            "refusing {}: the server runs as uid 65534, not root or you",
            socket.display()
        );
        assert!(out.stderr.contains(&why), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
    assert!(squatter.running(), "the shutdown never reached it");
    let out = client_as(&NOBODY, &socket, &["status"]);
    assert_eq!(out.code, 0, "nobody may talk to nobody's pidone: {out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
}

/// pidone in a mount namespace of its own where `/run` is read-only, `/tmp` is `dir` and neither
/// `XDG_RUNTIME_DIR` nor `PIDONE_SOCKET` is set: its socket goes to the fallback,
/// `/tmp/pidone-0/pidone.sock`. Its service writes `/tmp/up` (`DIR/up`).
fn with_fallback(dir: &Dir) -> Outside {
    dir.write(
        "pidone.toml",
        "[[services]]\nname = \"web\"\n\
         command = [\"/bin/sh\", \"-c\", \"echo up > /tmp/up; exec sleep 1000\"]\n",
    );
    let script = "mount -t tmpfs -o ro none /run && mount --bind \"$1\" /tmp && \
                  exec \"$2\" --config /tmp/pidone.toml";
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ]);
    // The binary goes inside: wherever the checkout is (it may be under /tmp), /tmp is `dir`
    // once pidone starts.
    // Copied by `cp`, not by this process: a test thread forking meanwhile would inherit the
    // copy's open write descriptor, and exec'ing it would fail with ETXTBSY.
    let copied = Command::new("cp")
        .arg(pidone())
        .arg(dir.join("pidone"))
        .status()
        .expect("run cp");
    assert!(copied.success(), "copy pidone");
    command.args([dir.s().as_str(), "/tmp/pidone"]);
    Outside::spawn(command, dir)
}

/// The fallback socket directory in `/tmp`, where anyone may create names, is used only when
/// pidone owns it: one made first by another user, or a symlink of theirs, is refused with the
/// reason and pidone supervises without a socket; a fresh one is created, and the client (with
/// the same environment) finds the socket there.
#[test]
fn a_squatted_fallback_socket_directory_is_refused() {
    for squat in ["dir", "symlink", "dangling symlink"] {
        let dir = Dir::new();
        let place = dir.join("pidone-0");
        let elsewhere = dir.join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        if squat == "dir" {
            std::fs::create_dir(&place).expect("mkdir");
            std::os::unix::fs::chown(&place, Some(65534), Some(65534)).expect("chown");
        } else {
            // Relative: inside pidone's namespace it leads to /tmp/elsewhere (or nowhere).
            let target = if squat == "symlink" {
                "elsewhere"
            } else {
                "nowhere"
            };
            std::os::unix::fs::symlink(target, &place).expect("symlink");
            std::os::unix::fs::lchown(&place, Some(65534), Some(65534)).expect("lchown");
        }
        let mut run = with_fallback(&dir);
        wait_until(DEADLINE, "the service to run and pidone to refuse", || {
            dir.exists("up") && dir.read("err").contains("running without it")
        });
        let err = dir.read("err");
        assert!(
            err.contains("refusing the directory /tmp/pidone-0: it is owned by uid 65534"),
            "{squat}: {err}"
        );
        assert!(!place.join("pidone.sock").exists(), "{squat}");
        assert!(!elsewhere.join("pidone.sock").exists(), "{squat}");
        assert!(
            run.running(),
            "{squat}: pidone goes on without its socket: {err}"
        );
    }

    let dir = Dir::new();
    let run = with_fallback(&dir);
    let socket = dir.join("pidone-0/pidone.sock");
    wait_until(DEADLINE, "the fallback socket", || socket.exists());
    let meta = std::fs::symlink_metadata(dir.join("pidone-0")).expect("the directory");
    assert!(meta.is_dir());
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    assert_eq!(
        meta.permissions().mode() & 0o022,
        0,
        "nobody else may write"
    );
    let out = Command::new("nsenter")
        .args([
            "-t",
            &run.child.id().to_string(),
            "-m",
            "--",
            "/tmp/pidone",
            "status",
        ])
        .env_remove("PIDONE_SOCKET")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run the client in pidone's mount namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("web"), "{stdout}");
}
