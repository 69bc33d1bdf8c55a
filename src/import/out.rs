//! What an importer produces: pidone services as ordered keys, the notes about what could not be
//! carried over, and their rendering as a pidone TOML file.

use std::fmt::Write;

/// A TOML value, as much of TOML as a pidone configuration needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    /// An inline table, in the order given.
    Table(Vec<(String, Value)>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn strs<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }
}

/// Where something in the source was: file and line (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A note written as a comment: `lost` ones are also listed on stderr and make the import fail
/// unless `--lossy`; the others say why a setting needs nothing under pidone.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub place: Place,
    pub lost: bool,
    pub text: String,
}

/// One `[[services]]` entry, with its checks and the notes placed above it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub keys: Vec<(String, Value)>,
    pub checks: Vec<Vec<(String, Value)>>,
    pub notes: Vec<Note>,
}

impl Service {
    pub fn new(name: &str) -> Service {
        Service {
            name: name.to_owned(),
            ..Service::default()
        }
    }

    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.keys.push((key.to_owned(), value)),
        }
    }

    /// Appends to the list `key`, creating it.
    pub fn push(&mut self, key: &str, item: Value) {
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, Value::List(items))) => items.push(item),
            _ => self.set(key, Value::List(vec![item])),
        }
    }

    pub fn note(&mut self, place: &Place, lost: bool, text: impl Into<String>) {
        self.notes.push(Note {
            place: place.clone(),
            lost,
            text: text.into(),
        });
    }
}

/// A whole imported configuration.
#[derive(Debug, Default)]
pub struct Doc {
    pub source: String,
    pub format: &'static str,
    /// Notes about the file as a whole (global sections).
    pub notes: Vec<Note>,
    /// Top-level keys (`env_file`), written before the services.
    pub keys: Vec<(String, Value)>,
    pub services: Vec<Service>,
}

impl Doc {
    pub fn note(&mut self, place: &Place, lost: bool, text: impl Into<String>) {
        self.notes.push(Note {
            place: place.clone(),
            lost,
            text: text.into(),
        });
    }

    /// Every lost note, global ones first.
    pub fn lost(&self) -> impl Iterator<Item = &Note> {
        let services = self.services.iter().flat_map(|s| s.notes.iter());
        self.notes.iter().chain(services).filter(|n| n.lost)
    }
}

/// Renders the document as a pidone TOML file.
pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# pidone configuration imported from {} ({}) by pidone import.",
        doc.source, doc.format
    );
    let _ = writeln!(out, "# Check it with: pidone validate --config FILE");
    write_notes(&mut out, &doc.notes);
    for (key, value) in &doc.keys {
        let _ = writeln!(out, "{key} = {}", render_value(value));
    }
    for service in &doc.services {
        out.push('\n');
        write_notes(&mut out, &service.notes);
        out.push_str("[[services]]\n");
        let _ = writeln!(out, "name = {}", quote(&service.name));
        for (key, value) in &service.keys {
            let _ = writeln!(out, "{key} = {}", render_value(value));
        }
        for check in &service.checks {
            out.push_str("\n[[services.checks]]\n");
            for (key, value) in check {
                let _ = writeln!(out, "{key} = {}", render_value(value));
            }
        }
    }
    out
}

fn write_notes(out: &mut String, notes: &[Note]) {
    for note in notes {
        let tag = if note.lost {
            "NOT CARRIED OVER"
        } else {
            "note"
        };
        let text = note.text.replace('\n', " ");
        let _ = writeln!(out, "# {tag} ({}): {text}", note.place);
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::Str(s) => quote(s),
        Value::Int(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(render_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Table(pairs) => {
            let pairs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), render_value(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    }
}

/// A bare key when TOML allows it, else a quoted one.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { k.to_owned() } else { quote(k) }
}

/// A TOML basic string: `"` and `\` escaped, control characters as `\n`, `\t` or `\uXXXX`
/// (pidone's own quoting, which `pidone add` writes drop-in files with).
pub fn quote(s: &str) -> String {
    pidone::control::register::quote(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn env_keys_that_are_not_bare_are_quoted() {
        let v = Value::Table(vec![
            ("A.B".into(), Value::str("1")),
            ("C".into(), Value::Int(2)),
        ]);
        assert_eq!(render_value(&v), "{ \"A.B\" = \"1\", C = 2 }");
    }
}
