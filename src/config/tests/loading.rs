//! Configs that load: every key, go-overlay's file, defaults, order, instances, environment,
//! selection, `describe`.

use super::*;

const GO_OVERLAY: &str = r#"
[timeouts]
post_script_timeout = 5
service_shutdown_timeout = 15
global_shutdown_timeout = 45

[[services]]
name = "base-service"
command = "/bin/sleep"
args = ["300"]
enabled = true
required = true

[[services]]
name = "service-old-style"
command = "/bin/sleep"
args = ["300"]
depends_on = "base-service"
wait_after = 2

[[services]]
name = "service-array-single-map"
command = "/bin/sleep"
args = ["300"]
depends_on = ["base-service"]
wait_after = { base-service = 4 }

[[services]]
name = "migrate"
command = "true"
oneshot = true
depends_on = ["base-service", "service-old-style"]
pos_script = "/bin/true"

[[services]]
name = "subtable"
command = "/bin/sleep"
args = ["300"]
depends_on = ["service-old-style", "migrate"]
restart = "always"
restart_delay = 3
max_restarts = 5
user = "0"
env = { A = "1" }

[services.wait_after]
service-old-style = 1
migrate = 3
"#;

#[test]
fn go_overlay_file_loads_unchanged() {
    let c = ok(GO_OVERLAY);
    assert_eq!(
        names(&c),
        vec![
            "base-service",
            "service-old-style",
            "service-array-single-map",
            "migrate",
            "subtable"
        ]
    );
    assert_eq!(
        c.timeouts,
        Timeouts {
            post_script: Duration::from_secs(5),
            service_shutdown: Duration::from_secs(15),
            global_shutdown: Duration::from_secs(45),
            dependency_wait: Duration::from_secs(300),
            ..Timeouts::default()
        }
    );
    let base = get(&c, "base-service");
    assert!(base.required && base.enabled);
    assert_eq!(base.argv, vec!["/bin/sleep", "300"]);
    assert_eq!(base.restart, Restart::OnFailure);
    assert_eq!(base.stop_timeout, Duration::from_secs(15));

    let old = get(&c, "service-old-style");
    assert_eq!(dep_names(&c, &old.depends_on), vec!["base-service"]);
    assert_eq!(old.wait_after, vec![(ServiceId(0), Duration::from_secs(2))]);

    let map = get(&c, "service-array-single-map");
    assert_eq!(map.wait_after, vec![(ServiceId(0), Duration::from_secs(4))]);

    let migrate = get(&c, "migrate");
    assert_eq!(migrate.kind, Kind::Oneshot);
    assert_eq!(migrate.restart, Restart::Never);
    assert_eq!(migrate.argv, vec!["/usr/bin/true"]);
    assert_eq!(migrate.post_script, Some(vec!["/bin/true".to_owned()]));

    let sub = get(&c, "subtable");
    assert_eq!(
        dep_names(&c, &sub.depends_on),
        vec!["service-old-style", "migrate"]
    );
    let waits: Vec<(&str, Duration)> = sub
        .wait_after
        .iter()
        .map(|(id, d)| (c.services[id.0].name.as_str(), *d))
        .collect();
    assert!(waits.contains(&("service-old-style", Duration::from_secs(1))));
    assert!(waits.contains(&("migrate", Duration::from_secs(3))));
    assert_eq!(sub.restart, Restart::Always);
    assert_eq!(sub.restart_delay, Duration::from_secs(3));
    assert_eq!(sub.max_restarts, 5);
    assert_eq!(sub.user.as_ref().map(|u| u.uid), Some(0));
}

#[test]
fn every_pidone_key_is_parsed() {
    let s = Scratch::new();
    s.write(
        "etc/passwd",
        "app:x:1000:1000::/home/app:/bin/sh\nroot:x:0:0::/root:/bin/sh\n",
    );
    s.write("etc/group", "app:x:1000:\nextra:x:2000:app\nlog:x:3000:\n");
    s.write(
        "app.env",
        "# comment\nexport FROM_FILE='file'\nOVERRIDE=file\n",
    );
    let pre = s.executable("scripts/pre.sh");
    let path = s.write(
        "pidone.toml",
        r#"
[timeouts]
dependency_wait_timeout = "1m"

[[services]]
name = "db"
command = ["/bin/sleep", "1000"]

[[services]]
name = "cache"
command = "/bin/sleep"
args = ["5"]
enabled = false

[[services]]
name = "web"
command = ["/bin/sleep"]
args = ["${PORT}"]
type = "longrun"
required = true
depends_on = ["db"]
after = ["cache"]
wait_after = "1500ms"
start_delay = "2s"
dependency_wait_timeout = 10
restart = "never"
success_exit_codes = [0, 3]
restart_delay = "500ms"
restart_delay_max = "1m"
max_restarts = 4
stop_signal = "SIGQUIT"
stop_timeout = "20s"
user = "app"
group = "log"
workdir = "/tmp"
env_file = "app.env"
env = { PORT = 8080, OVERRIDE = "table", DEBUG = true }
pre_script = "PRE"
post_script = ["/bin/echo", "up"]
log_file = "/tmp/web-${PORT}.log"
"#
        .replace("PRE", &pre.display().to_string())
        .as_str(),
    );
    let c = load(&[path], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(c.timeouts.dependency_wait, Duration::from_secs(60));
    let db = get(&c, "db");
    assert_eq!(db.argv, vec!["/bin/sleep", "1000"]);
    assert_eq!(db.dependency_wait_timeout, Duration::from_secs(60));
    assert!(!get(&c, "cache").enabled);

    let web = get(&c, "web");
    assert_eq!(web.argv, vec!["/bin/sleep", "8080"]);
    assert_eq!(web.kind, Kind::Longrun);
    assert!(web.required);
    assert_eq!(dep_names(&c, &web.depends_on), vec!["db"]);
    assert_eq!(dep_names(&c, &web.after), vec!["cache"]);
    assert_eq!(
        web.wait_after,
        vec![(c.find("db").expect("db"), Duration::from_millis(1500))]
    );
    assert_eq!(web.start_delay, Duration::from_secs(2));
    assert_eq!(web.dependency_wait_timeout, Duration::from_secs(10));
    assert_eq!(web.restart, Restart::Never);
    assert_eq!(web.success_exit_codes, vec![0, 3]);
    assert_eq!(web.restart_delay, Duration::from_millis(500));
    assert_eq!(web.restart_delay_max, Duration::from_secs(60));
    assert_eq!(web.max_restarts, 4);
    assert_eq!(web.stop_signal, libc::SIGQUIT);
    assert_eq!(web.stop_timeout, Duration::from_secs(20));
    assert_eq!(
        web.user,
        Some(Credentials {
            uid: 1000,
            gid: 3000,
            groups: vec![3000, 2000],
            name: "app".into(),
            home: "/home/app".into(),
        })
    );
    assert_eq!(web.workdir, Some(PathBuf::from("/tmp")));
    assert_eq!(env_of(web, "FROM_FILE"), Some("file"));
    assert_eq!(env_of(web, "OVERRIDE"), Some("table"));
    assert_eq!(env_of(web, "PORT"), Some("8080"));
    assert_eq!(env_of(web, "DEBUG"), Some("true"));
    assert_eq!(env_of(web, "HOME"), Some("/home/app"));
    assert_eq!(env_of(web, "USER"), Some("app"));
    assert_eq!(env_of(web, "LOGNAME"), Some("app"));
    assert_eq!(env_of(web, "PATH"), Some("/usr/bin:/bin"));
    assert_eq!(web.pre_script, Some(vec![pre.display().to_string()]));
    assert_eq!(
        web.post_script,
        Some(vec!["/bin/echo".to_owned(), "up".to_owned()])
    );
    let LogMode::File(file) = &web.log else {
        panic!("a log file: {:?}", web.log)
    };
    assert_eq!(file.path, std::path::Path::new("/tmp/web-8080.log"));
}

#[test]
fn relative_paths_are_relative_to_the_config_directory() {
    let s = Scratch::new();
    let pre = s.executable("scripts/pre.sh");
    let plain = s.write("scripts/plain.sh", "echo hi\n");
    s.write("vars.env", "X=1\n");
    let path = s.write(
        "pidone.toml",
        r#"
[[services]]
name = "a"
command = "./scripts/pre.sh"
pre_script = "scripts/pre.sh"
pos_script = "scripts/plain.sh"
env_file = "vars.env"
"#,
    );
    let c = load(&[path], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    let a = get(&c, "a");
    let dir = s.dir.clone();
    assert_eq!(
        a.argv,
        vec![dir.join("./scripts/pre.sh").display().to_string()]
    );
    assert_eq!(
        a.pre_script,
        Some(vec![dir.join("scripts/pre.sh").display().to_string()])
    );
    // A script that is not executable runs through a shell, as in go-overlay.
    let post = a.post_script.clone().expect("post script");
    assert!(
        post[0].ends_with("/bash") || post[0].ends_with("/sh"),
        "{post:?}"
    );
    assert_eq!(post[1], dir.join("scripts/plain.sh").display().to_string());
    assert_eq!(env_of(a, "X"), Some("1"));
    assert!(pre.exists() && plain.exists());
}

#[test]
fn defaults_of_a_minimal_service() {
    let c = ok("[[services]]\nname = \"a\"\ncommand = \"sleep\"\n");
    let a = &c.services[0];
    assert_eq!(a.argv, vec!["/usr/bin/sleep"]);
    assert_eq!(a.base_name, "a");
    assert_eq!(a.instance, None);
    assert_eq!(a.line, 1);
    assert_eq!(a.kind, Kind::Longrun);
    assert!(a.enabled && !a.required);
    assert_eq!(a.restart, Restart::OnFailure);
    assert_eq!(a.success_exit_codes, vec![0]);
    assert_eq!(a.restart_delay, Duration::from_secs(1));
    assert_eq!(a.restart_delay_max, Duration::from_secs(30));
    assert_eq!(a.max_restarts, 0);
    assert_eq!(a.stop_signal, libc::SIGTERM);
    assert_eq!(a.stop_timeout, Duration::from_secs(10));
    assert_eq!(a.dependency_wait_timeout, Duration::from_secs(300));
    assert_eq!(a.start_delay, Duration::ZERO);
    assert_eq!(a.log, LogMode::Prefix);
    assert_eq!(a.user, None);
    assert_eq!(a.workdir, None);
    assert_eq!(a.ready, ReadyMode::Exec);
    assert_eq!(a.start_timeout, None);
    assert!(a.checks.is_empty());
    assert_eq!(c.timeouts, Timeouts::default());
}

#[test]
fn type_oneshot_and_restart_defaults() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
type = "oneshot"
[[services]]
name = "b"
command = "true"
type = "oneshot"
restart = "on-failure"
[[services]]
name = "c"
command = "true"
restart_delay = 0
restart_delay_max = 40
[[services]]
name = "d"
command = "true"
restart_delay = 60
"#);
    assert_eq!(get(&c, "a").restart, Restart::Never);
    assert_eq!(get(&c, "b").restart, Restart::OnFailure);
    assert_eq!(get(&c, "c").restart_delay, Duration::from_secs(1));
    assert_eq!(get(&c, "c").restart_delay_max, Duration::from_secs(40));
    assert_eq!(get(&c, "d").restart_delay_max, Duration::from_secs(60));
}

#[test]
fn stop_signal_forms() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
stop_signal = "TERM"
[[services]]
name = "b"
command = "true"
stop_signal = "sigint"
[[services]]
name = "c"
command = "true"
stop_signal = 9
"#);
    assert_eq!(get(&c, "a").stop_signal, libc::SIGTERM);
    assert_eq!(get(&c, "b").stop_signal, libc::SIGINT);
    assert_eq!(get(&c, "c").stop_signal, libc::SIGKILL);
}

#[test]
fn log_modes() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
log = "raw"
[[services]]
name = "b"
command = "true"
log = "null"
"#);
    assert_eq!(get(&c, "a").log, LogMode::Raw);
    assert_eq!(get(&c, "b").log, LogMode::Null);
}

#[test]
fn timeouts_accept_strings_and_zero_keeps_the_default() {
    let c = ok(r#"
[timeouts]
post_script_timeout = "500ms"
service_shutdown_timeout = 0
global_shutdown_timeout = "2m"
dependency_wait_timeout = 1.5
"#);
    assert_eq!(
        c.timeouts,
        Timeouts {
            post_script: Duration::from_millis(500),
            service_shutdown: Duration::from_secs(10),
            global_shutdown: Duration::from_secs(120),
            dependency_wait: Duration::from_millis(1500),
            ..Timeouts::default()
        }
    );
    assert!(c.services.is_empty());
}

#[test]
fn start_order_puts_dependencies_first_and_keeps_file_order() {
    let c = ok(r#"
[[services]]
name = "web"
command = "true"
depends_on = "api"
[[services]]
name = "api"
command = "true"
depends_on = ["db"]
[[services]]
name = "cron"
command = "true"
[[services]]
name = "db"
command = "true"
[[services]]
name = "late"
command = "true"
after = ["web"]
"#);
    assert_eq!(names(&c), vec!["cron", "db", "api", "web", "late"]);
    let dependents = c.dependents();
    let db = c.find("db").expect("db");
    assert_eq!(dep_names(&c, &dependents[db.0]), vec!["api"]);
    let web = c.find("web").expect("web");
    assert_eq!(dep_names(&c, &dependents[web.0]), vec!["late"]);
}

#[test]
fn instances_expand_with_their_number() {
    let c = ok(r#"
[[services]]
name = "api"
command = "/bin/sleep"
args = ["${PIDONE_INSTANCE}"]
instances = 3
env = { PORT = "300${PIDONE_INSTANCE}" }

[[services]]
name = "proxy"
command = "true"
depends_on = "api"
wait_after = { api = 2 }
"#);
    assert_eq!(names(&c), vec!["api-1", "api-2", "api-3", "proxy"]);
    for (i, name) in ["api-1", "api-2", "api-3"].iter().enumerate() {
        let s = get(&c, name);
        let n = (i + 1).to_string();
        assert_eq!(s.base_name, "api");
        assert_eq!(s.instance, Some(i as u32 + 1));
        assert_eq!(s.argv, vec!["/bin/sleep".to_owned(), n.clone()]);
        assert_eq!(env_of(s, "PIDONE_INSTANCE"), Some(n.as_str()));
        assert_eq!(env_of(s, "PORT"), Some(format!("300{n}").as_str()));
    }
    let proxy = get(&c, "proxy");
    assert_eq!(
        dep_names(&c, &proxy.depends_on),
        vec!["api-1", "api-2", "api-3"]
    );
    assert_eq!(proxy.wait_after.len(), 3);
}

#[test]
fn one_instance_can_be_named_as_a_dependency() {
    let c = ok(r#"
[[services]]
name = "api"
command = "true"
instances = 2
[[services]]
name = "x"
command = "true"
depends_on = "api-2"
"#);
    assert_eq!(dep_names(&c, &get(&c, "x").depends_on), vec!["api-2"]);
}

#[test]
fn env_precedence_is_pidone_then_file_then_table() {
    let s = Scratch::new();
    s.write("e.env", "A=file\nB=file\n");
    let path = s.write(
        "p.toml",
        r#"
[[services]]
name = "a"
command = "true"
env_file = "${DIR:-.}/e.env"
env = { B = "table:${B}", PATH = "/opt:${PATH}" }
"#,
    );
    let ctx = s.ctx(&[("A", "pidone"), ("B", "pidone"), ("C", "pidone")]);
    let c = load(&[path], &ctx).unwrap_or_else(|e| panic!("{}", render(&e)));
    let a = &c.services[0];
    assert_eq!(env_of(a, "A"), Some("file"));
    assert_eq!(env_of(a, "B"), Some("table:file"));
    assert_eq!(env_of(a, "C"), Some("pidone"));
    assert_eq!(env_of(a, "PATH"), Some("/opt:/usr/bin:/bin"));
    let keys: Vec<&str> = a.env.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

#[test]
fn the_service_path_is_used_to_find_the_program() {
    let s = Scratch::new();
    s.executable("bin/mytool");
    let path = s.write(
        "p.toml",
        &format!(
            "[[services]]\nname = \"a\"\ncommand = \"mytool\"\nenv = {{ PATH = \"{}/bin\" }}\n",
            s.dir.display()
        ),
    );
    let c = load(&[path], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(
        c.services[0].argv,
        vec![s.dir.join("bin/mytool").display().to_string()]
    );
}

#[test]
fn selection_from_the_environment() {
    let s = Scratch::new();
    let path = s.write(
        "p.toml",
        r#"
[[services]]
name = "web"
command = "true"
[[services]]
name = "php-fpm"
command = "/does/not/exist"
user = "nobody-here"
[[services]]
name = "extra"
command = "true"
enabled = false
"#,
    );
    let ctx = s.ctx(&[
        ("GO_OVERLAY_ONLY_SERVICES", "web,php-fpm"),
        ("PIDONE_DISABLE_PHP_FPM", "true"),
        ("GO_OVERLAY_ENABLE_EXTRA", "1"),
    ]);
    let c = load(&[path], &ctx).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert!(get(&c, "web").enabled);
    // Disabled, so its missing program and unknown user are not errors.
    assert!(!get(&c, "php-fpm").enabled);
    assert!(get(&c, "extra").enabled);
}

#[test]
fn describe_lists_services_in_start_order() {
    let c = ok(r#"
[[services]]
name = "web"
command = "true"
depends_on = ["db"]
wait_after = 3
after = ["cache"]
required = true
[[services]]
name = "db"
command = "true"
[[services]]
name = "cache"
command = "true"
enabled = false
[[services]]
name = "init"
command = "true"
oneshot = true
"#);
    assert_eq!(
        describe(&c),
        "\
4 services (3 enabled), in start order:
  1. db     longrun
  2. cache  longrun  disabled
  3. web    longrun  required  depends on: db (+3s)  after: cache
  4. init   oneshot
cgroup v2: not managed: no cgroups in unit tests
"
    );
}

/// Issue 11: `validate` warns when the stop timeouts written along a dependency chain add up to
/// more than the shutdown budget; defaults and chains that fit say nothing.
#[test]
fn a_chain_of_stop_timeouts_beyond_the_budget_is_warned_about() {
    let stack = |app: &str, budget: &str| {
        format!(
            "[timeouts]\nglobal_shutdown_timeout = {budget}\n\n\
             [[services]]\nname = \"db\"\ncommand = \"true\"\nstop_timeout = \"5s\"\n\n\
             [[services]]\nname = \"app\"\ncommand = \"true\"\ndepends_on = \"db\"\nstop_timeout = \"{app}\"\n\n\
             [[services]]\nname = \"web\"\ncommand = \"true\"\nafter = [\"app\"]\n\n\
             [[services]]\nname = \"side\"\ncommand = \"true\"\nstop_timeout = \"7s\"\n"
        )
    };
    assert_eq!(
        crate::config::shutdown_warning(&ok(&stack("3s", "0"))),
        None,
        "5 + 3 = 8 s fits"
    );
    assert_eq!(
        crate::config::shutdown_warning(&ok(&stack("4s", "0"))).as_deref(),
        Some(
            "shutdown budget: app (4s), then db (5s) stop one after the other: 9s in all, over \
             global_shutdown_timeout (8s), after which all is killed (see docs/config.md)"
        )
    );
    assert_eq!(
        crate::config::shutdown_warning(&ok(&stack("4s", "\"9s\""))),
        None
    );
    let defaults = "[[services]]\nname = \"a\"\ncommand = \"true\"\n\n\
                    [[services]]\nname = \"b\"\ncommand = \"true\"\ndepends_on = \"a\"\n";
    assert_eq!(
        crate::config::shutdown_warning(&ok(defaults)),
        None,
        "defaults are caps"
    );
    let written = format!("[timeouts]\nservice_shutdown_timeout = 5\n\n{defaults}");
    assert!(
        crate::config::shutdown_warning(&ok(&written))
            .is_some_and(|w| w.contains("b (5s), then a (5s)")),
        "service_shutdown_timeout written counts"
    );
}

#[test]
fn log_settings_and_rotation() {
    let c = ok(r#"[log]
timestamps = true
format = "json"

[[services]]
name = "a"
command = "true"
log = "prefix"
log_file = "/tmp/a.log"
log_max_size = "10MB"
log_format = "text"

[[services]]
name = "b"
command = "true"
log_file = "/tmp/b.log"
log_max_size = 65536
log_keep = 0

[[services]]
name = "c"
command = "true"
log_file = "/tmp/c.log"
log_max_size = "512 KiB"
"#);
    assert_eq!(
        c.log,
        crate::config::LogSettings {
            timestamps: true,
            json: true
        }
    );
    let file = |name: &str| match &get(&c, name).log {
        LogMode::File(f) => f.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let a = file("a");
    assert_eq!(
        (a.max_size, a.keep, a.json, a.console),
        (Some(10 << 20), 10, Some(false), true)
    );
    let b = file("b");
    assert_eq!(
        (b.max_size, b.keep, b.json, b.console),
        (Some(65536), 0, None, false)
    );
    assert_eq!(file("c").max_size, Some(512 << 10));
}

#[test]
fn api_section_reads_addresses_paths_and_token_files() {
    let s = Scratch::new();
    s.write("token", "  full-token\n");
    let path = s.write(
        "pidone.toml",
        "[api]\nlisten = [\"0.0.0.0:9100\", \"[::]:9100\"]\npublic = []\n\
         token_file = \"token\"\n",
    );
    let c = load(std::slice::from_ref(&path), &s.ctx(&[])).expect("valid");
    let addrs: Vec<String> = c.api.listen.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(addrs, ["0.0.0.0:9100", "[::]:9100"]);
    assert!(
        c.api.listen[0]
            .1
            .ends_with("pidone.toml:2: key \"api.listen\": 0.0.0.0:9100")
    );
    assert!(c.api.public.is_empty());
    assert_eq!(c.api.token, Some(Token(b"full-token".to_vec())));
    assert_eq!(c.api.read_token, None);
    assert!(
        !format!("{c:?}").contains("full-token"),
        "Debug hides tokens"
    );
    assert_eq!(
        ok("[api]\n").api.public,
        ["/livez", "/readyz", "/metrics"],
        "the default public paths"
    );
}

#[test]
fn bad_api_keys_are_named_with_their_line() {
    let errors = errs(
        "[api]\nlisten = [\"localhost:9100\"]\npublic = [\"metrics\"]\n\
         read_token_file = \"/nonexistent/t\"\nport = 1\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].starts_with("F:2: ") && errors[0].contains("api.listen"));
    assert!(errors[0].contains("'localhost:9100' is not an address"));
    assert!(errors[1].starts_with("F:3: ") && errors[1].contains("'metrics' is not a path"));
    assert!(errors[2].starts_with("F:4: ") && errors[2].contains("api.read_token_file"));
    assert!(errors[3].starts_with("F:5: ") && errors[3].contains("port"));
}
