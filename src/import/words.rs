//! Small text helpers the importers share: POSIX-shell-like word splitting (supervisord splits
//! `command` with Python's `shlex`), and the escaping of `$` for pidone's `${VAR}` expansion.

/// Splits a command line into words as Python's `shlex.split` does in POSIX mode: whitespace
/// separates words, `'...'` is literal, `"..."` allows `\"`, `\\`, `\$` and `` \` ``, a backslash
/// outside quotes escapes the next character.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("no closing single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("no closing double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("no closing double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash at the end of the line".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Text for a pidone key that expands `${VAR}`: every `$` doubled, so pidone passes it on as one
/// `$` (to the program, or to the shell that runs it).
pub fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// Text for a pidone key that expands `${VAR}`, from a source that expanded `$VAR` and `${VAR}`
/// itself with unset variables as empty (process-compose): each becomes `${VAR:-}`, `$$` stays a
/// literal `$`, any other `$` is literal.
pub fn env_refs(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let next = s[i..].find('$').map_or(s.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let rest = &s[i + 1..];
        if rest.starts_with('$') {
            out.push_str("$$");
            i += 2;
        } else if let Some(body) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            let name = body.0;
            if is_name(name) {
                out.push_str(&format!("${{{name}:-}}"));
                i += 1 + 1 + name.len() + 1;
            } else {
                out.push_str("$$");
                i += 1;
            }
        } else {
            let len = rest
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            if len > 0 && !rest.as_bytes()[0].is_ascii_digit() {
                out.push_str(&format!("${{{}:-}}", &rest[..len]));
                i += 1 + len;
            } else {
                out.push_str("$$");
                i += 1;
            }
        }
    }
    out
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A pidone service name (`[A-Za-z0-9_.-]+`, at most 64 bytes) made from `name`: other
/// characters become `-`. Returns `None` when nothing is left.
pub fn service_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    (!cleaned.is_empty() && cleaned.bytes().any(|c| c != b'-')).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_shlex() {
        let words = split(r#"/usr/bin/app --name "a b" 'c d' e\ f "x\"y""#).unwrap();
        assert_eq!(
            words,
            ["/usr/bin/app", "--name", "a b", "c d", "e f", "x\"y"]
        );
        assert!(split("a 'b").is_err());
        assert!(split("a \"b").is_err());
    }

    #[test]
    fn env_refs_become_pidone_defaults() {
        assert_eq!(
            env_refs("a $X ${Y} $$Z $1 ${a-b}"),
            "a ${X:-} ${Y:-} $$Z $$1 $${a-b}"
        );
        assert_eq!(literal("${X} $y"), "$${X} $$y");
    }

    #[test]
    fn service_names_are_cleaned() {
        assert_eq!(service_name("web:1").as_deref(), Some("web-1"));
        assert_eq!(service_name("::"), None);
    }
}
