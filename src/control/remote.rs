//! Where the client finds pidone: its control socket, or its API on TCP (`--url`, with a token
//! from `--token-file`), and the connection to either. HTTP, or HTTPS in a build with the feature
//! `tls` ([`super::tls_client`]), to an IP address or a name of `/etc/hosts` (as the HTTP
//! checks): a DNS resolver would cost the static binary some 30 KiB.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whom the client trusts for `https://` ([`super::tls_client::Trust`]); a build without the
/// feature `tls` has no such URL, and no value of this type.
#[cfg(feature = "tls")]
pub use super::tls_client::Trust;
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {}

/// The daemon the client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The control socket at this path.
    Socket(PathBuf),
    /// The API on TCP: its address, `host:port` as written (the `Host` header), the token
    /// sent with every request, and for `https://` whom to trust.
    Url {
        addr: SocketAddr,
        authority: String,
        token: Option<crate::config::Token>,
        tls: Option<Trust>,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Url {
                authority,
                tls: None,
                ..
            } => write!(f, "http://{authority}"),
            Endpoint::Url { authority, .. } => write!(f, "https://{authority}"),
        }
    }
}

impl Endpoint {
    /// `--url` (else `$PIDONE_URL`) with the token of `--token-file` (else
    /// `$PIDONE_TOKEN_FILE`) and, for `https://`, the CAs of `--ca-file` (else
    /// `$PIDONE_CA_FILE`, else the system's); `None` without a URL: the socket. The error is a
    /// usage error.
    pub fn remote(
        url: Option<String>,
        token_file: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    ) -> Result<Option<Self>, String> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let Some(url) = url.or_else(|| var("PIDONE_URL").map(|v| v.to_string_lossy().into()))
        else {
            return Ok(None);
        };
        let (rest, tls, port) = match scheme(&url, ca_file)? {
            Some(found) => found,
            None => return Err(format!("--url {url}: expected http://HOST:PORT")),
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
        let addr = address(authority, port).map_err(|why| format!("--url {url}: {why}"))?;
        let authority = authority.to_string();
        Ok(Some(Endpoint::Url {
            addr,
            authority,
            token,
            tls,
        }))
    }

    /// The head of a request for `target`, its `Host` and token included, up to the headers
    /// the caller adds.
    pub fn head(&self, method: &str, target: &str) -> String {
        let (host, auth) = match self {
            Endpoint::Socket(_) => ("localhost", None),
            Endpoint::Url {
                authority, token, ..
            } => (authority.as_str(), token.as_ref()),
        };
        let auth = auth.map_or_else(String::new, |t| {
            let t = String::from_utf8_lossy(&t.0);
            format!("Authorization: Bearer {t}\r\n")
        });
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{auth}")
    }
}

/// A URL's scheme understood: what follows it, whom to trust for it, its default port.
type Scheme<'a> = (&'a str, Option<Trust>, u16);

/// What follows the scheme of `url`, whom to trust for it and its default port: `http://`, or
/// `https://` in a build with TLS (without it, an error that says so). `None`: no such scheme.
fn scheme(url: &str, ca_file: Option<PathBuf>) -> Result<Option<Scheme<'_>>, String> {
    if let Some(rest) = url.strip_prefix("http://") {
        return Ok(Some((rest, None, 80)));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Ok(None);
    };
    #[cfg(feature = "tls")]
    return Ok(Some((rest, Some(Trust::load(ca_file)?), 443)));
    #[cfg(not(feature = "tls"))]
    {
        let _ = (rest, ca_file);
        Err(format!(
            "--url {url}: this pidone was built without TLS (the cargo feature tls): use http://"
        ))
    }
}

/// The host of `HOST[:PORT]`, without the brackets of an IPv6 address: the name the server's
/// certificate must hold.
pub fn host(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The address of `HOST[:PORT]` (`port` by default), HOST an IP address (IPv6 in brackets),
/// a name of `/etc/hosts` or `localhost`.
fn address(authority: &str, port: u16) -> Result<SocketAddr, String> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.ends_with(']') => {
            let port = port
                .parse()
                .map_err(|_| format!("'{port}' is not a port"))?;
            (host, port)
        }
        _ => (authority, port),
    };
    Ok(SocketAddr::new(crate::io::probe::resolve(host)?, port))
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

/// A connection to the daemon, by the socket or TCP, or by TLS over TCP.
pub enum Link {
    Unix(UnixStream),
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls_client::Stream>),
}

impl Link {
    /// A connection to `addr`: TLS with `tls` (`host` the server's name), else plain.
    pub fn tcp(addr: &SocketAddr, host: &str, tls: Option<&Trust>) -> io::Result<Link> {
        let stream = TcpStream::connect(addr)?;
        match tls {
            None => Ok(Link::Tcp(stream)),
            #[cfg(feature = "tls")]
            Some(trust) => Ok(Link::Tls(Box::new(trust.connect(host, stream)?))),
            #[cfg(not(feature = "tls"))]
            Some(never) => {
                let _ = host;
                match *never {}
            }
        }
    }

    /// True when a read would return bytes already received, which poll cannot see (a TLS
    /// session's plaintext).
    #[cfg(feature = "tls")]
    pub fn buffered(&mut self) -> bool {
        match self {
            Link::Tls(s) => super::tls_client::buffered(s),
            _ => false,
        }
    }

    /// Reads and writes give up after `timeout`.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let _ = match self {
            Link::Unix(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
            Link::Tcp(s) => s
                .set_read_timeout(timeout)
                .and(s.set_write_timeout(timeout)),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s
                .sock
                .set_read_timeout(timeout)
                .and(s.sock.set_write_timeout(timeout)),
        };
    }
}

impl std::os::fd::AsFd for Link {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Link::Unix(s) => s.as_fd(),
            Link::Tcp(s) => s.as_fd(),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.sock.as_fd(),
        }
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Unix(s) => s.read(buf),
            Link::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Unix(s) => s.write(buf),
            Link::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_and_port() {
        let url = |u: &str| Endpoint::remote(Some(u.to_string()), None, None);
        let at = |written: &str, addr: &str| {
            Ok(Some(Endpoint::Url {
                addr: addr.parse().expect("an address"),
                authority: written.to_string(),
                token: None,
                tls: None,
            }))
        };
        assert_eq!(
            url("http://10.0.0.1:9100"),
            at("10.0.0.1:9100", "10.0.0.1:9100")
        );
        assert_eq!(
            url("http://10.0.0.1:9100/"),
            at("10.0.0.1:9100", "10.0.0.1:9100")
        );
        assert_eq!(url("http://10.0.0.1"), at("10.0.0.1", "10.0.0.1:80"));
        assert_eq!(url("http://[::1]:9100"), at("[::1]:9100", "[::1]:9100"));
        assert_eq!(url("http://[::1]"), at("[::1]", "[::1]:80"));
        assert_eq!(url("http://localhost:9"), at("localhost:9", "127.0.0.1:9"));
        assert!(url("http://no-such-host.invalid:9100").is_err(), "no DNS");
        #[cfg(not(feature = "tls"))]
        {
            let refused = url("https://10.0.0.1:9100").expect_err("no TLS in this build");
            assert!(refused.contains("built without TLS"), "{refused}");
        }
        assert!(url("http://10.0.0.1:9100/v1").is_err());
        assert!(url("10.0.0.1:9100").is_err());
    }

    #[test]
    fn the_token_goes_in_every_head() {
        let ep = Endpoint::Url {
            addr: "10.0.0.1:9100".parse().expect("an address"),
            authority: "pod:9100".to_string(),
            token: Some(crate::config::Token(b"t0k".to_vec())),
            tls: None,
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
