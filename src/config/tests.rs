//! Tests of loading whole configs: every key, every go-overlay form, every error message.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A scratch directory, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pidone-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    fn executable(&self, name: &str) -> PathBuf {
        let path = self.write(name, "#!/bin/sh\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn ctx(&self, env: &[(&str, &str)]) -> LoadContext {
        let mut vars: Env = [("PATH", "/usr/bin:/bin")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        LoadContext {
            env: vars,
            euid: 0,
            root: self.dir.clone(),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn load_one(text: &str) -> Result<Config, Vec<ConfigError>> {
    let s = Scratch::new();
    let path = s.write("pidone.toml", text);
    load(&[path], &s.ctx(&[]))
}

fn ok(text: &str) -> Config {
    match load_one(text) {
        Ok(c) => c,
        Err(errors) => panic!("unexpected errors: {}", render(&errors)),
    }
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `text` and returns the error messages with the scratch path replaced by `F`.
fn errs(text: &str) -> Vec<String> {
    errs_with(text, &[])
}

fn errs_with(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let s = Scratch::new();
    let path = s.write("pidone.toml", text);
    match load(std::slice::from_ref(&path), &s.ctx(env)) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors
            .iter()
            .map(|e| e.to_string().replace(&path.display().to_string(), "F"))
            .collect(),
    }
}

fn names(config: &Config) -> Vec<&str> {
    config.services.iter().map(|s| s.name.as_str()).collect()
}

fn get<'a>(config: &'a Config, name: &str) -> &'a ServiceSpec {
    let id = config.find(name).expect("service exists");
    &config.services[id.0]
}

fn dep_names<'a>(config: &'a Config, ids: &[ServiceId]) -> Vec<&'a str> {
    ids.iter()
        .map(|id| config.services[id.0].name.as_str())
        .collect()
}

fn env_of<'a>(spec: &'a ServiceSpec, key: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

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
    assert_eq!(web.log, LogMode::File("/tmp/web-8080.log".into()));
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
    assert_eq!(a.start_timeout, Duration::from_secs(60));
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
"
    );
}

// ---- errors ----

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

/// A check with every field at its default, for `probe`.
fn check(name: &str, probe: Probe) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        probe,
        level: Level::Alive,
        initial_delay: Duration::ZERO,
        period: Duration::from_secs(10),
        timeout: Duration::from_secs(3),
        success_threshold: 1,
        failure_threshold: 3,
        on_failure: OnFailure::Restart,
    }
}

fn tcp(host: &str, port: u16) -> Probe {
    Probe::Tcp {
        host: host.into(),
        port,
    }
}

fn http(host: &str, port: u16, path: &str) -> Probe {
    Probe::Http {
        host: host.into(),
        port,
        path: path.into(),
    }
}

fn exec(argv: &[&str]) -> Probe {
    Probe::Exec(argv.iter().map(|a| (*a).to_owned()).collect())
}

#[test]
fn ready_modes_and_start_timeout() {
    let c = ok(r#"
[[services]]
name = "fd"
command = "true"
ready = { notify_fd = 3 }
[[services]]
name = "sd"
command = "true"
start_timeout = "2m"
[services.ready]
sd_notify = true
[[services]]
name = "after"
command = "true"
start_timeout = 5
ready = { after = "4500ms" }
[[services]]
name = "exec"
command = "true"
ready = { sd_notify = false }
[[services]]
name = "fd-max"
command = "true"
ready.notify_fd = 1023
"#);
    assert_eq!(get(&c, "fd").ready, ReadyMode::NotifyFd(3));
    assert_eq!(get(&c, "fd").start_timeout, Duration::from_secs(60));
    assert_eq!(get(&c, "sd").ready, ReadyMode::SdNotify);
    assert_eq!(get(&c, "sd").start_timeout, Duration::from_secs(120));
    assert_eq!(
        get(&c, "after").ready,
        ReadyMode::After(Duration::from_millis(4500))
    );
    assert_eq!(get(&c, "after").start_timeout, Duration::from_secs(5));
    assert_eq!(get(&c, "exec").ready, ReadyMode::Exec);
    assert_eq!(get(&c, "fd-max").ready, ReadyMode::NotifyFd(1023));
}

#[test]
fn ready_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
ready = "notify"
start_timeout = 0
[[services]]
name = "b"
command = "true"
ready = {}
[[services]]
name = "c"
command = "true"
ready = { notify_fd = 3, sd_notify = true }
[[services]]
name = "d"
command = "true"
[services.ready]
notfy_fd = 3
[[services]]
name = "e"
command = "true"
ready = { notify_fd = 2 }
[[services]]
name = "f"
command = "true"
ready = { notify_fd = 1024 }
[[services]]
name = "g"
command = "true"
ready = { after = 0 }
[[services]]
name = "h"
command = "true"
ready = { after = 60 }
[[services]]
name = "i"
command = "true"
start_timeout = "10s"
ready = { after = "15s" }
[[services]]
name = "j"
command = "true"
ready = { sd_notify = "yes" }
"#
        ),
        vec![
            "F:4: service \"a\": key \"ready\": expected a table: { notify_fd = N }, { sd_notify = true } or { after = DURATION }, found string",
            "F:5: service \"a\": key \"start_timeout\": start_timeout must be longer than 0",
            "F:9: service \"b\": key \"ready\": empty: set one of notify_fd, sd_notify or after",
            "F:13: service \"c\": key \"ready.sd_notify\": cannot be used together with \"ready.notify_fd\"",
            "F:18: service \"d\": unknown key \"ready.notfy_fd\" (did you mean \"ready.notify_fd\"?)",
            "F:22: service \"e\": key \"ready.notify_fd\": fd 2 is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)",
            "F:26: service \"f\": key \"ready.notify_fd\": fd 1024 is out of range: use 3 to 1023 (fds 0, 1 and 2 are the service's stdin, stdout and stderr)",
            "F:30: service \"g\": key \"ready.after\": after must be longer than 0",
            "F:34: service \"h\": key \"ready.after\": 60s must be shorter than start_timeout (60s, the default)",
            "F:39: service \"i\": key \"ready.after\": 15s must be shorter than start_timeout (10s)",
            "F:43: service \"j\": key \"ready.sd_notify\": expected true or false, found string",
        ]
    );
}

#[test]
fn every_check_form_and_key() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"

[[services.checks]]
exec = "test -e /tmp/ready"

[[services.checks]]
name = "argv"
exec = ["true", "--flag"]
level = "ready"
initial_delay = "500ms"
period = 2
timeout = "1s"
success_threshold = 2
failure_threshold = 5

[[services.checks]]
tcp = "127.0.0.1:5432"
on_failure = "stop"

[[services.checks]]
name = "v6"
tcp = "[::1]:6379"
on_failure = "shutdown"

[[services.checks]]
name = "local"
tcp = "localhost:80"
on_failure = "ignore"

[[services.checks]]
http = "http://127.0.0.1:8080/health?verbose=1#top"
on_failure = "restart"

[[services.checks]]
name = "plain"
http = "HTTP://localhost"

[[services.checks]]
name = "query"
http = "http://[::1]:81?q"
"#);
    let a = get(&c, "a");
    assert_eq!(
        a.checks,
        vec![
            check("exec", exec(&["/bin/sh", "-c", "test -e /tmp/ready"])),
            CheckSpec {
                level: Level::Ready,
                initial_delay: Duration::from_millis(500),
                period: Duration::from_secs(2),
                timeout: Duration::from_secs(1),
                success_threshold: 2,
                failure_threshold: 5,
                ..check("argv", exec(&["/usr/bin/true", "--flag"]))
            },
            CheckSpec {
                on_failure: OnFailure::Stop,
                ..check("tcp", tcp("127.0.0.1", 5432))
            },
            CheckSpec {
                on_failure: OnFailure::Shutdown,
                ..check("v6", tcp("::1", 6379))
            },
            CheckSpec {
                on_failure: OnFailure::Ignore,
                ..check("local", tcp("localhost", 80))
            },
            check("http", http("127.0.0.1", 8080, "/health?verbose=1")),
            check("plain", http("localhost", 80, "/")),
            check("query", http("::1", 81, "/?q")),
        ]
    );
    assert_eq!(a.ready, ReadyMode::Exec);
}

#[test]
fn checks_may_be_an_inline_array() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
checks = [{ tcp = "127.0.0.1:1" }, { tcp = "127.0.0.1:2", level = "ready" }]
"#);
    assert_eq!(
        get(&c, "a").checks,
        vec![
            check("tcp", tcp("127.0.0.1", 1)),
            CheckSpec {
                level: Level::Ready,
                ..check("tcp-2", tcp("127.0.0.1", 2))
            },
        ]
    );
}

#[test]
fn default_check_names_avoid_taken_ones() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
[[services.checks]]
exec = "true"
[[services.checks]]
name = "exec"
tcp = "127.0.0.1:1"
[[services.checks]]
tcp = "127.0.0.1:2"
[[services.checks]]
tcp = "127.0.0.1:3"
[[services.checks]]
http = "http://127.0.0.1:4/"
"#);
    let names: Vec<&str> = get(&c, "a")
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["exec-1", "exec", "tcp", "tcp-4", "http"]);
}

#[test]
fn check_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "https://127.0.0.1/health"
[[services.checks]]
http = "ftp://127.0.0.1/"
[[services.checks]]
http = "127.0.0.1/health"
[[services.checks]]
tcp = "127.0.0.1:0"
[[services.checks]]
tcp = "127.0.0.1:70000"
[[services.checks]]
tcp = "127.0.0.1:pg"
[[services.checks]]
tcp = "127.0.0.1"
[[services.checks]]
tcp = "::1:80"
[[services.checks]]
tcp = ":80"
[[services.checks]]
http = "http://user@host/"
[[services.checks]]
http = "http://host/a b"
[[services.checks]]
tcp = "[::g]:1"
[[services.checks]]
exec = ""
[[services.checks]]
exec = []
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].http\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
            "F:7: service \"a\": key \"checks[2].http\": bad URL \"ftp://127.0.0.1/\": only http:// is supported",
            "F:9: service \"a\": key \"checks[3].http\": bad URL \"127.0.0.1/health\": expected http://HOST[:PORT][/PATH]",
            "F:11: service \"a\": key \"checks[4].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:13: service \"a\": key \"checks[5].tcp\": bad address \"127.0.0.1:70000\": port 70000 is out of range (1 to 65535)",
            "F:15: service \"a\": key \"checks[6].tcp\": bad address \"127.0.0.1:pg\": bad port \"pg\"",
            "F:17: service \"a\": key \"checks[7].tcp\": bad address \"127.0.0.1\": expected HOST:PORT (an IPv6 address as [::1]:PORT)",
            "F:19: service \"a\": key \"checks[8].tcp\": bad address \"::1:80\": an IPv6 address needs brackets, like [::1]:8080",
            "F:21: service \"a\": key \"checks[9].tcp\": bad address \":80\": the host is empty",
            "F:23: service \"a\": key \"checks[10].http\": bad URL \"http://user@host/\": user info (user@host) is not supported",
            "F:25: service \"a\": key \"checks[11].http\": bad URL \"http://host/a b\": the path must not contain spaces or control characters (percent-encode them)",
            "F:27: service \"a\": key \"checks[12].tcp\": bad address \"[::g]:1\": \"::g\" is not an IPv6 address",
            "F:29: service \"a\": key \"checks[13].exec\": the command must not be empty",
            "F:31: service \"a\": key \"checks[14].exec\": the program must not be empty",
        ]
    );
}

#[test]
fn check_key_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
name = "ping"
exec = "true"
tcp = "127.0.0.1:1"
perod = 3
[[services.checks]]
name = "ping"
period = 0
timeout = "0"
success_threshold = 0
failure_threshold = 0
level = "live"
on_failure = "explode"
[[services.checks]]
name = "bad name"
level = "ready"
on_failure = "restart"
tcp = "127.0.0.1:1"
[[services.checks]]
initial_delay = "soon"
"#
        ),
        vec![
            "F:7: service \"a\": key \"checks[1].tcp\": cannot be used together with \"checks[1].exec\"",
            "F:8: service \"a\": unknown key \"checks[1].perod\" (did you mean \"checks[1].period\"?)",
            "F:10: service \"a\": key \"checks[2].name\": duplicate check name \"ping\" (also used by checks[1])",
            "F:11: service \"a\": key \"checks[2].period\": period must be at least 10ms",
            "F:12: service \"a\": key \"checks[2].timeout\": timeout must be at least 1ms",
            "F:13: service \"a\": key \"checks[2].success_threshold\": success_threshold must be at least 1",
            "F:14: service \"a\": key \"checks[2].failure_threshold\": failure_threshold must be at least 1",
            "F:15: service \"a\": key \"checks[2].level\": unknown level \"live\": use \"ready\" or \"alive\"",
            "F:16: service \"a\": key \"checks[2].on_failure\": unknown on_failure \"explode\": use \"restart\", \"stop\", \"shutdown\" or \"ignore\"",
            "F:18: service \"a\": key \"checks[3].name\": invalid check name \"bad name\": use only letters, digits, '_', '.' and '-'",
            "F:20: service \"a\": key \"checks[3].on_failure\": a ready check only gates readiness and its failures never act (start_timeout does): remove on_failure, or use level = \"alive\"",
            "F:23: service \"a\": key \"checks[4].initial_delay\": bad duration \"soon\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
        ]
    );
}

#[test]
fn check_shape_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
checks = { tcp = "127.0.0.1:1" }
[[services]]
name = "b"
command = "true"
checks = ["tcp"]
[[services]]
name = "c"
command = "true"
[[services.checks]]
period = 5
[[services]]
name = "d"
command = "true"
[[services.checks]]
name = "health_check"
tcp = "127.0.0.1:1"
[services.health_check]
command = "true"
"#
        ),
        vec![
            "F:4: service \"a\": key \"checks\": expected an array of tables ([[services.checks]]), found table",
            "F:8: service \"b\": key \"checks[1]\": expected a table, found string",
            "F:12: service \"c\": key \"checks[1]\": no probe: set one of exec, tcp or http",
            "F:18: service \"d\": key \"checks[1].name\": duplicate check name \"health_check\" (also used by health_check)",
        ]
    );
}

#[test]
fn checks_expand_variables_and_find_programs_like_command() {
    let s = Scratch::new();
    s.executable("bin/probe");
    let path = s.write(
        "p.toml",
        &r#"
[[services]]
name = "api"
command = "true"
instances = 2
env = { PATH = "DIR/bin:/usr/bin:/bin", PORT = "300${PIDONE_INSTANCE}" }
[[services.checks]]
exec = ["probe", "--port=${PORT}"]
[[services.checks]]
exec = "curl -f http://127.0.0.1:${PORT}/ $HOME"
[[services.checks]]
tcp = "127.0.0.1:${PORT}"
[[services.checks]]
http = "http://${HOST:-localhost}:${PORT}/health"
"#
        .replace("DIR", &s.dir.display().to_string()),
    );
    let c = load(&[path], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    let probe = s.dir.join("bin/probe").display().to_string();
    for i in 1..=2 {
        let port = 3000 + i;
        assert_eq!(
            get(&c, &format!("api-{i}")).checks,
            vec![
                check(
                    "exec",
                    Probe::Exec(vec![probe.clone(), format!("--port={port}")])
                ),
                check(
                    "exec-2",
                    Probe::Exec(vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        format!("curl -f http://127.0.0.1:{port}/ $HOME"),
                    ])
                ),
                check("tcp", tcp("127.0.0.1", port)),
                check("http", http("localhost", port, "/health")),
            ]
        );
    }
}

#[test]
fn check_problems_found_after_expansion() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
exec = ["no-such-program-xyz"]
[[services.checks]]
exec = ["/nonexistent/probe"]
[[services.checks]]
tcp = "${NO_HOST}:80"
[[services.checks]]
tcp = "127.0.0.1:${PORT:-0}"
[[services.checks]]
http = "${SCHEME:-https}://127.0.0.1/"
[[services]]
name = "off"
command = "true"
enabled = false
[[services.checks]]
exec = ["no-such-program-xyz"]
[[services.checks]]
tcp = "${NO_HOST}:80"
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].exec\": program \"no-such-program-xyz\" not found on PATH \"/usr/bin:/bin\"",
            "F:7: service \"a\": key \"checks[2].exec\": program \"/nonexistent/probe\" does not exist",
            "F:9: service \"a\": key \"checks[3].tcp\": undefined variable ${NO_HOST} (set it, or give a default: ${NO_HOST:-value})",
            "F:11: service \"a\": key \"checks[4].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:13: service \"a\": key \"checks[5].http\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
        ]
    );
}

#[test]
fn go_overlay_health_check_maps_to_one_alive_check() {
    let c = ok(r#"
[[services]]
name = "web"
command = "true"
[services.health_check]
endpoint = "http://localhost:8080/health"

[[services]]
name = "worker"
command = "true"
[services.health_check]
command = "pgrep worker"
interval = 5
retries = 2
timeout = "1s"
start_delay = 0

[[services]]
name = "both"
command = "true"
health_check = { endpoint = "http://127.0.0.1/", command = "false" }

[[services]]
name = "neither"
command = "true"
health_check = { interval = 3, endpoint = "", command = "" }

[[services]]
name = "zeros"
command = "true"
health_check = { command = "true", interval = 0, retries = 0, timeout = 0, start_delay = "2s" }

[[services]]
name = "mixed"
command = "true"
health_check = { command = "true" }
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
"#);
    let go = |probe: Probe| CheckSpec {
        initial_delay: Duration::from_secs(10),
        period: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        ..check("health_check", probe)
    };
    assert_eq!(
        get(&c, "web").checks,
        vec![go(http("localhost", 8080, "/health"))]
    );
    assert_eq!(
        get(&c, "worker").checks,
        vec![CheckSpec {
            period: Duration::from_secs(5),
            failure_threshold: 2,
            timeout: Duration::from_secs(1),
            ..go(exec(&["/bin/sh", "-c", "pgrep worker"]))
        }]
    );
    assert_eq!(get(&c, "both").checks, vec![go(http("127.0.0.1", 80, "/"))]);
    assert!(get(&c, "neither").checks.is_empty());
    assert_eq!(
        get(&c, "zeros").checks,
        vec![CheckSpec {
            initial_delay: Duration::from_secs(2),
            ..go(exec(&["/bin/sh", "-c", "true"]))
        }]
    );
    assert_eq!(
        get(&c, "mixed").checks,
        vec![
            CheckSpec {
                level: Level::Ready,
                ..check("tcp", tcp("127.0.0.1", 1))
            },
            go(exec(&["/bin/sh", "-c", "true"])),
        ]
    );
}

#[test]
fn go_overlay_health_check_acts_like_handle_unhealthy_service() {
    let c = ok(r#"
[[services]]
name = "default"
command = "true"
health_check = { command = "true" }
[[services]]
name = "always"
command = "true"
restart = "always"
health_check = { command = "true" }
[[services]]
name = "on-failure"
command = "true"
restart = "on-failure"
required = true
health_check = { command = "true" }
[[services]]
name = "required"
command = "true"
restart = "never"
required = true
health_check = { command = "true" }
[[services]]
name = "optional"
command = "true"
restart = "never"
health_check = { command = "true" }
"#);
    let action = |name: &str| get(&c, name).checks[0].on_failure;
    assert_eq!(action("default"), OnFailure::Restart);
    assert_eq!(action("always"), OnFailure::Restart);
    assert_eq!(action("on-failure"), OnFailure::Restart);
    assert_eq!(action("required"), OnFailure::Shutdown);
    assert_eq!(action("optional"), OnFailure::Ignore);
}

#[test]
fn health_check_errors() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
health_check = "http://localhost/"
[[services]]
name = "b"
command = "true"
[services.health_check]
endpoint = "https://localhost/health"
intervall = 5
retries = -1
timeout = "soon"
command = ["true"]
"#
        ),
        vec![
            "F:4: service \"a\": key \"health_check\": expected a table ([services.health_check]), found string",
            "F:9: service \"b\": key \"health_check.endpoint\": https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS",
            "F:10: service \"b\": unknown key \"health_check.intervall\" (did you mean \"health_check.interval\"?)",
            "F:11: service \"b\": key \"health_check.retries\": -1 is not a count (expected 0 to 4294967295)",
            "F:12: service \"b\": key \"health_check.timeout\": bad duration \"soon\": use seconds as an integer or a string like \"500ms\", \"10s\", \"2m\", \"1h\"",
            "F:13: service \"b\": key \"health_check.command\": expected a string, found array",
        ]
    );
}

#[test]
fn a_ready_check_initial_delay_must_be_shorter_than_start_timeout() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
level = "ready"
initial_delay = 60
[[services]]
name = "b"
command = "true"
start_timeout = "10s"
[[services.checks]]
initial_delay = "15s"
level = "ready"
exec = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
initial_delay = "2m"
[[services]]
name = "c"
command = "true"
start_timeout = 5
checks = [{ tcp = "127.0.0.1:1", level = "ready", initial_delay = "4999ms" }]
"#
        ),
        vec![
            "F:7: service \"a\": key \"checks[1].initial_delay\": 60s must be shorter than start_timeout (60s, the default)",
            "F:13: service \"b\": key \"checks[1].initial_delay\": 15s must be shorter than start_timeout (10s)",
        ]
    );
}

#[test]
fn a_program_or_shell_command_that_expands_to_nothing_is_refused() {
    assert_eq!(
        errs_with(
            r#"[[services]]
name = "a"
command = "${E}"
[[services]]
name = "b"
command = ["${E}", "x"]
pre_script = "${E}"
post_script = ["${E:-}"]
[[services]]
name = "c"
command = "true"
[[services.checks]]
exec = ["${E}", "x"]
[[services.checks]]
exec = "${E}"
[[services.checks]]
exec = " ${E} "
[[services.checks]]
exec = "${NOPE}"
[services.health_check]
command = "${E}"
[[services]]
name = "off"
command = "${E}"
enabled = false
[[services.checks]]
exec = "${E}"
"#,
            &[("E", "")]
        ),
        vec![
            "F:3: service \"a\": key \"command\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:6: service \"b\": key \"command\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:7: service \"b\": key \"pre_script\": the script must not be empty: \"${E}\" expands to \"\"",
            "F:8: service \"b\": key \"post_script\": the script must not be empty: \"${E:-}\" expands to \"\"",
            "F:13: service \"c\": key \"checks[1].exec\": the program must not be empty: \"${E}\" expands to \"\"",
            "F:15: service \"c\": key \"checks[2].exec\": the command must not be empty: \"${E}\" expands to \"\"",
            "F:17: service \"c\": key \"checks[3].exec\": the command must not be empty: \" ${E} \" expands to \"  \"",
            "F:19: service \"c\": key \"checks[4].exec\": undefined variable ${NOPE} (set it, or give a default: ${NOPE:-value})",
            "F:21: service \"c\": key \"health_check.command\": the command must not be empty: \"${E}\" expands to \"\"",
        ]
    );
}

#[test]
fn nul_bytes_in_arguments_and_paths_are_refused() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = ["/bin/echo", "a\u0000b"]
args = ["\u0000"]
pre_script = "/bin/x\u0000"
post_script = ["/bin/true", "x", "\u0000"]
workdir = "/tmp\u0000"
env = { X = "a\u0000" }
[[services.checks]]
exec = ["/bin/echo", "a\u0000b"]
[[services.checks]]
exec = "echo \u0000"
[services.health_check]
command = "true\u0000"
[[services]]
name = "b"
command = "/bin/echo\u0000"
"#
        ),
        vec![
            "F:3: service \"a\": key \"command\": item 2 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:4: service \"a\": key \"args\": item 1 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:5: service \"a\": key \"pre_script\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:6: service \"a\": key \"post_script\": item 3 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:7: service \"a\": key \"workdir\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:8: service \"a\": key \"env\": value of X contains a NUL byte",
            "F:10: service \"a\": key \"checks[1].exec\": item 2 contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:12: service \"a\": key \"checks[2].exec\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:14: service \"a\": key \"health_check.command\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
            "F:17: service \"b\": key \"command\": contains a NUL byte (\\u0000), which no program argument, path or name can hold",
        ]
    );
}

#[test]
fn conflicts_blame_the_key_written_second() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
exec = "true"
[[services]]
name = "b"
command = "true"
ready = { sd_notify = true, after = 5 }
[[services]]
name = "c"
command = "true"
[services.ready]
sd_notify = true
notify_fd = 3
[[services]]
name = "d"
command = "true"
post_script = "/bin/true"
pos_script = "/bin/true"
[[services]]
name = "e"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:0"
http = "http://127.0.0.1/"
"#
        ),
        vec![
            "F:6: service \"a\": key \"checks[1].exec\": cannot be used together with \"checks[1].tcp\"",
            "F:10: service \"b\": key \"ready.after\": cannot be used together with \"ready.sd_notify\"",
            "F:16: service \"c\": key \"ready.notify_fd\": cannot be used together with \"ready.sd_notify\"",
            "F:21: service \"d\": key \"pos_script\": cannot be used together with \"post_script\"",
            "F:26: service \"e\": key \"checks[1].tcp\": bad address \"127.0.0.1:0\": port 0 is out of range (1 to 65535)",
            "F:27: service \"e\": key \"checks[1].http\": cannot be used together with \"checks[1].tcp\"",
        ]
    );
}

#[test]
fn check_periods_and_timeouts_have_a_floor() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
period = 1e-9
timeout = 0.0005
[[services.checks]]
tcp = "127.0.0.1:1"
period = "9ms"
[services.health_check]
command = "true"
interval = 0.001
timeout = 1e-9
[[services]]
name = "b"
command = "true"
[[services.checks]]
tcp = "127.0.0.1:1"
period = "10ms"
timeout = "1ms"
[services.health_check]
command = "true"
interval = 0.01
timeout = 0.001
"#
        ),
        vec![
            "F:6: service \"a\": key \"checks[1].period\": period must be at least 10ms",
            "F:7: service \"a\": key \"checks[1].timeout\": timeout must be at least 1ms",
            "F:10: service \"a\": key \"checks[2].period\": period must be at least 10ms",
            "F:13: service \"a\": key \"health_check.interval\": interval must be at least 10ms",
            "F:14: service \"a\": key \"health_check.timeout\": timeout must be at least 1ms",
        ]
    );
}

#[test]
fn durations_are_shown_exactly() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(10), "10s"),
        (Duration::from_secs(120), "120s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_millis(4250), "4.25s"),
        (Duration::from_micros(250), "250µs"),
        (Duration::from_micros(1500), "1500µs"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::new(2, 1_000), "2.000001s"),
    ];
    for (d, text) in cases {
        assert_eq!(format_duration(d), text, "{d:?}");
    }
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
start_timeout = 1.2
ready = { after = "1500ms" }
[[services]]
name = "b"
command = "true"
start_timeout = 0.0000005
ready = { after = 0.0000005 }
"#
        ),
        vec![
            "F:5: service \"a\": key \"ready.after\": 1.5s must be shorter than start_timeout (1.2s)",
            "F:10: service \"b\": key \"ready.after\": 500ns must be shorter than start_timeout (500ns)",
        ]
    );
}

#[test]
fn http_paths_must_be_sendable_as_written() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/caf\u00e9"
[[services.checks]]
http = "http://127.0.0.1/?q=100%"
[[services.checks]]
http = "http://127.0.0.1/a%2"
[[services.checks]]
http = "http://127.0.0.1/a%zz/b"
[services.health_check]
endpoint = "http://127.0.0.1/?q=\u00fc"
[[services]]
name = "b"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/a%2Fb?x=%e2%82%ac#frag%"
"#
        ),
        vec![
            "F:5: service \"a\": key \"checks[1].http\": bad URL \"http://127.0.0.1/café\": the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
            "F:7: service \"a\": key \"checks[2].http\": bad URL \"http://127.0.0.1/?q=100%\": bad percent escape \"%\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:9: service \"a\": key \"checks[3].http\": bad URL \"http://127.0.0.1/a%2\": bad percent escape \"%2\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:11: service \"a\": key \"checks[4].http\": bad URL \"http://127.0.0.1/a%zz/b\": bad percent escape \"%zz\" in the path: '%' must be followed by two hex digits (write %25 for a '%')",
            "F:13: service \"a\": key \"health_check.endpoint\": bad URL \"http://127.0.0.1/?q=ü\": the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
        ]
    );
}

#[test]
fn an_http_fragment_is_not_sent() {
    let c = ok(r#"
[[services]]
name = "a"
command = "true"
[[services.checks]]
http = "http://127.0.0.1/a%2Fb?x=%e2%82%ac#frag%"
"#);
    assert_eq!(
        get(&c, "a").checks,
        vec![check("http", http("127.0.0.1", 80, "/a%2Fb?x=%e2%82%ac"))]
    );
}

#[test]
fn a_oneshot_has_no_readiness_or_checks() {
    assert_eq!(
        errs(
            r#"[[services]]
name = "a"
command = "true"
type = "oneshot"
ready = { notify_fd = 3 }
start_timeout = 5
[[services]]
name = "b"
command = "true"
oneshot = true
[[services.checks]]
tcp = "127.0.0.1:1"
[[services]]
name = "c"
command = "true"
oneshot = true
[services.health_check]
command = "true"
"#
        ),
        vec![
            "F:5: service \"a\": key \"ready\": a oneshot is up when it exits successfully; ready/checks do not apply",
            "F:6: service \"a\": key \"start_timeout\": a oneshot is up when it exits successfully; start_timeout does not apply",
            "F:11: service \"b\": key \"checks\": a oneshot is up when it exits successfully; ready/checks do not apply",
            "F:17: service \"c\": key \"health_check\": a oneshot is up when it exits successfully; ready/checks do not apply",
        ]
    );
}

#[test]
fn describe_shows_readiness_and_checks() {
    let c = ok(r#"
[[services]]
name = "db"
command = "true"
ready = { notify_fd = 3 }
start_timeout = 30
[[services.checks]]
name = "ping"
exec = ["true", "a b"]
on_failure = "shutdown"
[[services]]
name = "web"
command = "true"
depends_on = "db"
ready = { after = 2 }
[[services.checks]]
http = "http://[::1]:8080/health"
level = "ready"
period = "500ms"
[[services.checks]]
tcp = "127.0.0.1:8080"
"#);
    assert_eq!(
        describe(&c),
        "\
2 services (2 enabled), in start order:
  1. db   longrun  ready: notify_fd 3  start_timeout: 30s
     check ping (alive, on failure: shutdown): exec /usr/bin/true \"a b\" every 10s
  2. web  longrun  depends on: db  ready: after 2s
     check http (ready): GET http://[::1]:8080/health every 500ms
     check tcp (alive, on failure: restart): tcp 127.0.0.1:8080 every 10s
"
    );
}

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
    let mut ctx = s.ctx(&[]);
    ctx.euid = 1000;
    let path = s.write(
        "q.toml",
        "[[services]]\nname = \"a\"\ncommand = \"true\"\nuser = \"app\"\n",
    );
    let e = load(std::slice::from_ref(&path), &ctx).expect_err("not root");
    assert_eq!(
        render(&e).replace(&path.display().to_string(), "F"),
        "F:4: service \"a\": key \"user\": switching user needs root, but pidone runs as uid 1000"
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

// ---- sources ----

#[test]
fn sources_from_the_command_line_files_and_directories() {
    let s = Scratch::new();
    let file = s.write("one.toml", "");
    s.write("dir/b.toml", "");
    s.write("dir/a.toml", "");
    s.write("dir/.hidden.toml", "");
    s.write("dir/notes.txt", "");
    let got =
        resolve_sources(&[file.clone(), s.dir.join("dir")], &Env::new(), &s.dir).expect("readable");
    assert_eq!(
        got,
        vec![file, s.dir.join("dir/a.toml"), s.dir.join("dir/b.toml")]
    );
}

#[test]
fn explicit_sources_must_exist_and_hold_files() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.dir.join("empty")).expect("mkdir");
    let e = resolve_sources(
        &[s.dir.join("missing.toml"), s.dir.join("empty")],
        &Env::new(),
        &s.dir,
    )
    .expect_err("bad sources");
    assert_eq!(e.len(), 2);
}

#[test]
fn sources_from_the_environment_variable() {
    let s = Scratch::new();
    let file = s.write("custom.toml", "");
    s.write("etc/pidone.toml", "");
    let env: Env = [("PIDONE_CONFIG".to_owned(), file.display().to_string())]
        .into_iter()
        .collect();
    assert_eq!(resolve_sources(&[], &env, &s.dir), Ok(vec![file.clone()]));
    // The command line wins over the variable.
    let other = s.write("other.toml", "");
    assert_eq!(
        resolve_sources(std::slice::from_ref(&other), &env, &s.dir),
        Ok(vec![other])
    );
}

#[test]
fn default_sources_under_root() {
    let s = Scratch::new();
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![]));
    let legacy = s.write("services.toml", "");
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![legacy]));
    let d = s.write("etc/pidone.d/10-x.toml", "");
    assert_eq!(
        resolve_sources(&[], &Env::new(), &s.dir),
        Ok(vec![d.clone()])
    );
    let main = s.write("etc/pidone.toml", "");
    assert_eq!(resolve_sources(&[], &Env::new(), &s.dir), Ok(vec![main, d]));
}

#[test]
fn services_may_be_split_across_files() {
    let s = Scratch::new();
    let a = s.write(
        "a.toml",
        "[[services]]\nname = \"web\"\ncommand = \"true\"\ndepends_on = \"db\"\n",
    );
    let b = s.write("b.toml", "[timeouts]\nglobal_shutdown_timeout = 9\n[[services]]\nname = \"db\"\ncommand = \"true\"\n");
    let c = load(&[a.clone(), b.clone()], &s.ctx(&[])).unwrap_or_else(|e| panic!("{}", render(&e)));
    assert_eq!(names(&c), vec!["db", "web"]);
    assert_eq!(get(&c, "db").file, b);
    assert_eq!(get(&c, "web").file, a);
    assert_eq!(c.timeouts.global_shutdown, Duration::from_secs(9));
}

#[test]
fn shipped_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    let ctx = LoadContext {
        env: [("PATH".to_owned(), DEFAULT_PATH.to_owned())]
            .into_iter()
            .collect(),
        euid: 0,
        root: PathBuf::from("/"),
    };
    let mut checked = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(std::slice::from_ref(&path), &ctx) {
                panic!("{}: {}", path.display(), render(&e));
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected the shipped examples in {}",
        root.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Limits (docs/config.md, "Limits"): each accepted at the limit, refused one over it.

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
