//! FTPS: TLS on the control and data connections.
//!
//! Plain FTP sends the password, every command and every byte in clear text. FTPS comes in
//! two forms: *explicit* (RFC 4217: connect to the normal port, `AUTH TLS`, then `PBSZ 0`
//! and `PROT P` so data connections are encrypted too) and *implicit* (`ftps://`, port 990:
//! TLS from the first byte). Choice of `-o tls=`:
//!
//! - `try` (default for `ftp://`): explicit TLS when the server offers it, plain FTP when it
//!   refuses `AUTH TLS` (with a warning, once, that the password goes in clear text). A
//!   server that offers TLS with a certificate that does not verify is *not* used in plain
//!   instead: that is what an attacker in the middle would arrange, so it is an error.
//! - `required`: explicit TLS or no connection; the password is never sent in clear text.
//! - `implicit` (what `ftps://` means): TLS from the start.
//! - `off`: plain FTP.
//!
//! Certificates are verified against the system's CAs and the host name of the URL (an IP
//! address must be in the certificate's subject alternative names); `-o cafile=` trusts a
//! private CA instead, `-o insecure` accepts anything and logs a warning at every mount.
//!
//! Data connections reuse the control connection's TLS session (servers such as vsftpd with
//! `require_ssl_reuse=YES` insist): rustls keeps a session cache per `ClientConfig`, keyed by
//! server name, and every connection of a mount shares one config, so each data connection
//! offers to resume the control connection's session.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use suppaftp::{FtpResult, RustlsConnector, TlsConnector};

/// suppaftp's rustls stream type (not exported by name).
type RustlsStream = <RustlsConnector as TlsConnector>::Stream;

/// `-o tls=`, or `ftps://`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    #[default]
    Try,
    Required,
    Implicit,
}

/// TLS settings of an endpoint: the mode and, unless it is off, the client configuration.
#[derive(Clone, Default)]
pub struct Tls {
    pub mode: TlsMode,
    pub config: Option<Arc<ClientConfig>>,
}

impl Tls {
    /// No TLS at all (tests of plain servers).
    pub fn off() -> Tls {
        Tls {
            mode: TlsMode::Off,
            config: None,
        }
    }

    /// Builds the client configuration for `mode`: system CAs, or those in `cafile`, or no
    /// verification at all when `insecure`.
    pub fn new(mode: TlsMode, cafile: Option<&Path>, insecure: bool) -> Result<Tls, String> {
        if mode == TlsMode::Off {
            return Ok(Tls::off());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            match cafile {
                Some(path) => {
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                        .map_err(|e| format!("cafile {}: {e}", path.display()))?
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("cafile {}: {e}", path.display()))?;
                    if certs.is_empty() {
                        return Err(format!("cafile {}: no certificate in it", path.display()));
                    }
                    for c in certs {
                        roots
                            .add(c)
                            .map_err(|e| format!("cafile {}: {e}", path.display()))?;
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for e in &found.errors {
                        log::debug!("system CA store: {e}");
                    }
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 {
                        log::warn!("no system CA certificates found; use -o cafile=");
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Tls {
            mode,
            config: Some(Arc::new(config)),
        })
    }
}

/// The TLS connector handed to suppaftp. It delegates to rustls, and on the way gives each
/// socket its timeouts and, for the first one (the control connection of implicit TLS,
/// which suppaftp connects itself), keeps a copy for the watchdog.
#[derive(Debug)]
pub struct Connector {
    inner: RustlsConnector,
    timeout: std::time::Duration,
    pub first: Arc<Mutex<Option<TcpStream>>>,
}

impl Connector {
    pub fn new(config: Arc<ClientConfig>, timeout: std::time::Duration) -> Connector {
        Connector {
            inner: RustlsConnector::from(config),
            timeout,
            first: Arc::new(Mutex::new(None)),
        }
    }
}

impl TlsConnector for Connector {
    type Stream = RustlsStream;

    fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<RustlsStream> {
        let _ = stream.set_read_timeout(Some(self.timeout));
        let _ = stream.set_write_timeout(Some(self.timeout));
        {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = stream.try_clone().ok();
            }
        }
        self.inner.connect(domain, stream)
    }
}

/// `-o insecure`: accepts any certificate. The handshake signatures are still checked, so
/// the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
