//! How one word names services, for the client and the API alike: a service's name (`web`; the
//! name of a service with `instances` names all of them), a group (`@backend`: every service with
//! `groups = ["backend"]`), or a glob pattern (`web-*`) matched against service names.
//!
//! Patterns know `*` (any run of characters, none included), `?` (any one character) and
//! classes: `[abc]`, `[a-z]`, and `[!abc]` or `[^abc]` for any character but those. A word is a
//! pattern when it holds one of `*`, `?` or `[`, none of which a service name may hold, so a
//! name always means itself. The supervisor resolves a word against its table (supervisor/select);
//! this module knows the words alone, and how they travel in a URL (percent-encoded: `?` would
//! otherwise end the path, `,` separate the words of `?names=`).

/// What a word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector<'a> {
    /// A service (or a service's instances) by name.
    Name(&'a str),
    /// The services of a group: the word without its `@`.
    Group(&'a str),
    /// The services whose names match the pattern.
    Pattern(&'a str),
}

impl Selector<'_> {
    /// What `word` names.
    pub fn of(word: &str) -> Selector<'_> {
        if let Some(group) = word.strip_prefix('@') {
            Selector::Group(group)
        } else if word.contains(['*', '?', '[']) {
            Selector::Pattern(word)
        } else {
            Selector::Name(word)
        }
    }
}

/// The longest pattern taken, in characters: four times the longest name (64 bytes), and short
/// enough that matching it against every service stays quick (the matcher takes up to the
/// pattern's length times the name's).
pub const MAX_PATTERN: usize = 256;

/// Checks that `pattern` is well formed: each `[` has its `]` and holds at least one character,
/// and it is not longer than [`MAX_PATTERN`].
pub fn check(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    if chars.len() > MAX_PATTERN {
        let n = chars.len();
        return Err(format!(
            "bad pattern: {n} characters (at most {MAX_PATTERN})"
        ));
    }
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += match c {
            '[' => class_len(&chars, i).ok_or_else(|| {
                format!("bad pattern {pattern:?}: '[' without its ']' (write [abc] or [a-z])")
            })?,
            _ => 1,
        };
    }
    Ok(())
}

/// True when `name` matches `pattern` as a whole. A malformed class (see [`check`]) matches its
/// `[` as itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // The last `*` seen and the position in `name` it is taken to end at: on a mismatch, it
    // takes one more character. One such point is enough (a later `*` supersedes it).
    let mut star: Option<(usize, usize)> = None;
    loop {
        let Some(&c) = n.get(ni) else {
            return p.iter().skip(pi).all(|&c| c == '*');
        };
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(_) => {
                if let Some(len) = one(&p, pi, c) {
                    pi += len;
                    ni += 1;
                    continue;
                }
            }
            None => {}
        }
        let Some((sp, sn)) = star else {
            return false;
        };
        star = Some((sp, sn + 1));
        pi = sp + 1;
        ni = sn + 1;
    }
}

/// If the pattern's element at `i` (not a `*`) matches `c`: its length in the pattern.
fn one(p: &[char], i: usize, c: char) -> Option<usize> {
    match p.get(i)? {
        '?' => Some(1),
        '[' => match class_len(p, i) {
            Some(len) => in_class(p.get(i + 1..i + len - 1)?, c).then_some(len),
            None => (c == '[').then_some(1),
        },
        &literal => (literal == c).then_some(1),
    }
}

/// The length of the class opening at `p[i]` (`[` to `]` included), if it is closed and not
/// empty. A `]` first in the class (after any `!` or `^`) is one of its characters.
fn class_len(p: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if matches!(p.get(j), Some('!' | '^')) {
        j += 1;
    }
    let first = j;
    loop {
        match p.get(j)? {
            ']' if j > first => return Some(j + 1 - i),
            _ => j += 1,
        }
    }
}

/// True when `c` is one of the class's characters (`inner`: what is between `[` and `]`).
fn in_class(inner: &[char], c: char) -> bool {
    let (negated, items) = match inner.split_first() {
        Some(('!' | '^', rest)) => (true, rest),
        _ => (false, inner),
    };
    let mut found = false;
    let mut k = 0;
    while let Some(&lo) = items.get(k) {
        match (items.get(k + 1), items.get(k + 2)) {
            (Some('-'), Some(&hi)) => {
                found |= lo <= c && c <= hi;
                k += 3;
            }
            _ => {
                found |= lo == c;
                k += 1;
            }
        }
    }
    found != negated
}

/// `word` as it goes in a URL's path or query: every byte but `A-Za-z0-9` and `-._~` as `%XX`.
/// A service's name is left as it is.
pub fn encode(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for b in word.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A word from a URL, its `%XX` escapes decoded; `None` for a bad escape or bytes that are not
/// UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_is_a_name_a_group_or_a_pattern() {
        assert_eq!(Selector::of("web-1"), Selector::Name("web-1"));
        assert_eq!(Selector::of("@backend"), Selector::Group("backend"));
        assert_eq!(Selector::of("web-*"), Selector::Pattern("web-*"));
        assert_eq!(Selector::of("web-?"), Selector::Pattern("web-?"));
        assert_eq!(Selector::of("web-[12]"), Selector::Pattern("web-[12]"));
    }

    #[test]
    fn stars_and_question_marks() {
        let yes = [
            ("*", "web"),
            ("*", ""),
            ("web-*", "web-1"),
            ("web-*", "web-"),
            ("*-1", "api-1"),
            ("w*b*", "web-backend"),
            ("*a*a*", "banana"),
            ("web-?", "web-3"),
            ("??", "ab"),
            ("a*b*c", "aXbYbZc"),
            ("**x", "x"),
        ];
        for (p, n) in yes {
            assert!(matches(p, n), "{p} should match {n}");
        }
        let no = [
            ("web-*", "web"),
            ("web-*", "api-1"),
            ("web-?", "web-10"),
            ("??", "a"),
            ("*-1", "api-12"),
            ("a*b*c", "aXbYbZ"),
            ("web", "web-1"),
            ("", "a"),
        ];
        for (p, n) in no {
            assert!(!matches(p, n), "{p} should not match {n}");
        }
        assert!(matches("", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("web-[12]", "web-1") && matches("web-[12]", "web-2"));
        assert!(!matches("web-[12]", "web-3"));
        assert!(matches("web-[1-3]", "web-3") && !matches("web-[1-3]", "web-4"));
        assert!(matches("web-[!1]", "web-2") && !matches("web-[!1]", "web-1"));
        assert!(matches("web-[^1]", "web-2") && !matches("web-[^1]", "web-1"));
        assert!(matches("[a-c]*-[0-9]", "beta-7"));
        assert!(matches("[]]", "]") && matches("[!]]", "a") && !matches("[!]]", "]"));
        assert!(matches("[-a]", "-") && matches("[a-]", "-"));
        // An unclosed class is its `[`: check() refuses it before anything is matched.
        assert!(matches("web[", "web[") && !matches("web[", "web1"));
    }

    #[test]
    fn a_malformed_pattern_is_refused_with_the_reason() {
        assert_eq!(check("web-[12]"), Ok(()));
        assert_eq!(check("*?[!a-z]"), Ok(()));
        let bad = "bad pattern \"web-[12\": '[' without its ']' (write [abc] or [a-z])";
        assert_eq!(check("web-[12"), Err(bad.to_string()));
        assert!(check("[]").is_err() && check("[!]").is_err() && check("a[").is_err());
        assert_eq!(check(&"*a".repeat(128)), Ok(()));
        let long = check(&format!("{}x", "*a".repeat(128)));
        assert_eq!(
            long,
            Err("bad pattern: 257 characters (at most 256)".to_string())
        );
    }

    #[test]
    fn words_travel_percent_encoded() {
        assert_eq!(encode("web-1_a.b"), "web-1_a.b");
        assert_eq!(encode("@backend"), "%40backend");
        assert_eq!(encode("web-?"), "web-%3F");
        assert_eq!(encode("[a,b]*"), "%5Ba%2Cb%5D%2A");
        for word in ["@backend", "web-?", "[a,b]*", "é/x y%"] {
            assert_eq!(decode(&encode(word)).as_deref(), Some(word));
        }
        assert_eq!(decode("web-*").as_deref(), Some("web-*"));
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%ff"), None);
    }

    /// A plain recursive matcher, slow and obviously right, for the one above to agree with.
    fn reference(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|k| reference(rest, &n[k..])),
            Some(_) => {
                let Some((&c, tail)) = n.split_first() else {
                    return false;
                };
                match one(p, 0, c) {
                    Some(len) => reference(&p[len..], tail),
                    None => false,
                }
            }
        }
    }

    /// Every pattern of up to 5 characters of `a*?[]!-` against every name of up to 3 of
    /// `ab-]`: the same answer as the reference, and no panic.
    #[test]
    fn the_matcher_agrees_with_a_plain_recursive_one() {
        fn words(alphabet: &[char], max: usize) -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                let next: Vec<String> = (last.iter())
                    .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                    .collect();
                all.extend(next.iter().cloned());
                last = next;
            }
            all
        }
        let patterns = words(&['a', '*', '?', '[', ']', '!', '-'], 5);
        let names = words(&['a', 'b', '-', ']'], 3);
        for p in &patterns {
            let pc: Vec<char> = p.chars().collect();
            for n in &names {
                let nc: Vec<char> = n.chars().collect();
                assert_eq!(matches(p, n), reference(&pc, &nc), "{p:?} against {n:?}");
            }
        }
    }
}
