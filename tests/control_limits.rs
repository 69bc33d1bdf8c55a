//! Black-box tests that the control socket cannot stall supervision: a hundred clients and a silent
//! one, a megabyte of garbage (400, pidone stays healthy), a thousand idle connections that must
//! give way to root's `pidone status`. "Did not stall" is observed against a witness: a crashing
//! service restarted every 100 ms is the clock. Needs root and util-linux.

#[macro_use]
mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------------------------
// robustness

#[test]
fn a_hundred_clients_and_a_silent_one_do_not_stall_supervision() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n{}",
            longrun("web"),
            crasher("clock")
        ),
    );
    d.wait_running("web");
    // Connects and never speaks; another sends half a request and stops.
    let silent = UnixStream::connect(&d.socket).expect("connect");
    let mut half = UnixStream::connect(&d.socket).expect("connect");
    half.write_all(b"GET /v1/services HTTP/1.1\r\nHost: loc")
        .expect("send");
    let (status, _) = get(&d.socket, "/v1/services").expect("answered despite the silent client");
    assert_eq!(status, 200);

    let restarts_before = d.service("clock")["restarts"].as_u64().expect("restarts");
    let done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(100));
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let (socket, done, barrier) = (d.socket.clone(), done.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                // Until supervision was seen to go on, keep asking; at least once. Beyond the
                // documented 64 connections at once pidone closes newcomers unanswered: such a
                // client asks again (counted), until the deadline.
                let (mut answers, mut closed) = (0, 0);
                let deadline = Instant::now() + DEADLINE;
                loop {
                    let target = if i % 2 == 0 {
                        "/v1/services"
                    } else {
                        "/metrics"
                    };
                    match get(&socket, target) {
                        Some((200, body)) if !body.is_empty() => answers += 1,
                        None if Instant::now() < deadline => {
                            closed += 1;
                            thread::sleep(Duration::from_millis(10));
                        }
                        other => return Err(format!("client {i}: {other:?} ({closed} closed)")),
                    }
                    if answers > 0 && done.load(Ordering::Relaxed) {
                        return Ok((answers, closed));
                    }
                }
            })
        })
        .collect();
    d.wait_crashes("clock", 5);
    done.store(true, Ordering::Relaxed);
    let (mut answers, mut closed) = (0, 0);
    for client in clients {
        let (a, c) = client
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("every client gets an answer: {e}"));
        answers += a;
        closed += c;
    }
    // Measured: 23-38 of the 100 first attempts are closed unanswered (the 64 limit).
    assert!(
        answers >= 100,
        "{answers} answers, {closed} closed unanswered"
    );
    let restarts_after = d.service("clock")["restarts"].as_u64().expect("restarts");
    assert!(
        restarts_after >= restarts_before + 5,
        "clock kept being restarted: {restarts_before} -> {restarts_after}"
    );
    assert_eq!(d.state("web"), "running");
    drop((silent, half));
}

fn garbage() -> Vec<u8> {
    // A fixed pseudo-random stream: every byte value, control characters included.
    let mut x: u32 = 0x1234_5678;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `bytes` on one connection (from a thread: pidone may stop reading) and returns what
/// pidone answered before closing it.
fn flood(socket: &Path, bytes: Vec<u8>) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        // pidone may close the connection early: a broken pipe is fine.
        let _ = writer.write_all(&bytes);
    });
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    drop(stream);
    sender.join().expect("writer thread");
    if read.is_err() && answer.is_empty() {
        // A reset connection counts as closed.
        return Vec::new();
    }
    answer
}

#[test]
fn a_megabyte_of_garbage_gets_400_and_pidone_stays_healthy() {
    let mut d = Daemon::start(
        Mode::Child,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n{}",
            longrun("web"),
            crasher("clock")
        ),
    );
    let pid = d.wait_running("web");
    let answer = flood(&d.socket, garbage());
    if !answer.is_empty() {
        let (status, body) = parse_answer(&answer).unwrap_or_else(|| {
            panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&answer))
        });
        assert_eq!(status, 400, "{body}");
        let error: Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(error["error"].is_string(), "{body}");
    }
    // A megabyte of a header that never ends: refused too (400 or 431), or closed.
    let mut endless = b"GET /v1/services HTTP/1.1\r\nX-Filler: ".to_vec();
    endless.resize(1 << 20, b'a');
    let answer = flood(&d.socket, endless);
    if !answer.is_empty() {
        let status = parse_answer(&answer).map(|(s, _)| s);
        assert!(
            matches!(status, Some(400 | 431)),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    d.wait_crashes("clock", 2);
    let out = d.ok(&["status"]);
    assert!(out.stdout.contains("web"), "{out:?}");
    // Health still answers; only the crashing clock is a problem.
    let (_, body) = get(&d.socket, "/v1/health").expect("an answer");
    let health: Value = serde_json::from_str(&body).expect("health is JSON");
    let problems = health["problems"].as_array().expect("problems");
    assert!(
        problems
            .iter()
            .all(|p| p.as_str().is_some_and(|p| p.starts_with("clock"))),
        "{body}"
    );
    assert_eq!(d.pid("web"), Some(pid));
    assert!(d.run.is_running());
}

// ---------------------------------------------------------------------------------------------
// starvation, memory and dropped followers (issue #19 items 8 and 9)

/// A thousand connections that never send a byte do not keep root's `pidone status` out: when
/// the 64 slots are full, the oldest idle connection gives way to the newcomer.
fn status_answers_despite_a_thousand_idle_connections(mode: Mode) {
    let mut d = Daemon::start(
        mode,
        &format!(
            "[[services]]\nname = \"web\"\ncommand = {}\n",
            longrun("web")
        ),
    );
    d.wait_running("web");
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&d.socket).expect("connect"))
        .collect();
    let out = d.client(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
    drop(idle);
}

in_both_modes!(status_answers_despite_a_thousand_idle_connections);
