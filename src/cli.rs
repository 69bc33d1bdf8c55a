//! Command-line parsing: a lexopt loop into a plain [`Args`] struct, and the usage text.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
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
}

/// What the command line resolves to.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the program and/or the configured services.
    Run(Args),
    /// Check the configuration offline and print the start order (`pidone validate`).
    Validate(Args),
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

/// The default grace period between SIGTERM and SIGKILL for stragglers.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

pub const USAGE: &str = "usage: pidone [OPTIONS] [--] PROGRAM [ARGS...]";

pub const HELP: &str = "\
pidone: a small PID 1 for containers.

usage: pidone [OPTIONS] [--] PROGRAM [ARGS...]

Runs PROGRAM as its only child, forwards signals to it, reaps every zombie, and when PROGRAM
exits, stops whatever it left behind (SIGTERM, then SIGKILL after the grace period) and exits
with PROGRAM's status (128+N if it died of signal N; 127 not found; 126 not executable).

options:
  -g, --group          forward signals to PROGRAM's whole process group, not PROGRAM alone
      --map-exit CODE  exit 0 when PROGRAM exits with CODE (repeatable; e.g. 143 for Java)
      --grace DURATION time left to stragglers between SIGTERM and SIGKILL (default 5s)
  -v, --verbose        log what pidone does to stderr (twice: more); same as PIDONE_LOG=debug
  -h, --help           print this help
  -V, --version        print the version

DURATION is a number with a unit: 500ms, 5s, 2m, 1h (a bare number means seconds).
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut out = Args {
        grace: DEFAULT_GRACE,
        ..Args::default()
    };
    let mut validate = false;
    // `--` forces what follows to be the PROGRAM, even a word like `validate`.
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
            Short('v') | Long("verbose") => out.verbose = out.verbose.saturating_add(1),
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Value(word)
                if out.program.is_empty() && !validate && !after_dash && word == "validate" =>
            {
                validate = true;
            }
            Value(_) if validate => {
                return Err(UsageError("validate takes no PROGRAM".to_string()));
            }
            Value(program) => {
                out.program.push(program);
                out.program.extend(parser.raw_args()?);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if validate {
        return Ok(Command::Validate(out));
    }
    Ok(Command::Run(out))
}

/// Parses a duration as the configuration does (`500ms`, `10s`, `2m`, `1h30m`), plus a bare
/// number of seconds as tini users write it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    crate::config::parse_duration(text)
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
