//! proftpd 1.3.8 as Debian ships it, through real mounts: what it refuses by default and
//! what ftpfs does about it.
//!
//! proftpd refuses `APPE` (`451 f: Append/Restart not permitted, try again`, from
//! `AllowStoreRestart off`). ftpfs used to take that 451 for "busy", retried it five times
//! with six warnings and then sent the whole file, on every append: 2.45 s per `echo >>`.
//! Now the refusal is learned once per mount and appends go up whole at once. The generic
//! read and write workloads run on proftpd in mount.rs and writes.rs; what is here is
//! specific to it, and counted from the server's own command log (ExtendedLog), not timed.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

fn setup() -> Option<(tempfile::TempDir, Server)> {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("log.txt"), "line 0\n").unwrap();
    let server = Server::start(ServerKind::Proftpd, data.path())?;
    Some((data, server))
}

fn sh(dir: &Path, script: &str) {
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
}

/// The server's commands whose verb is `verb`, as `(argument, reply code)`.
fn commands(server: &Server, verb: &str) -> Vec<(String, String)> {
    server
        .command_log()
        .lines()
        .filter_map(|l| {
            let (v, rest) = l.split_once(' ')?;
            let (arg, code) = rest.rsplit_once(' ')?;
            (v == verb).then(|| (arg.to_string(), code.to_string()))
        })
        .collect()
}

/// Warnings in a mount's log, but for the one every plain-FTP login with a password gets.
fn warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") && !l.contains("no TLS; the password"))
        .collect()
}

#[test]
fn twenty_appends_learn_the_appe_refusal_once_and_lose_no_line() {
    let Some((data, server)) = setup() else {
        return;
    };
    let m = Mount::new(&server, &[]);
    sh(
        m.path(),
        "for i in $(seq 1 20); do echo line $i >> log.txt; done",
    );
    let want: String = (0..=20).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        want
    );
    assert_eq!(
        std::fs::read_to_string(m.path().join("log.txt")).unwrap(),
        want
    );

    // Each session process writes its own log lines, after its reply: the last STOR's
    // may come a moment after the RNTO another connection sent next.
    wait_for(Duration::from_secs(10), || {
        commands(&server, "STOR").len() >= 20
    });
    let appe = commands(&server, "APPE");
    assert_eq!(appe.len(), 1, "APPE asked once, not retried: {appe:?}");
    assert_eq!(appe[0].1, "451", "{appe:?}");
    let stored = commands(&server, "STOR");
    assert_eq!(stored.len(), 20, "one whole upload per append: {stored:?}");
    assert!(stored.iter().all(|(_, code)| code == "226"), "{stored:?}");

    let log = m.log_text();
    let learned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("refuses appending"))
        .collect();
    assert_eq!(learned.len(), 1, "one info line per mount: {learned:?}");
    assert!(learned[0].contains("not permitted"), "{}", learned[0]);
    assert_eq!(warnings(&log), Vec::<&str>::new(), "no warnings");
}

/// A second mount learns it again (the knowledge is per mount), and a file that is not
/// appended to never costs an APPE.
#[test]
fn a_new_file_and_an_overwrite_never_ask_for_appe() {
    let Some((data, server)) = setup() else {
        return;
    };
    let m = Mount::new(&server, &[]);
    sh(m.path(), "echo new > new.txt && echo over > log.txt");
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        "over\n"
    );
    assert!(commands(&server, "APPE").is_empty());
    drop(m);
    let m = Mount::new(&server, &[]);
    sh(m.path(), "echo more >> log.txt && echo again >> log.txt");
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        "over\nmore\nagain\n"
    );
    assert_eq!(commands(&server, "APPE").len(), 1);
    assert_eq!(warnings(&m.log_text()), Vec::<&str>::new());
}

#[test]
fn files_and_directories_are_created_renamed_changed_and_removed() {
    let Some((data, server)) = setup() else {
        return;
    };
    let d = data.path();
    let m = Mount::new(&server, &[]);
    let p = m.path();
    std::fs::create_dir(p.join("dir")).unwrap();
    std::fs::write(p.join("dir/a.txt"), "alpha\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("dir/a.txt")).unwrap(),
        "alpha\n"
    );
    std::fs::rename(p.join("dir/a.txt"), p.join("dir/b.txt")).unwrap();
    assert!(!d.join("dir/a.txt").exists());
    assert_eq!(
        std::fs::read_to_string(p.join("dir/b.txt")).unwrap(),
        "alpha\n"
    );
    // Onto an existing name (AllowOverwrite on).
    std::fs::write(p.join("c.txt"), "gamma\n").unwrap();
    std::fs::rename(p.join("c.txt"), p.join("dir/b.txt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("dir/b.txt")).unwrap(),
        "gamma\n"
    );

    // proftpd takes SITE CHMOD and MFMT for files and directories alike.
    std::fs::set_permissions(p.join("dir/b.txt"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(p.join("dir"), PermissionsExt::from_mode(0o700)).unwrap();
    assert_eq!(
        std::fs::metadata(d.join("dir/b.txt")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(d.join("dir")).unwrap().mode() & 0o777,
        0o700
    );
    sh(p, "touch -d '2020-01-02 03:04:05 UTC' dir/b.txt dir");
    let want = UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    for name in ["dir/b.txt", "dir"] {
        let on_server = std::fs::metadata(d.join(name)).unwrap().modified().unwrap();
        assert_eq!(on_server, want, "{name} on the server");
    }
    assert_eq!(
        std::fs::metadata(p.join("dir/b.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        want
    );
    let log = m.log_text();
    assert!(!log.contains("refuses"), "nothing refused:\n{log}");

    std::fs::remove_file(p.join("dir/b.txt")).unwrap();
    std::fs::remove_dir(p.join("dir")).unwrap();
    assert!(!d.join("dir").exists());
    assert_eq!(
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>(),
        ["log.txt"]
    );
    assert_eq!(warnings(&log), Vec::<&str>::new());
}

/// proftpd refuses REST for uploads but takes it for downloads: a read in the middle of a
/// file is one `REST n` + `RETR`, not a download from the start.
#[test]
fn a_read_in_the_middle_of_a_file_restarts_there() {
    let Some((data, server)) = setup() else {
        return;
    };
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(data.path().join("big.bin"), &content).unwrap();
    let m = Mount::new(&server, &[]);
    let f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut buf = vec![0u8; 1000];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 2_500_000).unwrap();
    assert_eq!(buf, content[2_500_000..2_501_000]);
    // The kernel reads whole pages: the REST is at the page the read begins in.
    let page = (2_500_000 / 4096 * 4096).to_string();
    let rest = commands(&server, "REST");
    assert!(
        rest.iter().any(|(arg, code)| *arg == page && code == "350"),
        "{rest:?}"
    );
    // proftpd logs a RETR when the transfer ends: at close at the latest.
    drop(f);
    assert!(wait_for(Duration::from_secs(10), || !commands(
        &server, "RETR"
    )
    .is_empty()));
    assert_eq!(
        commands(&server, "RETR").len(),
        1,
        "one download, from there"
    );
}
