//! Signal delivery through a signalfd, and what each signal means to pidone.
//!
//! pidone blocks every signal it may forward, plus `SIGCHLD`, and reads them from a signalfd
//! whose descriptor sits in the poll set: a delivery is one `read`, with no handler, no self-pipe
//! and no interrupted `poll` (the self-pipe cost a `sendto` in the handler, two `recvfrom` and an
//! `EINTR` per wake-up; see docs/bench.md). [`Signals::pending`] drains them. Two deliveries of
//! the same signal between two drains count once, as with ordinary (non-queued) POSIX signals.
//! A blocked signal is queued even for PID 1, whose signals at their default action the kernel
//! would otherwise drop. Children get the mask and dispositions pidone inherited back before
//! `exec` ([`SavedSignals::restore`]).
//!
//! Three signals are ignored by pidone itself instead: `SIGTTIN` and `SIGTTOU`, so that pidone is
//! never stopped for touching a terminal it handed to its child, and `SIGPIPE`, so that a closed
//! stdout turns into an `EPIPE` error pidone handles rather than its death. Faults (`SIGSEGV`,
//! `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`, `SIGSYS`) stay unblocked at their default action: they
//! only ever mean a bug in pidone. `SIGKILL` and `SIGSTOP` cannot be caught.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;

use crate::os::sys::{self, SavedSignals};

/// Most signalfd reads in one drain (16 signals each): a flood of queued real-time signals is
/// read over several turns, with the loop's other work between them.
const READS_PER_DRAIN: usize = 64;

/// Signals pidone leaves at their default action (faults), besides the uncatchable ones.
const FAULTS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// Signals pidone ignores for itself; children get their inherited disposition back.
const IGNORED: [i32; 3] = [libc::SIGTTIN, libc::SIGTTOU, libc::SIGPIPE];

/// True for the signals pidone forwards to its child (every catchable, non-fault signal except
/// `SIGCHLD` and the ignored ones).
pub fn is_forwardable(sig: i32) -> bool {
    let reserved = sig > 31 && sig < sys::sigrtmin();
    !(sig < 1
        || sig > sys::sigrtmax()
        || reserved
        || sig == libc::SIGKILL
        || sig == libc::SIGSTOP
        || sig == libc::SIGCHLD
        || FAULTS.contains(&sig)
        || IGNORED.contains(&sig))
}

/// The signalfd and the dispositions and mask pidone inherited.
pub struct Signals {
    fd: OwnedFd,
    saved: SavedSignals,
}

impl Signals {
    /// Captures the inherited mask and dispositions, then takes over: ignores [`IGNORED`], blocks
    /// exactly `SIGCHLD` and every forwardable signal (everything else unblocked) and reads those
    /// from a signalfd. Call it once, at start-up, before any child exists.
    pub fn install() -> io::Result<Signals> {
        let saved = SavedSignals::capture()?;
        for sig in IGNORED {
            sys::ignore(sig)?;
        }
        let caught: Vec<i32> = (1..=sys::sigrtmax())
            .filter(|&s| is_forwardable(s) || s == libc::SIGCHLD)
            .collect();
        let fd = sys::block_into_signalfd(&caught)?;
        Ok(Signals { fd, saved })
    }

    /// The signalfd, for the poll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the signals received since the last call, in ascending order, each once. Never
    /// blocks; reads at most [`READS_PER_DRAIN`] batches (poll says when more wait).
    pub fn pending(&mut self) -> Vec<i32> {
        let mut sigs = Vec::new();
        for _ in 0..READS_PER_DRAIN {
            match sys::read_signals(self.fd.as_fd(), &mut sigs) {
                Ok(true) => {}
                Ok(false) => break,
                Err(Errno::INTR) => {}
                Err(err) => {
                    log::warn!("reading the signalfd: {err}");
                    break;
                }
            }
        }
        // Each once, in ascending order, through a set of bits rather than a sort (the sort's code
        // weighs more than the init-only build can spare): signal numbers go up to 64.
        let mut set = 0u128;
        for &sig in &sigs {
            set |= u32::try_from(sig).map_or(0, |n| 1u128.checked_shl(n).unwrap_or(0));
        }
        (1..128).filter(|&n| set & (1u128 << n) != 0).collect()
    }

    /// The dispositions and mask pidone inherited, to restore in each child.
    pub fn saved(&self) -> &SavedSignals {
        &self.saved
    }
}

/// Logs how forwarding `sig` to the main program went (`None`: it has exited). True when there
/// was no program to forward a TERM or INT to while `stopping`: what is left is then killed.
pub fn forwarded(sig: i32, result: Option<io::Result<()>>, stopping: bool) -> bool {
    match result {
        Some(Ok(())) => log::debug!("forwarded {} to the child", name(sig)),
        Some(Err(err)) if Errno::from_io_error(&err) == Some(Errno::SRCH) => {}
        Some(Err(err)) => log::warn!("forwarding {}: {err}", name(sig)),
        None if stopping && (sig == libc::SIGTERM || sig == libc::SIGINT) => {
            log::debug!("{} while stopping: killing what is left", name(sig));
            return true;
        }
        None => log::debug!("ignored {}: no program to forward it to", name(sig)),
    }
    false
}

/// Parses a signal given by name (`TERM`, `SIGTERM`, `term`, `RTMIN+2`) or number (`15`). A
/// real-time offset is a small unsigned number, so `RTMAX--5` is refused, not signal 69.
pub fn parse(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=sys::sigrtmax()).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let offset = if rest.is_empty() {
            0
        } else {
            i32::from(rest.strip_prefix('+')?.parse::<u8>().ok()?)
        };
        let n = sys::sigrtmin() + offset;
        return (n <= sys::sigrtmax()).then_some(n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let offset = if rest.is_empty() {
            0
        } else {
            i32::from(rest.strip_prefix('-')?.parse::<u8>().ok()?)
        };
        let n = sys::sigrtmax() - offset;
        return (n >= sys::sigrtmin()).then_some(n);
    }
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The name of signal `sig` without the `SIG` prefix (`TERM`, `RTMIN+2`), for messages.
pub fn name(sig: i32) -> String {
    if let Some((n, _)) = NAMES.iter().find(|(_, s)| *s == sig) {
        return (*n).to_string();
    }
    if sig >= sys::sigrtmin() && sig <= sys::sigrtmax() {
        return format!("RTMIN+{}", sig - sys::sigrtmin());
    }
    sig.to_string()
}

const NAMES: [(&str, i32); 32] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("TERM"), Some(libc::SIGTERM));
        assert_eq!(parse("sigterm"), Some(libc::SIGTERM));
        assert_eq!(parse("SIGHUP"), Some(libc::SIGHUP));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("RTMIN+2"), Some(sys::sigrtmin() + 2));
        assert_eq!(parse("SIGRTMAX"), Some(sys::sigrtmax()));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("999"), None);
        assert_eq!(parse("TERMINATE"), None);
        assert_eq!(parse("RTMIN+999"), None);
    }

    #[test]
    fn realtime_offsets_stay_in_the_realtime_range() {
        assert_eq!(parse("RTMAX--5"), None);
        assert_eq!(parse("RTMIN+-3"), None);
        assert_eq!(parse("RTMIN+2147483647"), None);
        assert_eq!(parse("RTMAX-2147483647"), None);
    }

    #[test]
    fn names_round_trip() {
        for sig in 1..=sys::sigrtmax() {
            if sig > 31 && sig < sys::sigrtmin() {
                continue;
            }
            assert_eq!(parse(&name(sig)), Some(sig), "signal {sig}");
        }
    }

    #[test]
    fn forwards_everything_but_chld_faults_and_job_control_io() {
        for sig in [
            libc::SIGHUP,
            libc::SIGTERM,
            libc::SIGWINCH,
            libc::SIGCONT,
            libc::SIGTSTP,
        ] {
            assert!(is_forwardable(sig), "{}", name(sig));
        }
        assert!(is_forwardable(sys::sigrtmin()));
        assert!(is_forwardable(sys::sigrtmax()));
        for sig in [
            libc::SIGCHLD,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGTTOU,
        ] {
            assert!(!is_forwardable(sig), "{}", name(sig));
        }
    }
}
