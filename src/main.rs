//! The pidone binary: hands its arguments to [`pidone::run`] and exits with what it returns, or
//! to the s6-overlay helper command that its name (argv[0]) is, if it is one.
//!
//! `main` is the C entry point (`no_main`) on purpose: Rust's own start-up code sets `SIGPIPE`
//! to ignored before `main`, which would hide from pidone the disposition it inherited, and pidone
//! must give its children exactly the signal state it was started with.
#![no_main]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;

// SAFETY: this is the process entry point called by the C runtime; no other symbol named `main`
// exists in the binary (no_main).
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut args = Vec::with_capacity(argc.max(0) as usize);
    for i in 1..argc.max(0) as usize {
        // SAFETY: the C runtime passes `argc` valid, NUL-terminated strings in `argv`; `i < argc`.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
        args.push(OsString::from_vec(arg.to_bytes().to_vec()));
    }
    // Invoked as one of s6-overlay's helper commands (a symlink named `with-contenv`, ...).
    #[cfg(feature = "s6-commands")]
    {
        // SAFETY: with `argc > 0`, `argv[0]` is a valid NUL-terminated string from the C runtime.
        let argv0 = (argc > 0).then(|| unsafe { CStr::from_ptr(*argv) });
        if let Some(code) = argv0.and_then(|a| pidone::s6::commands::run(a.to_bytes(), &args)) {
            std::process::exit(code)
        }
    }
    let code = pidone::run(args);
    // Flush what Rust buffered (stdout is line-buffered by std) before the C runtime exits.
    std::process::exit(code)
}
