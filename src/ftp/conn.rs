//! One logged-in control connection, and how the first one learns what a server can do.
//!
//! Servers differ in what they support, and asking costs round trips. The first connection
//! asks: `FEAT` (for `MLST`, `UTF8`, `MDTM`, `HOST`, `EPRT`), then probes `EPSV` and `REST`
//! directly, because many servers implement both without listing them. The answers are kept
//! in [`Caps`] ([`super::caps`]) and every later connection only repeats what is
//! per-connection state: `HOST`, login, `OPTS UTF8 ON`, `OPTS MLST`, `TYPE I`. With
//! pipelining on they go in two writes, `USER` with `PASS`, then the set-up with an `EPSV`
//! for the first transfer; on the first connection `PASS` waits for `USER`'s answer and the
//! set-up goes with the `EPSV` probe (see [`super::session`]).
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
//! [`super::caps::Capability`]).
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

use std::sync::atomic::Ordering;
use suppaftp::{FtpError, Mode, Status};

use super::caps::{Caps, ServerInfo};
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
    /// Where active-mode listeners bind and what they announce (`-o active_addr=`,
    /// `-o active_ports=`).
    pub listen: super::active::Listen,
    /// `-o pipelining=`: commands written back to back where the protocol allows, and
    /// data connections opened ahead (see [`super::prepare`]).
    pub pipelining: bool,
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
    /// The home directory, from the `PWD` the mount's first connection sends with its
    /// set-up commands (see [`super::session`]); taken by the mount.
    pub home: Option<String>,
}

impl Conn {
    /// Connects and logs in, all of it before `deadline`.
    pub fn connect(ep: &Endpoint, info: &ServerInfo, deadline: Instant) -> Result<Conn> {
        let refused_before = info.tls_refused.load(Ordering::Relaxed);
        let pipelined_before = info.pipelining();
        match Self::connect_once(ep, info, deadline) {
            // The server lost the set-up commands written at once: one at a time now.
            Err(_) if pipelined_before && !info.pipelining() => {
                Self::connect_once(ep, info, deadline)
            }
            // tls=try, and the server just refused PBSZ/PROT after AUTH TLS: that
            // connection is half secured; a plain one follows. (A refused AUTH TLS itself
            // goes on in plain on the same connection, see `greet`.)
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
        let first = known.is_none();
        // FEAT before USER on the first connection: HOST, when listed, must come before
        // USER, and asking here costs no more than asking after login. A server that wants
        // a login first (530) is asked again afterwards, the one case that pays a round trip.
        let mut feat = match known {
            Some(_) => None,
            None => Some(features::ask_feat(&mut ftp)?),
        };
        let listed = match (&known, &feat) {
            (Some(c), _) => c.host,
            (None, Some(Feat::Listed(f))) => f.contains_key("HOST"),
            _ => false,
        };
        let host = ep.host_command(listed);
        // What the set-up commands are is known before login when `FEAT` listed the
        // features: they then go in one write as soon as the login is answered (see
        // [`super::session`]).
        let before_login = match (known, feat.take()) {
            (Some(c), _) => Some(c),
            (None, Some(f @ Feat::Listed(_))) => {
                Some(features::caps_from_feat(&mut ftp, f, &ep.display()))
            }
            (None, other) => {
                feat = other;
                None
            }
        };
        // The first connection's `EPSV` probe; a later connection in passive mode opens its
        // first data connection ahead the same way (see `ahead` below). Also on a link where
        // nothing else is prepared ahead (see `super::prepare`): it costs no round trip of
        // its own.
        let epsv = match known {
            None => ep.data != super::active::DataMode::Active,
            Some(c) => c.epsv && !c.active,
        };
        let login = super::session::log_in(
            &ftp,
            info,
            ep,
            host.as_deref(),
            before_login.as_ref(),
            first,
            epsv,
        )?;
        if matches!(feat, Some(Feat::Refused(530, _))) {
            feat = Some(features::ask_feat(&mut ftp)?);
        }
        let mut caps = match before_login {
            Some(c) => c,
            // `feat` is always there when the capabilities are unknown.
            None => {
                features::caps_from_feat(&mut ftp, feat.unwrap_or(Feat::Unreadable), &ep.display())
            }
        };
        // The URL's name refused as a virtual host: later connections do not ask again.
        caps.host &= !login.host_refused;
        if first {
            caps.asks_password = login.asked_password;
        }
        // OPTS UTF8, OPTS MLST, TYPE I, and on the first connection the REST probe and PWD:
        // sent with the login when they could be, else now (see [`super::session`]).
        let set_up = match login.set_up {
            Some(s) => s,
            None => super::session::set_up(&ftp, info, ep, &caps, first)?,
        };
        caps.rest = set_up.rest.unwrap_or(caps.rest);
        let (caps, probe) = match known {
            Some(c) => (c, open_ahead(ep, peer, login.epsv)),
            None => {
                let (c, probe) = probe_transfers(&mut ftp, caps, ep, peer, login.epsv)?;
                log::info!("server {} capabilities: {c:?}", ep.display());
                *info.caps.lock() = Some(c);
                (c, probe)
            }
        };
        let timeout = ep.timeout;
        ftp = if caps.active {
            let (listen, extended) = (ep.listen, caps.eprt);
            // suppaftp's accept waits at most `timeout` for the server to connect.
            ftp.active_mode(timeout)
                .active_listener_builder(move |local: SocketAddr| {
                    let (listener, announce) =
                        listen.bind(local).map_err(FtpError::ConnectionError)?;
                    Ok(suppaftp::ActiveListener {
                        listener,
                        announce,
                        extended,
                    })
                })
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
        // The passive-mode probe's data connection (or a later connection's, opened ahead)
        // is the first transfer's, set up as the stream builder sets up its own (see
        // `super::active`: closed unused, libunftp could give the next transfer to it).
        if let Some(s) = probe {
            if s.set_read_timeout(Some(timeout))
                .and_then(|_| s.set_write_timeout(Some(timeout)))
                .is_ok()
            {
                sockets.set_data(s.try_clone().ok());
                ftp.adopt_prepared_data_connection(s);
                log::debug!(
                    "{} is kept for the first transfer",
                    if first {
                        "the passive-mode test connection"
                    } else {
                        "the data connection opened with the login"
                    }
                );
            }
        }
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
            home: set_up.home,
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
    // `AUTH TLS` is sent here, not by suppaftp's `into_secure`, which consumes the
    // connection when the server refuses: in `try` mode a refusal then cost a second
    // connection and greeting (two round trips). Refused here, the same connection goes on
    // in plain (see [`refuse_plain`]).
    let auth = super::reply::ask(&ftp, "AUTH TLS", Op::Connect)?;
    if auth.code != 234 {
        let e = refuse_plain(
            ep,
            info,
            Error::Reply {
                op: Op::Connect,
                code: auth.code,
                text: auth.text(),
            },
        );
        return match ep.tls.mode {
            TlsMode::Try if info.tls_refused.load(Ordering::Relaxed) => Ok((ftp, None)),
            _ => Err(e),
        };
    }
    match ftp.secure_after_auth(connector, &ep.host) {
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
fn probe_transfers(
    ftp: &mut Ftp,
    mut caps: Caps,
    ep: &Endpoint,
    peer: IpAddr,
    epsv: Option<super::active::EpsvAnswer>,
) -> Result<(Caps, Option<TcpStream>)> {
    let choice = super::active::choose(
        ftp,
        ep.data,
        ep.pasv_addr,
        peer,
        ep.timeout,
        &ep.display(),
        epsv,
    )?;
    caps.epsv = choice.epsv;
    caps.active = choice.active;
    caps.eprt =
        choice.active && super::active::probe_eprt(ftp, &ep.listen, caps.eprt, &ep.display())?;
    // `caps.rest` was probed with the set-up commands (see [`super::session`]).
    Ok((caps, choice.probe))
}

/// A later connection's first data connection, opened ahead: its `EPSV` went with the
/// set-up commands (see [`super::session`]), so the first listing or transfer sends only its
/// command, as on a connection the pool prepared ([`super::prepare`]), and a new connection
/// costs no round trip more than `USER`+`PASS` and the set-up. `None` when it was not asked,
/// was refused, or cannot be connected to: the first transfer then sends its own `EPSV`.
fn open_ahead(
    ep: &Endpoint,
    peer: IpAddr,
    epsv: Option<super::active::EpsvAnswer>,
) -> Option<TcpStream> {
    let port = match epsv? {
        Ok(reply) => super::active::epsv_port(&reply)?,
        Err(refused) => {
            log::debug!("EPSV with the set-up refused ({refused})");
            return None;
        }
    };
    let addr = SocketAddr::new(peer, port);
    TcpStream::connect_timeout(&addr, ep.timeout)
        .inspect_err(|e| log::debug!("a data connection to {addr} ahead failed: {e}"))
        .ok()
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

/// An endpoint for unit tests: `alice` at `ftp.example.com`, nothing optional.
#[cfg(test)]
pub(super) fn test_endpoint() -> Endpoint {
    Endpoint {
        host: "ftp.example.com".into(),
        port: 21,
        user: "alice".into(),
        password: crate::secret::Secret::new("pw"),
        timeout: Duration::from_secs(1),
        policy: Policy::default(),
        tls: Tls::off(),
        limit_recheck: Duration::from_secs(1),
        keepalive: Duration::ZERO,
        data: Default::default(),
        pasv_addr: Default::default(),
        listen: Default::default(),
        pipelining: true,
        dialogue: Dialogue::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
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
