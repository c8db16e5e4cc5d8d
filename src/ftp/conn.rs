//! One logged-in control connection, and what we learn about a server once.
//!
//! Servers differ in what they support, and asking costs round trips. The first connection
//! asks: `FEAT` (for `MLST`, `UTF8`, `MDTM`, `HOST`), then probes `EPSV` and `REST` directly,
//! because many servers implement both without listing them. The answers are kept in
//! [`Caps`] and every later connection only repeats what is per-connection state:
//! `HOST`, login, `OPTS UTF8 ON`, `OPTS MLST`, `TYPE I`.
//!
//! `FEAT` is asked before `USER`: `HOST` (RFC 7151, virtual hosts) must come before `USER`,
//! and only `FEAT` says whether the server has it. Asked there it costs nothing more than
//! after login; a server that wants a login first (`530`) is asked again after it. `FEAT` is
//! advisory: a refusal, or a reply that cannot be read, leaves ftpfs probing what it needs
//! (see [`super::features`]); the reply itself is read tolerantly (see [`super::reply`]).
//!
//! `OPTS MLST`: a server chooses which facts its `MLSD` lines carry, and pyftpdlib leaves
//! `unix.mode` out unless asked, so a `chmod` seemed undone at the next listing. Where the
//! `FEAT` line of `MLST` offers facts we read that it does not already send (those marked `*`),
//! each connection asks for [`MLST_FACTS`] (only those offered).
//!
//! What cannot be probed without changing a file (`APPE`, setting a directory's time) is
//! learned from the first refusal instead, and kept beside [`Caps`] for the mount (see
//! [`Capability`]).
//!
//! Every socket has a deadline: connecting, each reply on the control connection, and each
//! read or write on a data connection. A server that accepts a connection and then says
//! nothing costs at most one timeout, never a hung process.
//!
//! Passive mode: `EPSV` when the server has it (required for IPv6), else `PASV`. A server
//! behind NAT often answers `PASV` with its private address; as lftp does, when the address
//! given is private (or unspecified) and the control connection's peer is not, we connect to
//! the peer's address instead (unless `-o pasv_addr=trust`). Whether data connections are
//! passive or active at all is decided once, by [`super::active`].

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use suppaftp::{FtpError, Mode, Status};

use super::features::{self, Feat};
use super::retry::Policy;
use super::tls::{SessionStore, Tls, TlsMode};
use super::watchdog::{self, Sockets};
use crate::error::{Error, Op, Result};

/// Where and how to connect. Built from the validated [`crate::config::Config`].
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: crate::secret::Secret,
    /// Timeout for connecting and for each reply or data read.
    pub timeout: Duration,
    /// Retries and the deadline of one operation.
    pub policy: Policy,
    /// FTPS.
    pub tls: Tls,
    /// How long a connection limit learned from the server holds before one more
    /// connection is tried (`-o connections_recheck=`).
    pub limit_recheck: Duration,
    /// Idle time before TCP keepalive probes on control connections; zero for none
    /// (`-o keepalive=`).
    pub keepalive: Duration,
    /// Passive, active or auto (`-o data=`).
    pub data: super::active::DataMode,
    /// Whether a private `227` address is replaced by the peer's (`-o pasv_addr=`).
    pub pasv_addr: super::active::PasvAddr,
    /// Optional commands of the dialogue: `HOST`, `ALLO`.
    pub dialogue: Dialogue,
}

/// Optional commands some servers need (`-o host=`, `-o allo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dialogue {
    /// `HOST` name to send before `USER` whatever `FEAT` says (RFC 7151 virtual hosts).
    pub host: Option<String>,
    /// `ALLO size` before every `STOR`.
    pub allo: bool,
}

/// The control connection type: TLS-capable; a plain connection simply never upgrades.
pub type Ftp = suppaftp::RustlsFtpStream;

impl Endpoint {
    /// The name `HOST` announces: `-o host=`, else the URL's host name when the server lists
    /// `HOST` in `FEAT` (`listed`). An IP literal names no virtual host, so it is not sent
    /// unless `host=` says so.
    pub fn host_command(&self, listed: bool) -> Option<String> {
        match &self.dialogue.host {
            Some(h) => Some(h.clone()),
            None if listed && self.host.parse::<IpAddr>().is_err() => Some(self.host.clone()),
            None => None,
        }
    }

    pub fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What a server supports, learned on the first connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub mlsd: bool,
    pub utf8: bool,
    pub epsv: bool,
    pub rest: bool,
    /// `MDTM` is in `FEAT` (exact times on servers without `MLSD`).
    pub mdtm: bool,
    /// Data connections are active (`PORT`/`EPRT`), as chosen by [`super::active::choose`].
    pub active: bool,
    /// `MODE Z` is in `FEAT` (deflate on data connections, see [`super::deflate`]).
    pub mode_z: bool,
    /// Which of [`MLST_FACTS`] (bit i for fact i) the server offers, when `OPTS MLST` must
    /// ask for them; 0 when it needs not be sent.
    pub mlst_opts: u8,
    /// `HOST` is in `FEAT`: every connection names the virtual host before `USER`.
    pub host: bool,
}

/// The `MLSD` facts ftpfs wants, in the order `OPTS MLST` names them.
pub const MLST_FACTS: [&str; 7] = [
    "type",
    "size",
    "modify",
    "unix.mode",
    "perm",
    "unix.owner",
    "unix.group",
];

/// Reads the `FEAT` line of `MLST` (`type*;size*;modify*;unix.mode;…`): which of
/// [`MLST_FACTS`] are offered, as a bit set, or 0 when every one offered is already sent
/// (marked `*`) and `OPTS MLST` would change nothing.
pub fn mlst_opts_from_feat(line: &str) -> u8 {
    let mut offered = 0u8;
    let mut missing = false;
    for fact in line.split(';').map(str::trim).filter(|f| !f.is_empty()) {
        let (name, on) = match fact.strip_suffix('*') {
            Some(n) => (n, true),
            None => (fact, false),
        };
        if let Some(i) = MLST_FACTS.iter().position(|f| f.eq_ignore_ascii_case(name)) {
            offered |= 1 << i;
            missing |= !on;
        }
    }
    if missing {
        offered
    } else {
        0
    }
}

/// The `OPTS MLST` command for a set of offered facts.
pub fn mlst_opts_command(facts: u8) -> String {
    let mut cmd = String::from("OPTS MLST ");
    for (i, f) in MLST_FACTS.iter().enumerate() {
        if facts & (1 << i) != 0 {
            cmd.push_str(f);
            cmd.push(';');
        }
    }
    cmd
}

/// Something a server may refuse as a rule rather than for one file, learned from its
/// first refusal (see [`ServerInfo::learn`]).
///
/// Probing these at connect time would cost round trips every mount pays, and some cannot
/// be probed without changing a file: proftpd takes `REST 0` but refuses `APPE`; vsftpd
/// and pyftpdlib set a file's time but not a directory's. So they are learned when an
/// operation first needs them, and remembered for the mount: the next operation takes the
/// other path (STOR of the whole file, reading from the start) or gets the same refusal
/// without asking, with one info line per capability instead of retries and warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `APPE`.
    Append,
    /// `REST n` before `RETR`.
    Rest,
    /// `SITE CHMOD` on a file (`dir: false`) or a directory.
    Chmod { dir: bool },
    /// Setting a time (`MFMT`, or vsftpd's `MDTM time path`) on a file or a directory.
    SetTime { dir: bool },
    /// Server-side copy, `SITE CPFR` then `SITE CPTO` (proftpd's mod_copy; rarely in `FEAT`).
    Copy,
}

impl Capability {
    /// For the log line; `both`: for files and directories alike.
    fn describe(self, both: bool) -> &'static str {
        match (self, both) {
            (Capability::Append, _) => "appending (APPE); appends upload the whole file",
            (Capability::Rest, _) => "restarting transfers (REST); reads start at the beginning",
            (Capability::Chmod { .. }, true) => "changing modes (SITE CHMOD)",
            (Capability::Chmod { dir: false }, false) => "changing a file's mode (SITE CHMOD)",
            (Capability::Chmod { dir: true }, false) => "changing a directory's mode (SITE CHMOD)",
            (Capability::SetTime { .. }, true) => "setting times",
            (Capability::SetTime { dir: false }, false) => "setting a file's time",
            (Capability::SetTime { dir: true }, false) => "setting a directory's time",
            (Capability::Copy, _) => "server-side copies (SITE CPFR/CPTO); copies go through ftpfs",
        }
    }
}

/// The reply with which a server refused a [`Capability`], given again to every later
/// operation that needs it: the same errno, without the round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub op: Op,
    pub code: u32,
    pub text: String,
}

impl Refusal {
    pub fn error(&self) -> Error {
        Error::Reply {
            op: self.op,
            code: self.code,
            text: self.text.clone(),
        }
    }
}

#[derive(Default)]
struct Learned {
    refused: std::collections::HashMap<Capability, Refusal>,
    worked: std::collections::HashSet<Capability>,
}

/// Capabilities shared by all connections to one server.
#[derive(Default)]
pub struct ServerInfo {
    caps: Mutex<Option<Caps>>,
    /// What the server turned out to refuse, or to do, during this mount. The lock is held
    /// only to read or record, never across a command.
    learned: Mutex<Learned>,
    /// `tls=try` and the server refused `AUTH TLS`: later connections do not ask again.
    tls_refused: AtomicBool,
    /// The clear-text password warning was logged.
    warned_clear: AtomicBool,
    /// `-o compress=` and what decides it (see [`super::deflate`]).
    pub deflate: super::deflate::Deflate,
}

impl ServerInfo {
    pub fn caps(&self) -> Option<Caps> {
        *self.caps.lock()
    }

    /// How the server refused `cap`, if it did.
    pub fn refusal(&self, cap: Capability) -> Option<Refusal> {
        self.learned.lock().refused.get(&cap).cloned()
    }

    /// Records that `cap` worked once (on any connection).
    pub fn worked(&self, cap: Capability) {
        self.learned.lock().worked.insert(cap);
    }

    pub fn has_worked(&self, cap: Capability) -> bool {
        self.learned.lock().worked.contains(&cap)
    }

    /// Remembers that the server refuses `caps` (one capability, or the same one for files
    /// and directories), as it just did with `e`, a reply; says so once, in one info line.
    pub fn learn(&self, caps: &[Capability], e: &Error, server: &str) {
        let (Error::Reply { op, code, text }, Some(&first)) = (e, caps.first()) else {
            return;
        };
        let refusal = Refusal {
            op: *op,
            code: *code,
            text: text.clone(),
        };
        let mut new = false;
        {
            let mut learned = self.learned.lock();
            for &cap in caps {
                new |= learned.refused.insert(cap, refusal.clone()).is_none();
            }
        }
        if new {
            log::info!(
                "{server} refuses {} ({code} {text}); not asking again during this mount",
                first.describe(caps.len() > 1)
            );
        }
    }
}

/// A connection's TLS sessions; `None` for a plain connection.
type Sessions = Option<Arc<SessionStore>>;

/// A logged-in control connection in binary mode.
pub struct Conn {
    pub ftp: Ftp,
    /// Whether the control (and data) connections are encrypted.
    pub secure: bool,
    pub caps: Caps,
    /// A `REST n` was sent on this connection. Some servers (libunftp) keep that offset for
    /// every later transfer of the session instead of the next one only, so a transfer from
    /// byte 0 on such a connection must send `REST 0` first or it gets the wrong bytes.
    pub rest_used: bool,
    /// `MODE Z` is in force on this connection (only during a compressed download: a
    /// connection in the pool is in `MODE S`, see [`super::deflate`]).
    pub mode_z: bool,
    /// The sockets, for deadlines and for noticing a connection the server closed.
    pub sockets: Arc<Sockets>,
    /// The TLS sessions this connection's data connections resume (see [`super::tls`]).
    pub sessions: Option<Arc<SessionStore>>,
    /// In active mode, the data connections' read and write timeout (see
    /// [`super::active::adopt`]); `None` in passive mode.
    pub active: Option<Duration>,
    /// `-o allo`: `ALLO size` before `STOR` (see [`Conn::allocate`]).
    pub allo: bool,
}

impl Conn {
    /// Connects and logs in, all of it before `deadline`.
    pub fn connect(ep: &Endpoint, info: &ServerInfo, deadline: Instant) -> Result<Conn> {
        let refused_before = info.tls_refused.load(Ordering::Relaxed);
        match Self::connect_once(ep, info, deadline) {
            // tls=try, and the server just refused AUTH TLS: the refusal used up that
            // connection (suppaftp consumes it); a plain one follows.
            Err(_) if !refused_before && info.tls_refused.load(Ordering::Relaxed) => {
                Self::connect_once(ep, info, deadline)
            }
            r => r,
        }
    }

    fn connect_once(ep: &Endpoint, info: &ServerInfo, deadline: Instant) -> Result<Conn> {
        let (ftp, sockets, peer, sessions) = if ep.tls.mode == TlsMode::Implicit {
            implicit_connect(ep, deadline).map_err(|e| refused_cert(&ep.tls, e))?
        } else {
            let stream = tcp_connect(ep, deadline)?;
            let sockets = Sockets::new(
                stream
                    .try_clone()
                    .map_err(|e| Error::from_io(Op::Connect, e))?,
            );
            let _guard = watchdog::arm(&sockets, deadline);
            let peer = stream
                .peer_addr()
                .map_err(|e| Error::from_io(Op::Connect, e))?;
            let (ftp, sessions) = greet(ep, info, stream)
                .map_err(|e| Self::timed_out(&sockets, e))
                .map_err(|e| refuse_plain(ep, info, e))
                .map_err(|e| refused_cert(&ep.tls, e))?;
            (ftp, sockets, peer.ip(), sessions)
        };
        let _guard = watchdog::arm(&sockets, deadline);
        Self::handshake(ep, info, ftp, &sockets, peer, sessions)
            .map_err(|e| Self::timed_out(&sockets, e))
            .map_err(|e| refused_cert(&ep.tls, e))
    }

    fn timed_out(sockets: &Sockets, e: Error) -> Error {
        if sockets.fired() {
            Error::Timeout {
                op: e.op().unwrap_or(Op::Connect),
            }
        } else {
            e
        }
    }

    fn handshake(
        ep: &Endpoint,
        info: &ServerInfo,
        mut ftp: Ftp,
        sockets: &Arc<Sockets>,
        peer: IpAddr,
        sessions: Option<Arc<SessionStore>>,
    ) -> Result<Conn> {
        let secure = sessions.is_some();
        log::debug!(
            "connected to {} (peer {peer}, {})",
            ep.display(),
            if secure { "TLS" } else { "plain" }
        );
        if !secure
            && !ep.password.expose().is_empty()
            && !matches!(ep.user.as_str(), "anonymous" | "ftp")
            && !info.warned_clear.swap(true, Ordering::Relaxed)
        {
            log::warn!(
                "{}: no TLS; the password goes over the network in clear text",
                ep.display()
            );
        }
        let known = info.caps();
        // FEAT before USER on the first connection: HOST, when listed, must come before
        // USER, and asking here costs no more than asking after login. A server that wants
        // a login first (530) is asked again afterwards, the one case that pays a round trip.
        let mut feat = match known {
            Some(_) => None,
            None => Some(features::ask_feat(&mut ftp, secure, &ep.display())?),
        };
        let listed = match (&known, &feat) {
            (Some(c), _) => c.host,
            (None, Some(Feat::Listed(f))) => f.contains_key("HOST"),
            _ => false,
        };
        let host_refused = match ep.host_command(listed) {
            Some(name) => !features::send_host(&mut ftp, ep, &name)?,
            None => false,
        };
        ftp.login(ep.user.as_str(), ep.password.expose())
            .map_err(|e| Error::from_ftp(Op::Login, e))?;
        if matches!(feat, Some(Feat::Refused(530, _))) {
            feat = Some(features::ask_feat(&mut ftp, secure, &ep.display())?);
        }
        let mut caps = match known {
            Some(c) => c,
            // `feat` is always there when the capabilities are unknown.
            None => {
                features::caps_from_feat(&mut ftp, feat.unwrap_or(Feat::Unreadable), &ep.display())
            }
        };
        // The URL's name refused as a virtual host: later connections do not ask again.
        caps.host &= !host_refused;
        if caps.utf8 {
            // Servers that advertise UTF8 but refuse OPTS still speak it; ignore the answer.
            let _ = ftp.custom_command("OPTS UTF8 ON", &[Status::CommandOk, Status::Unknown]);
        }
        if caps.mlst_opts != 0 {
            // Per session, like OPTS UTF8. A refusal leaves the server's default facts,
            // which still list; it is not worth failing the connection over.
            let cmd = mlst_opts_command(caps.mlst_opts);
            if let Err(e) = ftp.custom_command(&cmd, &[Status::CommandOk]) {
                log::debug!("{cmd}: {e}");
            }
        }
        // TYPE I: some servers answer 250 instead of 200; both mean done. suppaftp transfers
        // in binary unless told TYPE A, so its own call is not needed.
        ftp.custom_command(
            "TYPE I",
            &[Status::CommandOk, Status::RequestedFileActionOk],
        )
        .map_err(|e| Error::from_ftp(Op::Connect, e))?;
        let caps = match known {
            Some(c) => c,
            None => {
                let c = probe_transfers(&mut ftp, caps, ep, peer)?;
                log::info!("server {} capabilities: {c:?}", ep.display());
                *info.caps.lock() = Some(c);
                c
            }
        };
        let timeout = ep.timeout;
        ftp = if caps.active {
            // suppaftp's accept waits at most this long for the server to connect.
            ftp.active_mode(timeout)
        } else {
            ftp.set_mode(if caps.epsv {
                Mode::ExtendedPassive
            } else {
                Mode::Passive
            });
            ftp
        };
        let for_data = Arc::clone(sockets);
        let pasv_addr = ep.pasv_addr;
        let ftp = ftp.passive_stream_builder(move |addr: SocketAddr| {
            let addr = pasv_addr.apply(addr, peer);
            let s =
                TcpStream::connect_timeout(&addr, timeout).map_err(FtpError::ConnectionError)?;
            s.set_read_timeout(Some(timeout))
                .and_then(|_| s.set_write_timeout(Some(timeout)))
                .map_err(FtpError::ConnectionError)?;
            for_data.set_data(s.try_clone().ok());
            Ok(s)
        });
        Ok(Conn {
            ftp,
            secure,
            caps,
            rest_used: false,
            mode_z: false,
            sockets: Arc::clone(sockets),
            sessions,
            active: caps.active.then_some(timeout),
            allo: ep.dialogue.allo,
        })
    }

    /// `ALLO size` before a `STOR`, with `-o allo`, for servers that refuse an upload whose
    /// size was not announced. `200` and `202` (not needed here) both mean go on; a server
    /// without the command (`500`/`502`) gets the `STOR` anyway; any other refusal (`552`
    /// no room) is the upload's error.
    pub fn allocate(&mut self, size: u64) -> Result<()> {
        if !self.allo {
            return Ok(());
        }
        match self.ftp.custom_command(
            format!("ALLO {size}"),
            &[Status::CommandOk, Status::CommandNotImplemented],
        ) {
            Ok(_) => Ok(()),
            Err(FtpError::UnexpectedResponse(r))
                if matches!(crate::error::reply_code(&r), 500 | 502) =>
            {
                log::debug!("ALLO refused ({}); sending STOR anyway", refusal_of(&r));
                Ok(())
            }
            Err(e) => Err(Error::from_ftp(Op::Store, e)),
        }
    }

    /// Ends this connection's socket reads and writes at `deadline` (see [`watchdog`]).
    pub fn guard(&self, deadline: Instant) -> watchdog::Guard {
        watchdog::arm(&self.sockets, deadline)
    }

    /// Makes sure no `REST` offset from an earlier transfer applies to the next one (see
    /// [`Conn::rest_used`]).
    pub fn clear_rest(&mut self, op: Op) -> Result<()> {
        if self.rest_used {
            self.ftp
                .custom_command("REST 0", &[Status::RequestFilePending])
                .map_err(|e| Error::from_ftp(op, e))?;
            self.rest_used = false;
        }
        Ok(())
    }

    /// Polite goodbye; errors do not matter any more.
    pub fn quit(mut self) {
        let _ = self.ftp.quit();
    }
}

/// Plain TCP until the greeting, then `AUTH TLS` unless TLS is off (or refused before, in
/// `try` mode). Returns the connection and, when it is encrypted, its TLS sessions.
fn greet(ep: &Endpoint, info: &ServerInfo, stream: TcpStream) -> Result<(Ftp, Sessions)> {
    for r in [
        stream.set_read_timeout(Some(ep.timeout)),
        stream.set_write_timeout(Some(ep.timeout)),
        stream.set_nodelay(true),
    ] {
        r.map_err(|e| Error::from_io(Op::Connect, e))?;
    }
    keepalive(&stream, ep.keepalive);
    super::reply::skip_to_greeting(&stream, ep.timeout)?;
    let ftp = Ftp::connect_with_stream(stream).map_err(|e| Error::from_ftp(Op::Connect, e))?;
    let connector = match (ep.tls.connector(ep.timeout), ep.tls.mode) {
        (None, _) | (_, TlsMode::Off) => return Ok((ftp, None)),
        (Some(_), TlsMode::Try) if info.tls_refused.load(Ordering::Relaxed) => {
            return Ok((ftp, None))
        }
        (Some(c), _) => c,
    };
    let sessions = Arc::clone(&connector.store);
    match ftp.into_secure(connector, &ep.host) {
        Ok(ftp) => Ok((ftp, Some(sessions))),
        Err(FtpError::UnexpectedResponse(r)) => Err(Error::Reply {
            op: Op::Connect,
            code: crate::error::reply_code(&r),
            text: crate::error::reply_text(&r.body),
        }),
        Err(e) => Err(Error::from_ftp(Op::Connect, e)),
    }
}

/// A refused `AUTH TLS` (a 5xx reply to it, or to `PBSZ`/`PROT`): in `try` mode, remember it
/// so the next connection is plain; in `required` mode, a clear error.
fn refuse_plain(ep: &Endpoint, info: &ServerInfo, e: Error) -> Error {
    match (&e, ep.tls.mode) {
        (Error::Reply { code, .. }, TlsMode::Try) if (500..600).contains(code) => {
            log::info!("{} does not offer TLS ({e}); using plain FTP", ep.display());
            info.tls_refused.store(true, Ordering::Relaxed);
            e
        }
        (Error::Reply { code, .. }, TlsMode::Required) if (500..600).contains(code) => {
            Error::Tls(format!(
                "{} refuses AUTH TLS ({e}); tls=required, so the password is not sent",
                ep.display()
            ))
        }
        _ => e,
    }
}

/// A handshake that failed because the certificate was refused: the verifier's one line
/// (what is wrong, the fingerprint, what to do) replaces rustls's terse error. A refusal
/// left over from elsewhere (a data connection) never relabels another failure: the error
/// must be about the certificate.
fn refused_cert(tls: &Tls, e: Error) -> Error {
    let why = tls.take_refusal();
    match why {
        Some(why) if !matches!(e, Error::Reply { .. }) && e.to_string().contains("certificate") => {
            Error::Tls(why)
        }
        _ => e,
    }
}

/// Implicit TLS (`ftps://`): suppaftp connects the socket itself, without a timeout, so a
/// connection with one is made first to find out whether the server is there at all; the
/// TLS connector gives the real socket its timeouts before the handshake.
fn implicit_connect(
    ep: &Endpoint,
    deadline: Instant,
) -> Result<(Ftp, Arc<Sockets>, IpAddr, Sessions)> {
    let probe = tcp_connect(ep, deadline)?;
    let addr = probe
        .peer_addr()
        .map_err(|e| Error::from_io(Op::Connect, e))?;
    drop(probe);
    let connector = ep
        .tls
        .connector(ep.timeout)
        .ok_or_else(|| Error::Tls("no TLS configuration".into()))?;
    let first = Arc::clone(&connector.first);
    let sessions = Arc::clone(&connector.store);
    let mut ftp = Ftp::connect_secure_implicit(addr, connector, &ep.host)
        .map_err(|e| Error::from_ftp(Op::Connect, e))?;
    // Data connections encrypted too, as after AUTH TLS (suppaftp does not ask here).
    for cmd in ["PBSZ 0", "PROT P"] {
        ftp.custom_command(cmd, &[Status::CommandOk])
            .map_err(|e| Error::from_ftp(Op::Connect, e))?;
    }
    let ctrl = first
        .lock()
        .take()
        .ok_or_else(|| Error::Tls("no control socket".into()))?;
    let _ = ctrl.set_nodelay(true);
    keepalive(&ctrl, ep.keepalive);
    Ok((ftp, Sockets::new(ctrl), addr.ip(), Some(sessions)))
}

fn tcp_connect(ep: &Endpoint, deadline: Instant) -> Result<TcpStream> {
    // A lookup is part of connecting: `timeout` bounds it as it bounds the connect.
    let lookup_by = deadline.min(Instant::now() + ep.timeout);
    let addrs = super::resolve::Resolver::system().resolve(&ep.host, ep.port, lookup_by)?;
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout { op: Op::Connect });
        }
        match TcpStream::connect_timeout(&addr, ep.timeout.min(left)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::from_io(
        Op::Connect,
        last.unwrap_or_else(|| std::io::Error::other("host name resolved to no address")),
    ))
}

/// TCP keepalive on the control connection: during a long transfer it is idle for minutes,
/// and NAT boxes and firewalls forget idle connections; the server's reply at the end would
/// then never arrive, and an upload that worked would fail. A probe every `idle` keeps them
/// remembering; four unanswered ones (15 s apart at most) declare the connection dead.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);

fn keepalive(stream: &TcpStream, idle: Duration) {
    if idle.is_zero() {
        return;
    }
    let idle_secs = idle.as_secs().clamp(1, 32767) as libc::c_int;
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let set = |level, name, value: libc::c_int| {
        // SAFETY: setsockopt on an open socket with a pointer to a c_int and its size.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle_secs);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, idle_secs.min(15));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 4);
}

/// EPSV and REST are often implemented but not advertised, so ask directly. An unused EPSV
/// listener is closed by the server at the next EPSV/PASV; `REST 0` changes nothing.
///
/// Passive or active is decided here rather than at the first transfer (see
/// [`super::active::choose`]): a server that refuses both EPSV and PASV would otherwise mount
/// and then fail every listing and read.
fn probe_transfers(ftp: &mut Ftp, mut caps: Caps, ep: &Endpoint, peer: IpAddr) -> Result<Caps> {
    let choice =
        super::active::choose(ftp, ep.data, ep.pasv_addr, peer, ep.timeout, &ep.display())?;
    caps.epsv = choice.epsv;
    caps.active = choice.active;
    caps.rest = ftp
        .custom_command("REST 0", &[Status::RequestFilePending])
        .is_ok();
    Ok(caps)
}

/// A refusal as the server worded it: `500 Command "PASV" not understood.`
pub(super) fn refusal_of(r: &suppaftp::types::Response) -> String {
    format!(
        "{} {}",
        crate::error::reply_code(r),
        crate::error::reply_text(&r.body)
    )
}

/// Replaces a private or unspecified passive address by the control peer's when the peer is
/// public: the server is behind NAT and told us the address it sees, not the one we can reach.
pub fn fix_passive_address(addr: SocketAddr, peer: IpAddr) -> SocketAddr {
    let local_kind = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
    };
    let reported = addr.ip();
    if reported.is_unspecified() || (local_kind(reported) && !local_kind(peer)) {
        SocketAddr::new(peer, addr.port())
    } else {
        addr
    }
}

/// A shareable handle to [`ServerInfo`].
pub type SharedInfo = Arc<ServerInfo>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn opts_mlst_asks_for_offered_facts_only_when_some_are_off() {
        // pyftpdlib: unix.mode offered, not sent by default.
        let f = mlst_opts_from_feat("type*;perm*;size*;modify*;unique*;unix.mode;unix.uid;");
        assert_eq!(
            mlst_opts_command(f),
            "OPTS MLST type;size;modify;unix.mode;perm;"
        );
        // pure-ftpd sends everything it offers already.
        assert_eq!(
            mlst_opts_from_feat("modify*;perm*;size*;type*;unique*;UNIX.mode*;"),
            0
        );
        assert_eq!(mlst_opts_from_feat(""), 0);
    }

    #[test]
    fn private_passive_address_from_a_public_server_is_replaced() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            fix_passive_address(sa("192.168.1.10:40000"), peer),
            sa("203.0.113.7:40000")
        );
        assert_eq!(
            fix_passive_address(sa("0.0.0.0:40000"), peer),
            sa("203.0.113.7:40000")
        );
    }

    #[test]
    fn passive_address_is_kept_when_it_is_as_reachable_as_the_peer() {
        let lan: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            fix_passive_address(sa("10.0.0.3:40000"), lan),
            sa("10.0.0.3:40000")
        );
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            fix_passive_address(sa("198.51.100.1:40000"), public),
            sa("198.51.100.1:40000")
        );
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            fix_passive_address(sa("127.0.0.1:40000"), lo),
            sa("127.0.0.1:40000")
        );
    }
}
