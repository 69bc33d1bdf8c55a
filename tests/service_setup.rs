//! Black-box tests of what a service is started with and what configurations pidone accepts: its
//! user (uid, gid, groups), its environment (precedence and expansion), numbered instances,
//! go-overlay's `services.toml` run unchanged, and a bad configuration refused before anything
//! starts. pidone runs as a true PID 1 and, for some scenarios, as a plain child. Needs root and
//! util-linux.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::*;

as_pid1!(
    user_nobody_drops_uid_gid_and_groups,
    env_precedence_and_expansion,
    instances_get_numbered_names_and_pidone_instance,
    go_overlay_services_toml_runs_unchanged,
    bad_config_is_refused_before_anything_starts,
);

// ---------------------------------------------------------------------------------------------
// Users and environment

fn user_nobody_drops_uid_gid_and_groups(mode: Mode) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user in /etc/passwd")
        .split(':')
        .collect();
    let (uid, gid, home) = (entry[2], entry[3], entry[5]);
    let mut groups: BTreeSet<String> = BTreeSet::from([gid.to_owned()]);
    for line in fs::read_to_string("/etc/group").unwrap_or_default().lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 4 && fields[3].split(',').any(|m| m == "nobody") {
            groups.insert(fields[2].to_owned());
        }
    }

    let dir = Dir::new();
    let out = dir.join("out");
    fs::create_dir(&out).expect("mkdir out");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "unprivileged"
type = "oneshot"
user = "nobody"
workdir = "@D/out"
command = ["/bin/sh", "-c", '''
grep -E '^(Uid|Gid|Groups):' /proc/self/status > status
echo "USER=$USER HOME=$HOME LOGNAME=$LOGNAME PWD=$(pwd)" >> status
''']
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait().assert_code(0, "one successful oneshot");
    let status = dir.read("out/status");
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} line in:\n{status}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(field("Uid"), [uid; 4], "real, effective, saved, fs uid");
    assert_eq!(field("Gid"), [gid; 4], "real, effective, saved, fs gid");
    assert_eq!(
        field("Groups").into_iter().collect::<BTreeSet<_>>(),
        groups,
        "supplementary groups: nobody's primary group and its /etc/group memberships only"
    );
    assert!(
        status.contains(&format!(
            "USER=nobody HOME={home} LOGNAME=nobody PWD={}/out",
            dir.s()
        )),
        "user environment or workdir wrong:\n{status}"
    );
}

fn env_precedence_and_expansion(mode: Mode) {
    let dir = Dir::new();
    fs::create_dir(dir.join("base")).expect("mkdir");
    dir.write(
        "base.env",
        "# a comment\n\
         \n\
         PB=file\n\
         PC=file\n\
         export PE=\"quoted value\"\n\
         PH=from-file\n\
         URL=http://x/#a\n",
    );
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "show"
type = "oneshot"
env_file = "@D/${BASE}.env"
workdir = "@D/${BASE}"
env = { PC = "env", PF = "${BASE}-x", PG = "${SVC_TEST_UNSET:-dflt}", PI = "${PH}" }
command = ["/bin/sh", "-c", '''
printf '%s\n' "PA=$PA" "PB=$PB" "PC=$PC" "PE=$PE" "PF=$PF" "PG=$PG" "PI=$PI" "URL=$URL" \
  "1=$1" "2=$2" "3=$3" "PWD=$(pwd)" > @D/env.out
''']
args = ["argv0", "${PC}", "${PF}", "${PB}"]
"#,
    );
    let mut run = Pidone::start(
        mode,
        &dir,
        &["--config", &config],
        &[
            ("PA", "pidone"),
            ("PB", "pidone"),
            ("PC", "pidone"),
            ("BASE", "base"),
        ],
    );
    let outcome = run.wait();
    outcome.assert_code(0, "one successful oneshot");
    let expected = format!(
        "PA=pidone\nPB=file\nPC=env\nPE=quoted value\nPF=base-x\nPG=dflt\nPI=from-file\n\
         URL=http://x/#a\n1=env\n2=base-x\n3=file\nPWD={}/base\n",
        dir.s()
    );
    assert_eq!(dir.read("env.out"), expected, "pidone env < env_file < env");
}

fn instances_get_numbered_names_and_pidone_instance(mode: Mode) {
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "api"
instances = 3
env = { PORT = "300${PIDONE_INSTANCE}" }
command = ["/bin/sh", "-c", '''
echo "up $PIDONE_INSTANCE $PORT $1"
@D/stamp api-$PIDONE_INSTANCE.up
exec sleep 1000
''', "sh"]
args = ["--port=300${PIDONE_INSTANCE}"]

[[services]]
name = "proxy"
depends_on = "api"
wait_after = "1s"
command = ["/bin/sh", "-c", "@D/stamp proxy.up; exec sleep 1000"]
"#,
    );
    let validate = run_plain(&["validate", "--config", &config]);
    validate.assert_code(0, "validate a config with instances");
    let first = |name: &str| {
        validate
            .stdout
            .lines()
            .position(|l| words(l).any(|w| w == name))
            .unwrap_or_else(|| panic!("{name} not listed by validate:\n{}", validate.stdout))
    };
    for i in 1..=3 {
        assert!(
            first(&format!("api-{i}")) < first("proxy"),
            "validate: api-{i} should come before proxy:\n{}",
            validate.stdout
        );
    }

    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait_for("proxy to start", |_| dir.exists("proxy.up"));
    run.wait_for("the three instances' output", |run| {
        let stdout = run.stdout();
        (1..=3).all(|i| {
            prefixed(&stdout)
                .contains(&(format!("api-{i}"), format!("up {i} 300{i} --port=300{i}")))
        })
    });
    for i in 1..=3 {
        assert_before(&dir, &format!("api-{i}.up"), "proxy.up");
    }
    assert!(!dir.exists("api-4.up") && !dir.exists("api-0.up"));
    run.signal("TERM");
    run.wait();
}

// ---------------------------------------------------------------------------------------------
// go-overlay compatibility and config errors

fn go_overlay_services_toml_runs_unchanged(mode: Mode) {
    // The shipped example, as is: three `sleep 1000` longruns come up, TERM ends them.
    let example = format!("{}/examples/services.toml", env!("CARGO_MANIFEST_DIR"));
    run_plain(&["validate", "--config", &example]).assert_code(0, "validate the example");
    let dir = Dir::new();
    let mut run = Pidone::start_config(mode, &dir, &example, &[]);
    run.wait_for("php-fpm, nginx and queue-worker to run", |run| {
        run.processes()
            .into_iter()
            .filter(|&p| cmdline(p) == "/bin/sleep 1000")
            .count()
            == 3
    });
    run.signal("TERM");
    run.wait();

    // A go-overlay file using its own forms (oneshot = true, a string depends_on, a
    // [services.wait_after] sub-table, pos_script, integer durations, programs without a
    // shell), with stand-ins that leave timestamps.
    let dir = Dir::new();
    dir.script("setup.sh", "#!/bin/sh\n@D/stamp setup.done\n");
    dir.script(
        "php-fpm.sh",
        "#!/bin/sh\ntrap '@D/stamp php.stop; kill $! 2>/dev/null; exit 0' TERM\n\
         echo \"$PHP_MEMORY_LIMIT $1\" > @D/php.args\n@D/stamp php.up\nsleep 1000 & wait\n",
    );
    dir.script(
        "nginx.sh",
        "#!/bin/sh\ntrap '@D/stamp nginx.stop; kill $! 2>/dev/null; exit 0' TERM\n\
         echo \"$1 $2\" > @D/nginx.args\n@D/stamp nginx.up\nsleep 1000 & wait\n",
    );
    dir.script("nginx-post.sh", "#!/bin/sh\n@D/stamp post.done\n");
    let config = dir.write(
        "services.toml",
        r#"[timeouts]
post_script_timeout = 1
service_shutdown_timeout = 5
global_shutdown_timeout = 15
dependency_wait_timeout = 60

[[services]]
name = "setup"
command = "@D/setup.sh"
oneshot = true

[[services]]
name = "php-fpm"
command = "@D/php-fpm.sh"
args = ["--nodaemonize"]
depends_on = "setup"
required = true
restart = "on-failure"
restart_delay = 2
max_restarts = 5
env = { PHP_MEMORY_LIMIT = "256M" }

[[services]]
name = "nginx"
command = "@D/nginx.sh"
args = ["-g", "daemon off;"]
depends_on = ["php-fpm", "setup"]
pos_script = "@D/nginx-post.sh"
required = true

[services.wait_after]
php-fpm = 1
"#,
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    run.wait_for("nginx's pos_script to run", |_| dir.exists("post.done"));
    assert_before(&dir, "setup.done", "php.up");
    // nginx waits 1 s after php-fpm, which started after setup was done.
    assert_gap(&dir, "setup.done", "nginx.up", 1000);
    // pos_script runs post_script_timeout (1 s) after nginx is up.
    assert_gap(&dir, "setup.done", "post.done", 2000);
    assert_eq!(dir.read("php.args"), "256M --nodaemonize\n");
    assert_eq!(dir.read("nginx.args"), "-g daemon off;\n");
    run.signal("TERM");
    run.wait();
    assert_before(&dir, "nginx.stop", "php.stop");
}

fn bad_config_is_refused_before_anything_starts(mode: Mode) {
    let dir = Dir::new();
    // Line numbers matter: the errors must name them.
    let config = dir.write(
        "bad.toml",
        r#"[[services]]
name = "good"
type = "oneshot"
command = ["/bin/sh", "-c", "touch @D/started"]

[[services]]
name = "web"
command = ["/bin/sleep", "1000"]
restrat = "always"
depends_on = ["dbb"]
stop_timeout = "10x"
"#,
    );
    let expected = [(9, "restrat"), (10, "depends_on"), (11, "stop_timeout")];
    let check = |what: &str, outcome: &Outcome| {
        outcome.assert_code(2, what);
        for (line, key) in expected {
            let place = format!("{config}:{line}");
            assert!(
                outcome
                    .stderr
                    .lines()
                    .any(|l| l.contains(&place) && l.contains("\"web\"") && l.contains(key)),
                "{what}: no error naming {place}, service \"web\" and key {key}:\n{}",
                outcome.stderr
            );
        }
        assert!(
            outcome.stderr.contains("did you mean \"restart\"") && outcome.stderr.contains("dbb"),
            "{what}: errors lack detail:\n{}",
            outcome.stderr
        );
    };
    check("validate", &run_plain(&["validate", "--config", &config]));
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    check("run", &run.wait());
    assert!(
        !dir.exists("started"),
        "a service was started from a config with errors"
    );

    // A config whose program does not exist is refused the same way.
    let missing = dir.write(
        "missing.toml",
        "[[services]]\nname = \"ghost\"\ncommand = \"/nonexistent/ghostd\"\n",
    );
    let outcome = Pidone::start_config(mode, &dir, &missing, &[]).wait();
    outcome.assert_code(2, "a program that cannot be found");
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.contains(&format!("{missing}:3")) && l.contains("ghost")),
        "no error naming {missing}:3 and the service:\n{}",
        outcome.stderr
    );
}

/// A real-time offset that leaves the real-time range (`RTMAX--5` once read as signal 69) is
/// refused at load, with file, line and key, not accepted and found unsendable at stop time.
#[test]
fn a_realtime_signal_out_of_range_is_refused_at_load() {
    let dir = Dir::new();
    let config = dir.write(
        "bad.toml",
        "[[services]]\nname = \"web\"\ncommand = [\"/bin/sleep\", \"1000\"]\nstop_signal = \"RTMAX--5\"\n",
    );
    let outcome = run_plain(&["validate", "--config", &config]);
    outcome.assert_code(2, "stop_signal = \"RTMAX--5\"");
    assert!(
        outcome
            .stderr
            .lines()
            .any(|l| l.contains(&format!("{config}:4")) && l.contains("stop_signal")),
        "no error naming {config}:4 and stop_signal:\n{}",
        outcome.stderr
    );
}
