//! Black-box tests of start-up pipelining (issue #17): pidone forks every service without waiting
//! for its exec, and reads each child's exec report from its poll loop. What users see must not
//! change: an exec that fails at run time (a script whose interpreter is missing, or not
//! executable) is the same failed start with the same reason, log line and restarts; many
//! services all start; and a shutdown that comes while starts are in flight leaves nothing.

#[macro_use]
mod support;

use support::*;

in_both_modes!(
    an_exec_error_is_the_failed_start_it_always_was,
    two_hundred_services_start_and_stop,
    a_shutdown_during_the_starts_leaves_no_process,
);

/// `count` longruns `s0`… that each create `@D/up/sI`, then sleep.
fn many(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "[[services]]\nname = \"s{i}\"\ncommand = [\"/bin/sh\", \"-c\", \"touch @D/up/s{i}; exec sleep 1000\"]\n"
            )
        })
        .collect()
}

fn an_exec_error_is_the_failed_start_it_always_was(mode: Mode) {
    let dir = Dir::new();
    // Found at load (the script exists and is executable); its exec fails at run time.
    dir.script("noint.sh", "#!/nonexistent/interpreter\n");
    dir.write("plain", "");
    let denied = format!("#!{}/plain\n", dir.s());
    dir.script("denied.sh", &denied);
    let config = r#"
[[services]]
name = "noint"
restart = "never"
command = ["@D/noint.sh"]

[[services]]
name = "denied"
restart = "never"
command = ["@D/denied.sh"]

[[services]]
name = "retried"
restart_delay = "10ms"
max_restarts = 2
command = ["@D/noint.sh"]

[[services]]
name = "keeper"
command = ["/bin/sleep", "1000"]
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    let noint = d.wait_state("noint", "failed");
    assert_eq!(noint["reason"], "start failed: not found");
    assert!(noint["pid"].is_null(), "{noint}");
    let denied = d.wait_state("denied", "failed");
    assert_eq!(
        denied["reason"],
        "start failed: permission denied (not executable, or a directory)"
    );
    let retried = d.wait_state("retried", "failed");
    assert_eq!(retried["restarts"], 2, "{retried}");
    d.wait_state("keeper", "running");
    let stderr = d.run.stderr();
    for line in [
        "noint: starting -> failed: start failed: not found",
        "denied: starting -> failed: start failed: permission denied (not executable, or a directory)",
    ] {
        assert!(stderr.contains(line), "no {line:?} in:\n{stderr}");
    }
    // The failed children (exit 127) are nobody's: no service exit, no orphan.
    assert!(!stderr.contains("ended: exit code 127"), "{stderr}");
    let metrics = d.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l == "pidone_orphans_reaped_total 0"),
        "{metrics}"
    );
    // Failed services make pidone's exit status 1, as they always did.
    d.shutdown()
        .assert_code(1, "a shutdown with failed services");
}

fn two_hundred_services_start_and_stop(mode: Mode) {
    let dir = Dir::new();
    std::fs::create_dir(dir.join("up")).expect("mkdir up");
    let mut d = Daemon::start_in(mode, dir, &many(200));
    let up = d.dir.join("up");
    d.run.wait_for("200 services to run", |_| {
        std::fs::read_dir(&up).map_or(0, |entries| entries.count()) == 200
    });
    let services = d.services();
    let running = services.iter().filter(|s| s["state"] == "running").count();
    assert_eq!(running, 200, "{services:?}");
    assert!(services.iter().all(|s| s["pid"].as_i64().is_some()));
    d.terminate();
}

fn a_shutdown_during_the_starts_leaves_no_process(mode: Mode) {
    let dir = Dir::new();
    std::fs::create_dir(dir.join("up")).expect("mkdir up");
    let config = dir.write("pidone.toml", &many(200));
    let socket = dir.join("ctl.sock");
    let socket = socket.to_str().expect("UTF-8");
    let mut run = Pidone::start(mode, &dir, &["--socket", socket, "--config", &config], &[]);
    // The socket is bound before the first service forks: TERM now finds starts in flight.
    run.wait_for("the control socket", |_| dir.exists("ctl.sock"));
    run.signal("TERM");
    run.wait().assert_code(0, "a shutdown during the starts");
    assert_eq!(run.processes(), Vec::<u32>::new(), "left behind");
}
