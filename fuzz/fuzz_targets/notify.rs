//! Feeds arbitrary bytes to both readiness channels:
//! - as one sd_notify datagram, through the message parser (read as the socket reads it);
//! - as what a service writes to its notify fd, through a real pipe and [`Notifier::read`], in
//!   pieces as the pipe takes them: ready exactly when a newline came, EOF once the writer closes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::io::notify::{self, Notice, Notifier};

fuzz_target!(|data: &[u8]| {
    let mut notice = Notice::default();
    notify::parse_message(&String::from_utf8_lossy(data), &mut notice);

    let Ok((notifier, write)) = Notifier::pipe() else {
        return;
    };
    if rustix::fs::fcntl_setfl(&write, rustix::fs::OFlags::NONBLOCK).is_err() {
        return;
    }
    let mut ready = false;
    let mut rest = data;
    while !rest.is_empty() {
        match rustix::io::write(&write, rest) {
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(err) => panic!("write: {err}"),
        }
        let got = notifier.read(None);
        assert!(!got.eof);
        ready |= got.ready;
    }
    drop(write);
    let last = notifier.read(None);
    assert!(last.eof);
    assert_eq!(ready || last.ready, data.contains(&b'\n'));
});
