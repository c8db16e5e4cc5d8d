//! The TLS sessions of a control connection, which its data connections resume, and when
//! those say goodbye early.
//!
//! *Session reuse.* Servers such as vsftpd (`require_ssl_reuse=YES`, its recommended setting)
//! and FileZilla Server accept a data connection only if its TLS session resumes the control
//! connection's, as proof that the same client opened both; vsftpd answers `522 SSL
//! connection failed: session reuse required` and ends the whole session otherwise.
//!
//! - Each control connection has its own session store ([`SessionStore`]): sessions belong to
//!   one control connection (vsftpd runs a process per session, FileZilla Server compares
//!   the sessions), so a data connection must never offer another control connection's.
//! - TLS 1.2 sessions can be resumed again and again; TLS 1.3 tickets are single-use. The
//!   server sends fresh tickets on the control connection and on every resumed data
//!   connection, and keeping the supply up means reading them: downloads and listings read
//!   their data connection to its end anyway, uploads did not, so after an upload the data
//!   connection's records are read until a new ticket is in (or the server closes it;
//!   [`read_tickets`], bounded), during the wait for the server's close that the upload made
//!   anyway. No round trip is added.
//! - When a data connection is still refused (the supply ran out, the server forgot the
//!   session), the connection is given up and the transfer repeated on a new control
//!   connection, with a new session: the refusal came before any byte was transferred.
//!
//! *Saying goodbye early.* pure-ftpd and vsftpd end a download or a listing with a complete
//! TLS shutdown: they send their `close_notify`, wait for ours, and only then send `226`.
//! Ours used to go when the stream was dropped, after the server's last byte: one round
//! trip more per download and listing. The client never sends anything on such a data
//! connection, so its `close_notify` goes with its last handshake message (suppaftp's
//! `RustlsStream::close_early`, at the stream's first read: uploads are never read), and
//! the server finds it waiting when it ends the transfer. Only in TLS 1.3, which makes
//! `close_notify` a half-close ("the other party MAY continue sending", RFC 8446 6.1);
//! TLS 1.2 tells a peer that reads it to drop what it has not sent (RFC 5246 7.2.1), so
//! there the goodbye still waits (libunftp speaks TLS 1.2 by default). Neither pure-ftpd
//! nor vsftpd reads the data connection while it sends. A server that took it for an abort
//! would show it as a failed transfer (an error reply, a broken or truncated TLS stream):
//! the first such failure after an early goodbye turns them off for the mount
//! ([`SessionStore::transfer_failed`]), and the transfer is repeated as any failed one
//! (a listing by the retry policy, a read resumed at its first missing byte). A server
//! that stopped short and still said `226` would go unnoticed; none we know does.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::{NamedGroup, ProtocolVersion};

use super::RustlsStream;

/// The TLS sessions of one control connection, for its data connections to resume (see the
/// module docs). Server names are not looked at: the store serves one connection to one
/// server.
#[derive(Default)]
pub struct SessionStore {
    inner: Mutex<Sessions>,
    /// Tests only: see [`Tls::leaving_upload_tickets_unread`](super::Tls::leaving_upload_tickets_unread).
    unread_upload_tickets: bool,
    /// The mount's rule for early goodbyes.
    pub(super) early_close: Arc<EarlyCloseRule>,
    /// Whether the current (or last) data connection sent its `close_notify` early.
    pub(super) closed_early: AtomicBool,
}

#[derive(Default)]
struct Sessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Newest last. Each is good for one resumption.
    tls13: VecDeque<Tls13ClientSessionValue>,
    /// TLS 1.3 tickets received so far.
    received: u64,
}

/// TLS 1.3 tickets kept per control connection: servers send one or two per connection, so a
/// few more than that survive an upload or two whose tickets were not read.
const MAX_TICKETS: usize = 8;

impl SessionStore {
    /// The store of a new control connection, under the mount's rule for early goodbyes.
    pub(super) fn new(unread_upload_tickets: bool, early_close: Arc<EarlyCloseRule>) -> Self {
        SessionStore {
            unread_upload_tickets,
            early_close,
            ..SessionStore::default()
        }
    }

    /// TLS 1.3 tickets in store.
    pub fn tickets(&self) -> usize {
        self.inner.lock().tls13.len()
    }

    /// TLS 1.3 tickets received so far (kept or not).
    pub fn received(&self) -> u64 {
        self.inner.lock().received
    }

    /// Whether the next connection can offer a session to resume.
    pub fn can_resume(&self) -> bool {
        let s = self.inner.lock();
        s.tls12.is_some() || !s.tls13.is_empty()
    }

    /// Whether the next connection would take the last session there is: one TLS 1.3
    /// ticket and no TLS 1.2 session (which serves again and again).
    pub fn last_ticket(&self) -> bool {
        let s = self.inner.lock();
        s.tls12.is_none() && s.tls13.len() == 1
    }
}

/// Whether a mount's downloads and listings send their `close_notify` early (see the module
/// docs): on until a transfer that did fails, then off for the mount's life.
#[derive(Debug)]
pub(super) struct EarlyCloseRule {
    pub(super) on: AtomicBool,
    /// Data connections that did so far.
    pub(super) sent: AtomicU64,
    /// Tests only: see [`Tls::failing_the_first_early_closed_transfer`](super::Tls::failing_the_first_early_closed_transfer).
    pub(super) fail_next: AtomicBool,
}

impl Default for EarlyCloseRule {
    fn default() -> Self {
        EarlyCloseRule {
            on: AtomicBool::new(true),
            sent: AtomicU64::new(0),
            fail_next: AtomicBool::new(false),
        }
    }
}

impl EarlyCloseRule {
    fn turn_off(&self, why: &dyn std::fmt::Display) {
        if self.on.swap(false, Ordering::Relaxed) {
            log::info!(
                "TLS: a download or listing failed after its early close_notify ({why}); \
                 they wait for the server's last byte from now on"
            );
        }
    }
}

impl SessionStore {
    /// After a download or listing on this connection failed (an error reply, a short
    /// transfer): if its data connection said goodbye early, the server may have taken that
    /// for the end, and no later one does so on this mount. The caller repeats the transfer
    /// (the listing's retry, the read's resumption), which then waits for the server's end.
    pub fn transfer_failed(&self, why: &dyn std::fmt::Display) {
        if self.closed_early.swap(false, Ordering::Relaxed) {
            self.early_close.turn_off(why);
        }
    }
}

impl SessionStore {
    /// Whether the current (or last) data connection sent its `close_notify` early: a
    /// download that then ended before the size its listing gave is suspect (see
    /// [`crate::ftp::reader`]).
    pub fn closed_early(&self) -> bool {
        self.closed_early.load(Ordering::Relaxed)
    }
}

impl suppaftp::EarlyClose for SessionStore {
    fn sent(&self, socket: &TcpStream) {
        self.closed_early.store(true, Ordering::Relaxed);
        self.early_close.sent.fetch_add(1, Ordering::Relaxed);
        log::debug!("TLS: close_notify sent with the data connection's handshake");
        if self.early_close.fail_next.swap(false, Ordering::Relaxed) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    fn failed(&self, error: &std::io::Error) {
        if error.kind() != std::io::ErrorKind::Interrupted {
            self.transfer_failed(error);
        }
    }
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("SessionStore")
            .field("tls12", &s.tls12.is_some())
            .field("tls13_tickets", &s.tls13.len())
            .finish()
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.inner.lock().kx_hint = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.lock().kx_hint
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.lock().tls12 = Some(value);
    }

    /// A TLS 1.2 session stays for the next connection: it can be resumed any number of
    /// times.
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.inner.lock().tls12.clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.inner.lock().tls12 = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut s = self.inner.lock();
        if s.tls13.len() == MAX_TICKETS {
            s.tls13.pop_front();
        }
        s.tls13.push_back(value);
        s.received += 1;
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.inner.lock().tls13.pop_back()
    }
}

/// After an upload over TLS 1.3: says goodbye (`close_notify`, then the socket's write
/// side) and reads what the server sends until it closes the data connection, so that the
/// session tickets it sent at the start are stored for the next data connection (see the
/// module docs). Stops at the first new ticket, at the end, at an error or after `limit`;
/// suppaftp then drains the rest as it always does. Nothing to do for TLS 1.2 (its session
/// is reusable) or plain connections.
pub fn read_tickets(
    data: &mut suppaftp::DataStream<RustlsStream>,
    store: &SessionStore,
    limit: Duration,
) {
    use std::io::Read;
    let suppaftp::DataStream::Ssl(tls) = data else {
        return;
    };
    if store.unread_upload_tickets {
        return;
    }
    let s = suppaftp::TlsStream::mut_ref(tls.as_mut());
    if s.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) || s.conn.is_handshaking() {
        return;
    }
    let before = store.received();
    s.conn.send_close_notify();
    while s.conn.wants_write() {
        if s.conn.write_tls(&mut s.sock).is_err() {
            return;
        }
    }
    let _ = s.sock.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + limit;
    let mut plain = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || s.sock.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.conn.read_tls(&mut s.sock) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if s.conn.process_new_packets().is_err() || store.received() > before {
            return;
        }
        // An upload's data connection carries nothing back; whatever comes is not ours.
        while matches!(s.conn.reader().read(&mut plain), Ok(n) if n > 0) {}
    }
}
