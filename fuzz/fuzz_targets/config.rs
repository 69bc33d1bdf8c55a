//! Feeds arbitrary bytes to the configuration loader as a TOML file: it must return a config or a
//! list of errors, never panic.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pidone::config::{self, LoadContext};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("pidone-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file: PathBuf = dir.join("services.toml");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    let ctx = LoadContext {
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into_iter().collect(),
        euid: 0,
        egid: 0,
        root: dir.clone(),
    };
    if let Ok(config) = config::load(&[file], &ctx) {
        let _ = config::describe(&config);
    }
});
