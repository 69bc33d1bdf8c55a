//! Where the client finds pidone: its control socket, or its API on TCP (`--url`, with a token
//! from `--token-file`), and the connection to either. Plain HTTP only.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon the client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The control socket at this path.
    Socket(PathBuf),
    /// The API on TCP: `host:port`, and the token sent with every request.
    Url {
        authority: String,
        token: Option<crate::config::Token>,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Url { authority, .. } => write!(f, "http://{authority}"),
        }
    }
}

impl Endpoint {
    /// `--url` (else `$PIDONE_URL`) with the token of `--token-file` (else
    /// `$PIDONE_TOKEN_FILE`); `None` without a URL: the socket. The error is a usage error.
    pub fn remote(
        url: Option<String>,
        token_file: Option<PathBuf>,
    ) -> Result<Option<Self>, String> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let Some(url) = url.or_else(|| var("PIDONE_URL").map(|v| v.to_string_lossy().into()))
        else {
            return Ok(None);
        };
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!("--url {url}: only http://HOST:PORT is supported"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "--url {url}: expected http://HOST:PORT, without a path"
            ));
        }
        let token = match token_file.or_else(|| var("PIDONE_TOKEN_FILE").map(PathBuf::from)) {
            Some(path) => Some(crate::config::Token(read_token(&path)?.into_bytes())),
            None => None,
        };
        let authority = match authority.rsplit_once(':') {
            Some((_, port)) if !port.ends_with(']') => authority.to_string(),
            _ => format!("{authority}:80"),
        };
        Ok(Some(Endpoint::Url { authority, token }))
    }

    /// The head of a request for `target`, its `Host` and token included, up to the headers
    /// the caller adds.
    pub fn head(&self, method: &str, target: &str) -> String {
        let (host, auth) = match self {
            Endpoint::Socket(_) => ("localhost", None),
            Endpoint::Url { authority, token } => (authority.as_str(), token.as_ref()),
        };
        let auth = auth.map_or_else(String::new, |t| {
            let t = String::from_utf8_lossy(&t.0);
            format!("Authorization: Bearer {t}\r\n")
        });
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{auth}")
    }
}

/// The token in `path`: one word (the daemon reads its token files the same way).
fn read_token(path: &Path) -> Result<String, String> {
    let limit = crate::config::limits::MAX_TOKEN_FILE_BYTES;
    let text = crate::io::files::read_text(path, limit)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "--token-file {}: not one word of printable ASCII",
            path.display()
        ));
    }
    Ok(token.to_string())
}

/// A connection to the daemon, by the socket or TCP.
pub enum Link {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Link {
    /// Reads and writes give up after `timeout`.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let _ = match self {
            Link::Unix(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
            Link::Tcp(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
        };
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Unix(s) => s.read(buf),
            Link::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Unix(s) => s.write(buf),
            Link::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_and_port() {
        let url = |u: &str| Endpoint::remote(Some(u.to_string()), None);
        let authority = |a: &str| {
            Ok(Some(Endpoint::Url {
                authority: a.to_string(),
                token: None,
            }))
        };
        assert_eq!(url("http://pod:9100"), authority("pod:9100"));
        assert_eq!(url("http://pod:9100/"), authority("pod:9100"));
        assert_eq!(url("http://10.0.0.1"), authority("10.0.0.1:80"));
        assert_eq!(url("http://[::1]:9100"), authority("[::1]:9100"));
        assert_eq!(url("http://[::1]"), authority("[::1]:80"));
        assert!(url("https://pod:9100").is_err());
        assert!(url("http://pod:9100/v1").is_err());
        assert!(url("pod:9100").is_err());
    }

    #[test]
    fn the_token_goes_in_every_head() {
        let ep = Endpoint::Url {
            authority: "pod:9100".to_string(),
            token: Some(crate::config::Token(b"t0k".to_vec())),
        };
        assert_eq!(
            ep.head("GET", "/livez"),
            "GET /livez HTTP/1.1\r\nHost: pod:9100\r\nAuthorization: Bearer t0k\r\n"
        );
        let socket = Endpoint::Socket(PathBuf::from("/run/pidone.sock"));
        assert_eq!(
            socket.head("POST", "/x"),
            "POST /x HTTP/1.1\r\nHost: localhost\r\n"
        );
    }
}
