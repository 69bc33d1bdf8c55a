//! What an s6-overlay image expects of its init while it runs, past its layouts: the
//! container's exit-code file (`/run/s6-linux-init-container-results/exitcode`, which CMD's
//! code goes into and a `finish` script may overwrite; its number, if any, is the container's
//! exit code), v3's `/run/s6/basedir/bin/halt` (made again at boot: `/run` is often a tmpfs),
//! and S6_CMD_WAIT_FOR_SERVICES_MAXTIME with S6_BEHAVIOUR_IF_STAGE2_FAILS, which the
//! supervisor applies (`supervisor/overlay.rs`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where s6-overlay's exit-code file is, under the image's root.
const RESULTS: &str = "run/s6-linux-init-container-results/exitcode";
/// Where s6-overlay v3's `halt` is, under the image's root.
#[cfg(feature = "s6-commands")]
const HALT: &str = "run/s6/basedir/bin/halt";

/// The s6-overlay settings the supervisor applies while it runs.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// S6_CMD_WAIT_FOR_SERVICES_MAXTIME: how long CMD waits for the services to be up (none
    /// when 0, s6-overlay's default: forever).
    pub wait_max: Option<Duration>,
    /// S6_BEHAVIOUR_IF_STAGE2_FAILS: 2 stops the container when that wait runs out.
    pub stage2: u64,
    /// The exit-code file.
    exit_file: PathBuf,
}

impl Runtime {
    pub fn new(root: &Path, wait_ms: u64, stage2: u64) -> Runtime {
        Runtime {
            wait_max: (wait_ms > 0).then(|| Duration::from_millis(wait_ms)),
            stage2,
            exit_file: root.join(RESULTS),
        }
    }

    /// At boot: an empty exit-code file (a stale one from an earlier run of the container would
    /// decide its exit code; scripts read it, so it must exist) and, with the helper commands,
    /// `halt` linked to this binary (whatever was there: s6-overlay's own cannot work without
    /// its s6-linux-init). Logged, never fatal.
    pub fn boot(&self, root: &Path) {
        if let Err(err) = write(&self.exit_file, "") {
            log::warn!("{}: {err}", self.exit_file.display());
        }
        #[cfg(feature = "s6-commands")]
        if let Err(err) = super::commands::link_here(&root.join(HALT), true) {
            log::warn!("{err}; scripts calling {HALT} cannot stop the container");
        }
        #[cfg(not(feature = "s6-commands"))]
        let _ = root;
    }

    /// Writes `code` into the exit-code file (CMD ended with it, or the wait for the services
    /// ran out), as s6-overlay's stage 2 does; logged, never fatal.
    pub fn record(&self, code: i32) {
        if let Err(err) = write(&self.exit_file, &format!("{code}\n")) {
            log::warn!("{}: {err}", self.exit_file.display());
        }
    }

    /// The number in the exit-code file, if it holds one (surrounding blanks allowed). An
    /// empty or missing file is none; anything else is none and a warning.
    pub fn exit_code(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.exit_file).ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let code = text.parse().ok();
        if code.is_none() {
            log::warn!(
                "{}: {text:?} is not an exit code: ignored",
                self.exit_file.display()
            );
        }
        code
    }
}

/// Writes `text` to `path`, creating its directories.
fn write(path: &Path, text: &str) -> io::Result<()> {
    crate::os::listen::make_dirs(path)?;
    std::fs::write(path, text)
}
