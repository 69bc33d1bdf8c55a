//! A service's `log_file` as pidone writes it: whole lines appended from the service's pipes,
//! rotated by size (`log_max_size`, `log_keep`), reopened when someone else moved or removed it,
//! and every failure (a missing or read-only directory, a full disk) counted and shown instead of
//! stopping the service.
//!
//! - **A line is never split across files, nor cut in one.** Lines are buffered per read of the
//!   service's pipe and written in one `write()`; rotation happens between two lines. A write cut
//!   short (the disk filled up in the middle) is truncated back to its last whole line, and the
//!   lines that did not fit are dropped and counted.
//! - **Rotation costs the loop its renames and no more:** `name.N-1` → `name.N` … `name` →
//!   `name.1` (the oldest falls off the end), then a new `name`. The file is opened (and the
//!   renames made) with the service's user's credentials, without following a symlink, as
//!   [`files::open_for_service`] does at each start of the service.
//! - **Faults heal themselves.** While the file cannot be opened or written, the service runs on,
//!   its lines are dropped and counted, and [`LogFile::error`] says why (status, health, metrics).
//!   The path is looked at again at most once a second when lines arrive, which also notices a file
//!   removed or renamed by someone else (logrotate): it is then reopened, created if missing.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::files;
use crate::os::sys;
use crate::os::users::Credentials;

/// How often the path is looked at again while lines arrive.
const RECHECK: Duration = Duration::from_secs(1);

/// `log_max_size` and `log_keep`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The size past which the file is rotated before the next line.
    pub max_size: u64,
    /// How many rotated files are kept (`name.1` the newest); 0 removes the file instead.
    pub keep: u32,
}

/// One service's log file, open or not.
pub struct LogFile {
    path: PathBuf,
    user: Option<Credentials>,
    rotation: Option<Rotation>,
    file: Option<File>,
    /// The size of the open file: where it was when opened, plus what pidone wrote.
    size: u64,
    /// The open file's device and inode, to notice that the path now names another file.
    ident: (u64, u64),
    /// Whole formatted lines waiting for [`LogFile::flush`], and how many.
    pending: Vec<u8>,
    pending_lines: u64,
    /// Why lines are not being written, while they are not.
    error: Option<String>,
    /// Lines dropped since the file was configured.
    dropped: u64,
    /// When the path is looked at again.
    check_at: Option<Instant>,
}

impl LogFile {
    /// A log file at `path`, written with `user`'s credentials; not open yet.
    pub fn new(path: PathBuf, user: Option<Credentials>, rotation: Option<Rotation>) -> LogFile {
        LogFile {
            path,
            user,
            rotation,
            file: None,
            size: 0,
            ident: (0, 0),
            pending: Vec::new(),
            pending_lines: 0,
            error: None,
            dropped: 0,
            check_at: None,
        }
    }

    /// Takes a changed configuration (a reload): the file is reopened at the next start.
    pub fn configure(
        &mut self,
        path: &Path,
        user: Option<Credentials>,
        rotation: Option<Rotation>,
    ) {
        if path != self.path {
            self.path = path.to_owned();
            self.file = None;
        }
        self.user = user;
        self.rotation = rotation;
    }

    /// Why lines are being dropped now (`log_file PATH: ...`), if they are.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Lines dropped because they could not be written.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// (Re)opens the path for appending, as at each start of the service; a failure is kept as
    /// the [error](LogFile::error) and logged once.
    pub fn open(&mut self) {
        self.file = None;
        match files::open_for_service(&self.path, self.user.as_ref()) {
            Ok(file) => {
                let stat = rustix::fs::fstat(&file);
                let (size, ident) =
                    stat.map_or((0, (0, 0)), |s| (s.st_size as u64, (s.st_dev, s.st_ino)));
                self.size = size;
                self.ident = ident;
                self.file = Some(file);
            }
            Err(err) => self.failed(&err),
        }
    }

    /// Queues one formatted line, the concatenation of `parts` (newline included), rotating first
    /// when it would take the file past `log_max_size`.
    pub fn push(&mut self, parts: &[&[u8]], now: Instant) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if let Some(r) = self.rotation {
            let held = self.size + self.pending.len() as u64;
            if held > 0 && held + len as u64 > r.max_size {
                self.flush(now);
                if self.file.is_some() {
                    self.rotate(r.keep);
                }
            }
        }
        for part in parts {
            self.pending.extend_from_slice(part);
        }
        self.pending_lines += 1;
    }

    /// Writes the queued lines in one write, or drops and counts them while that fails.
    pub fn flush(&mut self, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        if self.check_at.is_none_or(|at| now >= at) {
            self.check_at = Some(crate::core::service::later(now, RECHECK));
            self.recheck();
        }
        let (n, err) = match &self.file {
            None => (0, None),
            Some(file) => write_whole(file, &self.pending),
        };
        if n == self.pending.len() {
            self.size += n as u64;
            if self.error.take().is_some() {
                log::warn!("log_file {}: writing again", self.path.display());
            }
        } else {
            self.cut_short(n);
            if let Some(err) = err {
                self.failed(&io::Error::from(err));
            }
        }
        self.pending.clear();
        self.pending_lines = 0;
    }

    /// A write that stopped after `n` bytes (a full disk, or no file): the file is cut back to
    /// the last whole line written, and the rest counted as dropped.
    fn cut_short(&mut self, n: usize) {
        let head = self.pending.get(..n).unwrap_or_default();
        let whole = head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let lines = head.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(file) = &self.file
            && whole < n
        {
            let _ = rustix::fs::ftruncate(file, self.size + whole as u64);
        }
        self.size += whole as u64;
        self.dropped += self.pending_lines.saturating_sub(lines);
    }

    /// Keeps `err` as the reason lines are dropped, logging it when it is new.
    fn failed(&mut self, err: &io::Error) {
        let why = format!("log_file {}: {err}", self.path.display());
        if self.error.as_deref() != Some(why.as_str()) {
            log::warn!("{why}; dropping lines until it can be written");
            self.error = Some(why);
        }
    }

    /// Reopens the path when it is not open, or names another file than the one open (moved or
    /// removed by someone else).
    fn recheck(&mut self) {
        let same = self.file.as_ref().is_some_and(|_| {
            rustix::fs::lstat(&self.path).is_ok_and(|s| (s.st_dev, s.st_ino) == self.ident)
        });
        if !same {
            self.open();
        }
    }

    /// Moves `name` to `name.1` after shifting the older ones up (dropping `name.keep`), or
    /// removes it when none are kept; then opens a new `name`.
    fn rotate(&mut self, keep: u32) {
        self.file = None;
        let path = &self.path;
        let numbered = |i: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        let moves = || -> io::Result<()> {
            if keep == 0 {
                return std::fs::remove_file(path);
            }
            for i in (1..keep).rev() {
                match std::fs::rename(numbered(i), numbered(i + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(path, numbered(1))
        };
        let result = match &self.user {
            Some(c) => sys::as_fs_user(c.uid, c.gid, &c.groups, moves).and_then(|r| r),
            None => moves(),
        };
        if let Err(err) = result {
            let err = io::Error::other(format!("cannot rotate: {err}"));
            self.failed(&err);
        }
        self.open();
    }
}

/// Writes all of `bytes` to the regular file `file` (a signal may cut a write short): how much
/// was written, and why not all of it.
fn write_whole(file: &File, bytes: &[u8]) -> (usize, Option<Errno>) {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match rustix::io::write(file.as_fd(), rest) {
            Ok(0) => return (done, Some(Errno::NOSPC)),
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(err) => return (done, Some(err)),
        }
    }
    (done, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pidone-logfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// Writes lines `0..n` of 100 bytes each (newline included) through a log file rotated at
    /// 1000 bytes, keeping `keep`.
    fn write_lines(path: &Path, keep: u32, n: usize) {
        let rotation = Rotation {
            max_size: 1000,
            keep,
        };
        let mut file = LogFile::new(path.to_owned(), None, Some(rotation));
        file.open();
        let now = Instant::now();
        for i in 0..n {
            file.push(&[format!("{i:099}\n").as_bytes()], now);
            if i % 7 == 0 {
                file.flush(now);
            }
        }
        file.flush(now);
        assert_eq!(file.error(), None);
        assert_eq!(file.dropped(), 0);
    }

    fn numbers(path: &Path) -> Vec<usize> {
        let text = std::fs::read_to_string(path).expect("a rotated file");
        assert!(text.len() <= 1000, "{} bytes in {path:?}", text.len());
        text.lines()
            .map(|l| l.parse().expect("a whole line"))
            .collect()
    }

    #[test]
    fn rotation_keeps_the_newest_files_of_whole_lines() {
        let dir = scratch("keep");
        let path = dir.join("app.log");
        write_lines(&path, 2, 35);
        let all: Vec<usize> = ["app.log.2", "app.log.1", "app.log"]
            .iter()
            .flat_map(|name| numbers(&dir.join(name)))
            .collect();
        assert_eq!(
            all,
            (10..35).collect::<Vec<_>>(),
            "10 lines a file, the newest kept"
        );
        assert!(!dir.join("app.log.3").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeping_none_starts_the_file_again() {
        let dir = scratch("none");
        let path = dir.join("app.log");
        write_lines(&path, 0, 25);
        assert_eq!(numbers(&path), (20..25).collect::<Vec<_>>());
        assert!(!dir.join("app.log.1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
