//! Command-line parsing: a lexopt loop into a plain [`Args`] struct, and the usage text.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

#[cfg(feature = "services")]
use crate::control::Verb;
#[cfg(feature = "services")]
use crate::control::client::Action;
#[cfg(feature = "services")]
use crate::control::register;
use std::time::Duration;

/// What the user asked for on the command line.
#[derive(Debug, Default, PartialEq)]
pub struct Args {
    /// The program to run and its arguments; never empty in single-program mode.
    pub program: Vec<OsString>,
    /// Forward signals to the child's whole process group instead of the child alone.
    pub group: bool,
    /// Exit codes turned into 0 (`--map-exit`).
    pub map_exit: Vec<i32>,
    /// How long stragglers get between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Log verbosity added by `-v` (1 = debug, 2 = trace).
    pub verbose: u8,
    /// Configuration files or directories (`--config`, repeatable).
    pub config: Vec<PathBuf>,
    /// The control socket (`--socket`).
    pub socket: Option<PathBuf>,
    /// Lines of output kept per service for `pidone logs` (`--log-lines`).
    pub log_lines: usize,
    /// Every line starts with its time (`--log-timestamps`).
    pub log_timestamps: bool,
    /// `--log-format`: `Some(true)` for JSON lines, `Some(false)` for text.
    pub log_json: Option<bool>,
    /// `--url URL`: the client asks pidone's API on TCP, not the socket.
    pub url: Option<String>,
    /// `--token-file F`: the token the client sends with `--url`.
    pub token_file: Option<PathBuf>,
    /// `--ca-file F`: the certificates the client trusts for an `https://` `--url`.
    pub ca_file: Option<PathBuf>,
    /// `--listen ADDR` (repeatable): serve the API on TCP there, in place of `[api] listen`.
    pub listen: Vec<(std::net::SocketAddr, String)>,
    /// `validate --toml`: print an s6-overlay layout as the equivalent TOML.
    pub toml: bool,
}

/// What the command line resolves to.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the program and/or the configured services.
    Run(Args),
    /// Check the configuration offline and print the start order (`pidone validate`).
    Validate(Args),
    /// Ask a running pidone something through its control socket.
    #[cfg(feature = "services")]
    Client {
        action: Action,
        socket: Option<PathBuf>,
        /// `--url` and `--token-file`: pidone on TCP instead of the socket.
        url: Option<String>,
        token_file: Option<PathBuf>,
        /// `--ca-file`: whom to trust for `https://`.
        ca_file: Option<PathBuf>,
    },
    /// `pidone import ...`: run the companion importer with these arguments.
    Import(Vec<OsString>),
    /// A subcommand of the services (`status`, `start`, ...) in the init-only build, which has
    /// none: refused, whatever follows it.
    #[cfg(not(feature = "services"))]
    WithoutServices(&'static str),
    /// `--install-s6-commands [ROOT]`: link s6-overlay's helper commands to pidone under ROOT.
    #[cfg(feature = "s6-commands")]
    InstallS6(PathBuf),
    Help,
    Version,
}

/// A usage error: printed with a short usage, exit status 2.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<lexopt::Error> for UsageError {
    fn from(err: lexopt::Error) -> Self {
        UsageError(err.to_string())
    }
}

/// How long `start`/`stop`/`restart` wait for the service to get there.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of output kept per service unless `--log-lines` says otherwise.
pub const DEFAULT_LOG_LINES: usize = 1000;

/// The default grace period between SIGTERM and SIGKILL for stragglers.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

pub const USAGE: &str = "usage: pidone [OPTIONS] [--config PATH]... [--] [PROGRAM [ARGS...]]
       pidone status|list|start|stop|restart|check|shutdown|validate|add|remove ...";

pub const HELP: &str = "\
pidone: a small PID 1 for containers, and a service supervisor.

usage: pidone [OPTIONS] [--] PROGRAM [ARGS...]          run one program (no configuration)
       pidone [OPTIONS] --config PATH [-- PROGRAM ...]  run services (and a main program)
       pidone validate [--config PATH]...               check a configuration offline
       pidone status|list [--json] [NAME...]            ask a running pidone
       pidone start|stop|restart [--no-wait] [--timeout D] NAME...
       pidone logs [-f] [-n N] NAME...
       pidone events [-f] [--json]                      state changes, exits, checks, reloads
       pidone signal NAME SIGNAL | reload | check [--live|--ready] | wait [--timeout D]
                                (NAME: a service, @GROUP, or a pattern like 'web-*')
       pidone shutdown
       pidone add NAME [--env K=V]... [OPTIONS] -- COMMAND...   register a service at run time
       pidone remove NAME                               remove a service `add` registered
       pidone import supervisord|procfile|process-compose FILE   convert (docs/migration.md)

Runs PROGRAM as its only child, forwards signals to it, reaps every zombie, and when PROGRAM
exits, stops whatever it left behind (SIGTERM, then SIGKILL after the grace period) and exits
with PROGRAM's status (128+N if it died of signal N; 127 not found; 126 not executable).
With a configuration (--config, $PIDONE_CONFIG, /etc/pidone.toml, /services.toml) it runs the
services it describes; see docs/config.md.

options:
  -c, --config PATH    configuration file or directory (repeatable)
  -g, --group          forward signals to PROGRAM's whole process group, not PROGRAM alone
      --map-exit CODE  exit 0 when PROGRAM exits with CODE (repeatable; e.g. 143 for Java)
      --grace DURATION time left to stragglers between SIGTERM and SIGKILL (default 5s)
      --socket PATH    control socket (default $PIDONE_SOCKET, else /run/pidone.sock)
      --url URL        client: ask pidone at http://HOST:PORT (default $PIDONE_URL)
      --token-file F   client: the token sent with --url (default $PIDONE_TOKEN_FILE)
      --ca-file F      client, TLS builds: CAs for an https:// --url (default $PIDONE_CA_FILE)
      --listen ADDR    serve the API on TCP too (repeatable; replaces [api] listen)
      --log-lines N    lines of output kept per service for `pidone logs` (default 1000)
      --log-timestamps start every line written with its RFC 3339 UTC time
      --log-format F   text (the default) or json: one JSON object per line
  -v, --verbose        log what pidone does to stderr (twice: more); same as PIDONE_LOG=debug
  -h, --help           print this help
  -V, --version        print the version

client exit codes: 0 ok, 1 refused or failed, 2 usage, 3 pidone not reachable.
DURATION is a number with a unit: 500ms, 5s, 2m, 1h (a bare number means seconds).
";

/// `pidone add`'s usage, when it is given without a name or a command.
#[cfg(feature = "services")]
const ADD_USAGE: &str = "usage: pidone add NAME [--env K=V]... [--user U] [--workdir D] [--restart P] \
[--depends-on N]... [--after N]... [--type oneshot] [--instances N] [--description T] \
[--stop-signal S] [--stop-timeout D] [--max-restarts N] -- COMMAND [ARGS...]";

/// The words that name a subcommand rather than a PROGRAM (unless after `--`).
const SUBCOMMANDS: [&str; 16] = [
    "validate", "status", "list", "start", "stop", "restart", "signal", "logs", "reload", "check",
    "wait", "shutdown", "help", "events", "add", "remove",
];

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut args = args.into_iter().peekable();
    if args.peek().is_some_and(|a| a == "import") {
        return Ok(Command::Import(args.skip(1).collect()));
    }
    #[cfg(feature = "s6-commands")]
    if args.peek().is_some_and(|a| a == "--install-s6-commands") {
        return match (args.nth(1), args.next()) {
            (root, None) => Ok(Command::InstallS6(
                root.unwrap_or_else(|| "/".into()).into(),
            )),
            _ => Err(UsageError(
                "--install-s6-commands takes one ROOT".to_string(),
            )),
        };
    }
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args {
        grace: DEFAULT_GRACE,
        log_lines: DEFAULT_LOG_LINES,
        ..Args::default()
    };
    #[cfg(feature = "services")]
    let mut lines = crate::control::DEFAULT_LOG_LINES;
    #[cfg(not(feature = "services"))]
    let mut lines = 0;
    let mut follow = false;
    let mut sub: Option<&'static str> = None;
    let mut names: Vec<String> = Vec::new();
    let (mut json, mut no_wait) = (false, false);
    let mut live = false;
    let mut timeout = DEFAULT_CLIENT_TIMEOUT;
    // `add`'s keys (the body of `POST /v1/services`) and the COMMAND after its `--`.
    #[cfg(feature = "services")]
    let (mut fields, mut command) = (serde_json::Map::new(), Vec::new());
    // `--` forces what follows to be the PROGRAM, even a word like `status`.
    let mut after_dash = false;
    loop {
        if let Some(raw) = parser.try_raw_args() {
            after_dash |= raw.peek().is_some_and(|a| a == "--");
        }
        let Some(arg) = parser.next()? else { break };
        match arg {
            Short('g') | Long("group") => out.group = true,
            Long("map-exit") => {
                let value = parser.value()?.string()?;
                match value.parse::<i32>() {
                    Ok(code) if (0..=255).contains(&code) => out.map_exit.push(code),
                    _ => {
                        return Err(UsageError(format!(
                            "--map-exit: '{value}' is not an exit code (0-255)"
                        )));
                    }
                }
            }
            Long("grace") => {
                let value = parser.value()?.string()?;
                out.grace =
                    parse_duration(&value).map_err(|why| UsageError(format!("--grace: {why}")))?;
            }
            Long("config") | Short('c') => out.config.push(parser.value()?.into()),
            Long("socket") => out.socket = Some(parser.value()?.into()),
            #[cfg(feature = "services")]
            Long("url") => out.url = Some(parser.value()?.string()?),
            #[cfg(feature = "services")]
            Long("token-file") => out.token_file = Some(parser.value()?.into()),
            #[cfg(feature = "tls")]
            Long("ca-file") => out.ca_file = Some(parser.value()?.into()),
            // The init-only build has no API to serve (and std's address parser costs it 4 KB).
            #[cfg(feature = "services")]
            Long("listen") => {
                let value = parser.value()?.string()?;
                let addr = value.parse().map_err(|_| {
                    UsageError(format!(
                        "--listen: '{value}' is not an address like 0.0.0.0:9100"
                    ))
                })?;
                out.listen.push((addr, format!("--listen {value}")));
            }
            Long("log-lines") => {
                let value = parser.value()?.string()?;
                out.log_lines = value
                    .parse()
                    .map_err(|_| UsageError(format!("--log-lines: '{value}' is not a number")))?;
            }
            Long("log-timestamps") => out.log_timestamps = true,
            Long("log-format") => {
                let value = parser.value()?.string()?;
                out.log_json = Some(match value.as_str() {
                    "json" => true,
                    "text" => false,
                    _ => {
                        return Err(UsageError(format!(
                            "--log-format: '{value}' is not text or json"
                        )));
                    }
                });
            }
            Short('f') | Long("follow") if matches!(sub, Some("logs" | "events")) => {
                follow = true;
            }
            Short('n') | Long("lines") if sub == Some("logs") => {
                let value = parser.value()?.string()?;
                lines = value
                    .parse()
                    .map_err(|_| UsageError(format!("-n: '{value}' is not a number of lines")))?;
            }
            Long("json") if sub.is_some() => json = true,
            Long("toml") if sub == Some("validate") && cfg!(feature = "s6") => out.toml = true,
            Long("live") if sub == Some("check") => live = true,
            Long("ready") if sub == Some("check") => live = false,
            Long("no-wait") if sub.is_some() => no_wait = true,
            Long("timeout") if sub.is_some() => {
                let value = parser.value()?.string()?;
                timeout = parse_duration(&value)
                    .map_err(|why| UsageError(format!("--timeout: {why}")))?;
            }
            #[cfg(feature = "services")]
            Short(c @ ('e' | 'u' | 'w')) if sub == Some("add") => {
                let key = match c {
                    'e' => "env",
                    'u' => "user",
                    _ => "workdir",
                };
                let value = parser.value()?.string()?;
                register::set_option(&mut fields, key, value).map_err(UsageError)?;
            }
            #[cfg(feature = "services")]
            Long(option) if sub == Some("add") && register::option_key(option).is_some() => {
                let key = register::option_key(option).unwrap_or_default();
                let value = parser.value()?.string()?;
                register::set_option(&mut fields, key, value).map_err(UsageError)?;
            }
            #[cfg(feature = "services")]
            Value(word) if sub == Some("add") && (after_dash || !names.is_empty()) => {
                if !after_dash {
                    let word = word.string()?;
                    return Err(UsageError(format!(
                        "add: put the command after --: '{word}'"
                    )));
                }
                command.push(serde_json::Value::String(word.string()?));
            }
            Short('v') | Long("verbose") => out.verbose = out.verbose.saturating_add(1),
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word) if sub.is_none() && out.program.is_empty() && !after_dash => {
                match SUBCOMMANDS.iter().find(|s| word == **s) {
                    Some(&"help") => return Ok(Command::Help),
                    Some(s) => sub = Some(s),
                    None => {
                        out.program.push(word);
                        out.program.extend(parser.raw_args()?);
                    }
                }
            }
            Value(word) if sub.is_some() => names.push(word.string()?),
            Value(program) => {
                out.program.push(program);
                out.program.extend(parser.raw_args()?);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    let Some(sub) = sub else {
        return Ok(Command::Run(out));
    };
    // The init-only build reads a subcommand's words as the full build does, then refuses it.
    #[cfg(not(feature = "services"))]
    let _ = (lines, follow, names, json, no_wait, live, timeout);
    #[cfg(not(feature = "services"))]
    return Ok(Command::WithoutServices(sub));
    #[cfg(feature = "services")]
    if let Some(verb) = Verb::parse(sub) {
        if names.is_empty() {
            return Err(UsageError(format!("{sub}: name at least one service")));
        }
        let action = Action::Act {
            verb,
            names,
            no_wait,
            timeout,
        };
        return Ok(Command::Client {
            action,
            socket: out.socket,
            url: out.url,
            token_file: out.token_file,
            ca_file: out.ca_file,
        });
    }
    #[cfg(feature = "services")]
    let action = match sub {
        "validate" if names.is_empty() => return Ok(Command::Validate(out)),
        "validate" => return Err(UsageError("validate takes no PROGRAM".to_string())),
        "status" | "list" => Action::Status { names, json },
        "signal" => match names.as_slice() {
            [name, signal] => Action::Signal {
                name: name.clone(),
                signal: signal.clone(),
            },
            _ => return Err(UsageError("usage: pidone signal NAME SIGNAL".to_string())),
        },
        "logs" if names.is_empty() => {
            return Err(UsageError("logs: name at least one service".to_string()));
        }
        "logs" => Action::Logs {
            names,
            lines,
            follow,
        },
        "wait" if names.is_empty() => Action::Wait { timeout },
        "check" if names.is_empty() => Action::Check { live },
        "reload" if names.is_empty() => Action::Reload,
        "events" if names.is_empty() => Action::Events { follow, json },
        "shutdown" if names.is_empty() => Action::Shutdown,
        "add" => match names.as_slice() {
            [name] if !command.is_empty() => {
                fields.insert("name".into(), serde_json::Value::String(name.clone()));
                fields.insert("command".into(), serde_json::Value::Array(command));
                Action::Add {
                    service: fields,
                    no_wait,
                    timeout,
                }
            }
            _ => return Err(UsageError(ADD_USAGE.to_string())),
        },
        "remove" => match names.as_slice() {
            [name] => Action::Remove {
                name: name.clone(),
                no_wait,
                timeout,
            },
            _ => return Err(UsageError("usage: pidone remove NAME".to_string())),
        },
        _ => return Err(UsageError(format!("{sub} takes no service names"))),
    };
    #[cfg(feature = "services")]
    Ok(Command::Client {
        action,
        socket: out.socket,
        url: out.url,
        token_file: out.token_file,
        ca_file: out.ca_file,
    })
}

/// Parses a duration as the configuration does (`500ms`, `10s`, `2m`, `1h30m`), plus a bare
/// number of seconds as tini users write it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    crate::core::duration::parse_duration(text)
        .ok_or_else(|| format!("'{text}' is not a duration (like 500ms, 10s, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn program_and_its_options_are_left_alone() {
        let Ok(Command::Run(args)) = run(&["-g", "sh", "-c", "exit 3", "--grace"]) else {
            panic!("expected a run");
        };
        assert!(args.group);
        assert_eq!(args.program, ["sh", "-c", "exit 3", "--grace"]);
        assert_eq!(args.grace, DEFAULT_GRACE);
    }

    #[test]
    fn log_timestamps_and_format() {
        let Ok(Command::Run(args)) = run(&["--log-timestamps", "--log-format", "json", "sh"])
        else {
            panic!("expected a run");
        };
        assert!(args.log_timestamps);
        assert_eq!(args.log_json, Some(true));
        let Ok(Command::Run(args)) = run(&["--log-format", "text", "sh"]) else {
            panic!("expected a run");
        };
        assert_eq!((args.log_timestamps, args.log_json), (false, Some(false)));
        assert_eq!(
            run(&["--log-format", "xml", "sh"]),
            Err(UsageError("--log-format: 'xml' is not text or json".into()))
        );
    }

    #[test]
    fn validate_is_a_subcommand_unless_after_double_dash() {
        assert!(matches!(
            run(&["validate", "--config", "x.toml"]),
            Ok(Command::Validate(_))
        ));
        let Ok(Command::Run(args)) = run(&["--", "validate"]) else {
            panic!("expected a run");
        };
        assert_eq!(args.program, ["validate"]);
    }

    #[test]
    fn double_dash_forces_program() {
        let Ok(Command::Run(args)) = run(&["--map-exit", "143", "--", "-weird"]) else {
            panic!("expected a run");
        };
        assert_eq!(args.program, ["-weird"]);
        assert_eq!(args.map_exit, [143]);
    }

    #[test]
    fn usage_errors() {
        assert!(run(&["validate", "sh"]).is_err());
        assert!(run(&["--bogus", "sh"]).is_err());
        assert!(run(&["--map-exit", "300", "sh"]).is_err());
        assert!(run(&["--grace", "5 parsecs", "sh"]).is_err());
        assert!(run(&["--grace"]).is_err());
    }

    #[test]
    fn start_stop_and_restart_carry_their_verb() {
        for (word, verb) in [
            ("start", Verb::Start),
            ("stop", Verb::Stop),
            ("restart", Verb::Restart),
        ] {
            let Ok(Command::Client { action, .. }) = run(&[word, "--no-wait", "web"]) else {
                panic!("expected a client action for {word}");
            };
            let Action::Act {
                verb: got, names, ..
            } = action
            else {
                panic!("expected an act for {word}");
            };
            assert_eq!((got, names), (verb, vec!["web".to_string()]));
            assert!(run(&[word]).is_err(), "{word} without a name");
        }
    }

    #[test]
    fn add_takes_a_name_options_and_the_command_after_double_dash() {
        let args = [
            "--socket",
            "/s",
            "add",
            "web",
            "-e",
            "A=1",
            "--depends-on",
            "db",
            "--no-wait",
            "--instances",
            "2",
            "-u",
            "app",
            "-w",
            "/srv",
            "--",
            "sh",
            "-c",
            "--env",
            "x",
        ];
        let Ok(Command::Client { action, socket, .. }) = run(&args) else {
            panic!("expected a client action: {:?}", run(&args));
        };
        assert_eq!(socket, Some(PathBuf::from("/s")));
        let Action::Add {
            service, no_wait, ..
        } = action
        else {
            panic!("expected an add: {action:?}");
        };
        assert!(no_wait);
        let expected = serde_json::json!({
            "name": "web", "command": ["sh", "-c", "--env", "x"], "env": {"A": "1"},
            "depends_on": ["db"], "instances": 2, "user": "app", "workdir": "/srv",
        });
        assert_eq!(serde_json::Value::Object(service), expected);
        assert!(run(&["add", "web"]).is_err(), "no command");
        assert!(run(&["add", "--", "sh"]).is_err(), "no name");
        assert!(
            run(&["add", "web", "sh", "--", "x"]).is_err(),
            "command before --"
        );
        assert!(run(&["add", "web", "--colour", "red", "--", "sh"]).is_err());
        assert!(run(&["add", "web", "--instances", "two", "--", "sh"]).is_err());
        let Ok(Command::Client { action, .. }) = run(&["remove", "web"]) else {
            panic!("expected a remove");
        };
        assert!(matches!(action, Action::Remove { name, no_wait: false, .. } if name == "web"));
        assert!(run(&["remove"]).is_err() && run(&["remove", "a", "b"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 days").is_err());
    }
}
