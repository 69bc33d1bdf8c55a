//! Timed oneshots' keys: `schedule`, `timezone`, `jitter`, `overlap`, `max_runtime`.

use super::*;
use crate::config::{Overlap, Schedule};

const JOB: &str = "[[services]]\nname = \"job\"\ncommand = \"true\"\ntype = \"oneshot\"\n";

#[test]
fn a_timed_job_with_its_keys() {
    let c = ok(&format!(
        "{JOB}schedule = \"*/5 * * * *\"\njitter = \"30s\"\noverlap = \"queue\"\nmax_runtime = \"1h\"\n"
    ));
    let spec = get(&c, "job");
    let timer = spec.timer.as_ref().expect("a timer");
    assert!(matches!(timer.schedule, Schedule::Cron(_)));
    assert_eq!(timer.text, "*/5 * * * *");
    assert_eq!(
        (timer.jitter, timer.overlap),
        (Duration::from_secs(30), Overlap::Queue)
    );
    assert_eq!(spec.max_runtime, Some(Duration::from_secs(3600)));
    let c = ok(&format!("{JOB}schedule = \"@every 90s\"\n"));
    let timer = get(&c, "job").timer.as_ref().expect("a timer");
    assert_eq!(timer.schedule, Schedule::Every(Duration::from_secs(90)));
    assert_eq!(timer.overlap, Overlap::Skip, "the default");
}

#[test]
fn bad_schedules_and_keys_in_the_wrong_place() {
    assert_eq!(
        errs(&format!(
            "{JOB}schedule = \"61 * * * *\"\n[[services]]\nname = \"web\"\ncommand = \"true\"\nschedule = \"@daily\"\nmax_runtime = \"1m\"\n"
        )),
        vec![
            "F:5: service \"job\": key \"schedule\": minute 61 is out of range 0-59",
            "F:9: service \"web\": key \"schedule\": only a oneshot (type = \"oneshot\") runs on a schedule or has a max_runtime",
            "F:10: service \"web\": key \"max_runtime\": only a oneshot (type = \"oneshot\") runs on a schedule or has a max_runtime",
        ]
    );
    assert_eq!(
        errs(&format!(
            "{JOB}schedule = \"@every 0s\"\n[[services]]\nname = \"b\"\ncommand = \"true\"\ntype = \"oneshot\"\njitter = \"1s\"\noverlap = \"maybe\"\n"
        )),
        vec![
            "F:5: service \"job\": key \"schedule\": @every needs at least 1s",
            "F:10: service \"b\": key \"jitter\": applies only with schedule",
            "F:11: service \"b\": key \"overlap\": unknown overlap \"maybe\": use \"skip\", \"queue\" or \"kill\"",
            "F:11: service \"b\": key \"overlap\": applies only with schedule",
        ]
    );
    assert_eq!(
        errs(&format!(
            "{JOB}schedule = \"@daily\"\nrequired = true\ntimezone = \"../etc/passwd\"\n"
        )),
        vec![
            "F:6: service \"job\": key \"required\": a timed job cannot be required: a failed run does not end pidone",
            "F:7: service \"job\": key \"timezone\": \"../etc/passwd\" is not a zone name like \"Europe/Paris\"",
        ]
    );
}

#[test]
fn the_timezone_is_read_from_the_images_zoneinfo() {
    let s = Scratch::new();
    let text = format!("{JOB}schedule = \"@daily\"\ntimezone = \"Europe/Paris\"\n");
    let path = s.write("pidone.toml", &text);
    let errors = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("no zoneinfo");
    let zone = s.dir.join("usr/share/zoneinfo/Europe/Paris");
    assert_eq!(
        render(&errors).replace(&path.display().to_string(), "F"),
        format!(
            "F:6: service \"job\": key \"timezone\": cannot read {}: No such file or directory (os error 2) (is the tzdata package installed in the image?)",
            zone.display()
        )
    );
    std::fs::create_dir_all(zone.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&zone, b"TZif2 but cut short").expect("write");
    let errors = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("a bad file");
    assert!(
        render(&errors).ends_with("truncated zoneinfo file"),
        "{}",
        render(&errors)
    );
    // Version 1 file: UTC+1, no transitions.
    let mut v1 = b"TZif\0".to_vec();
    v1.extend([0; 15]);
    for n in [0u32, 0, 0, 0, 1, 4] {
        v1.extend(n.to_be_bytes());
    }
    v1.extend([0, 0, 0x0e, 0x10, 0, 0]);
    v1.extend(b"CET\0");
    std::fs::write(&zone, v1).expect("write");
    let c = load(std::slice::from_ref(&path), &s.ctx(&[])).expect("a valid zone");
    let timer = c.services[0].timer.as_ref().expect("a timer");
    assert_eq!(timer.zone.offset(0), 3600);
}

#[test]
fn watchdog_needs_sd_notify_on_a_longrun() {
    assert_eq!(
        errs(&format!(
            "{JOB}watchdog = \"5s\"\n[[services]]\nname = \"web\"\ncommand = \"true\"\nwatchdog = \"50ms\"\n[[services]]\nname = \"db\"\ncommand = \"true\"\nwatchdog = \"5s\"\n"
        )),
        vec![
            "F:5: service \"job\": key \"watchdog\": a oneshot has no watchdog (see max_runtime)",
            "F:9: service \"web\": key \"watchdog\": watchdog must be at least 100ms",
            "F:13: service \"db\": key \"watchdog\": needs ready = { sd_notify = true } (WATCHDOG=1 comes through it)",
        ]
    );
    let c = ok(
        "[[services]]\nname = \"db\"\ncommand = \"true\"\nready = { sd_notify = true }\nwatchdog = \"30s\"\n",
    );
    assert_eq!(get(&c, "db").watchdog, Some(Duration::from_secs(30)));
}

#[test]
fn on_demand_and_listen() {
    let c = ok(
        "[[services]]\nname = \"web\"\ncommand = \"true\"\nstart = \"on-demand\"\nidle_timeout = \"5m\"\nlisten = [\"tcp:0.0.0.0:8080\", \"tcp:[::]:8080\", \"udp:127.0.0.1:514\", \"unix:/run/web.sock\"]\n",
    );
    let web = get(&c, "web");
    assert!(web.on_demand);
    assert_eq!(web.idle_timeout, Some(Duration::from_secs(300)));
    let texts: Vec<&str> = web.listen.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "tcp:0.0.0.0:8080",
            "tcp:[::]:8080",
            "udp:127.0.0.1:514",
            "unix:/run/web.sock"
        ]
    );
    assert_eq!(
        errs(&format!(
            "{JOB}listen = [\"tcp:8080\"]\n[[services]]\nname = \"web\"\ncommand = \"true\"\nidle_timeout = \"1m\"\nlisten = [\"tcp:127.0.0.1:0\"]\n[[services]]\nname = \"db\"\ncommand = \"true\"\nlisten = [\"unix:run/db.sock\"]\nstart = \"later\"\n"
        )),
        vec![
            "F:5: service \"job\": key \"listen\": bad address \"tcp:8080\": use HOST:PORT with an IP address (IPv6 in brackets)",
            "F:5: service \"job\": key \"listen\": only a longrun listens (its sockets are passed to it as fds 3…)",
            "F:9: service \"web\": key \"idle_timeout\": applies only with start = \"on-demand\"",
            "F:10: service \"web\": key \"listen\": bad address \"tcp:127.0.0.1:0\": port 0 is out of range",
            "F:14: service \"db\": key \"listen\": bad address \"unix:run/db.sock\": use an absolute path of at most 107 bytes",
            "F:15: service \"db\": key \"start\": unknown start \"later\": use \"boot\" or \"on-demand\"",
        ]
    );
    assert_eq!(
        errs(
            "[[services]]\nname = \"web\"\ncommand = \"true\"\nlisten = [\"tcp:127.0.0.1:80\"]\ninstances = 2\nready = { notify_fd = 3 }\n"
        ),
        vec![
            "F:5: service \"web\": key \"instances\": one set of listen sockets cannot go to several instances",
            "F:6: service \"web\": key \"ready\": the notify fd collides with the listen sockets (fds 3…)",
        ]
    );
}

#[test]
fn timer_keys_without_a_schedule_are_refused_on_any_kind() {
    assert_eq!(
        errs("[[services]]\nname = \"web\"\ncommand = \"true\"\njitter = \"1s\"\n"),
        vec!["F:4: service \"web\": key \"jitter\": applies only with schedule"]
    );
}

#[test]
fn validate_shows_schedules_on_demand_and_sockets() {
    let c = ok(&format!(
        "{JOB}schedule = \"@daily\"\n[[services]]\nname = \"web\"\ncommand = \"true\"\nstart = \"on-demand\"\nlisten = [\"tcp:127.0.0.1:8080\", \"unix:/run/web.sock\"]\n"
    ));
    let text = crate::config::describe(&c);
    assert!(text.contains("job  oneshot  schedule: @daily\n"), "{text}");
    assert!(
        text.contains("web  longrun  on-demand  listen: tcp:127.0.0.1:8080, unix:/run/web.sock\n"),
        "{text}"
    );
}
