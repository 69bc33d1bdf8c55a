//! Black-box tests of single-program mode: the real binary, run both as a true PID 1 (the init of
//! a fresh PID namespace, `unshare --pid --fork --mount-proc`) and as a plain child of the test
//! (where it is a child subreaper). Needs root, python3, util-linux and procps.
//!
//! Each scenario is a function taking a [`Mode`]; `in_both_modes!` turns it into two tests,
//! `scenario::as_pid1` and `scenario::as_subreaper`. No test waits a fixed time for an event: it
//! polls for it with a deadline. The one fixed wait is in the idle test, where it is the point.

#[macro_use]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

in_both_modes!(
    as_subreaper:
    exit_codes_propagate,
    death_by_signal_is_128_plus_n,
    map_exit_turns_a_code_into_zero,
    missing_program_is_127,
    unexecutable_program_is_126,
    each_signal_is_forwarded_to_the_child,
    group_flag_forwards_to_the_whole_group,
    signals_reach_only_the_child_by_default,
    term_ends_a_child_with_the_default_action,
    job_control_signals_never_stop_pidone,
    thousand_orphans_are_adopted_and_reaped,
    a_burst_of_zombies_beyond_one_reap_call_is_all_reaped,
    straggler_gets_term_and_pidone_waits_for_it,
    straggler_in_its_own_session_gets_term_too,
    straggler_ignoring_term_is_killed_after_grace,
    child_inherits_signal_mask_and_dispositions,
    stdin_reaches_the_child,
    stdio_passes_through_and_pidone_is_quiet,
    arguments_after_program_are_the_programs,
    idle_pidone_does_not_wake_up,
    a_full_stderr_never_blocks_pidone,
);

/// The signals a test sends to pidone and expects the child to receive, TERM last (it ends the
/// child). 36 is SIGRTMIN+2 with glibc, which reserves 32 and 33.
const FORWARDED: [(i32, &str); 10] = [
    (1, "HUP"),
    (2, "INT"),
    (3, "QUIT"),
    (10, "USR1"),
    (12, "USR2"),
    (28, "WINCH"),
    (18, "CONT"),
    (14, "ALRM"),
    (36, "RTMIN+2"),
    (15, "TERM"),
];

fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

fn exit_codes_propagate(mode: Mode) {
    for code in [0, 1, 7, 255] {
        run(mode, &sh(&format!("exit {code}"))).assert_code(code, &format!("child exits {code}"));
    }
}

fn death_by_signal_is_128_plus_n(mode: Mode) {
    run(mode, &sh("kill -TERM $$")).assert_code(143, "child killed by TERM");
    run(mode, &sh("kill -KILL $$")).assert_code(137, "child killed by KILL");
    run(mode, &sh("kill -USR1 $$")).assert_code(138, "child killed by USR1");
}

fn map_exit_turns_a_code_into_zero(mode: Mode) {
    let killed = "kill -TERM $$";
    run(mode, &["--map-exit", "143", "sh", "-c", killed])
        .assert_code(0, "--map-exit 143, child killed by TERM");
    run(mode, &["--map-exit", "143", "sh", "-c", "exit 7"])
        .assert_code(7, "--map-exit 143, child exits 7");
    let both = ["--map-exit", "1", "--map-exit", "143"];
    run(mode, &[&both[..], &sh("exit 1")].concat())
        .assert_code(0, "--map-exit 1 --map-exit 143, exit 1");
    run(mode, &[&both[..], &sh(killed)].concat())
        .assert_code(0, "--map-exit 1 --map-exit 143, TERM");
    run(mode, &[&both[..], &sh("exit 2")].concat())
        .assert_code(2, "--map-exit 1 --map-exit 143, exit 2");
}

/// Asserts that pidone printed exactly one line, its own, naming `program`.
fn assert_one_line_naming(outcome: &Outcome, program: &str) {
    let stderr_lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        stderr_lines.len(),
        1,
        "{:?}: want one stderr line about {program}, got:\n{}",
        outcome.mode,
        outcome.stderr
    );
    let line = stderr_lines[0];
    assert!(
        line.starts_with("pidone:"),
        "{:?}: stderr line lacks the pidone: prefix: {line}",
        outcome.mode
    );
    assert!(
        line.contains(program),
        "{:?}: stderr line does not name {program}: {line}",
        outcome.mode
    );
}

fn missing_program_is_127(mode: Mode) {
    for program in [
        "pidone-test-no-such-program",
        "/nonexistent-pidone-dir/program",
    ] {
        let outcome = run(mode, &[program]);
        outcome.assert_code(127, &format!("missing {program}"));
        assert_one_line_naming(&outcome, program);
    }
}

fn unexecutable_program_is_126(mode: Mode) {
    let dir = Dir::new();
    let directory = dir.s();
    let outcome = run(mode, &[&directory]);
    outcome.assert_code(126, "a directory as the program");
    assert_one_line_naming(&outcome, &directory);

    let script = dir.join("not-executable");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let script = script.to_str().unwrap();
    let outcome = run(mode, &[script]);
    outcome.assert_code(126, "a file without the x bit as the program");
    assert_one_line_naming(&outcome, script);
}

/// Starts `pidone [OPTIONS] signals.py DIR child [FLAGS]` and waits until the child (and its
/// grandchild, if any) has its handlers installed.
fn start_signal_reporter(mode: Mode, dir: &Dir, options: &[&str], flags: &[&str]) -> Pidone {
    let script = helper("signals.py");
    let directory = dir.s();
    let args = [options, &[python(), &script, &directory, "child"], flags].concat();
    let mut running = Pidone::start_command(mode, dir, mode.command(&args), None);
    let ready = dir.join("child.ready");
    running.wait_for("the child's signal handlers", |_| ready.exists());
    running
}

/// The signal numbers `role` has reported so far.
fn received(dir: &Dir, role: &str) -> Vec<i32> {
    lines(&dir.join(&format!("{role}.log")))
        .iter()
        .map(|l| l.parse().expect("signal number"))
        .collect()
}

fn each_signal_is_forwarded_to_the_child(mode: Mode) {
    let dir = Dir::new();
    let mut running = start_signal_reporter(mode, &dir, &[], &[]);
    let pid = running.pid();
    for (signal, name) in FORWARDED {
        send_signal(pid, signal);
        running.wait_for(&format!("the child to report SIG{name}"), |_| {
            received(&dir, "child").contains(&signal)
        });
    }
    running
        .wait()
        .assert_code(0, "child exits 0 on the forwarded TERM");
}

fn group_flag_forwards_to_the_whole_group(mode: Mode) {
    let dir = Dir::new();
    let mut running = start_signal_reporter(mode, &dir, &["-g"], &["--grandchild"]);
    let pid = running.pid();
    for (signal, name) in FORWARDED {
        send_signal(pid, signal);
        for role in ["child", "grandchild"] {
            running.wait_for(&format!("the {role} to report SIG{name} with -g"), |_| {
                received(&dir, role).contains(&signal)
            });
        }
    }
    running
        .wait()
        .assert_code(0, "child exits 0 on the forwarded TERM");
}

/// Without `-g`, a signal goes to the child alone. The grandchild's record proves it: the child
/// answers SIGUSR1 by sending SIGUSR2 to the grandchild, so if pidone had also sent SIGUSR1 to the
/// group it would have been pending there before SIGUSR2 and recorded first.
fn signals_reach_only_the_child_by_default(mode: Mode) {
    let dir = Dir::new();
    let mut running = start_signal_reporter(mode, &dir, &[], &["--grandchild", "--relay"]);
    let pid = running.pid();
    send_signal(pid, 10);
    running.wait_for("the grandchild to get SIGUSR2 from the child", |_| {
        received(&dir, "grandchild").contains(&12)
    });
    send_signal(pid, 15);
    // The child exits on TERM; the grandchild left behind gets TERM from pidone's clean-up.
    running
        .wait()
        .assert_code(0, "child exits 0 on the forwarded TERM");
    assert_eq!(
        received(&dir, "child"),
        [10, 15],
        "{mode:?}: what the child received"
    );
    assert_eq!(
        received(&dir, "grandchild"),
        [12, 15],
        "{mode:?}: the grandchild got a signal meant for the child"
    );
}

fn term_ends_a_child_with_the_default_action(mode: Mode) {
    let dir = Dir::new();
    let ready = dir.join("ready");
    let script = format!("touch '{}'; exec sleep 300", ready.display());
    let mut running = Pidone::start_command(mode, &dir, mode.command(&sh(&script)), None);
    running.wait_for("the child to start", |_| ready.exists());
    send_signal(running.pid(), 15);
    running
        .wait()
        .assert_code(143, "TERM sent to pidone, child keeps the default action");
}

/// TSTP, TTIN and TTOU sent to pidone must not stop it: it still forwards what follows.
fn job_control_signals_never_stop_pidone(mode: Mode) {
    let dir = Dir::new();
    let mut running = start_signal_reporter(mode, &dir, &[], &[]);
    let pid = running.pid();
    for signal in [20, 21, 22] {
        send_signal(pid, signal);
    }
    send_signal(pid, 10);
    running.wait_for(
        "the child to report SIGUSR1 sent after TSTP, TTIN, TTOU",
        |_| {
            let (state, _) = stat(pid).expect("pidone is alive");
            assert_ne!(
                state, 'T',
                "{mode:?}: pidone was stopped by a job-control signal"
            );
            received(&dir, "child").contains(&10)
        },
    );
    send_signal(pid, 15);
    running
        .wait()
        .assert_code(0, "child exits 0 on the forwarded TERM");
}

fn thousand_orphans_are_adopted_and_reaped(mode: Mode) {
    const ORPHANS: usize = 1000;
    let dir = Dir::new();
    let args = [
        python(),
        &helper("orphans.py"),
        &dir.s(),
        &ORPHANS.to_string(),
    ];
    let mut running = Pidone::start_command(mode, &dir, mode.command(&args), None);
    let pidone_pid = running.pid();
    running
        .wait_timeout(Duration::from_secs(300))
        .assert_code(0, "orphans.py");

    // As seen from inside: PID 1 in a namespace, pidone's real pid as a subreaper.
    let reaper: u32 = lines(&dir.join("reaper"))[0].parse().unwrap();
    let expected = match mode {
        Mode::Pid1 => 1,
        Mode::Child => pidone_pid,
    };
    assert_eq!(reaper, expected, "{mode:?}: the child's parent");
    let ppids = lines(&dir.join("ppids"));
    assert_eq!(
        ppids.len(),
        ORPHANS,
        "{mode:?}: orphans that reported their adoptive parent"
    );
    let strays: Vec<&String> = ppids.iter().filter(|p| **p != reaper.to_string()).collect();
    assert!(
        strays.is_empty(),
        "{mode:?}: orphans adopted by someone other than pidone ({reaper}): {strays:?}"
    );
    let zombies = fs::read_to_string(dir.join("zombies")).unwrap();
    assert_eq!(zombies, "", "{mode:?}: zombies pidone never reaped");
}

/// 2,500 orphans die while pidone is stopped: more zombies wait than one reap call takes (1,024,
/// so that a flood cannot hold the loop), and every one is still reaped once pidone runs again.
fn a_burst_of_zombies_beyond_one_reap_call_is_all_reaped(mode: Mode) {
    const ORPHANS: usize = 2500;
    let dir = Dir::new();
    let args = [
        python(),
        &helper("burst.py"),
        &dir.s(),
        &ORPHANS.to_string(),
    ];
    let mut running = Pidone::start_command(mode, &dir, mode.command(&args), None);
    // 2,500 processes made by python: minutes on a loaded machine, not the usual deadline.
    let slow = Duration::from_secs(180);
    running.wait_for_within("the orphans to be adopted", slow, |_| dir.exists("ready"));
    let pid = running.pid();
    running.signal("STOP");
    fs::write(dir.join("go"), "").expect("write go");
    running.wait_for_within(
        "the orphans to be zombies of a stopped pidone",
        slow,
        |_| {
            let zombie_of_pidone = |p: &u32| stat(*p) == Some(('Z', pid));
            let pids = fs::read_dir("/proc").expect("/proc").filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.parse::<u32>().ok()
            });
            pids.filter(zombie_of_pidone).count() >= ORPHANS
        },
    );
    running.signal("CONT");
    running
        .wait_timeout(Duration::from_secs(300))
        .assert_code(0, "burst.py");
    let zombies = fs::read_to_string(dir.join("zombies")).expect("the zombies file");
    assert_eq!(zombies, "", "{mode:?}: zombies pidone never reaped");
}

/// Starts `pidone OPTIONS straggler.py DIR child BEHAVIOUR FLAGS`, waits for the grandchild to be
/// ready, and tells the child to exit; returns when the child was told.
fn start_straggler(
    mode: Mode,
    dir: &Dir,
    options: &[&str],
    behaviour: &str,
    flags: &[&str],
) -> Pidone {
    let script = helper("straggler.py");
    let directory = dir.s();
    let args = [
        options,
        &[python(), &script, &directory, "child", behaviour],
        flags,
    ]
    .concat();
    let mut running = Pidone::start_command(mode, dir, mode.command(&args), None);
    let ready = dir.join("grandchild.ready");
    running.wait_for("the grandchild's TERM handler", |_| ready.exists());
    running
}

/// The child exits 5 leaving a grandchild that, on TERM, waits for the test's go-ahead: pidone
/// must send it TERM and still be running until it is gone. The grandchild proves the order: it
/// reports its parent after the go-ahead, which is pidone only if pidone is still alive then (as
/// PID 1, an early exit would instead kill it with the namespace).
fn straggler_scenario(mode: Mode, flags: &[&str]) {
    let dir = Dir::new();
    let mut running = start_straggler(mode, &dir, &["--grace", "60s"], "trap", flags);
    let pid = running.pid();
    let reaper = match mode {
        Mode::Pid1 => 1,
        Mode::Child => pid,
    };
    fs::write(dir.join("exit-now"), "").unwrap();
    let term = dir.join("term");
    // Asleep after sending TERM: waiting for the straggler, not on its way out.
    running.wait_for(
        "the grandchild to get TERM and pidone to wait for it",
        |_| term.exists() && stat(pid).is_some_and(|(state, _)| state == 'S'),
    );
    assert!(
        running.is_running(),
        "{mode:?}: pidone exited before its straggler"
    );
    fs::write(dir.join("go"), "").unwrap();
    let outcome = running.wait();
    let done = lines(&dir.join("done"));
    assert_eq!(
        done,
        [reaper.to_string()],
        "{mode:?}: the straggler's parent when it finished (none: it never did)"
    );
    outcome.assert_code(5, "the child's code, after the straggler");
}

fn straggler_gets_term_and_pidone_waits_for_it(mode: Mode) {
    straggler_scenario(mode, &[]);
}

/// A grandchild in a session of its own is outside the child's process group: pidone reaches it
/// only as an orphan it adopted.
fn straggler_in_its_own_session_gets_term_too(mode: Mode) {
    straggler_scenario(mode, &["--setsid"]);
}

fn straggler_ignoring_term_is_killed_after_grace(mode: Mode) {
    let grace = Duration::from_secs(1);
    let dir = Dir::new();
    let mut running = start_straggler(mode, &dir, &["--grace", "1s"], "stubborn", &[]);
    let grandchild: u32 = lines(&dir.join("grandchild.pid"))[0].parse().unwrap();
    // The child exits only after this instant, so pidone's grace period starts after it too.
    let told = Instant::now();
    fs::write(dir.join("exit-now"), "").unwrap();
    let outcome = running.wait();
    let elapsed = told.elapsed();
    outcome.assert_code(5, "the child's code, after killing the straggler");
    assert!(
        dir.join("term").exists(),
        "{mode:?}: the straggler never got TERM before KILL"
    );
    assert!(
        elapsed >= grace,
        "{mode:?}: pidone exited {elapsed:?} after the child, before the {grace:?} grace"
    );
    if mode == Mode::Child {
        // In PID-1 mode the kernel kills the namespace anyway; here only pidone can.
        assert!(
            stat(grandchild).is_none(),
            "{mode:?}: the straggler {grandchild} outlived pidone"
        );
    }
}

/// The `SigBlk` and `SigIgn` lines a `cat /proc/self/status` printed.
fn signal_sets(outcome: &Outcome) -> (String, String) {
    let field = |name: &str| {
        outcome
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| {
                panic!(
                    "{:?}: no {name} in:\n{}\n{}",
                    outcome.mode, outcome.stdout, outcome.stderr
                )
            })
    };
    (field("SigBlk:"), field("SigIgn:"))
}

fn child_inherits_signal_mask_and_dispositions(mode: Mode) {
    let dir = Dir::new();
    let status = ["cat", "/proc/self/status"];
    let sigwrap = [python(), &helper("sigwrap.py")];
    let none: [&str; 0] = [];
    for (wrapper, label) in [
        (&sigwrap[..], "started by sigwrap.py"),
        (&none[..], "started plainly"),
    ] {
        let baseline =
            Pidone::start_command(mode, &dir, mode.command_via(wrapper, false, &status), None)
                .wait();
        baseline.assert_code(0, &format!("cat without pidone, {label}"));
        let under_pidone =
            Pidone::start_command(mode, &dir, mode.command_via(wrapper, true, &status), None)
                .wait();
        under_pidone.assert_code(0, &format!("cat under pidone, {label}"));
        let (blocked, ignored) = signal_sets(&baseline);
        if !wrapper.is_empty() {
            // USR1 ALRM WINCH RTMIN+6 blocked; HUP USR2 PIPE TTIN ignored: the wrapper did its job.
            assert_eq!(blocked, "0000008008002200", "{mode:?}: sigwrap.py's mask");
            let ignored = u64::from_str_radix(&ignored, 16).unwrap();
            assert_eq!(
                ignored & 0x101801,
                0x101801,
                "{mode:?}: sigwrap.py's ignored set"
            );
        }
        assert_eq!(
            signal_sets(&under_pidone),
            (blocked, ignored),
            "{mode:?}: (SigBlk, SigIgn) of a child {label}"
        );
    }
}

fn stdin_reaches_the_child(mode: Mode) {
    let dir = Dir::new();
    let outcome =
        Pidone::start_command(mode, &dir, mode.command(&["sh"]), Some(b"exit 3\n")).wait();
    outcome.assert_code(3, "sh reading 'exit 3' from stdin");
}

fn stdio_passes_through_and_pidone_is_quiet(mode: Mode) {
    let outcome = run(mode, &sh("echo out; echo err >&2"));
    outcome.assert_code(0, "echo");
    assert_eq!(outcome.stdout, "out\n", "{mode:?}: stdout");
    assert_eq!(
        outcome.stderr, "err\n",
        "{mode:?}: stderr (pidone must be quiet without -v)"
    );
}

fn arguments_after_program_are_the_programs(mode: Mode) {
    let outcome = run(
        mode,
        &[
            "--",
            "sh",
            "-c",
            "echo \"$@\"; exit 6",
            "sh",
            "-v",
            "--grace",
            "--",
            "-g",
        ],
    );
    outcome.assert_code(6, "sh after --");
    assert_eq!(
        outcome.stdout, "-v --grace -- -g\n",
        "{mode:?}: the program's arguments"
    );
}

/// Over two seconds with nothing to do, pidone must not run at all: no periodic wake-ups.
fn idle_pidone_does_not_wake_up(mode: Mode) {
    let dir = Dir::new();
    let ready = dir.join("ready");
    let script = format!("touch '{}'; exec sleep 300", ready.display());
    let mut running = Pidone::start_command(mode, &dir, mode.command(&sh(&script)), None);
    running.wait_for("the child to start", |_| ready.exists());
    let pid = running.pid();
    // Once the child runs, pidone's start-up is over; wait for it to go to sleep.
    running.wait_for("pidone to sleep", |_| {
        stat(pid).is_some_and(|(state, _)| state == 'S')
    });
    let before = context_switches(pid);
    thread::sleep(Duration::from_secs(2));
    let after = context_switches(pid);
    let syscall = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    assert_eq!(
        after, before,
        "{mode:?}: pidone woke up while idle (now in syscall {syscall})"
    );
    send_signal(pid, 15);
    running.wait().assert_code(143, "sleep ended by TERM");
}

/// pidone's own messages never block it: with `-v` and a stderr pipe that nobody reads, filled to
/// the last byte by the program, pidone still exits with the program's status (its last
/// messages are given up on after a bounded wait).
fn a_full_stderr_never_blocks_pidone(mode: Mode) {
    // F_GETPIPE_SZ and FIONREAD: the pipe's capacity and what pidone already wrote to it.
    let fill = "import fcntl, os, struct, termios\n\
        size = fcntl.fcntl(2, 1032)\n\
        held = struct.unpack('i', fcntl.ioctl(2, termios.FIONREAD, b'0000'))[0]\n\
        os.write(2, b'x' * (size - held))\n\
        os._exit(4)\n";
    let dir = Dir::new();
    let (mut running, _unread) =
        Pidone::start_stderr_piped(mode, &dir, &["-v", python(), "-c", fill]);
    running
        .wait()
        .assert_code(4, "the program's status, stderr full");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--no-such-option", "true"],
        &["--map-exit"],
        &["--map-exit", "x", "true"],
        &["--grace", "soon", "true"],
    ] {
        let outcome = run(Mode::Child, args);
        outcome.assert_code(2, &format!("pidone {args:?}"));
        assert!(
            !outcome.stderr.trim().is_empty(),
            "pidone {args:?}: no usage message on stderr"
        );
    }
}

#[test]
fn help_and_version() {
    let help = run(Mode::Child, &["--help"]);
    help.assert_code(0, "--help");
    for option in ["--group", "--map-exit", "--grace"] {
        assert!(
            help.stdout.contains(option),
            "--help does not mention {option}:\n{}",
            help.stdout
        );
    }
    let version = run(Mode::Child, &["--version"]);
    version.assert_code(0, "--version");
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version: {}",
        version.stdout
    );
}

#[test]
fn verbose_says_it_is_a_subreaper() {
    let outcome = run(Mode::Child, &["-v", "true"]);
    outcome.assert_code(0, "-v true");
    assert!(
        outcome.stderr.to_lowercase().contains("subreaper"),
        "-v does not mention the subreaper:\n{}",
        outcome.stderr
    );
    for line in outcome.stderr.lines() {
        assert!(
            line.starts_with("pidone:"),
            "-v line without the pidone: prefix: {line}"
        );
    }
}

#[test]
fn closed_stdio_is_opened_on_dev_null_for_the_child() {
    // pidone started with stdin and stdout closed: the child finds /dev/null at fds 0 and 1,
    // never one of pidone's own pipes or sockets.
    let script = format!(
        "exec 0<&- 1>&-; exec {} -- /bin/sh -c 'echo $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) >&2'",
        pidone()
    );
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "/dev/null /dev/null\n",
        "the child's stdin and stdout"
    );
}

/// The init-only build (`make init-only`; `make test` runs this file against it through
/// `$PIDONE_BIN`) refuses what needs the services, with exit status 2 and the reason, and
/// starts nothing. The full build has these and is tested on them elsewhere: this test checks
/// nothing there, for that reason only.
#[test]
fn the_init_only_build_refuses_what_needs_the_services() {
    let version = run(Mode::Child, &["--version"]);
    version.assert_code(0, "--version");
    if !version.stdout.contains("init-only") {
        return;
    }
    let dir = Dir::new();
    let started = dir.join("started");
    let program = format!("touch '{}'", started.display());
    let refused: [&[&str]; 6] = [
        &["status"],
        &["stop", "web"],
        &["validate"],
        &["import", "procfile", "Procfile"],
        &["--config", "/etc/pidone.toml", "sh", "-c", &program],
        &["--socket", "/run/pidone.sock", "sh", "-c", &program],
    ];
    let from_env = Pidone::start(
        Mode::Child,
        &dir,
        &["sh", "-c", &program],
        &[("PIDONE_CONFIG", "/etc/pidone.toml")],
    )
    .wait();
    for (args, outcome) in (refused.iter().map(|a| a.join(" ")))
        .zip(refused.iter().map(|a| run(Mode::Child, a)))
        .chain([("PIDONE_CONFIG=... sh".to_string(), from_env)])
    {
        outcome.assert_code(2, &format!("init-only pidone {args}"));
        assert!(
            outcome
                .stderr
                .contains("init-only build: no services, no control socket"),
            "init-only pidone {args}: the reason is not given:\n{}",
            outcome.stderr
        );
    }
    assert!(!started.exists(), "a refused command started its program");
}
