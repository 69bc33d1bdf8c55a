//! Black-box tests that checks block nothing and are never mixed up: a tcp check that never
//! connects blocks neither supervision nor the API, reloads never hand one service's probe result
//! to another, and a check pidone cannot fork does not count against its service. "Did not block"
//! is observed against a witness: a crashing service restarted every 100 ms is the clock. Needs
//! root and util-linux; the fork test also a pids cgroup (v1).

#[macro_use]
mod support;

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use support::*;

in_both_modes!(
    never_connecting_check_blocks_neither_supervision_nor_the_api,
    reloads_never_hand_one_services_probe_result_to_another,
);

as_pid1!(a_check_pidone_cannot_fork_does_not_count_against_the_service);

// ---------------------------------------------------------------------------------------------
// 5. A check that never connects blocks nothing.

/// A TCP port on 127.0.0.1 where connecting hangs: a listener with a backlog of 0 that never
/// accepts, its one queue slot taken by a connection of ours, so the kernel drops further SYNs.
struct Blackhole {
    port: u16,
    _listener: TcpListener,
    _filler: Vec<TcpStream>,
}

impl Blackhole {
    fn new() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        // SAFETY: listen(2) on a socket this function owns; it changes only its backlog.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0)");
        let address = listener.local_addr().expect("address");
        let mut filler = Vec::new();
        for _ in 0..4 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(300)) {
                Ok(stream) => filler.push(stream),
                Err(_) => {
                    return Blackhole {
                        port: address.port(),
                        _listener: listener,
                        _filler: filler,
                    };
                }
            }
        }
        panic!("connecting to a full listen queue does not hang here: the test cannot work");
    }
}

fn never_connecting_check_blocks_neither_supervision_nor_the_api(mode: Mode) {
    let hole = Blackhole::new();
    let port = hole.port;
    // stuck's ready check would hang for 30 s, steady's alive check for 1 s at a time.
    let config = format!(
        r#"{clock}
[[services]]
name = "stuck"
command = ["/bin/sleep", "1000"]
start_timeout = "60s"

[[services.checks]]
name = "hole"
tcp = "127.0.0.1:{port}"
level = "ready"
period = "200ms"
timeout = "30s"

[[services]]
name = "steady"
command = ["/bin/sleep", "1001"]

[[services.checks]]
name = "hole"
tcp = "127.0.0.1:{port}"
period = "200ms"
timeout = "1s"
on_failure = "ignore"
"#,
        clock = crasher("clock")
    );
    let mut d = Daemon::start_in(mode, Dir::new(), &config);
    let clock = d.wait_service("clock", "a first restart", |s| int(&s["restarts"]) >= 1);
    let before = int(&clock["restarts"]);
    // Each poll is an API request; a blocked loop would answer none for 30 s.
    d.wait_service("clock", "five more restarts", |s| {
        int(&s["restarts"]) >= before + 5
    });
    let stuck = d.service("stuck");
    assert_eq!(stuck["state"], "starting", "{stuck}");
    assert_ne!(check_of(&stuck, "hole")["status"], "passing", "{stuck}");

    // The connect really hangs (it is not refused): steady's check times out.
    let steady = d.wait_service("steady", "its check to time out", |s| {
        int(&check_of(s, "hole")["failures"]) >= 1
    });
    let check = check_of(&steady, "hole");
    assert_eq!(check["kind"], "tcp", "{steady}");
    assert!(
        check["last"].as_str().is_some_and(mentions_timeout),
        "last says it timed out: {check}"
    );
    let clock = d.service("clock");
    let before = int(&clock["restarts"]);
    d.wait_service("clock", "three more restarts", |s| {
        int(&s["restarts"]) >= before + 3
    });
    assert_eq!(d.service("stuck")["state"], "starting");
    assert_eq!(d.service("steady")["state"], "running");
    let (code, out) = d.client(&["status"]).code_text();
    assert_eq!(code, 0, "{out}");
    drop(hole);
}

/// Regression (services were numbered by position): a SIGHUP handled between poll() and the
/// dispatch of its results renumbered the services, so a refused probe's readiness reached the
/// run of another service whose connect still hung, which then read SO_ERROR = 0 and passed
/// ("connected"). Ten services whose exec checks fail every 10 ms (each run's end is a poll
/// result) come and go with every reload, shifting the ten whose checks hang; none of those may
/// ever pass.
fn reloads_never_hand_one_services_probe_result_to_another(mode: Mode) {
    let hole = Blackhole::new();
    let hung: String = (0..10)
        .map(|i| {
            format!(
                "[[services]]\nname = \"hung{i}\"\ncommand = [\"/bin/sleep\", \"100{i}\"]\nstart_timeout = \"1h\"\n\
                 [[services.checks]]\ntcp = \"127.0.0.1:{}\"\nlevel = \"ready\"\nperiod = \"10ms\"\ntimeout = \"1h\"\n\n",
                hole.port
            )
        })
        .collect();
    let failing: String = (0..10)
        .map(|i| {
            format!(
                "[[services]]\nname = \"failing{i}\"\ncommand = [\"/bin/sleep\", \"200{i}\"]\nstart_timeout = \"1h\"\n\
                 [[services.checks]]\nexec = [\"/bin/false\"]\nlevel = \"ready\"\nperiod = \"10ms\"\ntimeout = \"1h\"\n\n"
            )
        })
        .collect();
    let with = format!("{failing}{hung}");
    let mut d = Daemon::start_in(mode, Dir::new(), &hung);
    let file = d.dir.join("pidone.toml");
    for round in 0..50 {
        let (config, present) = if round % 2 == 0 {
            (&with, true)
        } else {
            (&hung, false)
        };
        std::fs::write(&file, config).expect("write the config");
        d.run.signal("HUP");
        let socket = d.socket.clone();
        d.run.wait_for("the reload to take effect", |_| {
            service_of(&socket, "failing0").is_some() == present
        });
    }
    for i in 0..10 {
        let svc = d.service(&format!("hung{i}"));
        assert_eq!(svc["state"], "starting", "{svc}");
        let check = check_of(&svc, "tcp");
        assert_ne!(check["status"], "passing", "{svc}");
        assert_eq!(int(&check["consecutive_successes"]), 0, "{svc}");
    }
    drop(hole);
}

/// Moves a process into a fresh pids cgroup (v1) whose limit the test sets; puts what is left
/// back into the root cgroup and removes it when dropped.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(pid: u32) -> Option<PidsCgroup> {
        let root = PathBuf::from("/sys/fs/cgroup/pids");
        let path = root.join(format!("pidone-test-{}-{pid}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let group = PidsCgroup(path);
        std::fs::write(group.0.join("cgroup.procs"), pid.to_string()).ok()?;
        Some(group)
    }

    fn limit(&self, max: &str) {
        std::fs::write(self.0.join("pids.max"), max).expect("write pids.max");
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            let _ = std::fs::write("/sys/fs/cgroup/pids/cgroup.procs", pid);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// pidone's own failure to start a probe (fork fails with EAGAIN under a pids limit) is said in
/// the check's last output and the log, and counts neither as a failure nor as a run: the
/// healthy service is not restarted, and the check passes again once pidone can fork.
fn a_check_pidone_cannot_fork_does_not_count_against_the_service(mode: Mode) {
    let dir = Dir::new();
    let config = r#"
[[services]]
name = "web"
command = ["/bin/sleep", "1000"]

[[services.checks]]
exec = "true"
period = "50ms"
failure_threshold = 1
on_failure = "restart"
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    let up = d.wait_service("web", "its check passing", |s| {
        check_of(s, "exec")["status"] == "passing"
    });
    let Some(cgroup) = PidsCgroup::new(d.run.pid()) else {
        eprintln!("skipped: no pids cgroup to limit pidone's forks");
        return;
    };
    // pidone alone in its cgroup: no fork succeeds.
    cgroup.limit("1");
    d.run.wait_for("runs not started, in a sum", |run| {
        run.stderr().contains("more check runs not started")
    });
    let web = d.service("web");
    cgroup.limit("max");
    let exec = check_of(&web, "exec");
    assert!(
        exec["last"].as_str().is_some_and(|l| l.contains("not run")),
        "{exec}"
    );
    assert_eq!(exec["consecutive_failures"], 0, "{exec}");
    assert_eq!(exec["failures"], 0, "{exec}");
    assert_eq!(
        (web["pid"].clone(), web["restarts"].clone()),
        (up["pid"].clone(), up["restarts"].clone())
    );
    let runs = int(&exec["runs"]);
    d.wait_service("web", "its check running again", |s| {
        int(&check_of(s, "exec")["runs"]) > runs
    });
    drop(cgroup);
    d.terminate();
}
