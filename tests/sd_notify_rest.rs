//! Black-box tests of the rest of sd_notify: a missed `WATCHDOG=1` restarts the service,
//! `STOPPING=1` sent while stopping reaches pidone (its socket stays open until the process
//! exits), pidone notifies its own parent through `$NOTIFY_SOCKET` (which its services do not
//! inherit), and sockets passed to pidone (`LISTEN_FDS`) reach its program with its own
//! `LISTEN_PID`. Needs root, util-linux and python3.

#[macro_use]
mod support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use support::*;

in_both_modes!(
    a_missed_watchdog_restarts_the_service,
    stopping_is_heard_while_the_service_stops,
    pidone_tells_its_parent_ready_status_and_stopping,
    passed_sockets_reach_the_program_with_its_own_listen_pid,
);

as_pid1!(a_malformed_listen_fds_is_refused_at_start);

/// notify.py MESSAGE...: sends each MESSAGE to $NOTIFY_SOCKET; on SIGTERM sends STOPPING=1 and
/// writes what became of it into stopping.result.
const NOTIFY_PY: &str = r#"import os, signal, socket, sys, time
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\0" + address[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def stop(*_):
    try:
        sock.sendto(b"STOPPING=1", address)
        result = "sent"
    except OSError as e:
        result = e.strerror
    open(sys.argv[1] + ".tmp", "w").write(result)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1] + ".usec", "w").write(os.environ.get("WATCHDOG_USEC", "none"))
for m in sys.argv[2:]:
    sock.sendto(m.encode(), address)
while True:
    time.sleep(1)
"#;

fn a_missed_watchdog_restarts_the_service(mode: Mode) {
    let dir = Dir::new();
    dir.write("notify.py", NOTIFY_PY);
    let config = r#"
[[services]]
name = "dog"
command = ["/usr/bin/python3", "@D/notify.py", "@D/dog", "READY=1"]
ready = { sd_notify = true }
watchdog = "500ms"
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    let svc = d.wait_service("dog", "restarted", |s| int(&s["restarts"]) >= 1);
    assert_eq!(d.dir.read("dog.usec"), "500000");
    let log = d.run.stderr();
    assert!(
        log.contains("dog: watchdog: no WATCHDOG=1 within 500ms"),
        "{svc}\n{log}"
    );
    d.terminate();
}

fn stopping_is_heard_while_the_service_stops(mode: Mode) {
    let dir = Dir::new();
    dir.write("notify.py", NOTIFY_PY);
    let config = r#"
[[services]]
name = "redis"
command = ["/usr/bin/python3", "@D/notify.py", "@D/redis", "READY=1", "RELOADING=1"]
ready = { sd_notify = true }
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    let svc = d.wait_service("redis", "reloading", |s| s["notify_state"] == "reloading");
    assert_eq!(svc["state"], "running");
    let status = d.ok(&["status", "redis"]).stdout;
    assert!(status.contains("said reloading"), "{status}");
    d.ok(&["stop", "redis"]);
    assert_eq!(d.dir.read("redis"), "sent", "STOPPING=1 must reach pidone");
    d.terminate();
}

/// Reads the datagrams of `sock` until one contains `what`, within the deadline; returns all.
fn receive_until(sock: &UnixDatagram, what: &str, got: &mut String) {
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    while !got.contains(what) {
        assert!(
            Instant::now() < deadline,
            "no {what:?} from pidone; got {got:?}"
        );
        if let Ok(n) = sock.recv(&mut buf) {
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
            got.push('\n');
        }
    }
}

fn pidone_tells_its_parent_ready_status_and_stopping(mode: Mode) {
    let dir = Dir::new();
    let path = dir.join("parent.sock");
    let sock = UnixDatagram::bind(&path).expect("bind the parent's socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "app"
command = ["/bin/sh", "-c", "env > @D/app.env.tmp; mv @D/app.env.tmp @D/app.env; exec sleep 1000"]
"#,
    );
    let socket = dir.join("run/ctl.sock");
    let args = [
        "--socket",
        socket.to_str().expect("UTF-8"),
        "--config",
        &config,
    ];
    let notify = path.to_str().expect("UTF-8");
    let mut run = Pidone::start(mode, &dir, &args, &[("NOTIFY_SOCKET", notify)]);
    let mut got = String::new();
    receive_until(&sock, "READY=1", &mut got);
    assert!(got.contains("STATUS=1 of 1 services up"), "{got:?}");
    wait_quietly("app's environment", || dir.exists("app.env"));
    assert!(!dir.read("app.env").contains("NOTIFY_SOCKET"), "inherited");
    client_as(&[], &socket, &["shutdown"]);
    receive_until(&sock, "STOPPING=1", &mut got);
    run.wait().assert_code(0, "a clean shutdown");
}

/// wrap.py PORTFILE PIDONE ARGS...: a listening TCP socket at fd 3, LISTEN_FDS=1 and
/// LISTEN_PID=its pid, then exec PIDONE (same pid).
const WRAP_PY: &str = r#"import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
os.environ["LISTEN_FDS"] = sys.argv[2]
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"#;

/// serve.py: answers one connection on fd 3 with its LISTEN_PID check.
const SERVE_PY: &str = r#"import os, socket
s = socket.socket(fileno=3)
c, _ = s.accept()
ok = os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1"
c.sendall(b"mine" if ok else ("wrong: %s %s" % (os.environ.get("LISTEN_PID"), os.getpid())).encode())
c.close()
"#;

fn passed_sockets_reach_the_program_with_its_own_listen_pid(mode: Mode) {
    let dir = Dir::new();
    let wrap = dir.write("wrap.py", WRAP_PY);
    let serve = dir.write("serve.py", SERVE_PY);
    let port_file = dir.join("port");
    let port_file = port_file.to_str().expect("UTF-8");
    let wrapper = [python(), &wrap, port_file, "1"];
    let command = mode.command_via(&wrapper, true, &["--", python(), &serve]);
    let mut run = Pidone::start_command(mode, &dir, command, None);
    wait_quietly("the port", || {
        dir.exists("port") && !dir.read("port").is_empty()
    });
    let port = dir.read("port");
    let mut conn = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).expect("read");
    assert_eq!(answer, "mine");
    run.wait().assert_code(0, "the program's status");
}

fn a_malformed_listen_fds_is_refused_at_start(mode: Mode) {
    let dir = Dir::new();
    let wrap = dir.write("wrap.py", WRAP_PY);
    let port_file = dir.join("port");
    let wrapper = [python(), &wrap, port_file.to_str().expect("UTF-8"), "one"];
    let command = mode.command_via(&wrapper, true, &["--", "/bin/true"]);
    let mut run = Pidone::start_command(mode, &dir, command, None);
    let outcome = run.wait();
    outcome.assert_code(2, "refused");
    assert!(
        outcome
            .stderr
            .contains("LISTEN_FDS=\"one\": not a number of descriptors"),
        "{}",
        outcome.stderr
    );
}
