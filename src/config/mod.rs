//! The service configuration: TOML files in, a validated [`Config`] out, or every problem found.
//!
//! Loading runs in stages, each working on the output of the one before, and none stopping at
//! the first error:
//!
//! 1. [`resolve_sources`] picks the files (`--config`, `$PIDONE_CONFIG`, `/etc/pidone.toml` +
//!    `/etc/pidone.d/*.toml`, `/services.toml`); then `dropin` adds the files of the drop-in
//!    directory, where `pidone add` writes (`[api] dropin_dir`: known once those are parsed).
//! 2. `parse` walks each file's TOML into typed `RawService`s, keeping the line of every key.
//! 3. [`load`] checks names, expands `instances`, applies the environment selection
//!    (`select`), resolves dependency names to [`ServiceId`]s, orders the graph
//!    ([`crate::core::graph`]), and finally resolves each service against the outside world: its
//!    environment (`env_file`, `env`, `${VAR}` via `expand`), its user ([`crate::os::users`]) and
//!    its program on `PATH`.
//!
//! Checks that depend on the outside world (program, user, env_file, undefined variables) are
//! skipped for disabled services, as go-overlay does: an image may ship a config for services
//! whose programs it does not contain, and turn them off from the environment.
//!
//! The result is plain data in start order; the runtime never looks a name up again.
//!
//! The files, one concern each: `model` (the validated types), `sources` (which files), `load`
//! (the stages in order, errors sorted), `parse` (TOML → raw services, one key table per
//! section), `resolve` (across services: names, instances, selection, dependencies, graph),
//! `outside` (one service against the world: user, environment, programs), `describe`
//! (`pidone validate`'s summary), `budget` (stop timeouts against the shutdown budget),
//! `controls` (limits, secrets and the environment's origin against the world), `dropin` (the
//! drop-in directory as a source, and writing to it), `error`,
//! `limits`, `select`, `expand` and `envfile`. This file only re-exports what the rest of pidone
//! uses.

mod api;
mod budget;
pub mod conditions;
mod controls;
mod describe;
pub mod dropin;
pub mod envfile;
mod error;
mod expand;
pub mod limits;
mod load;
mod model;
mod outside;
mod parse;
mod resolve;
mod select;
mod sources;
mod stackenv;
mod tls;

pub use crate::core::graph::ServiceId;
pub use crate::os::users::Credentials;
pub use budget::shutdown_warning;
pub use controls::read_secret;
pub use describe::{describe, format_duration};
pub use error::{ConfigError, ErrorKind, Location, edit_distance, problem_count, suggest};
pub use load::{LoadContext, load, load_edited, load_texts};
pub use model::{
    Api, CheckSpec, Config, DEFAULT_PATH, Env, FileLog, Kind, Level, Listen, ListenAddr, LogMode,
    LogSettings, OnFailure, Overlap, Probe, ReadyMode, Restart, Schedule, Secret, ServiceSpec,
    Timeouts, Timer, Token, bracketed, is_service_name,
};
pub use parse::{parse_duration, parse_signal};
pub use select::env_token;
pub use sources::resolve_sources;

#[cfg(test)]
mod tests;
