//! `[api] cert_file` and `key_file`: the TCP listeners' certificate chain and private key (PEM),
//! both or neither, read at start and at every reload like the token files (relative to the
//! configuration file's directory; a symlink is followed, as Kubernetes mounts secrets). They are
//! checked here, down to the key being the certificate's, so that a bad pair refuses the
//! configuration, with the file, line and key, and a reload keeps the certificate it had. In a
//! build without the feature `tls` either key is refused as such.

use std::path::Path;

use super::error::{ConfigError, ErrorKind, Location};
use super::model::Api;

/// A key's file as written: the configuration file it is in, its text, its line.
type Named<'a> = (&'a Path, String, usize);

/// Sets `api.tls` from `cert` and `key`, or says what is wrong with them in `errors`.
pub(super) fn resolve(
    api: &mut Api,
    cert: Option<Named>,
    key: Option<Named>,
    errors: &mut Vec<ConfigError>,
) {
    let error = |(config, _, line): &Named, key: &str, message: String| ConfigError {
        location: Location::File {
            path: config.to_path_buf(),
            line: Some(*line),
        },
        service: None,
        key: Some(key.to_string()),
        kind: ErrorKind::BadValue { message },
    };
    match (cert, key) {
        (None, None) => {}
        #[cfg(not(feature = "tls"))]
        (cert, key) => {
            let _ = api;
            let named = (cert.map(|c| (c, "api.cert_file"))).or(key.map(|k| (k, "api.key_file")));
            if let Some((named, name)) = named {
                let why = "this pidone was built without TLS (the cargo feature tls); \
                           use a build with it, or leave out cert_file and key_file";
                errors.push(error(&named, name, why.to_string()));
            }
        }
        #[cfg(feature = "tls")]
        (Some(cert), None) => errors.push(error(
            &cert,
            "api.cert_file",
            "cert_file and key_file go together: key_file is missing".to_string(),
        )),
        #[cfg(feature = "tls")]
        (None, Some(key)) => errors.push(error(
            &key,
            "api.key_file",
            "cert_file and key_file go together: cert_file is missing".to_string(),
        )),
        #[cfg(feature = "tls")]
        (Some(cert), Some(key)) => match Keys::read(&cert, &key) {
            Ok(keys) => api.tls = Some(keys),
            Err((which, message)) => {
                let (named, name) = match which {
                    Which::Cert => (&cert, "api.cert_file"),
                    Which::Key => (&key, "api.key_file"),
                };
                errors.push(error(named, name, message));
            }
        },
    }
}

#[cfg(feature = "tls")]
pub use keys::Keys;

#[cfg(feature = "tls")]
use keys::Which;

#[cfg(feature = "tls")]
mod keys {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use rustls::ServerConfig;
    use rustls::pki_types::pem::{self, PemObject};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::Named;
    use crate::config::limits::MAX_PEM_FILE_BYTES;

    /// A certificate chain and its key, read and made the TLS settings of the listeners.
    #[derive(Clone)]
    pub struct Keys {
        config: Arc<ServerConfig>,
        chain: Vec<CertificateDer<'static>>,
        files: (PathBuf, PathBuf),
    }

    /// Which of the two files an error is about.
    pub(super) enum Which {
        Cert,
        Key,
    }

    impl Keys {
        /// Reads `cert` and `key`; the error names the file at fault and says why.
        pub(super) fn read(cert: &Named, key: &Named) -> Result<Keys, (Which, String)> {
            let cert_path = path_of(cert.0, &cert.1);
            let key_path = path_of(key.0, &key.1);
            let text = |path: &PathBuf, which| {
                crate::io::files::read_text(path, MAX_PEM_FILE_BYTES)
                    .map_err(|e| (which, format!("cannot read {}: {e}", path.display())))
            };
            let cert_text = text(&cert_path, Which::Cert)?;
            let key_text = text(&key_path, Which::Key)?;
            let at = |path: &PathBuf, why: String| format!("{}: {why}", path.display());
            let chain = CertificateDer::pem_slice_iter(cert_text.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| (Which::Cert, at(&cert_path, pem_error(&e))))?;
            if chain.is_empty() {
                let why = "no certificate in it (PEM: -----BEGIN CERTIFICATE-----)";
                return Err((Which::Cert, at(&cert_path, why.to_string())));
            }
            let secret = PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| {
                let why = match e {
                    pem::Error::NoItemsFound => {
                        "no private key in it (PEM: PKCS#8, PKCS#1 or SEC1)".to_string()
                    }
                    e => pem_error(&e),
                };
                (Which::Key, at(&key_path, why))
            })?;
            let config =
                crate::control::tls::server_config(chain.clone(), secret).map_err(|e| match e {
                    rustls::Error::InvalidCertificate(why) => (
                        Which::Cert,
                        at(&cert_path, format!("a bad certificate: {why}")),
                    ),
                    rustls::Error::InconsistentKeys(_) => {
                        let why = "the key is not the certificate's (cert_file)";
                        (Which::Key, at(&key_path, why.to_string()))
                    }
                    e => (Which::Key, at(&key_path, e.to_string())),
                })?;
            Ok(Keys {
                config,
                chain,
                files: (cert_path, key_path),
            })
        }

        /// The listeners' TLS settings.
        pub fn config(&self) -> &Arc<ServerConfig> {
            &self.config
        }
    }

    /// The file `name` of a key in `config`, relative to that file's directory.
    fn path_of(config: &Path, name: &str) -> PathBuf {
        let dir = config.parent().filter(|d| !d.as_os_str().is_empty());
        dir.unwrap_or(Path::new(".")).join(name)
    }

    /// What is wrong with a PEM file, without its contents (a key's text is never printed).
    fn pem_error(e: &pem::Error) -> String {
        match e {
            pem::Error::NoItemsFound => "nothing in PEM form in it".to_string(),
            pem::Error::Base64Decode(_) => "bad base64 in a PEM section".to_string(),
            pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_string(),
            pem::Error::IllegalSectionStart { .. } => "a bad PEM BEGIN line".to_string(),
            _ => "not a valid PEM file".to_string(),
        }
    }

    /// Two configurations hold the same keys when they read the same files to the same chain
    /// (the key is the chain's: it was checked).
    impl PartialEq for Keys {
        fn eq(&self, other: &Keys) -> bool {
            self.files == other.files && self.chain == other.chain
        }
    }

    impl Eq for Keys {}

    /// The files only: a key's bytes are never printed.
    impl std::fmt::Debug for Keys {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let (cert, key) = &self.files;
            write!(f, "Keys({}, {})", cert.display(), key.display())
        }
    }
}
