//! Feeds arbitrary bytes to the control socket's request parser, as a connection's buffer: it must
//! say "more", give a request, or give an error answer, never panic. A signal it accepts must be
//! one the system has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::control::{self, Parsed, Request};

fuzz_target!(|data: &[u8]| {
    match control::parse(data) {
        Parsed::Partial => {}
        Parsed::Done(Request::Signal { signal, .. }) => {
            assert!(pidone::os::sys::signal(signal).is_some(), "signal {signal}");
        }
        Parsed::Done(_) => {}
        Parsed::Bad(answer) => {
            assert!((400..500).contains(&answer.status));
            let _ = control::response(&answer);
        }
    }
});
