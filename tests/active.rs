//! Data connections through real mounts: active mode (`-o data=active`, and `auto` against a
//! server that refuses passive mode), the address check on the active listener, the accept's
//! deadline, and `data=passive` against a server without passive mode.
//!
//! Servers without passive mode, or with a third party racing them, are pyftpdlib with a
//! quirk of tests/common/quirky_ftpd.py (`--quirk=`); their command logs say what was sent.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `offset.bin` of [`served`], which [`use_the_mount`] reads at an offset.
fn offset_file() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 13 % 253) as u8).collect()
}

/// A served directory: the sample tree and `offset.bin`.
fn served() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    std::fs::write(data.path().join("offset.bin"), offset_file()).unwrap();
    data
}

fn quirky(quirk: &str) -> Option<(tempfile::TempDir, Server)> {
    let data = served();
    let server = Server::quirky(data.path(), &[quirk], &[])?;
    Some((data, server))
}

/// What every active-mode mount must do: `cp` in, `cat`, `ls -lR`, append, overwrite, a read
/// at an offset (`REST`), rename, mkdir; checked against the server's directory.
fn use_the_mount(m: &Path, data: &Path) {
    // A read at an offset of a file never read before (the page cache would answer): dd
    // seeks, the kernel reads from there, ftpfs sends REST.
    let body = offset_file();
    let tail = sh(
        m,
        "dd if=offset.bin bs=1000 skip=250 count=3 status=none | od -An -tu1 | head -1",
    );
    let expect: Vec<String> = body[250_000..250_016]
        .iter()
        .map(|b| b.to_string())
        .collect();
    assert_eq!(
        tail.split_whitespace().collect::<Vec<_>>(),
        expect,
        "bytes at 250000"
    );

    let src = tempfile::NamedTempFile::new().unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.path(), &body).unwrap();
    sh(m, &format!("cp {} copied.bin", src.path().display()));
    assert_eq!(std::fs::read(data.join("copied.bin")).unwrap(), body);
    assert_eq!(std::fs::read(m.join("copied.bin")).unwrap(), body);
    let cat = Command::new("cat")
        .arg(m.join("copied.bin"))
        .output()
        .unwrap();
    assert_eq!(cat.stdout, body, "cat");

    let tree = sh(m, "ls -lR");
    for name in ["copied.bin", "dir", "nested"] {
        assert!(tree.contains(name), "ls -lR lacks {name}:\n{tree}");
    }

    sh(
        m,
        "printf 'one\\n' > notes.txt && printf 'two\\n' >> notes.txt",
    );
    assert_eq!(
        std::fs::read_to_string(data.join("notes.txt")).unwrap(),
        "one\ntwo\n"
    );
    sh(m, "printf 'new\\n' > notes.txt");
    assert_eq!(
        std::fs::read_to_string(data.join("notes.txt")).unwrap(),
        "new\n"
    );
    sh(m, "mv notes.txt renamed.txt && mkdir made");
    assert!(data.join("renamed.txt").is_file() && !data.join("notes.txt").exists());
    assert!(data.join("made").is_dir());
    assert_eq!(
        std::fs::read_to_string(m.join("renamed.txt")).unwrap(),
        "new\n"
    );
}

/// The issue's "done when": a server that refuses passive mode is mounted (default
/// `data=auto`) and used through active mode, with one warning saying so.
#[test]
fn a_server_refusing_passive_mode_is_mounted_in_active_mode_and_used() {
    let Some((data, server)) = quirky("active-only") else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_the_mount(m.path(), data.path());

    let log = m.log_text();
    assert_eq!(
        log.matches("using active data connections").count(),
        1,
        "one warning for the mount:\n{log}"
    );
    assert!(log.contains("refuses passive mode (EPSV: 500"), "{log}");
    let commands = commands_of(&server);
    let count = |verb: &str| count_of(&commands, verb);
    // Asked once each, at the first connection; every transfer then went through EPRT,
    // which pyftpdlib lists in FEAT (one more EPRT was the first connection's question).
    assert_eq!((count("EPSV"), count("PASV")), (1, 1), "{commands}");
    assert!(count("EPRT") >= 9, "{commands}");
    assert_eq!(count("PORT"), 0, "{commands}");
    assert!(
        commands
            .lines()
            .any(|l| l.starts_with("REST ") && l != "REST 0"),
        "a REST at an offset: {commands}"
    );
    // The `>>` goes up as APPE, or as a whole STOR when the kernel's release of the `>`
    // before it has not come yet (the spool is still open): both are right, and the
    // content is checked above; which one is a matter of timing.
    assert!(count("APPE") + count("STOR") >= 3, "{commands}");
}

/// `data=passive` never switches: the server without passive mode refuses the mount, with
/// both replies and the option that would work, exit 1, nothing left mounted or running.
#[test]
fn data_passive_refuses_a_server_without_passive_mode_and_names_data_active() {
    let Some((_data, server)) = quirky("active-only") else {
        return;
    };
    let mnt = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = ftpfs()
        .args(["mount", "-o", "data=passive", "-o"])
        .arg(format!("spool_dir={}", state.path().join("s").display()))
        .arg("-o")
        .arg(format!("recovery_dir={}", state.path().join("r").display()))
        .arg(server.url())
        .arg(mnt.path())
        .env("FTPFS_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        exits_within(&mut child, Duration::from_secs(30)),
        "mount exits"
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "ftpfs: 127.0.0.1:{}: refuses passive mode (EPSV: 500 Command \"EPSV\" not understood., PASV: 500 Command \"PASV\" not understood.), and data=passive forbids active mode; mount with -o data=active or data=auto",
            server.port
        )),
        "{err}"
    );
    assert_eq!(
        err.matches("refuses passive").count(),
        1,
        "said once: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!is_mounted(mnt.path()));
    assert!(!commands_of(&server).contains("PORT"));
}

/// `data=active` on a server that has passive mode too: no EPSV or PASV is sent at all.
#[test]
fn data_active_on_pyftpdlib_never_asks_for_passive_mode() {
    let Some((data, server)) = quirky("plain") else {
        return;
    };
    let m = Mount::new(&server, &["data=active"]);
    use_the_mount(m.path(), data.path());
    let commands = commands_of(&server);
    assert!(
        !commands.contains("EPSV") && !commands.contains("PASV"),
        "{commands}"
    );
    assert!(commands.contains("EPRT |1|127.0.0.1|"), "{commands}");
    assert!(!m.log_text().contains("using active data connections"));
}

/// `data=active` on pure-ftpd: the same use of the mount, every data connection accepted
/// from the server (suppaftp logs each listener at debug level).
#[test]
fn data_active_on_pure_ftpd_copies_lists_appends_and_reads_at_offsets() {
    let data = served();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["data=active"]);
    use_the_mount(m.path(), data.path());
    let log = m.log_text();
    assert!(
        log.contains("Active mode, listening on 127.0.0.1:"),
        "{log}"
    );
    assert!(
        !log.contains("Running EPSV") && !log.contains("EPSV command"),
        "{log}"
    );
}

/// A third party (from 127.0.0.2) reaches the active listener before the server, on every
/// PORT, and sends bytes: its connection is closed and logged, and only the server's bytes
/// are read, for files and listings alike.
#[test]
fn a_data_connection_from_another_address_is_refused_and_its_bytes_never_read() {
    let Some((data, server)) = quirky("active-only,intruder") else {
        return;
    };
    let body = b"the server's own bytes\n".repeat(1000);
    std::fs::write(data.path().join("f.txt"), &body).unwrap();
    let m = Mount::new(&server, &[]);
    let names = sh(m.path(), "ls -a");
    assert!(!names.contains("INTRUDER"), "{names}");
    assert!(names.contains("dir"), "{names}");
    assert_eq!(std::fs::read(m.path().join("f.txt")).unwrap(), body);
    let log = m.log_text();
    assert!(
        log.contains("unexpected 127.0.0.2:"),
        "the refused connection is logged:\n{log}"
    );
}

/// A server that answers PORT and the transfer command and never connects: the listing
/// fails with ETIMEDOUT within `timeout` (plus the retry policy), not a hang.
#[test]
fn a_server_that_never_connects_back_gives_etimedout_within_the_deadline() {
    let Some((_data, server)) = quirky("active-only,never-connects") else {
        return;
    };
    let m = Mount::new(&server, &["timeout=2", "retries=0"]);
    let start = Instant::now();
    let r = std::fs::read_dir(m.path()).and_then(|d| d.collect::<Result<Vec<_>, _>>());
    let took = start.elapsed();
    let e = r.expect_err("a listing without a data connection");
    assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT), "{e}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "waited the timeout: {took:?}"
    );
}

/// A server whose passive ports a firewall rejects (it answers EPSV with a port where nothing
/// listens): `data=auto` finds out at the first connection, warns once, and uses active mode.
#[test]
fn a_server_whose_passive_port_cannot_be_reached_is_used_in_active_mode() {
    let Some((data, server)) = quirky("passive-unreachable") else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_the_mount(m.path(), data.path());
    let log = m.log_text();
    assert_eq!(
        log.matches("a passive data connection to 127.0.0.1:")
            .count(),
        1,
        "one warning:\n{log}"
    );
    assert!(log.contains("using active data connections"), "{log}");
    let commands = commands_of(&server);
    let count = |verb: &str| count_of(&commands, verb);
    assert_eq!((count("EPSV"), count("PASV")), (1, 0), "{commands}");
    assert!(count("EPRT") >= 8, "{commands}");
}

/// `data=auto` against a server with working passive mode stays passive: no PORT, no
/// warning, and the test connection made at the first connection did not disturb it.
#[test]
fn data_auto_keeps_passive_mode_where_it_works() {
    let Some((data, server)) = quirky("plain") else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_the_mount(m.path(), data.path());
    let commands = commands_of(&server);
    assert!(
        !commands.contains("PORT") && !commands.contains("EPRT"),
        "{commands}"
    );
    let epsv = commands.lines().filter(|l| l.starts_with("EPSV")).count();
    assert!(epsv >= 8, "{commands}");
    let log = m.log_text();
    assert!(!log.contains("active data connections"));
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") && !l.contains("no TLS"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// `data=active` on proftpd (which refuses `APPE`: appends upload the whole file), counted
/// from its command log: every transfer after a PORT or EPRT, no EPSV or PASV.
#[test]
fn data_active_on_proftpd_announces_a_listener_for_every_transfer() {
    let data = served();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["data=active"]);
    use_the_mount(m.path(), data.path());
    let commands = server.command_log();
    let count = |verb: &str| count_of(&commands, verb);
    assert_eq!((count("EPSV"), count("PASV")), (0, 0), "{commands}");
    let transfers: usize = ["RETR", "STOR", "APPE", "MLSD", "LIST"]
        .iter()
        .map(|c| count(c))
        .sum();
    assert!(transfers >= 6, "{commands}");
    assert!(count("PORT") + count("EPRT") >= transfers, "{commands}");
}

/// A server that lists `EPRT` in `FEAT` and refuses it: asked once, at the first
/// connection, said once in the log, and every transfer announced with `PORT`.
#[test]
fn eprt_listed_but_refused_is_asked_once_then_port_announces_every_transfer() {
    let Some((data, server)) = quirky("active-only,eprt-refused") else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_the_mount(m.path(), data.path());
    let commands = commands_of(&server);
    let count = |verb: &str| count_of(&commands, verb);
    assert_eq!(count("EPRT"), 1, "{commands}");
    assert!(count("PORT") >= 8, "{commands}");
    let log = m.log_text();
    assert_eq!(
        log.matches("lists EPRT but refuses it (500").count(),
        1,
        "{log}"
    );
}

/// `active_addr=` and `active_ports=`: every announcement names that address and a port of
/// that range, and the server's data connections reach the listener there (127.0.0.3 is
/// one of this machine's addresses, so ftpfs listens on it; the control connection is
/// 127.0.0.1 to 127.0.0.1, so a listener on the control address would not be reached).
/// pyftpdlib normally refuses an address other than the client's, as servers do against
/// FTP bounce attacks; behind NAT the announced address is the one the server sees, which
/// `permit-foreign` stands in for here.
#[test]
fn active_addr_and_active_ports_are_announced_and_the_server_connects_there() {
    let Some((data, server)) = quirky("permit-foreign") else {
        return;
    };
    let free = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
    let base = free.local_addr().unwrap().port().min(65535 - 9);
    drop(free);
    let (low, high) = (base, base + 9);
    let m = Mount::new(
        &server,
        &[
            "data=active",
            "active_addr=127.0.0.3",
            &format!("active_ports={low}:{high}"),
        ],
    );
    use_the_mount(m.path(), data.path());
    let commands = commands_of(&server);
    let announced: Vec<&str> = commands
        .lines()
        .filter_map(|l| l.strip_prefix("EPRT "))
        .collect();
    assert!(announced.len() >= 9, "{commands}");
    assert_eq!(count_of(&commands, "PORT"), 0, "{commands}");
    for a in announced {
        let port: u16 = a
            .strip_prefix("|1|127.0.0.3|")
            .and_then(|p| p.strip_suffix('|'))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("announced {a:?}"));
        assert!((low..=high).contains(&port), "{port} outside {low}:{high}");
    }
}

/// IPv6: a server on `::1` without passive mode is mounted in active mode, and every
/// listener is announced with `EPRT |2|::1|PORT|` (`PORT` cannot carry an IPv6 address).
#[test]
fn an_ipv6_server_without_passive_mode_gets_eprt_with_an_ipv6_address() {
    let data = served();
    let Some(server) = Server::quirky_ipv6(data.path(), &["active-only"]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_the_mount(m.path(), data.path());
    let commands = commands_of(&server);
    let announced: Vec<&str> = commands
        .lines()
        .filter_map(|l| l.strip_prefix("EPRT "))
        .collect();
    assert!(announced.len() >= 9, "{commands}");
    assert!(
        announced.iter().all(|a| a.starts_with("|2|::1|")),
        "{commands}"
    );
    assert_eq!(count_of(&commands, "PORT"), 0, "{commands}");
}

/// The commands a quirky pyftpdlib received, one `COMMAND ARGUMENT` line each (its log
/// starts every line with the session's number; proftpd's does not).
fn commands_of(server: &Server) -> String {
    server
        .command_log()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// How many lines of a `COMMAND ARGUMENT` log start with `verb`.
fn count_of(commands: &str, verb: &str) -> usize {
    commands
        .lines()
        .filter(|l| l.split(' ').next() == Some(verb))
        .count()
}
