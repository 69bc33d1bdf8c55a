//! The two ways a test runs pidone, the binary and scripts it runs, and the macros that turn a
//! scenario `fn(Mode)` into one `#[test]` per mode.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

/// `in_both_modes!(scenario, ...)`: for each scenario (a `fn(Mode)` of the test file) a module
/// with `as_pid1` (a true PID 1) and `as_child` (a plain child of the test). With a name first,
/// `in_both_modes!(as_subreaper: scenario, ...)`, the second test takes that name.
macro_rules! in_both_modes {
    ($child:ident: $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn as_pid1() {
                super::$scenario(super::Mode::Pid1);
            }
            #[test]
            fn $child() {
                super::$scenario(super::Mode::Child);
            }
        }
    )*};
    ($($scenario:ident),* $(,)?) => {
        in_both_modes!(as_child: $($scenario),*);
    };
}

/// `as_pid1!(scenario, ...)`: one `#[test]` per scenario, as a true PID 1.
macro_rules! as_pid1 {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn as_pid1() {
                super::$scenario(super::Mode::Pid1);
            }
        }
    )*};
}

/// The binary under test: `$PIDONE_BIN` when set (`make test` runs tests/single.rs a second time
/// with it naming the init-only build), else the pidone cargo built for the tests.
pub fn pidone() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("PIDONE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pidone").to_string())
    })
}

/// Debian's python3, not a version-manager shim that would add a shell between us and Python.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A script under `tests/helpers/`.
pub fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// pidone as the init of a fresh PID namespace, or as an ordinary child of the test (where it
/// must register as child subreaper to adopt orphans).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pid1,
    Child,
}

impl Mode {
    /// `pidone ARGS...` in this mode.
    pub fn command<S: AsRef<OsStr>>(self, args: &[S]) -> Command {
        self.command_via::<&str, S>(&[], true, args)
    }

    /// `WRAPPER... pidone ARGS...` in this mode, or `WRAPPER... ARGS...` when `with_pidone` is
    /// false (the baseline a test compares pidone against). The wrapper runs inside the namespace
    /// and must exec what follows it, so that pidone still ends up as PID 1.
    pub fn command_via<W: AsRef<OsStr>, S: AsRef<OsStr>>(
        self,
        wrapper: &[W],
        with_pidone: bool,
        args: &[S],
    ) -> Command {
        let mut argv: Vec<OsString> = Vec::new();
        if self == Mode::Pid1 {
            // --kill-child: if a test gives up and kills unshare, the namespace goes with it.
            for a in ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] {
                argv.push(a.into());
            }
        }
        argv.extend(wrapper.iter().map(|w| w.as_ref().to_os_string()));
        if with_pidone {
            argv.push(pidone().into());
        }
        argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }
}
