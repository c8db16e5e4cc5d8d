//! `MODE Z` downloads through real mounts of proftpd with mod_deflate (`DeflateEngine on`
//! in the shared test configuration): byte-exact for compressible and incompressible data,
//! `MODE S` for a read that starts elsewhere than byte 0, and every connection back in
//! `MODE S` before it serves a listing or an upload. Counted from proftpd's command log.

mod common;

use std::io::{Read, Seek, SeekFrom};

use common::*;

fn text(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while v.len() < n {
        v.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog\n").as_bytes(),
        );
        i += 1;
    }
    v.truncate(n);
    v
}

/// `(command line, reply)` pairs of the server's log whose verb is `verb`.
fn lines_of(server: &Server, verb: &str) -> Vec<String> {
    server
        .command_log()
        .lines()
        .filter(|l| l.split(' ').next() == Some(verb))
        .map(str::to_string)
        .collect()
}

#[test]
fn mode_z_downloads_are_byte_exact_and_connections_return_to_mode_s() {
    let data = tempfile::tempdir().unwrap();
    let plain = text((5 << 20) + 123);
    let random = Rng(7).bytes((3 << 20) + 5);
    std::fs::write(data.path().join("text.txt"), &plain).unwrap();
    std::fs::write(data.path().join("random.bin"), &random).unwrap();
    std::fs::write(data.path().join("unread.bin"), &random).unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["compress=on"]);
    assert_eq!(std::fs::read(m.path().join("text.txt")).unwrap(), plain);
    assert_eq!(std::fs::read(m.path().join("random.bin")).unwrap(), random);
    let modes = lines_of(&server, "MODE");
    let z = modes.iter().filter(|l| l.starts_with("MODE Z 200")).count();
    let s = modes.iter().filter(|l| l.starts_with("MODE S 200")).count();
    assert!(z >= 2, "{modes:?}");
    assert_eq!(z, s, "every MODE Z is undone: {modes:?}");

    // A read that starts past 0 (of a file not read before, so not in the kernel's page
    // cache) is a plain REST + RETR.
    let mut f = std::fs::File::open(m.path().join("unread.bin")).unwrap();
    f.seek(SeekFrom::Start(2 << 20)).unwrap();
    let mut tail = vec![0u8; 4096];
    f.read_exact(&mut tail).unwrap();
    assert_eq!(tail, random[2 << 20..(2 << 20) + 4096]);
    let log = server.command_log();
    let rest_at = log
        .find("REST 2097152")
        .expect("a REST for the offset read");
    let before_rest = &log[..rest_at];
    assert!(
        before_rest
            .rfind("MODE Z")
            .is_none_or(|z| before_rest.rfind("MODE S").unwrap() > z),
        "{log}"
    );
    drop(f);

    // Listings, and an upload too small to compress, on the pooled connections are plain.
    std::fs::write(m.path().join("up.txt"), &plain[..50_000]).unwrap();
    assert_eq!(
        std::fs::read(data.path().join("up.txt")).unwrap(),
        &plain[..50_000]
    );
    let names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"up.txt".to_string()), "{names:?}");
    // Each transfer that is not a download from 0 ran with the connection in MODE S: after
    // the last MODE Z comes its MODE S before any other transfer command.
    let mut in_z = false;
    for l in server.command_log().lines() {
        if l.starts_with("MODE Z 200") {
            in_z = true;
        } else if l.starts_with("MODE S 200") {
            in_z = false;
        } else if ["STOR ", "APPE ", "MLSD ", "LIST ", "NLST "]
            .iter()
            .any(|v| l.starts_with(v))
        {
            assert!(!in_z, "{l} in MODE Z:\n{}", server.command_log());
        }
    }
    assert!(
        !lines_of(&server, "STOR").is_empty(),
        "{}",
        server.command_log()
    );
}

#[test]
fn compress_off_never_changes_the_mode() {
    let data = tempfile::tempdir().unwrap();
    let plain = text(2 << 20);
    std::fs::write(data.path().join("text.txt"), &plain).unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["compress=off"]);
    assert_eq!(std::fs::read(m.path().join("text.txt")).unwrap(), plain);
    assert_eq!(lines_of(&server, "MODE"), Vec::<String>::new());
}

#[test]
fn compress_auto_stays_off_on_a_fast_link() {
    let data = tempfile::tempdir().unwrap();
    let plain = text(3 << 20);
    std::fs::write(data.path().join("a.txt"), &plain).unwrap();
    std::fs::write(data.path().join("b.txt"), &plain).unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    assert_eq!(std::fs::read(m.path().join("a.txt")).unwrap(), plain);
    assert_eq!(std::fs::read(m.path().join("b.txt")).unwrap(), plain);
    assert_eq!(lines_of(&server, "MODE"), Vec::<String>::new());
}

#[test]
fn mode_z_uploads_are_verified_and_a_wrong_one_is_sent_again_plain() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["compress=on"]);
    let plain = text((2 << 20) + 77);
    let random = Rng(9).bytes((3 << 20) + 3);
    // Incompressible first: not worth compressing, it goes plain (this proftpd took 80 s to
    // take 3 MiB of it in MODE Z).
    std::fs::write(m.path().join("up.bin"), &random).unwrap();
    std::fs::write(m.path().join("up.txt"), &plain).unwrap();
    std::fs::write(m.path().join("up2.txt"), &plain).unwrap();
    assert_eq!(std::fs::read(data.path().join("up.txt")).unwrap(), plain);
    assert_eq!(std::fs::read(data.path().join("up.bin")).unwrap(), random);
    assert_eq!(std::fs::read(data.path().join("up2.txt")).unwrap(), plain);
    // Each file's last STOR is either plain, or compressed and then checked with SIZE.
    let log = server.command_log();
    let lines: Vec<&str> = log.lines().collect();
    let first_bin = lines
        .iter()
        .position(|l| l.starts_with("STOR /up.bin "))
        .unwrap();
    assert!(
        !lines[..first_bin].iter().any(|l| l.starts_with("MODE Z")),
        "random data is sent plain: {log}"
    );
    for path in ["/up.txt", "/up.bin", "/up2.txt"] {
        let stor = format!("STOR {path} ");
        let last = lines.iter().rposition(|l| l.starts_with(&stor)).unwrap();
        let in_z = lines[..last]
            .iter()
            .rev()
            .find(|l| l.starts_with("MODE "))
            .is_some_and(|l| l.starts_with("MODE Z"));
        if in_z {
            assert!(lines[last].ends_with(" 226"), "{log}");
            assert!(
                lines[last..]
                    .iter()
                    .any(|l| l.starts_with(&format!("SIZE {path} 213"))),
                "{log}"
            );
        }
    }
    // This proftpd (Debian 12's 1.3.8) breaks them: the fallback is seen once and no MODE Z
    // is sent for an upload after it. A fixed server passes the checks above instead.
    let mount_log = m.log_text();
    let warned = mount_log.matches("failed its check").count();
    assert!(warned <= 1, "{mount_log}");
    if warned == 1 {
        let first_failure = lines
            .iter()
            .position(|l| l.starts_with("STOR ") && !l.ends_with(" 226"))
            .or_else(|| lines.iter().position(|l| l.starts_with("SIZE ")))
            .unwrap();
        let z_after = lines[first_failure..]
            .iter()
            .filter(|l| l.starts_with("MODE Z"))
            .count();
        assert_eq!(z_after, 0, "{log}");
    }
}

#[test]
fn a_compressed_upload_the_server_reports_stored_but_sized_wrong_is_sent_again_plain() {
    let opts = fake::FakeOpts {
        broken_mode_z: true,
        ..Default::default()
    };
    let stored = std::sync::Arc::clone(&opts.stored);
    let s = fake::FakeServer::start(opts);
    let m = Mount::of_url(
        &format!("ftp://alice@127.0.0.1:{}", s.port),
        &["compress=on"],
    );
    let plain = text(300_000);
    std::fs::write(m.path().join("a.txt"), &plain).unwrap();
    assert_eq!(stored.lock().unwrap().get("a.txt").unwrap(), &plain);
    std::fs::write(m.path().join("b.txt"), &plain).unwrap();
    assert_eq!(stored.lock().unwrap().get("b.txt").unwrap(), &plain);
    let log = m.log_text();
    assert_eq!(log.matches("failed its check").count(), 1, "{log}");
    // One MODE Z upload (a.txt, checked with SIZE and found wrong), then plain ones.
    let commands = s.commands.lock().unwrap().clone();
    let modes: Vec<&String> = commands.iter().filter(|c| c.starts_with("MODE")).collect();
    assert_eq!(modes, ["MODE Z", "MODE S"], "{commands:?}");
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.starts_with("STOR /a.txt"))
            .count(),
        3,
        "the empty create, the compressed one, the plain one: {commands:?}"
    );
}
