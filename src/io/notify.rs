//! Readiness notifications from services, read in the poll loop.
//!
//! - **notify fd** (s6, dinit): the write end of a pipe sits at fd N in the service; a newline
//!   means ready, EOF before it means the start failed. pidone keeps reading (and ignoring) what
//!   comes after, so a service that writes twice never dies of SIGPIPE, and closes its end at EOF.
//! - **sd_notify** (systemd): a datagram socket at an abstract address (`@pidone/...`, no file
//!   needed in a read-only image) passed as `$NOTIFY_SOCKET`; messages are `KEY=VALUE` lines
//!   (`READY=1`, `STATUS=...`, `MAINPID=...`, `EXTEND_TIMEOUT_USEC=...`, `RELOADING=1`,
//!   `STOPPING=1`, `WATCHDOG=1`, `WATCHDOG=trigger`). Credentials are checked on every datagram: pidone
//!   hears root, the service's own user, and any process of the service's session (a daemon
//!   started as root that dropped to another user); anyone else is ignored, and so is any process
//!   outside pidone's PID namespace (pid 0 in its credentials), whatever its uid. The supervisor
//!   logs ignored datagrams in sums ([`crate::io::logsink::Tally`]), never one line each.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use rustix::process::Pid;

use crate::io::output::{ReadOutcome, read_available};

/// What a service said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notice {
    pub ready: bool,
    /// The notify fd reached EOF (or failed): nothing more will come.
    pub eof: bool,
    /// `STATUS=` text.
    pub status: Option<String>,
    /// `MAINPID=`.
    pub main_pid: Option<i32>,
    /// `EXTEND_TIMEOUT_USEC=`: more time asked to get ready, from now (the last one sent).
    pub extend: Option<Duration>,
    /// `RELOADING=1` (a later `READY=1` ends it) and `STOPPING=1`.
    pub reloading: bool,
    pub stopping: bool,
    /// `WATCHDOG=1`: alive; `WATCHDOG=trigger`: the service asks to be taken for hung.
    pub watchdog: bool,
    pub watchdog_trigger: bool,
    /// Datagrams ignored: not from the service (see [`Notifier::Socket`]).
    pub ignored: u64,
    /// The sender of the last datagram ignored, for the log.
    pub stranger: String,
}

/// A service's notification channel.
#[derive(Debug)]
pub enum Notifier {
    /// The read end of the notify fd's pipe.
    Pipe(OwnedFd),
    /// The sd_notify socket, its `$NOTIFY_SOCKET` value, and the uid allowed besides root.
    Socket {
        fd: OwnedFd,
        address: String,
        uid: u32,
    },
}

impl Notifier {
    /// A pipe for `ready.notify_fd`: returns pidone's read end and the end for the service.
    pub fn pipe() -> std::io::Result<(Notifier, OwnedFd)> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK)?;
        Ok((Notifier::Pipe(read), write))
    }

    /// An sd_notify socket at a fresh abstract address that only `uid` (and root) may use.
    pub fn socket(uid: u32) -> std::io::Result<Notifier> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let fd = datagram_socket()?;
        rustix::net::sockopt::set_socket_passcred(&fd, true)?;
        // Unique across pidones sharing a network namespace (a pod): pid, clock, counter.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "pidone/{}/{nanos:x}/{n}",
            rustix::process::getpid().as_raw_nonzero()
        );
        let addr = SocketAddrUnix::new_abstract_name(name.as_bytes())?;
        rustix::net::bind(&fd, &addr)?;
        Ok(Notifier::Socket {
            fd,
            address: format!("@{name}"),
            uid,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Notifier::Pipe(fd) | Notifier::Socket { fd, .. } => fd.as_fd(),
        }
    }

    /// Reads everything waiting; `session` is the service's session (its process's pid).
    pub fn read(&self, session: Option<Pid>) -> Notice {
        match self {
            Notifier::Pipe(fd) => read_pipe(fd),
            Notifier::Socket { fd, uid, .. } => read_socket(fd, *uid, session),
        }
    }
}

fn read_pipe(fd: &OwnedFd) -> Notice {
    let mut notice = Notice::default();
    let got = read_available(fd.as_fd(), |bytes| notice.ready |= bytes.contains(&b'\n'));
    notice.eof = match got {
        Ok(outcome) => outcome == ReadOutcome::Eof,
        Err(err) => {
            log::warn!("notify fd: {err}");
            true
        }
    };
    notice
}

fn read_socket(fd: &OwnedFd, uid: u32, session: Option<Pid>) -> Notice {
    let mut notice = Notice::default();
    let mut buf = [0u8; 4096];
    // Bounded per wake-up, like the pipe.
    for _ in 0..64 {
        let (len, sender) = match crate::os::sys::recv_with_credentials(fd.as_fd(), &mut buf) {
            Ok(got) => got,
            Err(err) => match Errno::from_io_error(&err) {
                Some(Errno::INTR) => continue,
                Some(Errno::AGAIN) => return notice,
                _ => {
                    log::warn!("sd_notify socket: {err}");
                    return notice;
                }
            },
        };
        let refused = match sender {
            Some((pid, from)) => refusal(pid, from, uid, session),
            None => Some("a sender without credentials".to_string()),
        };
        if let Some(who) = refused {
            notice.ignored += 1;
            notice.stranger = who;
            continue;
        }
        let text = String::from_utf8_lossy(buf.get(..len).unwrap_or_default());
        parse_message(&text, &mut notice);
    }
    notice
}

/// Who sent a datagram pidone does not hear, or None when it is heard: root, the service's
/// `uid`, or a process of the service's `session`. A sender outside pidone's PID namespace (pid
/// 0 in its credentials) is never heard, whatever its uid: the service and everything it starts
/// are inside.
fn refusal(pid: i32, from: u32, uid: u32, session: Option<Pid>) -> Option<String> {
    let Some(pid) = Pid::from_raw(pid.max(0)) else {
        return Some(format!("uid {from} outside pidone's PID namespace"));
    };
    let same_session = || session.is_some_and(|s| crate::os::sys::session_of(pid) == Some(s));
    if from == 0 || from == uid || same_session() {
        return None;
    }
    Some(format!("pid {} (uid {from})", pid.as_raw_nonzero()))
}

/// pidone's own sd_notify channel to whoever started it with `$NOTIFY_SOCKET` (podman
/// `--sdnotify=container`, a systemd unit, systemd-nspawn): an unbound datagram socket and the
/// address to send to.
#[derive(Debug)]
pub struct Upstream {
    fd: OwnedFd,
    addr: SocketAddrUnix,
}

impl Upstream {
    /// The channel to `address` (a path, or `@name` for an abstract one).
    pub fn new(address: &str) -> std::io::Result<Upstream> {
        let addr = match address.strip_prefix('@') {
            Some(name) => SocketAddrUnix::new_abstract_name(name.as_bytes())?,
            None => SocketAddrUnix::new(address)?,
        };
        let fd = datagram_socket()?;
        Ok(Upstream { fd, addr })
    }

    /// Sends `message` (`READY=1\nSTATUS=...`); a failure is logged, never more.
    pub fn send(&self, message: &str) {
        let flags = rustix::net::SendFlags::NOSIGNAL;
        if let Err(err) = rustix::net::sendto(&self.fd, message.as_bytes(), flags, &self.addr) {
            log::debug!("sd_notify to NOTIFY_SOCKET: {err}");
        }
    }
}

/// Applies one sd_notify datagram (newline-separated `KEY=VALUE`) to `notice`. Public only for
/// the fuzz target.
#[doc(hidden)]
pub fn parse_message(text: &str, notice: &mut Notice) {
    for line in text.lines() {
        match line.split_once('=') {
            Some(("READY", "1")) => {
                notice.ready = true;
                notice.reloading = false;
            }
            Some(("RELOADING", "1")) => notice.reloading = true,
            Some(("STOPPING", "1")) => notice.stopping = true,
            Some(("WATCHDOG", "1")) => notice.watchdog = true,
            Some(("WATCHDOG", "trigger")) => notice.watchdog_trigger = true,
            Some(("STATUS", status)) => notice.status = Some(status.to_string()),
            Some(("MAINPID", pid)) => notice.main_pid = pid.trim().parse().ok(),
            Some(("EXTEND_TIMEOUT_USEC", usec)) => match micros(usec) {
                Some(more) => notice.extend = Some(more),
                None => log::debug!("sd_notify: ignored {line:?}: not a number of microseconds"),
            },
            _ => log::trace!("sd_notify: ignored {line:?}"),
        }
    }
}

/// A number of microseconds as sd_notify writes it: decimal digits only (no sign, no space),
/// within u64 (584,000 years: `later` caps a deadline at a century); else None.
fn micros(text: &str) -> Option<Duration> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(Duration::from_micros)
}

/// A non-blocking, close-on-exec unix datagram socket: the sd_notify socket a service writes to,
/// and pidone's own to its manager's.
fn datagram_socket() -> std::io::Result<OwnedFd> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        flags,
        None,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_notify_messages_are_parsed() {
        let mut n = Notice::default();
        parse_message("STATUS=warming up\nMAINPID=42\n", &mut n);
        assert!(!n.ready);
        assert_eq!(n.status.as_deref(), Some("warming up"));
        assert_eq!(n.main_pid, Some(42));
        parse_message("READY=1\nSTATUS=serving\nWATCHDOG=1", &mut n);
        assert!(n.ready);
        assert_eq!(n.status.as_deref(), Some("serving"));
        let mut n = Notice::default();
        parse_message("READY=0\nREADY", &mut n);
        assert!(!n.ready);
    }

    #[test]
    fn extend_timeout_usec_is_a_bounded_number_of_microseconds() {
        let extend = |text: &str| {
            let mut n = Notice::default();
            parse_message(text, &mut n);
            n.extend
        };
        assert_eq!(
            extend("EXTEND_TIMEOUT_USEC=90000000"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            extend("EXTEND_TIMEOUT_USEC=5\nEXTEND_TIMEOUT_USEC=7"),
            Some(Duration::from_micros(7)),
            "the last one counts"
        );
        assert_eq!(
            extend("EXTEND_TIMEOUT_USEC=18446744073709551615"),
            Some(Duration::from_micros(u64::MAX))
        );
        for bad in [
            "",
            "-1",
            "+5",
            " 5",
            "5s",
            "18446744073709551616",
            "1e6",
            "0x10",
        ] {
            assert_eq!(
                extend(&format!("EXTEND_TIMEOUT_USEC={bad}")),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_notify_pipe_needs_a_newline_and_eof_first_fails() {
        let (notifier, write) = Notifier::pipe().expect("pipe");
        assert_eq!(notifier.read(None), Notice::default());
        rustix::io::write(&write, b"almost").expect("write");
        assert!(!notifier.read(None).ready);
        rustix::io::write(&write, b" there\n").expect("write");
        assert!(notifier.read(None).ready);
        drop(write);
        let n = notifier.read(None);
        assert!(n.eof && !n.ready, "EOF after the line is only the end");
        let (notifier, write) = Notifier::pipe().expect("pipe");
        drop(write);
        let n = notifier.read(None);
        assert!(n.eof && !n.ready);
    }

    #[test]
    fn a_sender_outside_the_pid_namespace_is_never_heard() {
        let me = rustix::process::getpid();
        let outside = refusal(0, 0, 0, None).expect("pid 0 refused, even as root");
        assert!(
            outside.contains("outside pidone's PID namespace"),
            "{outside}"
        );
        assert_eq!(refusal(me.as_raw_nonzero().get(), 0, 1000, None), None);
        assert_eq!(refusal(me.as_raw_nonzero().get(), 1000, 1000, None), None);
        let other = refusal(me.as_raw_nonzero().get(), 7, 1000, None).expect("a stranger");
        assert!(other.contains("(uid 7)"), "{other}");
    }

    #[test]
    fn a_process_of_the_services_session_is_heard_whatever_its_uid() {
        // A process that leads a session of its own: the service, as pidone starts it.
        let mut leader = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("setsid sleep");
        let pid = Pid::from_raw(leader.id() as i32).expect("a pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::os::sys::session_of(pid) != Some(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let raw = pid.as_raw_nonzero().get();
        let heard = refusal(raw, 7, 1000, Some(pid));
        let elsewhere = refusal(raw, 7, 1000, Some(rustix::process::getpid()));
        let _ = leader.kill();
        let _ = leader.wait();
        assert_eq!(heard, None, "its own session");
        assert!(elsewhere.is_some(), "another session is a stranger's");
    }

    #[test]
    fn a_session_pidone_cannot_name_is_nobodys() {
        // The test's own session may be 0 or led from outside its PID namespace (an init that
        // never called setsid): that must be a None, never a panic or an invalid pid.
        let me = rustix::process::getpid();
        let session = crate::os::sys::session_of(me);
        assert!(session.is_none_or(|s| s.as_raw_nonzero().get() > 0));
        assert_eq!(
            crate::os::sys::session_of(Pid::from_raw(i32::MAX).expect("pid")),
            None
        );
    }

    #[test]
    fn the_socket_hears_its_own_user() {
        let me = rustix::process::getuid().as_raw();
        let notifier = Notifier::socket(me).expect("socket");
        let Notifier::Socket { address, .. } = &notifier else {
            panic!("a socket");
        };
        let name = address.trim_start_matches('@');
        let addr = SocketAddrUnix::new_abstract_name(name.as_bytes()).expect("address");
        let client = rustix::net::socket(AddressFamily::UNIX, SocketType::DGRAM, None)
            .expect("client socket");
        rustix::net::sendto(
            &client,
            b"READY=1\nSTATUS=up",
            rustix::net::SendFlags::empty(),
            &addr,
        )
        .expect("sendto");
        let n = notifier.read(None);
        assert!(n.ready);
        assert_eq!(n.status.as_deref(), Some("up"));
    }
}
