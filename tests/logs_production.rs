//! Black-box tests of logs for production: `log_file` rotated by size with no line lost or split
//! under a writer going flat out, a full disk (a small tmpfs) and the recovery, JSON lines (each
//! one parsed, binary input included), timestamps, the console and a file at once, and the
//! per-service counters. Needs root (mount) and util-linux.

#[macro_use]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

in_both_modes!(
    rotation_keeps_every_line_whole_under_a_flat_out_writer,
    rotation_drops_the_oldest_files_beyond_log_keep,
    a_full_disk_drops_and_counts_lines_then_writing_resumes,
    json_lines_are_valid_json_binary_and_long_lines_included,
    timestamps_start_every_line,
    console_and_file_at_once_with_the_file_in_json,
    a_missing_or_locked_directory_and_a_removed_file_heal,
    a_tty_service_sees_a_terminal,
    a_logger_pipeline_loses_nothing_across_restarts_of_either_side,
);

/// The service `name`'s `log` object (counters and error) from the API.
fn log_of(d: &Daemon, name: &str) -> Value {
    d.service(name)["log"].clone()
}

/// A oneshot writing `count` numbered lines of 100 bytes (newline included) as fast as awk
/// writes them: `line 000001 xxx...`.
fn flat_out(count: usize) -> String {
    format!(
        r#"command = ["/usr/bin/awk", "BEGIN {{ pad = sprintf(\"%87s\", \"\"); gsub(/ /, \"x\", pad); for (i = 1; i <= {count}; i++) printf \"line %06d %s\\n\", i, pad }}"]"#
    )
}

/// The numbered lines of the files `base.N`… `base.1`, `base` (oldest first): every file ends
/// with a newline and holds at most `max` bytes; returns the line numbers.
fn numbers_across(dir: &Dir, base: &str, max: u64) -> (Vec<usize>, usize) {
    let mut files: Vec<(usize, String)> = fs::read_dir(dir.path())
        .expect("read the dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let rest = name.strip_prefix(base)?;
            let n = match rest {
                "" => 0,
                r => r.strip_prefix('.')?.parse().ok()?,
            };
            Some((n, name))
        })
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut numbers = Vec::new();
    for (_, name) in &files {
        let text = dir.read(name);
        assert!(text.len() as u64 <= max, "{name}: {} bytes", text.len());
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends mid-line"
        );
        for line in text.lines() {
            assert_eq!(line.len(), 99, "{name}: a whole line: {line:?}");
            let n = line
                .strip_prefix("line ")
                .and_then(|l| l.get(..6))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name}: not a numbered line: {line:?}"));
            numbers.push(n);
        }
    }
    (numbers, files.len())
}

/// 20,000 lines of 100 bytes (2 MB) written flat out into a file rotated at 64 KiB: 31 files,
/// none over the limit, every line whole and in order, none lost; the counters agree.
fn rotation_keeps_every_line_whole_under_a_flat_out_writer(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            r#"
[[services]]
name = "flood"
type = "oneshot"
log_file = "@D/flood.log"
log_max_size = "64KB"
log_keep = 100
{}

[[services]]
name = "idle"
command = ["/bin/sleep", "1000"]
"#,
            flat_out(20_000)
        ),
    );
    d.wait_state("flood", "stopped");
    d.wait_service("flood", "every line counted", |s| {
        s["log"]["lines"] == 20_000
    });
    let (numbers, files) = numbers_across(&d.dir, "flood.log", 65_536);
    assert_eq!(
        numbers,
        (1..=20_000).collect::<Vec<_>>(),
        "every line, once, in order"
    );
    assert_eq!(files, 2_000_000usize.div_ceil(65_500));
    let log = log_of(&d, "flood");
    assert_eq!(log["bytes"], 20_000 * 99);
    assert_eq!(log["dropped_file"], 0);
    assert_eq!(log["error"], Value::Null);
    // `pidone logs` still has the last lines: they passed through pidone.
    let out = d.ok(&["logs", "-n", "1", "flood"]);
    assert!(out.stdout.starts_with("line 020000 x"), "{out:?}");
}

/// With `log_keep = 3`, only `name.1` to `name.3` stay: the newest lines, contiguous.
fn rotation_drops_the_oldest_files_beyond_log_keep(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            r#"
[[services]]
name = "flood"
type = "oneshot"
log_file = "@D/flood.log"
log_max_size = 8192
log_keep = 3
{}

[[services]]
name = "idle"
command = ["/bin/sleep", "1000"]
"#,
            flat_out(1000)
        ),
    );
    d.wait_state("flood", "stopped");
    d.wait_service("flood", "every line counted", |s| s["log"]["lines"] == 1000);
    let (numbers, files) = numbers_across(&d.dir, "flood.log", 8192);
    assert_eq!(files, 4, "flood.log and 3 rotated files");
    assert!(!d.dir.exists("flood.log.4"));
    let first = numbers[0];
    assert_eq!(
        numbers,
        (first..=1000).collect::<Vec<_>>(),
        "the newest, contiguous"
    );
    // 81 lines fit in 8192 bytes: the three rotated files are full.
    assert!(numbers.len() > 3 * 81, "{} lines kept", numbers.len());
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (needs root)");
        Tmpfs(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The log file's disk is full: the service runs on, its lines are dropped and counted, the
/// reason shows in status, health and metrics, and no half line is left in the file. Once space
/// is freed, writing resumes.
fn a_full_disk_drops_and_counts_lines_then_writing_resumes(mode: Mode) {
    let dir = Dir::new();
    let _disk = Tmpfs::mount(&dir.join("small"), "256k");
    // Fill it up, leaving a few bytes short of a page.
    let filler = dir.join("small/filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let mut d = Daemon::start_in(
        mode,
        dir,
        r#"
[[services]]
name = "chatty"
log_file = "@D/small/chatty.log"
command = ["/bin/sh", "-c", '''
i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo "before $i"; done
while [ ! -e @D/go ]; do sleep 0.05; done
i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo "after $i"; done
exec sleep 1000
''']
"#,
    );
    d.wait_service("chatty", "the first lines dropped", |s| {
        s["log"]["dropped_file"] == 100
    });
    let log = log_of(&d, "chatty");
    let error = log["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("chatty.log: No space left on device"),
        "{log}"
    );
    assert_eq!(d.state("chatty"), "running", "the service runs on");
    let status = d.ok(&["status"]).stdout;
    assert!(
        status.contains("chatty.log: No space left on device"),
        "{status}"
    );
    let (code, body) = d.health();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    let metrics = d.metrics();
    assert!(metrics.contains("pidone_log_dropped_lines_total{service=\"chatty\",to=\"file\"} 100"));
    assert!(metrics.contains("pidone_log_file_failing{service=\"chatty\"} 1"));
    let text = d.dir.read("small/chatty.log");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "no half line: {text:?}"
    );

    fs::remove_file(&filler).expect("free the disk");
    fs::write(d.dir.join("go"), "").expect("release the service");
    d.run.wait_for("the lines after to be written", |_| {
        d.dir.read("small/chatty.log").contains("after 100\n")
    });
    let log = log_of(&d, "chatty");
    assert_eq!(log["error"], Value::Null, "{log}");
    assert_eq!(log["dropped_file"], 100);
    assert_eq!(log["lines"], 200);
    let after: Vec<String> = (1..=100).map(|i| format!("after {i}")).collect();
    let text = d.dir.read("small/chatty.log");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("after")).collect();
    assert_eq!(lines, after);
    assert_eq!(d.health().0, 200);
    assert!(d.run.stderr().contains("chatty.log: writing again"));
}

/// Every line of pidone's stdout and stderr (the services' and its own) parses as one JSON
/// object; invalid UTF-8 is escaped, not dropped; a long line comes as partial parts.
fn json_lines_are_valid_json_binary_and_long_lines_included(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        "pidone.toml",
        r#"
[[services]]
name = "odd"
type = "oneshot"
command = ["/bin/sh", "-c", '''
printf 'plain "quoted" \\ back\ttab\n'
printf 'bin \377\376 end\n'
printf 'esc \033[31mred\033[0m\n' >&2
head -c 10000 /dev/zero | tr '\0' 'y'; echo
''']

[[services]]
name = "last"
type = "oneshot"
required = true
depends_on = ["odd"]
command = ["/bin/sh", "-c", "exit 3"]
"#,
    );
    let config = dir.join("pidone.toml");
    let mut run = Pidone::start_config(
        mode,
        &dir,
        config.to_str().expect("UTF-8"),
        &["--log-format", "json"],
    );
    run.wait();
    let objects = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    };
    let out = objects(&run.stdout());
    let err = objects(&run.stderr());
    let messages: Vec<&str> = out
        .iter()
        .map(|o| o["message"].as_str().expect("message"))
        .collect();
    assert_eq!(messages[0], "plain \"quoted\" \\ back\ttab");
    assert_eq!(messages[1], "bin \\xff\\xfe end");
    for o in &out {
        assert_eq!(o["service"], "odd");
        assert_eq!(o["stream"], "stdout");
        assert_eq!(o["time"].as_str().map(str::len), Some(24), "{o}");
    }
    let long: Vec<&Value> = out.iter().skip(2).collect();
    assert!(long.len() >= 3, "10,000 bytes in parts of at most 4 KiB");
    assert!(long[..long.len() - 1].iter().all(|o| o["partial"] == true));
    assert_eq!(long[long.len() - 1].get("partial"), None);
    let joined: String = long
        .iter()
        .map(|o| o["message"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(joined, "y".repeat(10_000));
    let red = err
        .iter()
        .find(|o| o["service"] == "odd")
        .expect("odd's stderr line");
    assert_eq!(red["message"], "esc \u{1b}[31mred\u{1b}[0m");
    assert_eq!(red["stream"], "stderr");
    let own: Vec<&Value> = err.iter().filter(|o| o["service"] == "pidone").collect();
    assert!(
        own.iter().any(|o| o["level"] == "error"
            && o["message"] == "required service last failed: shutting down"),
        "pidone's own messages as JSON: {err:?}"
    );
}

/// True for `2026-11-29T20:36:03.123Z `.
fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let marks = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
        (24, b' '),
    ];
    b.len() > 25
        && digits.iter().all(|&i| b[i].is_ascii_digit())
        && marks.iter().all(|&(i, c)| b[i] == c)
}

/// `[log] timestamps = true`: every line on stdout and stderr, the services' and pidone's own,
/// and in a log file, starts with an RFC 3339 UTC time with milliseconds, of today.
fn timestamps_start_every_line(mode: Mode) {
    let dir = Dir::new();
    dir.write(
        "pidone.toml",
        r#"
[log]
timestamps = true

[[services]]
name = "talk"
type = "oneshot"
command = ["/bin/sh", "-c", "echo out; echo err >&2"]

[[services]]
name = "filed"
type = "oneshot"
log_file = "@D/filed.log"
command = ["/bin/sh", "-c", "echo into the file"]

[[services]]
name = "last"
type = "oneshot"
required = true
depends_on = ["filed"]
command = ["/bin/sh", "-c", "exit 3"]
"#,
    );
    let config = dir.join("pidone.toml");
    let mut run = Pidone::start_config(mode, &dir, config.to_str().expect("UTF-8"), &[]);
    run.wait();
    let today = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .expect("date")
            .stdout,
    )
    .expect("UTF-8");
    let (out, err, file) = (run.stdout(), run.stderr(), dir.read("filed.log"));
    for line in out.lines().chain(err.lines()).chain(file.lines()) {
        assert!(stamped(line), "{line:?}");
        assert!(line.starts_with(today.trim()), "{line:?}");
    }
    assert!(out.lines().any(|l| l.ends_with(" [talk ] out")), "{out}");
    assert!(err.lines().any(|l| l.ends_with(" [talk ] err")), "{err}");
    assert!(
        err.lines().any(|l| l[25..].starts_with("pidone: ")),
        "{err}"
    );
    assert!(file.ends_with(" into the file\n"), "{file}");
}

/// `log = "prefix"` with `log_file`: each line on pidone's stdout and in the file, here in JSON
/// (`log_format`) while the console stays text.
fn console_and_file_at_once_with_the_file_in_json(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        r#"
[[services]]
name = "both"
type = "oneshot"
log = "prefix"
log_file = "@D/both.log"
log_format = "json"
command = ["/bin/sh", "-c", "echo one; echo two >&2"]

[[services]]
name = "idle"
command = ["/bin/sleep", "1000"]
"#,
    );
    d.wait_state("both", "stopped");
    d.run.wait_for("both lines on the console", |run| {
        run.stdout().contains("[both] one\n") && run.stderr().contains("[both] two\n")
    });
    d.run.wait_for("both lines in the file", |_| {
        d.dir.read("both.log").lines().count() == 2
    });
    let file: Vec<Value> = (d.dir.read("both.log").lines())
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let got: Vec<(&str, &str)> = file
        .iter()
        .map(|o| {
            (
                o["stream"].as_str().unwrap_or(""),
                o["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        got.contains(&("stdout", "one")) && got.contains(&("stderr", "two")),
        "{got:?}"
    );
    let log = log_of(&d, "both");
    assert_eq!(
        (log["lines"].clone(), log["bytes"].clone()),
        (2.into(), 6.into())
    );
}

/// A log directory missing, one the service's user cannot write to, the file removed and then
/// renamed away by someone else: the services run on, the reason shows, and writing resumes in a
/// new file once the cause is gone.
fn a_missing_or_locked_directory_and_a_removed_file_heal(mode: Mode) {
    let dir = Dir::new();
    fs::create_dir(dir.join("locked")).expect("mkdir locked");
    let ticker = r#"command = ["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.02; done"]"#;
    let mut d = Daemon::start_in(
        mode,
        dir,
        &format!(
            r#"
[[services]]
name = "lost"
log_file = "@D/logs/app.log"
{ticker}

[[services]]
name = "locked"
user = "nobody"
log_file = "@D/locked/app.log"
{ticker}
"#
        ),
    );
    let failing = |s: &Value, why: &str| {
        s["log"]["error"].as_str().is_some_and(|e| e.contains(why))
            && s["log"]["dropped_file"].as_u64() > Some(0)
    };
    d.wait_service("lost", "missing directory reported", |s| {
        failing(s, "logs/app.log: No such file or directory")
    });
    d.wait_service("locked", "permission reported", |s| {
        failing(s, "locked/app.log: Permission denied")
    });
    assert_eq!(d.state("lost"), "running");
    assert_eq!(d.state("locked"), "running");
    let (code, body) = d.health();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("lost: log_file"), "{body}");

    fs::create_dir(d.dir.join("logs")).expect("mkdir logs");
    let chown = Command::new("chown")
        .arg("nobody")
        .arg(d.dir.join("locked"))
        .status()
        .expect("run chown");
    assert!(chown.success());
    let ticks = |path: &Path| {
        fs::read_to_string(path)
            .unwrap_or_default()
            .contains("tick")
    };
    let (lost, locked) = (d.dir.join("logs/app.log"), d.dir.join("locked/app.log"));
    d.wait_service("lost", "writing again", |s| {
        s["log"]["error"].is_null() && ticks(&lost)
    });
    d.wait_service("locked", "writing again", |s| {
        s["log"]["error"].is_null() && ticks(&locked)
    });
    assert_eq!(d.health().0, 200);

    fs::remove_file(&lost).expect("remove the file");
    d.run
        .wait_for("a new file after the removal", |_| ticks(&lost));
    let moved = d.dir.join("logs/app.log.old");
    fs::rename(&lost, &moved).expect("rotate it away");
    d.run
        .wait_for("a new file after the rename", |_| ticks(&lost));
    let old = fs::read_to_string(&moved).expect("the renamed file");
    assert!(old.ends_with('\n'), "the old file ends with a whole line");
}

/// `tty = true`: the service's stdout and stderr are a terminal (`isatty`), its lines come
/// through unchanged (no `\r` added, colours kept), prefixed on pidone's stdout and in its log
/// file, and the terminal's end (EIO on the master) is a plain end, not an error.
fn a_tty_service_sees_a_terminal(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        r#"
[[services]]
name = "t"
type = "oneshot"
tty = true
log = "prefix"
log_file = "@D/t.log"
command = ["/bin/sh", "-c", '''
[ -t 1 ] && echo stdout is a terminal
[ -t 2 ] && echo stderr is a terminal >&2
[ -t 0 ] || echo stdin is not
printf 'colour \033[32mgreen\033[0m\n'
''']

[[services]]
name = "idle"
command = ["/bin/sleep", "1000"]
"#,
    );
    d.wait_state("t", "stopped");
    d.wait_service("t", "its 4 lines", |s| s["log"]["lines"] == 4);
    let expected = "stdout is a terminal\nstderr is a terminal\nstdin is not\ncolour \u{1b}[32mgreen\u{1b}[0m\n";
    assert_eq!(d.dir.read("t.log"), expected);
    let prefixed: String = expected.lines().map(|l| format!("[t   ] {l}\n")).collect();
    d.run
        .wait_for("the lines on stdout", |run| run.stdout() == prefixed);
    assert!(
        !d.run.stderr().contains("cannot read"),
        "{}",
        d.run.stderr()
    );
}

/// `log_to`: a producer that exits after every 50 lines (restarted each time) writes 1000
/// numbered lines through a pipeline to a logger that exits after every 300 lines it copied
/// (restarted too): every line arrives once, in order, and the logger never sees the end of its
/// input while its producer restarts.
fn a_logger_pipeline_loses_nothing_across_restarts_of_either_side(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        r#"
[[services]]
name = "producer"
log_to = "logger"
restart = "always"
restart_delay = "10ms"
restart_delay_max = "50ms"
command = ["/bin/sh", "-c", '''
n=$(cat @D/next 2>/dev/null || echo 1); end=$((n+49))
while [ $n -le $end ]; do echo "line $n"; n=$((n+1)); done
echo $n > @D/next
[ $n -gt 1000 ] && exec sleep 1000
exit 1
''']

[[services]]
name = "logger"
restart = "always"
restart_delay = "10ms"
restart_delay_max = "50ms"
command = ["/bin/sh", "-c", '''
n=0
while IFS= read -r line; do
  echo "$line" >> @D/collected; n=$((n+1)); [ $n -ge 300 ] && exit 1
done
echo EOF >> @D/collected
''']
"#,
    );
    d.run.wait_for("1000 lines collected", |_| {
        d.dir.read("collected").lines().count() >= 1000
    });
    let expected: Vec<String> = (1..=1000).map(|i| format!("line {i}")).collect();
    let collected = d.dir.read("collected");
    assert_eq!(collected.lines().collect::<Vec<_>>(), expected);
    assert!(d.service("producer")["restarts"].as_u64() >= Some(19));
    assert!(d.service("logger")["restarts"].as_u64() >= Some(3));
    assert!(d.run.stdout().is_empty(), "nothing through pidone's stdout");
}
