//! pidone: a small PID 1 for containers.
//!
//! The binary (`src/main.rs`) only turns arguments into a [`cli::Args`] and a `Result` into an exit
//! code; everything else lives in the modules below, one concern per file.
