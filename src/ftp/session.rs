//! The commands that set a new session up after login, written at once.
//!
//! A login is followed by commands that only prepare the session: `OPTS UTF8 ON`, `OPTS
//! MLST`, `TYPE I`, and on the mount's first connection the `REST` probe and `PWD` (the
//! mounted root is found from the home directory). None depends on another's answer, yet
//! sent one at a time they cost a round trip each: at 50 ms of round-trip time, a quarter of
//! a second of every mount and of every new connection. With pipelining on they are written
//! in one go and their replies read after, in order (RFC 959 answers commands in the order
//! it gets them); with `-o pipelining=off`, or once the server lost pipelined commands, one
//! at a time. Either way the replies are read by [`super::reply::read_reply`] and judged as
//! each command always was:
//!
//! - `OPTS UTF8 ON`: servers that list `UTF8` but refuse `OPTS` still speak it; ignored.
//! - `OPTS MLST`: a refusal leaves the server's default facts, which still list; logged.
//! - `TYPE I`: `200`, or `250` from some servers; anything else fails the connection.
//! - `REST 0`: `350` means the server resumes transfers (`caps.rest`). It no longer follows
//!   the `EPSV` probe, which needs no `REST` before it; the offset is 0, so whatever the
//!   server keeps of it changes no transfer.
//! - `PWD`: the home directory ([`super::reply::pwd_path`]); when the reply names none, the
//!   mount asks again itself and reports it (see `FtpRemote::connect`).
//!
//! Not written with them: `USER` and `PASS` (`PASS` goes only where the server asked for
//! it, and a server may close after a refused `USER`), `HOST` and `FEAT` (what follows
//! depends on them), and the `EPSV` probe (its answer decides between passive and active
//! mode, see [`super::active`]).
//!
//! A server that loses pipelined commands (no reply comes, or a connection that breaks
//! meanwhile) costs one reply timeout here: pipelining is turned off for the mount and
//! [`super::conn::Conn::connect`] logs in again, one command at a time.

use super::caps::{mlst_opts_command, Caps, ServerInfo};
use super::conn::Ftp;
use super::reply::{self, Reply};
use crate::error::{Error, Op, Result};

/// What the set-up commands answered that the caller needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SetUp {
    /// The answer to the `REST 0` probe, when it was asked.
    pub rest: Option<bool>,
    /// The home directory, when `PWD` was asked and its reply named one.
    pub home: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Utf8,
    MlstOpts,
    TypeI,
    Rest,
    Pwd,
}

/// The set-up commands of a session with `caps`; `first`: the mount's first connection,
/// which also probes `REST` and asks `PWD`.
fn commands(caps: &Caps, first: bool) -> Vec<(Cmd, String)> {
    let mut cmds = Vec::with_capacity(5);
    if caps.utf8 {
        cmds.push((Cmd::Utf8, "OPTS UTF8 ON".to_string()));
    }
    if caps.mlst_opts != 0 {
        cmds.push((Cmd::MlstOpts, mlst_opts_command(caps.mlst_opts)));
    }
    cmds.push((Cmd::TypeI, "TYPE I".to_string()));
    if first {
        cmds.push((Cmd::Rest, "REST 0".to_string()));
        cmds.push((Cmd::Pwd, "PWD".to_string()));
    }
    cmds
}

/// Sends the set-up commands of a logged-in session (see the module's documentation) and
/// judges their replies. `server` names the server in log lines.
pub(super) fn set_up(
    ftp: &Ftp,
    info: &ServerInfo,
    caps: &Caps,
    first: bool,
    server: &str,
) -> Result<SetUp> {
    let cmds = commands(caps, first);
    let op = Op::Connect;
    let replies: Vec<Reply> = if info.pipelining() && cmds.len() > 1 {
        let out: String = cmds.iter().map(|(_, c)| format!("{c}\r\n")).collect();
        log::trace!(
            "CC OUT (pipelined): {}",
            out.trim_end().replace("\r\n", "; ")
        );
        let read = |r: &mut dyn std::io::BufRead| {
            cmds.iter()
                .map(|_| reply::read_reply(r, op))
                .collect::<Result<Vec<_>>>()
        };
        reply::exchange(ftp, out.as_bytes(), op, read).inspect_err(|e| {
            info.no_pipelining(
                &format!("the commands after login went unanswered ({e})"),
                server,
            )
        })?
    } else {
        cmds.iter()
            .map(|(_, c)| reply::ask(ftp, c, op))
            .collect::<Result<Vec<_>>>()?
    };
    judge(&cmds, replies)
}

fn judge(cmds: &[(Cmd, String)], replies: Vec<Reply>) -> Result<SetUp> {
    let mut got = SetUp::default();
    for ((cmd, line), reply) in cmds.iter().zip(replies) {
        match (cmd, reply.code) {
            (Cmd::Utf8, _) => {}
            (Cmd::MlstOpts, 200) => {}
            (Cmd::MlstOpts, _) => log::debug!("{line}: {}", reply.text()),
            (Cmd::TypeI, 200 | 250) => {}
            (Cmd::TypeI, code) => {
                return Err(Error::Reply {
                    op: Op::Connect,
                    code,
                    text: reply.text(),
                })
            }
            (Cmd::Rest, code) => got.rest = Some(code == 350),
            (Cmd::Pwd, 257) => got.home = reply::pwd_path(&reply.lines.join("\n")),
            (Cmd::Pwd, _) => log::debug!("{line}: {}", reply.text()),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Reply {
        reply::read_reply(&mut std::io::BufReader::new(s.as_bytes()), Op::Connect).unwrap()
    }

    #[test]
    fn only_the_first_connection_probes_rest_and_asks_pwd() {
        let caps = Caps {
            utf8: true,
            ..Caps::default()
        };
        let verbs =
            |first| -> Vec<String> { commands(&caps, first).into_iter().map(|(_, c)| c).collect() };
        assert_eq!(verbs(false), ["OPTS UTF8 ON", "TYPE I"]);
        assert_eq!(verbs(true), ["OPTS UTF8 ON", "TYPE I", "REST 0", "PWD"]);
    }

    #[test]
    fn replies_are_judged_as_each_command_always_was() {
        let cmds = commands(
            &Caps {
                utf8: true,
                ..Caps::default()
            },
            true,
        );
        let got = judge(
            &cmds,
            vec![
                reply("504 Unknown command\r\n"),
                reply("250 binary\r\n"),
                reply("502 no REST\r\n"),
                reply("257 \"/home/a\" is your current location\r\n"),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            SetUp {
                rest: Some(false),
                home: Some("/home/a".into())
            }
        );
        let refused = judge(
            &cmds,
            vec![
                reply("200 ok\r\n"),
                reply("504 no binary\r\n"),
                reply("350 ok\r\n"),
                reply("257 \"/\"\r\n"),
            ],
        );
        assert!(matches!(refused, Err(Error::Reply { code: 504, .. })));
    }
}
