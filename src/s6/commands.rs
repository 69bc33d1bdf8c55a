//! s6-overlay's helper commands, served by pidone when it is invoked under their names (a
//! symlink or a copy named `with-contenv`, `s6-setuidgid`, `halt`, `s6-svscanctl`, `s6-svc`,
//! `s6-svstat` or `s6-rc`, made by `pidone --install-s6-commands`): scripts written for
//! s6-overlay call them, and they become an exec or a request to the running pidone through the
//! built-in client. A service directory names the service by its last component.
//!
//! Exit codes are s6's: 100 wrong usage, 111 pidone not reachable (s6's "system call failed"),
//! 126/127 an exec failed, 1 a request pidone refused or that failed; each tool's own code for
//! an unknown service. docs/s6-overlay-commands.md says what maps to what.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::DEFAULT_CLIENT_TIMEOUT;
use crate::control::Verb;
use crate::control::client::{self, Action, Ending};
use crate::control::wire::Service;
use crate::os::{spawn, sys, users};

/// s6's code for wrong usage.
const USAGE: i32 = 100;
/// s6's code for a failed system call: here, pidone could not be reached.
const SYSCALL: i32 = 111;

/// Where pidone writes the container's environment, one file per variable (s6-overlay's place).
const ENV_DIR: &str = "/run/s6/container_environment";

/// Runs the helper command that `argv0`'s last component names, if it names one; returns its
/// exit code, or `None` for pidone itself.
pub fn run(argv0: &[u8], args: &[OsString]) -> Option<i32> {
    let code = match argv0.rsplit(|b| *b == b'/').next()? {
        b"with-contenv" => with_contenv(args),
        b"s6-setuidgid" => setuidgid(args),
        b"halt" => halt(args),
        b"s6-svscanctl" => svscanctl(args),
        b"s6-svc" => svc(args),
        b"s6-svstat" => svstat(args),
        b"s6-rc" => rc(args),
        _ => return None,
    };
    Some(code)
}

/// `with-contenv PROG...`: PROG with the container's environment, as s6-overlay v3 gives it:
/// only `PATH` is kept, then each file of the directory sets a variable (an empty file unsets
/// it). With `S6_KEEP_ENV` set to a number other than 0, or without the directory, PROG gets
/// the environment as it is. `PIDONE_S6_ENVDIR` names another directory (for tests).
fn with_contenv(args: &[OsString]) -> i32 {
    if args.is_empty() {
        return usage("with-contenv PROG...");
    }
    // s6-overlay tests `0${S6_KEEP_ENV} -eq 0`: unset, empty and 0 replace the environment.
    let keep = std::env::var("S6_KEEP_ENV").unwrap_or_default();
    let dir = std::env::var_os("PIDONE_S6_ENVDIR").map_or_else(|| ENV_DIR.into(), PathBuf::from);
    if format!("0{keep}").parse::<u64>() == Ok(0) {
        match std::fs::read_dir(&dir).map(load_env) {
            Ok(Ok(())) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(err)) | Err(err) => {
                eprintln!("with-contenv: cannot read {}: {err}", dir.display());
                return SYSCALL;
            }
        }
    }
    exec("with-contenv", args)
}

/// Replaces the environment with `PATH` and the directory's variables (`s6-envdir -Lf`: a file's
/// whole content, less one final newline, NUL bytes read as newlines; an empty file unsets;
/// names starting with a dot or holding `=` skipped).
fn load_env(entries: std::fs::ReadDir) -> std::io::Result<()> {
    for (name, _) in std::env::vars_os().filter(|(name, _)| name != "PATH") {
        sys::set_env(&name, None);
    }
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") || name.as_bytes().contains(&b'=') {
            continue;
        }
        let mut value = std::fs::read(entry.path())?;
        let set = !value.is_empty();
        if value.last() == Some(&b'\n') {
            value.pop();
        }
        value
            .iter_mut()
            .filter(|b| **b == 0)
            .for_each(|b| *b = b'\n');
        sys::set_env(&name, set.then_some(OsStr::from_bytes(&value)));
    }
    Ok(())
}

/// `s6-setuidgid USER PROG...`: PROG as USER (a name, or `uid:gid`), with the user's groups
/// from the image's `/etc/group`, resolved as the `user` key is. An empty USER changes nothing.
fn setuidgid(args: &[OsString]) -> i32 {
    let [account, prog @ ..] = args else {
        return usage("s6-setuidgid USER PROG...");
    };
    if prog.is_empty() {
        return usage("s6-setuidgid USER PROG...");
    }
    let account = account.to_string_lossy();
    if !account.is_empty() {
        let creds = match users::UserDb::load(Path::new("/")) {
            Ok(db) => db.resolve(&account, None),
            Err(err) => {
                eprintln!("s6-setuidgid: cannot read /etc/passwd or /etc/group: {err}");
                return SYSCALL;
            }
        };
        // s6-setuidgid exits 1 for an unknown account.
        let creds = match creds {
            Ok(creds) => creds,
            Err(err) => {
                eprintln!("s6-setuidgid: {err}");
                return 1;
            }
        };
        if let Err(err) = sys::set_credentials(creds.uid, creds.gid, &creds.groups) {
            eprintln!("s6-setuidgid: cannot become {account}: {err}");
            return SYSCALL;
        }
    }
    exec("s6-setuidgid", prog)
}

/// Replaces this process with `argv` (looked up on `PATH`); on failure prints why and returns
/// 127 (not found) or 126.
fn exec(tool: &str, argv: &[OsString]) -> i32 {
    let err = sys::exec(argv);
    let program = argv
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    eprintln!(
        "{tool}: cannot run {program}: {}",
        spawn::exec_failure_reason(&err)
    );
    spawn::exec_failure_code(&err)
}

/// `halt` (s6-overlay v3's `/run/s6/basedir/bin/halt`): stops the container as `pidone
/// shutdown` does. Its options change nothing: pidone always stops cleanly.
fn halt(args: &[OsString]) -> i32 {
    match getopt(args, b"fndW") {
        Some((_, [])) => shutdown(),
        _ => usage("halt [-f] [-n] [-d] [-W]"),
    }
}

/// `s6-svscanctl -t DIR` (v2): `-t`, `-i`, `-q` and `-b` stop the container; the others (a
/// rescan, zombies, ...) have nothing to do under pidone.
fn svscanctl(args: &[OsString]) -> i32 {
    let Some((opts, [_scandir])) = getopt(args, b"zabhitqnN") else {
        return usage("s6-svscanctl [-zabhitqnN] SCANDIR");
    };
    if opts.iter().any(|(letter, _)| b"tiqb".contains(letter)) {
        return shutdown();
    }
    0
}

fn shutdown() -> i32 {
    code(client::send(&socket(), &Action::Shutdown), 1)
}

/// s6-svc's signal options and the signals they send.
const SIGNALS: [(u8, &str); 12] = [
    (b'a', "ALRM"),
    (b'b', "ABRT"),
    (b'q', "QUIT"),
    (b'h', "HUP"),
    (b'k', "KILL"),
    (b't', "TERM"),
    (b'i', "INT"),
    (b'1', "USR1"),
    (b'2', "USR2"),
    (b'p', "STOP"),
    (b'c', "CONT"),
    (b'y', "WINCH"),
];

/// `s6-svc [-wX] [-T MS] [-udorD U...] [-s SIG] DIR...`: each command in order, for each service:
/// `-u`, `-U` start, `-O` once (not restarted when its process ends), `-o` both, `-d`, `-D`
/// stop, `-r` restart, signals signal. Without `-w` nothing is waited for, as s6-svc only
/// sends; with it, each start, stop or restart is waited for.
fn svc(args: &[OsString]) -> i32 {
    const SVC: &str =
        "s6-svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T MS] [-abqhkti12pcyroOuUdD] [-s SIG] DIR";
    let Some((opts, dirs)) = getopt(args, b"abqhkti12pcyroOuUdDw:T:s:") else {
        return usage(SVC);
    };
    let (mut no_wait, mut timeout) = (true, DEFAULT_CLIENT_TIMEOUT);
    let mut todo: Vec<Result<Verb, String>> = Vec::new();
    for (letter, value) in opts {
        todo.push(match letter {
            b'w' if matches!(value, [b'u' | b'U' | b'd' | b'D' | b'r' | b'R']) => {
                no_wait = false;
                continue;
            }
            b'T' => match millis(value) {
                Some(t) => {
                    timeout = t;
                    continue;
                }
                None => return usage(SVC),
            },
            b'u' | b'U' => Ok(Verb::Start),
            // -o is -uO: started, and not restarted when its process ends.
            b'o' => {
                todo.extend([Ok(Verb::Start), Ok(Verb::Once)]);
                continue;
            }
            b'O' => Ok(Verb::Once),
            b'd' | b'D' => Ok(Verb::Stop),
            b'r' => Ok(Verb::Restart),
            b's' => Err(String::from_utf8_lossy(value).into_owned()),
            _ => match SIGNALS.iter().find(|(l, _)| *l == letter) {
                Some((_, signal)) => Err(signal.to_string()),
                None => return usage(SVC),
            },
        });
    }
    if dirs.is_empty() {
        return usage(SVC);
    }
    for dir in dirs {
        let name = service_name(dir);
        for step in &todo {
            let action = match step {
                Ok(verb) => Action::Act {
                    verb: *verb,
                    names: vec![name.clone()],
                    no_wait,
                    timeout,
                },
                Err(signal) => Action::Signal {
                    name: name.clone(),
                    signal: signal.clone(),
                },
            };
            match client::send(&socket(), &action) {
                Ending::Done => {}
                // s6-svc exits 100 when nothing supervises the directory.
                end => return code(end, USAGE),
            }
        }
    }
    0
}

/// s6-svstat's fields, by option letter and by `-o` name.
const FIELDS: [(u8, &str); 7] = [
    (b'u', "up"),
    (b'w', "wantedup"),
    (b'r', "ready"),
    (b'p', "pid"),
    (b'e', "exitcode"),
    (b's', "signal"),
    (b't', "updownfor"),
];

/// `s6-svstat [-uwrpest] [-o FIELD,...] DIR`: s6's one-line summary (`up (pid P) N seconds`,
/// `down (exitcode C) N seconds`), or the fields asked for, separated by spaces. Exits 1 when
/// pidone has no such service, as s6-svstat when nothing supervises the directory.
fn svstat(args: &[OsString]) -> i32 {
    const SVSTAT: &str =
        "s6-svstat [-uwrpest] [-o up,wantedup,ready,pid,exitcode,signal,updownfor] [-n] DIR";
    let Some((opts, [dir])) = getopt(args, b"uwrpestno:") else {
        return usage(SVSTAT);
    };
    let mut fields = Vec::new();
    for (letter, value) in opts {
        match letter {
            b'n' => {}
            b'o' => {
                for word in value.split(|b| *b == b',') {
                    match FIELDS.iter().find(|(_, name)| name.as_bytes() == word) {
                        Some((letter, _)) => fields.push(*letter),
                        None => return usage(SVSTAT),
                    }
                }
            }
            letter => fields.push(letter),
        }
    }
    let svc = match client::service(&socket(), &service_name(dir)) {
        Ok(svc) => svc,
        Err(end) => return code(end, 1),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = (now.as_secs_f64() - svc.since).max(0.0) as u64;
    if fields.is_empty() {
        println!("{}", summary(&svc, secs));
    } else {
        let words: Vec<String> = fields.iter().map(|f| field(&svc, *f, secs)).collect();
        println!("{}", words.join(" "));
    }
    0
}

/// The human summary: up with its pid, or down with how it last ended.
fn summary(svc: &Service, secs: u64) -> String {
    let how = match (svc.pid, &svc.last_exit) {
        (Some(pid), _) => format!("up (pid {pid})"),
        (None, Some(exit)) => match &exit.signal {
            Some(signal) => format!("down (signal SIG{signal})"),
            None => format!("down (exitcode {})", exit.code),
        },
        (None, None) => "down".to_string(),
    };
    format!("{how} {secs} seconds")
}

/// One field as s6-svstat prints it (`-1` or `NA` for what does not apply).
fn field(svc: &Service, letter: u8, secs: u64) -> String {
    let up = svc.pid.is_some();
    let exit = svc.last_exit.as_ref().filter(|_| !up);
    match letter {
        b'u' => up.to_string(),
        b'w' => (!matches!(svc.state.as_str(), "stopped" | "failed")).to_string(),
        b'r' => (svc.state == "running").to_string(),
        b'p' => svc.pid.unwrap_or(-1).to_string(),
        b'e' => exit
            .filter(|e| e.signal.is_none())
            .map_or(-1, |e| e.code)
            .to_string(),
        b's' => exit
            .and_then(|e| e.signal.as_ref())
            .map_or_else(|| "NA".to_string(), |s| format!("SIG{s}")),
        _ => secs.to_string(),
    }
}

/// `s6-rc [-u|-d|-D] [-t MS] change NAME...`: starts (the default) or stops the services named,
/// waiting until done, as s6-rc does. Exits 1 when one failed, 2 when the wait ran out, 3 for a
/// name pidone does not know (s6-rc's codes). `-l`, `-b` and `-v` change nothing.
fn rc(args: &[OsString]) -> i32 {
    const RC: &str = "s6-rc [-l LIVE] [-b] [-v N] [-t MS] [-u|-d|-D] change [NAME...]";
    let Some((opts, [change, names @ ..])) = getopt(args, b"budDl:v:t:") else {
        return usage(RC);
    };
    let (mut verb, mut timeout) = (Verb::Start, DEFAULT_CLIENT_TIMEOUT);
    for (letter, value) in opts {
        match letter {
            b'u' => verb = Verb::Start,
            b'd' | b'D' => verb = Verb::Stop,
            b't' => match millis(value) {
                Some(t) => timeout = t,
                None => return usage(RC),
            },
            _ => {}
        }
    }
    if change != "change" {
        return usage(RC);
    }
    if names.is_empty() {
        return 0;
    }
    let names = names
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let action = Action::Act {
        verb,
        names,
        no_wait: false,
        timeout,
    };
    match client::send(&socket(), &action) {
        Ending::TimedOut => 2,
        end => code(end, 3),
    }
}

/// A tool's exit code for how a request ended; `unknown` is its code for an unknown service.
fn code(end: Ending, unknown: i32) -> i32 {
    match end {
        Ending::Done => 0,
        Ending::Failed | Ending::TimedOut => 1,
        Ending::Unknown => unknown,
        Ending::Unreachable => SYSCALL,
    }
}

fn usage(text: &str) -> i32 {
    eprintln!("usage: {text}");
    USAGE
}

/// The control socket, found as `pidone status` finds it.
fn socket() -> crate::control::remote::Endpoint {
    crate::control::remote::Endpoint::Socket(crate::control::client_socket_path(None))
}

/// A timeout in milliseconds; 0 (s6's "forever") is pidone's default wait.
fn millis(value: &[u8]) -> Option<Duration> {
    let ms: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(match ms {
        0 => DEFAULT_CLIENT_TIMEOUT,
        ms => Duration::from_millis(ms),
    })
}

/// The service a directory stands for: its last component (`/run/service/web` and
/// `/var/run/s6/services/web` are `web`), a relative one resolved first (`.` in a run script).
fn service_name(dir: &OsString) -> String {
    let path = Path::new(dir);
    let resolved = path.is_relative().then(|| std::fs::canonicalize(path).ok());
    let path = resolved.flatten().unwrap_or_else(|| path.to_path_buf());
    let name = path.file_name().unwrap_or(path.as_os_str());
    name.to_string_lossy().into_owned()
}

/// The options and the words after them, as getopt reads them: `spec` lists the letters, one
/// followed by `:` takes a value (the rest of its word, or the next word); options end at the
/// first word that is not one, or after `--`. `None` for an unknown letter or a missing value.
#[allow(clippy::type_complexity)]
fn getopt<'a>(args: &'a [OsString], spec: &[u8]) -> Option<(Vec<(u8, &'a [u8])>, &'a [OsString])> {
    let mut opts = Vec::new();
    let mut i = 0;
    while let Some(word) = args.get(i).map(|a| a.as_bytes()) {
        if word == b"--" {
            i += 1;
            break;
        }
        let Some(mut letters) = word.strip_prefix(b"-").filter(|l| !l.is_empty()) else {
            break;
        };
        i += 1;
        while let Some((&letter, rest)) = letters.split_first() {
            let at = spec.iter().position(|&c| c == letter && c != b':')?;
            if spec.get(at + 1) == Some(&b':') {
                let value = if rest.is_empty() {
                    i += 1;
                    args.get(i - 1)?.as_bytes()
                } else {
                    rest
                };
                opts.push((letter, value));
                break;
            }
            opts.push((letter, &[][..]));
            letters = rest;
        }
    }
    Some((opts, args.get(i..).unwrap_or_default()))
}

/// Where `--install-s6-commands` puts each command: s6-overlay v3's `/command`, v2's `/usr/bin`,
/// v3's own `with-contenv` and the `halt` of its basedir.
const PLACES: [(&str, &[&str]); 4] = [
    ("command", &COMMANDS),
    ("usr/bin", &COMMANDS),
    ("package/admin/s6-overlay/command", &["with-contenv"]),
    ("run/s6/basedir/bin", &["halt"]),
];

const COMMANDS: [&str; 6] = [
    "with-contenv",
    "s6-setuidgid",
    "s6-svc",
    "s6-svstat",
    "s6-svscanctl",
    "s6-rc",
];

/// `pidone --install-s6-commands [ROOT]`: symlinks to this binary under ROOT (`/`) for each
/// command at each of its [`PLACES`], directories created. A symlink already there is replaced;
/// a file is kept (an image that still has s6-overlay's own). Returns the exit code.
pub fn install(root: &Path) -> i32 {
    let mut code = 0;
    for (dir, names) in PLACES {
        for name in names {
            let link = root.join(dir).join(name);
            match link_here(&link, false) {
                Ok(true) => {}
                Ok(false) => eprintln!("pidone: kept {}: a file is there", link.display()),
                Err(err) => {
                    eprintln!("pidone: {err}");
                    code = 1;
                }
            }
        }
    }
    code
}

/// Makes `link` a symlink to this binary, creating its directories; one already there is
/// replaced, and so is a file when `replace_files` (else it is kept: false).
pub(super) fn link_here(link: &Path, replace_files: bool) -> Result<bool, String> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot find pidone's own executable: {err}"))?;
    let at = link.display();
    crate::os::listen::make_dirs(link).map_err(|err| format!("cannot create {at}: {err}"))?;
    match std::fs::symlink_metadata(link) {
        Ok(meta) if !meta.file_type().is_symlink() && !replace_files => return Ok(false),
        Ok(_) => drop(std::fs::remove_file(link)),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&exe, link).map_err(|err| format!("cannot link {at}: {err}"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn getopt_reads_grouped_letters_values_and_stops_at_the_first_word() {
        let args = words(&["-wu", "-T", "500", "-dk", "--", "-x", "dir"]);
        let (opts, rest) = getopt(&args, b"dkw:T:").expect("valid");
        let expected: Vec<(u8, &[u8])> =
            vec![(b'w', b"u"), (b'T', b"500"), (b'd', b""), (b'k', b"")];
        assert_eq!(opts, expected);
        assert_eq!(rest, &words(&["-x", "dir"])[..]);
        let args = words(&["-u", "dir", "-d"]);
        assert_eq!(
            getopt(&args, b"ud").expect("valid").1,
            &words(&["dir", "-d"])[..]
        );
    }

    #[test]
    fn getopt_refuses_an_unknown_letter_and_a_missing_value() {
        assert!(getopt(&words(&["-x", "dir"]), b"ud").is_none());
        assert!(getopt(&words(&["-T"]), b"T:").is_none());
        assert!(getopt(&words(&["-:"]), b"T:").is_none());
    }

    #[test]
    fn a_timeout_of_0_is_the_default_wait() {
        assert_eq!(millis(b"0"), Some(DEFAULT_CLIENT_TIMEOUT));
        assert_eq!(millis(b"250"), Some(Duration::from_millis(250)));
        assert_eq!(millis(b"-1"), None);
    }

    #[test]
    fn a_service_directory_names_the_service_by_its_last_component() {
        for dir in [
            "/run/service/web",
            "/var/run/s6/services/web/",
            "/run/service/web/.",
        ] {
            assert_eq!(service_name(&OsString::from(dir)), "web", "{dir}");
        }
    }

    #[test]
    fn svstat_prints_what_s6_svstat_prints() {
        let up = Service {
            pid: Some(42),
            state: "running".into(),
            ..Service::default()
        };
        assert_eq!(summary(&up, 5), "up (pid 42) 5 seconds");
        let fields: Vec<String> = b"uwrpest".iter().map(|f| field(&up, *f, 5)).collect();
        assert_eq!(fields, ["true", "true", "true", "42", "-1", "NA", "5"]);
        let killed = Service {
            state: "failed".into(),
            last_exit: Some(crate::control::wire::LastExit {
                code: 143,
                signal: Some("TERM".into()),
            }),
            ..Service::default()
        };
        assert_eq!(summary(&killed, 3), "down (signal SIGTERM) 3 seconds");
        let fields: Vec<String> = b"uwpes".iter().map(|f| field(&killed, *f, 3)).collect();
        assert_eq!(fields, ["false", "false", "-1", "-1", "SIGTERM"]);
    }
}
