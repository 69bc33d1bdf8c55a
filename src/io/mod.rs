//! Bytes moving, never blocking the loop: the output multiplexer of the services' pipes and
//! pidone's own messages (`output`, `logsink`), the readiness channels (`notify`: a notify fd or
//! an sd_notify socket), the network side of checks (`probe`), and the files pidone opens for
//! the configuration and its services (`files`: never blocking, bounded, never trusting them),
//! and the services' log files with the look of every line (`logfile`, `sinks`, `format`), and
//! the last lines of each service kept for `pidone logs` (`ring`); lines written straight from
//! the buffer they were read into (`direct`).

// The init-only build (no `services` feature) keeps `format` and `logsink`: pidone's own lines.
#[cfg(feature = "services")]
pub mod direct;
#[cfg(feature = "services")]
pub mod files;
pub mod format;
#[cfg(feature = "services")]
pub mod logfile;
pub mod logsink;
#[cfg(feature = "services")]
pub mod notify;
#[cfg(feature = "services")]
pub mod output;
#[cfg(feature = "services")]
pub mod probe;
#[cfg(feature = "services")]
pub mod ring;
#[cfg(feature = "services")]
pub mod sinks;
