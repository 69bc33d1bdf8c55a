//! Socket activation, both ways. The sockets pidone binds for its services (`listen`), kept
//! open across their restarts and passed to them as fds 3…; and the sockets passed to pidone
//! itself by its parent (systemd's `LISTEN_FDS` descriptors from fd 3, for the process
//! `LISTEN_PID`), which pidone hands on to its main program with `LISTEN_PID` rewritten to the
//! program's pid, as catatonit does.

// The init-only build keeps the second way only: it has no service to bind sockets for.
#[cfg(feature = "services")]
use std::io;
#[cfg(feature = "services")]
use std::os::fd::OwnedFd;

#[cfg(feature = "services")]
use rustix::net::{AddressFamily, SocketFlags, SocketType};

#[cfg(feature = "services")]
use crate::config::ListenAddr;

/// Binds (and for a stream socket, listens on) one `listen` address: IPv6 sockets IPv6-only,
/// TCP and UDP with `SO_REUSEADDR`; a stale socket file at a unix path is replaced, its
/// directory created, and the socket open to every user (mode 0666, systemd's default).
#[cfg(feature = "services")]
pub fn bind(addr: &ListenAddr) -> io::Result<OwnedFd> {
    let flags = SocketFlags::CLOEXEC;
    let (ip, kind) = match addr {
        ListenAddr::Tcp(ip) => (ip, SocketType::STREAM),
        ListenAddr::Udp(ip) => (ip, SocketType::DGRAM),
        ListenAddr::Unix(path) => {
            let fd =
                rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)?;
            match std::fs::symlink_metadata(path) {
                Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
                    std::fs::remove_file(path)?;
                }
                Ok(_) => return Err(io::Error::other("exists and is not a socket")),
                Err(_) => make_dirs(path)?,
            }
            rustix::net::bind(&fd, &rustix::net::SocketAddrUnix::new(path.as_path())?)?;
            rustix::fs::chmod(path.as_path(), rustix::fs::Mode::from_raw_mode(0o666))?;
            rustix::net::listen(&fd, BACKLOG)?;
            return Ok(fd);
        }
    };
    let family = match ip {
        std::net::SocketAddr::V4(_) => AddressFamily::INET,
        std::net::SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let fd = rustix::net::socket_with(family, kind, flags, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    if family == AddressFamily::INET6 {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, ip)?;
    if kind == SocketType::STREAM {
        rustix::net::listen(&fd, BACKLOG)?;
    }
    Ok(fd)
}

/// Creates the missing directories above `path` (mode 0755), as `mkdir -p` would.
#[cfg(feature = "services")]
pub(crate) fn make_dirs(path: &std::path::Path) -> io::Result<()> {
    let mut missing: Vec<&std::path::Path> = path.ancestors().skip(1).collect();
    missing.reverse();
    for dir in missing.into_iter().filter(|d| !d.as_os_str().is_empty()) {
        match rustix::fs::mkdir(dir, rustix::fs::Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The backlog of a stream socket: connections made while the service is down (or not started
/// yet) wait here for it.
#[cfg(feature = "services")]
const BACKLOG: i32 = 4096;

/// How many sockets pidone's parent passed to pidone (None: none, or they are for another
/// process); an error for a malformed `LISTEN_FDS` or a descriptor that is not open.
pub fn passed_sockets() -> Result<Option<i32>, String> {
    let Ok(pid) = std::env::var("LISTEN_PID") else {
        return Ok(None);
    };
    let me = rustix::process::getpid().as_raw_nonzero().get();
    if pid.parse::<i32>().ok() != Some(me) {
        log::debug!("LISTEN_PID={pid} is not pidone ({me}): its sockets are not pidone's");
        return Ok(None);
    }
    let fds = std::env::var("LISTEN_FDS").unwrap_or_default();
    let n = (fds.parse::<i32>().ok())
        .filter(|n| (0..=MAX).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={fds:?}: not a number of descriptors (0 to {MAX})"))?;
    if let Some(fd) = (3..3 + n).find(|&fd| !crate::os::sys::fd_is_open(fd)) {
        return Err(format!("LISTEN_FDS={n}, but fd {fd} is not open"));
    }
    Ok(Some(n))
}

/// The most sockets a parent may pass (systemd's own limit is lower).
const MAX: i32 = 4096;

/// This process's pid in decimal, NUL-terminated, in `buf`: the value of `LISTEN_PID` in a child
/// between fork and exec (no allocation).
pub fn own_pid(buf: &mut [u8; 12]) -> &[u8] {
    let pid = rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs();
    decimal(pid, buf)
}

/// Writes `n` in decimal into `buf` with a NUL after it (an environment value for `setenv`),
/// without allocating: for the child between fork and exec.
pub fn decimal(mut n: u32, buf: &mut [u8; 12]) -> &[u8] {
    // u32::MAX has 10 digits: with the NUL, 11 bytes of the 12.
    let mut at = buf.len() - 1;
    if let Some(end) = buf.get_mut(at) {
        *end = 0;
    }
    loop {
        at = at.saturating_sub(1);
        if let Some(digit) = buf.get_mut(at) {
            *digit = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            return buf.get(at..).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_a_nul_terminated_number() {
        let mut buf = [0; 12];
        assert_eq!(super::decimal(0, &mut buf), b"0\0");
        assert_eq!(super::decimal(4_194_304, &mut buf), b"4194304\0");
        assert_eq!(super::decimal(u32::MAX, &mut buf), b"4294967295\0");
    }
}

#[cfg(test)]
mod bind_tests {
    use super::*;

    #[test]
    fn tcp_on_both_families_udp_and_a_stale_unix_socket() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let v4: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("v4");
        let v6: std::net::SocketAddr = format!("[::1]:{port}").parse().expect("v6");
        let _a = bind(&ListenAddr::Tcp(v4)).expect("v4");
        // IPv6-only: the same port on both families (where the host has IPv6).
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            let _b = bind(&ListenAddr::Tcp(v6)).expect("v6 beside v4");
        }
        assert!(bind(&ListenAddr::Tcp(v4)).is_err(), "taken");
        let _u = bind(&ListenAddr::Udp(v4)).expect("udp");
        let dir = std::env::temp_dir().join(format!("pidone-listen-{}", std::process::id()));
        let path = dir.join("sub/app.sock");
        drop(bind(&ListenAddr::Unix(path.clone())).expect("a new socket, its directory made"));
        let again = bind(&ListenAddr::Unix(path.clone())).expect("the stale one replaced");
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions())
            .expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o666
        );
        drop(again);
        std::fs::write(dir.join("file"), "x").expect("write");
        let err = bind(&ListenAddr::Unix(dir.join("file"))).expect_err("not a socket");
        assert_eq!(err.to_string(), "exists and is not a socket");
        let _ = std::fs::remove_dir_all(dir);
    }
}
