//! The YAML that process-compose files use, read by hand: block mappings and sequences, plain and
//! quoted scalars, `|` and `>` block scalars, comments, and flow sequences of scalars (`[a, b]`).
//! Anchors, aliases, tags, merge keys, flow mappings other than `{}`, multi-line flow scalars and
//! several documents are refused with the line and the reason, so nothing is misread silently.

/// A parsed node and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// An empty value, `~` or `null`.
    Null,
    Scalar(String),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

struct Line {
    no: usize,
    indent: usize,
    /// The content after the indentation, comment removed, trailing space trimmed; empty for
    /// blank and comment lines.
    text: String,
    raw: String,
}

struct Parser<'a> {
    file: &'a str,
    lines: Vec<Line>,
    pos: usize,
}

/// Parses a whole file; the error is `FILE:LINE: reason`.
pub fn parse(file: &str, source: &str) -> Result<Node, String> {
    let mut lines = Vec::new();
    let mut started = false;
    for (i, raw) in source.lines().enumerate() {
        let no = i + 1;
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let rest = &raw[indent..];
        if rest.starts_with('\t') && !rest.trim().is_empty() {
            return Err(format!(
                "{file}:{no}: a tab in the indentation (YAML indents with spaces)"
            ));
        }
        let text = strip_comment(rest).trim_end().to_owned();
        if indent == 0 && (text == "---" || text.starts_with("--- ")) {
            if started {
                return Err(format!(
                    "{file}:{no}: a second YAML document ('---'): one document per file"
                ));
            }
            started = true;
            continue;
        }
        if indent == 0 && text.starts_with('%') {
            return Err(format!("{file}:{no}: YAML directives are not supported"));
        }
        if !text.is_empty() {
            started = true;
        }
        lines.push(Line {
            no,
            indent,
            text,
            raw: raw.to_owned(),
        });
    }
    let mut p = Parser {
        file,
        lines,
        pos: 0,
    };
    let Some(first) = p.content() else {
        return Ok(Node {
            line: 1,
            kind: Kind::Null,
        });
    };
    let indent = p.lines[first].indent;
    let node = p.node(indent)?;
    if let Some(i) = p.content() {
        return Err(p.err(
            i,
            "unexpected content after the document (wrong indentation?)",
        ));
    }
    Ok(node)
}

/// Cuts a `#` comment that starts the line or follows whitespace, outside quotes.
fn strip_comment(text: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '#' && prev.is_whitespace() => return &text[..i],
            None if (c == '"' || c == '\'') && (prev.is_whitespace() || "[,{".contains(prev)) => {
                quote = Some(c)
            }
            None => {}
        }
        prev = c;
    }
    text
}

impl Parser<'_> {
    fn err(&self, i: usize, reason: &str) -> String {
        let no = self.lines.get(i).map_or(0, |l| l.no);
        format!("{}:{no}: {reason}", self.file)
    }

    /// The index of the next line with content, from `pos`.
    fn content(&mut self) -> Option<usize> {
        while self.pos < self.lines.len() && self.lines[self.pos].text.is_empty() {
            self.pos += 1;
        }
        (self.pos < self.lines.len()).then_some(self.pos)
    }

    fn node(&mut self, indent: usize) -> Result<Node, String> {
        let Some(i) = self.content() else {
            return Ok(Node {
                line: 0,
                kind: Kind::Null,
            });
        };
        let text = self.lines[i].text.clone();
        if is_item(&text) {
            self.seq(indent)
        } else if key_colon(&text).is_some() {
            self.map(indent)
        } else {
            self.pos += 1;
            let node = self.inline(i, &text, indent)?;
            self.no_continuation(indent)?;
            Ok(node)
        }
    }

    fn map(&mut self, indent: usize) -> Result<Node, String> {
        let line = self.lines[self.pos].no;
        let mut pairs: Vec<(String, Node)> = Vec::new();
        while let Some(i) = self.content() {
            let l = &self.lines[i];
            if l.indent < indent || (l.indent == indent && is_item(&l.text)) {
                break;
            }
            if l.indent > indent {
                return Err(self.err(i, "unexpected indentation"));
            }
            let text = l.text.clone();
            let Some((key, rest)) = key_colon(&text) else {
                return Err(self.err(i, &format!("expected 'key: value', found {text:?}")));
            };
            let key = self.key(i, key)?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(self.err(i, &format!("key {key:?} given twice")));
            }
            self.pos += 1;
            let value = self.value(i, rest.trim(), indent)?;
            pairs.push((key, value));
        }
        Ok(Node {
            line,
            kind: Kind::Map(pairs),
        })
    }

    fn key(&self, i: usize, key: &str) -> Result<String, String> {
        let key = key.trim();
        if key == "<<" {
            return Err(self.err(i, "merge keys ('<<') are not supported: write the keys out"));
        }
        if key.starts_with(['?', '&', '*', '!', '[', '{']) {
            return Err(self.err(
                i,
                &format!("unsupported key {key:?}: use a plain or quoted scalar"),
            ));
        }
        match key.chars().next() {
            Some('"' | '\'') => self.quoted(i, key),
            _ => Ok(key.to_owned()),
        }
    }

    /// The value after `key:` on line `i` (already consumed), or the block below it.
    fn value(&mut self, i: usize, rest: &str, indent: usize) -> Result<Node, String> {
        let line = self.lines[i].no;
        if rest.is_empty() {
            let Some(j) = self.content() else {
                return Ok(Node {
                    line,
                    kind: Kind::Null,
                });
            };
            // A block below its key is reported at the key's line.
            let next = &self.lines[j];
            if next.indent > indent {
                let next_indent = next.indent;
                return self.node(next_indent).map(|n| Node { line, ..n });
            }
            if next.indent == indent && is_item(&next.text) {
                return self.seq(indent).map(|n| Node { line, ..n });
            }
            return Ok(Node {
                line,
                kind: Kind::Null,
            });
        }
        if rest.starts_with(['|', '>']) {
            return self.block(i, rest, indent);
        }
        let node = self.inline(i, rest, indent)?;
        self.no_continuation(indent)?;
        Ok(node)
    }

    /// A value written on its line: a scalar or a flow sequence.
    fn inline(&self, i: usize, text: &str, _indent: usize) -> Result<Node, String> {
        let line = self.lines[i].no;
        let kind =
            match text.chars().next() {
                Some('&' | '*') => {
                    return Err(self.err(
                        i,
                        "anchors and aliases (& and *) are not supported: write the value out",
                    ));
                }
                Some('!') => return Err(self.err(i, "tags ('!') are not supported")),
                Some('[') => self.flow_seq(i, text)?,
                Some('{') if text == "{}" => Kind::Map(Vec::new()),
                Some('{') => return Err(self.err(
                    i,
                    "flow mappings ('{ a: b }') are not supported: use one 'key: value' per line",
                )),
                Some('"' | '\'') => Kind::Scalar(self.quoted(i, text)?),
                _ if text == "~" || text == "null" => Kind::Null,
                _ => Kind::Scalar(text.to_owned()),
            };
        Ok(Node { line, kind })
    }

    /// Refuses a more indented line after a one-line value: a multi-line flow scalar.
    fn no_continuation(&mut self, indent: usize) -> Result<(), String> {
        if let Some(j) = self.content() {
            let l = &self.lines[j];
            if l.indent > indent && !(is_item(&l.text) || key_colon(&l.text).is_some()) {
                return Err(self.err(j, "a value continued on the next line: multi-line plain or quoted scalars are not supported; use a '|' or '>' block"));
            }
            if l.indent > indent {
                return Err(self.err(j, "unexpected indentation"));
            }
        }
        Ok(())
    }

    fn seq(&mut self, indent: usize) -> Result<Node, String> {
        let line = self.lines[self.pos].no;
        let mut items = Vec::new();
        while let Some(i) = self.content() {
            let l = &self.lines[i];
            if l.indent < indent {
                break;
            }
            if l.indent > indent || !is_item(&l.text) {
                if l.indent == indent {
                    break;
                }
                return Err(self.err(i, "unexpected indentation in a sequence"));
            }
            let after = l.text[1..].trim_start();
            if after.is_empty() {
                let no = l.no;
                self.pos += 1;
                let child = match self.content() {
                    Some(j) if self.lines[j].indent > indent => self.node(self.lines[j].indent)?,
                    _ => Node {
                        line: no,
                        kind: Kind::Null,
                    },
                };
                items.push(child);
                continue;
            }
            let offset = indent + (l.text.len() - after.len());
            let after = after.to_owned();
            if after.starts_with(['|', '>']) {
                self.pos += 1;
                items.push(self.block(i, &after, indent)?);
                continue;
            }
            // Reread the rest of the line as if it began at its own column: `- key: v` starts a
            // mapping whose other keys sit at that column.
            let l = &mut self.lines[i];
            l.indent = offset;
            l.text = after;
            items.push(self.node(offset)?);
        }
        Ok(Node {
            line,
            kind: Kind::Seq(items),
        })
    }

    fn flow_seq(&self, i: usize, text: &str) -> Result<Kind, String> {
        let Some(body) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return Err(self.err(i, "a flow sequence must open and close on one line: [a, b]"));
        };
        let mut items = Vec::new();
        let mut quote = None;
        let mut start = 0;
        let mut parts = Vec::new();
        for (j, c) in body.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | ']' | '{' | '}') => {
                    return Err(
                        self.err(i, "nested collections in a flow sequence are not supported")
                    );
                }
                (None, ',') => {
                    parts.push(&body[start..j]);
                    start = j + 1;
                }
                _ => {}
            }
        }
        parts.push(&body[start..]);
        for (n, part) in parts.iter().enumerate() {
            let part = part.trim();
            if part.is_empty() {
                if n + 1 == parts.len() {
                    continue;
                }
                return Err(self.err(i, "an empty item in a flow sequence"));
            }
            let value = match part.chars().next() {
                Some('"' | '\'') => self.quoted(i, part)?,
                _ => part.to_owned(),
            };
            items.push(Node {
                line: self.lines[i].no,
                kind: Kind::Scalar(value),
            });
        }
        Ok(Kind::Seq(items))
    }

    /// A `"..."` or `'...'` scalar that must end where `text` ends.
    fn quoted(&self, i: usize, text: &str) -> Result<String, String> {
        let mut chars = text.chars();
        let q = chars.next().unwrap_or('"');
        let mut out = String::new();
        loop {
            match chars.next() {
                None => return Err(self.err(i, "a quoted scalar without its closing quote (multi-line quoted scalars are not supported)")),
                Some(c) if c == q => {
                    if q == '\'' && chars.clone().next() == Some('\'') {
                        chars.next();
                        out.push('\'');
                        continue;
                    }
                    break;
                }
                Some('\\') if q == '"' => out.push(self.escape(i, &mut chars)?),
                Some(c) => out.push(c),
            }
        }
        if !chars.as_str().trim().is_empty() {
            return Err(self.err(
                i,
                &format!(
                    "unexpected text after a quoted scalar: {:?}",
                    chars.as_str().trim()
                ),
            ));
        }
        Ok(out)
    }

    fn escape(&self, i: usize, chars: &mut std::str::Chars<'_>) -> Result<char, String> {
        Ok(match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('0') => '\0',
            Some('e') => '\u{1b}',
            Some(c @ ('"' | '\\' | '/' | ' ')) => c,
            Some(k @ ('x' | 'u')) => {
                let len = if k == 'x' { 2 } else { 4 };
                let hex: String = chars.take(len).collect();
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == len)
                    .and_then(char::from_u32)
                    .ok_or_else(|| self.err(i, &format!("bad escape \\{k}{hex}")))?
            }
            other => {
                return Err(self.err(
                    i,
                    &format!(
                        "unsupported escape \\{}",
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        })
    }

    /// A `|` or `>` block scalar below line `i` (already consumed), more indented than `indent`.
    fn block(&mut self, i: usize, header: &str, indent: usize) -> Result<Node, String> {
        let folded = header.starts_with('>');
        let chomp = match &header[1..] {
            "" => ' ',
            "-" => '-',
            "+" => '+',
            other => {
                return Err(self.err(
                    i,
                    &format!(
                        "unsupported block scalar header {:?} (use |, |-, |+, >, >- or >+)",
                        format!("{}{other}", &header[..1])
                    ),
                ));
            }
        };
        let mut body: Vec<String> = Vec::new();
        let mut content_indent = None;
        while self.pos < self.lines.len() {
            let l = &self.lines[self.pos];
            let blank = l.raw.trim().is_empty();
            if !blank && l.indent <= indent {
                break;
            }
            if !blank {
                let ci = *content_indent.get_or_insert(l.indent);
                if l.indent < ci {
                    return Err(self.err(
                        self.pos,
                        "a block scalar line less indented than its first line",
                    ));
                }
                body.push(l.raw.get(ci..).unwrap_or("").to_owned());
            } else {
                body.push(String::new());
            }
            self.pos += 1;
        }
        let trailing = body.iter().rev().take_while(|l| l.is_empty()).count();
        let kept = body.len() - trailing;
        let mut text = if folded {
            fold(&body[..kept])
        } else {
            body[..kept].join("\n")
        };
        match chomp {
            '-' => {}
            '+' => text.push_str(&"\n".repeat(trailing + 1)),
            _ if kept > 0 => text.push('\n'),
            _ => {}
        }
        Ok(Node {
            line: self.lines[i].no,
            kind: Kind::Scalar(text),
        })
    }
}

/// `>` folding: lines joined by a space, an empty line kept as a newline.
fn fold(lines: &[String]) -> String {
    let mut out = String::new();
    let mut newline = true;
    for line in lines {
        if line.is_empty() {
            out.push('\n');
            newline = true;
            continue;
        }
        if !newline {
            out.push(' ');
        }
        out.push_str(line);
        newline = false;
    }
    out
}

/// A sequence item: `-` alone or followed by a space.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Splits `key: rest` at the first `:` that ends a key (followed by a space or the end), outside
/// quotes.
fn key_colon(text: &str) -> Option<(&str, &str)> {
    if text.starts_with(['"', '\'']) {
        let q = text.chars().next()?;
        let end = text[1..].find(q)? + 1;
        let after = &text[end + 1..];
        let rest = after.trim_start().strip_prefix(':')?;
        return (rest.is_empty() || rest.starts_with(' ')).then_some((&text[..=end], rest));
    }
    if text.starts_with(['[', '{']) {
        return None;
    }
    let b = text.as_bytes();
    (0..b.len()).find_map(|i| {
        (b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' '))
            .then(|| (&text[..i], &text[i + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Kind {
        Kind::Scalar(v.into())
    }

    #[test]
    fn maps_sequences_scalars_and_blocks() {
        let text = "version: \"0.5\" # c\nprocesses:\n  web:\n    command: |\n      echo 1\n      # kept\n    env:\n    - \"A=1\"\n    - B=2\n    list: [a, \"b c\", 'd''e']\n    probe:\n      - exec: x\n        period: 2\n    empty:\n    url: http://h:80/#x\n";
        let root = parse("f.yaml", text).unwrap();
        assert_eq!(root.get("version").unwrap().kind, s("0.5"));
        let web = root.get("processes").unwrap().get("web").unwrap();
        assert_eq!(web.get("command").unwrap().kind, s("echo 1\n# kept\n"));
        let Kind::Seq(env) = &web.get("env").unwrap().kind else {
            panic!()
        };
        assert_eq!(env[1].kind, s("B=2"));
        let Kind::Seq(list) = &web.get("list").unwrap().kind else {
            panic!()
        };
        assert_eq!(list[2].kind, s("d'e"));
        let Kind::Seq(probe) = &web.get("probe").unwrap().kind else {
            panic!()
        };
        assert_eq!(probe[0].get("period").unwrap().kind, s("2"));
        assert_eq!(web.get("empty").unwrap().kind, Kind::Null);
        assert_eq!(web.get("url").unwrap().kind, s("http://h:80/#x"));
    }

    #[test]
    fn folded_blocks_join_lines() {
        let root = parse("f", "c: >-\n  a\n  b\n\n  c\nd: 1\n").unwrap();
        assert_eq!(root.get("c").unwrap().kind, s("a b\nc"));
    }

    #[test]
    fn what_is_not_supported_is_refused_with_its_line() {
        let cases = [
            ("a: &x 1\n", "f:1: anchors"),
            ("a:\n  b: 1\n  <<: 2\n", "f:3: merge keys"),
            ("a: {b: 1}\n", "f:1: flow mappings"),
            ("a: \"x\n  y\"\n", "f:1: a quoted scalar without"),
            ("a: x\n  y\n", "f:2: a value continued"),
            ("a: 1\n---\nb: 2\n", "f:2: a second YAML document"),
            ("a:\n\tb: 1\n", "f:2: a tab"),
            ("a: 1\na: 2\n", "f:2: key \"a\" given twice"),
            ("a:\n  b: 1\n    c: 2\n", "f:3: "),
        ];
        for (text, want) in cases {
            let err = parse("f", text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
