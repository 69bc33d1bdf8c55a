//! pidone: a small PID 1 for containers.
//!
//! The binary (`src/main.rs`) only hands its arguments to [`run`] and exits with what it returns;
//! everything else lives in the modules below, one concern per file.
//!
//! The `services` feature (a default one) brings the configuration, the supervisor, the control
//! socket and its client. Without it, the init-only build runs one program as init (`single`)
//! and refuses the rest: the modules that only services need are left out here, at their
//! declarations, so that none of their code or dependencies can reach the binary.

// PID 1 must not panic: no indexing or slicing that could be out of bounds, outside tests. The
// configuration loader still indexes where the bound holds by construction, in config/resolve.rs
// (the dependency links between expanded units) and config/parse/checks.rs: it runs at start-up
// and at each reload, so these are to be rewritten as the others were.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod cli;
#[cfg(feature = "services")]
#[allow(clippy::indexing_slicing)]
pub mod config;
#[cfg(feature = "services")]
pub mod control;
pub mod core;
pub mod io;
pub mod os;
#[cfg(feature = "s6")]
pub mod s6;
pub mod single;
// Built without the `s6` feature: no s6-overlay layout is ever found.
#[cfg(all(feature = "services", not(feature = "s6")))]
#[path = "s6/off.rs"]
mod s6;
#[cfg(feature = "services")]
pub mod supervisor;

use std::ffi::OsString;

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
            #[cfg(not(feature = "services"))]
            print!("{}", single::HELP_NOTE);
            return 0;
        }
        cli::Command::Version => {
            println!("pidone {}{BUILD}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        #[cfg(feature = "services")]
        cli::Command::Client {
            action,
            socket,
            url,
            token_file,
            ca_file,
        } => {
            let endpoint = match control::remote::Endpoint::remote(url, token_file, ca_file) {
                Ok(Some(remote)) => remote,
                Ok(None) => {
                    let path = control::client_socket_path(socket.as_deref());
                    control::remote::Endpoint::Socket(path)
                }
                Err(err) => {
                    eprintln!("pidone: {err}");
                    return 2;
                }
            };
            return control::client::run(&endpoint, &action);
        }
        #[cfg(not(feature = "services"))]
        cli::Command::Import(_) => return single::refuse("import"),
        #[cfg(not(feature = "services"))]
        cli::Command::WithoutServices(word) => return single::refuse(word),
        #[cfg(feature = "services")]
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
    #[cfg(not(feature = "services"))]
    return single::run(args, validate);
    #[cfg(feature = "services")]
    services(args, validate)
}

/// What `--version` says after the number: which build this is.
#[cfg(feature = "services")]
const BUILD: &str = "";
#[cfg(not(feature = "services"))]
const BUILD: &str = " (init-only build)";

/// Runs the services and/or the program (or `validate`s the configuration): the full build.
#[cfg(feature = "services")]
fn services(args: cli::Args, validate: bool) -> i32 {
    use std::io::Write;
    // A panic (never expected) must not take the captured messages that explain it along.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = std::io::stderr().write_all(&io::logsink::take_for_panic());
        default_hook(info);
    }));
    let (config, s6) = match load_any(&args.config, None) {
        Ok(Some((config, s6))) => (Some(config), s6),
        Ok(None) => (None, None),
        Err(errors) => {
            for err in &errors {
                eprintln!("pidone: {err}");
            }
            eprintln!(
                "pidone: configuration refused ({} problem(s)); nothing was started",
                config::problem_count(&errors)
            );
            return 2;
        }
    };
    if cfg!(feature = "s6") && validate && args.toml {
        return match (&config, s6) {
            (Some(_), Some(s6)) => {
                print!("{}", s6.toml());
                0
            }
            _ => {
                eprintln!("pidone: --toml prints an s6-overlay layout as TOML, and none was found");
                2
            }
        };
    }
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
    if let Some(s6) = &s6 {
        s6.boot();
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
        listen: args.listen,
    };
    let api = config.as_ref().map(|c| c.api.clone()).unwrap_or_default();
    let program = (!args.program.is_empty()).then_some(args.program);
    match supervisor::Supervisor::new(options, config, args.socket.as_deref()) {
        Ok(mut supervisor) => {
            if let Err(err) = (supervisor.bind_sockets()).and_then(|()| supervisor.bind_api(api)) {
                eprintln!("pidone: {err}");
                return 2;
            }
            #[cfg(feature = "s6")]
            if let Some(s6) = &s6 {
                supervisor.s6_overlay(s6.runtime());
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
#[cfg(feature = "services")]
pub(crate) fn load_config(
    cli: &[std::path::PathBuf],
) -> Result<Option<config::Config>, Vec<config::ConfigError>> {
    load_config_edited(cli, None)
}

/// [`load_config`], as if the drop-in directory had `edit` made to it (`pidone add` and `pidone
/// remove` try their change before they make it).
#[cfg(feature = "services")]
pub(crate) fn load_config_edited(
    cli: &[std::path::PathBuf],
    edit: Option<&config::dropin::Edit>,
) -> Result<Option<config::Config>, Vec<config::ConfigError>> {
    Ok(load_any(cli, edit)?.map(|(config, _)| config))
}

/// The configuration, and what else came with it when it was read from an s6-overlay layout:
/// a layout `--config` names, else the TOML files, else the image's s6-overlay layout.
#[cfg(feature = "services")]
#[allow(clippy::type_complexity)]
fn load_any(
    cli: &[std::path::PathBuf],
    edit: Option<&config::dropin::Edit>,
) -> Result<Option<(config::Config, Option<s6::Loaded>)>, Vec<config::ConfigError>> {
    let ctx = config::LoadContext::from_process();
    let s6 = |cli| s6::try_load(cli, &ctx).map(|r| r.map(|(c, l)| Some((c, Some(l)))));
    if let Some(loaded) = (!cli.is_empty()).then(|| s6(cli)).flatten() {
        return loaded;
    }
    let sources = config::resolve_sources(cli, &ctx.env, &ctx.root)?;
    if sources.is_empty() {
        return s6(&[]).unwrap_or(Ok(None));
    }
    config::load_edited(&sources, &ctx, edit).map(|c| Some((c, None)))
}

/// pidone's own messages go to stderr as `pidone: ...`; quiet (warnings and errors) unless
/// `PIDONE_LOG` or `-v` asks for more.
fn init_logging(verbose: u8) {
    let env = std::env::var("PIDONE_LOG").ok();
    io::logsink::init(verbose, env.as_deref());
}
