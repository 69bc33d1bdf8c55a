//! Configs refused: every error message, with its file, line and key.

use super::*;

#[test]
fn unknown_keys_with_suggestions() {
    assert_eq!(
        errs(
            "[timeout]\n[[services]]\nname = \"web\"\ncommand = \"true\"\ndepnds_on = \"x\"\nfoo = 1\n[timeouts]\nglobal_shutdown = 3\n"
        ),
        vec![
            "F:1: unknown key \"timeout\" (did you mean \"timeouts\"?)",
            "F:5: service \"web\": unknown key \"depnds_on\" (did you mean \"depends_on\"?)",
            "F:6: service \"web\": unknown key \"foo\"",
            "F:8: unknown key \"global_shutdown\" (did you mean \"global_shutdown_timeout\"?)",
        ]
    );
}

#[test]
fn syntax_errors_name_their_line() {
    let e = errs("[[services]]\nname = \"a\"\ncommand = [\"x\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("F:3: TOML syntax error: "), "{e:?}");
    let e = errs("[[services]]\nname = \"a\"\nname = \"b\"\n");
    assert!(
        e[0].starts_with("F:3: TOML syntax error: duplicate key"),
        "{e:?}"
    );
}

#[test]
fn wrong_types_and_bad_values() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
args = "x"
enabled = "yes"
restart = "sometimes"
max_restarts = -1
stop_signal = "SIGNOPE"
start_delay = "10x"
type = "daemon"
log = "loud"
success_exit_codes = [256]
instances = 0
"#
        ),
        vec![
            "F:4: service \"a\": key \"args\": expected an array of strings, found string",
            "F:5: service \"a\": key \"enabled\": expected true or false, found string",
            "F:6: service \"a\": key \"restart\": unknown restart policy \"sometimes\": use \"always\", \"on-failure\" or \"never\"",
            "F:7: service \"a\": key \"max_restarts\": -1 is not a count (expected 0 to 4294967295)",
            "F:8: service \"a\": key \"stop_signal\": unknown signal: use a name like \"TERM\" or \"SIGQUIT\", or a number from 1 to 64",
            "F:9: service \"a\": key \"start_delay\": bad duration \"10x\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
            "F:10: service \"a\": key \"type\": unknown type \"daemon\": use \"longrun\" or \"oneshot\"",
            "F:11: service \"a\": key \"log\": unknown log mode \"loud\": use \"prefix\", \"raw\" or \"null\" (or log_file)",
            "F:12: service \"a\": key \"success_exit_codes\": exit code 256 is out of range (0 to 255)",
            "F:13: service \"a\": key \"instances\": instances must be at least 1",
        ]
    );
}

#[test]
fn bad_timeouts() {
    assert_eq!(
        errs("[timeouts]\nglobal_shutdown_timeout = \"soon\"\npost_script_timeout = -1\n"),
        vec![
            "F:2: key \"timeouts.global_shutdown_timeout\": bad duration \"soon\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
            "F:3: key \"timeouts.post_script_timeout\": bad duration \"-1\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
        ]
    );
}

#[test]
fn missing_name_and_command_and_invalid_names() {
    assert_eq!(
        errs(
            "[[services]]\ncommand = \"true\"\n\n[[services]]\nname = \"bad name\"\ncommand = \"true\"\n\n[[services]]\nname = \"nocmd\"\n"
        ),
        vec![
            "F:1: key \"name\": missing",
            "F:5: service \"bad name\": key \"name\": invalid service name \"bad name\": use only letters, digits, '_', '.' and '-'",
            "F:8: service \"nocmd\": key \"command\": missing",
        ]
    );
}

#[test]
fn duplicate_names_across_files() {
    let s = Scratch::new();
    let a = s.write(
        "a.toml",
        "[[services]]\nname = \"web\"\ncommand = \"true\"\n",
    );
    let b = s.write(
        "b.toml",
        "[[services]]\nname = \"x\"\ncommand = \"true\"\n\n[[services]]\nname = \"web\"\ncommand = \"true\"\n",
    );
    let errors = load(&[a.clone(), b.clone()], &s.ctx(&[])).expect_err("duplicate");
    assert_eq!(
        render(&errors),
        format!(
            "{}:6: service \"web\": key \"name\": duplicate service name \"web\" (first defined at {}:2)",
            b.display(),
            a.display()
        )
    );
}

#[test]
fn instance_names_collide_with_other_services() {
    assert_eq!(
        errs(
            "[[services]]\nname = \"api-2\"\ncommand = \"true\"\n[[services]]\nname = \"api\"\ncommand = \"true\"\ninstances = 2\n"
        ),
        vec![
            "F:5: service \"api\": key \"name\": duplicate service name \"api-2\" (first defined at F:2)"
        ]
    );
}

#[test]
fn unknown_and_disabled_dependencies() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "db"
command = "true"
[[services]]
name = "off"
command = "true"
enabled = false
[[services]]
name = "web"
command = "true"
depends_on = ["dbb", "off"]
after = ["nothing"]
"#
        ),
        vec![
            "F:11: service \"web\": key \"depends_on\": unknown service \"dbb\" (did you mean \"db\"?)",
            "F:11: service \"web\": key \"depends_on\": depends on disabled service \"off\"",
            "F:12: service \"web\": key \"after\": unknown service \"nothing\"",
        ]
    );
}

#[test]
fn a_disabled_service_may_depend_on_a_disabled_one() {
    ok(r#"[[services]]
name = "a"
command = "true"
enabled = false
[[services]]
name = "b"
command = "true"
enabled = false
depends_on = "a"
"#);
}

#[test]
fn dependency_cycle_is_printed_as_a_path() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
depends_on = "b"
[[services]]
name = "b"
command = "true"
depends_on = "c"
[[services]]
name = "c"
command = "true"
after = ["a"]
[[services]]
name = "d"
command = "true"
depends_on = "d"
"#
        ),
        vec![
            "F:4: service \"a\": key \"depends_on\": dependency cycle: a -> b -> c -> a",
            "F:16: service \"d\": key \"depends_on\": dependency cycle: d -> d",
        ]
    );
}

#[test]
fn wait_after_keys_must_be_dependencies() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "db"
command = "true"
[[services]]
name = "web"
command = "true"
depends_on = "db"
[services.wait_after]
db = 1
cache = 2
"#
        ),
        vec!["F:10: service \"web\": key \"wait_after\": \"cache\" is not in depends_on"]
    );
}

#[test]
fn oneshot_conflicts() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
oneshot = true
restart = "always"
[[services]]
name = "b"
command = "true"
oneshot = true
type = "longrun"
"#
        ),
        vec![
            "F:5: service \"a\": key \"restart\": a oneshot cannot use restart = \"always\" (use \"on-failure\" or \"never\")",
            "F:9: service \"b\": key \"oneshot\": cannot be used together with \"type\"",
        ]
    );
}

#[test]
fn restart_delay_max_must_not_be_below_restart_delay() {
    assert_eq!(
        errs(
            "[[services]]\nname = \"a\"\ncommand = \"true\"\nrestart_delay = \"5s\"\nrestart_delay_max = 2\n"
        ),
        vec![
            "F:5: service \"a\": key \"restart_delay_max\": 2s is shorter than restart_delay (5s)"
        ]
    );
}

// ---- readiness and checks ----

#[test]
fn both_post_script_spellings_conflict() {
    let e = errs(
        "[[services]]\nname = \"a\"\ncommand = \"true\"\npos_script = \"/bin/true\"\npost_script = \"/bin/true\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("cannot be used together with"), "{e:?}");
}

#[test]
fn users_unknown_and_not_root() {
    let s = Scratch::new();
    s.write("etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n");
    s.write("etc/group", "app:x:1000:\n");
    let path = s.write(
        "p.toml",
        r#"[[services]]
name = "a"
command = "true"
user = "ghost"
[[services]]
name = "b"
command = "true"
user = "app"
group = "nogroup"
[[services]]
name = "c"
command = "true"
user = "app:app"
group = "app"
"#,
    );
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("bad users");
    let f = path.display().to_string();
    assert_eq!(
        render(&e).replace(&f, "F"),
        "\
F:4: service \"a\": key \"user\": unknown user \"ghost\"
F:9: service \"b\": key \"group\": unknown group \"nogroup\"
F:14: service \"c\": key \"group\": cannot be used together with \"user = \\\"user:group\\\"\""
    );
    // Not root: a real switch is refused naming both users; pidone's own user and group (as
    // under `docker run --user 1000:1000`) is no switch at all, so it needs no root.
    let mut ctx = s.ctx(&[]);
    (ctx.euid, ctx.egid) = (1000, 1000);
    let path = s.write(
        "q.toml",
        "[[services]]\nname = \"a\"\ncommand = \"true\"\nuser = \"0\"\n\
         [[services]]\nname = \"b\"\ncommand = \"true\"\nuser = \"app:0\"\n",
    );
    let e = load(std::slice::from_ref(&path), &ctx).expect_err("not root");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        "\
F:4: service \"a\": key \"user\": switching to user \"0\" (uid 0, gid 0) needs root, but pidone runs as \"app\" (uid 1000, gid 1000)
F:8: service \"b\": key \"user\": switching to user \"app:0\" (uid 1000, gid 0) needs root, but pidone runs as \"app\" (uid 1000, gid 1000)"
    );
    for user in ["app", "1000", "app:app", "1000:1000"] {
        let text = format!("[[services]]\nname = \"a\"\ncommand = \"true\"\nuser = \"{user}\"\n");
        let path = s.write("r.toml", &text);
        let config = load(std::slice::from_ref(&path), &ctx).expect("no switch, no root needed");
        let a = &config.services[0];
        assert_eq!(a.user, None, "{user}: nothing to switch");
        let home = a.env.iter().find(|(k, _)| k == "HOME");
        assert_eq!(home.map(|(_, v)| v.as_str()), Some("/home/app"), "{user}");
    }
    ctx.egid = 0;
    let path = s.write(
        "r.toml",
        "[[services]]\nname = \"a\"\ncommand = \"true\"\nuser = \"app\"\n",
    );
    let e = load(std::slice::from_ref(&path), &ctx).expect_err("the group differs");
    assert!(
        render(&e).contains(
            "(uid 1000, gid 1000) needs root, but pidone runs as \"app\" (uid 1000, gid 0)"
        ),
        "{e:?}"
    );
}

#[test]
fn missing_programs_and_scripts() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "/nonexistent/prog"
[[services]]
name = "b"
command = "no-such-program-xyz"
pre_script = "/nonexistent/pre.sh"
[[services]]
name = "c"
command = "/bin/sleep 10"
[[services]]
name = "d"
command = "/etc"
"#
        ),
        vec![
            "F:3: service \"a\": key \"command\": program \"/nonexistent/prog\" does not exist",
            "F:6: service \"b\": key \"command\": program \"no-such-program-xyz\" not found on PATH \"/usr/bin:/bin\"",
            "F:7: service \"b\": key \"pre_script\": program \"/nonexistent/pre.sh\" does not exist",
            "F:10: service \"c\": key \"command\": program \"/bin/sleep 10\" does not exist",
            "F:13: service \"d\": key \"command\": program \"/etc\" is not an executable file",
        ]
    );
    assert_eq!(
        errs("[[services]]\nname = \"a\"\ncommand = \"sleep 10\"\n"),
        vec![
            "F:3: service \"a\": key \"command\": program \"sleep 10\" not found on PATH \"/usr/bin:/bin\" (a string command is one program path, run without a shell; use an array for arguments)"
        ]
    );
}

#[test]
fn undefined_variables_and_env_file_problems() {
    let s = Scratch::new();
    s.write("bad.env", "GOOD=1\nno equals here\n");
    let path = s.write(
        "p.toml",
        r#"[[services]]
name = "a"
command = "/bin/sleep"
args = ["${UNDEFINED_THING}"]
env = { X = "${ALSO_UNDEFINED}" }
[[services]]
name = "b"
command = "true"
env_file = "bad.env"
[[services]]
name = "c"
command = "true"
env_file = "missing.env"
"#,
    );
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("errors");
    let text = render(&e)
        .replace(&path.display().to_string(), "F")
        .replace(&s.dir.display().to_string(), "D");
    assert_eq!(
        text,
        "\
F:4: service \"a\": key \"args\": undefined variable ${UNDEFINED_THING} (set it, or give a default: ${UNDEFINED_THING:-value})
F:5: service \"a\": key \"env\": undefined variable ${ALSO_UNDEFINED} (set it, or give a default: ${ALSO_UNDEFINED:-value})
F:9: service \"b\": key \"env_file\": env_file D/bad.env: line 2: expected KEY=VALUE
F:13: service \"c\": key \"env_file\": cannot read D/missing.env: No such file or directory (os error 2)"
    );
}

#[test]
fn selection_errors_name_the_variable() {
    assert_eq!(
        errs_with(
            "[[services]]\nname = \"web\"\ncommand = \"true\"\n",
            &[
                ("PIDONE_ONLY_SERVICES", "wbe"),
                ("PIDONE_ENABLE_WEB", "maybe")
            ]
        ),
        vec![
            "environment variable PIDONE_ENABLE_WEB: \"maybe\" is not a boolean (use 1/true/yes/on/y or 0/false/no/off/n)",
            "environment variable PIDONE_ONLY_SERVICES: unknown service \"wbe\" (did you mean \"web\"?)",
        ]
    );
}

#[test]
fn only_services_can_leave_a_dependency_disabled() {
    assert_eq!(
        errs_with(
            "[[services]]\nname = \"db\"\ncommand = \"true\"\n[[services]]\nname = \"web\"\ncommand = \"true\"\ndepends_on = \"db\"\n",
            &[("GO_OVERLAY_ONLY_SERVICES", "web")]
        ),
        vec!["F:7: service \"web\": key \"depends_on\": depends on disabled service \"db\""]
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let e = errs(
        r#"[[services]]
name = "web"
command = "true"
depends_on = "dbb"
restart = "always"
stop_timeout = "forever"
colour = "red"

[[services]]
name = "db"
command = "/missing"
"#,
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("F:4:"));
    assert!(e[1].starts_with("F:6:"));
    assert!(e[2].starts_with("F:7:"));
    assert!(e[3].starts_with("F:11:"));
}

#[test]
fn a_syntax_error_in_one_file_does_not_flood_the_others() {
    let s = Scratch::new();
    let a = s.write(
        "a.toml",
        "[[services]]\nname = \"db\"\ncommand = \"true\"\nx = \n",
    );
    let b = s.write(
        "b.toml",
        "[[services]]\nname = \"web\"\ncommand = \"true\"\ndepends_on = \"db\"\nbogus = 1\n",
    );
    let e = load(&[a, b], &s.ctx(&[])).expect_err("errors");
    assert_eq!(e.len(), 2, "{}", render(&e));
    assert!(matches!(e[0].kind, ErrorKind::Syntax { .. }));
    assert!(matches!(e[1].kind, ErrorKind::UnknownKey { .. }));
}

#[test]
fn timeouts_set_in_two_files_conflict() {
    let s = Scratch::new();
    let a = s.write("a.toml", "[timeouts]\nglobal_shutdown_timeout = 5\n");
    let b = s.write("b.toml", "\n[timeouts]\nglobal_shutdown_timeout = 6\n");
    let e = load(&[a.clone(), b.clone()], &s.ctx(&[])).expect_err("conflict");
    assert_eq!(
        render(&e),
        format!(
            "{}:3: key \"timeouts.global_shutdown_timeout\": already set at {}:2",
            b.display(),
            a.display()
        )
    );
}

#[test]
fn unreadable_file_is_an_error() {
    let s = Scratch::new();
    let missing = s.dir.join("nope.toml");
    let e = load(&[missing], &s.ctx(&[])).expect_err("missing");
    assert!(matches!(e[0].kind, ErrorKind::Read { .. }));
}

#[test]
fn bad_log_values_name_their_key_and_line() {
    assert_eq!(
        errs(
            r#"[log]
timestamps = "yes"
format = "xml"
colour = true

[[services]]
name = "a"
command = "true"
log_file = "/tmp/a.log"
log_keep = -1
log_max_size = "ten"
log_format = "yaml"

[[services]]
name = "b"
command = "true"
log_file = "/tmp/b.log"
log_max_size = 100
log = "raw"

[[services]]
name = "c"
command = "true"
log_max_size = "1G"
"#
        ),
        vec![
            "F:2: key \"log.timestamps\": expected true or false, found string",
            "F:3: key \"log.format\": unknown log format \"xml\": use \"text\" or \"json\"",
            "F:4: unknown key \"log.colour\"",
            "F:10: service \"a\": key \"log_keep\": -1 is not a count (expected 0 to 4294967295)",
            "F:11: service \"a\": key \"log_max_size\": \"ten\" is not a size: use bytes or a size like \"10MB\" (K, M, G: powers of 1024)",
            "F:12: service \"a\": key \"log_format\": unknown log format \"yaml\": use \"text\" or \"json\"",
            "F:17: service \"b\": key \"log_file\": cannot be used together with \"log\"",
            "F:18: service \"b\": key \"log_max_size\": 100 bytes is less than 4096: use bytes or a size like \"10MB\" (K, M, G: powers of 1024)",
            "F:24: service \"c\": key \"log_max_size\": needs log_file",
        ]
    );
}

#[test]
fn log_to_must_name_one_other_service() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
log_to = "nope"

[[services]]
name = "b"
command = "true"
log_to = "b"

[[services]]
name = "c"
command = "true"
log_to = "many"

[[services]]
name = "many"
command = "true"
instances = 2

[[services]]
name = "d"
command = "true"
log_to_stderr = true
"#
        ),
        vec![
            "F:4: service \"a\": key \"log_to\": unknown service \"nope\"",
            "F:9: service \"b\": key \"log_to\": a service cannot be its own logger",
            "F:14: service \"c\": key \"log_to\": many has 2 instances: name one, like many-1",
            "F:24: service \"d\": key \"log_to_stderr\": needs log_to",
        ]
    );
}
