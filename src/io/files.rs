//! Files pidone opens because the configuration names them: config files, env files and the
//! image's user database (read at start-up and again at every reload, inside the loop), and log
//! files (opened for a service at each of its starts). A service's user may be able to replace
//! any of them, so none may stall PID 1 or let it do what that user could not:
//!
//! - every open is non-blocking, so a FIFO in a file's place cannot freeze the loop;
//! - the descriptor must be a regular file (`fstat` on it, so there is no race), so a FIFO or a
//!   symlink to `/dev/zero` is refused, and reads stop at a size limit;
//! - a log file is opened without following a symlink in its last component and, for a service
//!   with a `user`, with that user's credentials ([`sys::as_fs_user`]), so root's privileges
//!   never reach a file the user could not open itself.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::os::sys;
use crate::os::users::Credentials;

/// Reads the whole text of a configuration-referenced file of at most `limit` bytes. Symlinks
/// are followed (Kubernetes mounts ConfigMaps as symlinks), but what they lead to must be a
/// regular file.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = regular(rustix::fs::open(path, flags, Mode::empty())?)?;
    let mut text = String::new();
    file.take(limit.saturating_add(1))
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "larger than the limit of {limit} bytes"
        )));
    }
    Ok(text)
}

/// Opens (creating it if missing) the file a service appends its output to, as `user` when it
/// has one. The descriptor handed back is blocking again, as a child expects its stdout to be.
pub fn open_for_service(path: &Path, user: Option<&Credentials>) -> io::Result<File> {
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::CLOEXEC;
    let open = || rustix::fs::open(path, flags, Mode::from_raw_mode(0o666));
    let opened = match user {
        Some(c) => sys::as_fs_user(c.uid, c.gid, &c.groups, open)?,
        None => open(),
    };
    let fd = opened.map_err(|e| match e {
        Errno::LOOP => io::Error::other("is a symbolic link"),
        // O_NONBLOCK's answer for a FIFO (or a device) that no one has open for reading.
        Errno::NXIO => io::Error::other("not a regular file"),
        e => e.into(),
    })?;
    let file = regular(fd)?;
    rustix::fs::fcntl_setfl(&file, OFlags::APPEND)?;
    Ok(file)
}

/// `fd` as a file, if it is a regular one.
fn regular(fd: OwnedFd) -> io::Result<File> {
    let kind = match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
        FileType::RegularFile => return Ok(File::from(fd)),
        FileType::Fifo => "a fifo",
        FileType::Directory => "a directory",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        _ => "of an unknown type",
    };
    Err(io::Error::other(format!("not a regular file ({kind})")))
}
