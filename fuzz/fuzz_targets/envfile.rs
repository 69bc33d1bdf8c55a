//! Feeds arbitrary text to the env file parser (pidone reads env files as UTF-8): pairs or
//! numbered errors, never a panic; every pair it returns can be passed through `execve`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pidone::config::envfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match envfile::parse(text) {
        Ok(vars) => {
            for (key, value) in vars {
                assert!(envfile::is_valid_key(&key), "key {key:?}");
                assert!(!value.contains('\0'), "value of {key:?}");
            }
        }
        Err(errors) => {
            for error in errors {
                assert!(error.line >= 1);
                let _ = error.to_string();
            }
        }
    }
});
