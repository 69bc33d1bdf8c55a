//! A Docker engine as the container tests see it: the `docker` command run with a deadline,
//! images built `FROM scratch` from the static pidone and Debian's static busybox (nothing is
//! pulled: the machines have no registry), and containers and images under names unique to the
//! run, removed by guards when a test ends, even when it fails.
//!
//! Included by `tests/containers.rs` alone (`#[path]`), not through `support/mod.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one event (a line in the logs, a state in `docker inspect`) may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// How long one `docker` command may take before the test gives up on the engine.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// The static pidone `make static` builds: the only one that runs in a scratch image.
pub fn static_pidone() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("x86_64-unknown-linux-musl/release/pidone")
}

/// The busybox of Debian's `busybox-static`: the services' programs.
pub const BUSYBOX: &str = "/bin/busybox";

/// What a `docker` command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `docker ARGS`, feeding it `input` on stdin when given; panics if it has not finished
/// after [`COMMAND_DEADLINE`] (an engine that stopped answering).
pub fn docker_with(args: &[&str], input: Option<&str>) -> Out {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .expect("write docker's stdin");
    }
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while child.try_wait().expect("wait for docker").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("docker {args:?} still runs after {COMMAND_DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("docker's output");
    Out {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `docker ARGS`.
pub fn docker(args: &[&str]) -> Out {
    docker_with(args, None)
}

/// Runs `docker ARGS` and asserts it succeeded.
pub fn docker_ok(args: &[&str]) -> Out {
    let out = docker(args);
    assert_eq!(out.code, 0, "docker {args:?}: {out:?}");
    out
}

/// Whether the suite can run: `None` when there is no `docker` command (the suite is skipped);
/// a panic when there is one but its engine does not answer.
pub fn engine() -> Option<String> {
    match Command::new("docker").arg("--version").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("docker --version: {e}"),
        Ok(_) => {}
    }
    let out = docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        out.code == 0 && !out.stdout.trim().is_empty(),
        "the docker command exists but its engine does not answer: {out:?}"
    );
    Some(out.stdout.trim().to_string())
}

/// A name no other run or test uses: `pidone-test-PID-NANOS-N-what`.
pub fn unique(what: &str) -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("pidone-test-{}-{start}-{n}-{what}", std::process::id())
}

/// Polls `condition` until it gives a value; panics naming `what` after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// An image of this run; removed when dropped.
pub struct Image {
    pub name: String,
}

impl Image {
    /// Builds `dockerfile` in `context`.
    pub fn build(what: &str, context: &Path, dockerfile: &str) -> Image {
        let image = Image { name: unique(what) };
        let file = context.join(format!("Dockerfile.{what}"));
        std::fs::write(&file, dockerfile).expect("write the Dockerfile");
        let context = context.to_str().expect("a UTF-8 path");
        let file = file.to_str().expect("a UTF-8 path");
        docker_ok(&["build", "-q", "-f", file, "-t", &image.name, context]);
        image
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.name]);
    }
}

/// A container of this run; removed (killed first if it runs) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// A name for a container, whose guard is in place before anything is started under it.
    pub fn named(what: &str) -> Container {
        Container { name: unique(what) }
    }

    /// `docker run -d --name NAME OPTIONS... IMAGE ARGS...`.
    pub fn start(what: &str, options: &[&str], image: &Image, args: &[&str]) -> Container {
        let ctr = Container::named(what);
        let mut all = vec!["run", "-d", "--name", &ctr.name];
        all.extend_from_slice(options);
        all.push(&image.name);
        all.extend_from_slice(args);
        docker_ok(&all);
        ctr
    }

    /// `docker logs`: stdout and stderr, each in order (interleaving between them is lost).
    pub fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        format!("{}{}", out.stdout, out.stderr)
    }

    /// Waits until the logs hold `count` lines containing `text`; returns the logs. Fails at
    /// once if the container stopped without them.
    pub fn wait_lines(&self, text: &str, count: usize) -> String {
        let what = format!("{count} line(s) with {text:?} in the logs of {}", self.name);
        wait_for(&what, || {
            let stopped = self.inspect("{{.State.Running}}") == "false";
            let logs = self.logs();
            let enough = logs.lines().filter(|l| l.contains(text)).count() >= count;
            assert!(
                enough || !stopped,
                "{} stopped before {what}:\n{logs}",
                self.name
            );
            enough.then_some(logs)
        })
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
            .stdout
            .trim()
            .to_string()
    }

    /// Waits until the container has stopped; returns its exit code.
    pub fn wait_exit(&self) -> i32 {
        wait_for(&format!("{} to stop", self.name), || {
            (self.inspect("{{.State.Running}}") == "false").then_some(())
        });
        let code = self.inspect("{{.State.ExitCode}}");
        code.parse()
            .unwrap_or_else(|_| panic!("exit code {code:?}"))
    }

    /// `docker exec NAME ARGS...`.
    pub fn exec(&self, args: &[&str]) -> Out {
        let mut all = vec!["exec", &self.name];
        all.extend_from_slice(args);
        docker(&all)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name]);
    }
}

/// A directory of this run under the system's temp dir; removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("context"));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
