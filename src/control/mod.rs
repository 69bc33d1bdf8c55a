//! The control socket: HTTP/1.1 + JSON on a unix stream socket, and the same API on TCP
//! (`[api] listen`), served inside the one poll loop.
//!
//! Every socket is non-blocking. A connection reads until it holds one whole request (headers
//! parsed by httparse, then `Content-Length` bytes of body), within limits on header size, body
//! size and time; it gets exactly one response and is closed (`Connection: close`). A request
//! that breaks a limit or cannot be parsed gets a 4xx with a JSON error and changes nothing.
//! What waits to be written, answers and log streams together, stays within one memory budget,
//! and silent connections give way to newcomers: clients cannot make pidone grow or shut others
//! out. The socket is only created in a directory no one else can change.
//!
//! A [`Server`] is one pool of connections fed by its listeners: the unix socket's, or every TCP
//! address of `[api] listen` (a second server, so that a flood on the port never takes the
//! places of local clients). The TCP server has no peer credentials: its [`gate`] decides.
//!
//! This module knows bytes and routes, not services: [`parse`] turns bytes into a [`Request`],
//! the supervisor answers it, and [`response`] turns the answer into bytes.

pub mod client;
pub mod gate;
pub mod register;
pub mod remote;
pub mod selector;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod tls_client;
pub mod wire;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::io::logsink::Tally;
use crate::io::ring::Lines;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Lines the logs endpoint returns when the request does not say (`n`).
pub const DEFAULT_LOG_LINES: usize = 100;
/// Bytes of answers and log streams waiting to be written, all connections together: beyond it
/// the connection holding the most gives way ([`Server::keep_budget`]).
pub const OUTPUT_BUDGET: usize = 8 * 1024 * 1024;
/// Bytes of lines one logs answer (or a follower's first lines) carries at most: older lines
/// are skipped, and a first line says how many.
pub const MAX_LOGS: usize = 4 * 1024 * 1024;
/// How a line from pidone itself that ends a log stream starts: the client makes it an error.
pub const STREAM_ERROR: &str = "pidone: error: ";
/// The head of a log stream: an answer without a length.
pub const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n";
/// A connection never gives way to a newcomer before it has been open this long: time for its
/// request to be read, however many clients connect after it (a flood of them once reset
/// `pidone status` between its connect and its turn to be read).
pub const GIVE_WAY_AFTER: Duration = Duration::from_millis(20);
/// How long the listener rests after an accept error such as EMFILE.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Most connections following logs at once (of [`MAX_CONNECTIONS`]).
pub const MAX_FOLLOWERS: usize = 48;
/// Most connections served at once: when full, the oldest idle one gives way to a newcomer; if
/// none is idle, more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection that has not sent a whole request, or not taken its whole response, by then is
/// dropped.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Most requests read and answered in one turn of the loop: answers can be megabytes each, and
/// the loop has services to supervise; the others wait for the next turn (poll says they are
/// still readable).
pub const REQUESTS_PER_TURN: usize = 8;
/// Most answer bytes built in one turn: a megabyte answer takes a millisecond or more to build,
/// so past this the next request waits for the next turn. One request is always served, however
/// large its answer.
pub const ANSWER_BYTES_PER_TURN: usize = 1 << 20;
/// Most time spent answering in one turn: a scrape of `/metrics` reads `/proc` for every
/// service (milliseconds for 50), and a hundred clients asking for it must not make a service's
/// restart late by more than that. Past this the next request waits for the next turn; one is
/// always served.
pub const SERVE_TIME_PER_TURN: Duration = Duration::from_millis(2);

/// What one turn of the loop has served so far: a new request is read while the turn is under
/// [`REQUESTS_PER_TURN`], [`ANSWER_BYTES_PER_TURN`] and [`SERVE_TIME_PER_TURN`].
#[derive(Debug, Default)]
pub struct TurnQuota {
    requests: usize,
    bytes: usize,
    busy: Duration,
}

impl TurnQuota {
    /// True while another request may be read and answered this turn.
    pub fn admits(&self) -> bool {
        self.requests < REQUESTS_PER_TURN
            && self.bytes < ANSWER_BYTES_PER_TURN
            && self.busy < SERVE_TIME_PER_TURN
    }

    /// Counts a request served with an answer of `bytes`, which took `took` to read and answer.
    pub fn served(&mut self, bytes: usize, took: Duration) {
        self.requests += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        self.busy = self.busy.saturating_add(took);
    }
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET /v1/services[?names=a,b][&group=g][&match=p]`: each of `names` a name, `@group` or
    /// pattern; `group` and `pattern` narrow the list.
    Services {
        names: Option<Vec<String>>,
        group: Option<String>,
        pattern: Option<String>,
    },
    /// `POST /v1/services/{name}/start|stop|restart`
    Act { name: String, verb: Verb },
    /// `POST /v1/services/{name}/signal` with `{"signal": "HUP"}`
    Signal { name: String, signal: i32 },
    /// `GET /v1/services/{name}/logs?n=100&follow=true`
    Logs {
        name: String,
        n: usize,
        follow: bool,
    },
    /// `POST /v1/reload`
    Reload,
    /// `GET /v1/health` and `GET /readyz` (`live: false`), `GET /livez` (`live: true`).
    Health { live: bool },
    /// `GET /metrics`
    Metrics,
    /// `POST /v1/shutdown`
    Shutdown,
    /// `GET /v1/events?since=SEQ&follow=true`: the events kept after `since` (all kept when
    /// absent), then, following, every new one.
    Events { since: Option<u64>, follow: bool },
    /// `POST /v1/services` with a new service (see [`register`]): its name, and the text of the
    /// drop-in file it becomes.
    Add { name: String, text: String },
    /// `DELETE /v1/services/{name}`: a service `Add` added.
    Remove { name: String },
}

/// The key a connection following the events has in place of a service's
/// ([`Server::follow_lines`]): no service's key (those are a slot and a generation).
pub const EVENTS: u64 = u64::MAX;

/// What can be done to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
    /// Run at most until the process ends: not restarted then (s6-svc's `-O`). Not a client
    /// subcommand: only `POST /v1/services/{name}/once`, for the s6 commands.
    Once,
}

impl Verb {
    /// The verb named `word` (`start`, `stop`, `restart`): the last part of its path, and the
    /// client's subcommand.
    pub fn parse(word: &str) -> Option<Verb> {
        match word {
            "start" => Some(Verb::Start),
            "stop" => Some(Verb::Stop),
            "restart" => Some(Verb::Restart),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Once => "once",
        }
    }
}

impl Request {
    /// True for requests that change something: only root and pidone's own user may send them.
    pub fn acts(&self) -> bool {
        matches!(
            self,
            Request::Act { .. }
                | Request::Signal { .. }
                | Request::Reload
                | Request::Shutdown
                | Request::Add { .. }
                | Request::Remove { .. }
        )
    }
}

/// An answer: status code, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body,
        }
    }

    /// A JSON answer holding `value`, one of the [`wire`](crate::control::wire) structs.
    pub fn of<T: serde::Serialize>(status: u16, value: &T) -> Answer {
        // Cannot fail: the wire structs have string keys and no custom serializers.
        Answer::json(status, serde_json::to_string(value).unwrap_or_default())
    }

    /// A JSON error: `{"error": "..."}`.
    pub fn error(status: u16, message: &str) -> Answer {
        let error = crate::control::wire::Error {
            error: message.to_string(),
            errors: None,
        };
        Answer::of(status, &error)
    }
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole request.
    Done(Request),
    /// The request is bad: answer this and close.
    Bad(Answer),
}

/// Parses the bytes received so far on a connection of the unix socket.
pub fn parse(buf: &[u8]) -> Parsed {
    parse_at(buf, None)
}

/// Parses the bytes received so far on a connection; with a `gate` (TCP), a request it does not
/// admit is refused as soon as its head is in, before its body is waited for.
pub fn parse_at(buf: &[u8], gate: Option<&crate::config::Api>) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Parsed::Bad(Answer::error(431, "request head too large"));
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(err) => return Parsed::Bad(Answer::error(400, &format!("bad request: {err}"))),
    };
    if head_len > MAX_HEAD {
        return Parsed::Bad(Answer::error(431, "request head too large"));
    }
    if let (Some(api), Some(method), Some(path)) = (gate, req.method, req.path) {
        let auth = (req.headers.iter())
            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
            .map(|h| h.value);
        if let Err(answer) = gate::admit(api, method, path, auth) {
            return Parsed::Bad(answer);
        }
    }
    let mut body_len = 0usize;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => body_len = n,
                None => return Parsed::Bad(Answer::error(400, "bad Content-Length")),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad(Answer::error(
                411,
                "chunked bodies are not accepted; send Content-Length",
            ));
        }
    }
    if body_len > MAX_BODY {
        return Parsed::Bad(Answer::error(413, "request body too large"));
    }
    let Some(body) = buf.get(head_len..head_len.saturating_add(body_len)) else {
        return Parsed::Partial;
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Parsed::Bad(Answer::error(400, "bad request line"));
    };
    match route(method, path, body) {
        Ok(request) => Parsed::Done(request),
        Err(answer) => Parsed::Bad(answer),
    }
}

/// Maps a method and a path (with its query) to a request.
fn route(method: &str, target: &str, body: &[u8]) -> Result<Request, Answer> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let request = match segments.as_slice() {
        ["v1", "services"] if method == "POST" => {
            let (name, text) = register::read(body).map_err(|e| Answer::error(400, &e))?;
            (Request::Add { name, text }, "POST")
        }
        ["v1", "services", name] => {
            let name = (*name).to_string();
            (Request::Remove { name }, "DELETE")
        }
        ["v1", "services"] => (services_query(query)?, "GET"),
        ["v1", "services", name, "logs"] => {
            let mut n = DEFAULT_LOG_LINES;
            let mut follow = false;
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                match kv.split_once('=').unwrap_or((kv, "")) {
                    ("n", v) => {
                        n = v.parse().map_err(|_| {
                            Answer::error(400, &format!("n: '{v}' is not a number of lines"))
                        })?;
                    }
                    ("follow", v) => follow = matches!(v, "" | "1" | "true" | "yes"),
                    (k, _) => {
                        return Err(Answer::error(
                            400,
                            &format!("unknown parameter '{k}' (n, follow)"),
                        ));
                    }
                }
            }
            (
                Request::Logs {
                    name: word(name)?,
                    n,
                    follow,
                },
                "GET",
            )
        }
        ["v1", "services", name, "signal"] => {
            let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
                Answer::error(
                    400,
                    &format!("body: expected JSON like {{\"signal\": \"HUP\"}}: {err}"),
                )
            })?;
            let signal = match value.get("signal").unwrap_or(&serde_json::Value::Null) {
                serde_json::Value::String(s) => crate::os::signals::parse(s),
                serde_json::Value::Number(n) => n
                    .as_i64()
                    .and_then(|n| crate::os::signals::parse(&n.to_string())),
                _ => None,
            };
            let Some(signal) = signal else {
                return Err(Answer::error(
                    400,
                    "body: \"signal\" must be a signal name like \"HUP\" or a number",
                ));
            };
            (
                Request::Signal {
                    name: word(name)?,
                    signal,
                },
                "POST",
            )
        }
        ["v1", "services", name, verb] => {
            let once = (*verb == "once").then_some(Verb::Once);
            let Some(verb) = Verb::parse(verb).or(once) else {
                return Err(Answer::error(
                    404,
                    &format!("no such action: {verb} (start, stop, restart)"),
                ));
            };
            let name = word(name)?;
            (Request::Act { name, verb }, "POST")
        }
        ["v1", "events"] => {
            let (mut since, mut follow) = (None, false);
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                match kv.split_once('=').unwrap_or((kv, "")) {
                    ("since", v) => {
                        let bad = || Answer::error(400, &format!("since: '{v}' is not a number"));
                        since = Some(v.parse().map_err(|_| bad())?);
                    }
                    ("follow", v) => follow = matches!(v, "" | "1" | "true" | "yes"),
                    (k, _) => {
                        let message = format!("unknown parameter '{k}' (since, follow)");
                        return Err(Answer::error(400, &message));
                    }
                }
            }
            (Request::Events { since, follow }, "GET")
        }
        ["v1", "health"] | ["readyz"] => (Request::Health { live: false }, "GET"),
        ["livez"] => (Request::Health { live: true }, "GET"),
        ["metrics"] => (Request::Metrics, "GET"),
        ["v1", "shutdown"] => (Request::Shutdown, "POST"),
        ["v1", "reload"] => (Request::Reload, "POST"),
        _ => return Err(Answer::error(404, &format!("no such endpoint: {path}"))),
    };
    if request.1 != method {
        let message = format!("{path} takes {}, not {method}", request.1);
        return Err(Answer::error(405, &message));
    }
    Ok(request.0)
}

/// The query of `GET /v1/services`: `names` (words separated by commas, each percent-decoded),
/// `group` (with or without its `@`) and `match`. Other parameters are ignored, as they always
/// were.
fn services_query(query: &str) -> Result<Request, Answer> {
    let (mut names, mut group, mut pattern) = (None, None, None);
    for kv in query.split('&') {
        match kv.split_once('=').unwrap_or((kv, "")) {
            ("names", v) => {
                let words = v.split(',').filter(|n| !n.is_empty()).map(word);
                names = Some(words.collect::<Result<Vec<String>, Answer>>()?);
            }
            ("group", v) => {
                let g = word(v)?;
                group = Some(g.strip_prefix('@').map_or(g.clone(), str::to_string));
            }
            ("match", v) => pattern = Some(word(v)?),
            _ => {}
        }
    }
    Ok(Request::Services {
        names,
        group,
        pattern,
    })
}

/// A service's name, `@group` or pattern as it came in the URL, percent-decoded.
fn word(text: &str) -> Result<String, Answer> {
    selector::decode(text).ok_or_else(|| Answer::error(400, &format!("bad %-escape in {text:?}")))
}

/// The bytes of a whole HTTP response.
pub fn response(answer: &Answer) -> Vec<u8> {
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        409 => "Conflict",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Response",
    };
    let challenge = if answer.status == 401 {
        "WWW-Authenticate: Bearer\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\n{challenge}Content-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    out.extend_from_slice(answer.body.as_bytes());
    out
}

/// Where the daemon binds its socket: `--socket`, else `$PIDONE_SOCKET`, else
/// [`default_socket`]'s pick.
pub fn socket_path(cli: Option<&Path>) -> PathBuf {
    given_socket(cli).unwrap_or_else(|| {
        let run = rustix::fs::stat("/run").ok().map(|st| RunDir {
            writable: rustix::fs::access("/run", rustix::fs::Access::WRITE_OK).is_ok(),
            shared: st.st_mode & 0o022 != 0,
        });
        default_socket(run, default_sockets())
    })
}

/// Where the client looks: `--socket`, else `$PIDONE_SOCKET`, else the first of
/// [`default_sockets`] that exists as a socket (the daemon's pick depends on what its user may
/// write, which the client's user may not share), else where the daemon would be.
pub fn client_socket_path(cli: Option<&Path>) -> PathBuf {
    if let Some(path) = given_socket(cli) {
        return path;
    }
    let is_socket = |p: &&PathBuf| {
        rustix::fs::lstat(*p)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_socket())
    };
    let found = default_sockets().iter().find(is_socket).cloned();
    found.unwrap_or_else(|| socket_path(None))
}

/// `--socket`, else `$PIDONE_SOCKET`.
fn given_socket(cli: Option<&Path>) -> Option<PathBuf> {
    cli.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PIDONE_SOCKET").map(PathBuf::from))
}

/// What pidone's user may do with `/run`: write to it, and whether others may too.
#[derive(Debug, Clone, Copy)]
struct RunDir {
    writable: bool,
    shared: bool,
}

/// The default places, in order: `/run/pidone.sock`, `/run/pidone/pidone.sock`,
/// `$XDG_RUNTIME_DIR/pidone.sock`, `/tmp/pidone-UID/pidone.sock`.
fn default_sockets() -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from("/run/pidone.sock"),
        PathBuf::from("/run/pidone/pidone.sock"),
    ];
    out.extend(std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("pidone.sock")));
    let uid = rustix::process::getuid().as_raw();
    out.push(PathBuf::from(format!("/tmp/pidone-{uid}/pidone.sock")));
    out
}

/// The daemon's pick among `candidates` ([`default_sockets`]): `/run` itself when pidone may
/// write there and nobody else may; a directory of its own in `/run` when others may write there
/// too (a `--tmpfs /run` without a mode is 1777, a Kubernetes emptyDir 0777); else the runtime
/// directory or a directory of its own in `/tmp`.
fn default_socket(run: Option<RunDir>, mut candidates: Vec<PathBuf>) -> PathBuf {
    let pick = match run {
        Some(RunDir {
            writable: true,
            shared: false,
        }) => 0,
        Some(RunDir { writable: true, .. }) => 1,
        _ => 2,
    };
    let last = candidates.len().saturating_sub(1);
    candidates.swap_remove(pick.min(last))
}

/// Refuses a socket directory that someone else could change, so that nobody can take the
/// socket's place: it must be a directory owned by root or pidone's user and writable by no one
/// else. A symlink is followed only when it is owned by them too.
fn check_dir(dir: &Path) -> io::Result<()> {
    use rustix::fs::FileType;
    let me = rustix::process::getuid().as_raw();
    let trusted = |uid| uid == 0 || uid == me;
    let mut st = rustix::fs::lstat(dir)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink && trusted(st.st_uid) {
        st = rustix::fs::stat(dir)?;
    }
    let why = if !trusted(st.st_uid) {
        format!("it is owned by uid {}, not root or pidone's", st.st_uid)
    } else if !FileType::from_raw_mode(st.st_mode).is_dir() {
        "it is not a directory".to_string()
    } else if st.st_mode & 0o022 != 0 {
        "users other than its owner may write to it".to_string()
    } else {
        return Ok(());
    };
    let message = format!("refusing the directory {}: {why}", dir.display());
    Err(io::Error::new(io::ErrorKind::PermissionDenied, message))
}

/// A pool of connections and the listening sockets that feed it: the unix socket, or every
/// TCP address of `[api] listen`.
pub struct Server {
    listeners: Vec<Listener>,
    /// The unix socket's path, removed when the server goes.
    path: Option<PathBuf>,
    /// Who may ask what, on TCP (`[api]`): its clients have no peer credentials. `None` for the
    /// unix socket, where the peer's uid decides.
    pub gate: Option<crate::config::Api>,
    pub conns: Vec<Conn>,
    /// After an accept error (EMFILE…): the listener leaves the poll set until then.
    accept_paused_until: Option<Instant>,
    /// Clients dropped over the output budget: a flood of them is one warning per
    /// [`Tally::PERIOD`], not one each; the supervisor reports what is left when due.
    pub dropped: Tally,
}

/// One listening socket, non-blocking.
struct Listener {
    fd: OwnedFd,
    /// Its TCP address (`None`: the unix socket).
    addr: Option<SocketAddr>,
}

/// One client connection.
pub struct Conn {
    stream: stream::Socket,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    written: usize,
    deadline: Instant,
    /// When it was accepted.
    opened: Instant,
    /// The client's uid (SO_PEERCRED); on TCP pidone's own, once the gate admitted a request.
    pub uid: u32,
    closed: bool,
    /// The service whose new output lines this connection streams (`follow=true`): it has no
    /// deadline and stays open until the client leaves. The service's key is the supervisor's
    /// (stable across reloads).
    follow: Option<u64>,
    /// A stream that gave way ([`Conn::give_way`]): it takes no more lines and closes once its
    /// last line is out.
    ending: bool,
}

impl Server {
    /// Binds the socket (mode 0600) in a safe directory ([`check_dir`]; created 0755 if
    /// missing). A stale file at the path is replaced, never followed; a live pidone behind it is
    /// an error.
    pub fn bind(path: &Path) -> io::Result<Server> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        let created = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent);
        // Checked whether it was created or not: a squatter's directory is refused as such.
        check_dir(parent).and(created)?;
        if let Ok(st) = rustix::fs::lstat(path) {
            let socket = rustix::fs::FileType::from_raw_mode(st.st_mode).is_socket();
            if socket && UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another pidone is listening there", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // Create the socket with no access for others from the start, then set exactly 0600.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let listener = UnixListener::bind(path);
        rustix::process::umask(old);
        let listener = listener?;
        rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let mut server = Server::new(None);
        server.path = Some(path.to_path_buf());
        let fd = OwnedFd::from(listener);
        server.listeners.push(Listener { fd, addr: None });
        Ok(server)
    }

    /// A server of TCP clients on `api.listen`, admitted by `api`'s gate. The error names the
    /// address that cannot be bound and where it is written.
    pub fn listen(api: crate::config::Api) -> Result<Server, String> {
        let mut server = Server::new(None);
        server.relisten(&api.listen)?;
        server.gate = Some(api);
        Ok(server)
    }

    fn new(gate: Option<crate::config::Api>) -> Server {
        Server {
            listeners: Vec::new(),
            path: None,
            gate,
            conns: Vec::new(),
            accept_paused_until: None,
            dropped: Tally::default(),
        }
    }

    /// Listens on exactly `addrs`: sockets already bound to one of them are kept (with their
    /// waiting clients), others closed, new ones bound. Nothing changes when one cannot be bound.
    pub fn relisten(&mut self, addrs: &[(SocketAddr, String)]) -> Result<(), String> {
        let mut fresh = Vec::new();
        for (addr, at) in addrs {
            let bound = |l: &Listener| l.addr == Some(*addr);
            if self.listeners.iter().any(bound) || fresh.iter().any(bound) {
                continue;
            }
            let fd = crate::os::listen::bind(&crate::config::ListenAddr::Tcp(*addr))
                .and_then(|fd| Ok(rustix::io::ioctl_fionbio(&fd, true).map(|()| fd)?))
                .map_err(|err| format!("{at}: {err}"))?;
            fresh.push(Listener {
                fd,
                addr: Some(*addr),
            });
        }
        (self.listeners).retain(|l| addrs.iter().any(|(a, _)| l.addr == Some(*a)));
        self.listeners.extend(fresh);
        Ok(())
    }

    /// The listening sockets, to poll for newcomers.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.listeners.iter().map(|l| l.fd.as_fd())
    }

    /// Reads what connection `i` sent; returns its request once whole (and admitted by the
    /// gate, on TCP).
    pub fn read(&mut self, i: usize) -> Option<Request> {
        let gate = self.gate.as_ref();
        self.conns.get_mut(i)?.read(gate)
    }

    /// True while another connection may be accepted: a slot is free or an idle connection can
    /// give way. Else the listener leaves the poll set and newcomers wait in the kernel's backlog.
    pub fn has_room(&self, now: Instant) -> bool {
        self.accept_paused_until.is_none()
            && (self.open() < MAX_CONNECTIONS || self.conns.iter().any(|c| c.may_give_way(now)))
    }

    /// Connections not closed.
    fn open(&self) -> usize {
        self.conns.iter().filter(|c| !c.closed).count()
    }

    /// True while another client may follow a service's logs: followers never expire, so they
    /// get at most [`MAX_FOLLOWERS`] of the connections and probes always find room.
    pub fn may_follow(&self) -> bool {
        self.conns.iter().filter(|c| c.follow.is_some()).count() < MAX_FOLLOWERS
    }

    /// Accepts pending connections, at most [`MAX_CONNECTIONS`] per call. When all slots are
    /// taken, a newcomer takes the place of the oldest idle connection accepted before this call
    /// (which had a turn to send its request): silent clients cannot keep others out.
    pub fn accept(&mut self, now: Instant) {
        let before = self.conns.len();
        let mut which = 0;
        for _ in 0..MAX_CONNECTIONS {
            let full = self.open() >= MAX_CONNECTIONS;
            let idle = (self.conns.iter().take(before)).position(|c| c.may_give_way(now));
            if full && idle.is_none() {
                return;
            }
            let Some(listener) = self.listeners.get(which) else {
                return;
            };
            let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
            match rustix::net::accept_with(&listener.fd, flags) {
                Ok(fd) => {
                    let Some(stream) = stream::Socket::accepted(fd, self.gate.as_ref()) else {
                        continue;
                    };
                    if let Some(oldest) = idle.filter(|_| full) {
                        if let Some(conn) = self.conns.get_mut(oldest) {
                            conn.close();
                        }
                    }
                    // Unknown credentials may only read (u32::MAX is nobody's uid). On TCP the
                    // gate admits each request, and what it admits acts as pidone's user.
                    let uid = match self.gate {
                        Some(_) => rustix::process::getuid().as_raw(),
                        None => crate::os::sys::peer_uid(&stream.fd()).unwrap_or(u32::MAX),
                    };
                    self.conns.push(Conn {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        written: 0,
                        deadline: now + DEADLINE,
                        opened: now,
                        uid,
                        closed: false,
                        follow: None,
                        ending: false,
                    });
                }
                // This listener has no one waiting: the next one may.
                Err(rustix::io::Errno::AGAIN) => which += 1,
                // A client that left while waiting, or a signal: try again.
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
                Err(err) => {
                    // EMFILE and the like: the pending client stays readable, so stop polling the
                    // listener for a moment instead of spinning on it.
                    log::warn!("control socket: accept: {err}; pausing for {ACCEPT_PAUSE:?}");
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Drops closed connections and those past their deadline (followers have none), ends an
    /// accept pause that is over; returns the earliest deadline left.
    pub fn expire(&mut self, now: Instant) -> Option<Instant> {
        // A follower has no deadline, until it is ending: then it has a few seconds to take its
        // last lines.
        self.conns
            .retain(|c| !c.closed && ((c.follow.is_some() && !c.ending) || c.deadline > now));
        if self.accept_paused_until.is_some_and(|until| until <= now) {
            self.accept_paused_until = None;
        }
        let conns = self
            .conns
            .iter()
            .filter(|c| c.follow.is_none() || c.ending)
            .map(|c| c.deadline);
        // Full of connections too young to give way: the listener is back when one is old enough.
        let full = self.open() >= MAX_CONNECTIONS;
        let room = (self.conns.iter().filter(|c| full && c.idle()))
            .map(|c| c.opened + GIVE_WAY_AFTER)
            .filter(|at| *at > now)
            .min();
        conns.chain(self.accept_paused_until).chain(room).min()
    }

    /// Ends the streams of the clients following service `service`, which is gone: each gets
    /// what is queued for it, then the connection closes.
    pub fn end_followers(&mut self, service: u64) {
        for conn in self.conns.iter_mut().filter(|c| c.follow == Some(service)) {
            if conn.answering() {
                conn.end();
            } else {
                conn.close();
            }
        }
    }

    /// Queues new output lines of service `service` for the clients following it, within the
    /// budget.
    /// The budget is kept after each follower's copy, so that a large batch of lines for many
    /// followers never sits in memory many times over.
    pub fn follow_lines(&mut self, service: u64, lines: &Lines) {
        // Made text once, and only when someone follows.
        let mut text = None;
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            if conn.follow != Some(service) || conn.ending || conn.closed {
                continue;
            }
            let text = text.get_or_insert_with(|| String::from_utf8_lossy(lines.bytes()));
            conn.outbuf.extend_from_slice(text.as_bytes());
            self.keep_budget();
        }
    }

    /// Keeps the bytes waiting on all connections within [`OUTPUT_BUDGET`], so that clients
    /// that do not read cannot make pidone grow: while over, the connection holding the most
    /// gives way. Called after anything is queued.
    pub fn keep_budget(&mut self) {
        loop {
            let total: usize = self.conns.iter().map(Conn::held).sum();
            if total <= OUTPUT_BUDGET {
                return;
            }
            let Some(conn) = self.conns.iter_mut().max_by_key(|c| c.held()) else {
                return;
            };
            let held = conn.held();
            conn.give_way();
            if let Some(n) = self.dropped.add(1, Instant::now()) {
                log::warn!(
                    "control socket: clients left {total} bytes unread; dropped {n} of them \
                     (the largest held {held})"
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Conn {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.fd()
    }

    /// Marks the connection for removal at the end of this turn; what it held is freed now.
    pub fn close(&mut self) {
        self.closed = true;
        self.inbuf = Vec::new();
        self.outbuf = Vec::new();
        self.written = 0;
    }

    /// True while it waits for (the rest of) a request: serving it reads and answers one, and it
    /// may give way to a newcomer.
    pub fn idle(&self) -> bool {
        !self.closed && !self.answering() && self.follow.is_none()
    }

    /// True for an idle connection open for at least [`GIVE_WAY_AFTER`].
    fn may_give_way(&self, now: Instant) -> bool {
        self.idle() && now.saturating_duration_since(self.opened) >= GIVE_WAY_AFTER
    }

    /// Bytes of output it holds (a stream's lines already written are forgotten now and then).
    pub fn held(&self) -> usize {
        self.outbuf.len()
    }

    /// Frees what the connection holds: an answer is dropped; a stream keeps the rest of the
    /// line being written, ends with an error line and closes once that is out.
    fn give_way(&mut self) {
        if self.follow.is_none() || self.ending {
            return self.close();
        }
        let rest = self.outbuf.get(self.written..).unwrap_or_default();
        let last = self.written.checked_sub(1).and_then(|i| self.outbuf.get(i));
        let end = match last {
            None | Some(b'\n') => 0,
            _ => rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| p + 1),
        };
        let mut out = rest.get(..end).unwrap_or_default().to_vec();
        out.extend_from_slice(STREAM_ERROR.as_bytes());
        out.extend_from_slice(b"dropped: this client fell behind (over 8 MiB unread)\n");
        self.outbuf = out;
        self.written = 0;
        self.end();
    }

    /// A stream takes no more lines; it closes once its last line is out, or after
    /// [`DEADLINE`] if its client does not read it.
    fn end(&mut self) {
        self.ending = true;
        self.deadline = Instant::now() + DEADLINE;
    }

    /// True once [`Conn::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True once a response is queued: poll for writing, not reading. A response all handed to
    /// a TLS session is still being answered until its records are out.
    pub fn answering(&self) -> bool {
        self.written < self.outbuf.len() || (!self.outbuf.is_empty() && self.stream.flushing())
    }

    /// True while a TLS session holds records the socket had no room for (a handshake's answer
    /// before any request): poll for writing as well as reading.
    pub fn flushing(&self) -> bool {
        self.stream.flushing()
    }

    /// True for a connection streaming a service's output.
    pub fn following(&self) -> bool {
        self.follow.is_some()
    }

    /// Starts streaming: `text` ([`STREAM_HEAD`] and the lines so far), then every new line of
    /// `service` until the client leaves.
    pub fn stream(&mut self, service: u64, text: String) {
        self.outbuf = text.into_bytes();
        self.written = 0;
        self.inbuf = Vec::new();
        self.follow = Some(service);
    }

    /// For a follower: reads and ignores what the client sends, noticing when it leaves.
    pub fn drain_input(&mut self) {
        let mut chunk = [0u8; 512];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return self.close(),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(),
            }
        }
    }

    /// Reads what is available; returns the request once whole (and admitted by `gate`, on TCP).
    /// On end of file or an error the connection closes itself.
    fn read(&mut self, gate: Option<&crate::config::Api>) -> Option<Request> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.close();
                    return None;
                }
                Ok(n) => {
                    self.inbuf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    match parse_at(&self.inbuf, gate) {
                        Parsed::Partial => continue,
                        Parsed::Done(request) => return Some(request),
                        Parsed::Bad(answer) => {
                            self.answer(&answer);
                            return None;
                        }
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return None,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close();
                    return None;
                }
            }
        }
    }

    /// Queues the response; the request is over.
    pub fn answer(&mut self, answer: &Answer) {
        self.outbuf = response(answer);
        self.written = 0;
        self.inbuf = Vec::new();
    }

    /// Writes what it can of the response; once it is all out, or the client is gone, the
    /// connection closes itself.
    pub fn write(&mut self) {
        while self.written < self.outbuf.len() {
            let rest = self.outbuf.get(self.written..).unwrap_or_default();
            match self.stream.write(rest) {
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.follow.is_some() && self.written * 2 >= self.outbuf.len() {
                        // A stream never ends: forget the lines that are out once they are most of
                        // the buffer, so that it stays bounded and moving the rest is cheap.
                        let out = self.outbuf.get(..self.written).unwrap_or_default();
                        let done = out.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                        self.outbuf.drain(..done);
                        self.outbuf.shrink_to_fit(); // The budget counts lengths: keep to them.
                        self.written -= done;
                    }
                    return;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // EPIPE/ECONNRESET: the client left without its answer.
                    log::debug!("control socket: write: {err}");
                    return self.close();
                }
            }
        }
        let last = self.follow.is_none() || self.ending;
        if last {
            self.stream.finish();
        }
        // What a TLS session still holds (its last records, close_notify) goes before the close.
        match self.stream.flush() {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) => {
                log::debug!("control socket: write: {err}");
                return self.close();
            }
        }
        if !last {
            // A follower stays open: everything so far is out, wait for more lines.
            self.outbuf = Vec::new();
            self.written = 0;
        } else {
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection to nobody in particular, for the server's bookkeeping.
    fn conn(now: Instant) -> (Conn, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("a socket pair");
        let conn = Conn {
            stream: stream::Socket::plain(ours.into()),
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            written: 0,
            deadline: now + DEADLINE,
            opened: now,
            uid: 0,
            closed: false,
            follow: None,
            ending: false,
        };
        (conn, theirs)
    }

    #[test]
    fn the_socket_goes_where_only_pidone_may_write() {
        let places = || {
            [
                "/run/pidone.sock",
                "/run/pidone/pidone.sock",
                "/x/pidone.sock",
                "/tmp/p/pidone.sock",
            ]
            .map(PathBuf::from)
            .to_vec()
        };
        let run = |writable, shared| Some(RunDir { writable, shared });
        let pick = |run| default_socket(run, places());
        assert_eq!(pick(run(true, false)), Path::new("/run/pidone.sock"));
        // A 1777 tmpfs or a 0777 emptyDir: a directory of pidone's own inside it.
        assert_eq!(pick(run(true, true)), Path::new("/run/pidone/pidone.sock"));
        assert_eq!(pick(run(false, false)), Path::new("/x/pidone.sock"));
        assert_eq!(pick(None), Path::new("/x/pidone.sock"));
        let without_xdg = || {
            places()
                .into_iter()
                .filter(|p| !p.starts_with("/x"))
                .collect()
        };
        let pick_tmp = default_socket(run(false, true), without_xdg());
        assert_eq!(pick_tmp, Path::new("/tmp/p/pidone.sock"));
    }

    #[test]
    fn a_connection_gives_way_only_once_it_had_time_to_send_its_request() {
        let dir = std::env::temp_dir().join(format!("pidone-giveway-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let mut server = Server::bind(&dir.join("s.sock")).expect("bind");
        let now = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let (c, peer) = conn(now);
            server.conns.push(c);
            peers.push(peer);
        }
        assert!(!server.has_room(now), "all just opened: none gives way yet");
        let due = server.expire(now).expect("a wake-up");
        assert_eq!(
            due,
            now + GIVE_WAY_AFTER,
            "the listener is back when the oldest may go"
        );
        assert!(server.has_room(now + GIVE_WAY_AFTER));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_turn_serves_eight_small_answers_or_one_megabyte_or_two_milliseconds() {
        let quick = Duration::from_micros(100);
        let mut small = TurnQuota::default();
        let mut served = 0;
        while small.admits() {
            small.served(2_000, quick);
            served += 1;
        }
        assert_eq!(served, REQUESTS_PER_TURN);
        let mut large = TurnQuota::default();
        assert!(large.admits(), "the first is always served");
        large.served(ANSWER_BYTES_PER_TURN + 1, quick);
        assert!(!large.admits(), "the next megabyte waits for the next turn");
        let mut mixed = TurnQuota::default();
        mixed.served(ANSWER_BYTES_PER_TURN / 2, quick);
        assert!(mixed.admits());
        mixed.served(ANSWER_BYTES_PER_TURN / 2, quick);
        assert!(!mixed.admits());
        let mut slow = TurnQuota::default();
        slow.served(40_000, Duration::from_millis(1));
        assert!(slow.admits());
        slow.served(40_000, Duration::from_millis(1));
        assert!(
            !slow.admits(),
            "a scrape of /proc for each service takes its time"
        );
    }

    #[test]
    fn a_dropped_follower_that_never_reads_gives_its_place_back() {
        let dir = std::env::temp_dir().join(format!("pidone-ctl-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let mut server = Server::bind(&dir.join("s.sock")).expect("bind");
        let now = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..MAX_FOLLOWERS {
            let (mut c, peer) = conn(now);
            c.stream(7, "HTTP/1.1 200 OK\r\n\r\n".to_string() + &"x".repeat(100));
            server.conns.push(c);
            peers.push(peer);
        }
        assert!(!server.may_follow());
        // Over the budget: every one is dropped, none can take its last line (nobody reads).
        for c in &mut server.conns {
            c.give_way();
        }
        server.expire(now);
        assert!(
            !server.may_follow(),
            "a dropped follower has a few seconds to read"
        );
        // Each was given its few seconds when it was dropped, a moment after `now`.
        server.expire(Instant::now() + DEADLINE + Duration::from_millis(1));
        assert!(server.may_follow(), "then its place is free");
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn clients_dropped_over_the_budget_are_warned_about_once_then_summed() {
        let dir = std::env::temp_dir().join(format!("pidone-budget-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let mut server = Server::bind(&dir.join("s.sock")).expect("bind");
        let now = Instant::now();
        let mut peers = Vec::new();
        for _ in 0..4 {
            let (mut c, peer) = conn(now);
            c.outbuf = vec![b'x'; OUTPUT_BUDGET / 2 + 1];
            server.conns.push(c);
            peers.push(peer);
        }
        server.keep_budget();
        assert_eq!(server.conns.iter().filter(|c| c.is_closed()).count(), 3);
        // The first drop was warned about at once; the two after it wait for the period.
        let due = server.dropped.deadline().expect("a sum waits");
        assert_eq!(server.dropped.due(due), Some(2));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn req(text: &str) -> Parsed {
        parse(text.as_bytes())
    }

    #[test]
    fn routes() {
        assert_eq!(
            req("GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Done(Request::Services {
                names: None,
                group: None,
                pattern: None
            })
        );
        assert_eq!(
            req("GET /v1/services?names=a,b HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Services {
                names: Some(vec!["a".into(), "b".into()]),
                group: None,
                pattern: None
            })
        );
        assert_eq!(
            req("POST /v1/services/web/restart HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Parsed::Done(Request::Act {
                name: "web".into(),
                verb: Verb::Restart
            })
        );
        assert_eq!(
            req("GET /metrics HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Metrics)
        );
        assert_eq!(
            req(
                "POST /v1/services/web/signal HTTP/1.1\r\nContent-Length: 16\r\n\r\n{\"signal\":\"HUP\"}"
            ),
            Parsed::Done(Request::Signal {
                name: "web".into(),
                signal: libc::SIGHUP
            })
        );
        assert_eq!(
            req("GET /v1/health HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Health { live: false })
        );
        assert_eq!(
            req("GET /readyz HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Health { live: false })
        );
        assert_eq!(
            req("GET /livez HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Health { live: true })
        );
        assert_eq!(
            req("POST /v1/reload HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Reload)
        );
        assert_eq!(
            req("GET /v1/services/web/logs?n=5&follow=true HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Logs {
                name: "web".into(),
                n: 5,
                follow: true
            })
        );
        assert_eq!(
            req("GET /v1/services/web/logs HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Logs {
                name: "web".into(),
                n: DEFAULT_LOG_LINES,
                follow: false
            })
        );
        assert_eq!(
            req("POST /v1/shutdown HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Shutdown)
        );
        assert_eq!(
            req("GET /v1/events HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Events {
                since: None,
                follow: false
            })
        );
        assert_eq!(
            req("GET /v1/events?since=7&follow=true HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Events {
                since: Some(7),
                follow: true
            })
        );
        assert_eq!(status(req("GET /v1/events?since=x HTTP/1.1\r\n\r\n")), 400);
    }

    #[test]
    fn partial_requests_wait_for_more() {
        assert_eq!(req("GET /v1/serv"), Parsed::Partial);
        assert_eq!(
            req("POST /v1/shutdown HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
            Parsed::Partial
        );
    }

    fn status(p: Parsed) -> u16 {
        match p {
            Parsed::Bad(a) => a.status,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn errors_are_json_with_the_right_status() {
        assert_eq!(status(req("garbage\r\n\r\n")), 400);
        assert_eq!(status(req("GET /nope HTTP/1.1\r\n\r\n")), 404);
        assert_eq!(
            status(req("GET /v1/services/web/logs?n=x HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(req("GET /v1/services/web/logs?bogus=1 HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(req("GET /v1/services/web/explode HTTP/1.1\r\n\r\n")),
            404
        );
        assert_eq!(status(req("GET /v1/shutdown HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(
            status(req(
                "POST /v1/shutdown HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"
            )),
            413
        );
        assert_eq!(
            status(req(
                "POST /v1/shutdown HTTP/1.1\r\nContent-Length: x\r\n\r\n"
            )),
            400
        );
        assert_eq!(
            status(req(
                "POST /v1/services/web/signal HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
            )),
            400
        );
        assert_eq!(
            status(req(
                "POST /v1/services/web/signal HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            )),
            400
        );
        let huge = format!(
            "GET /v1/services HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(status(parse(huge.as_bytes())), 431);
        let Parsed::Bad(answer) = req("GET /nope HTTP/1.1\r\n\r\n") else {
            panic!()
        };
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("/nope"));
    }

    #[test]
    fn response_bytes() {
        let bytes = response(&Answer::json(200, "{}".into()));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    #[test]
    fn a_socket_directory_others_could_change_is_refused() {
        use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
        let base = std::env::temp_dir().join(format!("pidone-check-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        mode(&base, 0o755).unwrap();
        let (ours, open, theirs) = (base.join("ours"), base.join("open"), base.join("theirs"));
        for dir in [&ours, &open, &theirs] {
            std::fs::create_dir(dir).unwrap();
            mode(dir, 0o755).unwrap();
        }
        mode(&open, 0o1777).unwrap();
        chown(&theirs, Some(65534), None).unwrap();
        let (link, their_link) = (base.join("link"), base.join("their-link"));
        symlink(&ours, &link).unwrap();
        symlink(&ours, &their_link).unwrap();
        lchown(&their_link, Some(65534), None).unwrap();
        let why = |dir: &Path| check_dir(dir).map_err(|e| e.to_string());
        assert_eq!(why(&ours), Ok(()));
        assert_eq!(why(&link), Ok(()), "a symlink of root's own is followed");
        assert!(
            why(&open)
                .unwrap_err()
                .contains("other than its owner may write")
        );
        for dir in [&theirs, &their_link] {
            let err = why(dir).unwrap_err();
            assert!(err.contains("owned by uid 65534"), "{err}");
            assert!(err.contains(dir.to_str().unwrap()), "{err}");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn acting_requests_are_marked() {
        assert!(Request::Shutdown.acts());
        assert!(!Request::Health { live: true }.acts());
        let list = Request::Services {
            names: None,
            group: None,
            pattern: None,
        };
        assert!(!list.acts());
    }

    /// Issue 18: words in a path or `?names=` are percent-decoded (`?` would end the path);
    /// `group` and `match` narrow the list.
    #[test]
    fn routes_take_groups_and_patterns() {
        let services = |names: Option<Vec<&str>>, group: Option<&str>, pattern: Option<&str>| {
            Parsed::Done(Request::Services {
                names: names.map(|n| n.into_iter().map(String::from).collect()),
                group: group.map(String::from),
                pattern: pattern.map(String::from),
            })
        };
        assert_eq!(
            req("GET /v1/services?names=%40db,web-*,%5Ba%2Cb%5D HTTP/1.1\r\n\r\n"),
            services(Some(vec!["@db", "web-*", "[a,b]"]), None, None)
        );
        assert_eq!(
            req("GET /v1/services?group=backend&match=web-%3F HTTP/1.1\r\n\r\n"),
            services(None, Some("backend"), Some("web-?"))
        );
        assert_eq!(
            req("GET /v1/services?group=%40backend HTTP/1.1\r\n\r\n"),
            services(None, Some("backend"), None)
        );
        assert_eq!(
            req("POST /v1/services/web-%3F/restart HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Act {
                name: "web-?".into(),
                verb: Verb::Restart
            })
        );
        assert_eq!(
            req("GET /v1/services/%40backend/logs?n=5 HTTP/1.1\r\n\r\n"),
            Parsed::Done(Request::Logs {
                name: "@backend".into(),
                n: 5,
                follow: false
            })
        );
        assert_eq!(
            status(req("POST /v1/services/web-%zz/stop HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(req("GET /v1/services?names=%4 HTTP/1.1\r\n\r\n")),
            400
        );
    }
}
