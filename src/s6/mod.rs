//! s6-overlay compatibility: the helper commands its scripts call, served by pidone itself.

pub mod commands;
