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
