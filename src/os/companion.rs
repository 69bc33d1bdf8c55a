//! Running a companion binary in pidone's place: `pidone import` execs `pidone-import`, so the
//! importers' parsers live in a binary of their own and cost the PID-1 binary nothing.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Replaces this process with `name` (found next to pidone's own executable, else on `PATH`),
/// giving it `args`. Returns only on failure, with the message to print.
pub fn exec(name: &str, args: &[OsString]) -> String {
    let Some(path) = find(name) else {
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .map_or_else(|| "pidone's directory".into(), |d| d.display().to_string());
        return format!(
            "{name} not found in {here} nor on PATH: install it beside pidone (make static builds both)"
        );
    };
    let mut argv = Vec::with_capacity(args.len() + 1);
    for arg in std::iter::once(path.as_os_str()).chain(args.iter().map(|a| a.as_os_str())) {
        match CString::new(arg.as_bytes()) {
            Ok(c) => argv.push(c),
            Err(_) => return "an argument contains a NUL byte".into(),
        }
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let program = ptrs.first().copied().unwrap_or(std::ptr::null());
    // SAFETY: `ptrs` is a NULL-terminated array of pointers to NUL-terminated strings owned by
    // `argv`, both alive across the call, and `program` is its first (the path, never null: argv
    // holds at least the path); execv only returns on failure.
    unsafe { libc::execv(program, ptrs.as_ptr()) };
    format!(
        "cannot run {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    )
}

fn find(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join(name);
    if beside.is_file() {
        return Some(beside);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
