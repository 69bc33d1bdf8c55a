//! supervisord's `%(name)s` expansions (Python's `%` formatting with a mapping), turned into
//! pidone text: known names are replaced now, `%(ENV_X)s` becomes pidone's `${X}` (expanded by
//! pidone from its own environment when it loads the file, as supervisord did at its start), and
//! every other `$` is escaped for pidone.

/// What a `%(name)s` may refer to besides `ENV_*`.
pub struct Vars<'a> {
    pub pairs: &'a [(&'a str, String)],
}

/// How the result will be used.
#[derive(Clone, Copy, PartialEq)]
pub enum Target {
    /// A pidone key that expands `${VAR}`: `$` is escaped, `ENV_X` becomes `${X}`.
    Expanding,
    /// A key pidone takes as written: `ENV_X` cannot be carried over.
    Plain,
}

/// Expands `text`. The error says what is wrong; `Err(None)` means an `ENV_X` in a
/// [`Target::Plain`] value (not a syntax error: the caller notes it as lost).
pub fn expand(text: &str, vars: &Vars<'_>, target: Target) -> Result<String, Option<String>> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['%', '$']) {
        let (lit, tail) = rest.split_at(at);
        out.push_str(lit);
        if let Some(after) = tail.strip_prefix('$') {
            out.push_str(if target == Target::Expanding {
                "$$"
            } else {
                "$"
            });
            rest = after;
            continue;
        }
        let tail = &tail[1..];
        if let Some(after) = tail.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let Some(body) = tail.strip_prefix('(') else {
            return Err(Some(format!(
                "'%' not followed by '(name)' or '%' in {text:?}"
            )));
        };
        let Some((name, spec)) = body.split_once(')') else {
            return Err(Some(format!("unclosed '%(' in {text:?}")));
        };
        let flags_len = spec
            .bytes()
            .take_while(|c| matches!(c, b'-' | b'0' | b' ' | b'+' | b'#' | b'0'..=b'9'))
            .count();
        let (flags, after_flags) = spec.split_at(flags_len);
        let Some(kind) = after_flags.chars().next().filter(|c| "sdir".contains(*c)) else {
            return Err(Some(format!(
                "'%({name})' without a format character (s or d) in {text:?}"
            )));
        };
        rest = &after_flags[1..];
        if let Some(var) = name.strip_prefix("ENV_") {
            if target == Target::Plain {
                return Err(None);
            }
            out.push_str(&format!("${{{var}}}"));
            continue;
        }
        let Some((_, value)) = vars.pairs.iter().find(|(n, _)| *n == name) else {
            return Err(Some(format!("unknown expansion '%({name})s' in {text:?}")));
        };
        let value = pad(value, flags, kind);
        if target == Target::Expanding {
            out.push_str(&value.replace('$', "$$"));
        } else {
            out.push_str(&value);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies a width with `0` or `-` flags, as `%02d` and `%-4s` do.
fn pad(value: &str, flags: &str, kind: char) -> String {
    let digits: String = flags
        .chars()
        .skip_while(|c| !c.is_ascii_digit() || *c == '0')
        .collect();
    let zero = kind != 's' && flags.starts_with('0');
    let left = flags.contains('-');
    let width: usize = digits.parse().unwrap_or(0);
    let len = value.chars().count();
    if len >= width {
        return value.to_owned();
    }
    let fill: String = std::iter::repeat_n(if zero { '0' } else { ' ' }, width - len).collect();
    if left {
        format!("{value}{fill}")
    } else {
        format!("{fill}{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(&'static str, String)> {
        vec![("program_name", "web".into()), ("process_num", "3".into())]
    }

    #[test]
    fn names_widths_env_and_dollars() {
        let pairs = vars();
        let v = Vars { pairs: &pairs };
        let got = expand(
            "%(program_name)s_%(process_num)02d %% $HOME %(ENV_PORT)s",
            &v,
            Target::Expanding,
        );
        assert_eq!(got.unwrap(), "web_03 % $$HOME ${PORT}");
        assert_eq!(expand("%(ENV_U)s", &v, Target::Plain), Err(None));
        assert!(
            expand("%(nope)s", &v, Target::Plain)
                .unwrap_err()
                .unwrap()
                .contains("unknown")
        );
        assert!(expand("50%", &v, Target::Plain).is_err());
    }
}
