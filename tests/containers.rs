//! End to end in a real Docker engine (issue #11): pidone as the entrypoint of scratch images,
//! driven with `docker run`, `stop`, `kill`, `exec`, `restart`, `logs`, `top` and `inspect`.
//!
//! Two images are built once per run, `FROM scratch`, from the static pidone (`make static`;
//! `make test` builds it first) and Debian's `busybox-static` as the services' programs: nothing
//! is pulled. `single` runs `ENTRYPOINT ["/pidone", "--"]`; `services` reads `/etc/pidone.toml`
//! (and `/cases/*.toml` through `PIDONE_CONFIG`) and has `HEALTHCHECK CMD ["/pidone", "check",
//! "--live"]`. Every case runs in its own thread, with its own containers; all are removed, and
//! the images too, when the test ends, whether it passed or not.
//!
//! Without a `docker` command the test prints `skipped: no docker` and passes; with one whose
//! engine does not answer, it fails.

#[path = "support/docker.rs"]
mod docker;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;

use docker::*;

/// The images of one run.
struct Images {
    single: Image,
    services: Image,
    s6: Image,
}

/// The default configuration of the `services` image: web depends on db; both say when they
/// are up and when they stop (each exits 0 on TERM at once, so a stop fits any budget).
const SERVICES: &str = r#"
[[services]]
name = "db"
command = ["/bin/sh", "-c", "trap 'echo db stopping; kill $! 2>/dev/null; exit 0' TERM; echo db up; while :; do sleep 1 & wait; done"]

[[services]]
name = "web"
depends_on = "db"
command = ["/bin/sh", "-c", "trap 'echo web stopping; kill $! 2>/dev/null; exit 0' TERM; echo web up; while :; do sleep 1 & wait; done"]
"#;

/// `/cases/user.toml`: a service with `user = "1000"`, for a pidone run as `--user 1000:1000`.
const USER: &str = r#"
[[services]]
name = "app"
user = "1000"
command = ["/bin/sh", "-c", "trap 'kill $! 2>/dev/null; exit 0' TERM; echo app runs as $(id -u):$(id -g) home=$HOME; while :; do sleep 1 & wait; done"]
"#;

/// `/cases/oom.toml`: two services with `memory_max = "20MB"`. `hog`'s main process grows a
/// shell variable by doubling it up to 64 MiB (bounded: without the limit it ends, saying it
/// survived); `web`'s main process runs the same as a child, which the OOM killer takes while
/// `web` keeps running.
const OOM: &str = r#"
[[services]]
name = "hog"
memory_max = "20MB"
restart = "never"
command = ["/bin/sh", "-c", "x=0123456789abcdef; i=0; while [ $i -lt 22 ]; do x=$x$x; i=$((i+1)); done; echo hog survived"]

[[services]]
name = "web"
memory_max = "20MB"
command = ["/bin/sh", "-c", "trap 'kill $! 2>/dev/null; exit 0' TERM; /bin/sh -c 'x=0123456789abcdef; i=0; while [ $i -lt 22 ]; do x=$x$x; i=$((i+1)); done; echo child survived'; echo web child ended; while :; do sleep 1 & wait; done"]
"#;
/// The `s6` image's s6-overlay layout (path, text, executable), untouched by pidone: a v3
/// longrun ready through its notification-fd, depending on a oneshot whose `up` is one command
/// line; a v2 service with `finish`; a cont-init.d script passing a variable to services
/// through the container environment; a cont-finish.d script.
const S6_FILES: &[(&str, &str, bool)] = &[
    ("etc/s6-overlay/s6-rc.d/user/type", "bundle\n", false),
    ("etc/s6-overlay/s6-rc.d/user/contents.d/myapp", "", false),
    ("etc/s6-overlay/s6-rc.d/myapp/type", "longrun\n", false),
    ("etc/s6-overlay/s6-rc.d/myapp/notification-fd", "3\n", false),
    (
        "etc/s6-overlay/s6-rc.d/myapp/dependencies.d/init-db",
        "",
        false,
    ),
    (
        "etc/s6-overlay/s6-rc.d/myapp/dependencies.d/base",
        "",
        false,
    ),
    (
        "etc/s6-overlay/s6-rc.d/myapp/run",
        "#!/bin/sh\necho \"myapp up, greeting $GREETING\"\necho >&3\nexec sleep 1000 3>&-\n",
        true,
    ),
    ("etc/s6-overlay/s6-rc.d/init-db/type", "oneshot\n", false),
    (
        "etc/s6-overlay/s6-rc.d/init-db/up",
        "/etc/s6-overlay/scripts/init-db \"a b\"\n",
        false,
    ),
    (
        "etc/s6-overlay/scripts/init-db",
        "#!/bin/sh\necho \"init-db got $1\"\n",
        true,
    ),
    (
        "etc/services.d/web/run",
        "#!/bin/sh\nexec sleep 1000\n",
        true,
    ),
    (
        "etc/services.d/web/finish",
        "#!/bin/sh\necho \"web finish $1 $2\"\n",
        true,
    ),
    (
        "etc/cont-init.d/10-greet",
        "#!/bin/sh\necho cont-init ran\nprintf hi > /run/s6/container_environment/GREETING\n",
        true,
    ),
    (
        "etc/cont-finish.d/10-bye",
        "#!/bin/sh\necho cont-finish ran\n",
        true,
    ),
];

/// The busybox applets the images link.
const APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "id", "kill", "cat", "true", "ls", "ps",
];

impl Images {
    fn build(context: &Path) -> Images {
        let pidone = static_pidone();
        assert!(
            pidone.is_file(),
            "no static pidone at {}: run `make static` (`make test` does)",
            pidone.display()
        );
        assert!(
            Path::new(BUSYBOX).is_file(),
            "no {BUSYBOX}: install Debian's busybox-static (.ci/run does)"
        );
        let base = context.join("base");
        std::fs::create_dir_all(base.join("bin")).expect("mkdir bin");
        std::fs::copy(&pidone, base.join("pidone")).expect("copy pidone");
        std::fs::copy(BUSYBOX, base.join("bin/busybox")).expect("copy busybox");
        for applet in APPLETS {
            symlink("busybox", base.join("bin").join(applet)).expect("link an applet");
        }
        let services = context.join("services");
        std::fs::create_dir_all(services.join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(services.join("cases")).expect("mkdir cases");
        std::fs::write(services.join("etc/pidone.toml"), SERVICES).expect("write config");
        std::fs::write(services.join("cases/user.toml"), USER).expect("write config");
        std::fs::write(services.join("cases/oom.toml"), OOM).expect("write config");
        let s6 = context.join("s6");
        for (path, text, exec) in S6_FILES {
            let file = s6.join(path);
            std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&file, text).expect("write an s6 file");
            let mode = if *exec { 0o755 } else { 0o644 };
            let perms = std::os::unix::fs::PermissionsExt::from_mode(mode);
            std::fs::set_permissions(&file, perms).expect("chmod");
        }
        std::fs::copy(&pidone, s6.join("init")).expect("copy pidone as /init");
        Images {
            single: Image::build(
                "single",
                context,
                "FROM scratch\nCOPY base/ /\nENTRYPOINT [\"/pidone\", \"--\"]\n",
            ),
            services: Image::build(
                "services",
                context,
                // As docs/kubernetes.md says: WORKDIR gives a scratch image its /run (0755).
                "FROM scratch\nCOPY base/ /\nCOPY services/ /\nWORKDIR /run\nWORKDIR /\n\
                 HEALTHCHECK CMD [\"/pidone\", \"check\", \"--live\"]\n\
                 ENTRYPOINT [\"/pidone\"]\n",
            ),
            // s6-overlay's own instructions, with pidone as /init.
            s6: Image::build(
                "s6",
                context,
                "FROM scratch\nCOPY base/ /\nCOPY s6/ /\nWORKDIR /run\nWORKDIR /\n\
                 ENTRYPOINT [\"/init\"]\n",
            ),
        }
    }
}

type Case = fn(&Images);

const CASES: &[(&str, Case)] = &[
    (
        "exit_codes_pass_through_docker_run",
        exit_codes_pass_through_docker_run,
    ),
    (
        "docker_stop_ends_the_program_with_its_status",
        docker_stop_ends_the_program_with_its_status,
    ),
    (
        "docker_kill_usr1_reaches_the_program",
        docker_kill_usr1_reaches_the_program,
    ),
    ("orphans_are_reaped", orphans_are_reaped),
    (
        "a_terminal_with_t_and_ctrl_c_by_kill_int",
        a_terminal_with_t_and_ctrl_c_by_kill_int,
    ),
    ("stdin_passes_through_with_i", stdin_passes_through_with_i),
    (
        "services_log_prefixed_and_answer_exec_and_healthcheck",
        services_log_prefixed_and_answer_exec_and_healthcheck,
    ),
    (
        "default_docker_stop_completes_the_ordered_shutdown",
        default_docker_stop_completes_the_ordered_shutdown,
    ),
    (
        "read_only_with_a_tmpfs_at_run_has_its_socket",
        read_only_with_a_tmpfs_at_run_has_its_socket,
    ),
    (
        "read_only_without_a_tmpfs_runs_without_a_socket",
        read_only_without_a_tmpfs_runs_without_a_socket,
    ),
    (
        "a_world_writable_run_like_an_empty_dir_has_its_socket",
        a_world_writable_run_like_an_empty_dir_has_its_socket,
    ),
    (
        "user_1000_runs_a_service_with_user_1000",
        user_1000_runs_a_service_with_user_1000,
    ),
    ("docker_restart_comes_back_up", docker_restart_comes_back_up),
    (
        "an_oom_kill_in_a_private_cgroup_namespace_is_reported",
        an_oom_kill_in_a_private_cgroup_namespace_is_reported,
    ),
    (
        "an_s6_overlay_image_runs_with_pidone_as_init",
        an_s6_overlay_image_runs_with_pidone_as_init,
    ),
];

#[test]
fn containers() {
    let Some(version) = engine() else {
        // Written past the test harness's capture, so that it shows in every run.
        let _ = std::io::stderr().write_all(b"skipped: no docker\n");
        return;
    };
    let context = TempDir::new();
    let images = Images::build(&context.0);
    let failed: Vec<&str> = std::thread::scope(|s| {
        let running: Vec<_> = (CASES.iter())
            .map(|&(name, case)| {
                let images = &images;
                let thread = std::thread::Builder::new().name(name.to_string());
                let handle = thread.spawn_scoped(s, move || case(images));
                (name, handle.expect("spawn a case"))
            })
            .collect();
        (running.into_iter())
            .filter_map(|(name, handle)| handle.join().is_err().then_some(name))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "in Docker {version}, these cases failed (their panics are above): {failed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// single-program mode: ENTRYPOINT ["/pidone", "--"]

fn exit_codes_pass_through_docker_run(images: &Images) {
    for (script, code) in [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", 143)] {
        let ctr = Container::named("exit");
        let out = docker(&[
            "run",
            "--name",
            &ctr.name,
            &images.single.name,
            "/bin/sh",
            "-c",
            script,
        ]);
        assert_eq!(out.code, code, "{script}: {out:?}");
    }
}

fn docker_stop_ends_the_program_with_its_status(images: &Images) {
    let script =
        "trap 'echo got TERM; exit 42' TERM; echo waiting; while :; do sleep 1 & wait; done";
    let ctr = Container::start("stop", &[], &images.single, &["/bin/sh", "-c", script]);
    ctr.wait_lines("waiting", 1);
    // The default 10 s: had pidone not passed TERM on, docker would SIGKILL it (137).
    docker_ok(&["stop", &ctr.name]);
    assert_eq!(ctr.wait_exit(), 42, "{}", ctr.logs());
    ctr.wait_lines("got TERM", 1);
}

fn docker_kill_usr1_reaches_the_program(images: &Images) {
    let script = "trap 'echo got USR1' USR1; echo waiting; while :; do sleep 1 & wait; done";
    let ctr = Container::start("usr1", &[], &images.single, &["/bin/sh", "-c", script]);
    ctr.wait_lines("waiting", 1);
    docker_ok(&["kill", "-s", "USR1", &ctr.name]);
    ctr.wait_lines("got USR1", 1);
    assert_eq!(ctr.inspect("{{.State.Running}}"), "true");
}

fn orphans_are_reaped(images: &Images) {
    // Each `( ... &)` leaves an orphan that pidone, as PID 1, inherits; it exits at once.
    let script = "for i in 1 2 3; do (sh -c 'echo orphan done' &); done; \
                  while :; do sleep 1 & wait; done";
    let ctr = Container::start("orphans", &[], &images.single, &["/bin/sh", "-c", script]);
    ctr.wait_lines("orphan done", 3);
    // `docker top` lists the container's cgroup, which no longer holds a zombie: it would show
    // none even under an init that never reaps. `ps` in the container's PID namespace does.
    wait_for("no zombie in the container's ps", || {
        let out = ctr.exec(&["/bin/ps", "-o", "pid,stat,comm"]);
        assert_eq!(out.code, 0, "{out:?}");
        let zombies = (out.stdout.lines().skip(1))
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|s| s.starts_with('Z'))
            })
            .count();
        (zombies == 0).then_some(())
    });
    assert!(docker_ok(&["top", &ctr.name]).stdout.contains("pidone"));
}

fn a_terminal_with_t_and_ctrl_c_by_kill_int(images: &Images) {
    let script = "trap 'echo got INT; exit 5' INT; \
                  if [ -t 0 ] && [ -t 1 ]; then echo on a terminal; else echo no terminal; fi; \
                  while :; do sleep 1 & wait; done";
    let ctr = Container::start("tty", &["-t"], &images.single, &["/bin/sh", "-c", script]);
    let logs = ctr.wait_lines("terminal", 1);
    assert!(logs.contains("on a terminal"), "{logs}");
    docker_ok(&["kill", "-s", "INT", &ctr.name]);
    assert_eq!(ctr.wait_exit(), 5, "{}", ctr.logs());
}

fn stdin_passes_through_with_i(images: &Images) {
    let ctr = Container::named("stdin");
    let args = [
        "run",
        "-i",
        "--name",
        &ctr.name,
        &images.single.name,
        "/bin/sh",
        "-c",
        "read line; echo \"got $line\"",
    ];
    let out = docker_with(&args, Some("hello from the test\n"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "got hello from the test", "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// services mode: /etc/pidone.toml

/// Both services of [`SERVICES`] said they are up.
fn wait_up(ctr: &Container) {
    ctr.wait_lines("db up", 1);
    ctr.wait_lines("web up", 1);
}

fn services_log_prefixed_and_answer_exec_and_healthcheck(images: &Images) {
    let health = ["--health-interval", "200ms", "--health-start-period", "0s"];
    let ctr = Container::start("services", &health, &images.services, &[]);
    let logs = ctr.wait_lines("web up", 1);
    let has = |prefix: &str, text: &str| {
        (logs.lines()).any(|l| l.starts_with(prefix) && l.ends_with(text))
    };
    assert!(has("[db", "] db up") && has("[web]", " web up"), "{logs}");

    let out = ctr.exec(&["/pidone", "status"]);
    assert_eq!(out.code, 0, "{out:?}");
    for name in ["db", "web"] {
        let running =
            (out.stdout.lines()).any(|l| l.split_whitespace().take(2).eq([name, "running"]));
        assert!(running, "{name} running: {out:?}");
    }
    let out = ctr.exec(&["/pidone", "restart", "web"]);
    assert_eq!(out.code, 0, "{out:?}");
    ctr.wait_lines("web stopping", 1);
    ctr.wait_lines("web up", 2);

    wait_for("docker inspect to say healthy", || {
        (ctr.inspect("{{.State.Health.Status}}") == "healthy").then_some(())
    });
    let out = ctr.exec(&["/pidone", "check", "--live"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "live"), "{out:?}");
}

fn default_docker_stop_completes_the_ordered_shutdown(images: &Images) {
    let ctr = Container::start("shutdown", &[], &images.services, &[]);
    wait_up(&ctr);
    docker_ok(&["stop", &ctr.name]);
    assert_eq!(ctr.wait_exit(), 0, "not 137: {}", ctr.logs());
    let logs = ctr.logs();
    let at = |text: &str| {
        logs.find(text)
            .unwrap_or_else(|| panic!("{text:?}: {logs}"))
    };
    assert!(
        at("web stopping") < at("db stopping"),
        "web (the dependent) stops first: {logs}"
    );
}

fn read_only_with_a_tmpfs_at_run_has_its_socket(images: &Images) {
    let options = ["--read-only", "--tmpfs", "/run"];
    let ctr = Container::start("ro-tmpfs", &options, &images.services, &[]);
    wait_up(&ctr);
    let out = ctr.exec(&["/pidone", "check"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "healthy"), "{out:?}");
}

fn read_only_without_a_tmpfs_runs_without_a_socket(images: &Images) {
    let ctr = Container::start("ro", &["--read-only"], &images.services, &[]);
    wait_up(&ctr);
    for check in [&["/pidone", "check"][..], &["/pidone", "check", "--live"]] {
        let out = ctr.exec(check);
        assert_eq!(out.code, 4, "{check:?}: {out:?}");
        assert!(out.stderr.contains("no control socket"), "{out:?}");
    }
    assert_eq!(ctr.inspect("{{.State.Running}}"), "true");
}

/// Kubernetes' emptyDir is a host directory, world-writable (0777), which pidone refuses for its
/// socket's directory: it makes a directory of its own inside it, and the client finds it there.
/// (A `--tmpfs /run` cannot stand in: Docker gives it the mode of the image's `/run`.)
fn a_world_writable_run_like_an_empty_dir_has_its_socket(images: &Images) {
    use std::os::unix::fs::PermissionsExt;
    let empty_dir = TempDir::new();
    let open = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(&empty_dir.0, open).expect("chmod 0777");
    let volume = format!("{}:/run", empty_dir.0.display());
    let options = ["--read-only", "--volume", &volume];
    let ctr = Container::start("emptydir", &options, &images.services, &[]);
    wait_up(&ctr);
    let out = ctr.exec(&["/pidone", "check", "--ready"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "healthy"), "{out:?}");
    let socket = empty_dir.0.join("pidone/pidone.sock");
    assert!(
        socket.exists(),
        "the socket is in /run/pidone of the emptyDir"
    );
}

fn user_1000_runs_a_service_with_user_1000(images: &Images) {
    let options = [
        "--user",
        "1000:1000",
        "--read-only",
        "--tmpfs",
        "/run:uid=1000,gid=1000,mode=0755",
        "--env",
        "PIDONE_CONFIG=/cases/user.toml",
    ];
    let ctr = Container::start("user", &options, &images.services, &[]);
    let logs = ctr.wait_lines("app runs as", 1);
    assert!(logs.contains("app runs as 1000:1000 home=/"), "{logs}");
    let out = ctr.exec(&["/pidone", "status", "app"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("running"), "{out:?}");
}

fn docker_restart_comes_back_up(images: &Images) {
    let ctr = Container::start("restart", &[], &images.services, &[]);
    wait_up(&ctr);
    docker_ok(&["restart", &ctr.name]);
    ctr.wait_lines("db up", 2);
    ctr.wait_lines("web up", 2);
    let out = ctr.exec(&["/pidone", "check"]);
    assert_eq!((out.code, out.stdout.trim()), (0, "healthy"), "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// cgroup v2: a private cgroup namespace with a writable /sys/fs/cgroup

/// `memory_max = "20MB"` in a container whose cgroups pidone manages (`--cgroupns=private`, and
/// `--privileged` for a writable cgroup mount): a main process the OOM killer takes is reported
/// with that reason, a child it takes is counted and warned of, and `docker exec` still works
/// (runc puts the exec'd process in pidone's own cgroup, `init`, the root having children with
/// controllers). Needs a docker host with cgroup v2; on cgroup v1 it says so and passes.
fn an_oom_kill_in_a_private_cgroup_namespace_is_reported(images: &Images) {
    let version = docker_ok(&["info", "--format", "{{.CgroupVersion}}"]);
    if version.stdout.trim() != "2" {
        // Written past the test harness's capture, so that it shows in every run.
        let _ = std::io::stderr().write_all(b"skipped: docker host has cgroup v1\n");
        return;
    }
    let run = TempDir::new();
    let volume = format!("{}:/run", run.0.display());
    let options = [
        "--cgroupns=private",
        "--privileged",
        "--volume",
        &volume,
        "--env",
        "PIDONE_SOCKET=/run/pidone.sock",
        "--env",
        "PIDONE_CONFIG=/cases/oom.toml",
    ];
    let ctr = Container::start("oom", &options, &images.services, &[]);
    ctr.wait_lines("web child ended", 1);
    let logs = ctr.wait_lines("a process of web was killed by the OOM killer", 1);
    assert!(!logs.contains("survived"), "the limit did not hold: {logs}");
    let hog = wait_for("hog to fail", || {
        let out = ctr.exec(&["/pidone", "status", "hog"]);
        out.stdout.contains("failed").then_some(out)
    });
    assert!(hog.stdout.contains("killed by the OOM killer"), "{hog:?}");
    let web = ctr.exec(&["/pidone", "status", "web"]);
    assert!(web.stdout.contains("running"), "{web:?}");
    let exec = ctr.exec(&["/bin/cat", "/proc/self/cgroup"]);
    assert_eq!(
        (exec.code, exec.stdout.trim()),
        (0, "0::/init"),
        "docker exec joins pidone's cgroup: {exec:?}"
    );
    let metrics = metrics_of(&run.0.join("pidone.sock"));
    for line in [
        "pidone_cgroups_managed 1",
        "pidone_service_oom_kills_total{service=\"hog\"} 1",
        "pidone_service_oom_kills_total{service=\"web\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
}

/// `GET /metrics` through a control socket.
fn metrics_of(socket: &Path) -> String {
    use std::io::Read;
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

// ---------------------------------------------------------------------------------------------
// An s6-overlay image: COPY pidone /init, its layout untouched (docs/s6-overlay.md)

fn an_s6_overlay_image_runs_with_pidone_as_init(images: &Images) {
    let ctr = Container::named("s6");
    let cmd = "echo CMD runs; exit 5";
    let out = docker(&[
        "run",
        "--name",
        &ctr.name,
        &images.s6.name,
        "/bin/sh",
        "-c",
        cmd,
    ]);
    assert_eq!(out.code, 5, "CMD's exit code is the container's: {out:?}");
    let logs = ctr.logs();
    let order = [
        "cont-init ran",
        "init-db got a b",
        "myapp up, greeting hi",
        "CMD runs",
        "web finish 256 15",
        "cont-finish ran",
    ];
    let at: Vec<Option<usize>> = order.iter().map(|line| logs.find(line)).collect();
    assert!(at.iter().all(Option::is_some), "{order:?} in:\n{logs}");
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "{order:?}, in this order:\n{logs}"
    );
}
