//! s6-overlay compatibility: the helper commands its scripts call, served by pidone itself.

#[cfg(feature = "s6-commands")]
pub mod commands;
