//! Running the probes of checks without ever blocking the loop: exec checks are child processes
//! whose output comes through a non-blocking pipe; tcp and http checks are non-blocking sockets
//! driven by poll readiness. [`crate::core::health`] decides what the outcomes mean.
//!
//! Host names are resolved without DNS: an IP literal, `localhost`, or a name found in
//! `/etc/hosts`. A resolver query can block for seconds, and PID 1 must not.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use rustix::process::Pid;

use crate::io::output::{ReadOutcome, read_available};
use crate::os::reap::Exit;

/// The most output or response kept from one run.
const KEEP: usize = 4096;

/// A run in progress.
#[derive(Debug)]
pub enum Run {
    /// An exec check's process (its own process group) and its output pipe until EOF.
    Exec {
        pid: Pid,
        out: Option<OwnedFd>,
        text: Vec<u8>,
    },
    /// A tcp or http check's connection.
    Net(Dial),
}

/// A connection of a tcp or http check.
#[derive(Debug)]
pub struct Dial {
    sock: OwnedFd,
    target: SocketAddr,
    step: DialStep,
    /// The HTTP request (empty for tcp) and how much of it is sent.
    request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
}

/// Where a check's connection is: connecting, sending its request, reading the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialStep {
    Connecting,
    Sending,
    Receiving,
}

/// Where a run stands after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Pending,
    /// Finished: success or not, and what to show.
    Done(bool, String),
}

/// Why a run could not begin.
#[derive(Debug)]
pub struct NotStarted {
    pub why: String,
    /// pidone itself lacked the means ([`ours`]): the service is not to blame.
    pub ours: bool,
}

impl NotStarted {
    /// `what: err`, pidone's own failure when [`ours`] says so.
    pub fn new(what: &str, err: Errno) -> NotStarted {
        NotStarted {
            why: format!("{what}: {err}"),
            ours: ours(err),
        }
    }
}

/// Whether `err` means that pidone could not get a process, a descriptor, memory or a port to
/// run a probe (`fork` under a pids limit, `pipe` or `socket` under an fd limit): its own
/// failure, not the check's. Every other error (a program not found or not executable, a
/// refused connection) is the check's.
pub fn ours(err: Errno) -> bool {
    matches!(
        err,
        Errno::AGAIN | Errno::MFILE | Errno::NFILE | Errno::NOMEM | Errno::NOBUFS
    )
}

/// Starts a tcp check (`path` None) or an http GET of `path`, sending `Host: host`.
pub fn connect(host: &str, port: u16, path: Option<&str>) -> Result<Dial, NotStarted> {
    let ip = resolve(host).map_err(|why| NotStarted { why, ours: false })?;
    let target = SocketAddr::new(ip, port);
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    let sock = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| NotStarted::new("socket", e))?;
    let step = match rustix::net::connect(&sock, &target) {
        Ok(()) => DialStep::Sending,
        Err(Errno::INPROGRESS) | Err(Errno::INTR) => DialStep::Connecting,
        Err(e) => return Err(NotStarted::new(&format!("connect to {target}"), e)),
    };
    let request = match path {
        Some(path) => {
            let host = crate::config::bracketed(host);
            let host = if port == 80 {
                host.into_owned()
            } else {
                format!("{host}:{port}")
            };
            format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pidone\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            .into_bytes()
        }
        None => Vec::new(),
    };
    Ok(Dial {
        sock,
        target,
        step,
        request,
        sent: 0,
        response: Vec::new(),
    })
}

impl Dial {
    /// What to poll for.
    pub fn interest(&self) -> (BorrowedFd<'_>, PollFlags) {
        let events = match self.step {
            DialStep::Connecting | DialStep::Sending => PollFlags::OUT,
            DialStep::Receiving => PollFlags::IN,
        };
        (self.sock.as_fd(), events)
    }

    /// Moves the connection forward after poll said it is ready (or at once after connect).
    pub fn advance(&mut self) -> Progress {
        loop {
            match self.step {
                DialStep::Connecting => match rustix::net::sockopt::socket_error(&self.sock) {
                    Ok(Ok(())) => self.step = DialStep::Sending,
                    Ok(Err(e)) => {
                        return Progress::Done(false, format!("connect to {}: {e}", self.target));
                    }
                    Err(e) => return Progress::Done(false, format!("SO_ERROR: {e}")),
                },
                DialStep::Sending if self.request.is_empty() => {
                    return Progress::Done(true, format!("connected to {}", self.target));
                }
                DialStep::Sending => {
                    let rest = self.request.get(self.sent..).unwrap_or_default();
                    match rustix::net::send(&self.sock, rest, SendFlags::NOSIGNAL) {
                        Ok(n) => {
                            self.sent += n;
                            if self.sent == self.request.len() {
                                self.step = DialStep::Receiving;
                            }
                        }
                        Err(Errno::AGAIN) | Err(Errno::INTR) => return Progress::Pending,
                        Err(e) => {
                            return Progress::Done(false, format!("send to {}: {e}", self.target));
                        }
                    }
                }
                DialStep::Receiving => return self.receive(),
            }
        }
    }

    /// Reads the response until its status line is complete.
    fn receive(&mut self) -> Progress {
        let mut buf = [0u8; 1024];
        loop {
            match rustix::net::recv(&self.sock, &mut buf[..], RecvFlags::DONTWAIT) {
                Ok((0, _)) => {
                    let why = "connection closed before a status line";
                    return self
                        .status_line()
                        .unwrap_or(Progress::Done(false, why.into()));
                }
                Ok((n, _)) => {
                    self.response
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    if let Some(done) = self.status_line() {
                        return done;
                    }
                    if self.response.len() >= KEEP {
                        return Progress::Done(false, "no HTTP status line".into());
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => return Progress::Pending,
                Err(e) => return Progress::Done(false, format!("recv: {e}")),
            }
        }
    }

    /// The verdict once the status line has arrived: 2xx and 3xx are healthy. A bare LF ends
    /// the line too (shell and busybox servers send one; RFC 9112 lets a client accept it).
    fn status_line(&self) -> Option<Progress> {
        let end = self.response.iter().position(|&b| b == b'\n')?;
        let line = self.response.get(..end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = String::from_utf8_lossy(line).into_owned();
        let mut words = line.split(' ');
        let version = words.next().unwrap_or("");
        let code = words.next().and_then(|c| c.parse::<u16>().ok());
        Some(match code {
            Some(code) if version.starts_with("HTTP/") => {
                Progress::Done((200..400).contains(&code), line)
            }
            _ => Progress::Done(false, format!("not an HTTP status line: {line:?}")),
        })
    }
}

impl Run {
    /// The fd to poll and for what, while there is one.
    pub fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match self {
            Run::Exec { out, .. } => out.as_ref().map(|fd| (fd.as_fd(), PollFlags::IN)),
            Run::Net(conn) => Some(conn.interest()),
        }
    }

    /// Poll said the run's fd is ready.
    pub fn ready(&mut self) -> Progress {
        match self {
            Run::Exec { out, text, .. } => {
                if read_output(out, text) {
                    *out = None;
                }
                // An exec run ends with its process, when it is reaped.
                Progress::Pending
            }
            Run::Net(conn) => conn.advance(),
        }
    }

    /// An exec run's process ended: exit 0 is success; the output (or the status) is kept.
    pub fn exited(&mut self, exit: Exit) -> Progress {
        let Run::Exec { out, text, .. } = self else {
            return Progress::Pending;
        };
        read_output(out, text);
        *out = None;
        let output = summary(text);
        let ok = exit == Exit::Code(0);
        Progress::Done(ok, exec_verdict(exit, output))
    }
}

/// What an exec check's run says: its output's last line, after its exit status when it failed
/// (`exit code 1: connection refused`, `exit code 1`, `signal KILL`).
fn exec_verdict(exit: Exit, output: String) -> String {
    match (exit == Exit::Code(0), output.is_empty()) {
        (true, true) => exit.to_string(),
        (true, false) => output,
        (false, true) => exit.to_string(),
        (false, false) => format!("{exit}: {output}"),
    }
}

/// Reads what is available from an exec check's pipe, keeping at most [`KEEP`] bytes; true at
/// EOF or on an error (the pipe is done).
fn read_output(out: &Option<OwnedFd>, text: &mut Vec<u8>) -> bool {
    let Some(fd) = out else { return true };
    let got = read_available(fd.as_fd(), |bytes| {
        let room = KEEP.saturating_sub(text.len());
        text.extend_from_slice(bytes.get(..room).unwrap_or(bytes));
    });
    got != Ok(ReadOutcome::Open)
}

/// The output of a run as one line for the API: its last non-empty line, at most 200 bytes.
fn summary(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// An address for `host` without DNS: an IP literal (IPv6 with or without brackets),
/// `localhost`, or the first address `/etc/hosts` gives the name.
pub fn resolve(host: &str) -> Result<IpAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if let Some(ip) = lookup_hosts(&hosts, host) {
        return Ok(ip);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Err(format!(
        "cannot resolve {host:?}: not an IP address and not in /etc/hosts (pidone does not query DNS)"
    ))
}

/// The first address of `name` in the text of an `/etc/hosts` file.
fn lookup_hosts(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let ip = words.next()?.parse::<IpAddr>().ok()?;
        words.any(|w| w.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_exec_run_says_its_exit_once() {
        assert_eq!(exec_verdict(Exit::Code(1), String::new()), "exit code 1");
        assert_eq!(
            exec_verdict(Exit::Code(2), "refused".into()),
            "exit code 2: refused"
        );
        assert_eq!(exec_verdict(Exit::Signal(9), String::new()), "signal KILL");
        assert_eq!(exec_verdict(Exit::Code(0), "ok".into()), "ok");
        assert_eq!(exec_verdict(Exit::Code(0), String::new()), "exit code 0");
    }

    #[test]
    fn names_resolve_from_literals_and_hosts_only() {
        assert_eq!(resolve("127.0.0.1"), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(resolve("[::1]"), Ok("::1".parse().unwrap()));
        let hosts = "# comment\n127.0.0.1 localhost\n10.0.0.7  db db.local # the database\n::1 ip6-localhost\n";
        assert_eq!(
            lookup_hosts(hosts, "db.local"),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(lookup_hosts(hosts, "DB"), Some("10.0.0.7".parse().unwrap()));
        assert_eq!(lookup_hosts(hosts, "the"), None, "comments are not names");
        assert_eq!(lookup_hosts(hosts, "cache"), None);
        let err = resolve("no-such-host.invalid").unwrap_err();
        assert!(err.contains("does not query DNS"), "{err}");
    }

    #[test]
    fn summary_is_the_last_line_cut_short() {
        assert_eq!(summary(b"one\ntwo\n\n  "), "two");
        assert_eq!(summary(b""), "");
        let long = "x".repeat(300);
        assert_eq!(summary(long.as_bytes()).chars().count(), 201);
    }

    #[test]
    fn the_request_names_the_host_with_its_port_ipv6_in_brackets() {
        let conn = connect("::1", 8080, Some("/health?x=1")).expect("a socket");
        let request = String::from_utf8_lossy(&conn.request).into_owned();
        assert!(
            request.starts_with("GET /health?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{request}"
        );
        let conn = connect("127.0.0.1", 80, Some("/")).expect("a socket");
        let request = String::from_utf8_lossy(&conn.request).into_owned();
        assert!(
            request.contains("\r\nHost: 127.0.0.1\r\n"),
            "port 80 is implied: {request}"
        );
        assert!(request.ends_with("\r\n\r\n"), "{request}");
    }

    #[test]
    fn the_status_line_decides() {
        let mut conn = connect("127.0.0.1", 9, Some("/")).expect("a socket");
        conn.response = b"HTTP/1.1 204 No Content\r\n".to_vec();
        assert_eq!(
            conn.status_line(),
            Some(Progress::Done(true, "HTTP/1.1 204 No Content".into()))
        );
        conn.response = b"HTTP/1.0 503 Busy\r\nX: y\r\n".to_vec();
        assert_eq!(
            conn.status_line(),
            Some(Progress::Done(false, "HTTP/1.0 503 Busy".into()))
        );
        conn.response = b"HTTP/1.1 30".to_vec();
        assert_eq!(conn.status_line(), None, "incomplete");
        conn.response = b"HTTP/1.0 200 OK\n\nok\n".to_vec();
        assert_eq!(
            conn.status_line(),
            Some(Progress::Done(true, "HTTP/1.0 200 OK".into())),
            "a bare LF ends the line"
        );
        conn.response = b"SSH-2.0-OpenSSH\r\n".to_vec();
        assert!(matches!(conn.status_line(), Some(Progress::Done(false, _))));
    }
}
