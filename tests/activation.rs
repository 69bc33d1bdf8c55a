//! Black-box tests of on-demand services and socket activation, with real clients: the first
//! connection starts an on-demand service (TCP and unix sockets, fds 3… with LISTEN_FDS,
//! LISTEN_FDNAMES and its own LISTEN_PID), a connection made before the service exists gets its
//! answer, nothing is lost through a crash and restart, `idle_timeout` stops it and the next
//! connection starts it again, a dependent starts it; an address in use is refused at start.
//! Needs root, util-linux and python3.

#[macro_use]
mod support;

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use support::*;

in_both_modes!(
    the_first_connection_starts_an_on_demand_service_and_restarts_lose_nothing,
    a_connection_before_the_service_exists_is_answered,
    idle_timeout_stops_it_and_a_dependent_starts_it,
    with_a_daily_timer_and_an_on_demand_socket_pidone_sleeps,
);

as_pid1!(an_address_in_use_or_a_path_that_is_no_socket_is_refused);

/// serve.py NAME: accepts on every fd LISTEN_FDS gives, answers each connection with
/// "NAME PID ok" when its LISTEN_* variables are right, else what is wrong.
const SERVE_PY: &str = r#"import os, selectors, socket, sys
n = int(os.environ["LISTEN_FDS"])
names = os.environ.get("LISTEN_FDNAMES", "")
ok = os.environ.get("LISTEN_PID") == str(os.getpid()) and names == ":".join([sys.argv[1]] * n)
word = "ok" if ok else "wrong %r %r %d" % (os.environ.get("LISTEN_PID"), names, os.getpid())
sel = selectors.DefaultSelector()
for fd in range(3, 3 + n):
    sel.register(socket.socket(fileno=fd), selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept()
        c.sendall(("%s %d %s" % (sys.argv[1], os.getpid(), word)).encode())
        c.close()
"#;

fn ask_tcp(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read the answer");
    answer
}

fn ask_unix(path: &std::path::Path) -> String {
    let mut c = UnixStream::connect(path).expect("connect");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read the answer");
    answer
}

fn the_first_connection_starts_an_on_demand_service_and_restarts_lose_nothing(mode: Mode) {
    let dir = Dir::new();
    dir.write("serve.py", SERVE_PY);
    let port = free_port();
    let config = format!(
        r#"
[[services]]
name = "web"
start = "on-demand"
command = ["/usr/bin/python3", "@D/serve.py", "web"]
listen = ["tcp:127.0.0.1:{port}", "unix:@D/run/web.sock"]
restart_delay = "1s"
"#
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let web = d.service("web");
    assert_eq!(
        (web["state"].as_str(), web["pid"].as_i64()),
        (Some("stopped"), None)
    );
    assert_eq!(d.health().0, 200, "a down on-demand service is no problem");
    let first = ask_tcp(port);
    assert!(
        first.starts_with("web ") && first.ends_with(" ok"),
        "{first}"
    );
    let pid = d.wait_state("web", "running")["pid"]
        .as_i64()
        .expect("a pid");
    assert_eq!(first, format!("web {pid} ok"));
    assert_eq!(
        ask_unix(&d.dir.join("run/web.sock")),
        format!("web {pid} ok")
    );
    // A crash: the connection made while it is down waits for the restart.
    d.ok(&["signal", "web", "KILL"]);
    d.wait_service("web", "crashed", |s| s["pid"].as_i64() != Some(pid));
    let again = ask_tcp(port);
    let new = d.wait_state("web", "running")["pid"]
        .as_i64()
        .expect("a pid");
    assert_ne!(new, pid);
    assert_eq!(again, format!("web {new} ok"));
    d.terminate();
}

fn a_connection_before_the_service_exists_is_answered(mode: Mode) {
    let dir = Dir::new();
    dir.write("serve.py", SERVE_PY);
    let port = free_port();
    let config = format!(
        r#"
[[services]]
name = "gate"
type = "oneshot"
command = ["/bin/sh", "-c", "while [ ! -e @D/go ]; do sleep 0.02; done"]

[[services]]
name = "api"
command = ["/usr/bin/python3", "@D/serve.py", "api"]
listen = ["tcp:127.0.0.1:{port}"]
depends_on = "gate"
"#
    );
    let d = Daemon::start_in(mode, dir, &config);
    assert_eq!(d.state("api"), "pending");
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect before api runs");
    d.dir.write("go", "");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read the answer");
    assert!(
        answer.starts_with("api ") && answer.ends_with(" ok"),
        "{answer}"
    );
    d.terminate();
}

fn idle_timeout_stops_it_and_a_dependent_starts_it(mode: Mode) {
    let dir = Dir::new();
    dir.write("serve.py", SERVE_PY);
    let port = free_port();
    let config = format!(
        r#"
[[services]]
name = "cache"
start = "on-demand"
idle_timeout = "1s"
command = ["/usr/bin/python3", "@D/serve.py", "cache"]
listen = ["tcp:127.0.0.1:{port}"]

[[services]]
name = "worker"
type = "oneshot"
enabled = false
command = ["/bin/true"]
depends_on = "cache"
"#
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let first = ask_tcp(port);
    assert!(first.ends_with(" ok"), "{first}");
    d.wait_state("cache", "running");
    let idle = d.wait_state("cache", "stopped");
    assert_eq!(idle["last_exit"]["signal"], "TERM", "{idle}");
    let second = ask_tcp(port);
    assert!(second.ends_with(" ok"), "{second}");
    d.wait_state("cache", "running");
    d.wait_state("cache", "stopped");
    // A dependent that starts brings it up.
    d.ok(&["start", "worker"]);
    assert_eq!(d.state("cache"), "running");
    d.terminate();
}

fn an_address_in_use_or_a_path_that_is_no_socket_is_refused(mode: Mode) {
    let dir = Dir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("an address").port();
    let config = dir.write(
        "pidone.toml",
        &format!(
            "[[services]]\nname = \"web\"\ncommand = [\"/bin/sleep\", \"1000\"]\nlisten = [\"tcp:127.0.0.1:{port}\"]\n"
        ),
    );
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    let out = run.wait();
    out.assert_code(2, "an address in use");
    let expected = format!(
        "pidone: {config}:4: service \"web\": key \"listen\": tcp:127.0.0.1:{port}: Address already in use"
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    dir.write("plain", "not a socket");
    let config = dir.write(
        "pidone.toml",
        &format!(
            "[[services]]\nname = \"web\"\ncommand = [\"/bin/sleep\", \"1000\"]\nlisten = [\"unix:{}\"]\n",
            dir.join("plain").display()
        ),
    );
    let out = run_plain(&["validate", "--config", &config]);
    out.assert_code(2, "a path that is no socket");
    assert!(
        out.stderr.contains("exists and is not a socket"),
        "{}",
        out.stderr
    );
}

/// Issue 16's "zero idle wake-ups": a daily job and an on-demand service behind its socket cost
/// pidone no wake-up at all while nothing is due; the socket still starts the service after.
fn with_a_daily_timer_and_an_on_demand_socket_pidone_sleeps(mode: Mode) {
    let dir = Dir::new();
    dir.write("serve.py", SERVE_PY);
    let port = free_port();
    let config = format!(
        r#"
[[services]]
name = "backup"
type = "oneshot"
schedule = "@daily"
command = ["/bin/true"]

[[services]]
name = "web"
start = "on-demand"
command = ["/usr/bin/python3", "@D/serve.py", "web"]
listen = ["tcp:127.0.0.1:{port}"]
"#
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    let pid = d.run.pid();
    // Wait for the start-up's last events to be handled: no context switch for 300 ms.
    let mut last = context_switches(pid);
    d.run.wait_for("pidone to go to sleep", |_| {
        std::thread::sleep(Duration::from_millis(300));
        let now = context_switches(pid);
        std::mem::replace(&mut last, now) == now
    });
    let before = context_switches(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = context_switches(pid);
    assert_eq!(
        after, before,
        "{mode:?}: pidone woke up while nothing was due"
    );
    let answer = ask_tcp(port);
    assert!(answer.ends_with(" ok"), "{answer}");
    d.terminate();
}
