//! # Rustls
//!
//! Rustls implementation of tls types

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, StreamOwned};

use super::{EarlyClose, TlsConnector, TlsStream};
use crate::{FtpError, FtpResult};

/// A Wrapper for the tls connector
pub struct RustlsConnector {
    connector: Arc<ClientConfig>,
}

impl std::fmt::Debug for RustlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<?>")
    }
}

impl From<Arc<ClientConfig>> for RustlsConnector {
    fn from(connector: Arc<ClientConfig>) -> Self {
        Self { connector }
    }
}

impl TlsConnector for RustlsConnector {
    type Stream = RustlsStream;

    fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<Self::Stream> {
        let server_name = ServerName::try_from(domain.to_string())
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        let connection = ClientConnection::new(Arc::clone(&self.connector), server_name)
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        let stream = StreamOwned::new(connection, stream);
        Ok(RustlsStream {
            stream,
            ssl_shutdown: true,
            early_close: None,
            closed_early: false,
        })
    }
}

// -- tls stream wrapper to implement drop...

/// Tls stream wrapper. This type is a garbage data type used to impl the drop trait for the tls stream.
/// This allows me to keep returning `Read` and `Write` traits in stream methods
#[derive(Debug)]
pub struct RustlsStream {
    stream: StreamOwned<ClientConnection, TcpStream>,
    ssl_shutdown: bool,
    /// ftpfs patch: see [`RustlsStream::close_early`].
    early_close: Option<Arc<dyn EarlyClose>>,
    /// Whether our `close_notify` went out at the first read.
    closed_early: bool,
}

impl RustlsStream {
    /// ftpfs patch: on a data connection that carries a download or a listing, sends our
    /// `close_notify` at the first read, together with our last handshake message, instead
    /// of when the stream is dropped after the server's last byte; `watch` is told when it
    /// goes and when a read fails after it.
    ///
    /// Why: a server that ends a transfer with a complete TLS shutdown (OpenSSL's
    /// `SSL_shutdown` called until it returns 1: pure-ftpd, vsftpd) waits for our
    /// `close_notify` before it sends its `226`; sent when the transfer's data has all been
    /// read, it costs a round trip per transfer. The client sends nothing on such a data
    /// connection, so it may say goodbye as soon as the handshake is done.
    ///
    /// Only with TLS 1.3, where a `close_notify` closes one direction and the peer may go on
    /// sending (RFC 8446, 6.1); in TLS 1.2 a peer that reads it must answer with its own and
    /// drop what it has not sent yet (RFC 5246, 7.2.1). With TLS 1.2 nothing changes.
    ///
    /// A TLS error in what the server sends afterwards makes rustls send a fatal alert after
    /// the `close_notify`, which its debug assertions are against (a panic); ftpfs turns
    /// them off for rustls in its `dev` profile, so every build sends the alert and
    /// returns the error, as without the early goodbye.
    pub fn close_early(&mut self, watch: Arc<dyn EarlyClose>) {
        self.early_close = Some(watch);
    }
}

impl TlsStream for RustlsStream {
    type InnerStream = StreamOwned<ClientConnection, TcpStream>;

    /// Get underlying tcp stream.
    ///
    /// Returns a [`crate::FtpError::ConnectionError`] if the underlying socket handle cannot be
    /// cloned (e.g. on OS resource exhaustion).
    fn tcp_stream(mut self) -> crate::FtpResult<TcpStream> {
        let mut stream = self
            .get_ref()
            .try_clone()
            .map_err(crate::FtpError::ConnectionError)?;
        // Don't perform shutdown later
        self.ssl_shutdown = false;
        // flush stream (otherwise can cause bad chars on channel)
        if let Err(err) = stream.flush() {
            error!("Error in flushing tcp stream: {}", err);
        }
        trace!("TLS stream terminated");
        Ok(stream)
    }

    /// Get ref to underlying tcp stream
    fn get_ref(&self) -> &TcpStream {
        self.stream.get_ref()
    }

    /// Get mutable reference to tls stream
    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.stream
    }

    /// The first read completes the handshake, then queues our `close_notify` when asked to
    /// ([`RustlsStream::close_early`]): the read that follows writes it in one go with our
    /// `Finished`, before it reads the server's data.
    fn read_data(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(watch) = self.early_close.clone() else {
            return self.stream.read(buf);
        };
        if !self.closed_early {
            if self.stream.conn.is_handshaking() {
                // A failure here came before any goodbye of ours: not the early close's.
                self.stream.conn.complete_io(&mut self.stream.sock)?;
            }
            if self.stream.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
                debug!("not TLS 1.3: close_notify only after the server's last byte");
                self.early_close = None;
                return self.stream.read(buf);
            }
            self.stream.conn.send_close_notify();
            self.closed_early = true;
            watch.sent(&self.stream.sock);
        }
        let read = self.stream.read(buf);
        if let Err(e) = &read {
            watch.failed(e);
        }
        read
    }
}

impl Drop for RustlsStream {
    fn drop(&mut self) {
        if self.ssl_shutdown {
            if let Err(err) = self.stream.flush() {
                error!("error in flushing rustls stream on drop: {err}");
            }
            self.stream.conn.send_close_notify();
            if let Err(err) = self.stream.conn.write_tls(&mut self.stream.sock) {
                error!("error in terminating rustls stream: {err}");
            }
        }
    }
}
