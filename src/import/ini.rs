//! The INI dialect supervisord reads (Python's `RawConfigParser`): `[section]` headers,
//! `key = value` or `key: value` (keys lower-cased), whole-line comments starting with `;` or
//! `#`, inline comments after whitespace, and continuation lines (indented lines extend the value
//! before them).

use crate::out::Place;

/// One option: its value and the line it started on.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One section, with its options in file order (a key given twice keeps its last value, as in
/// supervisord).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub place: Place,
    pub entries: Vec<Entry>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Parses an INI file; the error is `FILE:LINE: reason`.
pub fn parse(file: &str, text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut last_key: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| format!("{file}:{line}: {reason}");
        if raw.starts_with([' ', '\t']) {
            let (Some(section), Some(i)) = (sections.last_mut(), last_key) else {
                return Err(err("an indented line that continues no option".into()));
            };
            if let Some(entry) = section.entries.get_mut(i) {
                entry.value.push('\n');
                entry.value.push_str(strip_comment(trimmed));
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(format!("section header without ']': {trimmed}")));
            };
            sections.push(Section {
                name: name.trim().to_owned(),
                place: Place {
                    file: file.to_owned(),
                    line,
                },
                entries: Vec::new(),
            });
            last_key = None;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(err("an option before any [section]".into()));
        };
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(err(format!("expected 'key = value', found {trimmed:?}")));
        };
        let key = trimmed[..at].trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(err("an option without a name".into()));
        }
        let value = strip_comment(trimmed[at + 1..].trim()).to_owned();
        section.entries.retain(|e| e.key != key);
        section.entries.push(Entry { key, value, line });
        last_key = Some(section.entries.len() - 1);
    }
    Ok(sections)
}

/// Cuts an inline comment: `;` or `#` after whitespace (supervisord's `inline_comment_prefixes`).
fn strip_comment(value: &str) -> &str {
    let b = value.as_bytes();
    for i in 1..b.len() {
        if matches!(b[i], b';' | b'#') && b[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_options_comments_and_continuations() {
        let text = "; top\n[program:web]\nCommand = /bin/web ; run it\nenvironment=A=\"1\",\n  B=\"2\"\n# x\nurl: http://h/#frag\n";
        let s = parse("f.conf", text).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "program:web");
        assert_eq!(s[0].get("command").unwrap().value, "/bin/web");
        assert_eq!(s[0].get("environment").unwrap().value, "A=\"1\",\nB=\"2\"");
        assert_eq!(s[0].get("url").unwrap().value, "http://h/#frag");
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            parse("f", "x=1\n").unwrap_err(),
            "f:1: an option before any [section]"
        );
        let err = parse("f", "[a]\n\n[b\n").unwrap_err();
        assert_eq!(err, "f:3: section header without ']': [b");
        let err = parse("f", "[a]\njunk\n").unwrap_err();
        assert!(err.starts_with("f:2: expected 'key = value'"), "{err}");
    }
}
