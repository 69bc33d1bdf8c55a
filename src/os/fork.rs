//! Fork and exec without `std::process`, for the one child of the init-only build: std's
//! `Command` brings an environment map, `posix_spawn` and stdio plumbing, some 25 kB of a binary
//! whose budget is 400 kB. The contract is std's as pidone uses it (no environment, stdio or
//! directory change): the program is looked up on `PATH` by `execvp`, a hook runs in the child
//! first, and an error of either comes back to the parent through a close-on-exec pipe, the
//! failed child reaped.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, WaitOptions, waitpid};

/// Starts `argv` in a forked child that runs `prepare`, then execs; returns the child's pid, or
/// the error of `prepare` or of exec as the child reported it. Call it only while pidone has one
/// thread: `prepare` runs in the forked copy of pidone, and may allocate.
pub fn fork_exec(argv: &[OsString], prepare: impl FnOnce() -> io::Result<()>) -> io::Result<Pid> {
    let strings = (argv.iter())
        .map(|a| CString::new(a.as_bytes()).map_err(|_| io::Error::from(Errno::INVAL)))
        .collect::<io::Result<Vec<_>>>()?;
    let program = strings.first().ok_or(Errno::INVAL)?;
    let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let (reader, writer) = pipe_with(PipeFlags::CLOEXEC)?;
    // SAFETY: pidone has one thread, so the child is a consistent copy with no lock held; it
    // only runs `prepare` and exec, and leaves with `_exit`, never returning into pidone's code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let err = match prepare() {
            // SAFETY: `program` and every pointer are NUL-terminated strings built before the
            // fork, and the array ends with NULL.
            Ok(()) => unsafe {
                libc::execvp(program.as_ptr(), pointers.as_ptr());
                io::Error::last_os_error()
            },
            Err(err) => err,
        };
        let errno = err.raw_os_error().unwrap_or(libc::EINVAL);
        let _ = rustix::io::write(&writer, &errno.to_ne_bytes());
        // SAFETY: _exit ends the child at once, without running pidone's exit handlers.
        unsafe { libc::_exit(127) };
    }
    // A failed fork (-1: EAGAIN under a pids limit, ENOMEM) is an error, never a `Pid` (whose
    // constructor asserts a number not below 0).
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = Pid::from_raw(pid).ok_or_else(io::Error::last_os_error)?;
    drop(writer);
    let mut errno = [0u8; 4];
    loop {
        return match rustix::io::read(&reader, &mut errno) {
            // End of file: exec closed the pipe.
            Ok(0) => Ok(pid),
            Ok(_) => {
                // The child failed and exits: collect it here, as std does.
                while let Err(Errno::INTR) = waitpid(Some(pid), WaitOptions::empty()) {}
                Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
            }
            Err(Errno::INTR) => continue,
            // Cannot be told: the child is taken as started, and reaped like any other.
            Err(_) => Ok(pid),
        };
    }
}
