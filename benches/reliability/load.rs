//! The adversarial loads, each bounded in count and time and only on local sockets: what each
//! needs in pidone's configuration, and the attack itself, run on a thread until `stop` is set.

use std::fs;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{CWD, FileType, Mode, mknodat};
use rustix::io::{Errno, write};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, connect, socket_with};
use rustix::process::{Pid, Signal, kill_process};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Nothing: the floor every other row is read against.
    Quiet,
    Slowloris,
    Garbage,
    NotifyFlood,
    StdoutBlocked,
    Followers,
    LargeAnswers,
    LogFifo,
    EnvFifo,
}

impl Load {
    pub const ALL: [Load; 9] = [
        Load::Quiet,
        Load::Slowloris,
        Load::Garbage,
        Load::NotifyFlood,
        Load::StdoutBlocked,
        Load::Followers,
        Load::LargeAnswers,
        Load::LogFifo,
        Load::EnvFifo,
    ];

    /// The key used in JSON and in `--only`.
    pub fn key(self) -> &'static str {
        match self {
            Load::Quiet => "quiet",
            Load::Slowloris => "slowloris",
            Load::Garbage => "garbage",
            Load::NotifyFlood => "notify-flood",
            Load::StdoutBlocked => "stdout-blocked",
            Load::Followers => "followers",
            Load::LargeAnswers => "large-answers",
            Load::LogFifo => "log-fifo",
            Load::EnvFifo => "env-fifo",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Load::Quiet => "none (reference)",
            Load::Slowloris => "1000 slowloris connections (half send 1 byte/s)",
            Load::Garbage => "1000 connections sending garbage",
            Load::NotifyFlood => "200,000 sd_notify datagrams from another uid",
            Load::StdoutBlocked => "stdout an unread pipe, chatty crash loop",
            Load::Followers => "48 unread `logs -f` followers",
            Load::LargeAnswers => "64 unread 1 MB answers",
            Load::LogFifo => "log_file replaced by a FIFO",
            Load::EnvFifo => "env_file replaced by a FIFO, then SIGHUP",
        }
    }

    /// Lines of 100 bytes the crash-looping service writes at each start.
    pub fn crash_lines(self) -> usize {
        if self == Load::StdoutBlocked { 100 } else { 0 }
    }

    /// Whether the config has the chatty `stream` service (lines of 1000 bytes, 100 a second).
    pub fn streams(self) -> bool {
        matches!(self, Load::Followers | Load::LargeAnswers)
    }
}

/// What a load needs to know about the run.
pub struct Ctx {
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub pid1: u32,
    /// This binary, which plays the flooder.
    pub exe: PathBuf,
    /// Set while pidone's stdout pipe must not be read.
    pub stdout_paused: &'static AtomicBool,
}

impl Ctx {
    pub fn notify_file(&self) -> PathBuf {
        self.dir.join("notify-socket")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("logged.log")
    }
    pub fn env_file(&self) -> PathBuf {
        self.dir.join("envd.env")
    }
}

/// Runs `load` until `stop` is set; returns a short account of what it did.
pub fn run(load: Load, c: &Ctx, stop: &AtomicBool) -> String {
    let wait = || {
        while !stop.load(Relaxed) {
            sleep(Duration::from_millis(20));
        }
    };
    match load {
        Load::Quiet => {
            wait();
            String::new()
        }
        Load::Slowloris => connections(&c.socket, 1000, Talk::Slow, stop),
        Load::Garbage => connections(&c.socket, 1000, Talk::Garbage, stop),
        Load::Followers => connections(&c.socket, 48, Talk::Once(FOLLOW), stop),
        Load::LargeAnswers => connections(&c.socket, 64, Talk::Once(BACKLOG), stop),
        Load::NotifyFlood => flood(c, stop),
        Load::StdoutBlocked => {
            c.stdout_paused.store(true, Relaxed);
            wait();
            c.stdout_paused.store(false, Relaxed);
            String::new()
        }
        Load::LogFifo => {
            let r = fifo(&c.log_file());
            wait();
            r
        }
        Load::EnvFifo => {
            let mut r = fifo(&c.env_file());
            if let Some(pid) = Pid::from_raw(c.pid1 as i32)
                && let Err(e) = kill_process(pid, Signal::HUP)
            {
                r = format!("SIGHUP: {e}");
            }
            wait();
            r
        }
    }
}

/// Replaces `path` by a FIFO (already one: left as it is).
fn fifo(path: &Path) -> String {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return String::new();
    }
    let _ = fs::remove_file(path);
    match mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o644), 0) {
        Ok(()) => String::new(),
        Err(e) => format!("mkfifo {}: {e}", path.display()),
    }
}

/// Floods the `notified` service's sd_notify socket from outside the namespace as uid 65534.
fn flood(c: &Ctx, stop: &AtomicBool) -> String {
    let Ok(sock) = fs::read_to_string(c.notify_file()) else {
        return "no NOTIFY_SOCKET from the service".into();
    };
    let child = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&c.exe)
        .args(["--flood", sock.trim(), "200000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(ch) => ch,
        Err(e) => return format!("setpriv: {e}"),
    };
    let t0 = Instant::now();
    let mut note = String::new();
    while !stop.load(Relaxed) {
        if note.is_empty()
            && let Ok(Some(_)) = child.try_wait()
        {
            let mut said = String::new();
            let _ = child.stdout.take().map(|mut o| o.read_to_string(&mut said));
            note = format!(
                "200,000 datagrams in {:.1} s: {}",
                t0.elapsed().as_secs_f64(),
                said.trim()
            );
        }
        sleep(Duration::from_millis(20));
    }
    if note.is_empty() {
        let _ = child.kill();
        note = "flooder still sending at the end (killed)".into();
    }
    let _ = child.wait();
    note
}

const FOLLOW: &[u8] =
    b"GET /v1/services/stream/logs?n=1000&follow=true HTTP/1.1\r\nHost: x\r\n\r\n";
const BACKLOG: &[u8] = b"GET /v1/services/stream/logs?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
const SLOW: &[u8] = b"GET /v1/services HTTP/1.1\r\nHost: x\r\nX-Slow: ";

/// What each connection of a socket load sends.
#[derive(Clone, Copy)]
enum Talk {
    /// Half the connections say nothing; the other half send one byte a second of a request
    /// whose header never ends.
    Slow,
    /// Every 100 ms: 1 KiB of random bytes, a header growing by 4 KiB, or a bogus request line.
    Garbage,
    /// One request, then never a read.
    Once(&'static [u8]),
}

/// Keeps `n` non-blocking connections to the socket open until `stop`, each talking as `talk`
/// every 100 ms; a connection pidone closes is opened again at the next tick, as an attacker
/// would.
fn connections(sock: &Path, n: usize, talk: Talk, stop: &AtomicBool) -> String {
    let Ok(addr) = SocketAddrUnix::new(sock) else {
        return "bad socket path".into();
    };
    let mut slots: Vec<Option<OwnedFd>> = (0..n).map(|_| None).collect();
    let mut sent = vec![0usize; n];
    let (mut opened, mut refused, mut tick, mut rng) = (0u64, 0u64, 0usize, 0x9e37_79b9u64);
    while !stop.load(Relaxed) {
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = open(&addr);
                sent[i] = 0;
                match (slot.as_ref(), talk) {
                    (None, _) => refused += 1,
                    (Some(fd), Talk::Once(req)) => {
                        opened += 1;
                        let _ = write(fd, req);
                    }
                    (Some(_), _) => opened += 1,
                }
            }
            let Some(fd) = slot.as_ref() else { continue };
            let chunk = match talk {
                Talk::Slow if i % 20 == tick % 10 => {
                    vec![SLOW.get(sent[i]).copied().unwrap_or(b'a')]
                }
                Talk::Garbage => garbage(i, sent[i], &mut rng),
                _ => continue,
            };
            match write(fd, &chunk) {
                Ok(k) => sent[i] += k,
                Err(Errno::AGAIN) => {}
                Err(_) => *slot = None,
            }
        }
        drop_closed(&mut slots);
        tick += 1;
        sleep(Duration::from_millis(100));
    }
    format!("{opened} connections opened, {refused} connects refused")
}

/// A non-blocking connection, or None when the socket refuses it (a full backlog: EAGAIN).
fn open(addr: &SocketAddrUnix) -> Option<OwnedFd> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None).ok()?;
    connect(&fd, addr).ok()?;
    Some(fd)
}

fn garbage(i: usize, sent: usize, rng: &mut u64) -> Vec<u8> {
    match i % 3 {
        0 => (0..1024)
            .map(|_| {
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                *rng as u8
            })
            .collect(),
        1 if sent == 0 => b"GET /v1/services HTTP/1.1\r\nX-Big: ".to_vec(),
        1 => vec![b'a'; 4096],
        _ => b"\x00\x01GARBAGE /\xff HTTP/9.9\r\n\r\n".to_vec(),
    }
}

/// Forgets the connections pidone closed (hang-up seen by a zero-timeout poll).
fn drop_closed(slots: &mut [Option<OwnedFd>]) {
    let idx: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_some()).collect();
    let gone: Vec<usize> = {
        let mut fds: Vec<PollFd> = idx
            .iter()
            .filter_map(|&i| slots[i].as_ref())
            .map(|fd| PollFd::new(fd, PollFlags::RDHUP))
            .collect();
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&zero)).is_err() {
            return;
        }
        let hup = PollFlags::HUP | PollFlags::RDHUP | PollFlags::ERR;
        fds.iter()
            .zip(&idx)
            .filter(|(p, _)| p.revents().intersects(hup))
            .map(|(_, &i)| i)
            .collect()
    };
    for i in gone {
        slots[i] = None;
    }
}
