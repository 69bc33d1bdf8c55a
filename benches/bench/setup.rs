//! The contestants and their services: which inits take part, how each is given the very same N
//! services (one executable script per service), and the command line that starts it.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How long a supervisor waits for a service that ignores its stop signal before it sends SIGKILL.
/// Every init that has such a setting gets this value (pidone `--grace` / `service_shutdown_timeout`,
/// s6 `timeout-kill`, supervisord `stopwaitsecs`, Horust `termination.wait`).
pub const STOP_TIMEOUT_MS: u64 = 1000;

/// How long a service that traps TERM takes to exit after it got the signal.
pub const TRAP_DELAY: &str = "0.1";

/// One contestant. `PidoneSingle` and `PidoneServices` are the same binary in its two modes; each
/// peer is compared with the mode that does the same job (see [`Kind::partner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The service itself as PID 1: the floor of the single-program startup figure.
    NoInit,
    /// `floor.c`: forks every service at once and reaps, nothing else: the floor of every
    /// services figure.
    Floor,
    PidoneSingle,
    Tini,
    TiniStatic,
    DumbInit,
    Catatonit,
    PidoneServices,
    S6,
    Runit,
    Supervisord,
    Horust,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::NoInit,
        Kind::Floor,
        Kind::PidoneSingle,
        Kind::Tini,
        Kind::TiniStatic,
        Kind::DumbInit,
        Kind::Catatonit,
        Kind::PidoneServices,
        Kind::S6,
        Kind::Runit,
        Kind::Supervisord,
        Kind::Horust,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::NoInit => "no init",
            Kind::Floor => "floor",
            Kind::PidoneSingle => "pidone",
            Kind::Tini => "tini",
            Kind::TiniStatic => "tini-static",
            Kind::DumbInit => "dumb-init",
            Kind::Catatonit => "catatonit",
            Kind::PidoneServices => "pidone --config",
            Kind::S6 => "s6-svscan",
            Kind::Runit => "runsvdir",
            Kind::Supervisord => "supervisord",
            Kind::Horust => "horust",
        }
    }

    /// The key used in JSON and in `--inits`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::NoInit => "none",
            Kind::PidoneSingle => "pidone",
            Kind::PidoneServices => "pidone-config",
            other => other.label(),
        }
    }

    /// The program looked up on PATH (pidone's binary is found by the harness).
    pub fn program(self) -> Option<&'static str> {
        match self {
            Kind::NoInit | Kind::Floor | Kind::PidoneSingle | Kind::PidoneServices => None,
            other => Some(other.label()),
        }
    }

    /// Further programs the init needs at run time; they count in the binary-size table.
    pub fn helpers(self) -> &'static [&'static str] {
        match self {
            Kind::S6 => &["s6-supervise"],
            Kind::Runit => &["runsv"],
            _ => &[],
        }
    }

    /// Whether the init runs N services from a configuration (else it runs one child).
    pub fn multi(self) -> bool {
        matches!(
            self,
            Kind::Floor
                | Kind::PidoneServices
                | Kind::S6
                | Kind::Runit
                | Kind::Supervisord
                | Kind::Horust
        )
    }

    pub fn is_pidone(self) -> bool {
        matches!(self, Kind::PidoneSingle | Kind::PidoneServices)
    }

    /// The pidone mode this contestant is compared with, pair by pair in the same run.
    pub fn partner(self) -> Option<Kind> {
        match self {
            Kind::PidoneSingle | Kind::PidoneServices => None,
            k if k.multi() => Some(Kind::PidoneServices),
            _ => Some(Kind::PidoneSingle),
        }
    }

    /// Whether the init bounds the wait for a service that ignores its stop signal. Single-program
    /// pidone, like tini, only forwards the signal: a program that ignores TERM runs on.
    pub fn has_stop_timeout(self) -> bool {
        self.multi()
    }
}

/// What a service does once it has stamped its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Svc {
    /// `exec sleep`: dies at once on TERM.
    Plain,
    /// Traps TERM and exits [`TRAP_DELAY`] seconds later.
    Trap,
    /// Ignores TERM; only SIGKILL ends it.
    Ignore,
    /// Waits for a line on the `go` FIFO, then forks this many orphaned grandchildren, then writes
    /// the `done` file and sleeps.
    Reap(u32),
}

/// The run directory layout shared by the harness and the generated files.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn stamps(&self) -> PathBuf {
        self.dir.join("stamps")
    }
    pub fn script(&self, i: usize) -> PathBuf {
        self.dir.join("svc").join(format!("s{i}.sh"))
    }
    pub fn go(&self) -> PathBuf {
        self.dir.join("go")
    }
    pub fn done(&self) -> PathBuf {
        self.dir.join("done")
    }
    pub fn pidone_config(&self) -> PathBuf {
        self.dir.join("pidone.toml")
    }
    pub fn s6_scan(&self) -> PathBuf {
        self.dir.join("s6")
    }
    pub fn runit_dir(&self) -> PathBuf {
        self.dir.join("runit")
    }
    pub fn supervisord_conf(&self) -> PathBuf {
        self.dir.join("supervisord.conf")
    }
    pub fn horust_dir(&self) -> PathBuf {
        self.dir.join("horust")
    }
}

/// Writes services `s1.sh` … `sN.sh`. Each stamps CLOCK_REALTIME in nanoseconds (`date +%s%N`, one
/// `write`) into `stamps/sI` as its first action, so the harness compares it with its own
/// `SystemTime` taken just before it launched the init.
pub fn write_services(l: &Layout, n: usize, svc: Svc) -> io::Result<()> {
    fs::create_dir_all(l.dir.join("svc"))?;
    fs::create_dir_all(l.stamps())?;
    for i in 1..=n {
        let stamp = l.stamps().join(format!("s{i}"));
        let stamp = stamp.display();
        let body = match svc {
            Svc::Plain => format!("date +%s%N >{stamp}\nexec sleep 1000000\n"),
            Svc::Trap => format!(
                "trap 'kill $! 2>/dev/null; sleep {TRAP_DELAY}; exit 0' TERM\n\
                 date +%s%N >{stamp}\nsleep 1000000 &\nwait\n"
            ),
            Svc::Ignore => format!("trap '' TERM\ndate +%s%N >{stamp}\nexec sleep 1000000\n"),
            Svc::Reap(orphans) => format!(
                "date +%s%N >{stamp}\nread _ <{go}\ni=0\n\
                 while [ $i -lt {orphans} ]; do ( : & ); i=$((i+1)); done\n\
                 date +%s%N >{done}\nexec sleep 1000000\n",
                go = l.go().display(),
                done = l.done().display()
            ),
        };
        write_exec(&l.script(i), &format!("#!/bin/sh\n{body}"))?;
    }
    Ok(())
}

fn write_exec(path: &Path, text: &str) -> io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

/// Writes the init's configuration for N services and returns its command line.
pub fn command(kind: Kind, bin: &Path, l: &Layout, n: usize) -> io::Result<Vec<String>> {
    let bin = bin.display().to_string();
    let s1 = l.script(1).display().to_string();
    let grace = format!("{STOP_TIMEOUT_MS}ms");
    Ok(match kind {
        Kind::NoInit => vec![s1],
        Kind::Floor => {
            let mut argv = vec![bin, STOP_TIMEOUT_MS.to_string()];
            argv.extend((1..=n).map(|i| l.script(i).display().to_string()));
            argv
        }
        Kind::PidoneSingle => vec![bin, "--grace".into(), grace, "--".into(), s1],
        Kind::Tini | Kind::TiniStatic | Kind::Catatonit => vec![bin, "--".into(), s1],
        Kind::DumbInit => vec![bin, s1],
        Kind::PidoneServices => {
            write_pidone(l, n)?;
            vec![
                bin,
                "--config".into(),
                l.pidone_config().display().to_string(),
            ]
        }
        Kind::S6 => {
            for i in 1..=n {
                let d = l.s6_scan().join(format!("s{i}"));
                fs::create_dir_all(&d)?;
                std::os::unix::fs::symlink(l.script(i), d.join("run"))?;
                fs::write(d.join("timeout-kill"), format!("{STOP_TIMEOUT_MS}\n"))?;
            }
            vec![bin, l.s6_scan().display().to_string()]
        }
        Kind::Runit => {
            for i in 1..=n {
                let d = l.runit_dir().join(format!("s{i}"));
                fs::create_dir_all(&d)?;
                std::os::unix::fs::symlink(l.script(i), d.join("run"))?;
            }
            vec![bin, l.runit_dir().display().to_string()]
        }
        Kind::Supervisord => {
            write_supervisord(l, n)?;
            let conf = l.supervisord_conf().display().to_string();
            vec![bin, "-n".into(), "-c".into(), conf]
        }
        Kind::Horust => {
            let d = l.horust_dir();
            fs::create_dir_all(&d)?;
            for i in 1..=n {
                let text = format!(
                    "command = \"{}\"\n[restart]\nstrategy = \"never\"\n\
                     [termination]\nwait = \"{STOP_TIMEOUT_MS}ms\"\n",
                    l.script(i).display()
                );
                fs::write(d.join(format!("s{i}.toml")), text)?;
            }
            let uds = l.dir.join("horust-uds");
            fs::create_dir_all(&uds)?;
            vec![
                bin,
                "--services-path".into(),
                d.display().to_string(),
                "--uds-folder-path".into(),
                uds.display().to_string(),
            ]
        }
    })
}

/// The status client each init offers, if any (the control round-trip figure).
pub fn status_command(kind: Kind, bin: &Path, l: &Layout, n: usize) -> Option<Vec<String>> {
    let prog = |p: &str| which(p).map(|p| p.display().to_string());
    match kind {
        Kind::PidoneServices => Some(vec![bin.display().to_string(), "status".into()]),
        Kind::S6 => Some(vec![
            prog("s6-svstat")?,
            l.s6_scan().join("s1").display().to_string(),
        ]),
        Kind::Runit => {
            let mut v = vec![prog("sv")?, "status".into()];
            v.extend((1..=n).map(|i| l.runit_dir().join(format!("s{i}")).display().to_string()));
            Some(v)
        }
        Kind::Supervisord => Some(vec![
            prog("supervisorctl")?,
            "-c".into(),
            l.supervisord_conf().display().to_string(),
            "status".into(),
        ]),
        _ => None,
    }
}

/// pidone's configuration: the N services, plus a daily timed job and an on-demand service
/// behind a unix socket (issue #16: neither may cost a wake-up, which the idle figure shows);
/// neither starts, so no other figure sees them.
fn write_pidone(l: &Layout, n: usize) -> io::Result<()> {
    let mut t = format!(
        "[timeouts]\nservice_shutdown_timeout = \"{STOP_TIMEOUT_MS}ms\"\n\
         global_shutdown_timeout = \"30s\"\n\n\
         [[services]]\nname = \"daily\"\ntype = \"oneshot\"\ncommand = [\"/bin/true\"]\n\
         schedule = \"@daily\"\n\n\
         [[services]]\nname = \"on-demand\"\ncommand = [\"/bin/true\"]\n\
         start = \"on-demand\"\nlisten = [\"unix:{}\"]\n",
        l.dir.join("on-demand.sock").display()
    );
    for i in 1..=n {
        let _ = write!(
            t,
            "\n[[services]]\nname = \"s{i}\"\ncommand = [\"{}\"]\n",
            l.script(i).display()
        );
    }
    fs::write(l.pidone_config(), t)
}

fn write_supervisord(l: &Layout, n: usize) -> io::Result<()> {
    let d = l.dir.display();
    let mut t = format!(
        "[supervisord]\nnodaemon=true\nuser=root\nlogfile={d}/supervisord.log\n\
         pidfile={d}/supervisord.pid\nchildlogdir={d}\n\n\
         [unix_http_server]\nfile={d}/supervisor.sock\n\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
         [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n"
    );
    for i in 1..=n {
        let _ = write!(
            t,
            "\n[program:s{i}]\ncommand={}\nstartsecs=0\nautorestart=false\n\
             stopwaitsecs={}\nstdout_logfile=NONE\nstderr_logfile=NONE\n",
            l.script(i).display(),
            STOP_TIMEOUT_MS.div_ceil(1000)
        );
    }
    fs::write(l.supervisord_conf(), t)
}

/// Looks a program up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Compiles `floor.c` into `dir` with the system's C compiler (static when the C library allows
/// it, as the other inits are measured), or says why it could not.
pub fn build_floor(dir: &Path) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bench/floor.c");
    let out = dir.join("floor");
    for extra in [&["-static"][..], &[]] {
        let status = std::process::Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .args(extra)
            .stderr(std::process::Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Ok(out);
        }
    }
    Err("cc could not build benches/bench/floor.c".into())
}
