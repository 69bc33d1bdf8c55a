//! Where pidone's own log messages go. Before the loop runs (start-up errors, the client,
//! `validate`) they are written to stderr at once. While the loop runs they are captured here
//! and handed to the output multiplexer each turn ([`take`]), so that a stderr nobody reads can
//! never block PID 1, and pidone's lines interleave whole with the services' own.
//!
//! The capture buffer is bounded: beyond [`LIMIT`] bytes in one turn of the loop (thousands of
//! services changing state at once), messages are counted and dropped.

use std::io::{self, Write};
use std::sync::Mutex;

/// The most captured bytes held between two turns of the loop.
pub const LIMIT: usize = 512 * 1024;

struct Capture {
    on: bool,
    bytes: Vec<u8>,
    dropped: u64,
}

static CAPTURE: Mutex<Capture> = Mutex::new(Capture {
    on: false,
    bytes: Vec::new(),
    dropped: 0,
});

fn capture() -> std::sync::MutexGuard<'static, Capture> {
    // pidone has one thread and aborts on panic: the lock is never poisoned, and if it were,
    // its data is still consistent (plain bytes).
    CAPTURE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts (true) or ends (false) capturing. Ending it writes nothing: [`take`] what is left
/// first.
pub fn set_capture(on: bool) {
    capture().on = on;
}

/// The messages captured since the last call (whole lines), and how many were dropped.
pub fn take() -> (Vec<u8>, u64) {
    let mut c = capture();
    let dropped = std::mem::take(&mut c.dropped);
    (std::mem::take(&mut c.bytes), dropped)
}

/// For a panic hook: what was captured and not yet queued, without waiting for the lock (the
/// panic may have happened while it was held).
pub fn take_for_panic() -> Vec<u8> {
    match CAPTURE.try_lock() {
        Ok(mut c) => {
            c.on = false;
            std::mem::take(&mut c.bytes)
        }
        Err(_) => Vec::new(),
    }
}

/// The logger's output: one formatted record per `write_all`.
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut c = capture();
        if !c.on {
            drop(c);
            return io::stderr().write(buf);
        }
        if c.bytes.len() + buf.len() <= LIMIT {
            c.bytes.extend_from_slice(buf);
        } else {
            c.dropped += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_messages_are_bounded_and_counted() {
        set_capture(true);
        let _ = take();
        let mut w = Writer;
        w.write_all(b"pidone: one\n").expect("write");
        let big = vec![b'x'; LIMIT];
        w.write_all(&big).expect("write");
        w.write_all(b"pidone: two\n").expect("write");
        let (bytes, dropped) = take();
        set_capture(false);
        assert_eq!(bytes, b"pidone: one\npidone: two\n");
        assert_eq!(dropped, 1);
        assert_eq!(take(), (Vec::new(), 0));
    }
}
