//! The client's side of HTTPS (`pidone --url https://HOST:PORT`, feature `tls`): whom it trusts
//! (`--ca-file`, else `$PIDONE_CA_FILE`, else the system's CA bundle) and the TLS stream it
//! talks through, blocking as the client is. The server's certificate must be valid for HOST, as
//! written in the URL (a name or an IP address).

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The TLS stream of one request.
pub type Stream = StreamOwned<ClientConnection, TcpStream>;

/// Where the system keeps its CA bundle, by distribution (Debian, Ubuntu, Alpine, Arch; Fedora,
/// RHEL; openSUSE; Alpine and others), when `$SSL_CERT_FILE` does not say.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Bytes of a CA file: a system bundle is some hundreds of kilobytes.
const MAX_CA_BYTES: u64 = 8 * 1024 * 1024;

/// The client's TLS settings: the CAs it trusts, ring's cryptography.
#[derive(Clone)]
pub struct Trust(Arc<ClientConfig>);

impl Trust {
    /// Trusts the certificates of `ca_file` (else `$PIDONE_CA_FILE`), or the system's bundle.
    /// The error, a usage error, names the file and says why.
    pub fn load(ca_file: Option<PathBuf>) -> Result<Trust, String> {
        let given = ca_file.or_else(|| {
            std::env::var_os("PIDONE_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut roots = RootCertStore::empty();
        match given {
            Some(path) => {
                for cert in certificates(&path, "--ca-file")? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
                }
            }
            None => {
                let Some(path) = system_bundle() else {
                    return Err("https: no CA bundle on this system; give --ca-file".to_string());
                };
                roots.add_parsable_certificates(certificates(&path, "CA bundle")?);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("https: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust(Arc::new(config)))
    }

    /// A TLS session over `sock` with the server `host` (a name or an IP address, without
    /// brackets); the handshake happens at the first write.
    pub fn connect(&self, host: &str, sock: TcpStream) -> io::Result<Stream> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(Arc::clone(&self.0), name).map_err(io::Error::other)?;
        Ok(StreamOwned::new(conn, sock))
    }
}

/// True when the stream holds plaintext already read from the socket: poll would not say so.
pub fn buffered(stream: &mut Stream) -> bool {
    // An error is there to be read: the next read reports it.
    (stream.conn.process_new_packets()).map_or(true, |s| s.plaintext_bytes_to_read() > 0)
}

/// `$SSL_CERT_FILE`, else the first of [`SYSTEM_BUNDLES`] that exists.
fn system_bundle() -> Option<PathBuf> {
    let set = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    set.map(PathBuf::from).or_else(|| {
        SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// The certificates of a PEM file, at least one.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let at = |why: String| format!("{what} {}: {why}", path.display());
    let text = crate::io::files::read_text(path, MAX_CA_BYTES).map_err(|e| at(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| at(format!("not a PEM file of certificates: {e}")))?;
    if certs.is_empty() {
        return Err(at(
            "no certificate in it (PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// Two endpoints trust the same when they share the settings: each `--url` loads its own.
impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Trust {}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust(..)")
    }
}
