//! The login and the commands that set a new session up, in as few round trips as can be.
//!
//! A login is `USER`, `PASS`, then commands that only prepare the session: `OPTS UTF8 ON`,
//! `OPTS MLST`, `TYPE I`, and on the mount's first connection the `REST` probe, `PWD` (the
//! mounted root is found from the home directory) and the `EPSV` probe (see
//! [`super::active`]). Sent one at a time they cost a round trip each: at 50 ms of
//! round-trip time, a quarter of a second of every mount and of every new connection, on
//! the critical path of a walk that opens connections as it goes. With pipelining on they
//! are written in groups and the replies of a group read after it, in order (RFC 959
//! answers commands in the order it gets them):
//!
//! - a later connection, when the first login showed that the server asks for a password
//!   (`331` to `USER`, [`Caps::asks_password`]): `HOST` (when needed), `USER` and `PASS` in
//!   one write, then the set-up with an `EPSV` (passive mode) in another, whose data
//!   connection is opened at once for the first transfer (see `open_ahead` in
//!   [`super::conn`]): two round trips where `USER`, `PASS`, the set-up and the first
//!   transfer's `EPSV` took four;
//! - the mount's first connection: `HOST` with `USER` (what comes next depends on its
//!   answer, `331` or `230`), `PASS`, then the set-up with the `EPSV` probe.
//!
//! On every connection a `HOST` named by `-o host=` goes alone, before anything of the
//! login, so that no login goes to another site when it is refused.
//!
//! Nothing is written behind `PASS`: libunftp checks a password in a task of its own and
//! answers the commands that came after `PASS` before `PASS` itself (`200 Always in UTF-8
//! mode` to `OPTS UTF8 ON` was read as the answer to a wrong password; a set-up command
//! may get `530` for coming before the login ended). A reply cannot say which command it
//! answers, so the set-up waits for `230`. The set-up commands
//! are known before login only when `FEAT` listed the features; a server that refused
//! `FEAT` gets them after its answers are probed (see [`super::conn`]).
//!
//! Replies are read by [`super::reply::read_reply`] and judged as each command always was:
//!
//! - `HOST` (RFC 7151): refused, it fails the login when the name came from `-o host=` (the
//!   user asked for that site, and another one must not be written to), else it leaves the
//!   server's default site, as before `HOST` was sent, with a warning, and later connections
//!   do not send it.
//! - `USER`: `331` wants `PASS`; `230` is logged in already, and the reply to a `PASS`
//!   written behind it is read and ignored; anything else refuses the login.
//! - `PASS`: `230`, or the login is refused.
//! - `OPTS UTF8 ON`: servers that list `UTF8` but refuse `OPTS` still speak it; ignored.
//! - `OPTS MLST`: a refusal leaves the server's default facts, which still list; logged.
//! - `TYPE I`: `200`, or `250` from some servers; anything else fails the connection.
//! - `REST 0`: `350` means the server resumes transfers (`caps.rest`); the offset is 0, so
//!   whatever the server keeps of it changes no transfer.
//! - `PWD`: the home directory ([`super::reply::pwd_path`]); when the reply names none, the
//!   mount asks again itself and reports it (see `FtpRemote::connect`).
//! - `EPSV`: on the first connection its reply is handed to [`super::active::choose`], which
//!   decides from it as if it had sent the command itself (a refusal still goes on to
//!   `PASV`, then active mode); on a later one a refusal only means no data connection
//!   ahead.
//!
//! A refused login (`530` to `USER` or `PASS`, `421` from a server at its limit) ends the
//! reading there: the reply to a `PASS` written behind a refused `USER` (`530` again, or
//! nothing from a server that hangs up) is never read, and the connection is dropped, so
//! nothing can be read out of step. The error is the one a login one command at a time
//! gives. The password never reaches a log line: the trace of a write shows `PASS ****`.
//!
//! A server that loses pipelined commands (no reply comes after the first, or the connection
//! breaks meanwhile) costs one reply timeout here: pipelining is turned off for the mount and
//! [`super::conn::Conn::connect`] logs in again, one command at a time. With `-o
//! pipelining=off`, or once pipelining is off, every command waits for its reply.

use super::active::EpsvAnswer;
use super::caps::{mlst_opts_command, Caps, ServerInfo};
use super::conn::{Endpoint, Ftp};
use super::reply::{self, Reply};
use crate::error::{Error, Op, Result};
use std::time::Instant;

/// What the set-up commands answered that the caller needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SetUp {
    /// The answer to the `REST 0` probe, when it was asked.
    pub rest: Option<bool>,
    /// The home directory, when `PWD` was asked and its reply named one.
    pub home: Option<String>,
}

/// What a login (with the set-up commands written with it) answered.
#[derive(Debug, Default)]
pub(super) struct Login {
    /// `HOST` with the URL's own name was refused: the default site, and later connections
    /// do not send it.
    pub host_refused: bool,
    /// `USER` was answered `331`: the server asks for a password.
    pub asked_password: bool,
    /// The set-up's answers, when the set-up commands went with the login (`None`: the
    /// caller sends them, with [`set_up`]).
    pub set_up: Option<SetUp>,
    /// The answer to the `EPSV` probe, when it went with the login.
    pub epsv: Option<EpsvAnswer>,
    /// `USER` was answered `230`: the reply to a `PASS` behind it means nothing.
    logged_in_by_user: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Host,
    User,
    Pass,
    Utf8,
    MlstOpts,
    TypeI,
    Rest,
    Pwd,
    Epsv,
}

impl Cmd {
    fn op(self) -> Op {
        match self {
            Cmd::Host | Cmd::User | Cmd::Pass => Op::Login,
            _ => Op::Connect,
        }
    }
}

/// The set-up commands of a session with `caps`; `first`: the mount's first connection,
/// which also probes `REST` and asks `PWD`; `epsv`: and `EPSV` last (the first
/// connection's probe, a later one's data connection opened ahead).
fn commands(caps: &Caps, first: bool, epsv: bool) -> Vec<(Cmd, String)> {
    let mut cmds = Vec::with_capacity(6);
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
    if epsv {
        cmds.push((Cmd::Epsv, "EPSV".to_string()));
    }
    cmds
}

/// A command as a log line may show it: `PASS ****`.
fn shown(cmd: Cmd, line: &str) -> &str {
    if cmd == Cmd::Pass {
        "PASS ****"
    } else {
        line
    }
}

/// Logs in on `ftp` (greeted, `FEAT` asked) and, where they can go with it, sends the
/// set-up commands of a session with `caps` (`None`: not known before login, the caller
/// sends them). `host`: the `HOST` name to send first; `first`: the mount's first
/// connection; `epsv`: its `EPSV` probe may go with the set-up (see the module's
/// documentation).
pub(super) fn log_in(
    ftp: &Ftp,
    info: &ServerInfo,
    ep: &Endpoint,
    host: Option<&str>,
    caps: Option<&Caps>,
    first: bool,
    epsv: bool,
) -> Result<Login> {
    let mut got = Login::default();
    let mut cmds = Vec::with_capacity(9);
    if let Some(name) = host {
        cmds.push((Cmd::Host, format!("HOST {name}")));
        // A site the user named (`-o host=`) is confirmed before anything of the login
        // goes out, on every connection: a refusal must log in nowhere, even when an
        // earlier connection was accepted (one round trip more, only with `-o host=`).
        if ep.dialogue.host.is_some() {
            run(ftp, info, ep, &cmds, &mut got)?;
            cmds.clear();
        }
    }
    cmds.push((Cmd::User, format!("USER {}", ep.user)));
    let pass = (Cmd::Pass, format!("PASS {}", ep.password.expose()));
    // A later connection whose server asked for a password at the first login: `PASS`
    // goes with `USER`, nothing behind it (see the module's documentation).
    let with_user = info.pipelining() && !first && caps.is_some_and(|c| c.asks_password);
    if with_user {
        cmds.push(pass.clone());
    }
    run(ftp, info, ep, &cmds, &mut got)?;
    if got.asked_password && !with_user {
        run(ftp, info, ep, &[pass], &mut got)?;
    }
    if let Some(c) = caps {
        let pipelined = info.pipelining();
        run(
            ftp,
            info,
            ep,
            &commands(c, first, epsv && pipelined),
            &mut got,
        )?;
    }
    if caps.is_some() {
        got.set_up.get_or_insert_with(SetUp::default);
    }
    Ok(got)
}

/// Sends the set-up commands of a logged-in session (see the module's documentation) and
/// judges their replies: after a login whose set-up was not known before it.
pub(super) fn set_up(
    ftp: &Ftp,
    info: &ServerInfo,
    ep: &Endpoint,
    caps: &Caps,
    first: bool,
) -> Result<SetUp> {
    let mut got = Login::default();
    run(ftp, info, ep, &commands(caps, first, false), &mut got)?;
    Ok(got.set_up.unwrap_or_default())
}

/// Sends `cmds`, written at once when pipelining is on, and judges each reply as it comes
/// ([`judge`]); the first refusal ends the reading (see the module's documentation).
fn run(
    ftp: &Ftp,
    info: &ServerInfo,
    ep: &Endpoint,
    cmds: &[(Cmd, String)],
    got: &mut Login,
) -> Result<()> {
    let Some(&(head, _)) = cmds.first() else {
        return Ok(());
    };
    // A round trip of commands the server answers without work of its own (not a login's,
    // `Op::Login`: checking a password can take long) measures the link (see
    // `ServerInfo::prepare_ahead`).
    if !(info.pipelining() && cmds.len() > 1) {
        for (cmd, line) in cmds {
            log::trace!("CC OUT (direct): {}", shown(*cmd, line));
            let op = cmd.op();
            let since = Instant::now();
            let reply = reply::exchange(ftp, format!("{line}\r\n").as_bytes(), op, |r| {
                reply::read_reply(r, op)
            })?;
            if op == Op::Connect {
                info.control_replied(since.elapsed());
            }
            log::trace!("CC IN (direct): {}", reply.text());
            judge(*cmd, line, reply, got, ep)?;
        }
        return Ok(());
    }
    let out: String = cmds.iter().map(|(_, c)| format!("{c}\r\n")).collect();
    log::trace!(
        "CC OUT (pipelined): {}",
        cmds.iter()
            .map(|(cmd, line)| shown(*cmd, line))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let (mut read, mut refused) = (0, false);
    let since = Instant::now();
    let result = reply::exchange(ftp, out.as_bytes(), head.op(), |r| {
        for (cmd, line) in cmds {
            let reply = reply::read_reply(r, cmd.op())?;
            read += 1;
            log::trace!("CC IN (pipelined): {}", reply.text());
            judge(*cmd, line, reply, got, ep).inspect_err(|_| refused = true)?;
        }
        Ok(())
    });
    if result.is_ok() && cmds.iter().all(|(c, _)| c.op() == Op::Connect) {
        info.control_replied(since.elapsed());
    }
    // The first reply is owed whether or not anything was written behind its command: only
    // a later one that does not come is the pipelining's fault.
    if let Err(e) = &result {
        if !refused && read > 0 {
            info.no_pipelining(
                &format!("the commands of a login went unanswered ({e})"),
                &ep.display(),
            );
        }
    }
    result
}

/// A reply's words after its code, as errors and log lines give them
/// ([`crate::error::reply_text`]).
fn words(reply: &Reply) -> String {
    crate::error::reply_text(reply.lines.join("\n").as_bytes())
}

/// A refusal of the login, worded as a refusal one command at a time is.
fn refused(op: Op, reply: &Reply) -> Error {
    Error::Reply {
        op,
        code: reply.code,
        text: words(reply),
    }
}

/// Judges the reply to one command (see the module's documentation); `Err` ends the login.
fn judge(cmd: Cmd, line: &str, reply: Reply, got: &mut Login, ep: &Endpoint) -> Result<()> {
    match (cmd, reply.code) {
        (Cmd::Host, 200 | 220) => {}
        (Cmd::Host, _) if ep.dialogue.host.is_none() => {
            log::warn!(
                "{}: {line} refused ({} {}); logging in to the default site",
                ep.display(),
                reply.code,
                words(&reply)
            );
            got.host_refused = true;
        }
        (Cmd::User, 331) => got.asked_password = true,
        (Cmd::User, 230) => got.logged_in_by_user = true,
        (Cmd::Pass, _) if got.logged_in_by_user => {
            log::debug!("PASS after a USER that logged in: {}", reply.text())
        }
        (Cmd::Pass, 230) => {}
        (Cmd::Host | Cmd::User | Cmd::Pass, _) => return Err(refused(Op::Login, &reply)),
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
        (Cmd::Rest, code) => got.set_up.get_or_insert_with(SetUp::default).rest = Some(code == 350),
        (Cmd::Pwd, 257) => {
            got.set_up.get_or_insert_with(SetUp::default).home =
                reply::pwd_path(&reply.lines.join("\n"))
        }
        (Cmd::Pwd, _) => log::debug!("{line}: {}", reply.text()),
        (Cmd::Epsv, 229) => got.epsv = Some(Ok(reply.lines.join("\n"))),
        (Cmd::Epsv, code) => got.epsv = Some(Err(format!("{code} {}", words(&reply)))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Reply {
        reply::read_reply(&mut std::io::BufReader::new(s.as_bytes()), Op::Connect).unwrap()
    }

    fn endpoint() -> Endpoint {
        super::super::conn::test_endpoint()
    }

    #[test]
    fn only_the_first_connection_probes_rest_and_asks_pwd_and_epsv_goes_last() {
        let caps = Caps {
            utf8: true,
            ..Caps::default()
        };
        let verbs = |first, epsv| -> Vec<String> {
            commands(&caps, first, epsv)
                .into_iter()
                .map(|(_, c)| c)
                .collect()
        };
        assert_eq!(verbs(false, false), ["OPTS UTF8 ON", "TYPE I"]);
        assert_eq!(verbs(false, true), ["OPTS UTF8 ON", "TYPE I", "EPSV"]);
        assert_eq!(
            verbs(true, false),
            ["OPTS UTF8 ON", "TYPE I", "REST 0", "PWD"]
        );
        assert_eq!(
            verbs(true, true),
            ["OPTS UTF8 ON", "TYPE I", "REST 0", "PWD", "EPSV"]
        );
    }

    fn judge_all(cmds: &[(Cmd, String)], replies: &[&str]) -> Result<Login> {
        let mut got = Login::default();
        for ((cmd, line), r) in cmds.iter().zip(replies) {
            judge(*cmd, line, reply(r), &mut got, &endpoint())?;
        }
        Ok(got)
    }

    #[test]
    fn replies_are_judged_as_each_command_always_was() {
        let cmds = commands(
            &Caps {
                utf8: true,
                ..Caps::default()
            },
            true,
            true,
        );
        let got = judge_all(
            &cmds,
            &[
                "504 Unknown command\r\n",
                "250 binary\r\n",
                "502 no REST\r\n",
                "257 \"/home/a\" is your current location\r\n",
                "500 EPSV not understood\r\n",
            ],
        )
        .unwrap();
        assert_eq!(
            got.set_up,
            Some(SetUp {
                rest: Some(false),
                home: Some("/home/a".into())
            })
        );
        assert_eq!(got.epsv, Some(Err("500 EPSV not understood".into())));
        let refused = judge_all(&cmds, &["200 ok\r\n", "504 no binary\r\n", "350 ok\r\n"]);
        assert!(matches!(refused, Err(Error::Reply { code: 504, .. })));
    }

    #[test]
    fn a_refused_user_or_pass_is_the_login_error_and_a_pass_after_230_is_ignored() {
        let login = [
            (Cmd::User, "USER alice".to_string()),
            (Cmd::Pass, "PASS pw".to_string()),
            (Cmd::TypeI, "TYPE I".to_string()),
        ];
        let e = judge_all(
            &login,
            &[
                "331 password\r\n",
                "530 Login incorrect.\r\n",
                "530 first\r\n",
            ],
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Reply { op: Op::Login, code: 530, text } if text == "Login incorrect."),
            "{e:?}"
        );
        assert_eq!(e.errno(), libc::EACCES);
        let e = judge_all(&login, &["530 no such user\r\n"]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Reply {
                    op: Op::Login,
                    code: 530,
                    ..
                }
            ),
            "{e:?}"
        );
        let got = judge_all(
            &login,
            &[
                "230 anonymous ok\r\n",
                "503 already logged in\r\n",
                "200 ok\r\n",
            ],
        )
        .unwrap();
        assert!(!got.asked_password);
    }

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(shown(Cmd::Pass, "PASS hunter22"), "PASS ****");
        assert_eq!(shown(Cmd::User, "USER alice"), "USER alice");
    }
}
