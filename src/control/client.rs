//! The built-in client: one request to the control socket, printed for humans or as JSON, turned
//! into an exit code (0 ok, 1 refused or failed, 2 usage, 3 daemon not reachable, or the socket
//! served by another user, which is never sent anything).

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::remote::{Endpoint, Link};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use crate::control::selector;
use crate::control::wire::{self, Service};
use crate::control::{STREAM_ERROR, Verb};

/// What the user asked the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `status` / `list`: the table (or JSON) of the services named, or of all.
    Status { names: Vec<String>, json: bool },
    /// `start`, `stop`, `restart`, then (unless `no_wait`) wait until it is done.
    Act {
        verb: Verb,
        names: Vec<String>,
        no_wait: bool,
        timeout: Duration,
    },
    /// `signal NAME SIGNAL`.
    Signal { name: String, signal: String },
    /// `logs [-f] [-n N] NAME...`: the last lines of each, then (with `follow`) new ones.
    Logs {
        names: Vec<String>,
        lines: usize,
        follow: bool,
    },
    /// `events [-f] [--json]`: the events kept, then (with `follow`) each new one.
    Events { follow: bool, json: bool },
    /// `reload`: re-read the configuration.
    Reload,
    /// `check`: exit 0 if ready (`/v1/health`), or with `live` if live (`/livez`).
    Check { live: bool },
    /// `wait`: until every service is up (healthy), or the timeout.
    Wait { timeout: Duration },
    /// `shutdown`.
    Shutdown,
    /// `add NAME [OPTIONS] -- COMMAND...`: the new service's keys (the body of `POST
    /// /v1/services`), then (unless `no_wait`) wait until it is up.
    Add {
        service: serde_json::Map<String, serde_json::Value>,
        no_wait: bool,
        timeout: Duration,
    },
    /// `remove NAME`, then (unless `no_wait`) wait until it is gone.
    Remove {
        name: String,
        no_wait: bool,
        timeout: Duration,
    },
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_UNREACHABLE: i32 = 3;
/// Nothing at the socket's path: pidone could not create it (a read-only `/run` and `/tmp`), or
/// is not running in services mode, or not yet.
pub const EXIT_NO_SOCKET: i32 = 4;

/// Runs one client action against the daemon at `ep`; returns the exit code.
pub fn run(ep: &Endpoint, action: &Action) -> i32 {
    match execute(ep, action) {
        Ok(code) => code,
        Err(failure) => report(ep, failure),
    }
}

/// How a request ended, for callers with exit codes of their own (the s6 commands); a failure
/// has been printed already. The s6 commands' part of the client is built with them only: a
/// second caller of `execute` keeps it out of `run`, which costs the binary 300 bytes.
#[cfg(feature = "s6-commands")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// Refused or failed (the service failed).
    Failed,
    /// A wait for a start, stop or restart ran out of time (s6-rc's code 2).
    TimedOut,
    /// The daemon knows no service of that name (a 404).
    Unknown,
    /// pidone could not be reached (no socket, or not pidone's).
    Unreachable,
}

/// Runs one client action like [`run`] and says how it ended.
#[cfg(feature = "s6-commands")]
pub fn send(ep: &Endpoint, action: &Action) -> Ending {
    ending(ep, execute(ep, action).map(|_| ()))
}

/// The record of the service `name`, or how asking for it ended.
#[cfg(feature = "s6-commands")]
pub fn service(ep: &Endpoint, name: &str) -> Result<Service, Ending> {
    let found = services(ep, &[name.to_string()]).map(|(list, _)| list);
    match found.map(|list| list.into_iter().find(|s| s.name == name)) {
        Ok(Some(service)) => Ok(service),
        Ok(None) => Err(Ending::Unknown),
        Err(failure) => Err(ending(ep, Err(failure))),
    }
}

#[cfg(feature = "s6-commands")]
fn ending(ep: &Endpoint, result: Result<(), Failure>) -> Ending {
    let Err(failure) = result else {
        return Ending::Done;
    };
    let end = match failure {
        Failure::Refused(_) => Ending::Failed,
        Failure::TimedOut(_) => Ending::TimedOut,
        #[cfg(feature = "s6-commands")]
        Failure::Unknown(_) => Ending::Unknown,
        _ => Ending::Unreachable,
    };
    report(ep, failure);
    end
}

/// Prints why a request failed; returns the client's exit code.
fn report(ep: &Endpoint, failure: Failure) -> i32 {
    match failure {
        Failure::Unreachable(err) => {
            eprintln!("pidone: cannot reach pidone at {ep}: {err}");
            EXIT_UNREACHABLE
        }
        Failure::NoSocket => {
            eprintln!(
                "pidone: no control socket at {ep} (a read-only image? mount a tmpfs at /run)"
            );
            EXIT_NO_SOCKET
        }
        Failure::Untrusted(uid) => {
            eprintln!("pidone: refusing {ep}: the server runs as uid {uid}, not root or you");
            EXIT_UNREACHABLE
        }
        Failure::Refused(message) | Failure::TimedOut(message) => {
            eprintln!("pidone: {message}");
            EXIT_FAILED
        }
        #[cfg(feature = "s6-commands")]
        Failure::Unknown(message) => {
            eprintln!("pidone: {message}");
            EXIT_FAILED
        }
    }
}

enum Failure {
    Unreachable(io::Error),
    /// The socket's path, or its directory, does not exist.
    NoSocket,
    /// The socket is served by this uid, neither root nor the client's user: not pidone's.
    Untrusted(u32),
    Refused(String),
    /// A wait for a start, stop or restart ran out of time: for the client, a refusal.
    TimedOut(String),
    /// A 404: no service of that name.
    #[cfg(feature = "s6-commands")]
    Unknown(String),
}

/// Connects to the daemon. On the socket, checks who serves it before anything is sent: someone
/// else may have bound the path first (a fallback in `/tmp`).
fn connect(ep: &Endpoint) -> Result<Link, Failure> {
    let path = match ep {
        Endpoint::Socket(path) => path,
        Endpoint::Url {
            addr,
            authority,
            tls,
            ..
        } => {
            let host = super::remote::host(authority);
            return Link::tcp(addr, host, tls.as_ref()).map_err(Failure::Unreachable);
        }
    };
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Failure::NoSocket,
        _ => Failure::Unreachable(e),
    })?;
    match crate::os::sys::peer_uid(&stream).map_err(Failure::Unreachable)? {
        0 => Ok(Link::Unix(stream)),
        uid if uid == rustix::process::getuid().as_raw() => Ok(Link::Unix(stream)),
        uid => Err(Failure::Untrusted(uid)),
    }
}

fn execute(ep: &Endpoint, action: &Action) -> Result<i32, Failure> {
    match action {
        Action::Status { names, json } => {
            let (list, body) = services(ep, names)?;
            if *json {
                // As the daemon sent it: fields this client does not know are kept.
                println!("{body}");
            } else {
                print!("{}", table(&list, colour()));
            }
            Ok(EXIT_OK)
        }
        Action::Act {
            verb,
            names,
            no_wait,
            timeout,
        } => {
            // A restart is done once the service, and every dependent it took down, is up again
            // with a new process: what they were is read before asking, since a fast restart
            // can be over before the first poll.
            let before: Vec<Service> = if *verb == Verb::Restart && !*no_wait {
                services(ep, &[])?.0
            } else {
                Vec::new()
            };
            // Every word is resolved by the daemon before anything is asked: a word that names
            // nothing changes nothing. What they name is what is waited for.
            let mut waited: Vec<String> = selected(ep, names)?;
            for name in names {
                let target = format!("/v1/services/{}/{}", selector::encode(name), verb.as_str());
                let (status, body) = request(ep, "POST", &target)?;
                if status != 200 {
                    return Err(refusal(status, &body));
                }
                // One service for its name; a list for a group, a pattern or instances.
                let answers = wire::read_services(&body)
                    .or_else(|_| wire::read_service(&body).map(|one| vec![one]))
                    .unwrap_or_default();
                for dependent in answers
                    .into_iter()
                    .flat_map(|a| a.along.unwrap_or_default())
                {
                    if !waited.contains(&dependent) {
                        waited.push(dependent);
                    }
                }
            }
            if *no_wait {
                return Ok(EXIT_OK);
            }
            wait_done(ep, *verb, &waited, &before, *timeout)
        }
        Action::Logs {
            names,
            lines,
            follow,
        } => logs(ep, names, *lines, *follow),
        Action::Events { follow, json } => events(ep, *follow, *json),
        Action::Reload => {
            let (status, body) = request(ep, "POST", "/v1/reload")?;
            if status != 200 {
                print_refusal(&body);
                return Ok(EXIT_FAILED);
            }
            let done = wire::read::<wire::Reloaded>(&body).unwrap_or_default();
            for (key, names) in [
                ("added", done.added),
                ("removed", done.removed),
                ("restarted", done.restarted),
                ("unchanged", done.unchanged),
            ] {
                println!(
                    "{key:<9}  {}",
                    if names.is_empty() {
                        "-".to_string()
                    } else {
                        names.join(", ")
                    }
                );
            }
            Ok(EXIT_OK)
        }
        Action::Check { live } => {
            let (target, word) = if *live {
                ("/livez", "live")
            } else {
                ("/readyz", "healthy")
            };
            let (status, body) = request(ep, "GET", target)?;
            if status == 200 {
                println!("{word}");
                return Ok(EXIT_OK);
            }
            let health = wire::read::<wire::Health>(&body).unwrap_or_default();
            for problem in health.problems {
                println!("{}", printable(&problem));
            }
            Ok(EXIT_FAILED)
        }
        Action::Signal { name, signal } => {
            let body = serde_json::to_string(&wire::Signal { signal }).unwrap_or_default();
            let target = format!("/v1/services/{}/signal", selector::encode(name));
            let (status, answer) = request_with(ep, "POST", &target, &body)?;
            if status != 200 {
                return Err(refusal(status, &answer));
            }
            Ok(EXIT_OK)
        }
        Action::Wait { timeout } => {
            let deadline = Instant::now() + *timeout;
            loop {
                let (status, body) = request(ep, "GET", "/v1/health")?;
                if status == 200 {
                    return Ok(EXIT_OK);
                }
                if Instant::now() >= deadline {
                    return Err(Failure::Refused(format!(
                        "not up after {}s: {body}",
                        timeout.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Action::Shutdown => {
            let (status, body) = request(ep, "POST", "/v1/shutdown")?;
            if status != 200 {
                return Err(refusal(status, &body));
            }
            Ok(EXIT_OK)
        }
        Action::Add {
            service,
            no_wait,
            timeout,
        } => {
            // Cannot fail: a map of JSON values with string keys.
            let body = serde_json::to_string(service).unwrap_or_default();
            let (status, answer) = request_with(ep, "POST", "/v1/services", &body)?;
            let Some(done) = registered(status, &answer) else {
                return Ok(EXIT_FAILED);
            };
            let added = done.reload.added;
            println!("added {} ({})", added.join(", "), done.file);
            if *no_wait {
                return Ok(EXIT_OK);
            }
            wait_done(ep, Verb::Start, &added, &[], *timeout)
        }
        Action::Remove {
            name,
            no_wait,
            timeout,
        } => {
            let (status, answer) = request(ep, "DELETE", &format!("/v1/services/{name}"))?;
            let Some(done) = registered(status, &answer) else {
                return Ok(EXIT_FAILED);
            };
            let removed = done.reload.removed;
            println!("removed {} ({} deleted)", removed.join(", "), done.file);
            if *no_wait {
                return Ok(EXIT_OK);
            }
            wait_gone(ep, &removed, *timeout)
        }
    }
}

/// The answer to `add` or `remove`, or `None` once its refusal (and every error of the
/// configuration it would have made) is printed.
fn registered(status: u16, body: &str) -> Option<wire::Registered> {
    if status == 200 {
        return Some(wire::read::<wire::Registered>(body).unwrap_or_default());
    }
    print_refusal(body);
    None
}

/// Prints a refusal: its error, then each problem of the configuration it lists.
fn print_refusal(body: &str) {
    eprintln!("pidone: {}", error_message(body));
    let refused = wire::read::<wire::Error>(body).ok();
    for err in refused.and_then(|r| r.errors).unwrap_or_default() {
        eprintln!("  {err}");
    }
}

/// Polls the services until none of `names` is listed any more (removed, and down), or `timeout`
/// passed.
fn wait_gone(ep: &Endpoint, names: &[String], timeout: Duration) -> Result<i32, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let (list, _) = services(ep, &[])?;
        let left: Vec<&str> = (list.iter())
            .filter(|s| names.contains(&s.name))
            .map(|s| s.name.as_str())
            .collect();
        if left.is_empty() {
            return Ok(EXIT_OK);
        }
        if Instant::now() >= deadline {
            let (left, secs) = (left.join(", "), timeout.as_secs());
            return Err(Failure::Refused(format!("{left}: not down after {secs}s")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls the services until each reached the end state of `verb` (up for start/restart, down for
/// stop), failed, or `timeout` passed. `before` holds the services as they were before a restart.
fn wait_done(
    ep: &Endpoint,
    verb: Verb,
    names: &[String],
    before: &[Service],
    timeout: Duration,
) -> Result<i32, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let (list, _) = services(ep, names)?;
        let mut done = true;
        for svc in &list {
            let state = svc.state.as_str();
            let ok = match verb {
                Verb::Stop => matches!(state, "stopped" | "failed"),
                Verb::Once => true,
                Verb::Start | Verb::Restart => {
                    let up = state == "running" || (state == "stopped" && svc.kind == "oneshot");
                    let was = before.iter().find(|b| b.name == svc.name);
                    let fresh = was.is_none_or(|b| b.since != svc.since);
                    if state == "failed" {
                        let (name, reason) = (&svc.name, &svc.reason);
                        return Err(Failure::Refused(format!("{name} failed: {reason}")));
                    }
                    up && fresh
                }
            };
            done &= ok;
        }
        if done {
            return Ok(EXIT_OK);
        }
        if Instant::now() >= deadline {
            return Err(Failure::TimedOut(format!(
                "{}: not done after {}",
                verb.as_str(),
                crate::config::format_duration(timeout)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints the logs of each service (prefixed `[name] ` when there are several); with `follow`,
/// one connection per service streams new lines until the daemon or the user ends it.
fn logs(ep: &Endpoint, words: &[String], lines: usize, follow: bool) -> Result<i32, Failure> {
    // Groups and patterns are resolved by the daemon first; then each service is asked alone.
    let names = &selected(ep, words)?;
    let prefix = names.len() > 1;
    if !follow {
        for name in names {
            let target = format!("/v1/services/{name}/logs?n={lines}");
            let (status, body) = request(ep, "GET", &target)?;
            if status != 200 {
                return Err(refusal(status, &body));
            }
            print_lines(name, &body, prefix);
        }
        return Ok(EXIT_OK);
    }
    let mut streams = Vec::new();
    for name in names {
        let mut stream = connect(ep)?;
        let target = format!("/v1/services/{name}/logs?n={lines}&follow=true");
        let text = ep.head("GET", &target) + "\r\n";
        stream
            .write_all(text.as_bytes())
            .map_err(Failure::Unreachable)?;
        let owned = name.clone();
        let print = Box::new(move |text: &str| print_lines(&owned, text, prefix));
        streams.push(Follower::new(name.clone(), stream, print));
    }
    follow_all(streams)
}

/// Follows `followers` to their ends: one thread for all the streams, a poll over them, each read
/// a line at a time (std's threads cost the static binary 16 KB). Exit 1 if any ended in error.
fn follow_all(mut followers: Vec<Follower>) -> Result<i32, Failure> {
    loop {
        // A TLS stream may hold lines already taken from its socket: read them without waiting.
        #[cfg(feature = "tls")]
        let held: Vec<bool> = (followers.iter_mut())
            .filter(|f| f.result.is_none())
            .map(|f| f.stream.buffered())
            .collect();
        #[cfg(not(feature = "tls"))]
        let held: Vec<bool> = Vec::new();
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = (followers.iter())
                .filter(|f| f.result.is_none())
                .map(|f| PollFd::new(&f.stream, PollFlags::IN))
                .collect();
            if fds.is_empty() {
                break;
            }
            let now = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let wait = held.contains(&true).then_some(&now);
            match rustix::event::poll(&mut fds, wait) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(err) => return Err(Failure::Unreachable(err.into())),
            }
            let polled = fds.iter().enumerate();
            let held = |i| held.get(i).is_some_and(|h| *h);
            polled
                .map(|(i, fd)| held(i) || !fd.revents().is_empty())
                .collect()
        };
        let open = followers.iter_mut().filter(|f| f.result.is_none());
        for (follower, _) in open.zip(ready).filter(|(_, ready)| *ready) {
            follower.read();
        }
    }
    let mut code = EXIT_OK;
    for follower in followers {
        if let Some(Err(message)) = follower.result {
            eprintln!("pidone: {message}");
            code = EXIT_FAILED;
        }
    }
    Ok(code)
}

/// One followed stream: checks the status line, then prints lines as they come. A last line
/// from pidone itself ([`STREAM_ERROR`]) is an error: pidone dropped the stream.
struct Follower {
    name: String,
    stream: Link,
    /// Prints lines of the stream's body.
    print: Box<dyn Fn(&str)>,
    /// Bytes read and not yet a whole line (or, once `refused`, the error's body so far).
    pending: Vec<u8>,
    in_head: bool,
    status: u16,
    /// The status was not 200: the body, read to its end, says why.
    refused: bool,
    /// A line that looks like pidone's error waits: it is one only if the stream ends after it.
    held: String,
    /// How the stream ended, once it has.
    result: Option<Result<(), String>>,
}

impl Follower {
    fn new(name: String, stream: Link, print: Box<dyn Fn(&str)>) -> Follower {
        Follower {
            name,
            stream,
            print,
            pending: Vec::new(),
            in_head: true,
            status: 0,
            refused: false,
            held: String::new(),
            result: None,
        }
    }

    /// Reads what the stream has (the poll said it has something) and handles its whole lines;
    /// at its end, the last line without its newline and the outcome.
    fn read(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = match self.stream.read(&mut chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return,
            Err(err) => return self.result = Some(Err(format!("{}: {err}", self.name))),
        };
        self.pending
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        while !self.refused
            && let Some(end) = self.pending.iter().position(|b| *b == b'\n')
        {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Err(err) = self.line(line) {
                return self.result = Some(Err(err));
            }
        }
        if n != 0 {
            return;
        }
        let rest = std::mem::take(&mut self.pending);
        self.result = Some(if self.refused {
            Err(error_message(&String::from_utf8(rest).unwrap_or_default()))
        } else if let Err(err) = (!rest.is_empty()).then(|| self.line(rest)).transpose() {
            Err(err)
        } else {
            match self.held.strip_prefix(STREAM_ERROR) {
                Some(error) => Err(format!("{}: {}", self.name, error.trim_end())),
                None => Ok(()),
            }
        });
    }

    /// One line of the answer: a line of its head, or one to print.
    fn line(&mut self, line: Vec<u8>) -> Result<(), String> {
        let Ok(line) = String::from_utf8(line) else {
            return Err(format!("{}: stream did not contain valid UTF-8", self.name));
        };
        if self.in_head {
            if self.status == 0 {
                self.status = (line.split_whitespace().nth(1))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
            if line == "\r\n" {
                self.in_head = false;
                self.refused = self.status != 200;
            }
            return Ok(());
        }
        (self.print)(&std::mem::take(&mut self.held));
        if line.starts_with(STREAM_ERROR) {
            self.held = line;
        } else {
            (self.print)(&line);
        }
        Ok(())
    }
}

/// Prints the events pidone keeps, then (with `follow`) each new one as it happens: each line
/// as it came (`json`), or its time and message.
fn events(ep: &Endpoint, follow: bool, json: bool) -> Result<i32, Failure> {
    let print = move |text: &str| {
        let mut out = String::new();
        for line in text.lines() {
            let event: Option<serde_json::Value> = serde_json::from_slice(line.as_bytes()).ok();
            let field = |k| event.as_ref().and_then(|e| e.get(k)?.as_str());
            match (json, field("time"), field("message")) {
                (false, time, Some(message)) => {
                    out += &format!("{} {}\n", time.unwrap_or("-"), printable(message));
                }
                _ => out += &format!("{}\n", printable(line)),
            }
        }
        print_lines("", &out, false);
    };
    if !follow {
        let (status, body) = request(ep, "GET", "/v1/events")?;
        if status != 200 {
            return Err(Failure::Refused(error_message(&body)));
        }
        print(&body);
        return Ok(EXIT_OK);
    }
    let mut stream = connect(ep)?;
    let text = ep.head("GET", "/v1/events?follow=true") + "\r\n";
    stream
        .write_all(text.as_bytes())
        .map_err(Failure::Unreachable)?;
    follow_all(vec![Follower::new(
        "events".into(),
        stream,
        Box::new(print),
    )])
}

fn print_lines(name: &str, text: &str, prefix: bool) {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in text.lines() {
        let _ = if prefix {
            writeln!(out, "[{name}] {line}")
        } else {
            writeln!(out, "{line}")
        };
    }
    let _ = out.flush();
}

/// The services named (all when none is), and the body they came in.
fn services(ep: &Endpoint, names: &[String]) -> Result<(Vec<Service>, String), Failure> {
    let target = if names.is_empty() {
        "/v1/services".to_string()
    } else {
        let words: Vec<String> = names.iter().map(|w| selector::encode(w)).collect();
        format!("/v1/services?names={}", words.join(","))
    };
    let (status, body) = request(ep, "GET", &target)?;
    if status != 200 {
        return Err(refusal(status, &body));
    }
    match wire::read_services(&body) {
        Ok(list) => Ok((list, body)),
        Err(err) => Err(Failure::Refused(format!(
            "the daemon sent an answer that is not a list of services: {err}"
        ))),
    }
}

/// The names of the services `words` name (names, `@groups`, patterns), as the daemon resolves
/// them; a word that names nothing is the daemon's refusal.
fn selected(ep: &Endpoint, words: &[String]) -> Result<Vec<String>, Failure> {
    let (list, _) = services(ep, words)?;
    Ok(list.into_iter().map(|s| s.name).collect())
}

/// One HTTP exchange; returns the status code and the body.
fn request(ep: &Endpoint, method: &str, target: &str) -> Result<(u16, String), Failure> {
    request_with(ep, method, target, "")
}

/// One HTTP exchange with a body.
fn request_with(
    ep: &Endpoint,
    method: &str,
    target: &str,
    body: &str,
) -> Result<(u16, String), Failure> {
    let mut stream = connect(ep)?;
    stream.set_timeout(Some(Duration::from_secs(10)));
    let len = body.len();
    let text = ep.head(method, target) + &format!("Content-Length: {len}\r\n\r\n{body}");
    stream
        .write_all(text.as_bytes())
        .map_err(Failure::Unreachable)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(Failure::Unreachable)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status =
        status.ok_or_else(|| Failure::Refused("the daemon sent a malformed answer".to_string()))?;
    if status == 401 || status == 403 {
        // Not allowed (no token, a wrong one, a read token acting, a reader of the socket
        // acting): whatever was asked, that is the answer.
        return Err(Failure::Refused(error_message(body)));
    }
    Ok((status, body.to_string()))
}

/// An answer other than 200: a 404 names no service (or no endpoint), anything else refuses.
/// Only the s6 commands tell the two apart: the distinction costs the binary a page otherwise.
fn refusal(status: u16, body: &str) -> Failure {
    #[cfg(feature = "s6-commands")]
    if status == 404 {
        return Failure::Unknown(error_message(body));
    }
    let _ = status;
    Failure::Refused(error_message(body))
}

fn error_message(body: &str) -> String {
    match wire::read::<wire::Error>(body) {
        Ok(refused) => refused.error,
        Err(_) => body.to_string(),
    }
}

/// Colour only on a terminal, never with `NO_COLOR`.
fn colour() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The aligned table NAME STATE PID UPTIME RESTARTS LAST-EXIT REASON, in start order, then
/// GROUPS when a service is in one and DESCRIPTION when a service has one.
pub fn table(list: &[Service], colour: bool) -> String {
    let described = list.iter().any(|s| s.description.is_some());
    let grouped = list.iter().any(|s| !s.groups.is_empty());
    let header = [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST-EXIT",
        "REASON",
        if grouped { "GROUPS" } else { "" },
        if described { "DESCRIPTION" } else { "" },
    ];
    let rows: Vec<[String; 9]> = list
        .iter()
        .map(|s| {
            let last = match &s.last_exit {
                Some(wire::LastExit {
                    signal: Some(sig), ..
                }) => format!("SIG{sig}"),
                Some(exit) => exit.code.to_string(),
                None => "-".to_string(),
            };
            [
                s.name.clone(),
                s.state.clone(),
                s.pid.map_or("-".to_string(), |p| p.to_string()),
                s.uptime.map_or("-".to_string(), human_duration),
                s.restarts.to_string(),
                last,
                reason(s),
                printable(&s.groups.join(",")),
                printable(s.description.as_deref().unwrap_or_default()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            // Clamped: a format width over 65,535 would abort the client.
            *w = (*w).max(cell.len().min(255));
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 9], state_colour: Option<&str>, out: &mut String| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // A column no service fills (GROUPS, DESCRIPTION) is left out.
            if header.get(i).is_some_and(|h| h.is_empty()) {
                continue;
            }
            let last = i == cells.len() - 1;
            let text = if last {
                cell.to_string()
            } else {
                format!("{cell:<w$}  ")
            };
            match (i, state_colour) {
                (1, Some(c)) => out.push_str(&format!("\x1b[{c}m{text}\x1b[0m")),
                _ => out.push_str(&text),
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(header, None, &mut out);
    for row in &rows {
        let c = colour.then(|| match row[1].as_str() {
            "running" => "32",
            "failed" => "31",
            "starting" | "pending" | "stopping" => "33",
            _ => "2",
        });
        line(row.each_ref().map(String::as_str), c, &mut out);
    }
    // Below the table: what a service runs without that its configuration asked for.
    for s in list {
        if let Some(note) = &s.cgroup_skipped {
            out.push_str(&s.name);
            out.push_str(": ");
            out.push_str(&printable(note));
            out.push('\n');
        }
    }
    out
}

/// The REASON cell: why the service is in its state, what it last said through sd_notify, its
/// checks that are not passing, and why its log file is not written.
fn reason(s: &Service) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !s.reason.is_empty() {
        parts.push(s.reason.clone());
    }
    let now = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH))
        .map_or(0.0, |d| d.as_secs_f64());
    if s.state == "starting" {
        // `since` is when the start began (the API's `starting_for`, from this clock).
        parts.push(format!("starting for {}", human_duration(now - s.since)));
    }
    if let Some(t) = &s.timer {
        if let (Some(at), Some(result)) = (t.last_run, &t.last_result) {
            let took = human_duration(t.last_duration.unwrap_or_default());
            let ago = human_duration(now - at);
            parts.push(format!("last run {ago} ago: {result} ({took})"));
        }
        if let Some(next) = t.next {
            parts.push(format!("next run in {}", human_duration(next - now)));
        }
    }
    if let Some(said) = &s.notify_state {
        parts.push(format!("said {said}"));
    }
    if let Some(status) = &s.notify_status {
        parts.push(format!("\"{status}\""));
    }
    let live = matches!(s.state.as_str(), "starting" | "running");
    for check in s.checks.iter().filter(|_| live) {
        let (status, failures) = (&check.status, check.consecutive_failures);
        if status == "failing" || failures > 0 {
            let name = &check.name;
            let s = if failures == 1 { "" } else { "s" };
            parts.push(format!(
                "check {name} {status} ({failures} failure{s} in a row)"
            ));
        }
    }
    if let Some(error) = s.log.as_ref().and_then(|l| l.error.as_ref()) {
        parts.push(error.clone());
    }
    printable(&parts.join("; "))
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`): what a service says (its
/// sd_notify status, a check's output) reaches the terminal as text, never as escape codes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `3d4h`, `2h5m`, `5m3s`, `42s`.
fn human_duration(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_aligned_in_given_order_with_every_state() {
        let list = wire::read_services(
            r#"[{"name":"db","state":"running","pid":12,"uptime":75.0,"restarts":0,"last_exit":null,"reason":""},
                {"name":"web-long","state":"failed","pid":null,"uptime":null,"restarts":3,"last_exit":{"code":137,"signal":"KILL"},"reason":"gave up"}]"#,
        )
        .unwrap();
        let text = table(&list, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME      STATE    PID  UPTIME  RESTARTS  LAST-EXIT  REASON"
        );
        assert_eq!(lines[1], "db        running  12   1m15s   0         -");
        assert_eq!(
            lines[2],
            "web-long  failed   -    -       3         SIGKILL    gave up"
        );
        assert!(!text.contains('\x1b'));
        assert!(table(&list, true).contains("\x1b[31mfailed"));
    }

    /// Issue 11: with no default start_timeout, how long a start has taken is shown.
    #[test]
    fn a_starting_service_shows_how_long_it_has_been_starting() {
        let list = wire::read_services(
            r#"[{"name":"db","state":"starting","pid":12,"since":0,"reason":"waiting for READY=1","notify_status":"replaying WAL"}]"#,
        )
        .unwrap();
        let ago = std::time::SystemTime::now() - std::time::Duration::from_secs(250);
        let since = ago
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let list = vec![Service {
            since,
            ..list[0].clone()
        }];
        let text = table(&list, false);
        assert!(
            text.contains("waiting for READY=1; starting for 4m10s; \"replaying WAL\""),
            "{text}"
        );
    }

    #[test]
    fn the_client_reads_what_the_daemon_writes() {
        // Every field the client reads (the others are the daemon's alone: see wire.rs).
        let sent = Service {
            along: Some(vec!["web".to_string()]),
            checks: vec![wire::Check {
                consecutive_failures: 2,
                name: "http".to_string(),
                status: "failing".to_string(),
                ..wire::Check::default()
            }],
            groups: vec!["backend".to_string()],
            last_exit: Some(wire::LastExit {
                code: 137,
                signal: Some("KILL".to_string()),
            }),
            name: "db".to_string(),
            notify_status: Some("up".to_string()),
            pid: Some(12),
            reason: "slow".to_string(),
            restarts: 3,
            since: 1795434783.36,
            state: "running".to_string(),
            kind: "longrun".to_string(),
            uptime: Some(75.5),
            ..Service::default()
        };
        let answer = crate::control::Answer::of(200, &sent);
        let read = wire::read_service(&answer.body).expect("the client reads it");
        assert_eq!(read, sent);
        let list = crate::control::Answer::of(200, &[&sent]);
        let read = wire::read_services(&list.body).expect("the client reads a list");
        assert_eq!(read, [sent]);
        let row =
            "db    running  12   1m15s   3         SIGKILL    slow; \"up\"; check http failing";
        assert!(table(&read, false).contains(row), "{}", table(&read, false));

        let health = wire::Health {
            healthy: false,
            problems: vec!["db is starting".to_string()],
        };
        let answer = crate::control::Answer::of(503, &health);
        assert_eq!(wire::read::<wire::Health>(&answer.body).ok(), Some(health));
        let reloaded = wire::Reloaded {
            added: vec!["new".to_string()],
            ..wire::Reloaded::default()
        };
        let answer = crate::control::Answer::of(200, &reloaded);
        assert_eq!(
            wire::read::<wire::Reloaded>(&answer.body).ok(),
            Some(reloaded)
        );
        let answer = crate::control::Answer::error(404, "unknown service \"x\"");
        assert_eq!(error_message(&answer.body), "unknown service \"x\"");
        assert_eq!(error_message("not json"), "not json");
    }

    #[test]
    fn another_version_missing_or_adding_fields_is_read() {
        let read = wire::read_service(r#"{"name":"db","state":"running","new":1}"#).expect("read");
        assert_eq!(
            (read.name.as_str(), read.pid, read.along),
            ("db", None, None)
        );
    }

    #[test]
    fn control_characters_of_a_service_are_escaped() {
        assert_eq!(
            printable("a\u{1b}[2Jb\r\n\u{9b}c é"),
            "a\\u{1b}[2Jb\\r\\n\\u{9b}c é"
        );
        let svc = wire::read_service(
            r#"{"state":"running","reason":"","notify_status":"\u001b]0;owned\u0007"}"#,
        )
        .expect("json");
        assert_eq!(reason(&svc), "\"\\u{1b}]0;owned\\u{7}\"");
    }

    #[test]
    fn reason_shows_the_sd_notify_status_and_checks_that_fail() {
        let svc = wire::read_service(
            r#"{"state":"running","reason":"","notify_status":"serving",
                "checks":[{"name":"http","status":"failing","consecutive_failures":3},
                          {"name":"tcp","status":"passing","consecutive_failures":0},
                          {"name":"exec","status":"passing","consecutive_failures":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            reason(&svc),
            "\"serving\"; check http failing (3 failures in a row); check exec passing (1 failure in a row)"
        );
        let down = wire::read_service(
            r#"{"state":"failed","reason":"check http failed 3 times in a row",
                "notify_status":null,
                "checks":[{"name":"http","status":"failing","consecutive_failures":3}]}"#,
        )
        .unwrap();
        assert_eq!(reason(&down), "check http failed 3 times in a row");
        let log = wire::read_service(
            r#"{"state":"running","reason":"","log":{"lines":3,"error":"log_file /x: No space left on device (os error 28)"}}"#,
        )
        .unwrap();
        assert_eq!(
            reason(&log),
            "log_file /x: No space left on device (os error 28)"
        );
    }

    /// A followed stream's outcome: the refusal's message, pidone's error on the last line (a
    /// line like it that is not the last is printed), a last line without its newline.
    #[test]
    fn a_follower_ends_as_its_stream_says() {
        let outcome = |bytes: &[u8]| {
            let (mut ours, theirs) = UnixStream::pair().expect("a socket pair");
            ours.write_all(bytes).expect("written");
            drop(ours);
            let print = Box::new(|_: &str| {});
            let mut follower = Follower::new("db".to_string(), Link::Unix(theirs), print);
            while follower.result.is_none() {
                follower.read();
            }
            follower.result.expect("an outcome")
        };
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        assert_eq!(outcome(format!("{head}one\ntwo").as_bytes()), Ok(()));
        let dropped = format!("{head}one\n{STREAM_ERROR}too slow\n");
        assert_eq!(outcome(dropped.as_bytes()), Err("db: too slow".to_string()));
        let not_last = format!("{head}{STREAM_ERROR}said the service\nmore\n");
        assert_eq!(outcome(not_last.as_bytes()), Ok(()));
        let refused = "HTTP/1.1 404 Not Found\r\n\r\n{\"error\":\"unknown service\"}";
        assert_eq!(
            outcome(refused.as_bytes()),
            Err("unknown service".to_string())
        );
        let garbled = [head.as_bytes(), b"\xff\n"].concat();
        assert_eq!(
            outcome(&garbled),
            Err("db: stream did not contain valid UTF-8".to_string())
        );
    }

    /// A name longer than any format width allows (65,535) is printed unpadded, not an abort.
    #[test]
    fn table_survives_an_overlong_name() {
        let name = "n".repeat(70_000);
        let list: Vec<Service> = wire::read_services(
            &serde_json::json!([{"name": name, "state": "running"}]).to_string(),
        )
        .unwrap();
        let text = table(&list, false);
        assert!(text.lines().nth(1).is_some_and(|l| l.starts_with(&name)));
    }

    /// Issue 18: a GROUPS column when some service is in a group, before DESCRIPTION.
    #[test]
    fn table_shows_groups_when_a_service_has_some() {
        let list = wire::read_services(
            r#"[{"name":"db","state":"running","pid":12,"restarts":0,"reason":"","groups":["backend","data"]},
                {"name":"web","state":"stopped","restarts":0,"reason":"","description":"the site"}]"#,
        )
        .unwrap();
        assert_eq!(list[0].groups, ["backend", "data"]);
        let text = table(&list, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME  STATE    PID  UPTIME  RESTARTS  LAST-EXIT  REASON  GROUPS        DESCRIPTION"
        );
        assert_eq!(
            lines[1],
            "db    running  12   -       0         -                  backend,data"
        );
        assert_eq!(
            lines[2],
            "web   stopped  -    -       0         -                                the site"
        );
        let plain = table(&list[..1], false);
        assert!(
            plain.lines().next().unwrap().ends_with("REASON  GROUPS"),
            "{plain}"
        );
    }
}
