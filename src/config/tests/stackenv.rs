//! The top-level `env_file`: where its variables stand among a service's, several of them, and
//! its errors.

use super::*;

#[test]
fn the_stack_env_file_sits_between_pidone_and_the_service() {
    let s = Scratch::new();
    s.write("conf/.env", "B=stack\nC=stack\nD=stack\nPORT=8080\n");
    s.write("conf/web.env", "C=service\nD=service\n");
    let path = s.write(
        "conf/p.toml",
        r#"env_file = ".env"

[[services]]
name = "web"
command = "/bin/true"
args = ["--port=${PORT}"]
env_file = "web.env"
env = { D = "table" }

[[services]]
name = "sealed"
command = "/bin/true"
inherit_env = false
"#,
    );
    let ctx = s.ctx(&[("A", "pidone"), ("B", "pidone"), ("C", "pidone")]);
    let c = load(&[path], &ctx).unwrap_or_else(|e| panic!("{}", render(&e)));
    let web = &c.services[0];
    assert_eq!(env_of(web, "A"), Some("pidone"));
    assert_eq!(env_of(web, "B"), Some("stack"));
    assert_eq!(env_of(web, "C"), Some("service"));
    assert_eq!(env_of(web, "D"), Some("table"));
    assert_eq!(web.argv.get(1).map(String::as_str), Some("--port=8080"));
    // Not inherited from outside but written for the stack: kept without inherit_env.
    let sealed = &c.services[1];
    assert_eq!(env_of(sealed, "A"), None);
    assert_eq!(env_of(sealed, "B"), Some("stack"));
}

#[test]
fn several_files_apply_in_order_the_later_winning() {
    let s = Scratch::new();
    s.write("one.env", "A=one\nB=one\n");
    s.write("two.env", "B=two\nC=two\n");
    s.write("d/three.env", "C=three\n");
    let first = s.write(
        "first.toml",
        "env_file = [\"one.env\", \"${WHERE}/two.env\"]\n[[services]]\nname = \"a\"\ncommand = \"/bin/true\"\n",
    );
    let second = s.write("d/second.toml", "env_file = \"three.env\"\n");
    let where_ = s.dir.display().to_string();
    let ctx = s.ctx(&[("WHERE", &where_)]);
    let c = load(&[first, second], &ctx).unwrap_or_else(|e| panic!("{}", render(&e)));
    let a = &c.services[0];
    assert_eq!(env_of(a, "A"), Some("one"));
    assert_eq!(env_of(a, "B"), Some("two"));
    assert_eq!(env_of(a, "C"), Some("three"));
}

#[test]
fn stack_env_file_problems_name_the_key() {
    let s = Scratch::new();
    s.write("bad.env", "GOOD=1\nno equals here\n");
    let path = s.write(
        "p.toml",
        "\n[[services]]\nname = \"a\"\ncommand = \"/bin/true\"\n",
    );
    let text = std::fs::read_to_string(&path).expect("read");
    for (key, want) in [
        (
            "env_file = \"bad.env\"",
            "F:1: key \"env_file\": env_file D/bad.env: line 2: expected KEY=VALUE",
        ),
        (
            "env_file = [\"missing.env\"]",
            "F:1: key \"env_file\": cannot read D/missing.env: No such file or directory (os error 2)",
        ),
        (
            "env_file = \"${NOPE}.env\"",
            "F:1: key \"env_file\": undefined variable ${NOPE} (set it, or give a default: ${NOPE:-value})",
        ),
        (
            "env_file = 3",
            "F:1: key \"env_file\": expected a string or an array of strings, found integer",
        ),
    ] {
        std::fs::write(&path, format!("{key}{text}")).expect("write");
        let e = load(std::slice::from_ref(&path), &s.ctx(&[])).expect_err("errors");
        let got = render(&e)
            .replace(&path.display().to_string(), "F")
            .replace(&s.dir.display().to_string(), "D");
        assert_eq!(got, want);
    }
}
