//! The little pidone reads from `/proc`: which processes are its children, and what a process
//! uses (CPU time, resident memory, open descriptors) for the metrics.

use std::fs;
use std::time::Duration;

use rustix::process::Pid;

/// The pids of every process whose parent is `parent`, by scanning `/proc/*/stat`. Processes that
/// vanish during the scan are skipped. Empty when `/proc` is not mounted.
pub fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent = parent.as_raw_nonzero().get();
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if parent_of_stat(&stat) == Some(parent) {
            out.extend(Pid::from_raw(pid));
        }
    }
    out
}

/// What a process uses, read from `/proc` when asked (a scrape): each `None` when it cannot be
/// read (the process is gone, or `/proc` is not mounted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User and system CPU time.
    pub cpu: Option<Duration>,
    /// Resident memory, bytes (`VmRSS`: `rss` of `/proc/PID/stat`, in pages).
    pub rss: Option<u64>,
    /// Open file descriptors.
    pub fds: Option<u64>,
}

/// The clock ticks of `/proc/PID/stat`'s times: `USER_HZ`, which Linux fixes at 100 for every
/// program (times(2)), whatever the kernel's own tick.
const TICKS_PER_SECOND: u64 = 100;

/// What process `pid` (a number, or `self`) uses: two reads of `/proc`, `stat` and the `fd`
/// directory (`status` would say the same memory at several times the kernel's cost).
pub fn usage(pid: &str) -> Usage {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok();
    let page = rustix::param::page_size() as u64;
    Usage {
        cpu: stat.as_deref().and_then(cpu_of_stat),
        rss: stat
            .as_deref()
            .and_then(rss_pages_of_stat)
            .map(|n| n * page),
        // `self` counts the descriptor of the listing itself: not one pidone holds otherwise.
        fds: fds.map(|d| d.count().saturating_sub(usize::from(pid == "self")) as u64),
    }
}

/// The fields of `/proc/PID/stat` after the command name, from `n` on (0: the state).
fn stat_fields(stat: &str, n: usize) -> Option<impl Iterator<Item = &str>> {
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    Some(after_comm.split_whitespace().skip(n))
}

/// utime + stime in the text of `/proc/PID/stat` (the 12th and 13th fields after the command).
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let mut fields = stat_fields(stat, 11)?;
    let mut ticks = || fields.next()?.parse::<u64>().ok();
    let total = ticks()?.saturating_add(ticks()?);
    let tick = Duration::from_secs(1) / TICKS_PER_SECOND as u32;
    Some(Duration::from_secs(total / TICKS_PER_SECOND) + tick * (total % TICKS_PER_SECOND) as u32)
}

/// The resident pages in the text of `/proc/PID/stat` (the 22nd field after the command).
fn rss_pages_of_stat(stat: &str) -> Option<u64> {
    stat_fields(stat, 21)?.next()?.parse().ok()
}

/// The parent pid in the text of `/proc/PID/stat`: the second field after the command name,
/// which is in parentheses and may itself contain spaces and parentheses.
fn parent_of_stat(stat: &str) -> Option<i32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_read_from_procs_text() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 1 0 0 20 0 1 0 5 1000 3";
        assert_eq!(cpu_of_stat(stat), Some(Duration::from_millis(2510)));
        assert_eq!(cpu_of_stat("42 (a) S 1"), None);
        assert_eq!(rss_pages_of_stat(stat), Some(3));
        let me = usage("self");
        assert!(me.cpu.is_some() && me.rss.is_some_and(|r| r > 0), "{me:?}");
        assert!(me.fds.is_some_and(|n| n >= 3), "{me:?}");
        assert_eq!(usage("0"), Usage::default(), "no such process");
    }

    #[test]
    fn parent_is_read_after_a_tricky_command_name() {
        assert_eq!(parent_of_stat("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of_stat("garbage"), None);
    }

    #[test]
    fn finds_own_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = rustix::process::getpid();
        let kids = children_of(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            kids.iter()
                .any(|p| p.as_raw_nonzero().get() == child.id() as i32)
        );
    }
}
