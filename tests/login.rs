//! Logins in fewer round trips (issue 15), and still clean errors.
//!
//! With pipelining on, a later connection writes `USER` and `PASS` in one go (with `HOST`
//! first when the mount sends it), then its set-up with the `EPSV` of its first data
//! connection; the mount's first connection writes its `EPSV` probe with its set-up. Nothing goes behind `PASS` (libunftp answers what
//! follows `PASS` before `PASS`: src/ftp/session.rs). What this must not change:
//!
//! - a wrong password is the same clean login error (`530`, EACCES) on the first connection
//!   and on a later one, on every real server;
//! - a server that refuses `USER` or `PASS` and hangs up at once, the `PASS` written behind
//!   a refused `USER` unanswered, leaves no hang and no broken state: the next login works,
//!   still pipelined;
//! - the commands really arrive together (pyftpdlib's command log marks a command the next
//!   one arrived with, `<+>`; the scripted server records each read), and the mount works.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ftpfs::error::{Error, Op};
use ftpfs::ftp::caps::ServerInfo;
use ftpfs::ftp::conn::{Conn, Endpoint};

/// How the library reaches `server` with `password`: its TLS when it has one.
fn endpoint(server: &Server, password: &str) -> Endpoint {
    let tls = match &server.ca {
        Some(ca) => {
            ftpfs::ftp::tls::Tls::new(ftpfs::ftp::tls::TlsMode::Required, Some(ca), &[], false)
                .unwrap()
        }
        None => ftpfs::ftp::tls::Tls::off(),
    };
    let host = if server.ca.is_some() {
        &server.url_host
    } else {
        &server.host
    };
    let user = server.user.expect("a named user");
    Endpoint {
        timeout: Duration::from_secs(15),
        ..common::endpoint(host, server.port, user, password, tls)
    }
}

/// Connects and logs in as a pool does, retrying (at most twice) what the pool's retry
/// loop retries before a login: libunftp over TLS sometimes reads the TLS handshake as a
/// command (it switches to TLS in a task of its own after `234`), and the connection breaks
/// before `USER` is sent.
fn connect(ep: &Endpoint, info: &ServerInfo) -> ftpfs::error::Result<Conn> {
    let mut tries = 0;
    loop {
        tries += 1;
        match Conn::connect(ep, info, Instant::now() + Duration::from_secs(40)) {
            Err(Error::Network {
                op: Op::Connect, ..
            }) if tries < 3 => continue,
            r => return r,
        }
    }
}

/// `e` is the login refused as a login one command at a time is refused: the server's
/// `530`, EACCES, and not a timeout or a protocol error.
fn assert_login_refused(e: &Error, what: &str) {
    assert!(
        matches!(
            e,
            Error::Reply {
                op: Op::Login,
                code: 530,
                ..
            }
        ),
        "{what}: {e:?}"
    );
    assert_eq!(e.errno(), libc::EACCES, "{what}: {e}");
    assert!(!e.to_string().contains("wrong-password"), "{what}: {e}");
}

/// A connection that logged in works: `PWD` and `NOOP` are answered in step.
fn assert_usable(conn: &mut Conn, what: &str) {
    let pwd = conn
        .ftp
        .custom_command("PWD", &[suppaftp::Status::PathCreated])
        .unwrap_or_else(|e| panic!("{what}: PWD: {e}"));
    assert!(pwd.as_string().unwrap().starts_with("257"), "{what}");
    conn.ftp
        .custom_command("NOOP", &[suppaftp::Status::CommandOk])
        .unwrap_or_else(|e| panic!("{what}: NOOP: {e}"));
}

/// A wrong password, on the mount's first connection and on a later one (`USER` and `PASS`
/// written at once), is the login error; the logins around it work, and pipelining stays
/// on: a refusal is not a lost command.
fn a_wrong_password_is_a_clean_login_error_first_and_later(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let (good, bad) = (
        endpoint(&server, PASSWORD),
        endpoint(&server, "wrong-password"),
    );
    let info = ServerInfo::new(true);
    let e = connect(&bad, &info).err().expect("first login refused");
    assert_login_refused(&e, &format!("{kind:?}, first connection"));
    assert!(
        info.caps().is_none(),
        "nothing learned from a refused login"
    );
    let mut first = connect(&good, &info).unwrap();
    assert_usable(&mut first, &format!("{kind:?}, first"));
    let caps = info.caps().unwrap();
    assert!(caps.asks_password, "{kind:?}: USER was answered 331");
    let e = connect(&bad, &info).err().expect("later login refused");
    assert_login_refused(&e, &format!("{kind:?}, later connection"));
    assert!(
        info.pipelining(),
        "{kind:?}: a refusal is not a lost command"
    );
    let mut later = connect(&good, &info).unwrap();
    assert_usable(&mut later, &format!("{kind:?}, later"));
    assert!(info.pipelining(), "{kind:?}");
    first.quit();
    later.quit();
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_pure_ftpd() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::PureFtpd);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_pure_ftpd_tls() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::PureFtpdTls);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_vsftpd() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::Vsftpd);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_vsftpd_tls() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::VsftpdTls);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_proftpd() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::Proftpd);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_pyftpdlib() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::Pyftpdlib);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_unftp() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::Unftp);
}

#[test]
fn a_wrong_password_is_a_clean_login_error_first_and_later_unftp_tls() {
    a_wrong_password_is_a_clean_login_error_first_and_later(ServerKind::UnftpTls);
}

/// `(session, command line)` of the quirky server's log.
fn commands(server: &Server) -> Vec<(u32, String)> {
    server
        .command_log()
        .lines()
        .filter_map(|l| {
            let (n, cmd) = l.split_once(' ')?;
            Some((n.parse().ok()?, cmd.to_string()))
        })
        .collect()
}

/// The commands of one session, from its first up to its first listing or transfer, with
/// what `OPTS MLST` asks for left out (it does not matter here).
fn login_of(all: &[(u32, String)], session: u32) -> Vec<String> {
    all.iter()
        .filter(|(s, _)| *s == session)
        .map(|(_, c)| match c.strip_prefix("OPTS MLST ") {
            Some(facts) if facts.ends_with(" <+>") => "OPTS MLST <+>".to_string(),
            Some(_) => "OPTS MLST".to_string(),
            None => c.clone(),
        })
        .take_while(|c| !matches!(c.split(' ').next(), Some("MLSD" | "RETR" | "LIST")))
        .collect()
}

/// The mount's first connection writes `HOST` with `USER`, then `PASS`, then its set-up
/// with the `EPSV` probe; a later one writes `HOST`, `USER` and `PASS` at once, then its
/// set-up with the `EPSV` of its first data connection: every command of a write arrived
/// with the next (`<+>`) but the last. The mount reads the right site's files.
#[test]
fn a_later_connection_writes_user_and_pass_at_once_and_its_set_up_with_epsv() {
    let sites = tempfile::tempdir().unwrap();
    let default = sites.path().join("default");
    let local = sites.path().join("localhost");
    for (dir, text) in [(&default, "default\n"), (&local, "this is localhost\n")] {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("site.txt"), text).unwrap();
        std::fs::write(dir.join("big.bin"), vec![7u8; 16 << 20]).unwrap();
    }
    let Some(mut server) = Server::quirky(&default, &["mark-pipelined"], &[("localhost", &local)])
    else {
        return;
    };
    // The URL names the site: HOST from FEAT's listing.
    server.url_host = "localhost".into();
    let m = Mount::new(&server, &["connections=2"]);
    assert_eq!(
        std::fs::read_to_string(m.path().join("site.txt")).unwrap(),
        "this is localhost\n"
    );
    // A second connection, while a read holds the first.
    let mut reader = std::fs::File::open(m.path().join("big.bin")).unwrap();
    std::io::Read::read_exact(&mut reader, &mut [0u8; 1]).unwrap();
    assert_eq!(std::fs::read_dir(m.path().join("sub")).unwrap().count(), 0);
    drop(reader);
    assert!(
        wait_for(Duration::from_secs(20), || {
            let all = commands(&server);
            let sessions: std::collections::BTreeSet<u32> = all.iter().map(|(s, _)| *s).collect();
            sessions.len() >= 2
                && sessions
                    .iter()
                    .all(|s| login_of(&all, *s).iter().any(|c| c.starts_with("TYPE")))
        }),
        "two logins: {:?}",
        commands(&server)
    );
    let all = commands(&server);
    let sessions: Vec<u32> = all
        .iter()
        .map(|(s, _)| *s)
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .collect();
    let first = login_of(&all, sessions[0]);
    assert_eq!(
        &first[..first.len().min(11)],
        [
            // tls=try: refused, the login goes on on the same connection.
            "AUTH TLS",
            "FEAT",
            "HOST localhost <+>",
            "USER alice",
            "PASS ******",
            "OPTS UTF8 ON <+>",
            "OPTS MLST <+>",
            "TYPE I <+>",
            "REST 0 <+>",
            "PWD <+>",
            "EPSV",
        ],
        "{all:?}"
    );
    let later = login_of(&all, sessions[1]);
    assert_eq!(
        &later[..later.len().min(7)],
        [
            "HOST localhost <+>",
            "USER alice <+>",
            "PASS ******",
            "OPTS UTF8 ON <+>",
            "OPTS MLST <+>",
            "TYPE I <+>",
            "EPSV",
        ],
        "{all:?}"
    );
    assert!(!m.log_text().contains("one command at a time"));
}

/// A scripted server for what no real server here does on cue: it refuses `USER mallory`,
/// or a `PASS` other than `right`, with `530` and hangs up at once, what came behind
/// unanswered. Every other command gets what a login needs. It records each read as it arrived, so the test sees
/// which commands came in one write. Loopback; every wait is bounded.
struct HangUp {
    port: u16,
    /// Per connection, the commands of each read.
    reads: Arc<Mutex<Vec<Vec<Vec<String>>>>>,
}

impl HangUp {
    fn start() -> HangUp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reads = Arc::new(Mutex::new(Vec::new()));
        let r = Arc::clone(&reads);
        std::thread::spawn(move || {
            // Sessions numbered in the order they were accepted.
            for sock in listener.incoming().take(16).flatten() {
                let session = {
                    let mut all = r.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let _ = HangUp::serve(sock, &r, session);
                });
            }
        });
        HangUp { port, reads }
    }

    fn serve(
        sock: TcpStream,
        reads: &Mutex<Vec<Vec<Vec<String>>>>,
        session: usize,
    ) -> std::io::Result<()> {
        sock.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut out = sock.try_clone()?;
        let mut rd = BufReader::new(sock);
        out.write_all(b"220 scripted\r\n")?;
        let mut pasv = None;
        for _ in 0..64 {
            // One read of the socket: the commands that came together.
            let got = rd.fill_buf()?.to_vec();
            if got.is_empty() {
                return Ok(());
            }
            rd.consume(got.len());
            let text = String::from_utf8_lossy(&got).into_owned();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            reads.lock().unwrap()[session].push(lines.clone());
            for line in lines {
                let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
                let reply = match verb {
                    "FEAT" => "211-Features:\r\n UTF8\r\n211 End\r\n".to_string(),
                    "USER" if arg == "mallory" => {
                        out.write_all(b"530 Not you.\r\n")?;
                        return Ok(());
                    }
                    "USER" => "331 password please\r\n".to_string(),
                    "PASS" if arg == "right" => "230 logged in\r\n".to_string(),
                    "PASS" => {
                        out.write_all(b"530 Login incorrect.\r\n")?;
                        return Ok(());
                    }
                    "OPTS" | "TYPE" | "NOOP" => "200 ok\r\n".to_string(),
                    "REST" => "350 ok\r\n".to_string(),
                    "PWD" => "257 \"/\" is the current directory\r\n".to_string(),
                    "EPSV" => {
                        let l = TcpListener::bind("127.0.0.1:0")?;
                        let port = l.local_addr()?.port();
                        pasv = Some(l);
                        format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
                    }
                    "QUIT" => {
                        out.write_all(b"221 bye\r\n")?;
                        return Ok(());
                    }
                    _ => "502 not here\r\n".to_string(),
                };
                out.write_all(reply.as_bytes())?;
            }
        }
        drop(pasv);
        Ok(())
    }

    fn endpoint(&self, user: &str, password: &str) -> Endpoint {
        Endpoint {
            keepalive: Duration::ZERO,
            ..common::endpoint(
                "127.0.0.1",
                self.port,
                user,
                password,
                ftpfs::ftp::tls::Tls::off(),
            )
        }
    }

    fn reads(&self, session: usize) -> Vec<Vec<String>> {
        self.reads.lock().unwrap()[session].clone()
    }
}

/// A server that refuses a login with `530` and hangs up at once: a wrong password on the
/// first connection and on a later one, and on a later one an unknown user, whose `PASS`
/// went out behind the refused `USER`, unanswered. Each is the `530` (EACCES), not a
/// timeout nor a connection closed where a reply was due (the reply to that `PASS` was
/// never waited for); pipelining stays on, and the next login works. The later logins'
/// `USER` and `PASS` arrived in one read, their set-up and `EPSV` in the next; the first
/// connection's `EPSV` came with its set-up.
#[test]
fn a_server_that_hangs_up_after_refusing_a_login_gives_the_login_error_at_once() {
    let server = HangUp::start();
    let info = ServerInfo::new(true);
    let e = connect(&server.endpoint("alice", "wrong-password"), &info)
        .err()
        .expect("refused");
    assert_login_refused(&e, "first connection");
    let mut first = connect(&server.endpoint("alice", "right"), &info).unwrap();
    assert!(info.caps().unwrap().asks_password);
    let e = connect(&server.endpoint("alice", "wrong-password"), &info)
        .err()
        .expect("refused");
    assert_login_refused(&e, "later connection, wrong password");
    let e = connect(&server.endpoint("mallory", "wrong-password"), &info)
        .err()
        .expect("refused");
    assert_login_refused(&e, "later connection, unknown user");
    assert!(info.pipelining());
    let mut later = connect(&server.endpoint("alice", "right"), &info).unwrap();
    for conn in [&mut first, &mut later] {
        conn.ftp
            .custom_command("NOOP", &[suppaftp::Status::CommandOk])
            .unwrap();
    }
    let verbs = |session| -> Vec<Vec<String>> {
        server
            .reads(session)
            .into_iter()
            .map(|r| {
                r.iter()
                    .map(|l| l.split(' ').next().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(verbs(0), [vec!["FEAT"], vec!["USER"], vec!["PASS"]]);
    assert_eq!(
        verbs(1)[..4],
        [
            vec!["FEAT"],
            vec!["USER"],
            vec!["PASS"],
            vec!["OPTS", "TYPE", "REST", "PWD", "EPSV"]
        ]
    );
    assert_eq!(verbs(2), [vec!["USER", "PASS"]]);
    assert_eq!(verbs(3), [vec!["USER", "PASS"]]);
    assert_eq!(
        verbs(4)[..2],
        [vec!["USER", "PASS"], vec!["OPTS", "TYPE", "EPSV"]]
    );
}
