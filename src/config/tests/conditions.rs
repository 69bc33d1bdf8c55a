//! `depends_on`'s conditions: the table forms, what each condition may be asked of, and the
//! errors, with their line and key.

use super::*;
use crate::config::conditions::Condition;

const BASE: &str = r#"
[[services]]
name = "db"
command = "/bin/true"

[[services]]
name = "migrate"
type = "oneshot"
command = "/bin/true"

[[services]]
name = "cache"
command = "/bin/true"
instances = 2
"#;

fn service<'c>(config: &'c Config, name: &str) -> &'c ServiceSpec {
    let id = config.find(name).expect("a service of the config");
    &config.services[id.index()]
}

#[test]
fn a_table_gives_each_dependency_its_condition() {
    let text = format!(
        "{BASE}\n[[services]]\nname = \"web\"\ncommand = \"/bin/true\"\n\
         depends_on = {{ db = \"ready\", migrate = \"completed\", cache = \"started\" }}\n\
         wait_after = {{ migrate = 2 }}\n"
    );
    let config = load_one(&text).expect("valid");
    let web = service(&config, "web");
    let names: Vec<&str> = (web.depends_on.iter())
        .map(|id| config.services[id.index()].name.as_str())
        .collect();
    assert_eq!(names, ["db", "migrate", "cache-1", "cache-2"]);
    use Condition::*;
    assert_eq!(web.conditions, [Ready, Completed, Started, Started]);
    assert_eq!(web.wait_after.len(), 1);
    let text = describe(&config);
    assert!(
        text.contains(
            "depends on: db, migrate (completed, +2s), cache-1 (started), cache-2 (started)"
        ),
        "{text}"
    );
}

#[test]
fn the_sub_table_and_succeeded_read_like_the_rest() {
    let text = format!(
        "{BASE}\n[[services]]\nname = \"web\"\ncommand = \"/bin/true\"\n\n\
         [services.depends_on]\nmigrate = \"succeeded\"\ndb = \"ready\"\n"
    );
    let config = load_one(&text).expect("valid");
    let web = service(&config, "web");
    assert_eq!(web.depends_on.len(), 2);
    assert!(
        web.conditions.is_empty(),
        "all mean up: {:?}",
        web.conditions
    );
    // The order of the start still puts every dependency first.
    assert!(config.find("web") > config.find("migrate"));
}

#[test]
fn conditions_that_make_no_sense_are_refused_at_their_line() {
    let text = format!(
        "{BASE}\n[[services]]\nname = \"web\"\ncommand = \"/bin/true\"\n\n\
         [services.depends_on]\ndb = \"completed\"\ncache = \"succeeded\"\nmigrate = \"redy\"\n\
         \n[[services]]\nname = \"job\"\ntype = \"oneshot\"\ncommand = \"/bin/true\"\n\
         schedule = \"@daily\"\n\n[[services]]\nname = \"api\"\ncommand = \"/bin/true\"\n\
         depends_on = {{ job = \"completed\", db = 3 }}\nwait_after = {{ cache = 1 }}\n"
    );
    assert_eq!(
        errs(&text),
        [
            "F:21: service \"web\": key \"depends_on.db\": \"completed\" needs a oneshot, and \"db\" is a longrun (use \"ready\" or \"started\")",
            "F:22: service \"web\": key \"depends_on.cache\": \"succeeded\" needs a oneshot, and \"cache\" is a longrun (use \"ready\" or \"started\")",
            "F:23: service \"web\": key \"depends_on.migrate\": unknown condition \"redy\" (did you mean \"ready\"?)",
            "F:34: service \"api\": key \"depends_on.db\": expected a condition: \"ready\", \"started\", \"completed\" or \"succeeded\", found integer",
            "F:34: service \"api\": key \"depends_on.job\": \"job\" runs on its schedule, which never holds a start: \"completed\" would mean nothing (leave it out, or write \"ready\")",
            "F:35: service \"api\": key \"wait_after\": \"cache\" is not in depends_on",
        ]
    );
}

#[test]
fn an_unknown_service_in_the_table_is_named() {
    let text = format!(
        "{BASE}\n[[services]]\nname = \"web\"\ncommand = \"/bin/true\"\n\
         depends_on = {{ dbb = \"started\" }}\n"
    );
    assert_eq!(
        errs(&text),
        [
            "F:19: service \"web\": key \"depends_on\": unknown service \"dbb\" (did you mean \"db\"?)"
        ]
    );
}
