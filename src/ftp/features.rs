//! What `FEAT` says, and what ftpfs does when it says nothing useful.
//!
//! `FEAT` (RFC 2389) lists a server's optional commands, but it is advisory: servers refuse
//! it (`500`, `502`, a `530` before login), list features unindented, or put stray coded
//! lines in it. None of that may fail a mount. What `FEAT` lists becomes [`Caps`]; what it
//! cannot tell is probed or learned at first use (see [`caps_from_feat`]).
//!
//! `HOST` (RFC 7151) names the virtual host before `USER`, so the server logs the user in to
//! the right site; [`super::conn`] asks `FEAT` before login for it, and [`super::session`]
//! sends it with `USER`.

use suppaftp::Status;

use super::caps::{mlst_opts_from_feat, Caps};
use super::conn::Ftp;
use crate::error::{Op, Result};

/// What `FEAT` said.
pub(super) enum Feat {
    /// The features, names upper-cased, with their parameters.
    Listed(std::collections::HashMap<String, String>),
    /// A refusal (its code, and the reply as sent): no `FEAT` (`500`/`502`), or not before
    /// login (`530`).
    Refused(u32, String),
    /// Not asked (the capabilities are probed instead).
    Unreadable,
}

/// `FEAT`, which is advisory: a refusal or stray lines never fail the connection. Its reply
/// is read by ftpfs, plain or TLS (see [`super::reply`] for why not by suppaftp).
pub(super) fn ask_feat(ftp: &mut Ftp) -> Result<Feat> {
    let reply = super::reply::ask(ftp, "FEAT", Op::Connect)?;
    Ok(match reply.code {
        211 => Feat::Listed(super::reply::parse_feat(&reply)),
        code => Feat::Refused(code, reply.text()),
    })
}

/// The capabilities `FEAT` lists. When it lists nothing usable (refused, unreadable), the
/// commands that matter are probed instead, or left to be learned at first use: `MLST`
/// (one control-connection round trip here), `MDTM` (tried at the first `LIST` listing, and
/// given up at its first `500`/`502`, see [`super::mdtm`]), `UTF8` (`OPTS UTF8 ON` is sent
/// and its answer ignored). `EPSV` and `REST` are always probed (`probe_transfers` in [`super::conn`]).
pub(super) fn caps_from_feat(ftp: &mut Ftp, feat: Feat, server: &str) -> Caps {
    let feats = match feat {
        Feat::Listed(f) => f,
        other => {
            if let Feat::Refused(_, text) = other {
                log::info!("{server} refuses FEAT ({text}); probing what is needed");
            }
            let mlsd = ftp
                .custom_command("MLST", &[Status::RequestedFileActionOk])
                .is_ok();
            return Caps {
                mlsd,
                utf8: true,
                mdtm: true,
                ..Caps::default()
            };
        }
    };
    Caps {
        mlsd: feats.contains_key("MLST"),
        utf8: feats.contains_key("UTF8"),
        epsv: false,
        rest: false,
        mdtm: feats.contains_key("MDTM"),
        mlst_opts: feats.get("MLST").map_or(0, |l| mlst_opts_from_feat(l)),
        host: feats.contains_key("HOST"),
        active: false,
        // Confirmed by `probe_transfers` once active mode is chosen.
        eprt: feats.contains_key("EPRT"),
        // Learned at login.
        asks_password: false,
        mode_z: feats.get("MODE").is_some_and(|modes| {
            modes
                .split_whitespace()
                .any(|m| m.eq_ignore_ascii_case("Z"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::conn::test_endpoint;

    #[test]
    fn host_names_the_url_host_only_when_listed_and_never_an_ip_literal() {
        let mut ep = test_endpoint();
        assert_eq!(ep.host_command(false), None);
        assert_eq!(ep.host_command(true).as_deref(), Some("ftp.example.com"));
        for ip in ["192.0.2.1", "2001:db8::1"] {
            ep.host = ip.into();
            assert_eq!(ep.host_command(true), None, "{ip}");
        }
        ep.dialogue.host = Some("site-b.example".into());
        assert_eq!(ep.host_command(false).as_deref(), Some("site-b.example"));
    }
}
