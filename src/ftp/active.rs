//! Which way data connections go: passive (we connect to the server) or active (the server
//! connects to us).
//!
//! Passive mode is what works through the client's NAT and firewall, so it is the default.
//! But some servers refuse `EPSV` and `PASV` altogether (passive mode disabled, embedded
//! ftpds), and some sit behind a firewall that lets through port 21 and nothing else towards
//! them: there a passive data connection can never be opened, and only active mode (`PORT`,
//! or `EPRT` on IPv6) works. `-o data=auto` finds out once, on the first connection, and
//! remembers the answer for the mount in [`super::conn::Caps::active`]:
//!
//! - the server refuses both `EPSV` and `PASV`: active;
//! - it accepts one of them, but a TCP connection to the address it gave cannot be opened
//!   within `timeout`: active;
//! - otherwise passive.
//!
//! Choosing active says so in one warning, with the reason. `-o data=passive` never switches
//! (a server without passive mode refuses the mount, naming `data=active`), `-o data=active`
//! never asks.
//!
//! Active mode is suppaftp's: it listens on the control connection's local address, sends
//! `PORT` (IPv4) or `EPRT` (IPv6) after the transfer command is accepted, and waits for the
//! server at most `timeout` (then `ETIMEDOUT`). A connection from any address other than the
//! control connection's peer is not taken: suppaftp closes it with a warning in the log and
//! keeps waiting, so a third party that races the server to the listener never has its bytes
//! taken for a file's. On an FTPS mount ftpfs is the TLS client on the accepted socket, with
//! the same connector (and session resumption) as a passive data connection. The accepted
//! socket gets the connection's read and write timeouts and is handed to the watchdog, as a
//! passive one is, by [`adopt`].
//!
//! Not yet: announcing another address for a client behind NAT (`active_addr=`), a port
//! range for the listener (`active_ports=`), and `EPRT` on IPv4 where the server offers it.
//! suppaftp binds the listener and words `PORT` itself, and its `TransferStream`, which the
//! reader and uploads hold, cannot be built outside it; those need ftpfs to own the data
//! connection's set-up (listener, `PORT`/`EPRT`, `REST`, the command, accept, TLS, and
//! reading the final reply), not a setting of suppaftp's.

use std::net::{IpAddr, SocketAddr, TcpStream};
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

/// The first connection's answer: whether this mount's data connections are active, and
/// whether the server takes `EPSV`.
pub struct Choice {
    pub active: bool,
    pub epsv: bool,
}

/// Decides the data connection mode on the first connection (see the module docs). `peer`
/// is the control connection's peer, `timeout` bounds the test connection.
pub fn choose(
    ftp: &mut Ftp,
    mode: DataMode,
    pasv_addr: PasvAddr,
    peer: IpAddr,
    timeout: Duration,
    server: &str,
) -> Result<Choice> {
    if mode == DataMode::Active {
        log::info!("{server}: active data connections (data=active)");
        return Ok(Choice {
            active: true,
            epsv: false,
        });
    }
    let epsv = ftp.custom_command("EPSV", &[Status::ExtendedPassiveMode]);
    let offered = match &epsv {
        Ok(reply) => epsv_port(&reply_text(reply)).map(|port| SocketAddr::new(peer, port)),
        Err(_) => match ftp.custom_command("PASV", &[Status::PassiveMode]) {
            Ok(reply) => pasv_address(&reply_text(&reply)).map(|a| pasv_addr.apply(a, peer)),
            Err(pasv @ FtpError::UnexpectedResponse(_)) => {
                let (epsv, pasv) = (refusal(epsv.as_ref().err()), refusal(Some(&pasv)));
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
        });
    }
    // The server listens now for the transfer that never comes; a connection that is
    // closed at once costs it nothing, and the next EPSV/PASV closes that listener.
    let Some(addr) = offered else {
        // A reply we cannot read now will not be read at the first transfer either; that
        // transfer says so. Not a reason to choose active mode.
        return Ok(Choice {
            active: false,
            epsv,
        });
    };
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => {
            drop(s);
            Ok(Choice {
                active: false,
                epsv,
            })
        }
        Err(e) => {
            log::warn!(
                "{server}: a passive data connection to {addr} cannot be opened ({e}); using \
                 active data connections (PORT/EPRT) for this mount"
            );
            Ok(Choice {
                active: true,
                epsv: false,
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
fn epsv_port(reply: &str) -> Option<u16> {
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
