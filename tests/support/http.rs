//! The tests' client of the control socket: raw HTTP/1.1 over a `UnixStream` (no curl needed),
//! answers read whole, never panicking, so that a test can poll with them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::process::DEADLINE;

/// The bytes of `GET target`.
pub fn get_request(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// Connects and sends `GET target` without reading the answer (for clients that never read).
pub fn send_get(socket: &Path, target: &str) -> UnixStream {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .write_all(get_request(target).as_bytes())
        .expect("send");
    stream
}

/// Sends one raw request to the control socket and reads the whole answer: its status and body,
/// or None if the socket does not answer with HTTP/1.1.
pub fn exchange(socket: &Path, request: &[u8]) -> Option<(u16, String)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(DEADLINE)).ok()?;
    stream.write_all(request).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse_answer(&raw)
}

/// The status and body of an HTTP answer.
pub fn parse_answer(raw: &[u8]) -> Option<(u16, String)> {
    let raw = String::from_utf8_lossy(raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut first = head.lines().next()?.split_whitespace();
    if first.next()? != "HTTP/1.1" {
        return None;
    }
    Some((first.next()?.parse().ok()?, body.to_string()))
}

/// `GET target` on the control socket.
pub fn get(socket: &Path, target: &str) -> Option<(u16, String)> {
    exchange(socket, get_request(target).as_bytes())
}

/// One service object, read without panicking (for polling).
pub fn service_of(socket: &Path, name: &str) -> Option<serde_json::Value> {
    let (status, body) = get(socket, "/v1/services")?;
    if status != 200 {
        return None;
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
    list.into_iter().find(|s| s["name"] == name)
}

/// The check called `check` of a service object (`Null` if there is none).
pub fn check_of(service: &serde_json::Value, check: &str) -> serde_json::Value {
    service["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == check))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// A JSON number as an integer, -1 if it is not one.
pub fn int(value: &serde_json::Value) -> i64 {
    value.as_i64().unwrap_or(-1)
}

/// Whether an error text talks about a timeout.
pub fn mentions_timeout(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["timed out", "timeout", "time out"]
        .iter()
        .any(|w| text.contains(w))
}
