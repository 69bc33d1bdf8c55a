//! Feeds arbitrary bytes to the configuration loader as the text of a services.toml, without the
//! file (reading is `io::files`' concern, tested on its own): it must return a config or a list of
//! errors, never panic. Programs, scripts and env files named by the input are still looked up on
//! the real file system.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use pidone::config::{self, LoadContext};

fuzz_target!(|data: &[u8]| {
    // pidone reads config files as UTF-8 (io::files::read_text refuses anything else).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("pidone-fuzz-{}", std::process::id()));
    let ctx = LoadContext {
        env: [("PATH".to_string(), "/usr/bin:/bin".to_string())].into_iter().collect(),
        euid: 0,
        egid: 0,
        root: dir.clone(),
        // As if pidone managed cgroups, so that the cgroup keys are resolved too.
        cgroups: Ok(vec!["cpu".into(), "memory".into(), "pids".into()]),
    };
    let file: PathBuf = dir.join("services.toml");
    if let Ok(config) = config::load_texts(&[file], vec![Ok(text.to_string())], &ctx) {
        let _ = config::describe(&config);
    }
});
