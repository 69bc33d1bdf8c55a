//! The top-level `env_file`: files of `KEY=VALUE` lines read once for the whole stack (a
//! `.env`, as process-compose loads one), whose variables every service gets over pidone's own
//! environment and under everything the service sets itself.

use super::error::{ConfigError, ErrorKind, Location};
use super::expand;
use super::resolve::Loader;

/// One file's `env_file`: the index of the config file, its paths as written, and the line.
pub(super) type StackEnvFiles = (usize, Vec<String>, usize);

impl Loader<'_> {
    /// Reads every config file's `env_file`, in the order of the files and of each one's list
    /// (a later file's variable wins), into `stack_env`. A path is `${VAR}`-expanded against
    /// pidone's environment and taken relative to the directory of the config file naming it;
    /// each problem is reported at the `env_file` key of that file.
    pub(super) fn read_stack_env(&mut self, entries: &[StackEnvFiles]) {
        for (file, paths, line) in entries {
            let dir = self.dir_of(*file);
            for text in paths {
                let env = &self.ctx.env;
                let read = expand::expand(text, |n| env.get(n).map(String::as_str))
                    .map_err(|kind| vec![kind])
                    .and_then(|p| super::outside::env_file(&dir.join(p)));
                match read {
                    Ok(vars) => self.stack_env.extend(vars),
                    Err(kinds) => {
                        for kind in kinds {
                            self.stack_env_error(*file, *line, kind);
                        }
                    }
                }
            }
        }
    }

    fn stack_env_error(&mut self, file: usize, line: usize, kind: ErrorKind) {
        self.errors.push(ConfigError {
            location: Location::File {
                path: self.sources.get(file).cloned().unwrap_or_default(),
                line: Some(line),
            },
            service: None,
            key: Some("env_file".to_owned()),
            kind,
        });
    }
}
