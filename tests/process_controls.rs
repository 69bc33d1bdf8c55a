//! Black-box tests of a service's process controls, read from the service's side: its resource
//! limits (`/proc/self/limits`), umask, no_new_privs and capability sets (`/proc/self/status`),
//! OOM score and nice value, `[defaults]` applied under a service's own keys, secrets visible to
//! the service and nowhere else, a setting that cannot be applied failing the start, and bad
//! values refused at load. pidone runs as a true PID 1 and as a plain child. Needs root.

#[macro_use]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::*;

in_both_modes!(
    limits_umask_nice_and_oom_score_reach_the_service,
    capabilities_are_kept_by_root_and_raised_ambient_for_a_user,
    secrets_reach_the_service_and_nowhere_else,
    a_setting_that_cannot_be_applied_fails_the_start,
);

/// The soft and hard values of one line of `/proc/self/limits` (`Max open files  1000  2000
/// files`).
fn limit(limits: &str, name: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in:\n{limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_owned(), fields[1].to_owned())
}

/// The value of `Field:` in a copy of `/proc/self/status`.
fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
        .trim()
        .to_owned()
}

fn limits_umask_nice_and_oom_score_reach_the_service(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[defaults]
rlimits = { nofile = [1000, 2000], core = 0 }
umask = "0027"
no_new_privs = true
nice = 3

[[services]]
name = "probe"
type = "oneshot"
rlimits = { stack = "16MB", core = "1MB" }
oom_score_adj = 500
nice = 10
command = ["/bin/sh", "-c", '''
cat /proc/self/limits > @D/limits
cat /proc/self/status > @D/status
cat /proc/self/oom_score_adj > @D/oom
cut -d' ' -f19 /proc/self/stat > @D/nice
''']

[[services]]
name = "plain"
type = "oneshot"
umask = "0002"
no_new_privs = false
command = ["/bin/sh", "-c", "cat /proc/self/status > @D/plain"]
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait().assert_code(0, "two successful oneshots");
    let limits = dir.read("limits");
    assert_eq!(
        limit(&limits, "Max open files"),
        ("1000".into(), "2000".into())
    );
    let mb = (1u64 << 20).to_string();
    assert_eq!(limit(&limits, "Max core file size"), (mb.clone(), mb));
    let stack = (16u64 << 20).to_string();
    assert_eq!(limit(&limits, "Max stack size"), (stack.clone(), stack));
    let status = dir.read("status");
    assert_eq!(field(&status, "Umask"), "0027");
    assert_eq!(field(&status, "NoNewPrivs"), "1");
    assert_eq!(dir.read("oom").trim(), "500");
    assert_eq!(
        dir.read("nice").trim(),
        "10",
        "the service's nice beats the default"
    );
    let plain = dir.read("plain");
    assert_eq!(field(&plain, "Umask"), "0002");
    assert_eq!(field(&plain, "NoNewPrivs"), "0");
}

/// A Python one-liner that binds the first free privileged port on 127.0.0.1 and prints
/// `bound`, or `denied` when the kernel refuses for want of CAP_NET_BIND_SERVICE.
const BIND: &str = "import errno, socket
for port in range(600, 1000):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
        print('bound'); break
    except OSError as e:
        if e.errno == errno.EACCES:
            print('denied'); break";

fn capabilities_are_kept_by_root_and_raised_ambient_for_a_user(mode: Mode) {
    let dir = Dir::new();
    let out = dir.join("out");
    fs::create_dir(&out).expect("mkdir out");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
    fs::write(dir.join("bind.py"), BIND).expect("write bind.py");
    let config = dir.write(
        "pidone.toml",
        &format!(
            r#"
[[services]]
name = "root"
type = "oneshot"
capabilities = ["NET_BIND_SERVICE", "CAP_kill"]
command = ["/bin/sh", "-c", "cat /proc/self/status > @D/out/root"]

[[services]]
name = "user"
type = "oneshot"
user = "nobody"
capabilities = ["NET_BIND_SERVICE"]
command = ["/bin/sh", "-c", "cat /proc/self/status > @D/out/user; {py} @D/bind.py > @D/out/user-bind"]

[[services]]
name = "plain-user"
type = "oneshot"
user = "nobody"
command = ["/bin/sh", "-c", "{py} @D/bind.py > @D/out/plain-bind"]
"#,
            py = python()
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait().assert_code(0, "three successful oneshots");
    let kept = "0000000000000420"; // NET_BIND_SERVICE (10) and KILL (5)
    let root = dir.read("out/root");
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(field(&root, set), kept, "root: {set}");
    }
    let user = dir.read("out/user");
    let bind = "0000000000000400";
    for set in ["CapAmb", "CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(&user, set), bind, "nobody: {set}");
    }
    let unprivileged: u32 = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .map_or(1024, |s| s.trim().parse().unwrap_or(1024));
    if unprivileged > 600 {
        assert_eq!(dir.read("out/user-bind").trim(), "bound");
        assert_eq!(dir.read("out/plain-bind").trim(), "denied", "the control");
    }
}

fn secrets_reach_the_service_and_nowhere_else(mode: Mode) {
    let dir = Dir::new();
    dir.write("db_password", "s3cr3t-pw-1\n");
    dir.write("token", "tok-XYZ-2");
    let config = r#"
[[services]]
name = "db"
description = "holds the secrets"
secrets = { DB_PASSWORD = "@D/db_password" }
env_from_files = ["API_TOKEN"]
env = { API_TOKEN_FILE = "@D/token" }
command = ["/bin/sh", "-c", '''
printf '%s|%s|%s' "$DB_PASSWORD" "$API_TOKEN" "$${API_TOKEN_FILE-unset}" > @D/seen.tmp
mv @D/seen.tmp @D/seen
echo started
exec sleep 1000
''']
"#;
    // As start_on, with every message pidone has (-vv): none may carry a secret.
    let config = dir.write("pidone.toml", config);
    let socket = dir.join("run/ctl.sock");
    let args = [
        "-vv",
        "--socket",
        socket.to_str().expect("UTF-8"),
        "--config",
        &config,
    ];
    let mut run = Pidone::start(mode, &dir, &args, &[]);
    run.wait_for("the control socket to answer", |_| {
        get(&socket, "/v1/services").is_some_and(|(status, _)| status == 200)
    });
    let mut d = Daemon { run, socket, dir };
    d.run.wait_for("the service to write what it sees", |_| {
        d.dir.exists("seen")
    });
    assert_eq!(d.dir.read("seen"), "s3cr3t-pw-1|tok-XYZ-2|unset");
    let json = d.ok(&["status", "--json"]).stdout;
    let text = d.ok(&["status"]).stdout;
    assert!(
        json.contains("\"description\":\"holds the secrets\""),
        "{json}"
    );
    assert!(text.contains("holds the secrets"), "{text}");
    // Read again at each start.
    fs::remove_file(d.dir.join("seen")).expect("rm seen");
    d.dir.write("db_password", "s3cr3t-pw-3\n");
    d.ok(&["restart", "db"]);
    d.run
        .wait_for("the restarted service to write", |_| d.dir.exists("seen"));
    assert_eq!(d.dir.read("seen"), "s3cr3t-pw-3|tok-XYZ-2|unset");
    let config = d.dir.join("pidone.toml");
    let validate = run_plain(&["validate", "--config", config.to_str().expect("UTF-8")]);
    validate.assert_code(0, "validate");
    let logs = d.ok(&["logs", "db"]).stdout;
    assert!(logs.contains("started"), "{logs}");
    let everywhere = [
        ("status --json", json),
        ("status", text),
        ("validate", validate.stdout + &validate.stderr),
        ("logs", logs),
        ("pidone's output", d.run.stdout() + &d.run.stderr()),
    ];
    for (what, out) in everywhere {
        for secret in ["s3cr3t", "tok-XYZ"] {
            assert!(!out.contains(secret), "{secret} in {what}:\n{out}");
        }
    }
}

fn a_setting_that_cannot_be_applied_fails_the_start(mode: Mode) {
    // Above fs.nr_open, even root cannot raise the descriptor limit.
    let nr_open: u64 = fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("read nr_open")
        .trim()
        .parse()
        .expect("a number");
    let config = format!(
        r#"
[[services]]
name = "greedy"
restart = "never"
rlimits = {{ nofile = {} }}
command = ["/bin/sh", "-c", "touch @D/ran"]

[[services]]
name = "keeper"
command = ["/bin/sleep", "1000"]

[[services]]
name = "late-secret"
restart = "never"
pre_script = ["/bin/true"]
secrets = {{ PW = "@D/never-written" }}
command = ["/bin/sh", "-c", "touch @D/ran"]
"#,
        nr_open + 1
    );
    let mut d = Daemon::start(mode, &config);
    let greedy = d.wait_state("greedy", "failed");
    assert_eq!(
        greedy["reason"],
        "start failed: setrlimit NOFILE: Operation not permitted"
    );
    let late = d.wait_state("late-secret", "failed");
    let reason = late["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("start failed: secret PW: cannot read ")
            && reason.contains("never-written"),
        "{reason}"
    );
    assert!(!d.dir.exists("ran"), "neither service may run");
}

as_pid1!(bad_controls_are_refused_at_load);

fn bad_controls_are_refused_at_load(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "bad.toml",
        r#"[[services]]
name = "web"
command = ["/bin/sleep", "1000"]
rlimits = { nofiles = 10 }
capabilities = ["NET_BIND_SERVIC"]
umask = "999"
secrets = { PW = "@D/missing" }
"#,
    );
    let expected = [
        (4, "rlimits.nofiles"),
        (5, "capabilities"),
        (6, "umask"),
        (7, "secrets.PW"),
    ];
    let check = |what: &str, outcome: &Outcome| {
        outcome.assert_code(2, what);
        for (line, key) in expected {
            let place = format!("{config}:{line}: service \"web\"");
            assert!(
                (outcome.stderr.lines()).any(|l| l.contains(&place) && l.contains(key)),
                "{what}: no error naming {place} and key {key}:\n{}",
                outcome.stderr
            );
        }
    };
    check("validate", &run_plain(&["validate", "--config", &config]));
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    check("run", &run.wait());
}
