//! `groups`: kept in the order written and once each, shared by every instance, and a bad group
//! name refused with its file, line and key.

use super::*;

#[test]
fn groups_are_kept_once_each_and_every_instance_is_in_them() {
    let c = ok(r#"
[[services]]
name = "web"
command = "true"
instances = 2
groups = ["frontend", "backend", "frontend"]

[[services]]
name = "db"
command = "true"
groups = "backend"

[[services]]
name = "cron"
command = "true"
"#);
    for name in ["web-1", "web-2"] {
        assert_eq!(get(&c, name).groups, ["frontend", "backend"]);
    }
    assert_eq!(get(&c, "db").groups, ["backend"]);
    assert!(get(&c, "cron").groups.is_empty());
}

#[test]
fn a_bad_group_name_is_refused_where_it_is_written() {
    let bad = errs(
        "[[services]]\nname = \"a\"\ncommand = \"true\"\ngroups = [\"back end\"]\n\
         [[services]]\nname = \"b\"\ncommand = \"true\"\ngroups = [\"@b\"]\n\
         [[services]]\nname = \"c\"\ncommand = \"true\"\ngroups = [1]\n",
    );
    assert_eq!(
        bad,
        [
            "F:4: service \"a\": key \"groups\": invalid group name \"back end\": use only letters, digits, '_', '.' and '-'",
            "F:8: service \"b\": key \"groups\": invalid group name \"@b\": use only letters, digits, '_', '.' and '-'",
            "F:12: service \"c\": key \"groups\": expected an array of strings, found array",
        ]
    );
    let many: Vec<String> = (0..65).map(|i| format!("\"g{i}\"")).collect();
    let text = format!(
        "[[services]]\nname = \"a\"\ncommand = \"true\"\ngroups = [{}]\n",
        many.join(", ")
    );
    assert_eq!(
        errs(&text),
        ["F:4: service \"a\": key \"groups\": too many groups (65; the limit is 64)"]
    );
}
