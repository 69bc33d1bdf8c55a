//! The configuration's size limits, each refused at load with its file, line and key. They keep
//! one configuration from taking PID 1's memory, or the time of one loop turn, without bound;
//! each is far above what a container needs. docs/config.md lists them under "Limits".

use super::ErrorKind;

/// Services after `instances` are expanded. Benchmarks run 1500; each service costs a few
/// descriptors (pipes, a pidfd) and some kilobytes, so 4096 stays well inside the usual
/// descriptor limits and a few tens of megabytes.
pub const MAX_SERVICES: usize = 4096;

/// `instances` of one service.
pub const MAX_INSTANCES: u32 = 1024;

/// Entries of one service's `depends_on`, `after` and `wait_after`, each.
pub const MAX_DEPENDENCIES: usize = 256;

/// Dependencies (`depends_on`, `after`, `log_to`) of all services together once `instances`
/// are expanded: a service with 1024 instances naming one with 1024 makes a million of them
/// (8 MiB, several times over while the graph is ordered) from a few lines of TOML.
pub const MAX_EXPANDED_DEPENDENCIES: usize = 65_536;

/// Bytes of the environments of all services together (names and values, pidone's own
/// included, once `instances` are expanded): each instance holds its own copy, so a 1 MiB
/// `env_file` read by 4096 instances would take 4 GiB. 64 MiB is room for 4096 services with
/// 16 KiB of environment each.
pub const MAX_ENVIRONMENT_BYTES: usize = 64 * 1024 * 1024;

/// `[[services.checks]]` of one service (with `health_check`).
pub const MAX_CHECKS: usize = 32;

/// Variables one service sets through `env` and `env_file`, each.
pub const MAX_ENV_VARS: usize = 1024;

/// Bytes of a service or check name: they head tables and prefix every output line.
pub const MAX_NAME_LEN: usize = 64;

/// Bytes of any string value or key: 64 KiB, half of what Linux allows one argument or
/// environment string (`MAX_ARG_STRLEN`).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Bytes of one config file.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Bytes of one `env_file`.
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// Errors reported for one configuration: past it, one line says how many more there are, and
/// the loader skips the costly parts of its checks (did-you-mean suggestions). A hostile file of
/// a few hundred bytes could otherwise make hundreds of thousands of them, and PID 1 would spend
/// seconds on a reload it refuses anyway.
pub const MAX_ERRORS: usize = 100;
/// Bytes of one `[api]` token file (a token is one word).
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Bytes of `[api] cert_file` or `key_file` (feature `tls`): a chain of a few certificates is
/// some kilobytes.
#[cfg(feature = "tls")]
pub const MAX_PEM_FILE_BYTES: u64 = 256 * 1024;

/// The error for `n` things (`what`) where at most `max` are allowed, if `n` is over.
pub(super) fn too_many(what: &str, n: usize, max: usize) -> Option<ErrorKind> {
    (n > max).then(|| ErrorKind::BadValue {
        message: format!("too many {what} ({n}; the limit is {max})"),
    })
}

/// The error for a `what` of `n` bytes where at most `max` are allowed, if `n` is over.
pub(super) fn too_long(what: &str, n: usize, max: usize) -> Option<ErrorKind> {
    (n > max).then(|| ErrorKind::BadValue {
        message: format!("{what} too long ({n} bytes; the limit is {max})"),
    })
}
