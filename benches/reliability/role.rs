//! The parts this binary plays for the harness: the services it puts under pidone and the
//! sd_notify attacker. Written in Rust rather than `/bin/sh` so that a timestamp costs no fork of
//! `date`: the crash-looping service's start and exit stamps then sit within a fraction of a
//! millisecond of the real events.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use crate::ns::now_ns;

/// Plays the part named by `args[1]` (`--svc-crash`, `--svc-stream`, `--svc-notified`, `--flood`);
/// None when the arguments name no part (the harness itself runs).
pub fn play(args: &[String]) -> Option<ExitCode> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<usize>().unwrap_or(0);
    match arg(1) {
        "--svc-crash" => crash(arg(2), num(3)),
        "--svc-stream" => stream(num(2)),
        "--svc-notified" => notified(arg(2)),
        "--flood" => flood(arg(2), num(3)),
        _ => return None,
    }
    Some(ExitCode::FAILURE)
}

/// Appends `tag NS` (CLOCK_REALTIME nanoseconds) to `file` in one write.
fn stamp(file: &str, tag: char) {
    if let Ok(mut f) = OpenOptions::new().append(true).create(true).open(file) {
        let _ = f.write_all(format!("{tag} {}\n", now_ns()).as_bytes());
    }
}

/// A crash-looping service: stamps its start, writes `lines` lines of 100 bytes to stdout, lives
/// 20 ms, stamps its exit and exits 1 at once.
fn crash(stamps: &str, lines: usize) {
    stamp(stamps, 's');
    let line = format!("{}\n", "x".repeat(99));
    let mut out = std::io::stdout().lock();
    for _ in 0..lines {
        if out.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let _ = out.flush();
    sleep(Duration::from_millis(20));
    stamp(stamps, 'e');
}

/// A chatty longrun: `rate` lines of 1000 bytes every 10 ms, for ever (it blocks when pidone does
/// not read its pipe).
fn stream(rate: usize) {
    let line = format!("{}\n", "y".repeat(999));
    let mut out = std::io::stdout().lock();
    loop {
        for _ in 0..rate {
            if out.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
        let _ = out.flush();
        sleep(Duration::from_millis(10));
    }
}

/// A longrun ready by sd_notify: tells the harness its `NOTIFY_SOCKET` (through `file`, written
/// whole then renamed), sends `READY=1`, then sleeps.
fn notified(file: &str) {
    let sock = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
    let tmp = format!("{file}.tmp");
    if fs::write(&tmp, &sock).is_ok() {
        let _ = fs::rename(&tmp, file);
    }
    let _ = send(&sock, 1);
    loop {
        sleep(Duration::from_secs(1000));
    }
}

/// Sends `count` datagrams to an sd_notify socket and prints how many the kernel refused.
fn flood(sock: &str, count: usize) {
    match send(sock, count) {
        Ok(0) => println!("all sent"),
        Ok(n) => println!("{n} refused"),
        Err(e) => println!("{e}"),
    }
}

/// Sends `count` datagrams `READY=1\nSTATUS=flood` to an sd_notify socket (`@name` is abstract),
/// blocking while the receiver's queue is full; returns how many failed.
fn send(sock: &str, count: usize) -> std::io::Result<usize> {
    let d = UnixDatagram::unbound()?;
    let addr = match sock.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(sock)?,
    };
    let sent = (0..count)
        .filter(|_| d.send_to_addr(b"READY=1\nSTATUS=flood", &addr).is_ok())
        .count();
    Ok(count - sent)
}
