//! Black-box tests of `pidone logs` and `/v1/services/NAME/logs`: the last lines and new ones as
//! they come, a backlog of long lines sent whole, a follower that does not read dropped with an
//! error, and unread followers and answers sharing one memory budget. Needs root and util-linux.

#[macro_use]
mod support;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use support::*;

// ---------------------------------------------------------------------------------------------
// logs

/// `logs -n` returns exactly the last N lines of a service's output; `logs -f` streams new
/// lines as they are written; the API refuses a bad `n`; an unknown service exits 1.
#[test]
fn logs_give_the_last_lines_and_follow_new_ones() {
    let d = Daemon::start(
        Mode::Child,
        r#"
[[services]]
name = "talker"
command = ["/bin/sh", "-c", "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; done; while [ ! -e @D/more ]; do sleep 0.05; done; echo after; exec sleep 1000"]
"#,
    );
    let dir = &d.dir;
    wait_until(DEADLINE, "talker's 50 lines in its log", || {
        d.client(&["logs", "-n", "1", "talker"]).stdout == "line 50\n"
    });
    let out = d.ok(&["logs", "-n", "3", "talker"]);
    assert_eq!(out.stdout, "line 48\nline 49\nline 50\n");
    let all = d.ok(&["logs", "-n", "1000", "talker"]);
    let expected: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    assert_eq!(all.stdout, expected, "every line, in order, nothing else");

    // Follow: the last line now, then what the service writes later.
    let mut follower = Command::new(pidone())
        .args([
            "--socket",
            d.socket.to_str().expect("UTF-8"),
            "logs",
            "-f",
            "-n",
            "1",
            "talker",
        ])
        .env_remove("PIDONE_SOCKET")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn a follower");
    let mut stdout = follower.stdout.take().expect("piped stdout");
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    // The follower's first line proves the stream is open before the service writes more.
    while !seen.contains("line 50\n") {
        let n = stdout.read(&mut buf).expect("read the follower");
        assert!(n > 0, "the follower ended early: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::fs::write(dir.join("more"), "").expect("release the talker");
    while !seen.contains("after\n") {
        let n = stdout.read(&mut buf).expect("read the follower");
        assert!(n > 0, "the follower ended before the new line: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(seen, "line 50\nafter\n");
    let _ = follower.kill();
    let _ = follower.wait();

    assert_eq!(
        get(&d.socket, "/v1/services/talker/logs?n=lots").map(|(s, _)| s),
        Some(400)
    );
    let out = d.client(&["logs", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("talker"),
        "names the known services: {out:?}"
    );
}

/// A service that prints `N` then a 3000-byte line, numbered `1..=first`, waits for `DIR/more`,
/// prints lines `first+1..=first+then`, then `done`, and sleeps.
fn long_lines(first: usize, then: usize) -> String {
    format!(
        r#"
[[services]]
name = "talker"
command = ["/bin/sh", "-c", '''
l=$$(printf '%3000s' '' | tr ' ' a)
i=0; while [ $$i -lt {first} ]; do i=$$((i+1)); echo "$$i $$l"; done
while [ ! -e @D/more ]; do sleep 0.05; done
while [ $$i -lt {} ]; do i=$$((i+1)); echo "$$i $$l"; done
echo done; exec sleep 1000
''']
"#,
        first + then
    )
}

/// The line `long_lines` prints as number `i`.
fn long_line(i: usize) -> String {
    format!("{i} {}", "a".repeat(3000))
}

/// Waits until the last line pidone holds for `talker` is `last`.
fn wait_last_line(d: &Daemon, last: &str) {
    let expected = format!("{last}\n");
    wait_until(
        DEADLINE,
        &format!("talker's last line {:.20}", last),
        || d.client(&["logs", "-n", "1", "talker"]).stdout == expected,
    );
}

/// `pidone logs -f -n 1000 NAME...` as a child whose stdout the test reads (or not).
fn follower(d: &Daemon, n: &str) -> std::process::Child {
    Command::new(pidone())
        .args(["--socket", d.socket.to_str().expect("UTF-8")])
        .args(["logs", "-f", "-n", n, "talker"])
        .env_remove("PIDONE_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a follower")
}

/// Reads `from` until `text` ends with `end` or the end of the stream.
fn read_until(from: &mut impl Read, text: &mut Vec<u8>, end: &[u8]) {
    let mut buf = [0u8; 64 * 1024];
    while !text.ends_with(end) {
        match from.read(&mut buf).expect("read the follower") {
            0 => return,
            n => text.extend_from_slice(&buf[..n]),
        }
    }
}

/// `logs -f -n 1000` on lines of 3 KB sends all 1000 before the new ones, also when new lines
/// come while the backlog is still on its way (the follower's own stdout is not read meanwhile).
#[test]
fn logs_follow_sends_a_backlog_of_1000_long_lines_whole() {
    let d = Daemon::start(Mode::Child, &long_lines(1000, 1));
    wait_last_line(&d, &long_line(1000));
    let mut client = follower(&d, "1000");
    let mut stdout = client.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, b"\n");
    assert!(
        seen.starts_with(b"1 aaa"),
        "{:.100}",
        String::from_utf8_lossy(&seen)
    );
    // pidone still holds most of the backlog for this follower when the next line comes.
    d.dir.write("more", "");
    wait_last_line(&d, "done");
    read_until(&mut stdout, &mut seen, b"done\n");
    let _ = client.kill();
    let _ = client.wait();
    let text = String::from_utf8(seen).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1002,
        "every line then `done`: got {}",
        lines.len()
    );
    for (i, line) in lines.iter().take(1001).enumerate() {
        assert!(*line == long_line(i + 1), "line {}: {:.40}", i + 1, line);
    }
}

/// A follower that does not read is dropped once it holds the whole budget; when it reads again
/// it gets its last whole lines, then pidone's error line, which the client prints and turns into
/// exit 1.
#[test]
fn a_follower_that_does_not_read_is_dropped_with_an_error() {
    let d = Daemon::start(Mode::Child, &long_lines(1, 4000));
    wait_last_line(&d, &long_line(1));
    let mut client = follower(&d, "1");
    let mut stdout = client.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, b"\n");
    d.dir.write("more", "");
    wait_last_line(&d, "done");
    stdout.read_to_end(&mut seen).expect("read the follower");
    let out = client.wait_with_output().expect("the follower ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pidone: talker: dropped: this client fell behind"),
        "{stderr}"
    );
    let text = String::from_utf8(seen).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() < 4000,
        "dropped before the end: {}",
        lines.len()
    );
    for (i, line) in lines.iter().enumerate() {
        assert!(
            *line == long_line(i + 1),
            "line {} whole: {:.40}",
            i + 1,
            line
        );
    }
}

/// pidone's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("kB");
    kb * 1024
}

/// 48 followers and 16 clients asking for 3 MB of logs, none of them reading while the service
/// prints 12 MB more: they share one budget, and pidone's peak memory stays small (each holding
/// its own answer, as before, took it over 150 MB).
fn unread_followers_and_answers_share_one_budget(mode: Mode) {
    let mut d = Daemon::start(mode, &long_lines(1000, 4000));
    wait_last_line(&d, &long_line(1000));
    let ask = |target: &str| send_get(&d.socket, target);
    let mut unread: Vec<UnixStream> = (0..48)
        .map(|_| ask("/v1/services/talker/logs?n=1000&follow=true"))
        .collect();
    unread.extend((0..16).map(|_| ask("/v1/services/talker/logs?n=1000")));
    d.dir.write("more", "");
    wait_last_line(&d, "done");
    // The 8 MiB budget, the 3 MB ring of the last 1000 lines, the answer being built, and what
    // the debug build's allocator keeps of freed megabyte blocks: under 48 MiB, where each client
    // holding its own answer took pidone over 150 MB.
    let peak = peak_rss(d.run.pid());
    assert!(peak < 48 << 20, "pidone's peak RSS: {} MiB", peak >> 20);
    // Followers dropped over the budget give their places back once they had a few seconds for
    // their last lines, even while their clients keep the connections open and unread.
    wait_until(DEADLINE, "a new follower to be taken", || {
        let mut s = send_get(&d.socket, "/v1/services/talker/logs?n=1&follow=true");
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    });
    drop(unread);
}

in_both_modes!(unread_followers_and_answers_share_one_budget);
