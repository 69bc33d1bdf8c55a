//! The little pidone reads from `/proc`: which processes are its children.

use std::fs;

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
