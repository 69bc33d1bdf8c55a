//! TLS on the API's TCP listeners (feature `tls`): rustls, with ring's cryptography. rustls does
//! no I/O of its own, so the poll loop drives each session on its non-blocking socket: records
//! are read when poll says the socket is readable, and written as far as the socket takes them;
//! what it does not take waits in the session (a bounded buffer) and the connection polls for
//! writing ([`Session::flushing`]). A client that stops reading holds up nobody but itself, and is
//! dropped at its deadline like any other.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// The server's TLS settings for `chain` (the certificate first) and its `key`: TLS 1.3 and 1.2
/// with rustls' safe defaults, no client certificates, and no session resumption (a client makes
/// one request per connection, rarely two close together: nothing is worth remembering, and
/// nothing grows). The error is rustls' refusal, e.g. a key that is not the certificate's.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// One client's TLS session, over a socket the caller lends to each call.
pub struct Session(ServerConnection);

impl Session {
    pub fn new(config: &Arc<ServerConfig>) -> Result<Session, rustls::Error> {
        ServerConnection::new(Arc::clone(config)).map(Session)
    }

    /// Reads what the client sent: the handshake is carried on as records come, and its answers
    /// written. Returns plaintext; `Ok(0)` once the client closed the session properly;
    /// `WouldBlock` while no plaintext can be had yet; an error for a broken session (its alert
    /// is sent first, as far as the socket takes it).
    pub fn read(&mut self, sock: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.reader().read(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // Plaintext, a clean end (0), or an end without close_notify (UnexpectedEof).
                done => return done,
            }
            self.push(sock)?;
            match self.0.read_tls(sock) {
                // End of file: the reader says how the session ended.
                Ok(_) => self.process(sock)?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Takes what it can of `buf` as records for the client; `WouldBlock` while earlier
    /// records still wait for room in the socket.
    pub fn write(&mut self, sock: &mut (impl Read + Write), buf: &[u8]) -> io::Result<usize> {
        self.flush(sock)?;
        let taken = self.0.writer().write(buf)?;
        self.push(sock)?;
        if taken == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Writes the records waiting; `WouldBlock` while some still wait.
    pub fn flush(&mut self, sock: &mut impl Write) -> io::Result<()> {
        while self.0.wants_write() {
            match self.0.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Like [`Session::flush`], without the `WouldBlock`: what waits goes out when poll says.
    fn push(&mut self, sock: &mut impl Write) -> io::Result<()> {
        match self.flush(sock) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
            done => done,
        }
    }

    /// Handles the records read: on a bad one, the alert rustls made for the client is sent
    /// (what the socket takes of it) and the session is over.
    fn process(&mut self, sock: &mut impl Write) -> io::Result<()> {
        match self.0.process_new_packets() {
            Ok(_) => self.push(sock),
            Err(err) => {
                log::debug!("api: TLS: {err}");
                let _ = self.flush(sock);
                Err(io::Error::new(io::ErrorKind::InvalidData, err))
            }
        }
    }

    /// True while records wait for room in the socket.
    pub fn flushing(&self) -> bool {
        self.0.wants_write()
    }

    /// Queues close_notify: the answer is complete.
    pub fn finish(&mut self) {
        self.0.send_close_notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A CA and a certificate of it for localhost with its key, made by openssl in a fresh
    /// directory: (the CA's certificate, the certificate, the key).
    fn keys() -> (
        CertificateDer<'static>,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
    ) {
        let dir = std::env::temp_dir().join(format!("pidone-tls-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let openssl = |args: &str| {
            let out = Command::new("openssl")
                .args(args.split(' '))
                .current_dir(&dir)
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl {args}: {out:?}");
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(&format!(
            "req -x509 -days 2 -subj /CN=ca {ec} -keyout ca.key -out ca.pem"
        ));
        openssl(&format!(
            "req -subj /CN=localhost {ec} -keyout key.pem -out cert.csr"
        ));
        let ext = "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n";
        std::fs::write(dir.join("ext.cnf"), ext).expect("write");
        openssl(
            "x509 -req -days 2 -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -extfile ext.cnf -out cert.pem",
        );
        let file = |name: &str| -> PathBuf { Path::new(&dir).join(name) };
        // Each test process makes its own: nothing is left behind.
        let ca = CertificateDer::from_pem_file(file("ca.pem")).expect("the CA");
        let cert = CertificateDer::from_pem_file(file("cert.pem")).expect("the certificate");
        let key = PrivateKeyDer::from_pem_file(file("key.pem")).expect("the key");
        let _ = std::fs::remove_dir_all(&dir);
        (ca, cert, key)
    }

    /// Moves the client's records to the server, and the server's to the client (its plaintext
    /// into `received`), until the socket has nothing more either way.
    fn pump(
        client: &mut rustls::ClientConnection,
        theirs: &mut UnixStream,
        received: &mut Vec<u8>,
    ) {
        loop {
            let mut moved = false;
            while client.wants_write() {
                moved |= client.write_tls(theirs).is_ok_and(|n| n > 0);
            }
            match client.read_tls(theirs) {
                Ok(n) if n > 0 => {
                    moved = true;
                    client.process_new_packets().expect("the client's records");
                    let _ = client.reader().read_to_end(received);
                }
                _ => {}
            }
            if !moved {
                return;
            }
        }
    }

    #[test]
    fn a_client_that_does_not_read_holds_up_only_its_own_answer() {
        let (ca, cert, key) = keys();
        let config = server_config(vec![cert], key).expect("the server's settings");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).expect("the CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = "localhost".try_into().expect("a name");
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let (ours, mut theirs) = UnixStream::pair().expect("a socket pair");
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let mut sock = crate::control::stream::Raw(std::os::fd::AsFd::as_fd(&ours));
        let mut server = Session::new(&config).expect("a session");

        // The handshake and a request, a record at a time as poll would say.
        client
            .writer()
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..20 {
            let mut nothing = Vec::new();
            pump(&mut client, &mut theirs, &mut nothing);
            match server.read(&mut sock, &mut buf) {
                Ok(n) => request.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("server read: {e}"),
            }
            if request.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        assert_eq!(request, b"GET /metrics HTTP/1.1\r\n\r\n");

        // An answer far larger than the socket takes: writes stop at WouldBlock, the rest waits.
        let answer: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let mut written = 0;
        let mut blocked = false;
        for _ in 0..answer.len() {
            match server.write(&mut sock, &answer[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Err(e) => panic!("server write: {e}"),
            }
            if written == answer.len() {
                break;
            }
        }
        assert!(blocked, "the socket could not take 4 MiB");
        assert!(written < answer.len(), "only what fits was taken");

        // The client reads: the rest goes as the socket has room, then close_notify.
        let mut received = Vec::new();
        let mut finished = false;
        for _ in 0..100_000 {
            pump(&mut client, &mut theirs, &mut received);
            if written < answer.len() {
                match server.write(&mut sock, &answer[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("server write: {e}"),
                }
            } else if !finished {
                server.finish();
                finished = true;
            } else if server.flush(&mut sock).is_ok() && !server.flushing() {
                pump(&mut client, &mut theirs, &mut received);
                break;
            }
        }
        assert_eq!(received.len(), answer.len());
        assert!(received == answer, "the answer arrives whole and in order");
        let mut end = [0u8; 1];
        assert_eq!(client.reader().read(&mut end).ok(), Some(0), "close_notify");
    }
}
