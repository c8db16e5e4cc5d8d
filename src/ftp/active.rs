//! Which way data connections go: passive (we connect to the server) or active (the server
//! connects to us).
//!
//! Passive mode is what works through the client's NAT and firewall, so it is the default.
//! But some servers refuse `EPSV` and `PASV` altogether (passive mode disabled, embedded
//! ftpds), and some sit behind a firewall that lets through port 21 and nothing else towards
//! them: there a passive data connection can never be opened, and only active mode (`PORT`,
//! or `EPRT` on IPv6) works. `-o data=auto` finds out once, on the first connection, and
//! remembers the answer for the mount in [`super::caps::Caps::active`]:
//!
//! - the server refuses both `EPSV` and `PASV`: active;
//! - it accepts one of them, but a TCP connection to the address it gave cannot be opened
//!   within `timeout`: active;
//! - otherwise passive.
//!
//! The `EPSV` is written with the login's last commands when pipelining is on (see
//! [`super::session`]), its reply read with theirs and handed to [`choose`]: the same reply
//! decides the same way, one round trip earlier.
//!
//! The test connection is not closed: it is the data connection of the mount's first
//! transfer (the `EPSV` that opened it is that transfer's, see [`Choice::probe`]). Closed
//! unused, it cost the first transfer an `EPSV` of its own, and it broke libunftp: that
//! server hands a transfer command to the data connection it accepted last, so when it
//! accepted the closed test connection after the next `EPSV` (it accepts in a task of its
//! own, whenever that runs), the first listing or read went to the closed one and came
//! back empty, with `226`.
//!
//! Choosing active says so in one warning, with the reason. `-o data=passive` never switches
//! (a server without passive mode refuses the mount, naming `data=active`), `-o data=active`
//! never asks.
//!
//! Active mode is suppaftp's, with the listener bound by ftpfs ([`Listen::bind`], through
//! the hook our patched suppaftp adds, see `vendor/suppaftp/FTPFS-PATCH.md`): it listens on
//! the control connection's local address, or on `-o active_addr=` when that is one of this
//! machine's addresses; it announces `-o active_addr=` when given (a client behind NAT names
//! its public address, the router forwards the port), else the listener's own address; it
//! takes a port from `-o active_ports=LOW:HIGH` when given (a firewall that opens only that
//! range), else any. The announcement is `EPRT` when the server offers it in `FEAT` and
//! accepted it once (asked on the first connection: a server may list it and refuse it), or
//! for an IPv6 address; `PORT` otherwise. suppaftp sends it after the transfer command is
//! accepted and waits for the server at most `timeout` (then `ETIMEDOUT`). A connection from
//! any address other than the control connection's peer is not taken: suppaftp closes it
//! with a warning in the log and keeps waiting, so a third party that races the server to
//! the listener never has its bytes taken for a file's. On an FTPS mount ftpfs is the TLS
//! client on the accepted socket, with the same connector (and session resumption) as a
//! passive data connection. The accepted socket gets the connection's read and write
//! timeouts and is handed to the watchdog, as a passive one is, by [`adopt`].

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use suppaftp::{FtpError, Status, TransferStream};

use super::conn::{fix_passive_address, Conn, Ftp};
use crate::error::{Error, Result};

/// `-o data=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DataMode {
    /// Passive first; active when passive cannot work.
    #[default]
    Auto,
    Passive,
    Active,
}

impl DataMode {
    pub fn parse(s: &str) -> std::result::Result<DataMode, String> {
        match s {
            "auto" => Ok(DataMode::Auto),
            "passive" => Ok(DataMode::Passive),
            "active" => Ok(DataMode::Active),
            v => Err(format!("data must be auto, passive or active, not {v:?}")),
        }
    }
}

/// `-o pasv_addr=`: what to do with the address in a `227` reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasvAddr {
    /// A private or unspecified address from a server reached at a public one is replaced by
    /// the control connection's peer ([`fix_passive_address`]).
    #[default]
    Fix,
    /// Connect to the address the server gave, whatever it is.
    Trust,
}

impl PasvAddr {
    pub fn parse(s: &str) -> std::result::Result<PasvAddr, String> {
        match s {
            "fix" => Ok(PasvAddr::Fix),
            "trust" => Ok(PasvAddr::Trust),
            v => Err(format!("pasv_addr must be fix or trust, not {v:?}")),
        }
    }

    /// The address a passive data connection goes to.
    pub fn apply(self, addr: SocketAddr, peer: IpAddr) -> SocketAddr {
        match self {
            PasvAddr::Fix => fix_passive_address(addr, peer),
            PasvAddr::Trust => addr,
        }
    }
}

/// `-o active_addr=` and `-o active_ports=`: where an active-mode listener binds and what
/// it announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listen {
    /// The address announced in `PORT`/`EPRT` (and bound, when it is this machine's).
    pub addr: Option<IpAddr>,
    /// The ports to listen on, both ends included.
    pub ports: Option<(u16, u16)>,
}

/// Where the next port search in `active_ports` starts, so that consecutive transfers do
/// not all try the first port (which may still be busy) first.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

impl Listen {
    /// `LOW:HIGH` (or `LOW-HIGH`).
    pub fn parse_ports(s: &str) -> std::result::Result<(u16, u16), String> {
        let bad = || format!("active_ports must be LOW:HIGH (1-65535), not {s:?}");
        let (low, high) = s.split_once([':', '-']).ok_or_else(bad)?;
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low == 0 || low > high {
            return Err(bad());
        }
        Ok((low, high))
    }

    /// Binds the listener of one active data connection; `local` is the control
    /// connection's local address. Returns it with the address to announce.
    ///
    /// `active_addr` is bound when it is one of this machine's addresses (a multi-homed
    /// client choosing its interface); otherwise (behind NAT, where it is the router's) the
    /// control connection's local address is, and `active_addr` is only announced. With
    /// `active_ports`, every port of the range is tried once, from a rotating start; all
    /// of them busy is `EADDRINUSE` (a transient error: the operation is retried).
    pub fn bind(&self, local: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
        let listener = match self.addr {
            Some(ip) if ip != local.ip() => match self.bind_on(ip) {
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                    self.bind_on(local.ip())?
                }
                r => r?,
            },
            _ => self.bind_on(local.ip())?,
        };
        let bound = listener.local_addr()?;
        let announce = SocketAddr::new(self.addr.unwrap_or(bound.ip()), bound.port());
        Ok((listener, announce))
    }

    fn bind_on(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let Some((low, high)) = self.ports else {
            return TcpListener::bind(SocketAddr::new(ip, 0));
        };
        let count = u32::from(high - low) + 1;
        let start = NEXT_PORT.fetch_add(1, Ordering::Relaxed) % count;
        for i in 0..count {
            // `count` ≤ 65535 and the sum stays below `high`: no overflow.
            let port = low + ((start + i) % count) as u16;
            match TcpListener::bind(SocketAddr::new(ip, port)) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                r => return r,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("every port of active_ports={low}:{high} is in use"),
        ))
    }
}

/// Whether `EPRT` announces an IPv4 listener: the server lists it in `FEAT` (`listed`) and
/// accepts it. Asked once per mount, on the first connection, with a listener nobody
/// connects to (no transfer follows; the next `PORT`/`EPRT` replaces it). A refusal means
/// `PORT`; an IPv6 listener needs `EPRT` whatever this says.
pub fn probe_eprt(ftp: &mut Ftp, listen: &Listen, listed: bool, server: &str) -> Result<bool> {
    if !listed {
        return Ok(false);
    }
    let local = ftp
        .get_ref()
        .local_addr()
        .map_err(|e| Error::from_io(crate::error::Op::Connect, e))?;
    let (listener, announce) = listen
        .bind(local)
        .map_err(|e| Error::from_io(crate::error::Op::Connect, e))?;
    let Some(command) = eprt_command(announce) else {
        return Ok(true);
    };
    let accepted = match ftp.custom_command(&command, &[Status::CommandOk]) {
        Ok(_) => true,
        Err(FtpError::UnexpectedResponse(r)) => {
            log::info!(
                "{server} lists EPRT but refuses it ({}); announcing with PORT",
                super::conn::refusal_of(&r)
            );
            false
        }
        Err(e) => return Err(Error::from_ftp(crate::error::Op::Connect, e)),
    };
    drop(listener);
    Ok(accepted)
}

/// `EPRT |1|a.b.c.d|port|` for an IPv4 address; `None` for IPv6 (which always uses it).
fn eprt_command(addr: SocketAddr) -> Option<String> {
    match addr {
        SocketAddr::V4(a) => Some(format!("EPRT |1|{}|{}|", a.ip(), a.port())),
        SocketAddr::V6(_) => None,
    }
}

/// The first connection's answer: whether this mount's data connections are active, and
/// whether the server takes `EPSV`.
pub struct Choice {
    pub active: bool,
    pub epsv: bool,
    /// The test connection, open, to the address of the last `EPSV`/`PASV` (`data=auto` in
    /// passive mode): the caller keeps it for the first transfer and must not close it
    /// unused (see the module docs).
    pub probe: Option<TcpStream>,
}

/// The answer to an `EPSV`: the reply (`229`), or the refusal as the server worded it
/// (`500 Unknown command`).
pub type EpsvAnswer = std::result::Result<String, String>;

/// Decides the data connection mode on the first connection (see the module docs). `peer`
/// is the control connection's peer, `timeout` bounds the test connection. `asked`: the
/// answer to an `EPSV` already written (with the login, see [`super::session`]); it decides
/// exactly as the answer to the `EPSV` sent here would.
pub fn choose(
    ftp: &mut Ftp,
    mode: DataMode,
    pasv_addr: PasvAddr,
    peer: IpAddr,
    timeout: Duration,
    server: &str,
    asked: Option<EpsvAnswer>,
) -> Result<Choice> {
    if mode == DataMode::Active {
        log::info!("{server}: active data connections (data=active)");
        return Ok(Choice {
            active: true,
            epsv: false,
            probe: None,
        });
    }
    let epsv = asked.unwrap_or_else(|| {
        ftp.custom_command("EPSV", &[Status::ExtendedPassiveMode])
            .map(|reply| reply_text(&reply))
            .map_err(|e| refusal(Some(&e)))
    });
    let offered = match &epsv {
        Ok(reply) => epsv_port(reply).map(|port| SocketAddr::new(peer, port)),
        Err(refused) => match ftp.custom_command("PASV", &[Status::PassiveMode]) {
            Ok(reply) => pasv_address(&reply_text(&reply)).map(|a| pasv_addr.apply(a, peer)),
            Err(pasv @ FtpError::UnexpectedResponse(_)) => {
                let (epsv, pasv) = (refused.clone(), refusal(Some(&pasv)));
                if mode == DataMode::Passive {
                    return Err(Error::NoPassive { epsv, pasv });
                }
                log::warn!(
                    "{server} refuses passive mode (EPSV: {epsv}, PASV: {pasv}); using active \
                     data connections (PORT/EPRT) for this mount"
                );
                return Ok(Choice {
                    active: true,
                    epsv: false,
                    probe: None,
                });
            }
            Err(e) => return Err(Error::from_ftp(crate::error::Op::Connect, e)),
        },
    };
    let epsv = epsv.is_ok();
    if mode == DataMode::Passive {
        return Ok(Choice {
            active: false,
            epsv,
            probe: None,
        });
    }
    // The server listens now; the test connection is kept for the first transfer.
    let Some(addr) = offered else {
        // A reply we cannot read now will not be read at the first transfer either; that
        // transfer says so. Not a reason to choose active mode.
        return Ok(Choice {
            active: false,
            epsv,
            probe: None,
        });
    };
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => Ok(Choice {
            active: false,
            epsv,
            probe: Some(s),
        }),
        Err(e) => {
            log::warn!(
                "{server}: a passive data connection to {addr} cannot be opened ({e}); using \
                 active data connections (PORT/EPRT) for this mount"
            );
            Ok(Choice {
                active: true,
                epsv: false,
                probe: None,
            })
        }
    }
}

/// Gives an active data connection, accepted inside suppaftp, what a passive one gets from
/// the stream builder: read and write timeouts, and the watchdog's eye. Passive ones have it
/// already.
pub fn adopt<T: suppaftp::TlsStream>(c: &Conn, stream: &TransferStream<T>) {
    let Some(timeout) = c.active else {
        return;
    };
    let socket = stream.get_ref().get_ref();
    let _ = socket.set_read_timeout(Some(timeout));
    let _ = socket.set_write_timeout(Some(timeout));
    c.sockets.set_data(socket.try_clone().ok());
}

fn reply_text(r: &suppaftp::types::Response) -> String {
    r.as_string().unwrap_or_default()
}

/// The port in `229 Entering Extended Passive Mode (|||6446|)`.
pub(super) fn epsv_port(reply: &str) -> Option<u16> {
    let inner = &reply[reply.find('(')? + 1..];
    let inner = &inner[..inner.find(')')?];
    let d = inner.chars().next()?;
    let fields: Vec<&str> = inner.split(d).collect();
    match fields.as_slice() {
        ["", "", "", port, ""] => port.parse().ok(),
        _ => None,
    }
}

/// The address in `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (parentheses optional, as
/// servers vary).
fn pasv_address(reply: &str) -> Option<SocketAddr> {
    let text = reply.get(4..).unwrap_or("");
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u8> = text[start..]
        .split(|c: char| !c.is_ascii_digit() && c != ',')
        .next()?
        .split(',')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, p1, p2] = nums.as_slice() else {
        return None;
    };
    let ip = std::net::Ipv4Addr::new(*a, *b, *c, *d);
    Some(SocketAddr::new(
        ip.into(),
        u16::from(*p1) << 8 | u16::from(*p2),
    ))
}

/// A refusal as the server worded it: `500 Command "PASV" not understood.`
fn refusal(e: Option<&FtpError>) -> String {
    match e {
        Some(FtpError::UnexpectedResponse(r)) => super::conn::refusal_of(r),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsv_and_pasv_replies_give_the_address_to_test() {
        assert_eq!(
            epsv_port("229 Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(
            epsv_port("229 Entering Extended Passive Mode (!!!21!)"),
            Some(21)
        );
        assert_eq!(epsv_port("229 nonsense"), None);
        assert_eq!(
            pasv_address("227 Entering Passive Mode (192,168,1,2,4,1)."),
            Some("192.168.1.2:1025".parse().unwrap())
        );
        assert_eq!(
            pasv_address("227 =127,0,0,1,200,10"),
            Some("127.0.0.1:51210".parse().unwrap())
        );
        assert_eq!(pasv_address("227 Entering Passive Mode (1,2,3)"), None);
        assert_eq!(
            pasv_address("227 Entering Passive Mode (300,2,3,4,5,6)"),
            None
        );
    }

    #[test]
    fn pasv_addr_trust_keeps_the_servers_private_address() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let given: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        assert_eq!(PasvAddr::Trust.apply(given, peer), given);
        assert_eq!(
            PasvAddr::Fix.apply(given, peer),
            "203.0.113.7:40000".parse().unwrap()
        );
    }

    fn local() -> SocketAddr {
        "127.0.0.1:21".parse().unwrap()
    }

    #[test]
    fn a_listener_without_options_binds_and_announces_the_control_address() {
        let (l, announce) = Listen::default().bind(local()).unwrap();
        let bound = l.local_addr().unwrap();
        assert_eq!(bound.ip(), local().ip());
        assert_ne!(bound.port(), 21);
        assert_eq!(announce, bound);
    }

    #[test]
    fn active_ports_are_honoured_and_a_busy_range_is_eaddrinuse() {
        // Find two free consecutive-range ports by binding them; then free one of them.
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        let listen = Listen {
            addr: None,
            ports: Some((port, port)),
        };
        let e = listen.bind(local()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("active_ports"), "{e}");
        drop(a);
        let (l, announce) = listen.bind(local()).unwrap();
        assert_eq!(l.local_addr().unwrap().port(), port);
        assert_eq!(announce.port(), port);
        // A wider range: every listener lands inside it, several at once.
        let low = 41000;
        let listen = Listen {
            addr: None,
            ports: Some((low, low + 49)),
        };
        let held: Vec<TcpListener> = (0..5).map(|_| listen.bind(local()).unwrap().0).collect();
        for l in &held {
            let p = l.local_addr().unwrap().port();
            assert!((low..=low + 49).contains(&p), "{p}");
        }
    }

    #[test]
    fn active_addr_is_announced_and_bound_only_when_it_is_this_machines() {
        // Behind NAT: the router's address is announced, the control address bound.
        let nat = Listen {
            addr: Some("203.0.113.9".parse().unwrap()),
            ports: None,
        };
        let (l, announce) = nat.bind(local()).unwrap();
        let bound = l.local_addr().unwrap();
        assert_eq!(bound.ip(), local().ip());
        assert_eq!(announce, SocketAddr::new(nat.addr.unwrap(), bound.port()));
        // One of this machine's addresses (all of 127/8 is): bound there.
        let mine = Listen {
            addr: Some("127.0.0.3".parse().unwrap()),
            ports: None,
        };
        let (l, announce) = mine.bind(local()).unwrap();
        assert_eq!(l.local_addr().unwrap(), announce);
        assert_eq!(announce.ip(), mine.addr.unwrap());
    }

    #[test]
    fn a_busy_port_range_is_eaddrinuse_and_retried_even_for_an_upload() {
        let busy = io::Error::new(io::ErrorKind::AddrInUse, "every port of active_ports");
        let e = Error::from_ftp(crate::error::Op::Store, FtpError::ConnectionError(busy));
        assert_eq!(e.errno(), libc::EADDRINUSE);
        assert!(e.is_retryable(false), "nothing was sent");
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let e = Error::from_ftp(crate::error::Op::Store, FtpError::ConnectionError(reset));
        assert_eq!(e.errno(), libc::EIO);
        assert!(!e.is_retryable(false));
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(Listen::parse_ports("40000:40100"), Ok((40000, 40100)));
        assert_eq!(Listen::parse_ports("1-1"), Ok((1, 1)));
        for bad in ["", "40000", "0:1", "2:1", "1:65536", "a:b", "1:2:3"] {
            assert!(Listen::parse_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eprt_is_worded_as_rfc_2428_says() {
        assert_eq!(
            eprt_command("192.0.2.7:40001".parse().unwrap()).as_deref(),
            Some("EPRT |1|192.0.2.7|40001|")
        );
        assert_eq!(eprt_command("[2001:db8::1]:40001".parse().unwrap()), None);
    }

    #[test]
    fn data_modes_parse() {
        assert_eq!(DataMode::parse("auto"), Ok(DataMode::Auto));
        assert_eq!(DataMode::parse("active"), Ok(DataMode::Active));
        assert_eq!(DataMode::parse("passive"), Ok(DataMode::Passive));
        assert!(DataMode::parse("port").is_err());
        assert_eq!(PasvAddr::parse("trust"), Ok(PasvAddr::Trust));
        assert!(PasvAddr::parse("keep").is_err());
    }
}
