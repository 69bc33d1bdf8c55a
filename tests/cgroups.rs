//! Black-box tests of pidone managing cgroup v2 in a private cgroup namespace: a fresh cgroup
//! made on the host's cgroup2 hierarchy, entered, then `unshare --cgroup --mount` with cgroup2
//! mounted on /sys/fs/cgroup, as a container with a private, writable cgroup namespace has it.
//! Each service runs in its own cgroup, and stopping one kills its whole cgroup: a daemon that
//! escaped with setsid goes too. Needs root, util-linux and a cgroup2 mount on the host; where
//! there is none the tests say so and pass.

#[macro_use]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

in_both_modes!(a_stopped_service_takes_its_escaped_daemon_along);
in_both_modes!(unmanaged_cgroups_are_said_by_validate_status_and_metrics);
in_both_modes!(a_start_frozen_before_its_exec_holds_up_no_other_service);

/// The host's cgroup2 mount point, if any.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
    })
}

/// A fresh cgroup on the host, removed (children first) when dropped.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(dir: &Dir) -> Option<Cgroup> {
        let mount = cgroup2_mount()?;
        let name = dir.path().file_name()?.to_str()?.to_owned();
        let path = mount.join(name);
        fs::create_dir(&path).ok()?;
        Some(Cgroup(path))
    }

    fn procs(&self, sub: &str) -> Vec<u32> {
        let text = fs::read_to_string(self.0.join(sub).join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        fn remove(path: &Path) {
            for entry in fs::read_dir(path).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
            let _ = fs::remove_dir(path);
        }
        remove(&self.0);
    }
}

/// `pidone ARGS` in `mode` inside a private cgroup namespace rooted at `cgroup`.
fn in_namespace(mode: Mode, cgroup: &Cgroup, args: &[&str]) -> Command {
    let enter = format!("echo $$ > {}/cgroup.procs && ", cgroup.0.display());
    in_mounts(mode, &enter, "--cgroup", "cgroup2", args)
}

/// `pidone ARGS` in `mode` in a mount namespace of its own with a tmpfs on /sys/fs/cgroup: a
/// pidone that cannot manage cgroups on any host.
fn without_cgroup2(mode: Mode, args: &[&str]) -> Command {
    in_mounts(mode, "", "--mount", "tmpfs", args)
}

/// `pidone ARGS` in `mode`, after `before` (shell), in new namespaces (`unshare --mount` and
/// `namespace`) with a file system of type `fs` on /sys/fs/cgroup.
fn in_mounts(mode: Mode, before: &str, namespace: &str, fs: &str, args: &[&str]) -> Command {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let inner = format!(
        "mount -t {fs} none /sys/fs/cgroup && exec {} {}",
        pidone(),
        quoted.join(" ")
    );
    let mut unshare = vec!["unshare", namespace, "--mount"];
    if mode == Mode::Pid1 {
        unshare.extend(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    }
    let script = format!("{before}exec {} sh -c \"$0\"", unshare.join(" "));
    let mut command = Command::new("sh");
    command.args(["-c", &script, &inner]);
    command
}

fn a_stopped_service_takes_its_escaped_daemon_along(mode: Mode) {
    let dir = Dir::new();
    let Some(cgroup) = Cgroup::new(&dir) else {
        eprintln!("no writable cgroup2 hierarchy on this host: nothing to test");
        return;
    };
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "escaper"
memory_max = "64MB"
cgroup_optional = true
command = ["/bin/sh", "-c", '''
setsid sh -c 'echo $$$$ > @D/daemon.tmp; mv @D/daemon.tmp @D/daemon; exec sleep 1000' &
exec sleep 1000
''']

[[services]]
name = "keeper"
command = ["/bin/sleep", "1000"]
"#,
    );
    let validate = in_namespace(mode, &cgroup, &["validate", "--config", &config])
        .output()
        .expect("run validate");
    let said = String::from_utf8_lossy(&validate.stdout);
    assert!(said.contains("cgroup v2: managed"), "{said}");
    let socket = dir.join("ctl.sock");
    let socket = socket.to_str().expect("UTF-8");
    let args = ["--socket", socket, "--config", &config];
    let command = in_namespace(mode, &cgroup, &args);
    let mut run = Pidone::start_command(mode, &dir, command, None);
    run.wait_for("the daemon to write its pid, and keeper to start", |_| {
        dir.exists("daemon") && !cgroup.procs("services/keeper").is_empty()
    });
    let inner: u32 = dir.read("daemon").trim().parse().expect("a pid");
    // The daemon's pid as the host (and the cgroup files) see it: its NSpid ends with `inner`.
    let escaper = cgroup.procs("services/escaper");
    let daemon = escaper.iter().copied().find(|p| {
        let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let nspid = status.lines().find_map(|l| l.strip_prefix("NSpid:"));
        nspid.and_then(|n| n.split_whitespace().last()) == Some(&inner.to_string())
    });
    let daemon =
        daemon.unwrap_or_else(|| panic!("the daemon is not in its service's cgroup: {escaper:?}"));
    assert_eq!(cgroup.procs("init").len(), 1, "pidone alone in init");
    let out = client_as(&[], Path::new(socket), &["stop", "escaper"]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_until(DEADLINE, "the escaped daemon to be killed", || {
        stat(daemon).is_none_or(|(state, _)| state == 'Z')
    });
    assert!(cgroup.procs("services/escaper").is_empty());
    assert!(
        !cgroup.procs("services/keeper").is_empty(),
        "keeper untouched"
    );
    // A service a reload removes leaves no cgroup behind.
    dir.write(
        "pidone.toml",
        "[[services]]\nname = \"keeper\"\ncommand = [\"/bin/sleep\", \"1000\"]\n",
    );
    let escaper = cgroup.0.join("services/escaper");
    assert!(escaper.exists());
    let out = client_as(&[], Path::new(socket), &["reload"]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_until(DEADLINE, "the removed service's cgroup to go", || {
        !escaper.exists()
    });
}

/// Where pidone cannot manage cgroups (here: /sys/fs/cgroup a tmpfs, as on a cgroup v1 host),
/// `validate` says so and names the service running without its optional limit, status shows
/// that service's limit as not applied, and the metric says cgroups are not managed.
fn unmanaged_cgroups_are_said_by_validate_status_and_metrics(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "web"
memory_max = "20MB"
cgroup_optional = true
command = ["/bin/sleep", "1000"]

[[services]]
name = "db"
command = ["/bin/sleep", "1000"]
"#,
    );
    let validate = without_cgroup2(mode, &["validate", "--config", &config])
        .output()
        .expect("run validate");
    let said = String::from_utf8_lossy(&validate.stdout);
    assert_eq!(validate.status.code(), Some(0), "{said}");
    assert!(said.contains("cgroup v2: not managed: "), "{said}");
    let web = said.lines().find(|l| l.contains(" web "));
    assert!(
        web.is_some_and(|l| l.ends_with("  not applied: memory_max")),
        "{said}"
    );
    let socket = dir.join("ctl.sock");
    let socket = socket.to_str().expect("UTF-8");
    let command = without_cgroup2(mode, &["--socket", socket, "--config", &config]);
    let mut run = Pidone::start_command(mode, &dir, command, None);
    run.wait_for("web to run", |_| {
        service_of(Path::new(socket), "web").is_some_and(|s| s["state"] == "running")
    });
    let status = client_as(&[], Path::new(socket), &["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    let note = "web: memory_max not applied: pidone does not manage cgroups: ";
    let last = status.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with(note), "{status:?}");
    let web = service_of(Path::new(socket), "web").expect("web");
    let skipped = web["cgroup_skipped"].as_str().unwrap_or_default();
    assert!(last.ends_with(skipped) && !skipped.is_empty(), "{web}");
    let db = service_of(Path::new(socket), "db").expect("db");
    assert!(db.get("cgroup_skipped").is_none(), "{db}");
    let (code, metrics) = get(Path::new(socket), "/metrics").expect("metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("\npidone_cgroups_managed 0\n"),
        "{metrics}"
    );
}

/// Start-up pipelining (issue #17): a service whose child is frozen on its way to exec (it joins
/// its cgroup, frozen beforehand, before it execs) is STARTING, and holds up nothing else: the
/// next service starts and the control socket answers (pidone once waited for each exec before
/// forking the next). Thawed, it runs, and the shutdown is clean.
fn a_start_frozen_before_its_exec_holds_up_no_other_service(mode: Mode) {
    let dir = Dir::new();
    let Some(cgroup) = Cgroup::new(&dir) else {
        eprintln!("no writable cgroup2 hierarchy on this host: nothing to test");
        return;
    };
    let stuck = cgroup.0.join("services/stuck");
    fs::create_dir_all(&stuck).expect("mkdir the cgroup");
    if fs::write(stuck.join("cgroup.freeze"), "1").is_err() {
        eprintln!("no cgroup freezer on this host: nothing to test");
        return;
    }
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "stuck"
command = ["/bin/sh", "-c", "touch @D/stuck; exec sleep 1000"]

[[services]]
name = "free"
command = ["/bin/sh", "-c", "touch @D/free; exec sleep 1000"]
"#,
    );
    let socket = dir.join("ctl.sock");
    let socket = socket.to_str().expect("UTF-8");
    let args = ["--socket", socket, "--config", &config];
    let mut run = Pidone::start_command(mode, &dir, in_namespace(mode, &cgroup, &args), None);
    let state = |name: &str| {
        service_of(Path::new(socket), name).map(|s| s["state"].as_str().unwrap_or("").to_string())
    };
    run.wait_for("free to run while stuck is frozen", |_| {
        dir.exists("free") && state("free").as_deref() == Some("running")
    });
    assert_eq!(state("stuck").as_deref(), Some("starting"));
    assert!(!dir.exists("stuck"), "the frozen child cannot have exec'd");
    fs::write(stuck.join("cgroup.freeze"), "0").expect("thaw");
    run.wait_for("stuck to run once thawed", |_| {
        dir.exists("stuck") && state("stuck").as_deref() == Some("running")
    });
    let out = client_as(&[], Path::new(socket), &["shutdown"]);
    assert_eq!(out.code, 0, "{out:?}");
    run.wait().assert_code(0, "the shutdown");
}
