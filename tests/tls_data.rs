//! FTPS data connections on real servers (issue 15). On a network, a TLS data connection
//! whose hello waits for the server's `150` costs two round trips more than a plain one;
//! sent with the transfer command, one. Each must also resume its control connection's TLS
//! session (a full handshake costs more, and vsftpd with `require_ssl_reuse=YES` refuses the
//! transfer) where the server issues session tickets. A hello sent with a command the
//! server refuses is never read, and its TLS 1.3 ticket is spent: that must not leave the
//! next data connection without a session.
//!
//! The order of command, hello and `150` is read from the mount's log with one control
//! connection (`connections=1`), where one thread at a time writes those lines; the
//! sessions are counted by the mount itself (`ftpfs status --json`).
//!
//! Downloads and listings send their `close_notify` with the handshake's end (pure-ftpd and
//! vsftpd send `226` only once it came): what they read must still be all the server has,
//! byte for byte, on every TLS server; and a transfer that fails after it turns it off for
//! the mount and is repeated whole. A download that a server ends at our goodbye with a
//! `226` (pyftpdlib with a quirk) is caught by its size against the listing.

mod common;

use std::path::Path;

use common::*;

/// For each transfer command in `log` (one control connection): whether its data
/// connection's hello was written before the server's `150` was read. (early, late)
fn hello_order(log: &str) -> (usize, usize) {
    const TRANSFERS: [&str; 6] = ["RETR", "STOR", "APPE", "MLSD", "LIST", "NLST"];
    let (mut early, mut late) = (0, 0);
    let mut pending = false;
    let mut replied = false;
    for line in log.lines() {
        if let Some(cmd) = line.split("CC OUT: ").nth(1) {
            if TRANSFERS.iter().any(|v| cmd.starts_with(v)) {
                (pending, replied) = (true, false);
            }
        } else if pending && (line.contains("CC IN: \"150") || line.contains("CC IN: \"125")) {
            replied = true;
        } else if pending && line.contains("TLS: data connection hello sent") {
            if replied {
                late += 1;
            } else {
                early += 1;
            }
            pending = false;
        }
    }
    (early, late)
}

/// Listings, reads (whole and at an offset), uploads and appends through `m`: every kind of
/// data connection, each checked. Returns how many transfers it made at the least.
fn every_kind_of_transfer(m: &Mount, served: &Path) -> usize {
    let root = m.path();
    let mut rng = Rng(15);
    let big = rng.bytes(300_000);
    std::fs::write(root.join("big.bin"), &big).unwrap();
    let mut part = vec![0u8; 1000];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(root.join("big.bin")).unwrap(),
        &mut part,
        200_000,
    )
    .unwrap();
    assert!(part[..] == big[200_000..201_000], "bytes at 200000");
    for i in 0..5 {
        let bytes = rng.bytes(1000 + i * 100);
        let name = format!("f{i}.txt");
        std::fs::write(root.join(&name), &bytes).unwrap();
        assert!(std::fs::read(served.join(&name)).unwrap() == bytes);
    }
    std::fs::create_dir(root.join("d")).unwrap();
    assert_eq!(std::fs::read_dir(root.join("d")).unwrap().count(), 0);
    let log_path = root.join("d/append.log");
    let mut lines = String::new();
    for n in 0..3 {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .unwrap();
        let line = format!("line {n}\n");
        std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        assert_eq!(close(f), Ok(()), "append {n}");
        lines.push_str(&line);
    }
    assert_eq!(
        std::fs::read_to_string(served.join("d/append.log")).unwrap(),
        lines
    );
    assert_eq!(std::fs::read_dir(root).unwrap().count(), 7);
    12
}

/// `resumes`: the server issues session tickets (vsftpd); pure-ftpd issues none, so each of
/// its data connections is a full handshake (one round trip in TLS 1.3 all the same), and
/// a hello with no ticket in it has nothing to spend: it goes early too.
fn hello_goes_with_the_command(kind: ServerKind, resumes: bool) {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["connections=1"]);
    let transfers = every_kind_of_transfer(&m, data.path());
    let c = status_json(m.path())["counters"].clone();
    let log = m.log_text();
    drop(m);
    let (early, late) = hello_order(&log);
    assert!(
        c["tls_data_connections"].as_u64().unwrap() >= transfers as u64,
        "{c}"
    );
    if resumes {
        assert_eq!(
            c["tls_full_handshakes"], c["logins"],
            "one full handshake per login: every data connection resumed ({c})"
        );
    }
    assert!(early >= transfers, "{early} hellos with their command");
    assert_eq!(late, 0, "no hello waited for the 150 ({early} did not)");
    assert!(!log.contains("session reuse") && !log.contains("WARN"));
}

#[test]
fn pure_ftpd_tls_data_connections_send_their_hello_with_the_command() {
    hello_goes_with_the_command(ServerKind::PureFtpdTls, false);
}

#[test]
fn vsftpd_tls_data_connections_send_their_hello_with_the_command_and_resume() {
    hello_goes_with_the_command(ServerKind::VsftpdTls, true);
}

/// Downloads the server refuses (the files went away after they were listed): each refused
/// `RETR` had its hello sent, unread, with a session ticket in it. vsftpd with
/// `require_ssl_reuse=YES` then still takes every later data connection on the same
/// control connection without a refusal: the hello goes early only while a session would
/// remain for the next data connection.
#[test]
fn refused_downloads_over_tls_leave_a_session_for_the_next_data_connection() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::VsftpdTls, data.path()) else {
        return;
    };
    for i in 0..10 {
        std::fs::write(data.path().join(format!("gone{i}.txt")), "soon gone\n").unwrap();
    }
    std::fs::write(data.path().join("kept.txt"), "kept\n").unwrap();
    let m = Mount::new(&server, &["connections=1"]);
    let root = m.path();
    assert_eq!(std::fs::read_dir(root).unwrap().count(), 11);
    for i in 0..10 {
        std::fs::remove_file(data.path().join(format!("gone{i}.txt"))).unwrap();
    }
    for i in 0..10 {
        assert!(
            std::fs::read(root.join(format!("gone{i}.txt"))).is_err(),
            "gone{i}.txt was deleted on the server"
        );
        // A transfer the server takes, after each refusal, on the same control connection.
        assert_eq!(
            std::fs::read_to_string(root.join("kept.txt")).unwrap(),
            "kept\n"
        );
        let up = format!("up{i}.txt");
        std::fs::write(root.join(&up), format!("up {i}\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.path().join(&up)).unwrap(),
            format!("up {i}\n")
        );
    }
    let c = status_json(root)["counters"].clone();
    let log = m.log_text();
    drop(m);
    let refused = log
        .lines()
        .filter(|l| l.contains("CC OUT: RETR") && l.contains("gone"))
        .count();
    assert!(refused >= 10, "{refused} RETR of deleted files sent");
    assert!(!log.contains("session reuse"), "no data connection refused");
    assert_eq!(c["logins"], 1, "one control connection throughout ({c})");
    assert_eq!(c["tls_full_handshakes"], 1, "{c}");
}

/// Lines of `log` that say a data connection sent its `close_notify` early.
fn early_closes(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("close_notify sent with the data connection's handshake"))
        .count()
}

/// A directory whose listing takes many TLS records (400 names of 60 bytes), a 3 MiB file
/// and small ones, read through a mount of `kind`: the listing has every name, each file
/// every byte (whole and at an offset), and no transfer failed. `tls13`: the server speaks
/// TLS 1.3, and each download and listing sent its `close_notify` early; otherwise (TLS
/// 1.2, where a peer that reads it must stop sending) none did.
fn early_close_reads_everything(kind: ServerKind, tls13: bool) {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let mut rng = Rng(42);
    let mut names = std::collections::BTreeSet::new();
    for i in 0..400 {
        let name = format!("entry-{i:04}-{}.txt", "x".repeat(40));
        std::fs::write(data.path().join(&name), format!("{i}\n")).unwrap();
        names.insert(name);
    }
    let big = rng.bytes(3 << 20);
    std::fs::write(data.path().join("big.bin"), &big).unwrap();
    names.insert("big.bin".into());
    let m = Mount::new(&server, &[]);
    let root = m.path();
    let listed: std::collections::BTreeSet<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        listed == names,
        "{} of {} names listed",
        listed.len(),
        names.len()
    );
    assert!(
        std::fs::read(root.join("big.bin")).unwrap() == big,
        "big.bin whole"
    );
    let mut part = vec![0u8; 100_000];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(root.join("big.bin")).unwrap(),
        &mut part,
        2_000_000,
    )
    .unwrap();
    assert!(part[..] == big[2_000_000..2_100_000], "bytes at 2000000");
    for i in [0, 199, 399] {
        let name = format!("entry-{i:04}-{}.txt", "x".repeat(40));
        assert_eq!(
            std::fs::read_to_string(root.join(&name)).unwrap(),
            format!("{i}\n")
        );
    }
    let log = m.log_text();
    drop(m);
    if tls13 {
        assert!(
            early_closes(&log) >= 4,
            "the listing and the downloads said goodbye early: {}",
            early_closes(&log)
        );
    } else {
        assert_eq!(early_closes(&log), 0, "no early goodbye in TLS 1.2");
        assert!(log.contains("not TLS 1.3: close_notify only after"));
    }
    assert!(
        !log.contains("failed after its early close_notify") && !log.contains("WARN"),
        "no transfer failed:\n{}",
        log.lines()
            .filter(|l| l.contains("WARN") || l.contains("early close"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn pure_ftpd_listings_and_reads_are_whole_with_an_early_close_notify() {
    early_close_reads_everything(ServerKind::PureFtpdTls, true);
}

#[test]
fn vsftpd_listings_and_reads_are_whole_with_an_early_close_notify() {
    early_close_reads_everything(ServerKind::VsftpdTls, true);
}

/// libunftp speaks TLS 1.2 unless told otherwise (its `TlsFlags` default).
#[test]
fn libunftp_listings_and_reads_are_whole_in_tls_1_2_without_an_early_close_notify() {
    early_close_reads_everything(ServerKind::UnftpTls, false);
}

/// A remote on `server` (one control connection) whose first data connection that sends its
/// `close_notify` early fails as it does, as on a server that drops the data connection
/// when it comes; `tls` is the mount's, to ask whether it still closes early.
fn remote_failing_once(server: &Server) -> (ftpfs::ftp::FtpRemote, ftpfs::ftp::tls::Tls) {
    let tls = ftpfs::ftp::tls::Tls::new(
        ftpfs::ftp::tls::TlsMode::Required,
        server.ca.as_deref(),
        &[],
        false,
    )
    .unwrap()
    .failing_the_first_early_closed_transfer();
    let endpoint = ftpfs::ftp::conn::Endpoint {
        policy: ftpfs::ftp::retry::Policy {
            retries: 3,
            max_delay: std::time::Duration::from_millis(200),
            deadline: std::time::Duration::from_secs(20),
        },
        ..endpoint(
            "localhost",
            server.port,
            server.user.unwrap(),
            PASSWORD,
            tls.clone(),
        )
    };
    let r = ftpfs::ftp::FtpRemote::connect(endpoint, 1, "", ftpfs::ftp::ListingMode::Auto).unwrap();
    (r, tls)
}

/// A listing whose data connection fails after its early `close_notify` is repeated, whole,
/// and from then on the mount waits for the server's last byte before saying goodbye.
fn failed_listing_is_repeated_whole(kind: ServerKind) {
    use ftpfs::remote::Remote;
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let names: std::collections::BTreeSet<String> = (0..300)
        .map(|i| format!("name-{i:03}-{}", "y".repeat(50)))
        .collect();
    for n in &names {
        std::fs::write(data.path().join(n), b"z").unwrap();
    }
    let (r, tls) = remote_failing_once(&server);
    assert_eq!(tls.early_close(), (true, 0), "on at the start");
    for round in 0..3 {
        let listed: std::collections::BTreeSet<String> =
            r.list("").unwrap().into_iter().map(|e| e.name).collect();
        assert!(
            listed == names,
            "listing {round}: {} of {} names",
            listed.len(),
            names.len()
        );
    }
    assert_eq!(
        tls.early_close(),
        (false, 1),
        "the one failed early close turned it off; none after it"
    );
    r.shutdown();
}

#[test]
fn pure_ftpd_listing_failing_after_an_early_close_is_repeated_whole_and_turns_it_off() {
    failed_listing_is_repeated_whole(ServerKind::PureFtpdTls);
}

#[test]
fn vsftpd_listing_failing_after_an_early_close_is_repeated_whole_and_turns_it_off() {
    failed_listing_is_repeated_whole(ServerKind::VsftpdTls);
}

/// A download that fails after its early `close_notify` is repeated (resumed where it
/// stopped) without closing early again: every byte of the file arrives, in order.
#[test]
fn pure_ftpd_read_failing_after_an_early_close_is_repeated_whole_and_turns_it_off() {
    use ftpfs::remote::{Remote, RemoteReader};
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpdTls, data.path()) else {
        return;
    };
    let bytes = Rng(7).bytes(1 << 20);
    std::fs::write(data.path().join("file.bin"), &bytes).unwrap();
    let (r, tls) = remote_failing_once(&server);
    let reader = r.open_reader("file.bin", bytes.len() as u64).unwrap();
    let mut got = Vec::new();
    for _ in 0..64 {
        let d = reader.read_at(got.len() as u64, 128 * 1024).unwrap();
        if d.is_empty() {
            break;
        }
        got.extend_from_slice(&d);
    }
    assert!(
        got == bytes,
        "{} of {} bytes, or other bytes",
        got.len(),
        bytes.len()
    );
    assert_eq!(tls.early_close(), (false, 1));
    drop(reader);
    r.shutdown();
}

/// A server that takes our early `close_notify` for the end of a download and answers `226`
/// after sending less than the file (pyftpdlib with the quirk
/// `download-ends-at-close-notify`; TLS 1.3 lets a client say goodbye while the server still
/// sends): the reader sees the file end before the size its listing gave, stops saying
/// goodbye early for the mount, and reads on from where the short download ended. Every
/// file arrives whole, the big one and the small ones, and the server cut exactly one
/// download.
#[test]
fn a_download_cut_short_by_our_early_close_notify_is_read_on_whole_and_turns_it_off() {
    let data = tempfile::tempdir().unwrap();
    let pki = tempfile::tempdir().unwrap();
    let Some((_ca, both)) = make_pki(pki.path()) else {
        return;
    };
    let both = both.to_str().unwrap();
    let tls = ["--tls", both, both];
    let Some(server) =
        Server::quirky_with(data.path(), &["download-ends-at-close-notify"], &[], &tls)
    else {
        return;
    };
    let mut rng = Rng(11);
    let big = rng.bytes(3 << 20);
    std::fs::write(data.path().join("big.bin"), &big).unwrap();
    let small: Vec<Vec<u8>> = (0..3).map(|i| rng.bytes(1000 + i * 7000)).collect();
    for (i, b) in small.iter().enumerate() {
        std::fs::write(data.path().join(format!("small{i}.bin")), b).unwrap();
    }
    let m = Mount::new(&server, &["tls=required", "insecure", "connections=1"]);
    let root = m.path();
    assert!(
        std::fs::read(root.join("big.bin")).unwrap() == big,
        "big.bin whole"
    );
    for (i, b) in small.iter().enumerate() {
        assert!(
            std::fs::read(root.join(format!("small{i}.bin"))).unwrap() == *b,
            "small{i}.bin whole"
        );
    }
    let log = m.log_text();
    drop(m);
    let commands = server.command_log();
    assert_eq!(
        commands.matches("ENDED-AT-CLOSE-NOTIFY").count(),
        1,
        "the server cut the first download, and no later one said goodbye early:\n{commands}\n{log}"
    );
    assert!(
        log.contains("failed after its early close_notify"),
        "the mount turned early goodbyes off:\n{log}"
    );
    assert!(
        log.contains("of the 3145728 listed, after an early close_notify"),
        "the short download was noticed by its size:\n{log}"
    );
}

/// Stock pyftpdlib over TLS 1.3 closes a listing's data connection with our early
/// `close_notify` still unread, and the kernel resets the connection. The reset is an error,
/// never a short listing: the listing is repeated whole and the mount says goodbye late from
/// then on (usually; a reset that comes after the client read the server's own goodbye costs
/// nothing). Every name is listed and every file arrives whole.
#[test]
fn pyftpdlib_listings_and_reads_are_whole_though_it_resets_after_an_early_close_notify() {
    let data = tempfile::tempdir().unwrap();
    let pki = tempfile::tempdir().unwrap();
    let Some((_ca, both)) = make_pki(pki.path()) else {
        return;
    };
    let both = both.to_str().unwrap();
    let Some(server) = Server::quirky_with(data.path(), &["plain"], &[], &["--tls", both, both])
    else {
        return;
    };
    let names: std::collections::BTreeSet<String> = (0..300)
        .map(|i| format!("name-{i:03}-{}", "q".repeat(50)))
        .collect();
    for n in &names {
        std::fs::write(data.path().join(n), n.as_bytes()).unwrap();
    }
    let m = Mount::new(&server, &["tls=required", "insecure", "connections=1"]);
    let listed: std::collections::BTreeSet<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(listed == names, "{} of {} names", listed.len(), names.len());
    for n in names.iter().take(3) {
        assert_eq!(std::fs::read(m.path().join(n)).unwrap(), n.as_bytes());
    }
    let log = m.log_text();
    drop(m);
    assert!(
        early_closes(&log) >= 1,
        "the first listing said goodbye early:\n{log}"
    );
    if log.contains("failed after its early close_notify") {
        assert_eq!(early_closes(&log), 1, "none after the reset:\n{log}");
    }
}
