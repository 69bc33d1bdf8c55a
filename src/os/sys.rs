//! Thin wrappers over the few system calls that neither `std` nor rustix offers safely (signal
//! dispositions and masks, `kill(-1)`, arbitrary signal numbers, credentials (a child's, and
//! another user's for one open), descriptors at a
//! fixed number for the notify fd and for stdio at start-up, and, for the s6 helper commands,
//! `exec` in pidone's place and setting the environment before it). The other `unsafe` of
//! pidone: the fork, exec and `_exit` of `fork.rs`, the `setenv` and prepared `execve` of
//! `spawn.rs` (in the forked child), reading `argv` (main.rs), and taking `NOTIFY_SOCKET` out of
//! pidone's environment (supervisor/mod.rs).
//!
//! Everything here is async-signal-safe where it says so, because some of it runs in a forked
//! child between `fork` and `exec` (see [`SavedSignals::restore`]).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;

use rustix::process::Signal;

/// The highest signal number of this system (`SIGRTMAX`), read once from the C library.
pub fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// The lowest real-time signal the C library leaves to applications (`SIGRTMIN`).
pub fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// Converts a signal number into rustix's type, refusing numbers outside `1..=SIGRTMAX`.
pub fn signal(number: i32) -> Option<Signal> {
    if (1..=sigrtmax()).contains(&number) {
        // SAFETY: the number is a valid signal number of this system (checked above); rustix only
        // requires that for `from_raw_unchecked`, and the libc's reserved real-time signals are
        // never produced by pidone itself (they only come from configuration or forwarding).
        Some(unsafe { Signal::from_raw_unchecked(number) })
    } else {
        None
    }
}

/// The session of process `pid`, or None when pidone cannot name it: the process is gone, or its
/// session is 0 (the kernel's first session, kept by an init that never called `setsid`) or led
/// from outside pidone's PID namespace. rustix's `getsid` cannot hold a 0 (it asserts in debug
/// builds and makes an invalid `Pid` in release ones), so this calls the C library.
pub fn session_of(pid: rustix::process::Pid) -> Option<rustix::process::Pid> {
    // SAFETY: getsid takes a plain number and touches no memory of ours.
    let sid = unsafe { libc::getsid(pid.as_raw_nonzero().get()) };
    rustix::process::Pid::from_raw(sid.max(0))
}

/// Sends `sig` to every process pidone may signal except itself: `kill(-1, sig)`.
///
/// Only meaningful when pidone is PID 1 of its own PID namespace, where "every process" means
/// every process of the container. Never call it in subreaper mode.
pub fn kill_everything(sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(-1, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The signal mask and every signal disposition as pidone inherited them, captured before pidone
/// changes any of them, so that each child can be given exactly the same.
///
/// After `exec`, a disposition can only be `SIG_DFL` or `SIG_IGN` (handlers do not survive
/// `exec`), so restoring these is always safe in a child.
#[derive(Clone)]
pub struct SavedSignals {
    mask: libc::sigset_t,
    /// `actions[n]` is the disposition of signal `n`; index 0 is unused.
    actions: Vec<Option<libc::sigaction>>,
}

impl SavedSignals {
    /// Captures the current mask and dispositions of signals `1..=SIGRTMAX`.
    pub fn capture() -> io::Result<SavedSignals> {
        let mut mask = MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: a null `set` only reads the current mask into `oldset`, which points to valid,
        // writable memory of the right type.
        let rc =
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), mask.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigprocmask succeeded, so it filled the set.
        let mask = unsafe { mask.assume_init() };
        let mut actions = Vec::with_capacity(sigrtmax() as usize + 1);
        actions.push(None);
        for sig in 1..=sigrtmax() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                actions.push(None); // Their disposition can be read but never set.
                continue;
            }
            let mut old = MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: a null `act` only reads the disposition into `oldact`, valid writable memory.
            let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
            // The libc's reserved real-time signals refuse: keep None for them.
            // SAFETY: on success sigaction filled the struct.
            actions.push((rc == 0).then(|| unsafe { old.assume_init() }));
        }
        Ok(SavedSignals { mask, actions })
    }

    /// Puts back the captured dispositions and mask. Async-signal-safe: only `sigaction` and
    /// `sigprocmask`, no allocation, so it may run in a forked child before `exec`.
    pub fn restore(&self) -> io::Result<()> {
        for (sig, action) in self.actions.iter().enumerate() {
            let Some(action) = action else { continue };
            // SAFETY: `action` is a disposition read by sigaction itself; it is SIG_DFL or SIG_IGN
            // (see the type's doc), so installing it cannot point at a stale handler.
            let rc = unsafe { libc::sigaction(sig as i32, action, std::ptr::null_mut()) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: `self.mask` is a set filled by sigprocmask; a null `oldset` is allowed.
        let rc = unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Sets signal `sig` to `SIG_IGN` for pidone itself.
pub fn ignore(sig: i32) -> io::Result<()> {
    // SAFETY: installing SIG_IGN has no memory-safety preconditions.
    let old = unsafe { libc::signal(sig, libc::SIG_IGN) };
    if old == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets pidone's signal mask to exactly `sigs`, whatever mask it inherited, and returns a
/// non-blocking, close-on-exec signalfd that reads them: pidone receives the signals it forwards
/// there and every other signal normally. Children get the inherited mask back through
/// [`SavedSignals::restore`].
pub fn block_into_signalfd(sigs: &[i32]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigemptyset initialises the set it is given, which is valid writable memory.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    for &sig in sigs {
        // SAFETY: the set was initialised above; sigaddset only refuses a bad number (EINVAL).
        if unsafe { libc::sigaddset(set.as_mut_ptr(), sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: the set is initialised; a null `oldset` is allowed.
    let rc = unsafe { libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
    // SAFETY: -1 asks for a new descriptor; the set is initialised and only read.
    let fd = unsafe { libc::signalfd(-1, set.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Reads one batch of signals from signalfd `fd` into `sigs`: true when it read a full batch
/// (more may wait), false when none or fewer were waiting.
pub fn read_signals(
    fd: std::os::fd::BorrowedFd<'_>,
    sigs: &mut Vec<i32>,
) -> Result<bool, rustix::io::Errno> {
    const BATCH: usize = 16;
    const SIZE: usize = std::mem::size_of::<libc::signalfd_siginfo>();
    let mut buf = [0u8; BATCH * SIZE];
    let n = match rustix::io::read(fd, &mut buf) {
        Ok(n) => n,
        Err(rustix::io::Errno::AGAIN) => return Ok(false),
        Err(err) => return Err(err),
    };
    // The kernel writes whole records; ssi_signo is their first field (a u32).
    for record in buf.get(..n).unwrap_or_default().chunks_exact(SIZE) {
        let mut signo = [0u8; 4];
        signo.copy_from_slice(record.get(..4).unwrap_or(&[0; 4]));
        sigs.push(u32::from_ne_bytes(signo) as i32);
    }
    Ok(n == buf.len())
}

/// Drops to the given user in a forked child: supplementary groups, then gid, then uid (the
/// order in which each step still has the privilege it needs). Async-signal-safe.
pub fn set_credentials(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is a valid slice of gid_t-sized values for its whole length.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setgid and setuid have no memory-safety preconditions.
    if unsafe { libc::setgid(gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` with another user's file-system credentials (`setgroups`, `setfsgid`, `setfsuid`),
/// then puts pidone's own back, so that the kernel checks what `f` opens against that user:
/// moving the fsuid away from 0 also drops CAP_DAC_OVERRIDE and the other file capabilities
/// until it is restored. Only the calling thread changes; pidone has one. An error means `f`
/// did not run (the switch failed) or pidone's credentials could not be restored.
pub fn as_fs_user<R>(uid: u32, gid: u32, groups: &[u32], f: impl FnOnce() -> R) -> io::Result<R> {
    // SAFETY: a zero size only asks for the count; the null pointer is never written.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut saved = vec![0; usize::try_from(count).map_err(|_| io::Error::last_os_error())?];
    // SAFETY: `saved` has room for `count` gids, the size getgroups is told.
    let count = unsafe { libc::getgroups(count, saved.as_mut_ptr()) };
    saved.truncate(usize::try_from(count).map_err(|_| io::Error::last_os_error())?);
    // SAFETY: `groups` is a valid slice of gid_t-sized values for its whole length.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setfsgid and setfsuid have no memory-safety preconditions. They report no error
    // but return the previous value; -1 (never a valid id) changes nothing, so it reads back.
    let (old_gid, old_uid) = unsafe { (libc::setfsgid(gid), libc::setfsuid(uid)) };
    // SAFETY: as above.
    let now = unsafe { (libc::setfsgid(u32::MAX), libc::setfsuid(u32::MAX)) };
    let result = (now == (gid as i32, uid as i32)).then(f);
    // SAFETY: as above; pidone's own ids are always allowed back.
    unsafe {
        libc::setfsuid(old_uid as u32);
        libc::setfsgid(old_gid as u32);
    }
    // SAFETY: as for `groups` above.
    if unsafe { libc::setgroups(saved.len(), saved.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    result.ok_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied))
}

/// The uid of the process at the other end of a unix socket (`SO_PEERCRED`).
///
/// Read with libc rather than rustix: the kernel reports pid 0 for a peer outside pidone's PID
/// namespace (root on the host talking to a bind-mounted socket), which rustix's credentials type
/// cannot hold, and only the uid matters here.
pub fn peer_uid(socket: &impl std::os::fd::AsRawFd) -> io::Result<u32> {
    let mut cred = MaybeUninit::<libc::ucred>::zeroed();
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is valid writable memory of `len` bytes, the size getsockopt is told.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            cred.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getsockopt succeeded and filled the struct (it was zeroed before in any case).
    Ok(unsafe { cred.assume_init() }.uid)
}

/// One datagram from a socket with `SO_PASSCRED` set, without waiting (`recvmsg`,
/// `MSG_DONTWAIT`): its length (cut to `buf`) and the sender's `(pid, uid)` from
/// `SCM_CREDENTIALS`, when the message carries them.
///
/// Read with libc rather than rustix, as in [`peer_uid`]: the pid is 0 for a sender outside
/// pidone's PID namespace, which rustix's credentials type cannot hold.
pub fn recv_with_credentials(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<(i32, u32)>)> {
    use std::os::fd::AsRawFd;
    // u64s: aligned for a cmsghdr; room for one header and a ucred, and more.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data, and all zeros is an empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov`, `buf` and `control`, which outlive the call, with their
    // true sizes.
    let got = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    let len = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    let mut sender = None;
    let want = std::mem::size_of::<libc::ucred>() as u32;
    // SAFETY: the CMSG_* functions walk the headers the kernel wrote within `msg_controllen` of
    // `control`; a SCM_CREDENTIALS header whose length covers a ucred is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_CREDENTIALS
                && (*c).cmsg_len as usize >= libc::CMSG_LEN(want) as usize
            {
                let cred = libc::CMSG_DATA(c).cast::<libc::ucred>().read_unaligned();
                sender = Some((cred.pid, cred.uid));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((len, sender))
}

/// True when descriptor number `n` is open in this process.
pub fn fd_is_open(n: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table; a closed or invalid number gives EBADF.
    unsafe { libc::fcntl(n, libc::F_GETFD) != -1 }
}

/// A close-on-exec duplicate of `fd` at descriptor number `n`, which the caller checked is free.
pub fn dup_at(fd: std::os::fd::BorrowedFd<'_>, n: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: dup3 has no memory-safety preconditions; `n` is free (checked by the caller, and
    // pidone has one thread), so nothing else owns it.
    let got = unsafe { libc::dup3(fd.as_raw_fd(), n, libc::O_CLOEXEC) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `got` is a descriptor just created and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(got) })
}

/// In a forked child before exec: makes descriptor `fd` available as `n` across exec (`dup2`,
/// or clearing close-on-exec when it already is `n`). Async-signal-safe.
pub fn place_fd(fd: i32, n: i32) -> io::Result<()> {
    // SAFETY: dup2 and fcntl(F_SETFD) are raw system calls without memory-safety preconditions.
    let got = unsafe {
        if fd == n {
            libc::fcntl(n, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, n)
        }
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In a forked child before exec: makes each `(fd, n)` of `places` available as `n` across
/// exec, whatever the numbers (an `fd` may sit where another goes): each is first copied above
/// every target, then put in place. At most [`MAX_PLACES`]. Async-signal-safe (no allocation).
pub fn place_fds(places: &[(i32, i32)]) -> io::Result<()> {
    if places.len() > MAX_PLACES {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    let mut moved = [-1i32; MAX_PLACES];
    let above = places.iter().map(|&(_, n)| n).max().unwrap_or(0) + 1;
    for (slot, &(fd, n)) in moved.iter_mut().zip(places) {
        if fd == n {
            *slot = fd;
            continue;
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) has no memory-safety preconditions.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        *slot = copy;
    }
    for (&fd, &(_, n)) in moved.iter().zip(places) {
        place_fd(fd, n)?;
    }
    Ok(())
}

/// The most descriptors [`place_fds`] places.
pub const MAX_PLACES: usize = 64;

/// Opens `/dev/null` on any of fds 0, 1 and 2 that is closed, as std's own start-up would (pidone
/// has a C `main`, so it does not run it): else the first pipe or socket pidone opens would take
/// the number and a child would read or write it as stdio.
pub fn sanitize_stdio() {
    use std::os::fd::IntoRawFd;
    for n in 0..3 {
        if fd_is_open(n) {
            continue;
        }
        // The lowest free number is `n`: every lower one is open (checked in order).
        match rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => {
                let _ = fd.into_raw_fd();
            }
            Err(_) => return,
        }
    }
}

/// A new pseudo-terminal: its master (for pidone to read, close-on-exec) and its slave (for a
/// service's stdout and stderr), which is not made anyone's controlling terminal. Output
/// processing is off (`OPOST`), so the service's bytes reach the master as written (no `\n` →
/// `\r\n`); its size is 80×24, as a terminal emulator's default.
pub fn pty() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    use rustix::termios::{OptionalActions, OutputModes, Winsize};
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    let slave = rustix::fs::open(name.as_c_str(), flags, Mode::empty())?;
    let mut modes = rustix::termios::tcgetattr(&slave)?;
    modes.output_modes.remove(OutputModes::OPOST);
    rustix::termios::tcsetattr(&slave, OptionalActions::Now, &modes)?;
    let size = Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size)?;
    Ok((master, slave))
}

/// Replaces this process with `argv`, its first word the program: a path, or a name looked up
/// on `PATH` (`execvp`). Returns only on failure, with the error.
pub fn exec(argv: &[OsString]) -> io::Error {
    let args: Option<Vec<CString>> = argv
        .iter()
        .map(|w| CString::new(w.as_bytes()).ok())
        .collect();
    let Some(program) = args.as_ref().and_then(|a| a.first()) else {
        return io::Error::from(io::ErrorKind::InvalidInput);
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().flatten().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of pointers to NUL-terminated strings owned by
    // `args`, alive across the call; `program` is the first of them. execvp only returns on
    // failure.
    unsafe { libc::execvp(program.as_ptr(), ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Sets (`Some`) or removes (`None`) a variable of this process's environment. For the s6 helper
/// commands only, which run one thread and are about to exec: never in PID 1's loop.
pub fn set_env(name: &OsStr, value: Option<&OsStr>) {
    // SAFETY: the caller runs one thread (see above): nothing reads the environment meanwhile.
    unsafe {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
}
