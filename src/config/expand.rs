//! `${VAR}` and `${VAR:-default}` expansion in commands, arguments, env values and paths.
//!
//! Only the braced form is expanded, so a `$` elsewhere (a regex, a password, `$HOME` meant for a
//! shell script) passes through untouched; `$$` writes a literal `$` (so `$${X}` gives `${X}`).
//! `${VAR:-default}` uses the default when VAR is unset or empty, as the shell does; the default
//! itself is taken literally. An unset VAR without a default is an error: a silently empty
//! argument is a worse failure than a refused config.

use super::error::ErrorKind;

/// Expands `text`, looking variables up with `lookup`.
pub fn expand<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, ErrorKind> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(ErrorKind::BadExpansion {
                    message: format!("unclosed \"${{\" in {text:?}"),
                });
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                return Err(ErrorKind::BadExpansion {
                    message: format!(
                        "bad variable reference \"${{{inner}}}\": write ${{NAME}} or ${{NAME:-default}}"
                    ),
                });
            }
            match (lookup(name), default) {
                (Some(""), Some(d)) => out.push_str(d),
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ErrorKind::UndefinedVariable {
                        name: name.to_owned(),
                    });
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the names a shell would expand.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, ErrorKind> {
        let vars = [("PORT", "3001"), ("EMPTY", ""), ("I", "2")];
        expand(text, |name| {
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        })
    }

    #[test]
    fn expands_braced_variables() {
        assert_eq!(run("--port=${PORT}").as_deref(), Ok("--port=3001"));
        assert_eq!(run("${I}${I}").as_deref(), Ok("22"));
    }

    #[test]
    fn default_applies_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-8080}").as_deref(), Ok("8080"));
        assert_eq!(run("${EMPTY:-x}").as_deref(), Ok("x"));
        assert_eq!(run("${PORT:-x}").as_deref(), Ok("3001"));
        assert_eq!(run("${NOPE:-}").as_deref(), Ok(""));
    }

    #[test]
    fn leaves_other_dollars_alone_and_unescapes_double_dollar() {
        assert_eq!(run("$HOME a$ b$").as_deref(), Ok("$HOME a$ b$"));
        assert_eq!(run("$${PORT} $$").as_deref(), Ok("${PORT} $"));
    }

    #[test]
    fn set_but_empty_without_default_is_empty() {
        assert_eq!(run("[${EMPTY}]").as_deref(), Ok("[]"));
    }

    #[test]
    fn undefined_without_default_is_an_error() {
        assert_eq!(
            run("${NOPE}"),
            Err(ErrorKind::UndefinedVariable {
                name: "NOPE".into()
            })
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(run("${PORT"), Err(ErrorKind::BadExpansion { .. })));
        assert!(matches!(run("${}"), Err(ErrorKind::BadExpansion { .. })));
        assert!(matches!(run("${1X}"), Err(ErrorKind::BadExpansion { .. })));
        assert!(matches!(run("${A-b}"), Err(ErrorKind::BadExpansion { .. })));
    }
}
