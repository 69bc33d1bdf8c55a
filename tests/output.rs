//! Black-box tests of the services' output: every line reaches pidone's stdout whole, prefixed
//! with `[name]`, none lost; a slow reader pushes back on the services without losing lines or
//! leaking pipes; lines lost on a closed stdout are counted; an unread stderr never blocks pidone's
//! own messages. pidone runs as a true PID 1 and, for some scenarios, as a plain child. Needs root
//! and util-linux.

#[macro_use]
mod support;

use std::collections::BTreeMap;

use support::*;

as_pid1!(
    prefixed_output_loses_no_line,
    slow_stdout_pushes_back_on_services_and_loses_no_line,
    a_crash_looping_service_leaks_no_pipe_while_stdout_is_unread,
    lines_lost_on_a_closed_stdout_are_counted,
    unread_stderr_never_blocks_pidone_own_messages,
);

// ---------------------------------------------------------------------------------------------
// Output

/// Each service's lines from `output`; panics on any line that is not `[name] line`, except
/// pidone's own `pidone: ...` messages when `allow_own` is set.
fn lines_by_service(output: &str, allow_own: bool) -> BTreeMap<String, Vec<String>> {
    let mut by = BTreeMap::<String, Vec<String>>::new();
    for (n, line) in output.lines().enumerate() {
        if allow_own && line.starts_with("pidone:") {
            continue;
        }
        let Some((name, text)) = split_prefixed(line) else {
            panic!(
                "output line {} is not `[name] text`: {:?}",
                n + 1,
                &line[..line.len().min(200)]
            );
        };
        by.entry(name).or_default().push(text);
    }
    by
}

/// Asserts `actual` is `expected`, except that a long line may arrive split into several
/// consecutive pieces (each then prefixed on its own line).
fn assert_same_lines(service: &str, actual: &[String], expected: &[String]) {
    let mut pieces = actual.iter();
    for (i, want) in expected.iter().enumerate() {
        let mut got = String::new();
        while got.len() < want.len() || got.is_empty() {
            let Some(piece) = pieces.next() else {
                panic!(
                    "{service}: output ends at line {} of {}: expected {:?}",
                    i + 1,
                    expected.len(),
                    &want[..want.len().min(100)]
                );
            };
            got.push_str(piece);
            if !want.starts_with(got.as_str()) || (piece.is_empty() && !want.is_empty()) {
                break;
            }
        }
        assert!(
            got == *want,
            "{service}: line {} differs: expected {:?} ({} bytes), got {:?} ({} bytes)",
            i + 1,
            &want[..want.len().min(100)],
            want.len(),
            &got[..got.len().min(100)],
            got.len()
        );
    }
    let extra: Vec<&String> = pieces.collect();
    assert!(
        extra.is_empty(),
        "{service}: unexpected extra lines {extra:?}"
    );
}

fn prefixed_output_loses_no_line(mode: Mode) {
    // 4 x 2,000 lines on stdout and 2,000 on stderr from five services at once, a 108,894-byte
    // line, and a last line without a newline: all must arrive, in order, each under its name.
    let dir = Dir::new();
    let mut config = String::new();
    for name in ["s1", "s2", "s3", "s4"] {
        config.push_str(&format!(
            "[[services]]\nname = \"{name}\"\ntype = \"oneshot\"\n\
             command = [\"/usr/bin/seq\", \"1\", \"2000\"]\n\n"
        ));
    }
    config.push_str(
        r#"
[[services]]
name = "longest-name-5"
type = "oneshot"
command = ["/bin/sh", "-c", "seq 1 2000 >&2"]

[[services]]
name = "big"
type = "oneshot"
command = ["/bin/sh", "-c", "seq -s ' ' 1 20000; printf 'tail-without-newline'"]
"#,
    );
    let config = dir.write("pidone.toml", &config);
    let mut run = Pidone::start_config(mode, &dir, &config, &[]);
    let outcome = run.wait();
    outcome.assert_code(0, "six successful oneshots");

    let numbers: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
    let big_line = (1..=20000)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(big_line.len() >= 100_000);

    let stdout = lines_by_service(&outcome.stdout, false);
    let names: Vec<&String> = stdout.keys().collect();
    assert_eq!(names, ["big", "s1", "s2", "s3", "s4"], "services on stdout");
    for name in ["s1", "s2", "s3", "s4"] {
        assert_same_lines(name, &stdout[name], &numbers);
    }
    assert_same_lines(
        "big",
        &stdout["big"],
        &[big_line, "tail-without-newline".to_owned()],
    );
    let stderr = lines_by_service(&outcome.stderr, true);
    assert_eq!(
        stderr.keys().collect::<Vec<_>>(),
        ["longest-name-5"],
        "services on stderr"
    );
    assert_same_lines("longest-name-5", &stderr["longest-name-5"], &numbers);
}

fn slow_stdout_pushes_back_on_services_and_loses_no_line(mode: Mode) {
    // pidone's stdout is a pipe the test leaves unread until it is full and a service is
    // blocked writing to pidone: pidone must stop reading rather than buffer without bound or
    // drop lines, and must not block itself. Then everything must arrive.
    let dir = Dir::new();
    let mut config = String::new();
    for (name, count) in [("s1", 2000), ("s2", 2000), ("flood", 50_000)] {
        config.push_str(&format!(
            "[[services]]\nname = \"{name}\"\ntype = \"oneshot\"\n\
             command = [\"/usr/bin/seq\", \"1\", \"{count}\"]\n\n"
        ));
    }
    config.push_str(
        r#"
[[services]]
name = "big"
type = "oneshot"
command = ["/bin/sh", "-c", "seq -s ' ' 1 20000; seq -s ' ' 1 20000"]
"#,
    );
    let config = dir.write("pidone.toml", &config);
    let (mut run, pipe) = Pidone::start_piped(mode, &dir, &["--config", &config]);
    run.wait_for("pidone's stdout pipe to fill up", |_| {
        pipe_pending(&pipe) >= 48 * 1024
    });
    let pidone = run.pid();
    let mut blocked = Vec::new();
    run.wait_for(
        "a service to block writing to pidone (back-pressure)",
        |run| {
            blocked = run
                .processes()
                .into_iter()
                .filter(|&p| p != pidone && wchan(p).contains("pipe_write"))
                .map(cmdline)
                .collect();
            !blocked.is_empty()
        },
    );
    let pidone_wchan = wchan(pidone);
    assert!(
        !pidone_wchan.contains("pipe_write"),
        "pidone itself is blocked writing to its stdout ({pidone_wchan})"
    );
    let reader = std::thread::spawn(move || {
        let mut pipe = pipe;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).expect("read pidone's stdout");
        text
    });
    let outcome = run.wait();
    outcome.assert_code(0, "four successful oneshots");
    let stdout = reader.join().expect("reader thread");

    let numbers = |n: u32| -> Vec<String> { (1..=n).map(|i| i.to_string()).collect() };
    let big_line = numbers(20000).join(" ");
    let by = lines_by_service(&stdout, false);
    assert_eq!(by.keys().collect::<Vec<_>>(), ["big", "flood", "s1", "s2"]);
    assert_same_lines("s1", &by["s1"], &numbers(2000));
    assert_same_lines("s2", &by["s2"], &numbers(2000));
    assert_same_lines("flood", &by["flood"], &numbers(50_000));
    assert_same_lines("big", &by["big"], &[big_line.clone(), big_line]);
    eprintln!("blocked while stdout was full: {blocked:?}");
}

fn a_crash_looping_service_leaks_no_pipe_while_stdout_is_unread(mode: Mode) {
    // Nobody reads pidone's stdout: reading the services' pipes pauses. A service that writes
    // less than a pipe holds and exits must still have its pipe closed at each restart, or
    // pidone runs out of descriptors; what it said beyond a bound is counted and reported.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "chatty"
command = ["/bin/sh", "-c", "echo x >> @D/runs; seq 1 2000; exit 1"]
restart_delay = "10ms"
restart_delay_max = "10ms"
"#,
    );
    let (mut run, pipe) = Pidone::start_piped(mode, &dir, &["--config", &config]);
    run.wait_for("pidone's stdout pipe to fill up", |_| {
        pipe_pending(&pipe) >= 48 * 1024
    });
    let runs = |dir: &Dir| dir.read("runs").lines().count();
    // Enough runs past the full pipe for pidone's own queue to fill and reading to pause.
    let start = runs(&dir);
    run.wait_for("reading to pause", |_| runs(&dir) >= start + 30);
    let pidone = run.pid();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pidone}/fd"))
            .expect("pidone's fds")
            .count()
    };
    let (baseline, from) = (fds(), runs(&dir));
    run.wait_for("200 more restarts", |_| runs(&dir) >= from + 200);
    let now = fds();
    assert!(
        now < baseline + 20,
        "pidone's fds went from {baseline} to {now} in 200 restarts"
    );
    run.wait_for("the lines dropped to be reported", |run| {
        run.stderr()
            .contains("lines of services' output for stdout discarded")
    });
    drop(pipe);
}

fn lines_lost_on_a_closed_stdout_are_counted(mode: Mode) {
    // The reader of pidone's stdout goes away: writing fails with EPIPE, and every line of the
    // services' output from then on is discarded, and counted on stderr.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "talker"
command = ["/bin/sh", "-c", "seq 1 1000; exec sleep 1000"]
"#,
    );
    let (mut run, pipe) = Pidone::start_piped(mode, &dir, &["--config", &config]);
    drop(pipe);
    let lost = |run: &Pidone| -> u64 {
        run.stderr()
            .lines()
            .filter(|l| l.contains("lines of services' output for stdout discarded"))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
            .sum()
    };
    run.wait_for("the 1000 lines to be counted", |run| lost(run) == 1000);
}

fn unread_stderr_never_blocks_pidone_own_messages(mode: Mode) {
    // pidone logs every restart of a crash-looping service (-vv) to a stderr pipe nobody reads.
    // Once the pipe is full, pidone must keep supervising (the restarts go on) rather than block
    // in a write, drop what does not fit, and say so once stderr is read again.
    let dir = Dir::new();
    let config = dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "crasher"
command = ["/bin/sh", "-c", "echo x >> @D/runs; exit 1"]
restart_delay = "10ms"
restart_delay_max = "10ms"
"#,
    );
    let (mut run, pipe) = Pidone::start_stderr_piped(mode, &dir, &["-vv", "--config", &config]);
    run.wait_for("pidone's stderr pipe to fill up", |_| {
        pipe_pending(&pipe) >= 56 * 1024
    });
    let runs = |dir: &Dir| dir.read("runs").lines().count();
    let before = runs(&dir);
    // About 240 bytes of messages per restart: 700 restarts overflow pidone's bounded queue.
    run.wait_for("the restarts to go on while stderr is full", |_| {
        runs(&dir) >= before + 700
    });
    let pidone = run.pid();
    let wchan = wchan(pidone);
    assert!(
        !wchan.contains("pipe_write"),
        "pidone is blocked writing to its stderr ({wchan})"
    );
    let reader = std::thread::spawn(move || {
        let mut pipe = pipe;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).expect("read pidone's stderr");
        text
    });
    // With stderr read again, the note about what was dropped comes through.
    run.signal("TERM");
    run.wait().assert_code(
        0,
        "a crash-looping service stopped by a shutdown is not a failure",
    );
    let stderr = reader.join().expect("reader thread");
    assert!(
        stderr.contains("log messages dropped: stderr is not keeping up"),
        "the drop is reported: {}",
        tail(&stderr)
    );
    assert!(
        stderr.lines().all(|l| l.starts_with("pidone: ")),
        "whole lines only: {}",
        tail(&stderr)
    );
}
