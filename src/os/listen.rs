//! Sockets passed to pidone itself by its parent (systemd's socket activation: `LISTEN_FDS`
//! descriptors from fd 3, for the process `LISTEN_PID`), which pidone hands on to its main
//! program with `LISTEN_PID` rewritten to the program's pid, as catatonit does.

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
