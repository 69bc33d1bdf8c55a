//! A service process's controls beyond its user: resource limits, nice value, OOM score,
//! umask, capabilities and `no_new_privs`, applied by `spawn` between fork and exec.
//!
//! [`Controls`] is plain data built at load, so the child allocates nothing: it only walks it
//! and makes raw system calls. A setting that cannot be applied fails the start; the step that
//! failed travels back to the parent inside the error code that std's spawn already carries
//! (see [`failed`] and [`describe`]), so the reason names it: `setrlimit NOFILE: Operation not
//! permitted`, never a service silently running without it.

use std::io;

use rustix::fs::{Mode, OFlags};
use rustix::process::{Resource, Rlimit};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// One resource limit: `None` is unlimited (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// What a service's process gets besides its user and environment. The default changes
/// nothing: the service gets what pidone has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// `setrlimit` for each, in order.
    pub rlimits: Vec<Limit>,
    /// `setpriority(PRIO_PROCESS, 0, nice)`.
    pub nice: Option<i32>,
    /// Written to `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// The file mode creation mask.
    pub umask: Option<u32>,
    /// The capabilities the service keeps (a bit per `CAP_*` number); every other one leaves
    /// the bounding, effective, permitted and inheritable sets. For a service with a non-root
    /// user they are raised in the ambient set, so they survive the exec.
    pub capabilities: Option<u64>,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`: exec can never grant more (setuid binaries, file caps).
    pub no_new_privs: bool,
}

/// The `RLIMIT_*` resources by their lower-case names, as the configuration and messages name
/// them.
pub const RESOURCES: &[(&str, Resource)] = &[
    ("as", Resource::As),
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

/// The capabilities by name (without `CAP_`), at their `CAP_*` number.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The upper-case name of a resource (`NOFILE`), for messages.
pub fn resource_name(resource: Resource) -> String {
    let name = RESOURCES.iter().find(|(_, r)| *r == resource);
    name.map_or("?", |(n, _)| n).to_ascii_uppercase()
}

/// The steps that can fail, numbered for the error code (see [`failed`]); the rlimit steps are
/// numbered by `RLIMIT_*` value below [`STEP_NICE`].
const STEP_NICE: i32 = 32;
const STEP_OOM: i32 = 33;
const STEP_BOUNDING: i32 = 34;
const STEP_KEEPCAPS: i32 = 35;
const STEP_CAPSET: i32 = 36;
const STEP_AMBIENT: i32 = 37;
const STEP_NO_NEW_PRIVS: i32 = 38;
const STEP_CGROUP: i32 = 39;

/// Errno values are below this; a step is encoded above it.
const STEP_UNIT: i32 = 1 << 12;

/// The error of `step` failing with `err`, as one raw OS error code: std's spawn hands the
/// code of a `pre_exec` error to the parent whole, so the parent learns both.
fn failed(step: i32, err: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error((step + 1) * STEP_UNIT + err.raw_os_error())
}

/// The reason for an error made by [`failed`] (`setrlimit NOFILE: Operation not permitted`),
/// or `None` for any other error.
pub fn describe(err: &io::Error) -> Option<String> {
    let code = err.raw_os_error().filter(|c| *c >= STEP_UNIT)?;
    let (step, errno) = (code / STEP_UNIT - 1, code % STEP_UNIT);
    let what = match step {
        STEP_NICE => "setpriority".to_owned(),
        STEP_OOM => "oom_score_adj".to_owned(),
        STEP_BOUNDING => "capabilities (bounding set)".to_owned(),
        STEP_KEEPCAPS => "capabilities (keepcaps)".to_owned(),
        STEP_CAPSET => "capabilities (capset)".to_owned(),
        STEP_AMBIENT => "capabilities (ambient set)".to_owned(),
        STEP_NO_NEW_PRIVS => "no_new_privs".to_owned(),
        STEP_CGROUP => "joining its cgroup".to_owned(),
        n => match RESOURCES.iter().find(|(_, r)| *r as i32 == n) {
            Some((_, r)) => format!("setrlimit {}", resource_name(*r)),
            None => return None,
        },
    };
    let text = io::Error::from_raw_os_error(errno).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    Some(format!("{what}: {text}"))
}

/// In the child: joins the service's cgroup (see [`crate::os::cgroup::join`]).
pub fn join_cgroup(dir: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    crate::os::cgroup::join(dir).map_err(|e| failed(STEP_CGROUP, e))
}

impl Controls {
    /// In the child, before the user switch (raising limits, lowering nice or the OOM score
    /// and dropping from the bounding set need root's capabilities): everything but what must
    /// follow the switch. `switching` says whether a non-root user follows.
    pub fn before_user(&self, switching: bool) -> io::Result<()> {
        for limit in &self.rlimits {
            let new = Rlimit {
                current: limit.soft,
                maximum: limit.hard,
            };
            rustix::process::setrlimit(limit.resource, new)
                .map_err(|e| failed(limit.resource as i32, e))?;
        }
        if let Some(nice) = self.nice {
            rustix::process::setpriority_process(None, nice).map_err(|e| failed(STEP_NICE, e))?;
        }
        if let Some(score) = self.oom_score_adj {
            write_oom_score(score).map_err(|e| failed(STEP_OOM, e))?;
        }
        if let Some(mask) = self.umask {
            rustix::process::umask(Mode::from_raw_mode(mask));
        }
        if let Some(keep) = self.capabilities {
            drop_bounding(keep).map_err(|e| failed(STEP_BOUNDING, e))?;
            if switching {
                rustix::thread::set_keep_capabilities(true)
                    .map_err(|e| failed(STEP_KEEPCAPS, e))?;
            }
        }
        Ok(())
    }

    /// In the child, after the user switch: the capability sets (ambient ones for a non-root
    /// user, when `switched`), then `no_new_privs`.
    pub fn after_user(&self, switched: bool) -> io::Result<()> {
        if let Some(keep) = self.capabilities {
            let set = CapabilitySet::from_bits_retain(keep);
            let sets = CapabilitySets {
                effective: set,
                permitted: set,
                inheritable: set,
            };
            rustix::thread::set_capabilities(None, sets).map_err(|e| failed(STEP_CAPSET, e))?;
            if switched {
                for bit in (0..64).filter(|b| keep & (1 << b) != 0) {
                    let cap = CapabilitySet::from_bits_retain(1 << bit);
                    rustix::thread::configure_capability_in_ambient_set(cap, true)
                        .map_err(|e| failed(STEP_AMBIENT, e))?;
                }
            }
        }
        if self.no_new_privs {
            rustix::thread::set_no_new_privs(true).map_err(|e| failed(STEP_NO_NEW_PRIVS, e))?;
        }
        Ok(())
    }
}

/// Drops every capability but `keep` from the bounding set, up to the last one this kernel
/// knows (the first `EINVAL`).
fn drop_bounding(keep: u64) -> rustix::io::Result<()> {
    for bit in (0..64).filter(|b| keep & (1 << b) == 0) {
        let cap = CapabilitySet::from_bits_retain(1 << bit);
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `score` to `/proc/self/oom_score_adj`.
fn write_oom_score(score: i32) -> rustix::io::Result<()> {
    let mut buf = [0u8; 12];
    let fd = rustix::fs::open(
        c"/proc/self/oom_score_adj",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::io::write(&fd, decimal(score, &mut buf))?;
    Ok(())
}

/// `n` in decimal, formatted in `buf` (the child may not allocate).
fn decimal(n: i32, buf: &mut [u8; 12]) -> &[u8] {
    let mut rest = n.unsigned_abs();
    let mut at = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
        at -= 1;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        at = at.saturating_sub(1);
        if let Some(sign) = buf.get_mut(at) {
            *sign = b'-';
        }
    }
    buf.get(at..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_is_named_with_its_errno() {
        let err = failed(Resource::Nofile as i32, rustix::io::Errno::PERM);
        assert_eq!(
            describe(&err).as_deref(),
            Some("setrlimit NOFILE: Operation not permitted")
        );
        let err = failed(STEP_CAPSET, rustix::io::Errno::PERM);
        assert_eq!(
            describe(&err).as_deref(),
            Some("capabilities (capset): Operation not permitted")
        );
        assert_eq!(describe(&io::Error::from_raw_os_error(libc::ENOENT)), None);
    }

    #[test]
    fn decimal_formats_without_allocating() {
        let mut buf = [0; 12];
        for n in [0, 7, 500, -1000, i32::MIN, i32::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn capability_names_sit_at_their_numbers() {
        let at = |name| CAPABILITIES.iter().position(|c| *c == name);
        assert_eq!(at("NET_BIND_SERVICE"), Some(10));
        assert_eq!(at("SYS_ADMIN"), Some(21));
        assert_eq!(at("CHECKPOINT_RESTORE"), Some(40));
    }
}
