//! pidone built without the `s6` feature: no s6-overlay layout is ever found (the real module,
//! `s6/mod.rs`, says what the feature does).

use std::path::PathBuf;

use crate::config::{Config, ConfigError, LoadContext};

/// What an s6 layout would bring: never made.
pub enum Loaded {}

impl Loaded {
    pub fn toml(&self) -> &str {
        match *self {}
    }

    pub fn boot(&self) {
        match *self {}
    }
}

/// Never finds a layout.
#[allow(clippy::type_complexity)]
pub fn try_load(
    _cli: &[PathBuf],
    _ctx: &LoadContext,
) -> Option<Result<(Config, Loaded), Vec<ConfigError>>> {
    None
}
