//! `[api]` across files: a key set in a later file overrides the one before (as `[log]`), and
//! the token files are read, at start and at every reload, like every file the configuration
//! names (a regular file, within a size limit; a symlink is followed, as Kubernetes mounts
//! secrets). A token's text never appears in an error.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, ErrorKind, Location};
use super::model::{Api, Token};
use super::parse::RawApi;

/// The `[api]` of every file (by index into `sources`), merged; token files read.
pub(super) fn resolve(
    sources: &[PathBuf],
    raws: Vec<(usize, RawApi)>,
    errors: &mut Vec<ConfigError>,
) -> Api {
    let mut api = Api::default();
    let (mut token, mut read_token) = (None, None);
    let (mut cert, mut key) = (None, None);
    for (file, raw) in raws {
        let path = sources.get(file).map_or(Path::new(""), PathBuf::as_path);
        if let Some((addrs, line)) = raw.listen {
            let at = |text| format!("{}:{line}: key \"api.listen\": {text}", path.display());
            api.listen = addrs.into_iter().map(|(a, text)| (a, at(text))).collect();
        }
        api.public = raw.public.unwrap_or(api.public);
        let named = |(name, line)| (path, name, line);
        token = raw.token_file.map(named).or(token);
        read_token = raw.read_token_file.map(named).or(read_token);
        cert = raw.cert_file.map(named).or(cert);
        key = raw.key_file.map(named).or(key);
    }
    api.token = token.and_then(|t| read(t, "api.token_file", errors));
    api.read_token = read_token.and_then(|t| read(t, "api.read_token_file", errors));
    super::tls::resolve(&mut api, cert, key, errors);
    api
}

/// Reads a token file named in `config` at `line` (relative to the file's directory).
fn read(
    (config, name, line): (&Path, String, usize),
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Token> {
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty());
    let path = dir.unwrap_or(Path::new(".")).join(name);
    let text = crate::io::files::read_text(&path, super::limits::MAX_TOKEN_FILE_BYTES);
    let kind = match text.as_deref().map(str::trim) {
        Ok(token) if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) => {
            return Some(Token(token.as_bytes().to_vec()));
        }
        Ok(_) => ErrorKind::BadValue {
            message: format!(
                "{}: a token is one word of printable ASCII, and this file holds something else",
                path.display()
            ),
        },
        Err(err) => ErrorKind::Read {
            path,
            error: err.to_string(),
        },
    };
    errors.push(ConfigError {
        location: Location::File {
            path: config.to_path_buf(),
            line: Some(line),
        },
        service: None,
        key: Some(key.to_string()),
        kind,
    });
    None
}
