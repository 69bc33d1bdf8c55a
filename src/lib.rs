//! pidone: a small PID 1 for containers.
//!
//! The binary (`src/main.rs`) only hands its arguments to [`run`] and exits with what it returns;
//! everything else lives in the modules below, one concern per file.

// PID 1 must not panic: no indexing or slicing that could be out of bounds, outside tests. The
// configuration loader still indexes where the bound holds by construction, in config/resolve.rs
// (the dependency links between expanded units) and config/parse/checks.rs: it runs at start-up
// and at each reload, so these are to be rewritten as the others were.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod cli;
#[allow(clippy::indexing_slicing)]
pub mod config;
pub mod control;
pub mod core;
pub mod io;
pub mod os;
pub mod s6;
pub mod supervisor;

use std::ffi::OsString;
use std::io::Write;

/// Runs pidone with the arguments after the program name; returns the process exit status.
pub fn run(args: Vec<OsString>) -> i32 {
    os::sys::sanitize_stdio();
    let command = match cli::parse(args) {
        Ok(command) => command,
        Err(err) => {
            eprintln!(
                "pidone: {err}\n{}\ntry 'pidone --help' for more.",
                cli::USAGE
            );
            return 2;
        }
    };
    let (args, validate) = match command {
        cli::Command::Help => {
            print!("{}", cli::HELP);
            return 0;
        }
        cli::Command::Version => {
            println!("pidone {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        cli::Command::Client { action, socket } => {
            let path = control::client_socket_path(socket.as_deref());
            return control::client::run(&path, &action);
        }
        cli::Command::Import(args) => {
            eprintln!(
                "pidone import: {}",
                os::companion::exec("pidone-import", &args)
            );
            return 127;
        }
        #[cfg(feature = "s6-commands")]
        cli::Command::InstallS6(root) => return s6::commands::install(&root),
        cli::Command::Run(args) => (args, false),
        cli::Command::Validate(args) => (args, true),
    };
    init_logging(args.verbose);
    // A panic (never expected) must not take the captured messages that explain it along.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = std::io::stderr().write_all(&io::logsink::take_for_panic());
        default_hook(info);
    }));
    let config = match load_config(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            for err in &errors {
                eprintln!("pidone: {err}");
            }
            eprintln!(
                "pidone: configuration refused ({} problem(s)); nothing was started",
                errors.len()
            );
            return 2;
        }
    };
    if validate {
        return match config {
            Some(config) => {
                print!("{}", config::describe(&config));
                if let Some(warning) = config::shutdown_warning(&config) {
                    eprintln!("pidone: warning: {warning}");
                }
                0
            }
            None => {
                eprintln!(
                    "pidone: no configuration found (--config, $PIDONE_CONFIG, /etc/pidone.toml, /services.toml)"
                );
                2
            }
        };
    }
    if config.is_none() && args.program.is_empty() {
        eprintln!(
            "pidone: missing PROGRAM, and no configuration found\n{}\ntry 'pidone --help' for more.",
            cli::USAGE
        );
        return 2;
    }
    if let Some(warning) = config.as_ref().and_then(config::shutdown_warning) {
        log::warn!("{warning}");
    }
    let from_config = config.as_ref().map(|c| c.log).unwrap_or_default();
    let style = io::format::Style {
        timestamps: args.log_timestamps || from_config.timestamps,
        json: args.log_json.unwrap_or(from_config.json),
    };
    io::logsink::set_style(style);
    let passed_sockets = match os::listen::passed_sockets() {
        Ok(n) => n,
        Err(err) => {
            eprintln!("pidone: {err}");
            return 2;
        }
    };
    let options = supervisor::Options {
        log_style: style,
        passed_sockets,
        group: args.group,
        grace: args.grace,
        map_exit: args.map_exit,
        log_lines: args.log_lines,
        config_paths: args.config.clone(),
    };
    let program = (!args.program.is_empty()).then_some(args.program);
    match supervisor::Supervisor::new(options, config, args.socket.as_deref()) {
        Ok(mut supervisor) => {
            if let Err(err) = supervisor.bind_sockets() {
                eprintln!("pidone: {err}");
                return 2;
            }
            supervisor.run(program)
        }
        Err(err) => {
            log::error!("cannot start: {err}");
            1
        }
    }
}

/// Finds and loads the configuration: `None` when there is none (single-program mode).
pub(crate) fn load_config(
    cli: &[std::path::PathBuf],
) -> Result<Option<config::Config>, Vec<config::ConfigError>> {
    let ctx = config::LoadContext::from_process();
    let sources = config::resolve_sources(cli, &ctx.env, &ctx.root)?;
    if sources.is_empty() {
        return Ok(None);
    }
    config::load(&sources, &ctx).map(Some)
}

/// pidone's own messages go to stderr as `pidone: ...`; quiet (warnings and errors) unless
/// `PIDONE_LOG` or `-v` asks for more.
fn init_logging(verbose: u8) {
    let env = std::env::var("PIDONE_LOG").ok();
    io::logsink::init(verbose, env.as_deref());
}
