//! Fewer round trips per operation (issue 15), through real mounts of pyftpdlib, whose
//! command log (tests/common/quirky_ftpd.py) says which session sent what, and with
//! `mark-pipelined`, which commands arrived together:
//!
//! - data connections are opened ahead, between operations: a read then costs its `RETR`
//!   alone;
//! - `REST` goes out with its `RETR`;
//! - a connection without a data connection opened ahead (one a walk ahead takes back at
//!   once) sends `EPSV` with its transfer command;
//! - `-o pipelining=off` sends one command at a time and opens nothing ahead;
//! - on a link measured faster than 1 ms (loopback, `FTPFS_TEST_PREPARE=0` here), nothing
//!   is opened ahead either, but `EPSV` still goes with its transfer command;
//! - a refused `AUTH TLS` (`tls=try`) goes on in plain on the same connection;
//! - no passive data connection is opened and left unused before the next one.
//!
//! Round trips, not seconds: counted from the order of commands, they hold on a busy machine.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `(session, command line)` of the quirky server's log, from line `from` on.
fn commands(server: &Server, from: usize) -> Vec<(u32, String)> {
    server
        .command_log()
        .lines()
        .skip(from)
        .filter_map(|l| {
            let (n, cmd) = l.split_once(' ')?;
            Some((n.parse().ok()?, cmd.to_string()))
        })
        .collect()
}

fn verb(cmd: &str) -> &str {
    cmd.split(' ').next().unwrap_or("")
}

/// A served directory: `f.txt` and `offset.bin`.
fn served() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("f.txt"),
        b"hello from the server\n".repeat(5000),
    )
    .unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(data.path().join("offset.bin"), body).unwrap();
    data
}

/// Reads 3000 bytes at 250000 with `dd` (the kernel asks at an offset; ftpfs sends `REST`).
fn read_at_offset(m: &Path) -> Vec<u8> {
    let out = Command::new("dd")
        .args([
            "if=offset.bin",
            "bs=1000",
            "skip=250",
            "count=3",
            "status=none",
        ])
        .current_dir(m)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn offset_bytes() -> Vec<u8> {
    (250_000..253_000u32)
        .map(|i| (i * 13 % 253) as u8)
        .collect()
}

/// Listing the root and reading a file both find a data connection ready: neither sends
/// `EPSV` in its own path (suppaftp, patched, logs each use of a prepared one). The mount's
/// first connection keeps its passive-mode test connection for the first; after each
/// operation its connection is prepared again before it is handed out (and one more is
/// logged in ahead), so which connection serves which operation does not matter.
#[test]
fn prepared_data_connections_leave_only_the_transfer_command_in_an_operation() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["plain"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let count = |what: &str| m.log_text().matches(what).count();
    assert_eq!(count("test connection is kept for the first transfer"), 1);
    assert_eq!(count("using the prepared data connection"), 0);
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    let log = m.log_text();
    assert_eq!(
        log.matches("using the prepared data connection").count(),
        2,
        "MLSD and RETR:\n{log}"
    );
    let all = commands(&server, 0);
    assert_eq!(
        all.iter()
            .filter(|(_, c)| matches!(verb(c), "MLSD" | "RETR"))
            .count(),
        2,
        "{all:?}"
    );
}

/// A read at an offset writes `REST` and `RETR` at once: the server had `RETR` in hand
/// when it read `REST` (`<+>` in its log), and the bytes are the right ones.
#[test]
fn a_read_at_an_offset_sends_rest_and_retr_together() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    assert!(read_at_offset(m.path()) == offset_bytes());
    let all = commands(&server, 0);
    let at = all
        .iter()
        .position(|(_, c)| c.starts_with("REST ") && !c.starts_with("REST 0"))
        .unwrap_or_else(|| panic!("a REST at an offset: {all:?}"));
    let (session, rest) = &all[at];
    assert!(rest.ends_with(" <+>"), "REST arrived with RETR: {all:?}");
    let next = all[at + 1..].iter().find(|(s, _)| s == session);
    assert!(
        next.is_some_and(|(_, c)| c.starts_with("RETR /offset.bin")),
        "{all:?}"
    );
}

/// `-o pipelining=off`: one command at a time (nothing arrives with another), every
/// transfer after its own `EPSV`, nothing prepared ahead; the same bytes.
#[test]
fn pipelining_off_sends_one_command_at_a_time_and_prepares_nothing() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &["pipelining=off"]);
    assert!(read_at_offset(m.path()) == offset_bytes());
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    let all = commands(&server, 0);
    assert!(all.iter().all(|(_, c)| !c.ends_with("<+>")), "{all:?}");
    for (i, (session, c)) in all.iter().enumerate() {
        if matches!(verb(c), "RETR" | "MLSD" | "LIST" | "STOR") {
            let previous = all[..i].iter().rev().find(|(s, _)| s == session);
            let asked = previous.map(|(_, p)| verb(p));
            assert!(
                matches!(asked, Some("EPSV" | "REST")),
                "{c} after {asked:?}: {all:?}"
            );
        }
    }
    assert!(!m.log_text().contains("prepared a data connection"));
}

/// On a fast link (`FTPFS_TEST_PREPARE=0`: what a round trip under 1 ms decides) no data
/// connection is opened ahead and no connection logged in ahead for one, yet every
/// transfer still costs one round trip before its data: `EPSV`, `REST` and `RETR` arrive
/// together (a connection's first transfer uses the data connection its login opened with
/// the set-up, the mount's first connection the one of its passive-mode probe; its second
/// sends `EPSV` alone, see below). Random reads far apart in a big file, each a new stream (the old one ended on
/// the reader's path), return the file's bytes.
#[test]
fn on_a_fast_link_nothing_is_prepared_and_epsv_goes_with_the_transfer_command() {
    use std::os::unix::fs::FileExt;
    let data = served();
    let body: Vec<u8> = (0..12u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(data.path().join("big.bin"), &body).unwrap();
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new_env(&server, &[], &[("FTPFS_TEST_PREPARE", "0")]);
    let f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    for (i, at) in [10u64 << 20, 1 << 20, 11 << 20, 5 << 20, 0]
        .into_iter()
        .enumerate()
    {
        let mut got = vec![0u8; 4096];
        f.read_exact_at(&mut got, at).unwrap();
        let at = at as usize;
        assert!(got == body[at..at + 4096], "read {i} at {at}");
    }
    drop(f);
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    let log = m.log_text();
    assert!(!log.contains("prepared a data connection"), "{log}");
    let all = commands(&server, 0);
    let retrs: Vec<usize> = (0..all.len())
        .filter(|&i| verb(&all[i].1) == "RETR")
        .collect();
    assert!(retrs.len() >= 6, "a stream per far read and f.txt: {all:?}");
    // Each RETR's EPSV (and REST, at an offset) came in one write with it, or, for a
    // connection's first transfer, with its login's set-up (the data connection opened at
    // login, in the set-up's round trip; on the first connection, the passive-mode probe).
    // The one exception: the second transfer of a connection whose first used the data
    // connection of its login, as suppaftp did not read that `EPSV`'s reply itself (it
    // pipelines a passive command only after it has read one).
    let mut alone = std::collections::HashSet::new();
    for &i in &retrs {
        let session = all[i].0;
        let mut mine = all[..i].iter().rev().filter(|(s, _)| *s == session);
        let mut last = mine.next().map(|(_, c)| c.as_str());
        if last.is_some_and(|c| verb(c) == "REST") {
            // `REST 0` clearing an earlier read's offset before a read from 0 still goes
            // alone (`Conn::clear_rest`); any other offset goes with its `RETR`.
            let rest = last.unwrap();
            assert!(
                rest.ends_with("<+>") || rest == "REST 0",
                "{}: {all:?}",
                all[i].1
            );
            last = mine.next().map(|(_, c)| c.as_str());
        }
        // The command before it arrived with it: the set-up's last, not a round trip alone.
        let mut with_login = || mine.next().is_some_and(|(_, c)| c.ends_with("<+>"));
        assert!(
            last.is_some_and(|c| verb(c) == "EPSV"
                && (c.ends_with("<+>") || with_login() || alone.insert(session))),
            "{} after {last:?}: {all:?}",
            all[i].1
        );
    }
}

/// Small files uploaded one after another (as `cp -r` does): each one's bytes go out with
/// its `STOR`, on a prepared connection, and every file arrives whole. (A refused one still
/// fails with the server's reason: `writes::read_only_server_directory_gives_eacces_and_no_phantom`.)
#[test]
fn small_uploads_go_out_with_their_command_and_arrive_whole() {
    let data = served();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    for i in 0..20u32 {
        let body = format!("file {i}\n").repeat(100 + i as usize);
        std::fs::write(m.path().join(format!("small{i}.txt")), &body).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.path().join(format!("small{i}.txt"))).unwrap(),
            body
        );
    }
    // Appends (`>>`): each tail goes out with its APPE.
    let mut want = String::new();
    for i in 0..10 {
        let line = format!("appended {i}\n");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(m.path().join("log.txt"))
            .unwrap();
        std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        assert_eq!(close(f), Ok(()));
        want.push_str(&line);
    }
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        want
    );
    let log = m.log_text();
    assert!(log.contains("prepared a data connection"), "{log}");
    let early = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains("the bytes go with the command"))
            .count()
    };
    assert!(early("small") >= 20, "{log}");
    assert!(early("log.txt") >= 9, "the appends after the first: {log}");
}

/// Random reads (a database, a zip's index): each read elsewhere abandons the transfer in
/// flight, which is ended in the background while the next read opens on another
/// connection. Every byte is right, on pure-ftpd (which ends an abandoned `RETR` with a
/// second `150`) and pyftpdlib.
#[test]
fn random_reads_that_abandon_transfers_get_the_right_bytes() {
    let data = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(data.path().join("db.bin"), &body).unwrap();
    for kind in [ServerKind::PureFtpd, ServerKind::Pyftpdlib] {
        let Some(server) = Server::start(kind, data.path()) else {
            return;
        };
        let m = Mount::new(&server, &[]);
        let f = std::fs::File::open(m.path().join("db.bin")).unwrap();
        let mut x: u64 = 12345;
        for n in 0..40 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (x >> 33) % (body.len() as u64 - 4096);
            let mut buf = vec![0u8; 4096];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, at).unwrap();
            let at = at as usize;
            assert!(buf[..] == body[at..at + 4096], "{kind:?}: read {n} at {at}");
        }
    }
}

/// A directory the mount just made is known writable: the files `cp -r` or `tar x` put in
/// it go up once each, with their content, without an empty `STOR` first to prove the
/// directory (one round trip and one connection per directory).
#[test]
fn files_in_a_directory_the_mount_made_are_stored_once() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["plain"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    std::fs::create_dir(m.path().join("made")).unwrap();
    for i in 0..3 {
        std::fs::write(m.path().join(format!("made/f{i}.txt")), format!("{i}\n")).unwrap();
    }
    for i in 0..3 {
        assert_eq!(
            std::fs::read_to_string(data.path().join(format!("made/f{i}.txt"))).unwrap(),
            format!("{i}\n")
        );
    }
    let all = commands(&server, 0);
    for i in 0..3 {
        let stors = all
            .iter()
            .filter(|(_, c)| c == &format!("STOR /made/f{i}.txt"))
            .count();
        assert_eq!(stors, 1, "f{i}: {all:?}");
    }
}

/// `tls=try` (the default) against a server without TLS: the refused `AUTH TLS` costs its
/// own round trip and nothing more. The same connection goes on in plain, so the mount's
/// first connection is one session of the server, not a refused one and a second one; later
/// connections do not ask again; the mount works.
#[test]
fn a_refused_auth_tls_goes_on_in_plain_on_the_same_connection() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    let all = commands(&server, 0);
    let asked: Vec<u32> = all
        .iter()
        .filter(|(_, c)| c.eq_ignore_ascii_case("AUTH TLS"))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(asked.len(), 1, "AUTH TLS asked once: {all:?}");
    let mut sessions: Vec<u32> = all.iter().map(|(s, _)| *s).collect();
    sessions.dedup();
    assert_eq!(sessions.first(), Some(&asked[0]), "{all:?}");
    for s in sessions {
        assert!(
            all.iter().any(|(t, c)| *t == s && verb(c) == "USER"),
            "session {s} logged in (none was given up after AUTH TLS): {all:?}"
        );
    }
    assert!(
        m.log_text().contains("does not offer TLS"),
        "{}",
        m.log_text()
    );
}

/// After login, `OPTS UTF8 ON`, `OPTS MLST`, `TYPE I` and `EPSV` (and on the mount's first
/// connection the `REST` probe and `PWD` before it) are written at once: each arrived with
/// the next one (`<+>`), in every session; nothing came with `PASS`; the mount
/// works and lists what `OPTS MLST` asked for. (How `USER` goes: tests/login.rs.)
#[test]
fn the_commands_after_login_arrive_together() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &["connections=2"]);
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    assert!(
        wait_for(Duration::from_secs(20), || {
            let all = commands(&server, 0);
            all.iter().filter(|(_, c)| verb(c) == "TYPE").count() >= 2
        }),
        "two sessions: {:?}",
        commands(&server, 0)
    );
    let all = commands(&server, 0);
    let mut sessions: Vec<u32> = all.iter().map(|(s, _)| *s).collect();
    sessions.sort();
    sessions.dedup();
    for (i, s) in sessions.iter().enumerate() {
        let mine: Vec<&str> = all
            .iter()
            .filter(|(t, _)| t == s)
            .map(|(_, c)| match c.strip_prefix("OPTS MLST ") {
                // The facts asked for do not matter here.
                Some(facts) if facts.ends_with(" <+>") => "OPTS MLST <+>",
                Some(_) => "OPTS MLST",
                None => c.as_str(),
            })
            .collect();
        let pass = mine.iter().position(|c| verb(c) == "PASS").unwrap();
        assert_eq!(mine[pass], "PASS ******", "{all:?}");
        let want: &[&str] = if i == 0 {
            &[
                "OPTS UTF8 ON <+>",
                "OPTS MLST <+>",
                "TYPE I <+>",
                "REST 0 <+>",
                "PWD <+>",
                "EPSV",
            ]
        } else {
            &["OPTS UTF8 ON <+>", "OPTS MLST <+>", "TYPE I <+>", "EPSV"]
        };
        assert_eq!(&mine[pass + 1..pass + 1 + want.len()], want, "{all:?}");
    }
    // The mount's root needed no CWD: PWD named it.
    assert!(!all.iter().any(|(_, c)| verb(c) == "CWD"), "{all:?}");
}

/// A server that loses commands written together (it reads one per packet): the first
/// connection's set-up goes unanswered until the reply timeout, then pipelining is off for
/// the mount and the connection is made again, one command at a time; the mount works.
#[test]
fn a_server_that_loses_pipelined_commands_gets_them_one_at_a_time() {
    let data = served();
    let Some(server) = Server::quirky(data.path(), &["lose-pipelined", "mark-pipelined"], &[])
    else {
        return;
    };
    let m = Mount::new(&server, &["timeout=2"]);
    let got = std::fs::read(m.path().join("f.txt")).unwrap();
    assert!(got == b"hello from the server\n".repeat(5000));
    assert!(read_at_offset(m.path()) == offset_bytes());
    let log = m.log_text();
    assert!(log.contains("one command at a time from now on"), "{log}");
    let all = commands(&server, 0);
    let first = all[0].0;
    let pipelined: Vec<_> = all.iter().filter(|(_, c)| c.ends_with("<+>")).collect();
    assert!(
        !pipelined.is_empty() && pipelined.iter().all(|(s, _)| *s == first),
        "only the first session had commands written together: {all:?}"
    );
    assert!(
        all.iter()
            .any(|(s, c)| *s == first && c == "OPTS UTF8 ON <+>"),
        "the set-up written at once, then lost: {all:?}"
    );
    let again = all.iter().find(|(s, _)| *s != first).unwrap().0;
    let retried: Vec<&str> = all
        .iter()
        .filter(|(s, _)| *s == again)
        .map(|(_, c)| c.as_str())
        .collect();
    assert!(
        retried.contains(&"TYPE I") && retried.contains(&"PWD"),
        "the mount's connection made again, one command at a time: {all:?}"
    );
}

/// Every `EPSV` is used by a transfer before the next one on its connection, from the
/// passive-mode probe of the mount's first connection on (with a mount of `/` and one of a
/// directory below, whose `CWD` comes after the probe). An unused data connection closed
/// before the next `EPSV` broke libunftp, which may give the next transfer to it: the first
/// listing or read of a mount came back empty (`remote::listing_reports_names_types_and_
/// sizes` under load).
#[test]
fn no_data_connection_is_left_unused_before_the_next() {
    let data = served();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::fs::write(data.path().join("sub/g.txt"), b"below\n").unwrap();
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    for (url, opts) in [
        (server.url(), &[][..]),
        (format!("{}/sub", server.url()), &[][..]),
        (server.url(), &["pipelining=off"][..]),
    ] {
        let m = Mount::of_url(&url, opts);
        let names: Vec<String> = std::fs::read_dir(m.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.is_empty(), "{url}: {names:?}");
        let file = if url.ends_with("/sub") {
            "g.txt"
        } else {
            "f.txt"
        };
        assert!(!std::fs::read(m.path().join(file)).unwrap().is_empty());
    }
    let all = commands(&server, 0);
    let mut open: std::collections::HashMap<u32, usize> = Default::default();
    for (i, (session, c)) in all.iter().enumerate() {
        match verb(c) {
            "EPSV" | "PASV" => {
                if let Some(before) = open.insert(*session, i) {
                    panic!(
                        "the data connection of line {before} left unused before line {i}: {all:?}"
                    );
                }
            }
            "RETR" | "STOR" | "APPE" | "LIST" | "MLSD" | "NLST" => {
                open.remove(session);
            }
            _ => {}
        }
    }
}

/// The connections of a walk ahead come back unprepared and are taken again at once: their
/// next listing sends `EPSV` in the same write as its `MLSD` (one round trip for both), and
/// the walk still sees every entry.
#[test]
fn a_walk_ahead_sends_epsv_with_its_listing() {
    let data = tempfile::tempdir().unwrap();
    for d in 0..4 {
        for s in 0..4 {
            let dir = data.path().join(format!("tree/d{d}/s{s}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("f"), "x\n").unwrap();
        }
    }
    let Some(server) = Server::quirky(data.path(), &["mark-pipelined"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let out = Command::new("find")
        .arg(m.path().join("tree"))
        .output()
        .unwrap();
    assert!(out.status.success());
    // `tree`, 4 + 16 directories, 16 files.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 37);
    // suppaftp says so (in the mount's log) when it writes them together.
    let log = m.log_text();
    let pipelined = log
        .lines()
        .filter(|l| l.contains("passive command pipelined with the transfer command"))
        .count();
    assert!(pipelined >= 1, "no EPSV sent with its MLSD:\n{log}");
    // And the server took them in that order: each such `EPSV` is followed, on its
    // session, by the listing.
    let all = commands(&server, 0);
    let epsv_then_mlsd = all.iter().enumerate().any(|(i, (session, c))| {
        verb(c) == "EPSV"
            && all[i + 1..]
                .iter()
                .find(|(s, _)| s == session)
                .is_some_and(|(_, next)| verb(next) == "MLSD")
    });
    assert!(epsv_then_mlsd, "{all:?}");
}
