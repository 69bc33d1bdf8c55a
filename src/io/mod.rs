//! Bytes moving, never blocking the loop: the output multiplexer of the services' pipes and
//! pidone's own messages (`output`, `logsink`), the readiness channels (`notify`: a notify fd or
//! an sd_notify socket), the network side of checks (`probe`), and the files pidone opens for
//! the configuration and its services (`files`: never blocking, bounded, never trusting them),
//! and the services' log files with the look of every line (`logfile`, `sinks`, `format`), and
//! the last lines of each service kept for `pidone logs` (`ring`).

pub mod files;
pub mod format;
pub mod logfile;
pub mod logsink;
pub mod notify;
pub mod output;
pub mod probe;
pub mod ring;
pub mod sinks;
