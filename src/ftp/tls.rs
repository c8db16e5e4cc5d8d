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
//! *Pinning.* The certificate people have for a small server is often self-signed with
//! `openssl req -x509`, which OpenSSL 3 marks `CA:TRUE`, and webpki refuses a CA certificate
//! as a server's own (`CaUsedAsEndEntity`), so trusting it as a CA is not enough. A
//! certificate listed in `cafile` that *is* the server's certificate, byte for byte, or whose
//! SHA-256 matches `-o fingerprint=sha256:HEX`, is trusted as it is: its CA flag, names and
//! dates are not checked (the user said "this certificate"), but the handshake signature
//! still is, so only the holder of its key gets in. A certificate that does not verify is
//! refused with one line that says why, shows its SHA-256 fingerprint and how to pin it.
//!
//! *Session reuse* and *saying goodbye early* (the session store of each control connection,
//! the supply of TLS 1.3 tickets, the early `close_notify` rule): [`sessions`].
//!
//! *Round trips.* A TLS data connection costs one round trip more than a plain one at the
//! least (the server sends data, or takes it, only after the handshake), and cost two
//! more when the hello waited for the server's `150`. The TCP connection is opened ahead
//! like a plain one (`prepare`), and the hello is written with the transfer command
//! ([`Connector::connect_before_reply`]), unless it would spend the last TLS 1.3 ticket on
//! a command the server may refuse. Resuming saves the server's signature and our
//! certificate check, not a round trip (TLS 1.3's full handshake is one round trip too):
//! pure-ftpd issues no tickets, and each of its data connections is a full handshake.

pub mod sessions;

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use suppaftp::{FtpResult, RustlsConnector, TlsConnector};

use self::sessions::EarlyCloseRule;
pub use self::sessions::{read_tickets, SessionStore};

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
    /// The mount's configuration; each control connection gets a copy with a session store
    /// of its own ([`Tls::connector`]).
    pub config: Option<Arc<ClientConfig>>,
    /// Why the last certificate was refused, in words a user can act on.
    refusal: Option<Arc<Mutex<Option<String>>>>,
    /// Tests only: see [`Tls::leaving_upload_tickets_unread`].
    unread_upload_tickets: bool,
    /// Whether downloads and listings say goodbye early, for the whole mount (see
    /// [`sessions`]).
    early_close: Arc<EarlyCloseRule>,
}

impl Tls {
    /// No TLS at all (tests of plain servers).
    pub fn off() -> Tls {
        Tls {
            mode: TlsMode::Off,
            config: None,
            refusal: None,
            unread_upload_tickets: false,
            early_close: Arc::default(),
        }
    }

    /// A connector for one control connection (and its data connections), with a session
    /// store of its own; `None` when TLS is off.
    pub fn connector(&self, timeout: Duration) -> Option<Connector> {
        let mut config = ClientConfig::clone(self.config.as_ref()?);
        let store = Arc::new(SessionStore::new(
            self.unread_upload_tickets,
            Arc::clone(&self.early_close),
        ));
        config.resumption = Resumption::store(Arc::clone(&store) as Arc<dyn ClientSessionStore>);
        Some(Connector {
            inner: RustlsConnector::from(Arc::new(config)),
            timeout,
            first: Arc::new(Mutex::new(None)),
            store,
        })
    }

    /// For tests of the renewal path only: the tickets sent on upload data connections are
    /// left unread ([`read_tickets`] does nothing), so a control connection's supply runs out
    /// after its first uploads and the next data connection is refused, on cue, as by a
    /// server that forgot the session. No real server can be made to do that on its own.
    #[doc(hidden)]
    pub fn leaving_upload_tickets_unread(mut self) -> Tls {
        self.unread_upload_tickets = true;
        self
    }

    /// For tests of the early close's rule only: the first data connection that sends its
    /// `close_notify` early is shut as it does, so that its download or listing fails, as
    /// on a server that drops the data connection when our goodbye comes. No server we test
    /// does that on its own. (Shutting only the read side would not do: Linux still delivers
    /// what arrives after it, so whether the transfer failed would be down to timing.)
    #[doc(hidden)]
    pub fn failing_the_first_early_closed_transfer(self) -> Tls {
        self.early_close.fail_next.store(true, Ordering::Relaxed);
        self
    }

    /// Whether downloads and listings still send their `close_notify` early on this mount
    /// (see [`sessions`]), and how many have done so.
    pub fn early_close(&self) -> (bool, u64) {
        (
            self.early_close.on.load(Ordering::Relaxed),
            self.early_close.sent.load(Ordering::Relaxed),
        )
    }

    /// Why the server's certificate was refused, if it was: the last refusal, taken.
    pub fn take_refusal(&self) -> Option<String> {
        self.refusal.as_ref().and_then(|r| r.lock().take())
    }

    /// Builds the client configuration for `mode`: system CAs, or those in `cafile`, or no
    /// verification at all when `insecure`; certificates in `cafile` and `pins` (SHA-256
    /// fingerprints) are also trusted as they are (see the module docs).
    pub fn new(
        mode: TlsMode,
        cafile: Option<&Path>,
        pins: &[[u8; 32]],
        insecure: bool,
    ) -> Result<Tls, String> {
        if mode == TlsMode::Off {
            return Ok(Tls::off());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let refusal = Arc::new(Mutex::new(None));
        let config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            let mut pinned: Vec<[u8; 32]> = pins.to_vec();
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
                        pinned.push(sha256(&c));
                        // A certificate that cannot be a trust anchor may still be pinned.
                        if let Err(e) = roots.add(c) {
                            log::debug!("cafile {}: not usable as a CA: {e}", path.display());
                        }
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for e in &found.errors {
                        log::debug!("system CA store: {e}");
                    }
                    let (added, _) = roots.add_parsable_certificates(found.certs);
                    if added == 0 && pinned.is_empty() {
                        log::warn!("no system CA certificates found; use -o cafile=");
                    }
                }
            }
            let webpki = if roots.is_empty() {
                None
            } else {
                Some(
                    WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        Arc::clone(&provider),
                    )
                    .build()
                    .map_err(|e| format!("TLS: {e}"))?,
                )
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    webpki,
                    pinned,
                    provider,
                    refusal: Arc::clone(&refusal),
                }))
                .with_no_client_auth()
        };
        Ok(Tls {
            mode,
            config: Some(Arc::new(config)),
            refusal: Some(refusal),
            unread_upload_tickets: false,
            early_close: Arc::default(),
        })
    }
}

/// SHA-256 of a certificate (its DER bytes), as `openssl x509 -fingerprint -sha256` shows it.
pub fn sha256(cert: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, cert);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `AB:CD:...`, the way OpenSSL and browsers print fingerprints.
pub fn format_fingerprint(hash: &[u8; 32]) -> String {
    hash.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `-o fingerprint=`: `sha256:` then 64 hex digits, with or without colons (or
/// spaces), in either case; the `sha256:` prefix may be left out.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let bad = || {
        format!(
            "fingerprint must be sha256: and 64 hex digits (colons allowed), as \
             `openssl x509 -noout -fingerprint -sha256` prints it, not {s:?}"
        )
    };
    let t = s.trim();
    let hex = match t.split_once(':') {
        Some((alg, rest)) if alg.eq_ignore_ascii_case("sha256") => rest,
        Some((alg, _)) if alg.len() > 2 && alg.chars().all(|c| c.is_ascii_alphanumeric()) => {
            return Err(format!(
                "fingerprint: only sha256 is supported, not {alg:?} ({})",
                bad()
            ))
        }
        _ => t,
    };
    let digits: Vec<u8> = hex.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The TLS connector handed to suppaftp. It delegates to rustls, and on the way gives each
/// socket its timeouts and, for the first one (the control connection of implicit TLS,
/// which suppaftp connects itself), keeps a copy for the watchdog.
#[derive(Debug)]
pub struct Connector {
    inner: RustlsConnector,
    timeout: Duration,
    pub first: Arc<Mutex<Option<TcpStream>>>,
    /// The sessions of this control connection, which its data connections resume.
    pub store: Arc<SessionStore>,
}

impl TlsConnector for Connector {
    type Stream = RustlsStream;

    fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<RustlsStream> {
        let _ = stream.set_read_timeout(Some(self.timeout));
        let _ = stream.set_write_timeout(Some(self.timeout));
        let data = {
            let mut first = self.first.lock();
            if first.is_none() {
                *first = stream.try_clone().ok();
                false
            } else {
                if !self.store.can_resume() {
                    // Worth knowing when a server then refuses the data connection.
                    log::debug!("TLS: no session left to resume on this data connection");
                }
                true
            }
        };
        let resuming = data && self.store.can_resume();
        let mut tls = self.inner.connect(domain, stream)?;
        if data {
            crate::status::stats().tls_data_connection();
            self.store.closed_early.store(false, Ordering::Relaxed);
            if self.store.early_close.on.load(Ordering::Relaxed) {
                // Acts only if the stream is read: downloads and listings.
                tls.close_early(Arc::clone(&self.store) as Arc<dyn suppaftp::EarlyClose>);
            }
            send_client_hello(&mut tls)?;
            log::debug!(
                "TLS: data connection hello sent{}",
                if resuming {
                    ", resuming the session"
                } else {
                    ""
                }
            );
        }
        Ok(tls)
    }

    /// With pipelining, the data connection's hello goes out with the transfer command
    /// ([`send_client_hello`]), unless it would spend the last TLS 1.3 ticket: a server
    /// that refuses the command never reads the hello, and the ticket in it is gone, so
    /// with one ticket left the hello waits for the `150` (a round trip later; a refusal
    /// comes before it then). A TLS 1.2 session serves again; two tickets leave one; with
    /// none (pure-ftpd issues none: every data connection is a full handshake, one round
    /// trip in TLS 1.3 all the same) there is nothing to spend.
    fn connect_before_reply(&self) -> bool {
        !self.store.last_ticket()
    }
}

/// Writes a data connection's first handshake message (the `ClientHello`, which offers the
/// session to resume) at once, without waiting for an answer: the server reads it when it
/// accepts the data connection for the transfer command. The rest of the handshake happens
/// at the first read or write, as before. Where suppaftp makes the TLS stream right after
/// the transfer command ([`Connector::connect_before_reply`]), the hello travels with the
/// command, and the first byte of a download arrives two round trips after the command
/// instead of three: the server's `150` and its handshake come together, and its data after
/// our `Finished` (see `vendor/suppaftp/FTPFS-PATCH.md`).
fn send_client_hello(tls: &mut RustlsStream) -> FtpResult<()> {
    let s = suppaftp::TlsStream::mut_ref(tls);
    while s.conn.wants_write() {
        s.conn
            .write_tls(&mut s.sock)
            .map_err(suppaftp::FtpError::ConnectionError)?;
    }
    Ok(())
}

/// Verifies the server's certificate: pinned certificates (in `cafile`, or by fingerprint)
/// as they are, any other through webpki with the trusted CAs. A refusal is kept, in words,
/// for the error the user sees.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
    refusal: Arc<Mutex<Option<String>>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash = sha256(end_entity);
        if self.pinned.contains(&hash) {
            log::debug!(
                "TLS: the server's certificate is pinned (SHA-256 {})",
                format_fingerprint(&hash)
            );
            return Ok(ServerCertVerified::assertion());
        }
        let err = match &self.webpki {
            Some(v) => {
                match v.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Ok(ok) => return Ok(ok),
                    Err(e) => e,
                }
            }
            None => rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        };
        *self.refusal.lock() = Some(refusal_message(&err, server_name, &hash));
        Err(err)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::status::stats().tls_handshake(12);
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crate::status::stats().tls_handshake(13);
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One line: what is wrong with the certificate, its fingerprint, and what to do.
fn refusal_message(err: &rustls::Error, name: &ServerName<'_>, hash: &[u8; 32]) -> String {
    let what = match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its issuer is not a trusted CA (self-signed, or a private CA)".to_string()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(o))
            if format!("{o:?}").contains("CaUsedAsEndEntity") =>
        {
            "it is a CA certificate (CA:TRUE, as `openssl req -x509` makes them) used as the \
             server's own"
                .to_string()
        }
        rustls::Error::InvalidCertificate(e) => e.to_string(),
        e => e.to_string(),
    };
    format!(
        "the certificate of {} is not trusted: {what}. To trust it after checking its SHA-256 \
         fingerprint with the server's administrator, mount with -o fingerprint=sha256:{} (or \
         put the certificate or its CA in -o cafile=PATH)",
        name.to_str(),
        format_fingerprint(hash)
    )
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
        crate::status::stats().tls_handshake(12);
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
        crate::status::stats().tls_handshake(13);
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

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "85:48:8D:A4:8B:B0:DC:58:0E:59:53:89:49:A6:E6:9E:47:73:A3:1C:CD:9F:90:A2:F0:AF:EF:6D:06:77:9C:55";

    #[test]
    fn fingerprints_parse_with_or_without_colons_in_either_case() {
        let want = parse_fingerprint(&format!("sha256:{HASH}")).unwrap();
        assert_eq!(format_fingerprint(&want), HASH);
        let bare = HASH.replace(':', "").to_lowercase();
        assert_eq!(parse_fingerprint(&format!("SHA256:{bare}")).unwrap(), want);
        assert_eq!(parse_fingerprint(&bare).unwrap(), want);
        assert_eq!(parse_fingerprint(HASH).unwrap(), want);
    }

    #[test]
    fn malformed_fingerprints_are_refused_with_the_expected_form() {
        for bad in [
            "sha256:1234",
            "md5:85488da4",
            "",
            &format!("sha256:{HASH}00"),
        ] {
            let e = parse_fingerprint(bad).unwrap_err();
            assert!(e.contains("sha256"), "{bad:?}: {e}");
        }
        let e = parse_fingerprint(&format!("sha256:{}", HASH.replace('8', "g"))).unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
    }

    #[test]
    fn a_refused_certificate_is_one_line_with_its_fingerprint_and_what_to_do() {
        let hash = parse_fingerprint(HASH).unwrap();
        let name = ServerName::try_from("ftp.example.org").unwrap();
        let err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let line = refusal_message(&err, &name, &hash);
        assert!(!line.contains('\n'));
        assert!(line.contains("ftp.example.org"), "{line}");
        assert!(
            line.contains(&format!("-o fingerprint=sha256:{HASH}")),
            "{line}"
        );
        assert!(line.contains("cafile="), "{line}");
    }

    #[test]
    fn every_control_connection_gets_a_session_store_of_its_own() {
        let tls = Tls::new(TlsMode::Required, None, &[[7u8; 32]], false).unwrap();
        let a = tls.connector(Duration::from_secs(1)).unwrap();
        let b = tls.connector(Duration::from_secs(1)).unwrap();
        assert!(!Arc::ptr_eq(&a.store, &b.store));
        assert!(!a.store.can_resume() && a.store.tickets() == 0);
    }
}
