//! cgroup v2: whether pidone can manage its cgroup, and the tree it then builds under
//! `/sys/fs/cgroup`: pidone itself in `init` (a cgroup with children may hold no process),
//! each service in `services/NAME` with its limits, joined by the child between fork and exec,
//! killed whole through `cgroup.kill`.
//!
//! pidone manages cgroups only at the root of a cgroup namespace (`0::/` in /proc/self/cgroup,
//! or `0::/init` once it moved itself) with a writable cgroup2 file system at /sys/fs/cgroup:
//! what a container gets with a private cgroup namespace and a writable mount. Writes to
//! cgroupfs never block.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

const ROOT: &str = "/sys/fs/cgroup";

/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_MAGIC: i64 = 0x6367_7270;

/// The controllers pidone can enable for services, or why it cannot manage cgroups.
pub fn detect() -> Result<Vec<String>, String> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"));
    if !matches!(path, Some("/" | "/init")) {
        let at = path.unwrap_or("nowhere in cgroup v2");
        return Err(format!(
            "pidone is not at the root of a cgroup namespace ({at})"
        ));
    }
    let fs = rustix::fs::statfs(ROOT).map_err(|e| format!("{ROOT}: {e}"))?;
    if fs.f_type as i64 != CGROUP2_MAGIC {
        return Err(format!("{ROOT} is not a cgroup2 file system"));
    }
    let control = format!("{ROOT}/cgroup.subtree_control");
    rustix::fs::access(control.as_str(), rustix::fs::Access::WRITE_OK)
        .map_err(|e| format!("{control}: {e}"))?;
    let list = std::fs::read_to_string(format!("{ROOT}/cgroup.controllers"))
        .map_err(|e| format!("{ROOT}/cgroup.controllers: {e}"))?;
    Ok(list.split_whitespace().map(str::to_owned).collect())
}

/// The services' cgroups, once pidone moved itself to `init` and enabled `controllers` below
/// the root.
pub struct Tree {
    services: OwnedFd,
}

impl Tree {
    /// Builds the tree (see the module documentation). Idempotent, so a pidone started again in
    /// the same namespace finds it in place.
    pub fn set_up(controllers: &[String]) -> io::Result<Tree> {
        let root = open_dir(rustix::fs::CWD, ROOT)?;
        make_dir(&root, "init")?;
        let init = open_dir(&root, "init")?;
        let me = rustix::process::getpid().as_raw_nonzero().to_string();
        write_at(&init, "cgroup.procs", &me)?;
        let enable: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
        let enable = enable.join(" ");
        if !enable.is_empty() {
            write_at(&root, "cgroup.subtree_control", &enable)?;
        }
        make_dir(&root, "services")?;
        let services = open_dir(&root, "services")?;
        if !enable.is_empty() {
            write_at(&services, "cgroup.subtree_control", &enable)?;
        }
        Ok(Tree { services })
    }

    /// The directory of service `name`'s cgroup, made if missing, with `limits` (interface
    /// file, value) written: for the child to join.
    pub fn prepare(&self, name: &str, limits: &[(&str, String)]) -> io::Result<OwnedFd> {
        if !own(name) {
            return Err(io::Error::other(format!("no cgroup can be named {name:?}")));
        }
        make_dir(&self.services, name)?;
        let dir = open_dir(&self.services, name)?;
        for (file, value) in limits {
            write_at(&dir, file, value).map_err(|e| io::Error::other(format!("{file}: {e}")))?;
        }
        Ok(dir)
    }

    /// Kills every process in service `name`'s cgroup; one that does not exist has none.
    pub fn kill(&self, name: &str) -> io::Result<()> {
        if !own(name) {
            return Ok(());
        }
        match write_at(&self.services, &format!("{name}/cgroup.kill"), "1") {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other,
        }
    }

    /// Removes service `name`'s cgroup (a reload removed the service). One still holding a
    /// dying process cannot go yet (`EBUSY`): the caller only logs that.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        if !own(name) {
            return Ok(());
        }
        match rustix::fs::unlinkat(&self.services, name, rustix::fs::AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Follows the OOM kills of service `name`'s cgroup from now on (its main process starts).
    pub fn watch(&self, name: &str) -> OomWatch {
        let events = own(name).then(|| {
            let path = format!("{name}/memory.events");
            let flags = OFlags::RDONLY | OFlags::CLOEXEC;
            rustix::fs::openat(&self.services, path.as_str(), flags, Mode::empty()).ok()
        });
        let mut watch = OomWatch {
            events: events.flatten(),
            ..OomWatch::default()
        };
        watch.news();
        watch.start = watch.seen;
        watch
    }
}

/// The OOM kills in one service's cgroup, read from its `memory.events` (`oom_kill`), held open
/// while the main process runs. The kernel marks the file for poll (`POLLPRI`) when a count in
/// it changes, at most every 10 ms; reading it from the start takes the mark off. Without the
/// memory controller there is no such file and nothing to follow.
#[derive(Debug, Default)]
pub struct OomWatch {
    events: Option<OwnedFd>,
    /// The count when the main process started, and at the last reading.
    start: u64,
    seen: u64,
}

impl OomWatch {
    /// The file to poll for `POLLPRI`, while there is one.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.events.as_ref().map(AsFd::as_fd)
    }

    /// Reads the count: how many kills since the last reading. A file that cannot be read any
    /// more (its cgroup removed) is closed, since poll would find it ready for ever.
    pub fn news(&mut self) -> u64 {
        let Some(fd) = &self.events else { return 0 };
        let mut buf = [0u8; 512];
        let read = rustix::io::pread(fd, &mut buf, 0).ok();
        let text = read.and_then(|n| std::str::from_utf8(buf.get(..n)?).ok());
        let count = text.and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        });
        let Some(count) = count else {
            self.events = None;
            return 0;
        };
        let new = count.saturating_sub(self.seen);
        self.seen = self.seen.max(count);
        new
    }

    /// Whether the OOM killer killed in the cgroup since the main process started.
    pub fn since_start(&self) -> bool {
        self.seen > self.start
    }
}

/// Whether `name` can be a directory of its own: service names may be `.` or `..`.
fn own(name: &str) -> bool {
    !name.trim_matches('.').is_empty()
}

/// In the child, between fork and exec: moves the calling process into the cgroup `dir`.
/// Only raw system calls on memory of the parent.
pub fn join(dir: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        c"cgroup.procs",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::io::write(&fd, b"0")?;
    Ok(())
}

fn open_dir<Fd: AsFd>(at: Fd, path: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(at, path, flags, Mode::empty())?)
}

fn make_dir(at: &OwnedFd, name: &str) -> io::Result<()> {
    match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn write_at(at: &OwnedFd, file: &str, value: &str) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(at, file, flags, Mode::empty())?;
    rustix::io::write(&fd, value.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_counted_from_memory_events_once_each() {
        let dir = std::env::temp_dir().join(format!("pidone-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("db")).expect("mkdir");
        let events = |kills: u32| {
            let text =
                format!("low 0\nhigh 3\nmax 12\noom 2\noom_kill {kills}\noom_group_kill 0\n");
            std::fs::write(dir.join("db/memory.events"), text).expect("write");
        };
        events(2);
        let path = dir.to_str().expect("UTF-8");
        let tree = Tree {
            services: open_dir(rustix::fs::CWD, path).expect("open"),
        };
        let mut db = tree.watch("db");
        assert!(db.fd().is_some());
        assert_eq!(
            (db.news(), db.since_start()),
            (0, false),
            "kills before the start"
        );
        events(3);
        assert_eq!((db.news(), db.since_start()), (1, true), "a child killed");
        assert_eq!(db.news(), 0, "counted once");
        events(5);
        assert_eq!(db.news(), 2);
        std::fs::write(dir.join("db/memory.events"), "low 0\n").expect("write");
        assert_eq!(db.news(), 0);
        assert!(
            db.fd().is_none(),
            "a file without the count is no longer polled"
        );
        let mut web = tree.watch("web");
        assert!(web.fd().is_none(), "no memory controller, no file");
        assert_eq!((web.news(), web.since_start()), (0, false));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
