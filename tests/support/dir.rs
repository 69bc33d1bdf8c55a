//! One fresh directory per test: the config, the files the services write (markers, timestamps)
//! and pidone's captured output; removed when the test ends.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use super::process::{DEADLINE, POLL, now_ns};

/// A fresh directory, mode 0755, removed on drop. Holds an executable `stamp NAME` script that
/// atomically writes `date +%s%N` into `NAME`.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new() -> Dir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "pidone-test-{}-{n}-{}",
            std::process::id(),
            now_ns() % 1_000_000_000
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let dir = Dir(path);
        dir.script(
            "stamp",
            "#!/bin/sh\nd=$(dirname \"$0\")\n\
             date +%s%N > \"$d/$1.tmp.$$\" && mv \"$d/$1.tmp.$$\" \"$d/$1\"\n",
        );
        dir
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory as a string, for configs and command lines.
    pub fn s(&self) -> String {
        self.0.to_str().expect("temp dir is UTF-8").to_owned()
    }

    /// Writes a file; `@D` in `text` becomes the directory's path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.join(name);
        fs::write(&path, text.replace("@D", &self.s())).expect("write file");
        path.to_str().expect("UTF-8").to_owned()
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, text: &str) -> String {
        let path = self.write(name, text);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    pub fn exists(&self, name: &str) -> bool {
        self.join(name).exists()
    }

    /// A file's text, or "" while it does not exist.
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.join(name)).unwrap_or_default()
    }

    /// The timestamp written by `stamp NAME`, or `None` while it does not exist.
    pub fn try_stamp(&self, name: &str) -> Option<u128> {
        self.read(name).trim().parse().ok()
    }

    /// The timestamp written by `stamp NAME`, waiting for it (a service may write it a moment
    /// after pidone considers it up); panics if it does not appear within [`DEADLINE`].
    pub fn stamp(&self, name: &str) -> u128 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(stamp) = self.try_stamp(name) {
                return stamp;
            }
            assert!(
                Instant::now() < deadline,
                "no timestamp {name} in {} after {DEADLINE:?}",
                self.s()
            );
            thread::sleep(POLL);
        }
    }

    /// Every number of a file written line by line (`date +%s%N >> FILE`, `echo $$ >> FILE`).
    pub fn numbers<T: std::str::FromStr>(&self, name: &str) -> Vec<T> {
        self.read(name)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Every timestamp of a file written with `date +%s%N >> FILE`.
    pub fn stamps(&self, name: &str) -> Vec<u128> {
        self.numbers(name)
    }

    /// The pids a service appended to `NAME.pids`.
    pub fn pids(&self, name: &str) -> Vec<i64> {
        self.numbers(&format!("{name}.pids"))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Nanoseconds in a millisecond, for stamps.
pub const MS: u128 = 1_000_000;

/// Nanoseconds as milliseconds, for messages.
pub fn ms(ns: u128) -> f64 {
    ns as f64 / MS as f64
}

/// Asserts `earlier < later` for two named timestamps of `dir`.
pub fn assert_before(dir: &Dir, earlier: &str, later: &str) {
    let (a, b) = (dir.stamp(earlier), dir.stamp(later));
    assert!(
        a < b,
        "{earlier} ({a}) should come before {later} ({b}), but is {:.1} ms later",
        ms(a - b)
    );
}

/// Asserts that `later` came at least `at_least_ms` after `earlier`.
pub fn assert_gap(dir: &Dir, earlier: &str, later: &str, at_least_ms: u128) {
    let (a, b) = (dir.stamp(earlier), dir.stamp(later));
    assert!(
        b >= a + at_least_ms * MS,
        "{later} should come at least {at_least_ms} ms after {earlier}, came {:.1} ms after",
        (b as f64 - a as f64) / MS as f64
    );
}
