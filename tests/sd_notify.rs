//! Black-box tests of sd_notify: a service that dropped root is still heard and a stranger is not,
//! datagrams from outside pidone's PID namespace and floods are ignored with summed log lines, and
//! what a service says (STATUS=, a check's output) is shown with control characters escaped. Needs
//! root, util-linux and python3.

#[macro_use]
mod support;

use support::*;

in_both_modes!(
    sd_notify_hears_the_service_after_it_drops_root_but_no_stranger,
    status_and_check_escape_control_characters_of_a_service,
);

as_pid1!(sd_notify_from_outside_the_namespace_and_floods_are_ignored_in_sums);

/// sd_notify credentials: a service started as root that dropped to nobody (same session) is
/// heard; a process of another service, running as nobody, sending READY=1 to a root service's
/// socket is not.
fn sd_notify_hears_the_service_after_it_drops_root_but_no_stranger(mode: Mode) {
    let dir = Dir::new();
    // nobody writes its markers into the directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the dir");
    // send.py TARGET MARKER: sends READY=1 to TARGET's socket ("env": $NOTIFY_SOCKET, else a
    // file holding an address), then writes MARKER and sleeps.
    dir.write(
        "send.py",
        r#"import os, socket, sys, time
target, marker = sys.argv[1], sys.argv[2]
if target == "env":
    address = os.environ["NOTIFY_SOCKET"]
else:
    while not os.path.exists(target):
        time.sleep(0.02)
    address = open(target).read().strip()
if address.startswith("@"):
    address = "\0" + address[1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", address)
open(marker + ".tmp", "w").close()
os.rename(marker + ".tmp", marker)
time.sleep(1000)
"#,
    );
    let config = r#"
[[services]]
name = "victim"
command = ["/bin/sh", "-c", "echo \"$NOTIFY_SOCKET\" > @D/victim.tmp; mv @D/victim.tmp @D/victim.socket; exec /bin/sleep 1000"]
ready = { sd_notify = true }

[[services]]
name = "stranger"
user = "nobody"
command = ["/usr/bin/python3", "@D/send.py", "@D/victim.socket", "@D/stranger.sent"]

[[services]]
name = "dropper"
ready = { sd_notify = true }
command = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "@D/send.py", "env", "@D/dropper.sent"]
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    d.wait_state("dropper", "running");
    d.run.wait_for("the stranger's READY=1 to be sent", |_| {
        d.dir.exists("stranger.sent")
    });
    // The datagram is queued before the marker exists: the next answer reflects it.
    let victim = d.service("victim");
    assert_eq!(
        victim["state"], "starting",
        "a stranger made it ready: {victim}"
    );
    d.run
        .wait_for("pidone to say it ignored the stranger", |run| {
            run.stderr().contains(": not the service's")
        });
    d.terminate();
}

/// An sd_notify datagram from outside pidone's PID namespace (the test itself, root: pid 0 in
/// its credentials) is ignored; then a stranger's flood of datagrams gives a few log lines with
/// counts, not one line each.
fn sd_notify_from_outside_the_namespace_and_floods_are_ignored_in_sums(mode: Mode) {
    const FLOOD: u64 = 20_000;
    let dir = Dir::new();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the dir");
    dir.write(
        "flood.py",
        r#"import os, socket, sys, time
target, go, marker, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
while not os.path.exists(go):
    time.sleep(0.02)
address = "\0" + open(target).read().strip()[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"READY=1", address)
open(marker + ".tmp", "w").close()
os.rename(marker + ".tmp", marker)
time.sleep(1000)
"#,
    );
    let config = format!(
        r#"
[[services]]
name = "victim"
command = ["/bin/sh", "-c", "echo \"$NOTIFY_SOCKET\" > @D/victim.tmp; mv @D/victim.tmp @D/victim.socket; exec /bin/sleep 1000"]
ready = {{ sd_notify = true }}

[[services]]
name = "stranger"
user = "nobody"
command = ["/usr/bin/python3", "@D/flood.py", "@D/victim.socket", "@D/go", "@D/sent", "{FLOOD}"]
"#
    );
    let mut d = Daemon::start_in(mode, dir, &config);
    d.run
        .wait_for("the victim's socket", |_| d.dir.exists("victim.socket"));
    let address = d.dir.read("victim.socket");
    let name = address.trim().trim_start_matches('@');
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name,
        )
        .expect("address");
    let sock = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    sock.send_to_addr(b"READY=1", &addr)
        .expect("send from outside");
    d.run
        .wait_for("pidone to ignore a sender outside its namespace", |run| {
            run.stderr()
                .contains("outside pidone's PID namespace: not the service's")
        });
    d.dir.write("go", "");
    d.run
        .wait_for("the flood to be sent", |_| d.dir.exists("sent"));
    let sums = |text: &str| -> Vec<u64> {
        text.lines()
            .filter(|l| l.contains("sd_notify messag"))
            .filter_map(|l| l.split("ignored ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    };
    d.run
        .wait_for("every ignored datagram to be counted", |run| {
            sums(&run.stderr()).iter().sum::<u64>() == FLOOD + 1
        });
    let lines = sums(&d.run.stderr()).len();
    assert!(lines <= 10, "{lines} log lines for {FLOOD} datagrams");
    assert_eq!(d.service("victim")["state"], "starting");
    d.terminate();
}

/// What a service says reaches the terminal as text: an sd_notify STATUS= and an exec check's
/// output holding escape codes are printed escaped by `pidone status` and `pidone check`.
fn status_and_check_escape_control_characters_of_a_service(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        "esc.py",
        r#"import os, socket, time
address = "\0" + os.environ["NOTIFY_SOCKET"][1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1\nSTATUS=\x1b[31mred\x1b]0;title\x07", address)
time.sleep(1000)
"#,
    );
    let config = r#"
[[services]]
name = "esc"
ready = { sd_notify = true }
command = ["/usr/bin/python3", "@D/esc.py"]

[[services.checks]]
exec = "printf '\\033[2Jcleared'; exit 1"
period = "50ms"
failure_threshold = 1
on_failure = "ignore"
"#;
    let mut d = Daemon::start_in(mode, dir, config);
    d.wait_service("esc", "its status said and its check failing", |s| {
        s["notify_status"].is_string() && check_of(s, "exec")["status"] == "failing"
    });
    let (_, status) = d.client(&["status"]).code_text();
    assert!(!status.contains('\u{1b}'), "raw escape in: {status:?}");
    assert!(
        status.contains(r"\u{1b}[31mred\u{1b}]0;title\u{7}"),
        "{status:?}"
    );
    let (code, check) = d.client(&["check"]).code_text();
    assert_ne!(code, 0, "{check}");
    assert!(!check.contains('\u{1b}'), "raw escape in: {check:?}");
    assert!(check.contains(r"\u{1b}[2Jcleared"), "{check:?}");
    d.terminate();
}
