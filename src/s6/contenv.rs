//! s6-overlay's container environment: pidone's own environment written as a directory, one
//! file per variable (content = value, no trailing newline), which cont-init.d scripts add to
//! and services read at each start (`env_dir`), as `with-contenv` does.

use std::io;
use std::path::Path;

use crate::config::Env;

/// Empties `dir` (creating it if needed) and writes one file per variable of `env`.
pub fn write(dir: &Path, env: &Env) -> io::Result<()> {
    crate::os::listen::make_dirs(&dir.join("-"))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(&path)?;
        }
    }
    for (var, value) in env {
        if !var.contains('/') && !var.starts_with('.') {
            std::fs::write(dir.join(var), value)?;
        }
    }
    Ok(())
}
