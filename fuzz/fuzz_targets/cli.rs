//! Feeds arbitrary argument vectors to the command-line parser: usage errors, never panics.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = data.split(|b| *b == 0).map(|a| OsString::from_vec(a.to_vec()));
    let _ = pidone::cli::parse(args);
});
