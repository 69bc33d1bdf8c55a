//! The small services the tests supervise, as TOML command arrays or `[[services]]` tables. Each
//! writes what it did into the test's [`super::dir::Dir`] (`@D` in a config becomes its path).

use std::net::TcpListener;

/// A longrun body: stamps `NAME.up`, and on TERM stamps `NAME.stop` and exits 0. `on_term` runs
/// first in the handler (e.g. a slow shutdown).
pub fn trapping(name: &str, on_term: &str) -> String {
    format!(
        "[\"/bin/sh\", \"-c\", '''\
trap '{on_term} @D/stamp {name}.stop; kill $! 2>/dev/null; exit 0' TERM
@D/stamp {name}.up
sleep 1000 & wait
''']"
    )
}

/// A longrun that appends a timestamp to `NAME.ups`, then its pid to `NAME.pids` (`$$$$`: pidone
/// expands `$$` to `$`), appends a timestamp to `NAME.usr1` on USR1 and to `NAME.stops` on TERM
/// (then exits 0).
pub fn longrun(name: &str) -> String {
    format!(
        r#"["/bin/sh", "-c", '''
trap 'date +%s%N >> @D/{name}.usr1' USR1
trap 'date +%s%N >> @D/{name}.stops; kill $p 2>/dev/null; exit 0' TERM
date +%s%N >> @D/{name}.ups
echo $$$$ >> @D/{name}.pids
sleep 1000 & p=$!
while :; do wait $p && exit 0; done
''']"#
    )
}

/// A longrun that appends its pid to `NAME.pids` (`$$$$`: pidone expands `$$` to `$`), then
/// sleeps for `sleep` seconds (distinct numbers tell the services' processes apart).
pub fn pid_recorder(name: &str, sleep: u32) -> String {
    format!(r#"["/bin/sh", "-c", "echo $$$$ >> @D/{name}.pids; exec /bin/sleep {sleep}"]"#)
}

/// A service that crashes at once, restarted every 100 ms forever: the tests' clock (its
/// `restarts` in the API). Each run appends a line to `NAME.runs`.
pub fn crasher(name: &str) -> String {
    format!(
        r#"
[[services]]
name = "{name}"
restart = "always"
restart_delay = "100ms"
restart_delay_max = "100ms"
command = ["/bin/sh", "-c", "echo x >> @D/{name}.runs; exit 1"]
"#
    )
}

/// `tests/helpers/ready_service.py`: becomes ready 1.5 s after it started and once
/// `NAME.go` exists, stamping `NAME.started` and `NAME.ready` (see the script).
pub fn ready_service() -> String {
    super::mode::helper("ready_service.py")
}

/// A port on 127.0.0.1 that nobody listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}
