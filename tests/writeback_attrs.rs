//! Directory modes and times in write-back mode (`-o writeback`): `tar x`, `cp -a` and
//! `rsync -a` set them after writing a directory's contents, while those uploads are still
//! queued. They wait in the queue for the uploads beneath (which would change the time on
//! the server again, and which a read-only mode would refuse), are shown at once, and a
//! rename of the directory sets them first. A mode given to a new file before its first
//! upload (`tar x` does `fchmod` before `close`) goes with that upload.
//!
//! The core's rules are checked against `MemRemote` with no worker started, so nothing
//! leaves the queue unless an operation takes it; `tar x` against real servers, the uploads
//! held back by stopping the server, never by timing.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use ftpfs::fs::{FsOptions, FtpFs, SetAttr, UploadMode};
use ftpfs::inode::ROOT;
use ftpfs::remote::Remote;
use ftpfs::testing::MemRemote;
use ftpfs::upload::journal::Journal;

/// A write-back core whose listings expire at once, with no worker started; with its state
/// directory.
fn core() -> (FtpFs<MemRemote>, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let spool = state.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut fs = FtpFs::new(
        MemRemote::new(),
        FsOptions {
            uid: 1000,
            gid: 1000,
            umask: None,
            ttl: Duration::ZERO,
            max_cached_entries: 10_000,
            read_only: false,
            spool_dir: spool,
            recovery_dir: state.path().join("recovered"),
            upload: UploadMode::Atomic,
            strict_times: false,
        },
    );
    let journal = Journal::open(state.path().join("journal")).unwrap();
    fs.enable_writeback(journal, 1 << 30, 1000);
    (fs, state)
}

/// Creates `name` in `parent` with `data`, closes it (queued) and releases it.
fn queued_file(fs: &FtpFs<MemRemote>, parent: u64, name: &str, data: &[u8]) {
    let (_, fh) = fs.create(parent, OsStr::new(name), true, 0, 0o644).unwrap();
    fs.write(fh, 0, data).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
}

/// The mode and time of `name` in `dir` as the remote lists them.
fn on_remote(r: &MemRemote, dir: &str, name: &str) -> (Option<u32>, Option<SystemTime>) {
    let e = r
        .list(dir)
        .unwrap()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{dir}/{name} on the remote"));
    (e.mode, e.mtime)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn a_directorys_mode_and_time_wait_for_the_uploads_beneath_and_show_at_once() {
    let (fs, _state) = core();
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    let a = fs.mkdir(top.ino, OsStr::new("a"), 0o700).unwrap();
    queued_file(&fs, a.ino, "f", b"inside");
    let set = SetAttr {
        mode: Some(0o555),
        mtime: Some(at(1_000_000_000)),
        ..SetAttr::default()
    };
    let shown = fs.setattr(a.ino, set).unwrap();
    assert_eq!(
        (shown.perm, shown.mtime),
        (0o555, at(1_000_000_000)),
        "shown at once"
    );
    let looked = fs.lookup(top.ino, OsStr::new("a")).unwrap();
    assert_eq!((looked.perm, looked.mtime), (0o555, at(1_000_000_000)));
    assert!(
        !fs.remote().exists("top/a"),
        "nothing went to the server: its mkdir is queued too"
    );
    let fs = std::sync::Arc::new(fs);
    fs.start_writeback(2).unwrap();
    fs.fsyncdir(ROOT).unwrap();
    assert_eq!(fs.remote().content("top/a/f").unwrap(), b"inside");
    assert_eq!(
        on_remote(fs.remote(), "top", "a"),
        (Some(0o555), Some(at(1_000_000_000))),
        "set once the upload beneath landed"
    );
    fs.drain_writeback();
}

#[test]
fn renaming_a_directory_sets_its_queued_mode_and_time_first() {
    let (fs, _state) = core();
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    let a = fs.mkdir(top.ino, OsStr::new("a"), 0o755).unwrap();
    let b = fs.mkdir(a.ino, OsStr::new("b"), 0o755).unwrap();
    queued_file(&fs, b.ino, "f", b"deep");
    for (ino, secs) in [(b.ino, 1_100_000_000), (a.ino, 1_200_000_000)] {
        let set = SetAttr {
            mode: Some(0o750),
            mtime: Some(at(secs)),
            ..SetAttr::default()
        };
        fs.setattr(ino, set).unwrap();
    }
    assert!(!fs.remote().exists("top/a"));
    fs.rename(
        top.ino,
        OsStr::new("a"),
        top.ino,
        OsStr::new("renamed"),
        false,
    )
    .unwrap();
    assert_eq!(fs.remote().content("top/renamed/b/f").unwrap(), b"deep");
    assert_eq!(
        on_remote(fs.remote(), "top", "renamed"),
        (Some(0o750), Some(at(1_200_000_000)))
    );
    assert_eq!(
        on_remote(fs.remote(), "top/renamed", "b"),
        (Some(0o750), Some(at(1_100_000_000)))
    );
    let stats = fs.writeback_stats().unwrap();
    assert_eq!(stats.files, 0, "nothing left queued: {stats:?}");
}

#[test]
fn a_directory_with_nothing_queued_beneath_gets_its_mode_and_time_at_once() {
    let (fs, _state) = core();
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    let set = SetAttr {
        mode: Some(0o700),
        mtime: Some(at(1_300_000_000)),
        ..SetAttr::default()
    };
    fs.setattr(top.ino, set).unwrap();
    assert_eq!(
        on_remote(fs.remote(), "", "top"),
        (Some(0o700), Some(at(1_300_000_000)))
    );
}

/// A tree with directories of several modes and old times, as `tar` archives keep them;
/// returns (relative directory, mode, mtime) of each. None is read-only: GNU tar makes such
/// a directory without its owner's write bit, and a server refuses files in it (that is so
/// with or without write-back).
fn tree_with_modes_and_times(root: &Path) -> Vec<(&'static str, u32, i64)> {
    let dirs = [
        ("d1", 0o755, 1_000_000_000),
        ("d1/d2", 0o751, 1_000_100_000),
        ("d1/d3", 0o750, 1_000_200_000),
        ("d4", 0o700, 1_000_300_000),
    ];
    let mut rng = Rng(23);
    for (d, _, _) in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
        for i in 0..3 {
            let n = rng.below(6000) as usize;
            std::fs::write(root.join(d).join(format!("f{i}")), rng.bytes(n)).unwrap();
        }
    }
    std::fs::set_permissions(root.join("d1/f0"), std::fs::Permissions::from_mode(0o700)).unwrap();
    // Deepest first: setting a directory's mode and time last, as tar x will.
    for (d, mode, secs) in dirs.iter().rev() {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(*mode)).unwrap();
        let ok = Command::new("touch")
            .arg("-d")
            .arg(format!("@{secs}"))
            .arg(root.join(d))
            .status()
            .unwrap()
            .success();
        assert!(ok, "touch -d");
    }
    dirs.to_vec()
}

/// `tar x` into a directory of a write-back mount. `down`: the server is stopped for the
/// whole extraction (pure-ftpd), so that everything is queued and `tar` cannot have waited
/// for it. On the server afterwards: every file byte for byte, every directory with tar's
/// mode, and with tar's time where the server sets directory times (`times`).
fn tar_x_keeps_directory_modes_and_times(kind: ServerKind, down: bool, times: bool) {
    let data = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(kind, data.path()) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let dirs = tree_with_modes_and_times(src.path());
    let archive = tempfile::tempdir().unwrap();
    let tarball = archive.path().join("t.tar");
    let ok = Command::new("tar")
        .arg("cf")
        .arg(&tarball)
        .arg("-C")
        .arg(src.path())
        .args(["d1", "d4"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar c");
    let m = Mount::new(&server, &["writeback", "dir_cache_ttl=600"]);
    std::fs::create_dir(m.path().join("x")).unwrap();
    assert_eq!(std::fs::read_dir(m.path().join("x")).unwrap().count(), 0);
    if down {
        server.crash();
    }
    let out = Command::new("tar")
        .arg("xf")
        .arg(&tarball)
        .arg("-C")
        .arg(m.path().join("x"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown at once, whatever the queue has done (a time the server refused is not).
    for (d, mode, secs) in &dirs {
        let md = std::fs::metadata(m.path().join("x").join(d)).unwrap();
        assert_eq!(md.mode() & 0o7777, *mode, "{d}'s mode in the mount");
        if times {
            assert_eq!(md.mtime(), *secs, "{d}'s time in the mount");
        }
    }
    if down {
        server.restart();
    }
    let sync = Command::new("sync").arg(m.path()).output().unwrap();
    assert!(
        sync.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let log = m.log_text();
    drop(m);
    assert!(
        same_tree(src.path(), &data.path().join("x")),
        "the files arrived whole"
    );
    for (d, mode, secs) in &dirs {
        let md = std::fs::metadata(data.path().join("x").join(d)).unwrap();
        assert_eq!(md.mode() & 0o7777, *mode, "{d}'s mode on the server");
        if times {
            assert_eq!(md.mtime(), *secs, "{d}'s time on the server\n{log}");
        }
    }
    let f0 = std::fs::metadata(data.path().join("x/d1/f0")).unwrap();
    assert_eq!(
        f0.mode() & 0o7777,
        0o700,
        "a file's mode, given before its first upload, went with it"
    );
    assert!(!log.contains("ERROR"), "{log}");
}

/// Whether every file under `want` is under `got` with the same bytes.
fn same_tree(want: &Path, got: &Path) -> bool {
    let out = Command::new("diff")
        .arg("-r")
        .arg(want)
        .arg(got)
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn tar_x_with_the_server_down_leaves_pure_ftpd_with_tars_directory_modes_and_times() {
    tar_x_keeps_directory_modes_and_times(ServerKind::PureFtpd, true, true);
}

/// pyftpdlib sets modes (`SITE CHMOD`) but refuses a directory's time: the refusal is said
/// once in the log, and `sync` still succeeds.
#[test]
fn tar_x_on_pyftpdlib_keeps_directory_modes_and_accepts_its_refusal_of_times() {
    tar_x_keeps_directory_modes_and_times(ServerKind::Pyftpdlib, false, false);
}
