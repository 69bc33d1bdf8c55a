//! `POST /v1/services`: a service added at run time (`pidone add`). The body is a JSON object
//! whose keys are the configuration's own (`name`, `command`, `env`, `user`, ...; [`KEYS`]); the
//! daemon refuses a key it does not know or a value of the wrong form, and turns the rest into
//! the TOML file it writes in the drop-in directory. The values themselves (a restart policy, a
//! user, a dependency) are checked by the configuration's loader, like those of any file.
//!
//! Every value is taken literally: pidone add writes each `$` as `$$`, so no `${VAR}` is
//! expanded in the command, the environment or the workdir (a shell command given to `sh -c`
//! keeps its `$$` and `$HOME` for the shell).

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The JSON (and TOML) form of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A string.
    Text,
    /// An array of strings.
    Texts,
    /// An integer.
    Number,
    /// An object of strings (`env`).
    Table,
}

/// The keys a new service may have, in the order they are written, with their form and whether
/// the loader expands `${VAR}` in them (so that `$` is written `$$`). `pidone add`'s options are
/// the same names (`--depends-on` for `depends_on`).
pub const KEYS: [(&str, Form, bool); 14] = [
    ("name", Form::Text, false),
    ("description", Form::Text, false),
    ("type", Form::Text, false),
    ("command", Form::Texts, true),
    ("user", Form::Text, false),
    ("workdir", Form::Text, true),
    ("restart", Form::Text, false),
    ("max_restarts", Form::Number, false),
    ("stop_signal", Form::Text, false),
    ("stop_timeout", Form::Text, false),
    ("depends_on", Form::Texts, false),
    ("after", Form::Texts, false),
    ("instances", Form::Number, false),
    ("env", Form::Table, true),
];

/// The form of `key`, if it is one of [`KEYS`].
pub fn form_of(key: &str) -> Option<Form> {
    KEYS.iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, form, _)| *form)
}

/// The key `pidone add`'s long option `--OPTION` sets (`depends-on` → `depends_on`); `name` and
/// `command` are not options.
pub fn option_key(option: &str) -> Option<&'static str> {
    let key = option.replace('-', "_");
    (KEYS.iter())
        .map(|(k, ..)| *k)
        .find(|k| *k == key && !matches!(*k, "name" | "command"))
}

/// Adds an option's `value` to the body `fields` at `key` (one of [`KEYS`]): a string; an item
/// of a list (or several, separated by commas: `--depends-on db,cache`); an integer; a `K=V`
/// pair of the environment (a later one replaces an earlier one).
pub fn set_option(fields: &mut Map<String, Value>, key: &str, value: String) -> Result<(), String> {
    let bad = |what: &str| format!("--{}: '{value}' is not {what}", key.replace('_', "-"));
    match form_of(key) {
        Some(Form::Text) => {
            fields.insert(key.to_string(), Value::String(value));
        }
        Some(Form::Texts) => {
            let list = fields
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                let names = value.split(',').filter(|n| !n.is_empty());
                items.extend(names.map(|n| Value::String(n.to_string())));
            }
        }
        Some(Form::Number) => {
            let n: i64 = value.parse().map_err(|_| bad("an integer"))?;
            fields.insert(key.to_string(), Value::from(n));
        }
        Some(Form::Table) => {
            let Some((k, v)) = value.split_once('=') else {
                return Err(bad("NAME=VALUE"));
            };
            let table = fields
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(table) = table {
                table.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        None => return Err(format!("--{key}: not an option of add")),
    }
    Ok(())
}

/// Reads the body of `POST /v1/services`: the new service's name, and its drop-in file's text.
pub fn read(body: &[u8]) -> Result<(String, String), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
    let Value::Object(fields) = value else {
        return Err(
            "body: expected a JSON object like {\"name\": \"web\", \"command\": [...]}".into(),
        );
    };
    if let Some(key) = fields.keys().find(|k| form_of(k).is_none()) {
        let known: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
        return Err(format!("unknown key \"{key}\" ({})", known.join(", ")));
    }
    let name = match fields.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err("\"name\" is required: the new service's name".to_string()),
    };
    if !crate::config::is_service_name(&name) || name.starts_with('.') {
        return Err(format!(
            "\"{name}\" is not a name for a new service: [A-Za-z0-9_.-], at most 64 bytes, not starting with '.'"
        ));
    }
    match fields.get("command") {
        Some(Value::Array(argv)) if !argv.is_empty() => {}
        _ => return Err("\"command\" is required: the program and its arguments".to_string()),
    }
    Ok((name, toml(&fields)?))
}

/// The TOML of a service whose keys are `fields` (all among [`KEYS`]), or the first key whose
/// value has the wrong form.
fn toml(fields: &Map<String, Value>) -> Result<String, String> {
    let mut out =
        String::from("# Written by pidone add; pidone remove deletes it.\n[[services]]\n");
    for (key, form, expanded) in KEYS {
        let Some(value) = fields.get(key) else {
            continue;
        };
        let strings = |items: &[Value]| -> Option<Vec<String>> {
            let each = items.iter().map(|v| v.as_str().map(|s| quote(s, expanded)));
            each.collect()
        };
        let text = match (form, value) {
            (Form::Text, Value::String(s)) => Some(quote(s, expanded)),
            (Form::Texts, Value::Array(items)) => {
                strings(items).map(|l| format!("[{}]", l.join(", ")))
            }
            (Form::Number, Value::Number(n)) => n.as_i64().map(|n| n.to_string()),
            (Form::Table, Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    Some(format!(
                        "{} = {}",
                        quote(k, false),
                        quote(v.as_str()?, expanded)
                    ))
                })
                .collect::<Option<Vec<_>>>()
                .map(|pairs| format!("{{ {} }}", pairs.join(", "))),
            _ => None,
        };
        let Some(text) = text else {
            let what = match form {
                Form::Text => "a string",
                Form::Texts => "an array of strings",
                Form::Number => "an integer",
                Form::Table => "an object of strings",
            };
            return Err(format!("\"{key}\" must be {what}"));
        };
        let _ = writeln!(out, "{key} = {text}");
    }
    Ok(out)
}

/// `s` as a TOML basic string: `"` and `\` escaped, control characters as `\n`, `\t` or
/// `\uXXXX`, everything else (any Unicode) as it is. With `expanded` (a value the loader expands
/// `${VAR}` in), each `$` is doubled so that the loader gives `s` back unchanged.
pub fn quote(s: &str, expanded: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '$' if expanded => out.push_str("$$"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::de::{DeTable, DeValue};

    /// The string value of `key` in the first `[[services]]` table of `text`.
    fn read_back(text: &str, key: &str) -> String {
        let doc = DeTable::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let services = doc.get_ref().get("services").expect("services").get_ref();
        let DeValue::Array(items) = services else {
            panic!("services is not an array: {text}")
        };
        let DeValue::Table(table) = items.first().expect("one service").get_ref() else {
            panic!("not a table: {text}")
        };
        match table.get(key).map(|v| v.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            other => panic!("{key} is not a string: {other:?}\n{text}"),
        }
    }

    const AWKWARD: [&str; 8] = [
        "plain",
        "a \"quoted\" word",
        "back\\slash\\\\ and \\n literally",
        "two\nlines\r\nand a\ttab",
        "unicode: é ✓ 日本 🦀",
        "controls: \u{1} \u{1b}[31m \u{7f} \u{85}",
        "'''triple''' \"\"\"quotes\"\"\"",
        "",
    ];

    #[test]
    fn quoted_strings_read_back_unchanged() {
        for s in AWKWARD {
            let text = format!("[[services]]\ndescription = {}\n", quote(s, false));
            assert_eq!(read_back(&text, "description"), s, "{text}");
        }
        assert_eq!(quote("a$b${X}", true), "\"a$$b$${X}\"");
        assert_eq!(quote("a$b", false), "\"a$b\"");
    }

    #[test]
    fn a_body_becomes_toml_with_every_key_in_place() {
        let body = serde_json::json!({
            "name": "web",
            "command": ["/bin/sh", "-c", "echo $$ \"$HOME\""],
            "env": {"A B": "x=y", "Q": "say \"hi\"\n"},
            "depends_on": ["db"],
            "instances": 2,
            "type": "longrun",
        });
        let (name, text) = read(body.to_string().as_bytes()).expect("valid");
        assert_eq!(name, "web");
        assert_eq!(
            text,
            "# Written by pidone add; pidone remove deletes it.\n[[services]]\nname = \"web\"\n\
             type = \"longrun\"\ncommand = [\"/bin/sh\", \"-c\", \"echo $$$$ \\\"$$HOME\\\"\"]\n\
             depends_on = [\"db\"]\ninstances = 2\n\
             env = { \"A B\" = \"x=y\", \"Q\" = \"say \\\"hi\\\"\\n\" }\n"
        );
        assert!(DeTable::parse(&text).is_ok(), "{text}");
    }

    #[test]
    fn the_routes_of_add_and_remove() {
        use crate::control::{Parsed, Request, parse};
        let body = r#"{"name": "web", "command": ["/bin/true"]}"#;
        let post = format!(
            "POST /v1/services HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let Parsed::Done(Request::Add { name, text }) = parse(post.as_bytes()) else {
            panic!("not an add: {:?}", parse(post.as_bytes()))
        };
        assert_eq!(name, "web");
        assert!(text.contains("command = [\"/bin/true\"]"), "{text}");
        let delete = parse(b"DELETE /v1/services/web HTTP/1.1\r\n\r\n");
        let remove = Request::Remove { name: "web".into() };
        assert_eq!(delete, Parsed::Done(remove.clone()));
        assert!(remove.acts() && Request::Add { name, text }.acts());
        let status = |raw: &[u8]| match parse(raw) {
            Parsed::Bad(answer) => answer.status,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(b"GET /v1/services/web HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status(b"DELETE /v1/services HTTP/1.1\r\n\r\n"), 405);
        let bad = "POST /v1/services HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(status(bad.as_bytes()), 400);
        let services = parse(b"GET /v1/services HTTP/1.1\r\n\r\n");
        assert_eq!(
            services,
            Parsed::Done(Request::Services {
                names: None,
                group: None,
                pattern: None,
            })
        );
    }

    #[test]
    fn options_become_keys() {
        let mut fields = Map::new();
        let mut set = |key: &str, value: &str| set_option(&mut fields, key, value.to_string());
        set("env", "A=1=2").expect("env");
        set("env", "B=").expect("env");
        set("env", "A=3").expect("env");
        set("depends_on", "db,cache").expect("list");
        set("depends_on", "queue").expect("list");
        set("instances", "3").expect("number");
        set("user", "app").expect("text");
        assert_eq!(
            set("env", "NOEQUALS"),
            Err("--env: 'NOEQUALS' is not NAME=VALUE".into())
        );
        assert_eq!(
            set("max_restarts", "x"),
            Err("--max-restarts: 'x' is not an integer".into())
        );
        let expected = serde_json::json!({
            "env": {"A": "3", "B": ""},
            "depends_on": ["db", "cache", "queue"],
            "instances": 3,
            "user": "app",
        });
        assert_eq!(Value::Object(fields), expected);
        assert_eq!(option_key("depends-on"), Some("depends_on"));
        assert_eq!(option_key("stop-timeout"), Some("stop_timeout"));
        assert_eq!(option_key("name"), None);
        assert_eq!(option_key("command"), None);
        assert_eq!(option_key("colour"), None);
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        let refused = |body: &str| read(body.as_bytes()).expect_err(body);
        assert!(refused("nope").starts_with("body: "));
        assert!(refused("[1]").contains("JSON object"));
        assert!(refused(r#"{"command": ["x"]}"#).contains("\"name\" is required"));
        assert!(refused(r#"{"name": "w"}"#).contains("\"command\" is required"));
        assert!(refused(r#"{"name": "w", "command": []}"#).contains("\"command\""));
        let bad_name = refused(r#"{"name": "../x", "command": ["x"]}"#);
        assert!(bad_name.contains("not a name"), "{bad_name}");
        assert!(refused(r#"{"name": ".x", "command": ["x"]}"#).contains("not a name"));
        let unknown = refused(r#"{"name": "w", "command": ["x"], "colour": "red"}"#);
        assert!(
            unknown.starts_with("unknown key \"colour\" (name, "),
            "{unknown}"
        );
        let typed = refused(r#"{"name": "w", "command": ["x"], "instances": "2"}"#);
        assert_eq!(typed, "\"instances\" must be an integer");
        let env = refused(r#"{"name": "w", "command": ["x"], "env": {"A": 1}}"#);
        assert_eq!(env, "\"env\" must be an object of strings");
        let argv = refused(r#"{"name": "w", "command": ["x", 2]}"#);
        assert_eq!(argv, "\"command\" must be an array of strings");
    }
}
