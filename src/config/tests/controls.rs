//! The process-control keys: their forms, `[defaults]` and how a service's own keys win, the
//! environment's origin, secrets, and every bad value refused with its line and key.

use super::*;
use crate::os::controls::Limit;
use rustix::process::Resource;

#[test]
fn defaults_apply_to_every_service_and_a_service_s_own_key_wins() {
    let c = ok(r#"
[defaults]
rlimits = { nofile = [1024, 65536], core = 0 }
umask = "0027"
no_new_privs = true
oom_score_adj = 100

[[services]]
name = "a"
command = "true"
rlimits = { nofile = "unlimited", stack = "8MB" }
umask = "077"
capabilities = ["net_bind_service", "CAP_KILL"]
nice = 10
description = "the a"

[[services]]
name = "b"
command = "true"
"#);
    let a = &get(&c, "a").controls;
    let limit = |resource, soft, hard| Limit {
        resource,
        soft,
        hard,
    };
    assert_eq!(
        a.rlimits,
        [
            limit(Resource::Nofile, None, None),
            limit(Resource::Stack, Some(8 << 20), Some(8 << 20)),
            limit(Resource::Core, Some(0), Some(0)),
        ]
    );
    assert_eq!(a.umask, Some(0o77));
    assert_eq!(a.capabilities, Some((1 << 10) | (1 << 5)));
    assert_eq!(
        (a.nice, a.oom_score_adj, a.no_new_privs),
        (Some(10), Some(100), true)
    );
    assert_eq!(get(&c, "a").description.as_deref(), Some("the a"));
    let b = &get(&c, "b").controls;
    assert_eq!(
        b.rlimits,
        [
            limit(Resource::Core, Some(0), Some(0)),
            limit(Resource::Nofile, Some(1024), Some(65536)),
        ]
    );
    assert_eq!((b.umask, b.capabilities, b.nice), (Some(0o27), None, None));
}

#[test]
fn bad_controls_are_refused_with_line_and_key() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
rlimits = { nofiles = 10, nproc = "8MB", core = [2, 1], stack = "lots" }
umask = "999"
capabilities = ["NET_BIND_SERVIC"]
oom_score_adj = 1001
nice = -21
env_allow = ["TZ"]
secrets = { "BAD NAME" = "/x" }

[defaults]
umask = 18
rlimit = {}
"#
        ),
        vec![
            "F:4: service \"a\": key \"rlimits.core\": the soft limit is above the hard limit",
            "F:4: service \"a\": unknown key \"rlimits.nofiles\" (did you mean \"rlimits.nofile\"?)",
            "F:4: service \"a\": key \"rlimits.nproc\": bad limit \"8MB\": use a number or \"unlimited\"",
            "F:4: service \"a\": key \"rlimits.stack\": bad limit \"lots\": use a number, a size like \"8MB\", or \"unlimited\"",
            "F:5: service \"a\": key \"umask\": bad umask \"999\": use octal digits up to \"0777\", like \"0027\"",
            "F:6: service \"a\": key \"capabilities\": unknown capability \"NET_BIND_SERVIC\" (did you mean \"NET_BIND_SERVICE\"?)",
            "F:7: service \"a\": key \"oom_score_adj\": 1001 is out of range: use -1000 to 1000",
            "F:8: service \"a\": key \"nice\": -21 is out of range: use -20 to 19",
            "F:9: service \"a\": key \"env_allow\": env_allow needs inherit_env = false",
            "F:10: service \"a\": key \"secrets\": invalid variable name \"BAD NAME\"",
            "F:13: key \"defaults.umask\": expected a string, found integer",
            "F:14: unknown key \"defaults.rlimit\" (did you mean \"defaults.rlimits\"?)",
        ]
    );
}

#[test]
fn env_allow_needs_inherit_env_false() {
    assert_eq!(
        errs("[[services]]\nname = \"a\"\ncommand = \"true\"\nenv_allow = [\"TZ\"]\n"),
        vec!["F:4: service \"a\": key \"env_allow\": env_allow needs inherit_env = false"]
    );
}

#[test]
fn a_hard_limit_above_pidone_s_is_refused_without_root() {
    let s = Scratch::new();
    let path = s.write(
        "p.toml",
        "[[services]]\nname = \"a\"\ncommand = \"true\"\n\n[defaults]\nrlimits = { nofile = \"unlimited\" }\n",
    );
    let mut ctx = s.ctx(&[]);
    ctx.euid = 1000;
    let ours = rustix::process::getrlimit(Resource::Nofile).maximum;
    let e = load(std::slice::from_ref(&path), &ctx);
    if ours.is_none() {
        assert!(e.is_ok(), "unlimited is not above unlimited");
        return;
    }
    let e = e.expect_err("above the hard limit");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        format!(
            "F:6: service \"a\": key \"rlimits.nofile\": unlimited is above pidone's hard limit ({}); raising it needs root",
            ours.unwrap_or_default()
        )
    );
}

#[test]
fn inherit_env_false_keeps_only_what_is_allowed_and_a_default_path() {
    let s = Scratch::new();
    let path = s.write(
        "p.toml",
        r#"[[services]]
name = "a"
command = "/bin/true"
inherit_env = false
env_allow = ["TZ"]
env = { OWN = "1" }
"#,
    );
    let c = load(&[path], &s.ctx(&[("TZ", "UTC"), ("SECRET_OF_PIDONE", "x")])).expect("valid");
    let env: Vec<&str> = get(&c, "a").env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(env, ["OWN", "PATH", "TZ"]);
    assert_eq!(env_of(get(&c, "a"), "PATH"), Some(DEFAULT_PATH));
}

#[test]
fn secrets_are_checked_at_load_unless_a_pre_script_may_create_them() {
    let s = Scratch::new();
    s.write("pw", "hunter2\n");
    let path = s.write(
        "p.toml",
        r#"[[services]]
name = "a"
command = "/bin/true"
secrets = { PW = "pw", GONE = "missing" }

[[services]]
name = "b"
command = "/bin/true"
pre_script = ["/bin/true"]
secrets = { GONE = "missing" }
"#,
    );
    let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("missing secret");
    let f = path.display().to_string();
    let dir = s.dir.display().to_string();
    assert_eq!(
        render(&e).replace(&f, "F").replace(&dir, "D"),
        "F:4: service \"a\": key \"secrets.GONE\": cannot read D/missing: No such file or directory (os error 2)"
    );
    assert_eq!(read_secret(&s.dir.join("pw")).expect("readable"), "hunter2");
}

#[test]
fn env_from_files_turns_file_variables_into_secrets() {
    let s = Scratch::new();
    s.write("pw", "x");
    s.write("user", "y");
    let path = s.write(
        "p.toml",
        r#"[[services]]
name = "all"
command = "/bin/true"
env_from_files = true
env = { POSTGRES_PASSWORD_FILE = "pw", PLAIN = "1" }

[[services]]
name = "listed"
command = "/bin/true"
env_from_files = ["POSTGRES_PASSWORD"]
env = { POSTGRES_PASSWORD_FILE = "pw" }
"#,
    );
    let user = s.dir.join("user").display().to_string();
    let ctx = s.ctx(&[("POSTGRES_USER_FILE", &user), ("SSL_CERT_FILE", "/nope")]);
    let e = load(std::slice::from_ref(&path), &ctx).expect_err("SSL_CERT_FILE is no secret");
    let dir = s.dir.display().to_string();
    assert_eq!(
        render(&e).replace(&dir, "D"),
        "D/p.toml:4: service \"all\": key \"env_from_files.SSL_CERT\": cannot read /nope: No such file or directory (os error 2)"
    );
    let c = load(&[path], &s.ctx(&[("POSTGRES_USER_FILE", &user)])).expect("valid");
    let vars = |name| {
        let spec = get(&c, name);
        let secrets: Vec<&str> = spec.secrets.iter().map(|s| s.var.as_str()).collect();
        (
            secrets,
            env_of(spec, "POSTGRES_PASSWORD_FILE"),
            env_of(spec, "POSTGRES_USER_FILE"),
        )
    };
    assert_eq!(
        vars("all"),
        (vec!["POSTGRES_PASSWORD", "POSTGRES_USER"], None, None)
    );
    assert_eq!(
        vars("listed"),
        (vec!["POSTGRES_PASSWORD"], None, Some(user.as_str()))
    );
}

#[test]
fn a_default_set_in_two_files_is_refused_at_the_second() {
    let s = Scratch::new();
    let one = s.write("1.toml", "[defaults]\numask = \"0022\"\n");
    let two = s.write("2.toml", "[defaults]\nnice = 1\numask = \"0027\"\n");
    let e = load(&[one.clone(), two.clone()], &s.ctx(&[])).expect_err("twice");
    assert_eq!(
        render(&e)
            .replace(&one.display().to_string(), "ONE")
            .replace(&two.display().to_string(), "TWO"),
        "TWO:3: key \"defaults.umask\": already set at ONE:2"
    );
}

#[test]
fn cgroup_limits_need_managed_cgroups_unless_optional() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
memory_max = "lots"
cpu_max = "0.001"
pids_max = 0

[[services]]
name = "b"
command = "true"
memory_high = "1GB"
"#
        ),
        vec![
            "F:4: service \"a\": key \"memory_max\": bad size \"lots\": use bytes, a size like \"512MB\", or \"max\"",
            "F:5: service \"a\": key \"cpu_max\": bad CPU share \"0.001\": use \"50%\" or \"0.5\" CPUs (at least 1%), or \"max\"",
            "F:6: service \"a\": key \"pids_max\": 0 is too low: use at least 1, or \"max\"",
            "F:11: service \"b\": key \"memory_high\": pidone does not manage cgroups: no cgroups in unit tests (cgroup_optional = true runs without it)",
        ]
    );
    let c = ok(
        "[[services]]\nname = \"a\"\ncommand = \"true\"\nmemory_max = \"1GB\"\ncgroup_optional = true\n",
    );
    assert_eq!(get(&c, "a").cgroup, []);
}

/// `validate` names the services that run without cgroup limits they made optional, and which.
#[test]
fn validate_names_the_services_running_without_their_cgroup_limits() {
    let c = ok(r#"[defaults]
cgroup_optional = true
[[services]]
name = "web"
command = "true"
memory_max = "1GB"
cpu_max = "50%"
[[services]]
name = "db"
command = "true"
[[services]]
name = "jobs"
command = "true"
pids_max = 10
"#);
    assert_eq!(get(&c, "web").cgroup_skipped, "memory_max, cpu_max");
    assert_eq!(get(&c, "db").cgroup_skipped, "");
    assert_eq!(
        describe(&c),
        "\
3 services (3 enabled), in start order:
  1. web   longrun  not applied: memory_max, cpu_max
  2. db    longrun
  3. jobs  longrun  not applied: pids_max
cgroup v2: not managed: no cgroups in unit tests
"
    );
}

#[test]
fn cgroup_limits_are_written_as_the_kernel_reads_them() {
    let s = Scratch::new();
    let path = s.write(
        "p.toml",
        r#"[defaults]
pids_max = 100
[[services]]
name = "a"
command = "/bin/true"
memory_max = "20MB"
memory_high = 1000000
cpu_max = "50%"
[[services]]
name = "b"
command = "/bin/true"
cpu_max = 1.5
pids_max = "max"
"#,
    );
    let mut ctx = s.ctx(&[]);
    ctx.cgroups = Ok(vec!["cpu".into(), "memory".into(), "pids".into()]);
    let c = load(&[path], &ctx).expect("valid");
    let limits = |name| get(&c, name).cgroup.clone();
    assert_eq!(
        limits("a"),
        [
            ("memory.max", "20971520".to_owned()),
            ("memory.high", "1000000".to_owned()),
            ("cpu.max", "50000 100000".to_owned()),
            ("pids.max", "100".to_owned()),
        ]
    );
    assert_eq!(
        limits("b"),
        [
            ("cpu.max", "150000 100000".to_owned()),
            ("pids.max", "max".to_owned()),
        ]
    );
    ctx.cgroups = Ok(vec!["cpu".into()]);
    let path = s.write(
        "q.toml",
        "[[services]]\nname = \"a\"\ncommand = \"/bin/true\"\npids_max = 5\n",
    );
    let e = load(std::slice::from_ref(&path), &ctx).expect_err("no pids controller");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        "F:4: service \"a\": key \"pids_max\": the cgroup controller \"pids\" is not available (cgroup_optional = true runs without it)"
    );
}
