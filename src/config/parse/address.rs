//! The text of probes: `tcp` addresses, `http` URLs and `exec` commands, checked as written
//! and again (by `outside`) after `${VAR}` expansion.

use std::net::Ipv6Addr;

use toml::de::DeValue;

use super::raw::RawProbe;
use super::values::{string, string_or_list};
use crate::config::error::ErrorKind;
use crate::config::model::Probe;

/// `exec`: a string runs through the shell, an array is an argv.
pub(super) fn exec_probe(v: &DeValue<'_>) -> Result<RawProbe, ErrorKind> {
    let argv = string_or_list(v)?;
    let probe = match v {
        DeValue::String(_) => RawProbe::Shell(argv.into_iter().next().unwrap_or_default()),
        _ => RawProbe::Exec(argv),
    };
    empty_exec(&probe)?;
    Ok(probe)
}

/// Refuses an exec probe with nothing to run: an argv whose program is empty, or a shell command
/// that is only blanks (`sh -c ""` succeeds without doing anything). `outside` applies the same
/// rules again after `${VAR}` expansion, with [`empty_after`].
pub(super) fn empty_exec(probe: &RawProbe) -> Result<(), ErrorKind> {
    let what = match probe {
        RawProbe::Exec(argv) if argv.first().is_none_or(|p| p.is_empty()) => "program",
        RawProbe::Shell(text) if text.trim().is_empty() => "command",
        _ => return Ok(()),
    };
    Err(ErrorKind::BadValue {
        message: format!("the {what} must not be empty"),
    })
}

/// A program, script or shell command that `${VAR}` expansion left empty (or blank): `written`
/// is the text as written, `expanded` what it became.
pub fn empty_after(what: &str, written: &str, expanded: &str) -> ErrorKind {
    ErrorKind::BadValue {
        message: format!("the {what} must not be empty: {written:?} expands to {expanded:?}"),
    }
}

/// A `tcp` or `http` address: a string, checked now unless `${VAR}` expansion may change it.
pub(super) fn address(
    v: &DeValue<'_>,
    check: fn(&str) -> Result<Probe, ErrorKind>,
) -> Result<String, ErrorKind> {
    let text = string(v)?;
    if !text.contains('$') {
        check(&text)?;
    }
    Ok(text)
}

/// Parses a `tcp` address: `host:port`, an IPv6 address in brackets (`[::1]:5432`).
pub fn tcp_probe(text: &str) -> Result<Probe, ErrorKind> {
    let (host, port) = host_port(text, None).map_err(|why| ErrorKind::BadValue {
        message: format!("bad address {text:?}: {why}"),
    })?;
    Ok(Probe::Tcp { host, port })
}

/// Parses an `http` URL: `http://host[:port][/path][?query]`; port 80 and path `/` by default.
/// A fragment is dropped (it is never sent).
pub fn http_probe(url: &str) -> Result<Probe, ErrorKind> {
    let bad = |why: &str| ErrorKind::BadValue {
        message: format!("bad URL {url:?}: {why}"),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected http://HOST[:PORT][/PATH]"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(ErrorKind::BadValue {
                message: "https is not supported: pidone probes plain HTTP on its own loop; use an exec check (curl, wget) for TLS".into(),
            });
        }
        _ => return Err(bad("only http:// is supported")),
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(bad("user info (user@host) is not supported"));
    }
    let (host, port) = host_port(authority, Some(80)).map_err(|why| bad(&why))?;
    if tail.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "the path must not contain spaces or control characters (percent-encode them)",
        ));
    }
    // The path goes into the request line as written, so it must already be valid there.
    if !tail.is_ascii() {
        return Err(bad(
            "the path must not contain non-ASCII characters (percent-encode their UTF-8 bytes)",
        ));
    }
    if let Some(escape) = bad_percent_escape(tail) {
        return Err(bad(&format!(
            "bad percent escape {escape:?} in the path: '%' must be followed by two hex digits (write %25 for a '%')"
        )));
    }
    let path = match tail.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_owned(),
    };
    Ok(Probe::Http { host, port, path })
}

/// The first `%` in `text` not followed by two hex digits, with what follows it (up to two
/// characters), if any.
pub(super) fn bad_percent_escape(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let at = (0..bytes.len()).find(|&i| {
        bytes.get(i) == Some(&b'%')
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })?;
    Some(text.get(at..(at + 3).min(text.len())).unwrap_or("%"))
}

/// Splits `host:port` or `[v6]:port`; the port may be left out when there is a default. The
/// host is returned without brackets. Names are not looked up here.
pub(super) fn host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err("unclosed '[' in the host".into());
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        };
        (v6, port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("an IPv6 address needs brackets, like [::1]:8080".into());
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let is_name = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !is_name {
            return Err(format!("bad host {host:?}"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match (port, default_port) {
        (Some(""), _) => return Err("the port is empty".into()),
        (Some(p), _) if !p.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("bad port {p:?}"));
        }
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port {p} is out of range (1 to 65535)")),
        },
        (None, Some(d)) => d,
        (None, None) => return Err("expected HOST:PORT (an IPv6 address as [::1]:PORT)".into()),
    };
    Ok((host.to_owned(), port))
}
