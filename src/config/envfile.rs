//! Parsing of a service's `env_file`: the dotenv subset go-overlay reads, made strict.
//!
//! One `KEY=VALUE` per line. Blank lines and lines starting with `#` are skipped, an optional
//! leading `export ` is dropped, the key and the value are trimmed, and one pair of matching
//! single or double quotes around the value is removed. Nothing else is interpreted: no escapes,
//! no inline comments, no `${VAR}` expansion, so what is in the file is what the child gets.
//!
//! go-overlay silently skips a line without `=`; pidone refuses it, because such a line is
//! almost always a mistake that would otherwise leave a variable unset.

use std::fmt;

/// One problem in an env file, with the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    /// The 1-based line number in the env file.
    pub line: usize,
    /// What is wrong with that line.
    pub kind: EnvFileErrorKind,
}

/// What can be wrong with a line of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileErrorKind {
    /// The line is neither blank, a comment, nor `KEY=VALUE`.
    MissingEquals,
    /// The key is empty or contains whitespace or a NUL byte, so it cannot be a variable name.
    BadKey { key: String },
    /// The value contains a NUL byte, which cannot be passed through `execve`.
    NulInValue { key: String },
}

impl fmt::Display for EnvFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EnvFileErrorKind::MissingEquals => {
                write!(f, "line {}: expected KEY=VALUE", self.line)
            }
            EnvFileErrorKind::BadKey { key } => {
                write!(f, "line {}: invalid variable name {key:?}", self.line)
            }
            EnvFileErrorKind::NulInValue { key } => {
                write!(f, "line {}: value of {key} contains a NUL byte", self.line)
            }
        }
    }
}

/// Parses the text of an env file into `(key, value)` pairs in file order.
///
/// A key that appears twice keeps both entries; the caller inserts them in order, so the later
/// one wins, as it would in a shell. Every bad line is reported, not only the first.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, Vec<EnvFileError>> {
    let mut vars = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = strip_export(trimmed);
        let Some((key, value)) = body.split_once('=') else {
            errors.push(EnvFileError {
                line,
                kind: EnvFileErrorKind::MissingEquals,
            });
            continue;
        };
        let key = key.trim();
        if !is_valid_key(key) {
            errors.push(EnvFileError {
                line,
                kind: EnvFileErrorKind::BadKey {
                    key: key.to_owned(),
                },
            });
            continue;
        }
        let value = unquote(value.trim());
        if value.contains('\0') {
            errors.push(EnvFileError {
                line,
                kind: EnvFileErrorKind::NulInValue {
                    key: key.to_owned(),
                },
            });
            continue;
        }
        vars.push((key.to_owned(), value.to_owned()));
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

/// Whether `key` can be an environment variable name: non-empty, no `=`, whitespace or NUL.
///
/// This is looser than the shell's `[A-Za-z_][A-Za-z0-9_]*` on purpose: programs read names
/// such as `com.example.flag` from their environment, and `execve` passes them fine.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| c == '=' || c == '\0' || c.is_whitespace())
}

/// Drops a leading `export` keyword followed by whitespace, as written in shell-style files.
fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => line,
    }
}

/// Removes one pair of matching quotes around `value`, if it has them.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// The variables of an `env_dir` (s6's envdir, as s6-overlay's `with-contenv` reads
/// `/run/s6/container_environment`): one per regular file not starting with `.`, named after it,
/// its whole content the value; `None` for an empty file, which unsets the variable. A file that
/// cannot be read, or whose name or content cannot be a variable, is skipped: this runs at each
/// start, where a missing directory only means nothing to add.
pub fn read_env_dir(dir: &std::path::Path) -> Vec<(String, Option<String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut vars = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || name.contains('=') {
            continue;
        }
        let max = super::limits::MAX_VALUE_LEN as u64;
        match crate::io::files::read_text(&entry.path(), max) {
            Ok(value) if value.contains('\0') => {}
            Ok(value) => vars.push((name, Some(value).filter(|v| !v.is_empty()))),
            Err(err) => log::debug!("{}: {err}", entry.path().display()),
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).expect("valid env file")
    }

    #[test]
    fn parses_plain_pairs_in_order() {
        assert_eq!(
            pairs("A=1\nB=two words\n"),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "two words".to_owned())
            ]
        );
    }

    #[test]
    fn skips_comments_and_blank_lines() {
        assert_eq!(
            pairs("# c\n\n   \n  # indented\nA=1"),
            vec![("A".into(), "1".into())]
        );
    }

    #[test]
    fn drops_export_prefix_but_not_a_key_named_exporter() {
        assert_eq!(
            pairs("export A=1\nexport\tB=2\nexporter=3"),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "2".into()),
                ("exporter".into(), "3".into())
            ]
        );
    }

    #[test]
    fn trims_one_pair_of_matching_quotes() {
        assert_eq!(
            pairs("A=\"x y\"\nB='z'\nC=\"mixed'\nD=\"\"\nE=\"\"inner\"\""),
            vec![
                ("A".into(), "x y".into()),
                ("B".into(), "z".into()),
                ("C".into(), "\"mixed'".into()),
                ("D".into(), "".into()),
                ("E".into(), "\"inner\"".into())
            ]
        );
    }

    #[test]
    fn keeps_equals_signs_and_hashes_in_the_value() {
        assert_eq!(
            pairs("URL=postgres://u:p@h/db?a=b # not a comment"),
            vec![(
                "URL".into(),
                "postgres://u:p@h/db?a=b # not a comment".into()
            )]
        );
    }

    #[test]
    fn trims_spaces_around_key_and_value() {
        assert_eq!(pairs("  A  =  1  "), vec![("A".into(), "1".into())]);
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let errors = parse("A=1\nnot a pair\n=empty\nB=2\nbad key=3").expect_err("bad lines");
        assert_eq!(
            errors,
            vec![
                EnvFileError {
                    line: 2,
                    kind: EnvFileErrorKind::MissingEquals
                },
                EnvFileError {
                    line: 3,
                    kind: EnvFileErrorKind::BadKey { key: "".into() }
                },
                EnvFileError {
                    line: 5,
                    kind: EnvFileErrorKind::BadKey {
                        key: "bad key".into()
                    }
                },
            ]
        );
        assert_eq!(errors[0].to_string(), "line 2: expected KEY=VALUE");
    }

    #[test]
    fn refuses_nul_in_value() {
        let errors = parse("A=x\0y").expect_err("nul");
        assert_eq!(
            errors[0].kind,
            EnvFileErrorKind::NulInValue { key: "A".into() }
        );
    }
}
