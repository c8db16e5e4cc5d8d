//! Servers that speak FTP their own way are mounted and used all the same.
//!
//! A FEAT reply with a stray coded line and an unindented feature, no FEAT at all, PWD without
//! quotes, SYST refused, TYPE I answered 250: a real pyftpdlib with one quirk switched on
//! each (tests/common/quirky_ftpd.py), mounted, listed, read and written through the kernel.
//! HOST (RFC 7151) is proven by a server whose virtual hosts have different roots: the files
//! seen are those of the site named. ALLO by a server that refuses STOR without it. Replies
//! no real server sends on cue (RFC 2228's 6xx, codes no RFC defines) come from the scripted
//! server: EPROTO with the reply in the log, and the connection still in step.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fake::{FakeOpts, FakeServer};
use common::*;
use ftpfs::ftp::{FtpRemote, ListingMode};
use ftpfs::remote::Remote;

/// A tree with a file in a subdirectory, for listing and reading.
fn tree(root: &Path, content: &str) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/file.txt"), content).unwrap();
}

/// Lists, reads and writes through `m`, and checks the write on the server's disk.
fn use_mount(m: &Mount, root: &Path, what: &str) {
    let names: Vec<String> = std::fs::read_dir(m.path().join("sub"))
        .unwrap_or_else(|e| panic!("{what}: ls: {e}\n{}", m.log_text()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["file.txt"], "{what}: listing");
    let read = std::fs::read_to_string(m.path().join("sub/file.txt")).unwrap();
    assert_eq!(read, "hello from the server\n", "{what}: read");
    let data = "written through the mount\n".repeat(1000);
    std::fs::write(m.path().join("new.txt"), &data)
        .unwrap_or_else(|e| panic!("{what}: write: {e}\n{}", m.log_text()));
    assert_eq!(
        std::fs::read_to_string(root.join("new.txt")).unwrap(),
        data,
        "{what}: the server has what was written"
    );
}

#[test]
fn servers_with_odd_replies_to_advisory_commands_are_mounted_and_used() {
    for quirks in [
        &["feat-malformed"][..],
        &["feat-500"],
        &["pwd-unquoted"],
        &["syst-500"],
        &["type-250"],
    ] {
        let data = tempfile::tempdir().unwrap();
        tree(data.path(), "hello from the server\n");
        let Some(server) = Server::quirky(data.path(), quirks, &[]) else {
            return;
        };
        let m = Mount::new(&server, &[]);
        use_mount(&m, data.path(), quirks[0]);
    }
}

#[test]
fn a_feat_reply_with_a_coded_line_inside_keeps_the_features_around_it() {
    let data = tempfile::tempdir().unwrap();
    tree(data.path(), "hello from the server\n");
    let Some(server) = Server::quirky(data.path(), &["feat-malformed"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_mount(&m, data.path(), "feat-malformed");
    let log = server.command_log();
    // MLST was listed unindented, after the `999` line: listings use MLSD.
    assert!(log.contains(" MLSD"), "MLSD used:\n{log}");
    assert!(!log.contains(" LIST"), "no LIST fallback:\n{log}");
    assert_eq!(count(&log, "FEAT"), 1, "FEAT asked once per mount:\n{log}");
}

#[test]
fn a_server_that_refuses_feat_is_probed_for_what_is_needed() {
    let data = tempfile::tempdir().unwrap();
    tree(data.path(), "hello from the server\n");
    let Some(server) = Server::quirky(data.path(), &["feat-500"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_mount(&m, data.path(), "feat-500");
    let log = server.command_log();
    // pyftpdlib has MLST: one probe found it, and listings use MLSD.
    assert_eq!(count(&log, "MLST"), 1, "one MLST probe:\n{log}");
    assert!(log.contains(" MLSD"), "MLSD used:\n{log}");
    assert_eq!(count(&log, "FEAT"), 1, "FEAT asked once per mount:\n{log}");
}

#[test]
fn a_server_that_answers_feat_only_after_login_is_asked_again_then() {
    let data = tempfile::tempdir().unwrap();
    tree(data.path(), "hello from the server\n");
    let Some(server) = Server::quirky(data.path(), &["feat-needs-login"], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    use_mount(&m, data.path(), "feat-needs-login");
    let log = server.command_log();
    // The one case that pays a round trip: FEAT before USER (530), then after PASS.
    assert_eq!(count(&log, "FEAT"), 2, "{log}");
    assert_eq!(
        count(&log, "MLST"),
        0,
        "the features were read, not probed:\n{log}"
    );
    assert!(log.contains(" MLSD"), "{log}");
}

/// Over TLS too, `FEAT` is read by ftpfs as RFC 959 says (through the vendored suppaftp's
/// control-stream hook): the stray `999` line is text, the unindented `MLST` line a feature,
/// and nothing needs probing.
#[test]
fn over_tls_a_malformed_feat_is_read_tolerantly_as_on_a_plain_connection() {
    let data = tempfile::tempdir().unwrap();
    tree(data.path(), "hello from the server\n");
    let pki = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=localhost",
        ])
        .current_dir(pki.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "openssl makes a test certificate");
    let (cert, key) = (pki.path().join("cert.pem"), pki.path().join("key.pem"));
    let tls = ["--tls", cert.to_str().unwrap(), key.to_str().unwrap()];
    let Some(server) = Server::quirky_with(data.path(), &["feat-malformed"], &[], &tls) else {
        return;
    };
    let m = Mount::new(&server, &["tls=required", "insecure"]);
    use_mount(&m, data.path(), "feat-malformed over TLS");
    let log = server.command_log();
    assert!(log.contains("AUTH TLS"), "{log}");
    assert!(!m.log_text().contains("does not parse"));
    assert_eq!(
        count(&log, "MLST"),
        0,
        "the features were read, not probed:\n{log}"
    );
    assert!(log.contains(" MLSD"), "{log}");
}

/// How many commands `verb` the quirky server received (its log: `SESSION VERB ARG`).
fn count(log: &str, verb: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|v| v.eq_ignore_ascii_case(verb))
        })
        .count()
}

/// The commands of each session, in order, from the quirky server's log.
fn sessions(log: &str) -> Vec<Vec<String>> {
    let mut by: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for l in log.lines() {
        let (n, cmd) = l.split_once(' ').unwrap();
        by.entry(n.parse().unwrap())
            .or_default()
            .push(cmd.to_string());
    }
    by.into_values().collect()
}

/// Three sites on one server: the default (`root`), `localhost`, and `site-b.example`.
fn virtual_hosts() -> (tempfile::TempDir, Option<Server>) {
    let sites = tempfile::tempdir().unwrap();
    for site in ["default", "localhost", "site-b"] {
        tree(&sites.path().join(site), &format!("this is {site}\n"));
    }
    let (local, b) = (sites.path().join("localhost"), sites.path().join("site-b"));
    let server = Server::quirky(
        &sites.path().join("default"),
        &[],
        &[("localhost", &local), ("site-b.example", &b)],
    );
    (sites, server)
}

fn site_seen(m: &Mount) -> String {
    std::fs::read_to_string(m.path().join("sub/file.txt")).unwrap()
}

#[test]
fn host_names_the_url_host_when_the_server_lists_it_and_the_right_site_is_served() {
    let (_sites, Some(mut server)) = virtual_hosts() else {
        return;
    };
    server.url_host = "localhost".into();
    let site = server.root.parent().unwrap().join("localhost");
    std::fs::write(site.join("big.bin"), vec![1u8; 16 << 20]).unwrap();
    std::fs::create_dir(site.join("other")).unwrap();
    let m = Mount::new(&server, &["connections=2"]);
    assert_eq!(site_seen(&m), "this is localhost\n");
    // A second connection names it too: a read in progress holds the first one while a
    // directory not listed yet is listed.
    let mut reader = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut reader, &mut byte).unwrap();
    assert_eq!(
        std::fs::read_dir(m.path().join("other")).unwrap().count(),
        0
    );
    drop(reader);
    let log = server.command_log();
    let sessions = sessions(&log);
    // tls=try: the first session asks AUTH TLS, refused, and logs in on the same connection.
    let logins: Vec<_> = sessions.iter().collect();
    assert!(logins.len() >= 2, "two connections:\n{log}");
    for s in logins {
        let user = s
            .iter()
            .position(|c| c.starts_with("USER "))
            .unwrap_or_else(|| panic!("a session without USER:\n{log}"));
        assert!(
            s[..user].iter().any(|c| c == "HOST localhost"),
            "HOST before USER in every session:\n{log}"
        );
    }
    // FEAT came before USER on the first connection: HOST cost no extra FEAT.
    assert_eq!(count(&log, "FEAT"), 1, "{log}");
    let first = &sessions[0];
    assert_eq!(first[0], "AUTH TLS", "{log}");
    assert!(
        first.iter().position(|c| c == "FEAT") < first.iter().position(|c| c.starts_with("USER")),
        "{log}"
    );
}

#[test]
fn host_option_picks_the_site_and_an_ip_literal_sends_no_host() {
    let (_sites, Some(server)) = virtual_hosts() else {
        return;
    };
    // 127.0.0.1 names no site: the default one, and no HOST sent.
    let m = Mount::new(&server, &[]);
    assert_eq!(site_seen(&m), "this is default\n");
    drop(m);
    assert_eq!(count(&server.command_log(), "HOST"), 0);
    let m = Mount::new(&server, &["host=site-b.example"]);
    assert_eq!(site_seen(&m), "this is site-b\n");
    drop(m);
    assert!(server.command_log().contains("HOST site-b.example"));
}

#[test]
fn a_url_host_the_server_does_not_know_gets_the_default_site_and_is_not_asked_again() {
    let sites = tempfile::tempdir().unwrap();
    for site in ["default", "site-b"] {
        tree(&sites.path().join(site), &format!("this is {site}\n"));
    }
    let default = sites.path().join("default");
    std::fs::write(default.join("big.bin"), vec![1u8; 16 << 20]).unwrap();
    std::fs::create_dir(default.join("other")).unwrap();
    let b = sites.path().join("site-b");
    let Some(mut server) = Server::quirky(&default, &[], &[("site-b.example", &b)]) else {
        return;
    };
    server.url_host = "localhost".into();
    let m = Mount::new(&server, &["connections=2"]);
    assert_eq!(site_seen(&m), "this is default\n");
    // A second connection, while a read holds the first.
    let mut reader = std::fs::File::open(m.path().join("big.bin")).unwrap();
    std::io::Read::read_exact(&mut reader, &mut [0u8; 1]).unwrap();
    assert_eq!(
        std::fs::read_dir(m.path().join("other")).unwrap().count(),
        0
    );
    drop(reader);
    let log = server.command_log();
    assert!(count(&log, "USER") >= 2, "two logins:\n{log}");
    assert_eq!(
        count(&log, "HOST"),
        1,
        "refused once, not asked again:\n{log}"
    );
    assert!(m.log_text().contains("HOST localhost refused"));
}

#[test]
fn a_host_option_the_server_does_not_know_fails_the_mount_instead_of_serving_another_site() {
    let (_sites, Some(server)) = virtual_hosts() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // `ftpfs()`: a home, cache and runtime directory of the build's, never the user's.
    let mut child = ftpfs()
        .args(["mount", "-f", &server.url()])
        .arg(dir.path())
        .args(["-o", "host=nowhere.example", "-o"])
        .arg(format!(
            "spool_dir={0}/s,recovery_dir={0}/r",
            state.path().display()
        ))
        .env("FTPFS_PASSWORD", PASSWORD)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_for(Duration::from_secs(20), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(ended && !out.status.success(), "refused: {err}");
    assert!(err.contains("504"), "the server's reply is shown: {err}");
    assert_eq!(count(&server.command_log(), "USER"), 0, "no login");
}

#[test]
fn allo_announces_each_upload_to_a_server_that_requires_it() {
    let data = tempfile::tempdir().unwrap();
    tree(data.path(), "hello from the server\n");
    let Some(server) = Server::quirky(data.path(), &["allo-required"], &[]) else {
        return;
    };
    // Without -o allo the server refuses the upload, and close(2) says so.
    {
        let m = Mount::new(&server, &[]);
        let r = std::fs::write(m.path().join("refused.txt"), "x");
        assert!(r.is_err(), "STOR without ALLO is refused");
        assert!(!data.path().join("refused.txt").exists());
    }
    let m = Mount::new(&server, &["allo"]);
    use_mount(&m, data.path(), "allo");
    let big = vec![7u8; 3 << 20];
    std::fs::write(m.path().join("big.bin"), &big).unwrap();
    assert_eq!(std::fs::read(data.path().join("big.bin")).unwrap(), big);
    let log = server.command_log();
    assert!(log.contains("ALLO 3145728"), "ALLO with the size:\n{log}");
    assert!(log.contains("ALLO 26000"), "{log}");
    drop(m);
    // pyftpdlib itself answers ALLO with 202 (not needed): the upload goes on.
    let plain = tempfile::tempdir().unwrap();
    tree(plain.path(), "hello from the server\n");
    let Some(server) = Server::quirky(plain.path(), &[], &[]) else {
        return;
    };
    let m = Mount::new(&server, &["allo"]);
    use_mount(&m, plain.path(), "allo answered 202");
    assert!(server.command_log().contains("ALLO 26000"));
}

#[test]
fn a_greeting_with_other_codes_inside_is_read_to_its_end() {
    let opts = FakeOpts {
        greeting: common::fake::Greeting::StrayCodes,
        listing: vec!["-rw-r--r-- 1 a b 3 Jan  1  2020 f".into()],
        ..Default::default()
    };
    let s = FakeServer::start(opts);
    let r = FtpRemote::connect(s.endpoint(), 1, "", ListingMode::Auto).unwrap();
    assert_eq!(r.list("").unwrap().len(), 1);
}

#[test]
fn protected_and_unknown_reply_codes_are_eproto_and_the_dialogue_stays_in_step() {
    let mut opts = FakeOpts {
        replies: vec![
            // RFC 2228 protected replies, to a server we never asked to protect anything.
            ("MKD", "631 c2VjcmV0IHJlcGx5\r\n"),
            ("RMD", "632-protected\r\n632 reply\r\n"),
            // No RFC defines 9xx; the multi-line form carries another code inside.
            ("DELE", "999-what\r\n998 is this\r\n999 end\r\n"),
            // FEAT is advisory: even this does not fail the connection.
            ("FEAT", "699 no idea\r\n"),
        ],
        ..Default::default()
    };
    opts.listing = vec!["-rw-r--r-- 1 a b 3 Jan  1  2020 f".into()];
    let s = FakeServer::start(opts);
    let r = FtpRemote::connect(s.endpoint(), 1, "", ListingMode::Auto).unwrap();
    type Op<'a> = &'a dyn Fn() -> Result<(), ftpfs::error::Error>;
    let ops: [(&str, Op); 3] = [
        ("mkdir", &|| r.mkdir("d")),
        ("rmdir", &|| r.rmdir("d")),
        ("delete", &|| r.delete("f")),
    ];
    for (what, op) in ops {
        let start = Instant::now();
        let e = op().expect_err(what);
        assert_eq!(e.errno(), libc::EPROTO, "{what}: {e}");
        assert!(start.elapsed() < Duration::from_secs(4), "{what}: no hang");
        // A listing after each: the rest of a reply is never taken for the next one's.
        assert_eq!(r.list("").unwrap().len(), 1, "{what}: still in step");
    }
}
