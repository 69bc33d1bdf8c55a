//! A client's connection to one of the API's servers, as bytes: the socket itself, or, on TCP with
//! `[api] cert_file` (feature `tls`), a TLS session over it ([`super::tls::Session`]). Either way
//! every read and write is non-blocking: it does what the socket allows now and says
//! `WouldBlock` for the rest, so that a slow client never holds up the loop.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A connected stream socket of either kind (unix or TCP: reads and writes are the same system
/// calls), with its TLS session when the listener speaks HTTPS.
pub(super) struct Socket {
    fd: OwnedFd,
    #[cfg(feature = "tls")]
    tls: Option<Box<super::tls::Session>>,
}

/// The socket's own reads and writes, which a TLS session moves its records with.
pub(super) struct Raw<'a>(pub BorrowedFd<'a>);

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(self.0, buf)?)
    }
}

impl Write for Raw<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SIGPIPE is ignored (os::signals): a client gone is EPIPE here.
        Ok(rustix::io::write(self.0, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    /// The socket as it is: plain bytes.
    pub(super) fn plain(fd: OwnedFd) -> Socket {
        Socket {
            fd,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// A socket just accepted by a server with this `gate` (`None`: the unix socket): a TLS
    /// session when `[api]` has a certificate, else plain. `None` when a session cannot be
    /// started (logged): the client is dropped.
    pub(super) fn accepted(fd: OwnedFd, gate: Option<&crate::config::Api>) -> Option<Socket> {
        #[cfg(feature = "tls")]
        if let Some(keys) = gate.and_then(|api| api.tls.as_ref()) {
            return match super::tls::Session::new(keys.config()) {
                Ok(session) => Some(Socket {
                    fd,
                    tls: Some(Box::new(session)),
                }),
                Err(err) => {
                    log::warn!("api: TLS session: {err}");
                    None
                }
            };
        }
        let _ = gate;
        Some(Socket::plain(fd))
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// True while TLS records wait for room in the socket: poll for writing too, whatever the
    /// connection is doing (a handshake's answer can wait so).
    pub(super) fn flushing(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.flushing();
        }
        false
    }

    /// The answer is all written: a TLS session says so (close_notify), so that the client can
    /// tell the end of a stream from a cut. [`Write::flush`] sends it.
    pub(super) fn finish(&mut self) {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.finish();
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut raw = Raw(self.fd.as_fd());
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.read(&mut raw, buf);
        }
        raw.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut raw = Raw(self.fd.as_fd());
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.write(&mut raw, buf);
        }
        raw.write(buf)
    }

    /// Writes what a TLS session holds; `WouldBlock` while some must wait. Plain bytes are
    /// never held.
    fn flush(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.flush(&mut Raw(self.fd.as_fd()));
        }
        Ok(())
    }
}
