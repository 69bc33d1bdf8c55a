//! Running a companion binary in pidone's place: `pidone import` execs `pidone-import`, so the
//! importers' parsers live in a binary of their own and cost the PID-1 binary nothing.

use std::ffi::OsString;
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
    let mut argv = vec![path.clone().into_os_string()];
    argv.extend_from_slice(args);
    let err = super::sys::exec(&argv, None);
    format!("cannot run {}: {}", path.display(), err)
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
