//! What a server cannot do is learned once per mount, through real mounts of real servers.
//!
//! pyftpdlib sets a file's time with MFMT but answers it for a directory with `550 /d is
//! not retrievable`, every time. After one such refusal, with a file's time set before,
//! the mount stops asking: one info line, no more round trips, and the same answer as the
//! server's. libunftp has no SITE CHMOD: one chmod learns it for the mount. (proftpd's
//! APPE refusal is in tests/proftpd.rs.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

/// `touch -d` of `name` in the mount; its exit status is not the point here (whether a
/// directory's time that cannot be set fails `touch` is decided in the filesystem core).
fn touch(mount: &Path, name: &str) {
    Command::new("touch")
        .args(["-d", "2020-01-02 03:04:05 UTC", name])
        .current_dir(mount)
        .output()
        .unwrap();
}

/// The MFMT commands the mount sent for `path`, from its suppaftp trace.
fn mfmt_sent(log: &str, path: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("CC OUT: MFMT ") && l.ends_with(&format!(" {path}")))
        .count()
}

#[test]
fn a_directory_time_the_server_refuses_is_asked_once_per_mount() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "x").unwrap();
    for d in ["d1", "d2", "d3"] {
        std::fs::create_dir(data.path().join(d)).unwrap();
    }
    let Some(server) = Server::start(ServerKind::Pyftpdlib, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    touch(m.path(), "f");
    let want = UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    let set = std::fs::metadata(data.path().join("f"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(set, want, "a file's time is set");
    for d in ["d1", "d2", "d3"] {
        touch(m.path(), d);
    }
    touch(m.path(), "f");
    let log = m.log_text();
    assert_eq!(mfmt_sent(&log, "/d1"), 1, "asked once");
    assert_eq!(
        mfmt_sent(&log, "/d2") + mfmt_sent(&log, "/d3"),
        0,
        "then learned"
    );
    assert_eq!(mfmt_sent(&log, "/f"), 2, "files are still asked");
    let learned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("refuses setting a directory's time"))
        .collect();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert!(learned[0].contains("not retrievable"), "{}", learned[0]);
    assert!(!log.contains("refuses setting a file's time"));
}

/// libunftp has no SITE CHMOD: the first chmod learns it (not supported, for files and
/// directories), later ones are answered without asking.
#[test]
fn a_server_without_site_chmod_is_asked_once_per_mount() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("a"), "x").unwrap();
    std::fs::write(data.path().join("b"), "x").unwrap();
    std::fs::create_dir(data.path().join("d")).unwrap();
    let server = Server::start(ServerKind::Unftp, data.path()).expect("libunftp");
    let m = Mount::new(&server, &[]);
    for name in ["a", "b", "d", "a"] {
        let e = std::fs::set_permissions(m.path().join(name), PermissionsExt::from_mode(0o700))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSUP), "{name}");
    }
    let log = m.log_text();
    let sent = log
        .lines()
        .filter(|l| l.contains("CC OUT: SITE CHMOD"))
        .count();
    assert_eq!(sent, 1, "asked once");
    let learned = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("refuses changing modes"))
        .count();
    assert_eq!(learned, 1, "one line for files and directories");
}

/// libunftp has no MFMT, and reads vsftpd's `MDTM time path` as a file name (`550 File not
/// found`): times cannot be set there, which is `ENOTSUP`, learned with one MFMT and one
/// MDTM per mount.
#[test]
fn a_server_that_cannot_set_times_is_asked_once_per_mount() {
    let data = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(data.path().join(name), "x").unwrap();
    }
    let server = Server::start(ServerKind::Unftp, data.path()).expect("libunftp");
    let m = Mount::new(&server, &[]);
    for name in ["a", "b", "c"] {
        let out = Command::new("touch")
            .args(["-d", "2020-01-02 03:04:05 UTC", name])
            .current_dir(m.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Operation not supported"), "{name}: {err}");
    }
    let log = m.log_text();
    let sent = |verb: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("CC OUT: {verb} 2020")))
            .count()
    };
    assert_eq!((sent("MFMT"), sent("MDTM")), (1, 1));
    assert_eq!(log.matches("times cannot be set").count(), 1);
}
