//! The part of execline's syntax pidone reads itself: an s6-rc `up` or `down` file that is one
//! command line, split into words as `execlineb` would split it, so that it can run directly in
//! an image without execline. Anything more (a block in braces, an execline command chaining
//! others) is left to `execlineb -P`.

/// Programs of execline that run another command line after themselves: a file starting with
/// one of them needs `execlineb`, never a direct run.
const CHAINING: &[&str] = &[
    "background",
    "backtick",
    "define",
    "elglob",
    "emptyenv",
    "export",
    "fdmove",
    "forbacktickx",
    "foreground",
    "forx",
    "getpid",
    "if",
    "ifelse",
    "ifte",
    "ifthenelse",
    "importas",
    "multidefine",
    "multisubstitute",
    "pipeline",
    "piperw",
    "redirfd",
    "unexport",
    "withstdinas",
];

/// The words of `text`, or `None` when it uses more of execline than one command line (a
/// block, or a chaining command first); `Err` for a quote left open or no command at all.
///
/// Words are separated by whitespace; `#` at the start of a word comments out the rest of its
/// line; a backslash takes the next character literally; double quotes keep whitespace, with
/// `\n`, `\t` and `\r` for control characters inside them.
pub fn split(text: &str) -> Result<Option<Vec<String>>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    let mut block = false;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            chars.by_ref().find(|&c| c == '\n');
            continue;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err("a double quote is not closed".into()),
                            Some('"') => break,
                            Some('\\') => word.push(match chars.next() {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(other) => other,
                                None => return Err("a double quote is not closed".into()),
                            }),
                            Some(other) => word.push(other),
                        }
                    }
                }
                '\\' => word.extend(chars.next()),
                c if c.is_whitespace() => break,
                c => word.push(c),
            }
        }
        block |= !quoted && (word == "{" || word == "}");
        words.push(word);
    }
    let Some(first) = words.first() else {
        return Err("no command in it".into());
    };
    let chains = CHAINING.contains(&first.as_str());
    Ok((!block && !chains).then_some(words))
}

#[cfg(test)]
mod tests {
    use super::split;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap().unwrap()
    }

    #[test]
    fn one_command_line_is_split_like_execlineb() {
        assert_eq!(
            words("/etc/s6-overlay/scripts/init\n"),
            ["/etc/s6-overlay/scripts/init"]
        );
        assert_eq!(
            words("# set up\n/bin/prog -x \"two words\" a\\ b \"tab\\there\"  # end\n"),
            ["/bin/prog", "-x", "two words", "a b", "tab\there"]
        );
    }

    #[test]
    fn blocks_and_chaining_commands_need_execlineb() {
        assert_eq!(split("foreground { echo hi }\nprog").unwrap(), None);
        assert_eq!(split("importas -i HOME HOME prog $HOME").unwrap(), None);
        assert_eq!(
            split("echo \"{\"").unwrap(),
            Some(vec!["echo".into(), "{".into()])
        );
        assert!(split("# only a comment\n").is_err());
        assert!(split("echo \"open").is_err());
    }
}
