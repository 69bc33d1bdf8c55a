//! The limits of docs/config.md ("Limits"), each accepted at the limit and refused one over
//! it, and the duration floors.

use super::*;

/// One service `a` running /bin/true, with `extra` as its line 4 onwards.
fn one(extra: &str) -> String {
    format!("[[services]]\nname = \"a\"\ncommand = \"/bin/true\"\n{extra}\n")
}

/// A TOML array of `n` quoted strings made by `item(i)`, i from 1.
fn array(n: usize, item: impl Fn(usize) -> String) -> String {
    let items: Vec<String> = (1..=n).map(|i| format!("\"{}\"", item(i))).collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn limit_on_instances() {
    assert_eq!(ok(&one("instances = 1024")).services.len(), 1024);
    assert_eq!(
        errs(&one("instances = 1025")),
        ["F:4: service \"a\": key \"instances\": too many instances (1025; the limit is 1024)"]
    );
}

#[test]
fn limit_on_services_counts_instances() {
    let four: String = ["a", "b", "c", "d"]
        .map(|n| {
            format!("[[services]]\nname = \"{n}\"\ncommand = \"/bin/true\"\ninstances = 1024\n")
        })
        .concat();
    assert_eq!(ok(&four).services.len(), 4096);
    let more = format!("{four}[[services]]\nname = \"e\"\ncommand = \"/bin/true\"\n");
    assert_eq!(
        errs(&more),
        ["F:18: service \"e\": key \"name\": too many services (4097; the limit is 4096)"]
    );
}

#[test]
fn limit_on_dependencies() {
    // `a` with `key = value`, and 257 instances of `b` to name.
    let with = |key: &str, value: String| {
        let b = "[[services]]\nname = \"b\"\ncommand = \"/bin/true\"\ninstances = 257\n";
        format!("{}{b}", one(&format!("{key} = {value}")))
    };
    let names = |n: usize| array(n, |i| format!("b-{i}"));
    let waits = |n: usize| (1..=n).map(|i| format!("b-{i} = 1")).collect::<Vec<_>>();
    let c = ok(&with("depends_on", names(256)));
    assert_eq!(c.services[256].depends_on.len(), 256);
    for (key, value) in [
        ("depends_on", names(257)),
        ("after", names(257)),
        ("wait_after", format!("{{ {} }}", waits(257).join(", "))),
    ] {
        assert_eq!(
            errs(&with(key, value)),
            [format!(
                "F:4: service \"a\": key \"{key}\": too many dependencies (257; the limit is 256)"
            )]
        );
    }
}

#[test]
fn limit_on_checks() {
    let with = |n: usize| one(&"[[services.checks]]\ntcp = \"127.0.0.1:1\"\n".repeat(n));
    assert_eq!(ok(&with(32)).services[0].checks.len(), 32);
    assert_eq!(
        errs(&with(33)),
        ["F:4: service \"a\": key \"checks\": too many checks (33; the limit is 32)"]
    );
}

#[test]
fn limit_on_variables_in_env_and_env_file() {
    let table = |n: usize| {
        let vars: Vec<String> = (1..=n).map(|i| format!("V{i} = \"x\"")).collect();
        one(&format!("env = {{ {} }}", vars.join(", ")))
    };
    assert_eq!(env_of(&ok(&table(1024)).services[0], "V1024"), Some("x"));
    assert_eq!(
        errs(&table(1025)),
        ["F:4: service \"a\": key \"env\": too many variables (1025; the limit is 1024)"]
    );
    let s = Scratch::new();
    let lines = |n: usize| (1..=n).map(|i| format!("V{i}=x\n")).collect::<String>();
    s.write("at.env", &lines(1024));
    s.write("over.env", &lines(1025));
    let path = s.write("p.toml", &one("env_file = \"at.env\""));
    assert!(load(std::slice::from_ref(&path), &s.ctx(&[])).is_ok());
    let path = s.write("p.toml", &one("env_file = \"over.env\""));
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("too many");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        "F:4: service \"a\": key \"env_file\": too many variables (1025; the limit is 1024)"
    );
}

#[test]
fn limit_on_the_length_of_any_string() {
    let long = |n: usize| "x".repeat(n);
    assert_eq!(
        ok(&one(&format!("args = [\"{}\"]", long(65536)))).services[0].argv[1].len(),
        65536
    );
    let refused = "value too long (65537 bytes; the limit is 65536)";
    assert_eq!(
        errs(&one(&format!("args = [\"y\", \"{}\"]", long(65537)))),
        [format!("F:4: service \"a\": key \"args\": {refused}")]
    );
    // Keys count too, at any depth.
    assert_eq!(
        errs(&one(&format!("env = {{ {} = \"1\" }}", long(65537)))),
        [format!("F:4: service \"a\": key \"env\": {refused}")]
    );
    assert_eq!(
        errs(&one(&format!(
            "[[services.checks]]\nexec = [\"{}\"]",
            long(65537)
        ))),
        [format!("F:5: service \"a\": key \"checks\": {refused}")]
    );
}

#[test]
fn limit_on_name_length() {
    let name = "n".repeat(64);
    let c = ok(&format!(
        "[[services]]\nname = \"{name}\"\ncommand = \"/bin/true\"\n"
    ));
    assert!(
        describe(&c).contains(&format!("  1. {name}  ")),
        "{}",
        describe(&c)
    );
    for n in [65, 65536] {
        let name = "n".repeat(n);
        assert_eq!(
            errs(&format!(
                "[[services]]\nname = \"{name}\"\ncommand = \"/bin/true\"\n"
            )),
            [format!(
                "F:2: service \"{name}\": key \"name\": name too long ({n} bytes; the limit is 64)"
            )]
        );
    }
    assert_eq!(
        errs(&one(&format!(
            "[[services.checks]]\nname = \"{}\"\ntcp = \"127.0.0.1:1\"",
            "c".repeat(65)
        ))),
        ["F:5: service \"a\": key \"checks[1].name\": name too long (65 bytes; the limit is 64)"]
    );
}

/// Whatever a caller gives them, the padded tables never overflow a format width (which would
/// abort pidone).
#[test]
fn describe_survives_an_overlong_name() {
    let mut c = ok(&one(""));
    c.services[0].name = "n".repeat(70_000);
    assert_eq!(c.name_width(), 255);
    assert!(describe(&c).contains(&c.services[0].name));
}

#[test]
fn limit_on_file_sizes() {
    let s = Scratch::new();
    let comment = |n: u64| format!("#{}\n", "c".repeat(n as usize - 2));
    s.write("at.env", &comment(limits::MAX_ENV_FILE_BYTES));
    s.write("over.env", &comment(limits::MAX_ENV_FILE_BYTES + 1));
    let path = s.write("p.toml", &one("env_file = \"at.env\""));
    assert!(load(std::slice::from_ref(&path), &s.ctx(&[])).is_ok());
    let path = s.write("p.toml", &one("env_file = \"over.env\""));
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("too big");
    assert_eq!(
        render(&e)
            .replace(&path.display().to_string(), "F")
            .replace(&s.dir.display().to_string(), "D"),
        "F:4: service \"a\": key \"env_file\": cannot read D/over.env: larger than the limit of 1048576 bytes"
    );
    let config = |n: u64| one("") + &comment(n - one("").len() as u64);
    let path = s.write("at.toml", &config(limits::MAX_CONFIG_FILE_BYTES));
    assert!(load(std::slice::from_ref(&path), &s.ctx(&[])).is_ok());
    let path = s.write("over.toml", &config(limits::MAX_CONFIG_FILE_BYTES + 1));
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("too big");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        "F: cannot read F: larger than the limit of 4194304 bytes"
    );
}

/// An env file or a config file that is not a regular file (a FIFO would block pidone, a
/// symlink to /dev/zero would fill its memory) is refused; a symlink to a regular file is fine.
#[test]
fn config_and_env_files_must_be_regular_files() {
    let s = Scratch::new();
    let fifo = |name: &str| {
        let path = s.dir.join(name);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|st| st.success()), "mkfifo {name}");
    };
    fifo("fifo.env");
    fifo("fifo.toml");
    std::os::unix::fs::symlink("/dev/zero", s.dir.join("zero.env")).expect("symlink");
    s.write("real.env", "A=1\n");
    std::os::unix::fs::symlink(s.dir.join("real.env"), s.dir.join("link.env")).expect("symlink");
    std::fs::create_dir(s.dir.join("dir.env")).expect("mkdir");
    let path = s.write(
        "p.toml",
        &["fifo", "zero", "dir", "link"]
            .map(|n| format!("[[services]]\nname = \"{n}\"\ncommand = \"/bin/true\"\nenv_file = \"{n}.env\"\n"))
            .concat(),
    );
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("refused");
    assert_eq!(
        render(&e)
            .replace(&path.display().to_string(), "F")
            .replace(&s.dir.display().to_string(), "D"),
        "\
F:4: service \"fifo\": key \"env_file\": cannot read D/fifo.env: not a regular file (a fifo)
F:8: service \"zero\": key \"env_file\": cannot read D/zero.env: not a regular file (a character device)
F:12: service \"dir\": key \"env_file\": cannot read D/dir.env: not a regular file (a directory)"
    );
    let fifo_config = s.dir.join("fifo.toml");
    let e = load(std::slice::from_ref(&fifo_config), &s.ctx(&[])).expect_err("refused");
    assert_eq!(
        render(&e).replace(&s.dir.display().to_string(), "D"),
        "D/fifo.toml: cannot read D/fifo.toml: not a regular file (a fifo)"
    );
}

/// The image's user database is read like a config file: a FIFO in its place is an error, not
/// a frozen pidone (it is read again at every reload).
#[test]
fn user_database_must_be_a_regular_file() {
    let s = Scratch::new();
    std::fs::create_dir(s.dir.join("etc")).expect("mkdir");
    let made = std::process::Command::new("mkfifo")
        .arg(s.dir.join("etc/passwd"))
        .status();
    assert!(made.is_ok_and(|st| st.success()), "mkfifo");
    let path = s.write("p.toml", &one("user = \"app\""));
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("refused");
    assert_eq!(
        render(&e)
            .replace(&path.display().to_string(), "F")
            .replace(&s.dir.display().to_string(), "D"),
        "F:4: service \"a\": key \"user\": cannot read D/etc/passwd: not a regular file (a fifo)"
    );
}

/// Every duration has a floor: at it the config loads, below it the key is refused (issue 10:
/// `restart_delay = 1ns` with an equal `restart_delay_max` forked a crashing service in a tight
/// loop).
#[test]
fn durations_at_their_floor_load() {
    let c = ok(r#"[timeouts]
post_script_timeout = "1ms"
service_shutdown_timeout = "1ms"
global_shutdown_timeout = "1ms"
dependency_wait_timeout = "1ms"

[[services]]
name = "a"
command = "true"
restart_delay = "10ms"
restart_delay_max = "10ms"
start_delay = "1ms"
dependency_wait_timeout = "1ms"
stop_timeout = "1ms"

[[services]]
name = "b"
command = "true"
depends_on = "a"
wait_after = "1ms"
health_check = { command = "true", start_delay = "1ms" }

[[services.checks]]
exec = "true"
initial_delay = "1ms"

[[services]]
name = "c"
command = "true"
depends_on = "a"
wait_after = { a = "1ms" }
restart_delay = 0
start_delay = 0
stop_timeout = 0
dependency_wait_timeout = 0
"#);
    let ms = Duration::from_millis;
    let (a, b, c3) = (get(&c, "a"), get(&c, "b"), get(&c, "c"));
    assert_eq!(c.timeouts.global_shutdown, ms(1));
    assert_eq!((a.restart_delay, a.restart_delay_max), (ms(10), ms(10)));
    assert_eq!((a.start_delay, a.stop_timeout), (ms(1), ms(1)));
    assert_eq!(a.dependency_wait_timeout, ms(1));
    assert_eq!(b.wait_after.len(), 1);
    assert_eq!(
        (b.checks[0].initial_delay, b.checks[1].initial_delay),
        (ms(1), ms(1))
    );
    assert_eq!(c3.wait_after.len(), 1);
    assert_eq!(
        (c3.restart_delay, c3.stop_timeout),
        (Duration::from_secs(1), Duration::ZERO)
    );
}

#[test]
fn durations_below_their_floor_are_refused() {
    assert_eq!(
        errs(
            r#"[timeouts]
global_shutdown_timeout = 0.0005

[[services]]
name = "a"
command = "true"
restart_delay = 0.000000001
restart_delay_max = 0.000000001
start_delay = 0.0005
dependency_wait_timeout = 0.0005
stop_timeout = 0.0005

[[services]]
name = "b"
command = "true"
depends_on = "a"
wait_after = 0.0005
restart_delay = "9ms"
restart_delay_max = 0
health_check = { command = "true", start_delay = 0.0005 }

[[services.checks]]
exec = "true"
initial_delay = 0.0005
"#
        ),
        vec![
            "F:2: key \"timeouts.global_shutdown_timeout\": global_shutdown_timeout must be 0 or at least 1ms",
            "F:7: service \"a\": key \"restart_delay\": restart_delay must be 0 or at least 10ms",
            "F:8: service \"a\": key \"restart_delay_max\": restart_delay_max must be at least 10ms",
            "F:9: service \"a\": key \"start_delay\": start_delay must be 0 or at least 1ms",
            "F:10: service \"a\": key \"dependency_wait_timeout\": dependency_wait_timeout must be 0 or at least 1ms",
            "F:11: service \"a\": key \"stop_timeout\": stop_timeout must be 0 or at least 1ms",
            "F:17: service \"b\": key \"wait_after\": wait_after must be 0 or at least 1ms",
            "F:18: service \"b\": key \"restart_delay\": restart_delay must be 0 or at least 10ms",
            "F:19: service \"b\": key \"restart_delay_max\": restart_delay_max must be at least 10ms",
            "F:20: service \"b\": key \"health_check.start_delay\": start_delay must be at least 1ms",
            "F:24: service \"b\": key \"checks[1].initial_delay\": initial_delay must be 0 or at least 1ms",
        ]
    );
}

/// `restart_reset` (issue 11: the window was fixed at 10 s): 10 s by default, any duration from
/// its floor of 1 s up; below it (0 included) the key is refused.
#[test]
fn restart_reset_defaults_to_10s_and_has_a_floor_of_1s() {
    let c = ok(r#"[[services]]
name = "a"
command = "true"

[[services]]
name = "b"
command = "true"
restart_reset = "1s"

[[services]]
name = "c"
command = "true"
restart_reset = "5m"
"#);
    let resets: Vec<Duration> = ["a", "b", "c"]
        .iter()
        .map(|n| get(&c, n).restart_reset)
        .collect();
    assert_eq!(
        resets,
        [10, 1, 300].map(Duration::from_secs),
        "default, floor, written"
    );
    assert_eq!(
        errs(
            "[[services]]\nname = \"a\"\ncommand = \"true\"\nrestart_reset = \"999ms\"\n\n[[services]]\nname = \"b\"\ncommand = \"true\"\nrestart_reset = 0\n"
        ),
        vec![
            "F:4: service \"a\": key \"restart_reset\": restart_reset must be at least 1s",
            "F:9: service \"b\": key \"restart_reset\": restart_reset must be at least 1s",
        ]
    );
}

#[test]
fn errors_past_the_bound_end_with_one_count_line() {
    let keys: String = (1..=150).map(|i| format!("unknown{i} = 1\n")).collect();
    let e = errs(&one(&keys));
    assert_eq!(e.len(), limits::MAX_ERRORS + 1, "{e:?}");
    assert_eq!(
        e.first().map(String::as_str),
        Some("F:4: service \"a\": unknown key \"unknown1\"")
    );
    assert_eq!(e.last().map(String::as_str), Some("and 50 more errors"));
    let Err(errors) = load_one(&one(&keys)) else {
        panic!("refused")
    };
    assert_eq!(problem_count(&errors), 150);
}

#[test]
fn the_fuzz_seed_of_many_instance_errors_is_bounded() {
    let seed = include_str!("../../../fuzz/seeds/config/many-instance-errors.toml");
    let e = errs(seed);
    assert!(e.len() <= limits::MAX_ERRORS + 1, "{} errors", e.len());
    let last = e.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.starts_with("F:") || last.ends_with(" more errors"),
        "{e:?}"
    );
}

#[test]
fn a_cycle_through_every_instance_is_one_error() {
    assert_eq!(
        errs(&one("instances = 3\ndepends_on = \"a\"")),
        ["F:5: service \"a\": key \"depends_on\": dependency cycle: a -> a (a has 3 instances)"]
    );
}

#[test]
fn a_disabled_instance_expanded_dependency_is_one_error() {
    let text = format!(
        "{}[[services]]\nname = \"web\"\ncommand = \"/bin/true\"\ninstances = 4\ndepends_on = \"a\"\n",
        one("instances = 3\nenabled = false")
    );
    assert_eq!(
        errs(&text),
        [
            "F:10: service \"web\": key \"depends_on\": depends on disabled service \"a\" (3 instances)"
        ]
    );
}

#[test]
fn limit_on_dependencies_once_instances_are_expanded() {
    // 64 instances of `a` after 1024 of `b`: 65,536 dependencies; one more is refused.
    let b = "[[services]]\nname = \"b\"\ncommand = \"/bin/true\"\ninstances = 1024\n";
    let at = |n: usize| format!("{}{b}", one(&format!("instances = {n}\nafter = \"b\"")));
    assert_eq!(ok(&at(64)).services.len(), 1088);
    assert_eq!(
        errs(&format!(
            "{}[[services]]\nname = \"c\"\ncommand = \"/bin/true\"\nafter = \"a-1\"\n",
            at(64)
        )),
        [
            "F:13: service \"c\": key \"after\": too many dependencies once instances are expanded (65537; the limit is 65536)"
        ]
    );
}

#[test]
fn limit_on_the_environment_of_all_instances_together() {
    // An env file of about 1 MiB (1000 variables of 1000 bytes), read by each instance.
    let s = Scratch::new();
    let value = "x".repeat(1000);
    s.write(
        "big.env",
        &(1..=1000)
            .map(|i| format!("V{i}={value}\n"))
            .collect::<String>(),
    );
    let path = s.write("p.toml", &one("env_file = \"big.env\"\ninstances = 60"));
    assert!(load(std::slice::from_ref(&path), &s.ctx(&[])).is_ok());
    let path = s.write("p.toml", &one("env_file = \"big.env\"\ninstances = 70"));
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("too large");
    let e = render(&e).replace(&path.display().to_string(), "F");
    let start = "F:4: service \"a\": key \"env_file\": environment of all services too long (";
    assert!(e.starts_with(start), "{e}");
    assert!(e.ends_with("bytes; the limit is 67108864)"), "{e}");
}
